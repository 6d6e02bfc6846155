/* SPDX-License-Identifier: MIT */
#pragma once

/* A client connection: reads request heads, hands each request to an Exchange, one at a time in
 * order (pipelined requests wait in the input buffer), and keeps the connection alive between
 * them. It speaks only to its client; the upstream side is the exchange's. */

#include <stdbool.h>
#include <sys/socket.h>

#include "base/util.h"
#include "net/stream.h"

typedef struct Worker Worker;
typedef struct Exchange Exchange;
typedef struct ClientConn ClientConn;
typedef struct Listener Listener;

typedef enum ClientState {
        CLIENT_NEW,       /* accepted, no byte of a request yet: header timeout from accept */
        CLIENT_IDLE,      /* between requests: keep-alive timeout */
        CLIENT_HEAD,      /* part of a head arrived: header timeout */
        CLIENT_OUT_FULL,  /* responses wait for the client to read them: no request is read */
        CLIENT_BUSY,      /* an exchange runs */
        CLIENT_CLOSING,   /* flushing the last response, then lingering */
        CLIENT_LINGERING, /* write side shut; reading and discarding until EOF or a timer */
} ClientState;

struct ClientConn {
        Stream stream;
        struct event timer;
        struct event resume; /* the next turn, after the loop served other connections */
        bool *gone;          /* inside client_process: set when the connection is freed */
        Worker *worker;
        ClientConn *prev, *next; /* the worker's list */
        Exchange *exchange;
        ClientState state;
        const Listener *listener;  /* accepted on; open as long as the daemon runs */
        bool https;                /* the listener terminates TLS (X-Forwarded-Proto) */
        bool tls_counted;          /* its handshake is in the metrics */
        bool said_last;            /* the client sent all of a request it said was its last
                                    * (Connection: close, or HTTP/1.0 without keep-alive) */
        bool http10;               /* its current request is HTTP/1.0 (its exchange reads it) */
        unsigned requests;
        char peer[SOCKADDR_STR_MAX]; /* "ip:port" */
        uint8_t peer_ip_len;         /* the ip part of `peer`, brackets excluded */
        uint8_t peer_ip_offset;
};

/* Takes `fd`, an accepted connection on `l`. */
int client_conn_new(Worker *w, int fd, const struct sockaddr *peer, const Listener *l);
void client_conn_free(ClientConn *c);

/* The exchange is over (it detached itself): serve the next request, or close when
 * `keep_alive` is false. */
void client_conn_exchange_done(ClientConn *c, bool keep_alive);

/* Sends a complete local response (status page) and closes after it when `close`. */
void client_conn_respond(ClientConn *c, unsigned status, const char *text, bool close);

/* Closes at once (an abort: any response in progress is cut). */
void client_conn_abort(ClientConn *c);

/* The same, with a reset rather than a FIN: for a response delimited by the close, whose cut
 * end a FIN would make look whole. */
void client_conn_abort_reset(ClientConn *c);

/* Arms or disarms the client timer while an exchange waits on this client. */
void client_conn_set_timer(ClientConn *c, uint64_t usec);

/* Worker shutdown: idle connections close now, busy ones after their exchange. */
void client_conn_stop(ClientConn *c);
