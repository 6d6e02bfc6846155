/* SPDX-License-Identifier: MIT */
/* The GnuTLS glue: a TLS session as a StreamTransport, the client side (towards upstreams) and
 * the server side (https listeners). GnuTLS's non-blocking quirks (retrying a send with the same
 * data, records it buffered that epoll does not signal, session tickets that arrive after the
 * handshake, the ticket key chosen from the ClientHello) stay in this file. */
#include <arpa/inet.h>
#include <assert.h>

#include "base/util.h"
#include "tls/tls-pull.h"
#include "tls/tls-stream.h"

/* One TLS record's worth of plaintext: a write is cut into records of this size, and a read
 * reserves this much at a time. */
#define TLS_RECORD_MAX 16384

#define TLS_STREAM_MAGIC 0x544c5353u /* "TLSS": checked on pointers GnuTLS hands back */

typedef struct TlsStream {
        unsigned magic;
        gnutls_session_t session;
        TlsPull pull; /* what GnuTLS reads goes through here */
        TlsClient *client; /* a reference: the upstream may be retired while this idles */
        TlsServer *server; /* the server side: a reference, as `client` */
        uint64_t ticket_key; /* server: the id of the ticket key the session uses; 0 = none */
        char *server_name; /* GnuTLS keeps the pointer for verification */
        char *cache_key;
        /* Plaintext bytes of a gnutls_record_send() that returned GNUTLS_E_AGAIN: still at the
         * head of s->out, and GnuTLS wants the same send again before anything else. */
        size_t send_pending;
        /* An end of input (1) or an error (< 0) met after a read had bytes to return: the next
         * read reports it. */
        int deferred;
        bool ended; /* input is over: reads return 0 */
        bool handshake_done;
        bool said_goodbye; /* close_notify sent */
        bool failed; /* a fatal error: no close_notify at the end */
        bool resumed;
        char detail[256];
} TlsStream;

static TlsStream *tls_stream_of(Stream *s)
{
        TlsStream *t = s->transport_data;
        assert(s->transport == &tls_transport);
        assert(t && t->magic == TLS_STREAM_MAGIC);
        return t;
}

static bool is_ip_literal(const char *name)
{
        unsigned char buf[sizeof(struct in6_addr)];
        return inet_pton(AF_INET, name, buf) == 1 || inet_pton(AF_INET6, name, buf) == 1;
}

/* GnuTLS error → negative errno, keeping GnuTLS's words in the detail. */
static int fail(TlsStream *t, int gnutls_error, const char *what)
{
        t->failed = true;
        if (gnutls_error == GNUTLS_E_FATAL_ALERT_RECEIVED) {
                const char *alert = gnutls_alert_get_name(gnutls_alert_get(t->session));
                snprintf(t->detail, sizeof(t->detail), "%s: the %s sent the alert '%s'", what,
                         t->server ? "client" : "server", alert ? alert : "unknown");
        } else
                snprintf(t->detail, sizeof(t->detail), "%s: %s", what,
                         gnutls_strerror(gnutls_error));

        switch (gnutls_error) {
        case GNUTLS_E_PUSH_ERROR:
        case GNUTLS_E_PULL_ERROR:
        case GNUTLS_E_PREMATURE_TERMINATION:
                return -ECONNRESET;
        case GNUTLS_E_MEMORY_ERROR:
                return -ENOMEM;
        default:
                return -EPROTO;
        }
}

/* The post-handshake NewSessionTicket of TLS 1.3: only now is there something to resume. */
static int on_new_session_ticket(gnutls_session_t session, unsigned htype, unsigned when,
                                 unsigned incoming, const gnutls_datum_t *msg)
{
        TlsStream *t = gnutls_session_get_ptr(session);
        assert(t && t->magic == TLS_STREAM_MAGIC);

        if (htype != GNUTLS_HANDSHAKE_NEW_SESSION_TICKET || when != GNUTLS_HOOK_POST || !incoming)
                return 0;
        gnutls_datum_t d = {};
        if (gnutls_session_get_data2(session, &d) >= 0) {
                (void)tls_client_cache_put(t->client, t->cache_key, d.data, d.size);
                gnutls_free(d.data);
        }
        return 0; /* a failure to cache must not fail the connection */
}

