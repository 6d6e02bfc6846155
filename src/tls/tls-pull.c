/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "tls/tls-pull.h"

/* One per thread: every read of a loop runs to its end (tls_pull_settle) before the next. */
static __thread char ahead[TLS_PULL_AHEAD];

static ssize_t pull_fail(TlsPull *p, int error)
{
        gnutls_transport_set_errno(p->session, error);
        errno = error;
        return -1;
}

static ssize_t pull(gnutls_transport_ptr_t ptr, void *data, size_t size)
{
        TlsPull *p = ptr;

        if (p->len > 0) {
                size_t n = size < p->len ? size : p->len;
                memcpy(data, p->buf + p->at, n);
                p->at += n;
                p->len -= n;
                if (p->len == 0 && p->buf != ahead) {
                        free(p->buf);
                        p->buf = NULL;
                }
                return (ssize_t)n;
        }
        if (p->drained)
                return pull_fail(p, EAGAIN);

        /* A large ask (the body of a big record) goes straight to GnuTLS's buffer. */
        bool direct = size >= sizeof(ahead);
        char *to = direct ? data : ahead;
        size_t want = direct ? size : sizeof(ahead);
        ssize_t n = recv(p->fd, to, want, 0);
        if (n < 0) {
                if (errno == EAGAIN)
                        p->drained = true;
                return pull_fail(p, errno);
        }
        p->drained = (size_t)n < want;
        if (direct || n == 0)
                return n;

        size_t give = size < (size_t)n ? size : (size_t)n;
        memcpy(data, ahead, give);
        p->buf = ahead;
        p->at = give;
        p->len = (size_t)n - give;
        return (ssize_t)give;
}

/* GnuTLS asks this before a read only when a handshake or record timeout is set, which these
 * sessions leave indefinite; it must exist all the same. "Data may be there" is always a safe
 * answer for a non-blocking session: pull() then says EAGAIN when there is none, where "none"
 * would be taken as a timeout, a fatal error. */
static int pull_timeout(gnutls_transport_ptr_t ptr, unsigned ms)
{
        return 1;
}

void tls_pull_attach(TlsPull *p, gnutls_session_t session, int fd)
{
        *p = (TlsPull){ .fd = fd, .session = session };
        gnutls_transport_set_ptr2(session, p, (gnutls_transport_ptr_t)(intptr_t)fd);
        gnutls_transport_set_pull_function(session, pull);
        gnutls_transport_set_pull_timeout_function(session, pull_timeout);
}

void tls_pull_rearm(TlsPull *p)
{
        p->drained = false;
}

int tls_pull_settle(TlsPull *p)
{
        if (p->buf != ahead)
                return 0;
        if (p->len == 0) {
                p->buf = NULL;
                p->at = 0;
                return 0;
        }
        char *own = malloc(p->len);
        if (!own) {
                p->buf = NULL;
                p->at = p->len = 0;
                return -ENOMEM;
        }
        memcpy(own, ahead + p->at, p->len);
        p->buf = own;
        p->at = 0;
        return 0;
}

bool tls_pull_pending(const TlsPull *p)
{
        return p->len > 0;
}

void tls_pull_done(TlsPull *p)
{
        if (p->buf != ahead)
                free(p->buf);
        *p = (TlsPull){ .fd = -1 };
}
