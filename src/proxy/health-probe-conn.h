/* SPDX-License-Identifier: MIT */
#pragma once

/* The connection of one probe target, and the checks made over it: a non-blocking connect to one
 * address (with a TLS handshake when given a TlsClient), then, for an HTTP check, one request
 * and the status line of its answer. Each check is bounded in time by one deadline (connect and
 * answer together) and its head in bytes by PROBE_HEAD_MAX.
 *
 * An HTTP check's connection is kept for the next check when the server keeps it (HTTP/1.1
 * keep-alive), the answer's body could be read to its end, and the caller says the next check
 * comes soon enough (ProbeSpec.keep_alive): then a check is one request, one answer and no
 * handshake, a third of the CPU of a new connection. It is not kept past
 * PROBE_KEEPALIVE_IDLE_MAX idle (servers drop idle connections after a few seconds, and a
 * request that crosses the server's close would fail for nothing), nor past
 * PROBE_KEEPALIVE_AGE_MAX in all: a kept connection shows that the server answers, not that it
 * still accepts new connections (a full listen backlog or conntrack table, a listener gone, a
 * broken TLS handshake), which is why HAProxy and APISIX connect for every check; lbproxy does
 * at least every PROBE_KEEPALIVE_AGE_MAX, and after any failure, so a server that stopped
 * accepting is found within that plus the usual thresholds. A kept TLS connection the server
 * closes while idle is closed quietly; one it closes as the request comes is `stale` (not a
 * failure).
 *
 * A plain check (http, tcp) runs on a bare socket and moves on at the steps of the prober's
 * wheel: what it started at one step (a connect, a request) is looked at, with one syscall, at
 * the next, by when most are done; only what is not is watched by epoll. An http check on a
 * kept connection is then one send and one recv, from and into fixed bytes, and no wake-up of
 * its own. A kept plain connection is not watched while idle: a server's close is found as the
 * next request goes (a new connection then, or `stale`). A TLS check runs on a Stream.
 *
 * A tcp check is a connect, a new one each time, and as few syscalls as make one: connect, one
 * getsockopt at the next step that finds it established, and connect(AF_UNSPEC), which resets
 * it and leaves the socket for the next check's connect (a socket whose check failed is closed
 * and the next gets a new one).
 *
 * Between health-probe.c, which schedules checks, and nothing else. */

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct TlsClient TlsClient;
typedef struct Probe Probe;
typedef struct ProbeWheel ProbeWheel;

/* The most of an answer read for its head: a status line and headers this long is plenty. */
#define PROBE_HEAD_MAX (16 * 1024)
/* The largest body read to its end so that the connection can be kept; past it, closed. */
#define PROBE_BODY_MAX (64 * 1024)
/* Below the idle timeouts of the servers that keep theirs short (Apache httpd's and Node.js's
 * 5 s), above the default intervals (1-2 s). */
#define PROBE_KEEPALIVE_IDLE_MAX (4 * USEC_PER_SEC)
#define PROBE_KEEPALIVE_AGE_MAX (120 * USEC_PER_SEC)
/* Checks start on a grid of this step (health-probe-wheel.c), and a tcp check's connect is
 * looked at the next step after it started: those of a step share the loop's wake-ups. */
#define PROBE_TICK_USEC (10 * USEC_PER_MSEC)

typedef struct ProbeSpec {
        const struct sockaddr *sa;
        socklen_t sa_len;
        TlsClient *tls;          /* NULL: plain TCP */
        const char *server_name; /* SNI and the name verified, with tls */
        const char *session_key; /* where its TLS session is kept for resuming */
        const char *request;     /* the request to send; NULL: a tcp check (connect only) */
        size_t request_len;
        /* The request asks for keep-alive, and the next check comes within
         * PROBE_KEEPALIVE_IDLE_MAX: keep the connection for it. Else the request says
         * `Connection: close` and the connection ends with the check. */
        bool keep_alive;
        uint64_t timeout_usec;
} ProbeSpec;

typedef struct ProbeResult {
        /* 0, -ETIMEDOUT (the timer), -EBADMSG (not an HTTP answer), -EMSGSIZE (its head too
         * long), -ECONNRESET (closed before the head), or how the connect or TLS failed. */
        int error;
        unsigned status; /* HTTP checks without error */
        bool resumed;    /* its TLS session was resumed */
        /* A kept connection was closed by the server before any of the answer came (it closed
         * an idle connection as the request went out): not a verdict on the node. The
         * connection is gone; the caller starts the check again, on a new one. */
        bool stale;
        const char *detail; /* why, or NULL: valid during the done callback only */
} ProbeResult;

/* Called once per check. The callee may free the Probe inside, or start the next check. */
typedef void (*ProbeDone)(Probe *p, const ProbeResult *r, void *userdata);

/* `wheel` (on `base`) gives a plain check its steps. */
int probe_new(struct event_base *base, ProbeWheel *wheel, ProbeDone done, void *userdata,
              Probe **ret);
/* Starts a check (none may be running): on the connection kept from the last one when there is
 * one fit for it, else on a new one. `spec` is read here only. */
int probe_start(Probe *p, const ProbeSpec *spec);
/* What the connection was made for changed (address, TLS, request): a kept one is closed, a
 * running check's is not kept. */
void probe_forget(Probe *p);
/* Ends the running check (without calling back) and the connection. */
Probe *probe_free(Probe *p);