/* One record's plaintext into buf[0..want), past what ends no read (warnings, a TLS 1.2
 * renegotiation request, which is ignored, and a post-handshake message with records read ahead
 * behind it): > 0 bytes, 0 at the end of input, -EAGAIN, or a negative errno. */
static ssize_t recv_record(TlsStream *t, void *buf, size_t want)
{
        for (;;) {
                size_t before = t->pull.len;
                ssize_t n = gnutls_record_recv(t->session, buf, want);
                if (n > 0)
                        return n;
                if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
                        /* GnuTLS returns after a post-handshake message (a TLS 1.3 session
                         * ticket, a KeyUpdate) even when the next record is already read
                         * ahead, which epoll will not signal: go on while it takes bytes. */
                        if (t->pull.len > 0 && t->pull.len != before)
                                continue;
                        return -EAGAIN;
                }
                if (n == 0 || n == GNUTLS_E_PREMATURE_TERMINATION) {
                        /* HTTP frames its messages, so a close without close_notify cuts
                         * nothing the framing would not notice. */
                        t->ended = true;
                        return 0;
                }
                if (n != GNUTLS_E_REHANDSHAKE && gnutls_error_is_fatal((int)n))
                        return fail(t, (int)n, "TLS read failed");
        }
}

/* Records while they come, at most `max` bytes: into `to`, or into s->in when it is NULL. An
 * end or an error met after bytes is held back for the next read. */
static ssize_t read_records(Stream *s, TlsStream *t, char *to, size_t max)
{
        size_t got = 0;

        while (got < max) {
                size_t want = max - got < TLS_RECORD_MAX ? max - got : TLS_RECORD_MAX;
                struct evbuffer_iovec v = { .iov_base = to ? to + got : NULL };
                if (!to && evbuffer_reserve_space(s->in, (ev_ssize_t)want, &v, 1) < 1)
                        return got > 0 ? (ssize_t)got : -ENOMEM;

                ssize_t n = recv_record(t, v.iov_base, want);
                if (n > 0) {
                        if (!to) {
                                v.iov_len = (size_t)n;
                                evbuffer_commit_space(s->in, &v, 1);
                        }
                        got += (size_t)n;
                        /* GnuTLS reads a record whole before it returns any of it, so with
                         * nothing left to give it and none of a record's plaintext kept back,
                         * another call could only say GNUTLS_E_AGAIN: not made. */
                        if (tls_pull_exhausted(&t->pull) &&
                            gnutls_record_check_pending(t->session) == 0)
                                break;
                        continue;
                }
                if (got == 0)
                        return n;
                if (n != -EAGAIN)
                        t->deferred = n == 0 ? 1 : (int)n;
                break;
        }
        return (ssize_t)got;
}

/* Into `to`, or into s->in when it is NULL. */
static ssize_t tls_read_to(Stream *s, char *to, size_t max)
{
        TlsStream *t = tls_stream_of(s);

        if (t->deferred) {
                int r = t->deferred;
                t->deferred = 0;
                return r > 0 ? 0 : r;
        }
        if (t->ended)
                return 0;

        tls_pull_rearm(&t->pull);
        ssize_t n = read_records(s, t, to, max);
        if (tls_pull_settle(&t->pull) < 0)
                return n > 0 ? (t->deferred = -ENOMEM, n) : -ENOMEM;
        return n;
}

static ssize_t tls_read(Stream *s, size_t max)
{
        return tls_read_to(s, NULL, max);
}

static ssize_t tls_read_into(Stream *s, void *buf, size_t len)
{
        return tls_read_to(s, buf, len);
}

