/* SPDX-License-Identifier: MIT */
#pragma once

/* A watch stream's messages: one JSON text a line. They are split on newlines, never on HTTP
 * chunks: a chunk may hold part of a message, or several. */

#include <event2/buffer.h>
#include <stddef.h>
#include <stdint.h>

/* The bytes of one message at most: a value etcd takes is at most 1.5 MiB by default, base64
 * makes it 2 MiB, and a message may carry several events. */
#define ETCD_LINE_MAX (UINT64_C(64) << 20)

/* Takes the next complete line (without its "\n", and a "\r" before it) out of `buf` into *ret,
 * NUL-terminated, to free: 1; 0 when no complete line is there yet (what is there stays);
 * -EMSGSIZE when more than `max` bytes come without a newline; -ENOMEM. Empty lines are
 * skipped. */
int etcd_lines_next(struct evbuffer *buf, size_t max, char **ret, size_t *ret_len);
