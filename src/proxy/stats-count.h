/* SPDX-License-Identifier: MIT */
#pragma once

/* What a worker counts for the metrics, into its own stats table (lb/stats.h): each a lookup
 * in that table and a few adds, on the worker's thread. Nothing is counted by a worker without
 * counter blocks (a unit test's). */

#include <stdbool.h>
#include <stdint.h>

#include "lb/stats.h"

typedef struct Worker Worker;
typedef struct Exchange Exchange;
typedef struct ClientConn ClientConn;
typedef struct Node Node;

/* An HTTP exchange ended (answered, failed with a status page, cut, or abandoned by the client)
 * at `now_usec`: its status by route, upstream and node, its duration and bytes. A stream
 * session: by listener and upstream. */
void stats_count_exchange(Exchange *x, uint64_t now_usec);
/* A request refused before it had an exchange (malformed, too large): lbproxy answered. */
void stats_count_refused(ClientConn *c, unsigned status);
/* A client connection accepted on, or closed from, the listener. */
void stats_count_client(ClientConn *c, bool closed);
/* The cells of node `n` (STATS_NODE) in the worker's table, looked up once per attempt; NULL
 * when the worker does not count. */
atomic_uint_fast64_t *stats_node_cells(Worker *w, const Node *n);
/* A connect to the node that succeeded (usec: its time, TLS handshake included) or failed. */
void stats_count_connect(Worker *w, atomic_uint_fast64_t *node, bool ok, uint64_t usec);
/* A request on a pooled connection to the node. */
static inline void stats_count_reused(atomic_uint_fast64_t *node)
{
        if (node)
                stats_add(node, STATS_NODE_REUSED, 1);
}
/* A TLS handshake ended: with a client (`server`) or a node, a full one (0), a resumption (1)
 * or a failure (-1). */
void stats_count_tls(Worker *w, bool server, int outcome);
/* The first byte of the node's response, usec after the request went to it. */
void stats_count_first_byte(Worker *w, atomic_uint_fast64_t *node, uint64_t usec);
