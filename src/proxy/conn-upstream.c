/* SPDX-License-Identifier: MIT */
#include <netinet/in.h>
#include <sys/socket.h>

#include "lb/model.h"
#include "proxy/conn-upstream.h"
#include "proxy/worker.h"
#include "tls/tls.h"

int upstream_conn_connect(Worker *w, const NodeAddress *a, TlsClient *tls,
                          const char *server_name, const StreamHandler *handler, void *userdata,
                          event_callback_fn on_timer, UpstreamConn **ret)
{
        _cleanup_close_ int fd = stream_tcp_socket(a->sa.ss_family);
        if (fd < 0)
                return fd;

        UpstreamConn *c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->worker = w;
        c->pool_key = strdup(a->pool_key);
        c->pool_key_len = a->pool_key_len;
        c->pool_key_hash = a->pool_key_hash;
        memcpy(c->address, a->text, sizeof(c->address));
        int r = c->pool_key ? stream_init(&c->stream, w->base, TAKE_FD(fd), handler, userdata)
                            : -ENOMEM;
        if (r < 0) {
                free(c->pool_key);
                free(c);
                return r;
        }
        event_assign(&c->timer, w->base, -1, 0, on_timer, userdata);

        if (tls) {
                r = tls_client_attach(tls, &c->stream, server_name, a->pool_key);
                if (r < 0) {
                        upstream_conn_free(c);
                        return r;
                }
        }

        r = stream_connect(&c->stream, (const struct sockaddr *)&a->sa, a->sa_len);
        if (r < 0) {
                upstream_conn_free(c);
                return r;
        }
        *ret = c;
        return 0;
}

UpstreamConn *upstream_conn_free(UpstreamConn *c)
{
        if (!c)
                return NULL;
        event_del(&c->timer);
        stream_done(&c->stream);
        free(c->pool_key);
        free(c);
        return NULL;
}
