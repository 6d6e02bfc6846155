/* SPDX-License-Identifier: MIT */
#pragma once

/* A Probe's insides, shared by health-probe-conn.c (the checks, their results, what both kinds
 * of connection share), health-probe-step.c (a check moving on at the wheel's steps: the answer
 * looked for, and watched for only when not there), health-probe-plain.c (the connect and the
 * request of a plain check, on a bare socket) and health-probe-tls.c (those of a TLS check, on a
 * Stream). Nothing else includes it. */

#include <event2/event.h>
#include <event2/event_struct.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "http/http1.h"
#include "net/stream.h"
#include "proxy/health-probe-conn.h"
#include "proxy/health-probe-wheel.h"

typedef enum ConnState {
        CONN_NONE,
        CONN_CONNECT,   /* plain: connect() called, looked at on the steps */
        CONN_SEND,      /* plain: connected, the request not all sent */
        CONN_HANDSHAKE, /* TLS: the Stream's connect and handshake, under the Probe's timer */
        CONN_HEAD,      /* the request sent (TLS: given to the Stream), its answer's head looked
                           for on the steps */
        CONN_BODY,      /* the head read (the check is over), its body read to its end */
        CONN_IDLE,      /* kept for the next check, not watched */
} ConnState;

struct Probe {
        struct event_base *base;
        ProbeWheel *wheel;
        ProbeDone done;
        void *userdata;
        ConnState state;
        bool running;  /* a check runs: its callback is still to come */
        bool http;
        bool keep;     /* this check's connection may be kept */
        bool reused;   /* this check runs on a kept connection */
        bool tls;      /* the connection is a Stream's */
        char *request; /* a copy of the spec's, made when it changes */
        size_t request_len;
        uint64_t deadline_usec;
        HttpBody body;
        uint64_t body_left;
        HttpChunked chunked;
        uint64_t opened_usec, idle_usec;
        /* TLS */
        struct event timer; /* the deadline of a check's connect and handshake */
        int pending_error;  /* the connect failed at once: said at once (TLS: by the timer) */
        Stream stream;
        /* Plain */
        int fd;
        int fd_family;
        int spare_fd;       /* a tcp check's socket, disconnected, for the next connect */
        int spare_family;
        bool in_connects;   /* fd (spare_fd) is in the wheel's set of connects */
        uint32_t connect_events; /* what that set said of it in this check, or 0 */
        size_t sent;        /* of the request, in CONN_SEND */
        /* Either, on the steps */
        ProbeWheelEntry step; /* the next step's look */
        struct event ev;      /* the socket watched by epoll: what a step found not ready yet */
        bool watched;
        char *partial;      /* a head that came in parts so far (PROBE_HEAD_MAX + 1) */
        size_t partial_len;
        size_t received;    /* of this check's answer */
};


/* Ends the connection (a reset unless the server closed first). */
void probe_close_conn(Probe *p);
/* Stops epoll watching the check's socket. */
void probe_unwatch(Probe *p);
/* Reports the check's result, the connection kept or not; `p` may be gone after. */
void probe_finish(Probe *p, const ProbeResult *r, bool keep);
void probe_fail(Probe *p, int error, const char *detail);
/* An answer's head in buf[0..len): its length (> 0), or 0 when more is needed; or the check
 * failed, said (the Probe may be gone): -1. `eof`: no more comes. */
ssize_t probe_parse_head(Probe *p, const char *buf, size_t len, bool eof, HttpHead *head);
/* Whether the connection can be kept after an answer with this head. */
bool probe_keepable(const Probe *p, const HttpHead *head);
void probe_body_start(Probe *p, const HttpHead *head);
/* Feeds bytes of the body: 1 when they end it exactly, 0 when more is to come, -1 when the
 * connection is not to be kept. */
int probe_body_feed(Probe *p, const char *data, size_t len);
/* The body ended: the connection waits for the next check. */
void probe_went_idle(Probe *p);

/* ---- the steps (health-probe-step.c) ---- */

/* The next look at the next step of the wheel. */
void probe_next_step(Probe *p);
/* Not ready when looked at: epoll says when (EV_READ, EV_WRITE), within what is left of the
 * check's deadline. */
void probe_wait(Probe *p, short what);
/* A step's look at the check (ProbeWheelEntry.due). */
void probe_on_step(ProbeWheelEntry *e);
/* The request went (all of it, or into the Stream's output): the answer is looked for at the
 * next step. */
void probe_sent(Probe *p);

/* ---- the connections ---- */

/* A new connection for the check (plain or TLS); an immediate failure of the connect is the
 * check's result, said later like any other. */
int probe_plain_open(Probe *p, const ProbeSpec *spec);
int probe_tls_open(Probe *p, const ProbeSpec *spec);
/* The kept connection, idle and fit for it, takes the request: false when it cannot (the
 * caller closes it). */
bool probe_plain_reuse(Probe *p);
bool probe_tls_reuse(Probe *p);
/* A plain check's steps before its answer: its connect (CONN_CONNECT), its request
 * (CONN_SEND). */
void probe_plain_connected(Probe *p);
void probe_plain_send(Probe *p);
/* The connection's socket. */
static inline int probe_fd(const Probe *p)
{
        return p->tls ? p->stream.fd : p->fd;
}
