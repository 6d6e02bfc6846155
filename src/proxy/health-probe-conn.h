/* SPDX-License-Identifier: MIT */
#pragma once

/* One active health probe: a non-blocking connect to one address (with a TLS handshake when
 * given a TlsClient), then, for an HTTP check, one request and the status line of its answer.
 * Bounded in time by one timer (connect and answer together) and in bytes by PROBE_HEAD_MAX.
 * Between health-probe.c, which schedules probes, and nothing else. */

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct TlsClient TlsClient;
typedef struct Probe Probe;

/* The most of an answer read for its head: a status line and headers this long is plenty. */
#define PROBE_HEAD_MAX (16 * 1024)

typedef struct ProbeSpec {
        const struct sockaddr *sa;
        socklen_t sa_len;
        TlsClient *tls;          /* NULL: plain TCP */
        const char *server_name; /* SNI and the name verified, with tls */
        const char *session_key; /* where its TLS session is kept for resuming */
        const char *request;     /* the request to send; NULL: a tcp check (connect only) */
        size_t request_len;
        uint64_t timeout_usec;
} ProbeSpec;

typedef struct ProbeResult {
        /* 0, -ETIMEDOUT (the timer), -EBADMSG (not an HTTP answer), -EMSGSIZE (its head too
         * long), -ECONNRESET (closed before the head), or how the connect or TLS failed. */
        int error;
        unsigned status; /* HTTP checks without error */
        bool resumed;    /* its TLS session was resumed */
        const char *detail; /* a static reason, or NULL */
} ProbeResult;

/* Called once per probe, which the callee may (and must, at some point) free inside. */
typedef void (*ProbeDone)(Probe *p, const ProbeResult *r, void *userdata);

int probe_start(struct event_base *base, const ProbeSpec *spec, ProbeDone done, void *userdata,
                Probe **ret);
Probe *probe_free(Probe *p);