static ssize_t tls_write(Stream *s)
{
        TlsStream *t = tls_stream_of(s);
        size_t sent = 0;

        for (;;) {
                ssize_t n;

                if (t->send_pending > 0)
                        /* GnuTLS holds the encrypted record: NULL, 0 sends it again. */
                        n = gnutls_record_send(t->session, NULL, 0);
                else {
                        size_t len = evbuffer_get_length(s->out);
                        if (len == 0)
                                break;
                        if (len > TLS_RECORD_MAX)
                                len = TLS_RECORD_MAX;
                        /* Pieces of a head go out as one record, not a record each; large
                         * bodies already sit in chunks this long, so this rarely copies. */
                        const unsigned char *p = evbuffer_pullup(s->out, (ev_ssize_t)len);
                        if (!p)
                                return sent > 0 ? (ssize_t)sent : -ENOMEM;
                        t->send_pending = len;
                        n = gnutls_record_send(t->session, p, len);
                }
                if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
                        return sent > 0 ? (ssize_t)sent : -EAGAIN;
                t->send_pending = 0;
                if (n < 0)
                        return fail(t, (int)n, "TLS write failed");
                evbuffer_drain(s->out, (size_t)n);
                sent += (size_t)n;
        }
        return (ssize_t)sent;
}

static ssize_t tls_write_from(Stream *s, const void *data, size_t len)
{
        TlsStream *t = tls_stream_of(s);
        size_t sent = 0;

        assert(t->send_pending == 0);
        while (sent < len) {
                size_t n_record = len - sent < TLS_RECORD_MAX ? len - sent : TLS_RECORD_MAX;
                ssize_t n = gnutls_record_send(t->session, (const char *)data + sent, n_record);
                if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
                        /* GnuTLS holds the record now, and sends it when asked again, as
                         * tls_write() does for what heads s->out with send_pending. */
                        if (evbuffer_add(s->out, (const char *)data + sent, n_record) < 0)
                                return fail(t, GNUTLS_E_MEMORY_ERROR, "TLS write failed");
                        t->send_pending = n_record;
                        break;
                }
                if (n < 0)
                        return fail(t, (int)n, "TLS write failed");
                sent += (size_t)n;
        }
        return (ssize_t)sent;
}

/* After the handshake: TLS 1.2 data is complete now (TLS 1.3 tickets come later, see
 * on_new_session_ticket). */
static void store_session(TlsStream *t)
{
        if (!t->client || gnutls_protocol_get_version(t->session) == GNUTLS_TLS1_3)
                return;
        gnutls_datum_t d = {};
        if (gnutls_session_get_data2(t->session, &d) >= 0) {
                (void)tls_client_cache_put(t->client, t->cache_key, d.data, d.size);
                gnutls_free(d.data);
        }
}

static int verify_failure(TlsStream *t)
{
        unsigned status = gnutls_session_get_verify_cert_status(t->session);
        gnutls_datum_t text = {};

        t->failed = true;
        if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &text, 0) < 0)
                snprintf(t->detail, sizeof(t->detail),
                         "certificate verification failed for '%s' (status 0x%x)",
                         t->server_name ? t->server_name : "", status);
        else {
                size_t len = text.size;
                while (len > 0 && (text.data[len - 1] == ' ' || text.data[len - 1] == '\0'))
                        len--;
                snprintf(t->detail, sizeof(t->detail),
                         "certificate verification failed for '%s': %.*s",
                         t->server_name ? t->server_name : "", (int)len,
                         (const char *)text.data);
        }
        gnutls_free(text.data);
        return -EKEYREJECTED;
}

static int tls_handshake(Stream *s)
{
        TlsStream *t = tls_stream_of(s);
        int r;

        tls_pull_rearm(&t->pull);
        do
                r = gnutls_handshake(t->session);
        while (r < 0 && r != GNUTLS_E_AGAIN && r != GNUTLS_E_INTERRUPTED &&
               !gnutls_error_is_fatal(r));
        if (tls_pull_settle(&t->pull) < 0)
                return fail(t, GNUTLS_E_MEMORY_ERROR, "TLS handshake failed");

        if (r == GNUTLS_E_SUCCESS) {
                t->handshake_done = true;
                t->resumed = gnutls_session_is_resumed(t->session);
                store_session(t);
                return 0;
        }
        if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
                s->want_write_io = gnutls_record_get_direction(t->session) == 1;
                return -EAGAIN;
        }
        if (r == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR)
                return verify_failure(t);
        return fail(t, r, "TLS handshake failed");
}

static bool tls_has_pending(Stream *s)
{
        TlsStream *t = tls_stream_of(s);
        return t->deferred != 0 || gnutls_record_check_pending(t->session) > 0 ||
               tls_pull_pending(&t->pull);
}

