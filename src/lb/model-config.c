/* SPDX-License-Identifier: MIT */
#include <assert.h>
#include <string.h>

#include "lb/model-config.h"

/* A field added to these is compared below: the sizes say when one was. */
static_assert(sizeof(ConfigUpstream) == 584 && sizeof(ConfigNode) == 40 &&
                      sizeof(ConfigTls) == 24,
              "ConfigUpstream changed: compare the new field in model-config.c");
static_assert(sizeof(ConfigRoute) == 88 && sizeof(ConfigRouteUpstream) == 32,
              "ConfigRoute changed: compare the new field in model-config.c");
static_assert(sizeof(ConfigListener) == 256 && sizeof(ConfigCertificate) == 40,
              "ConfigListener changed: compare the new field in listener_tls_config_equal()");

bool upstream_config_equal(const ConfigUpstream *a, const ConfigUpstream *b)
{
        if (a == b)
                return true; /* shared configuration objects */
        if (!streq(a->name, b->name) || a->scheme != b->scheme || a->pass_host != b->pass_host ||
            !streq_ptr(a->upstream_host, b->upstream_host) ||
            !streq_ptr(a->balancer, b->balancer) || a->hash_on != b->hash_on ||
            !streq_ptr(a->hash_key, b->hash_key) ||
            a->hash_balance_factor != b->hash_balance_factor ||
            a->connect_timeout_usec != b->connect_timeout_usec ||
            a->send_timeout_usec != b->send_timeout_usec ||
            a->read_timeout_usec != b->read_timeout_usec || a->retries != b->retries ||
            a->keepalive_pool != b->keepalive_pool ||
            a->keepalive_idle_usec != b->keepalive_idle_usec ||
            !streq_ptr(a->tls.ca_file, b->tls.ca_file) || a->tls.verify != b->tls.verify ||
            !streq_ptr(a->tls.sni, b->tls.sni) ||
            !config_health_check_equal(&a->health_check, &b->health_check) ||
            a->slow_start_usec != b->slow_start_usec || a->n_nodes != b->n_nodes)
                return false;
        for (size_t i = 0; i < a->n_nodes; i++)
                if (!streq(a->nodes[i].host, b->nodes[i].host) ||
                    a->nodes[i].port != b->nodes[i].port ||
                    a->nodes[i].weight != b->nodes[i].weight ||
                    a->nodes[i].state != b->nodes[i].state)
                        return false;
        return true;
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
