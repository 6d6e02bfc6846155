/* SPDX-License-Identifier: MIT */
#pragma once

/* Bytes both ways between two streams, as they come: for tcp and tls-passthrough listeners and
 * for WebSocket after a 101. Backpressure per direction, half-close passed on (one side's end of
 * input becomes a shutdown of the other's output), an idle timeout over both directions.
 *
 * The streams stay their owners'; the owners forward their stream callbacks here. */

#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>

#include "net/stream.h"

typedef struct Tunnel Tunnel;

/* Called once when the tunnel is over: both sides closed their output (error 0), one failed, or
 * it sat idle (-ETIMEDOUT). The owner frees the tunnel and the streams. */
typedef void (*tunnel_done_fn)(void *userdata, int error);

/* Sets a tunnel up; nothing moves before tunnel_start(). */
int tunnel_new(struct event_base *base, Stream *a, Stream *b, uint64_t idle_usec,
               tunnel_done_fn done, void *userdata, Tunnel **ret);
/* Starts moving: what a->in and b->in already hold goes first. `done` may run inside. */
void tunnel_start(Tunnel *t);
Tunnel *tunnel_free(Tunnel *t);

/* `s` (a or b) has input or ended, or its output drained. */
void tunnel_on_read(Tunnel *t, Stream *s);
void tunnel_on_drain(Tunnel *t, Stream *s);
/* `s` failed. */
void tunnel_on_error(Tunnel *t, Stream *s, int error);

/* Bytes moved from a to b, and from b to a. */
uint64_t tunnel_bytes_a_to_b(const Tunnel *t);
uint64_t tunnel_bytes_b_to_a(const Tunnel *t);
