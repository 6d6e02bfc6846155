/* SPDX-License-Identifier: MIT */
#pragma once

/* What GnuTLS reads from the socket. Left to itself, GnuTLS reads a record in two recv() calls
 * (its 5-byte header, then the rest) and then a third that finds the socket empty: three system
 * calls for a small response. Here one recv() takes up to TLS_PULL_AHEAD bytes into a buffer
 * the thread shares, GnuTLS is served from it, and a short recv() means the socket is empty:
 * later pulls say EAGAIN without asking the kernel, until the loop sees the socket readable
 * again (epoll is level-triggered, so nothing is missed). Bytes still unread when the caller
 * leaves (a partial record, or records behind a full input buffer) move to a buffer of the
 * connection's own; an idle connection holds none. */

#include <gnutls/gnutls.h>
#include <stdbool.h>
#include <stddef.h>

/* Enough for a small response's records in one read; a larger record is read straight into
 * GnuTLS's buffer, so bulk data is never copied more than this per record. */
#define TLS_PULL_AHEAD 4096

typedef struct TlsPull {
        int fd;
        gnutls_session_t session;
        char *buf;     /* the thread's buffer while a read is running, else own or NULL */
        size_t at, len; /* unread bytes: buf[at .. at+len) */
        bool drained;  /* the last recv() came back short */
} TlsPull;

/* Makes GnuTLS read `fd` through `p` (writes still go straight to `fd`). */
void tls_pull_attach(TlsPull *p, gnutls_session_t session, int fd);
/* Before GnuTLS is asked to read, at a readiness event: the socket is worth a recv() again. */
void tls_pull_rearm(TlsPull *p);
/* After GnuTLS was asked to read: what is left unread leaves the thread's buffer. Returns 0 or
 * -ENOMEM. */
int tls_pull_settle(TlsPull *p);
/* Bytes taken off the socket that GnuTLS has not read: epoll will not signal them. */
bool tls_pull_pending(const TlsPull *p);
/* GnuTLS can read nothing more now: every byte taken off the socket was given to it, and the
 * last recv() came back short (so the next pull says EAGAIN). */
static inline bool tls_pull_exhausted(const TlsPull *p)
{
        return p->len == 0 && p->drained;
}
void tls_pull_done(TlsPull *p);
