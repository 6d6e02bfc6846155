/* SPDX-License-Identifier: MIT */
#pragma once

/* One request's journey: route, balance, upstream connection, request forwarded, response
 * streamed back, one journal entry. It sits between the client connection and the upstream
 * connection, so each of those speaks only to its own peer. */

#include "http/http1.h"

typedef struct ClientConn ClientConn;
typedef struct Exchange Exchange;
typedef struct Worker Worker;

/* Starts serving the request whose parsed head `h` lies at the start of the client's input
 * buffer. The head bytes are consumed. Returns 0 when the exchange runs (c->exchange set), or
 * 1 when it was answered at once (c->exchange NULL, client_conn_exchange_done already called). */
int exchange_start(ClientConn *c, const HttpHead *h);

/* Starts a stream session for a connection of a tcp or tls-passthrough listener. Returns 0
 * when it runs, 1 when it ended at once (the connection is closed), or -EAGAIN when a
 * passthrough connection has not sent its whole ClientHello yet. */
int exchange_start_stream(ClientConn *c);

/* Frees the exchanges a worker keeps for reuse; at its end, on its thread. */
void exchange_spares_free(Worker *w);

/* The client side moved: input arrived (or ended), or output drained. */
void exchange_on_client_read(Exchange *x);
void exchange_on_client_drain(Exchange *x);
/* The client connection failed or timed out: the exchange ends without a response. */
void exchange_abort(Exchange *x, const char *why);