static const char *tls_error_detail(Stream *s)
{
        TlsStream *t = tls_stream_of(s);
        return t->detail[0] ? t->detail : NULL;
}

static void tls_stream_free(TlsStream *t)
{
        if (!t)
                return;
        if (t->session)
                gnutls_deinit(t->session);
        tls_pull_done(&t->pull);
        tls_client_free(t->client);
        tls_server_free(t->server);
        free(t->server_name);
        free(t->cache_key);
        t->magic = 0;
        free(t);
}

/* A close_notify when it goes out at once; never waiting for the socket, nor for the peer's
 * answer. Not in the middle of a record, which would corrupt the stream; once only. */
static void tls_say_goodbye(TlsStream *t)
{
        if (t->handshake_done && !t->failed && t->send_pending == 0 && !t->said_goodbye) {
                t->said_goodbye = true;
                (void)gnutls_bye(t->session, GNUTLS_SHUT_WR);
        }
}

static void tls_shutdown_write(Stream *s)
{
        tls_say_goodbye(tls_stream_of(s));
}

static void tls_free(Stream *s)
{
        TlsStream *t = tls_stream_of(s);

        tls_say_goodbye(t);
        tls_stream_free(t);
        s->transport_data = NULL;
}

const StreamTransport tls_transport = {
        .read = tls_read,
        .write = tls_write,
        .read_into = tls_read_into,
        .write_from = tls_write_from,
        .handshake = tls_handshake,
        .has_pending = tls_has_pending,
        .error_detail = tls_error_detail,
        .shutdown_write = tls_shutdown_write,
        .free = tls_free,
};

int tls_client_attach(TlsClient *c, Stream *s, const char *server_name, const char *cache_key)
{
        assert(c);
        assert(s);
        assert(!s->transport);

        TlsStream *t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->magic = TLS_STREAM_MAGIC;
        t->client = tls_client_ref(c);
        t->server_name = server_name ? strdup(server_name) : NULL;
        t->cache_key = strdup(cache_key ? cache_key : "");
        if ((server_name && !t->server_name) || !t->cache_key) {
                tls_stream_free(t);
                return -ENOMEM;
        }

        int r = gnutls_init(&t->session, GNUTLS_CLIENT | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL);
        if (r < 0) {
                t->session = NULL;
                tls_stream_free(t);
                return -ENOMEM;
        }
        gnutls_session_set_ptr(t->session, t);
        r = gnutls_priority_set(t->session, c->priority);
        if (r >= 0)
                r = gnutls_credentials_set(t->session, GNUTLS_CRD_CERTIFICATE, c->credentials);
        if (r >= 0 && t->server_name && !is_ip_literal(t->server_name))
                r = gnutls_server_name_set(t->session, GNUTLS_NAME_DNS, t->server_name,
                                           strlen(t->server_name));
        if (r < 0) {
                tls_stream_free(t);
                return r == GNUTLS_E_MEMORY_ERROR ? -ENOMEM : -EINVAL;
        }
        if (c->verify)
                gnutls_session_set_verify_cert(t->session, t->server_name, 0);
        tls_pull_attach(&t->pull, t->session, s->fd);
        /* The connect timeout of the owner bounds the handshake; GnuTLS's own would only cut
         * a slow but allowed one short. */
        gnutls_handshake_set_timeout(t->session, GNUTLS_INDEFINITE_TIMEOUT);
        gnutls_handshake_set_hook_function(t->session, GNUTLS_HANDSHAKE_NEW_SESSION_TICKET,
                                           GNUTLS_HOOK_POST, on_new_session_ticket);

        void *data;
        size_t size;
        if (tls_client_cache_take(c, t->cache_key, &data, &size) >= 0) {
                /* Stale or foreign data only costs the resumption: a full handshake follows. */
                (void)gnutls_session_set_data(t->session, data, size);
                explicit_bzero(data, size);
                free(data);
        }

        stream_set_transport(s, &tls_transport, t);
        return 0;
}

/* ---- the server side ---- */

/* Sees every handshake message. The ClientHello, before GnuTLS reads it: the session gets the
 * ticket key that can decrypt the ticket offered (see tls-server.c). A NewSessionTicket sent:
 * the key name it starts with is learnt for that key. */
