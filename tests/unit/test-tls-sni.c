/* SPDX-License-Identifier: MIT */
#include <gnutls/gnutls.h>

#include "base/util.h"
#include "tap.h"
#include "tls/tls-sni.h"

/* A real ClientHello, captured from GnuTLS through a push function that keeps the bytes. */
typedef struct Capture {
        unsigned char buf[TLS_SNI_MAX_INPUT];
        size_t len;
} Capture;

static ssize_t capture_push(gnutls_transport_ptr_t p, const void *data, size_t n)
{
        Capture *c = p;
        size_t room = sizeof(c->buf) - c->len;
        if (n > room)
                n = room;
        memcpy(c->buf + c->len, data, n);
        c->len += n;
        return (ssize_t)n;
}

static ssize_t nothing_pull(gnutls_transport_ptr_t p, void *data, size_t n)
{
        errno = EAGAIN;
        return -1;
}

static void client_hello(const char *server_name, Capture *c)
{
        gnutls_session_t s;
        gnutls_certificate_credentials_t cred;

        c->len = 0;
        gnutls_certificate_allocate_credentials(&cred);
        gnutls_init(&s, GNUTLS_CLIENT | GNUTLS_NONBLOCK);
        gnutls_set_default_priority(s);
        gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred);
        if (server_name)
                gnutls_server_name_set(s, GNUTLS_NAME_DNS, server_name, strlen(server_name));
        gnutls_transport_set_ptr(s, c);
        gnutls_transport_set_push_function(s, capture_push);
        gnutls_transport_set_pull_function(s, nothing_pull);
        (void)gnutls_handshake(s); /* sends the ClientHello, then wants to read */
        gnutls_deinit(s);
        gnutls_certificate_free_credentials(cred);
}

int main(void)
{
        Capture c;
        char name[TLS_SNI_NAME_MAX + 1];

        client_hello("Httpbin.ORG", &c);
        CHECK(c.len > 50);
        CHECK(tls_sni_parse(c.buf, c.len, name) == 11);
        CHECK(streq(name, "httpbin.org")); /* lower-cased */

        /* Every shorter prefix asks for more. */
        for (size_t n = 0; n < c.len; n++)
                CHECK(tls_sni_parse(c.buf, n, name) == -EAGAIN);

        client_hello(NULL, &c);
        CHECK(tls_sni_parse(c.buf, c.len, name) == 0);

        /* Not TLS at all. */
        const char *http = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        CHECK(tls_sni_parse((const unsigned char *)http, strlen(http), name) == -EBADMSG);

        /* A record that is not a handshake, and a handshake that is not a ClientHello. */
        client_hello("a.example", &c);
        c.buf[0] = 23;
        CHECK(tls_sni_parse(c.buf, c.len, name) == -EBADMSG);
        client_hello("a.example", &c);
        c.buf[5] = 2;
        CHECK(tls_sni_parse(c.buf, c.len, name) == -EBADMSG);

        /* A length that points past its container. */
        client_hello("a.example", &c);
        c.buf[5 + 4 + 2 + 32] = 0xff; /* session_id length */
        CHECK(tls_sni_parse(c.buf, c.len, name) == -EBADMSG);
        TEST_MAIN_END();
}
