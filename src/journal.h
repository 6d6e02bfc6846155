/* SPDX-License-Identifier: MIT */
#pragma once

/* The journal's native protocol (systemd.journal-fields(7), "Native Protocol" in systemd's
 * documentation): one datagram per entry on journald's socket, as sd_journal_sendv() writes
 * it, but on a non-blocking socket, so the caller decides how long a full journal is waited
 * for, and learns when there is no journal at all (sd_journal_sendv drops entries silently). */

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define JOURNAL_SOCKET "/run/systemd/journal/socket"
/* The most fields journal_send takes (SYSLOG_IDENTIFIER not counted). */
#define JOURNAL_FIELDS_MAX 32

/* A non-blocking datagram socket connected to journald, or -errno: -ENOENT (no socket) or
 * -ECONNREFUSED (nobody behind it) mean there is no journal. */
int journal_connect(void);
/* Sends one entry of `n` fields ("NAME=value", any bytes in the value), adding
 * SYSLOG_IDENTIFIER. Waits at most `wait_usec` while the journal's queue is full, then returns
 * -EAGAIN; other errors as -errno. */
int journal_send(int fd, const struct iovec *fields, size_t n, uint64_t wait_usec);