static int on_server_handshake_message(gnutls_session_t session, unsigned htype, unsigned when,
                                       unsigned incoming, const gnutls_datum_t *msg)
{
        TlsStream *t = gnutls_session_get_ptr(session);
        assert(t && t->magic == TLS_STREAM_MAGIC && t->server);
        TlsServer *srv = t->server;
        const unsigned char *name = NULL;

        if (htype == GNUTLS_HANDSHAKE_CLIENT_HELLO && when == GNUTLS_HOOK_PRE && incoming) {
                /* Once: a second hello (after a HelloRetryRequest) keeps the first's key. */
                if (t->ticket_key != 0)
                        return 0;
                if (tls_client_hello_ticket_name(msg->data, msg->size, &name) <= 0)
                        name = NULL; /* a malformed hello is GnuTLS's to refuse */
                unsigned char key[TLS_TICKET_KEY_SIZE];
                uint64_t id = tls_tickets_pick(srv->tickets, now_usec(CLOCK_BOOTTIME),
                                               srv->ticket_rotate_usec, name, key);
                gnutls_datum_t d = { .data = key, .size = sizeof(key) };
                /* A failure leaves the session without tickets: a full handshake next time. */
                if (gnutls_session_ticket_enable_server(session, &d) >= 0)
                        t->ticket_key = id;
                explicit_bzero(key, sizeof(key));
                return 0;
        }
        if (htype == GNUTLS_HANDSHAKE_NEW_SESSION_TICKET && when == GNUTLS_HOOK_POST &&
            !incoming && t->ticket_key != 0) {
                bool tls13 = gnutls_protocol_get_version(session) == GNUTLS_TLS1_3;
                if (tls_new_session_ticket_name(msg->data, msg->size, tls13, &name) > 0)
                        tls_tickets_learn(srv->tickets, t->ticket_key, name);
        }
        return 0;
}

static const gnutls_datum_t alpn_http11 = { .data = (unsigned char *)"http/1.1", .size = 8 };

int tls_server_attach(TlsServer *srv, Stream *s)
{
        assert(s);
        assert(!s->transport);

        if (!srv)
                return -ENOKEY;
        TlsStream *t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->magic = TLS_STREAM_MAGIC;
        t->server = tls_server_ref(srv);

        int r = gnutls_init(&t->session, GNUTLS_SERVER | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL);
        if (r < 0) {
                t->session = NULL;
                tls_stream_free(t);
                return -ENOMEM;
        }
        gnutls_session_set_ptr(t->session, t);
        r = gnutls_priority_set(t->session, srv->priority);
        if (r >= 0)
                r = gnutls_credentials_set(t->session, GNUTLS_CRD_CERTIFICATE, srv->credentials);
        /* HTTP/1.1 is all lbproxy speaks: a client offering h2 alone gets no ALPN, and may
         * try HTTP/1.1 or give up, as it would with an old server. */
        if (r >= 0)
                r = gnutls_alpn_set_protocols(t->session, &alpn_http11, 1,
                                              GNUTLS_ALPN_SERVER_PRECEDENCE);
        if (r < 0) {
                tls_stream_free(t);
                return r == GNUTLS_E_MEMORY_ERROR ? -ENOMEM : -EINVAL;
        }
        gnutls_db_set_cache_expiration(t->session, (int)srv->ticket_lifetime_sec);
        /* The client connection's timer bounds the handshake. */
        gnutls_handshake_set_timeout(t->session, GNUTLS_INDEFINITE_TIMEOUT);
        gnutls_handshake_set_hook_function(t->session, GNUTLS_HANDSHAKE_ANY, GNUTLS_HOOK_BOTH,
                                           on_server_handshake_message);
        tls_pull_attach(&t->pull, t->session, s->fd);

        stream_set_transport(s, &tls_transport, t);
        stream_start_handshake(s);
        return 0;
}

bool tls_stream_resumed(Stream *s)
{
        if (!s || s->transport != &tls_transport)
                return false;
        return tls_stream_of(s)->resumed;
}

bool tls_stream_handshake_done(Stream *s)
{
        if (!s || s->transport != &tls_transport)
                return false;
        return tls_stream_of(s)->handshake_done;
}
