/* SPDX-License-Identifier: MIT */
#include <assert.h>

#include "lb/model-config.h"

/* A field added to these is compared and copied below: the sizes say when one was. */
static_assert(sizeof(ConfigUpstream) == 128 && sizeof(ConfigNode) == 32 &&
                      sizeof(ConfigTls) == 24,
              "ConfigUpstream changed: compare and copy the new field in model-config.c");
static_assert(sizeof(ConfigRoute) == 72 && sizeof(ConfigRouteUpstream) == 32,
              "ConfigRoute changed: compare and copy the new field in model-config.c");
static_assert(sizeof(ConfigListener) == 232 && sizeof(ConfigCertificate) == 40,
              "ConfigListener changed: compare the new field in listener_tls_config_equal()");

static int strdup_maybe(const char *s, char **ret)
{
        *ret = NULL;
        if (!s)
                return 0;
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

/* A NULL list stays NULL. */
static int strv_copy(char *const *l, char ***ret)
{
        *ret = NULL;
        if (!l)
                return 0;
        size_t n = strv_length((char **)l);
        char **c = calloc(n + 1, sizeof(char *));
        if (!c)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                if (!(c[i] = strdup(l[i]))) {
                        strv_free(c);
                        return -ENOMEM;
                }
        *ret = c;
        return 0;
}

ConfigUpstream *upstream_config_free(ConfigUpstream *c)
{
        if (!c)
                return NULL;
        free(c->name);
        free(c->upstream_host);
        free(c->balancer);
        for (size_t i = 0; c->nodes && i < c->n_nodes; i++)
                free(c->nodes[i].host);
        free(c->nodes);
        free(c->tls.ca_file);
        free(c->tls.sni);
        free(c);
        return NULL;
}

int upstream_config_copy(const ConfigUpstream *from, ConfigUpstream **ret)
{
        ConfigUpstream *c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        *c = (ConfigUpstream){
                .scheme = from->scheme,
                .pass_host = from->pass_host,
                .connect_timeout_usec = from->connect_timeout_usec,
                .send_timeout_usec = from->send_timeout_usec,
                .read_timeout_usec = from->read_timeout_usec,
                .retries = from->retries,
                .keepalive_pool = from->keepalive_pool,
                .keepalive_idle_usec = from->keepalive_idle_usec,
                .tls.verify = from->tls.verify,
        };
        int r = strdup_maybe(from->name, &c->name);
        if (r >= 0)
                r = strdup_maybe(from->upstream_host, &c->upstream_host);
        if (r >= 0)
                r = strdup_maybe(from->balancer, &c->balancer);
        if (r >= 0)
                r = strdup_maybe(from->tls.ca_file, &c->tls.ca_file);
        if (r >= 0)
                r = strdup_maybe(from->tls.sni, &c->tls.sni);
        if (r >= 0) {
                c->nodes = calloc(from->n_nodes ? from->n_nodes : 1, sizeof(ConfigNode));
                r = c->nodes ? 0 : -ENOMEM;
        }
        for (size_t i = 0; r >= 0 && i < from->n_nodes; i++) {
                c->nodes[i] = (ConfigNode){ .port = from->nodes[i].port,
                                            .weight = from->nodes[i].weight };
                r = strdup_maybe(from->nodes[i].host, &c->nodes[i].host);
                c->n_nodes = i + 1;
        }
        if (r < 0)
                return upstream_config_free(c), r;
        *ret = c;
        return 0;
}

bool upstream_config_equal(const ConfigUpstream *a, const ConfigUpstream *b)
{
        if (a == b)
                return true; /* shared configuration objects */
        if (!streq(a->name, b->name) || a->scheme != b->scheme || a->pass_host != b->pass_host ||
            !streq_ptr(a->upstream_host, b->upstream_host) ||
            !streq_ptr(a->balancer, b->balancer) ||
            a->connect_timeout_usec != b->connect_timeout_usec ||
            a->send_timeout_usec != b->send_timeout_usec ||
            a->read_timeout_usec != b->read_timeout_usec || a->retries != b->retries ||
            a->keepalive_pool != b->keepalive_pool ||
            a->keepalive_idle_usec != b->keepalive_idle_usec ||
            !streq_ptr(a->tls.ca_file, b->tls.ca_file) || a->tls.verify != b->tls.verify ||
            !streq_ptr(a->tls.sni, b->tls.sni) || a->n_nodes != b->n_nodes)
                return false;
        for (size_t i = 0; i < a->n_nodes; i++)
                if (!streq(a->nodes[i].host, b->nodes[i].host) ||
                    a->nodes[i].port != b->nodes[i].port ||
                    a->nodes[i].weight != b->nodes[i].weight)
                        return false;
        return true;
}

ConfigRoute *route_config_free(ConfigRoute *c)
{
        if (!c)
                return NULL;
        free(c->name);
        strv_free(c->paths);
        strv_free(c->hosts);
        strv_free(c->methods);
        for (size_t i = 0; c->upstreams && i < c->n_upstreams; i++)
                free(c->upstreams[i].name);
        free(c->upstreams);
        free(c);
        return NULL;
}

int route_config_copy(const ConfigRoute *from, ConfigRoute **ret)
{
        ConfigRoute *c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        *c = (ConfigRoute){ .priority = from->priority, .websocket = from->websocket };
        int r = strdup_maybe(from->name, &c->name);
        if (r >= 0)
                r = strv_copy(from->paths, &c->paths);
        if (r >= 0)
                r = strv_copy(from->hosts, &c->hosts);
        if (r >= 0)
                r = strv_copy(from->methods, &c->methods);
        if (r >= 0) {
                c->upstreams = calloc(from->n_upstreams ? from->n_upstreams : 1,
                                      sizeof(ConfigRouteUpstream));
                r = c->upstreams ? 0 : -ENOMEM;
        }
        for (size_t i = 0; r >= 0 && i < from->n_upstreams; i++) {
                c->upstreams[i] = (ConfigRouteUpstream){ .weight = from->upstreams[i].weight };
                r = strdup_maybe(from->upstreams[i].name, &c->upstreams[i].name);
                c->n_upstreams = i + 1;
        }
        if (r < 0)
                return route_config_free(c), r;
        *ret = c;
        return 0;
}

bool route_config_match_equal(const ConfigRoute *a, const ConfigRoute *b)
{
        return a == b || (strv_equal(a->paths, b->paths) && strv_equal(a->hosts, b->hosts) &&
                          strv_equal(a->methods, b->methods) && a->priority == b->priority);
}

bool route_config_equal(const ConfigRoute *a, const ConfigRoute *b)
{
        if (a == b)
                return true;
        if (!streq(a->name, b->name) || !route_config_match_equal(a, b) ||
            a->websocket != b->websocket || a->n_upstreams != b->n_upstreams)
                return false;
        for (size_t i = 0; i < a->n_upstreams; i++)
                if (!streq(a->upstreams[i].name, b->upstreams[i].name) ||
                    a->upstreams[i].weight != b->upstreams[i].weight)
                        return false;
        return true;
}

bool listener_tls_config_equal(const ConfigListener *a, const ConfigListener *b)
{
        if (!streq(a->name, b->name) || a->protocol != b->protocol ||
            a->ticket_rotate_usec != b->ticket_rotate_usec ||
            a->n_certificates != b->n_certificates)
                return false;
        for (size_t i = 0; i < a->n_certificates; i++) {
                const ConfigCertificate *x = &a->certificates[i], *y = &b->certificates[i];
                if (!streq(x->cert_file, y->cert_file) || !streq(x->key_file, y->key_file) ||
                    !streq_ptr(x->ocsp_file, y->ocsp_file))
                        return false;
        }
        return true;
}
