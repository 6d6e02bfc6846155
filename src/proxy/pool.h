/* SPDX-License-Identifier: MIT */
#pragma once

/* Idle keep-alive connections to upstreams, per worker, keyed by scheme, TLS policy id, SNI and
 * address (NodeAddress.pool_key), so a connection serves only requests that would have opened the
 * same one. An idle connection keeps reading so that a close or stray bytes from the peer retire
 * it at once. */

#include <stddef.h>
#include <stdint.h>

typedef struct Pool Pool;
typedef struct UpstreamConn UpstreamConn;
typedef struct Worker Worker;

Pool *pool_new(Worker *w);
Pool *pool_free(Pool *p);

/* Takes an idle connection for `key`, or NULL. The caller owns it and must set its handler
 * before returning to the loop (it is still reading). */
UpstreamConn *pool_take(Pool *p, const char *key, size_t key_len, uint64_t key_hash);

/* Gives a connection back after a complete exchange. Keeps it when its key has fewer than `max`
 * idle ones, for at most `idle_usec`; frees it otherwise. */
void pool_put(Pool *p, UpstreamConn *c, unsigned max, uint64_t idle_usec);

size_t pool_size(const Pool *p);
