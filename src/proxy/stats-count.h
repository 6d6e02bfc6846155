/* SPDX-License-Identifier: MIT */
#pragma once

/* What a worker counts for the metrics, into its own stats table (lb/stats.h): each a lookup
 * in that table and a few adds, on the worker's thread. Nothing is counted by a worker without
 * counter blocks (a unit test's). */

#include <stdbool.h>
#include <stdint.h>

typedef struct Worker Worker;
typedef struct Exchange Exchange;
typedef struct ClientConn ClientConn;
typedef struct Node Node;

/* An HTTP exchange ended (answered, failed with a status page, cut, or abandoned by the client):
 * its status by route, upstream and node, its duration and bytes. A stream session: by
 * listener and upstream. */
void stats_count_exchange(Exchange *x);
/* A request refused before it had an exchange (malformed, too large): lbproxy answered. */
void stats_count_refused(ClientConn *c, unsigned status);
/* A client connection accepted on, or closed from, the listener. */
void stats_count_client(ClientConn *c, bool closed);
/* A connect to `n` that succeeded (usec: its time, TLS handshake included) or failed. */
void stats_count_connect(Worker *w, const Node *n, bool ok, uint64_t usec);
/* A request on a pooled connection to `n`. */
void stats_count_reused(Worker *w, const Node *n);
/* A TLS handshake ended: with a client (`server`) or a node, a full one (0), a resumption (1)
 * or a failure (-1). */
void stats_count_tls(Worker *w, bool server, int outcome);
/* The first byte of `n`'s response, usec after the request went to it. */
void stats_count_first_byte(Worker *w, const Node *n, uint64_t usec);
