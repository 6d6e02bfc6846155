/* SPDX-License-Identifier: MIT */
/* Writes a Config back as native YAML. libyaml's emitter does the quoting, so any string that
 * loaded can be written and read back the same. Every value is written, defaults included:
 * the dump is what the daemon runs with, not what the files happened to say. */

#include <inttypes.h>

#include "config/config-internal.h"

typedef struct Dumper {
        yaml_emitter_t emitter;
        bool failed;
} Dumper;

static void emit(Dumper *d, yaml_event_t *e, int initialized)
{
        if (d->failed)
                return;
        if (!initialized || !yaml_emitter_emit(&d->emitter, e))
                d->failed = true;
}

static void scalar(Dumper *d, const char *value, yaml_scalar_style_t style)
{
        yaml_event_t e;
        int ok;

        if (d->failed)
                return;
        ok = yaml_scalar_event_initialize(&e, NULL, NULL, (yaml_char_t *)value, -1, 1, 1, style);
        emit(d, &e, ok);
}

/* Strings that a YAML reader would take for null, a boolean or a number go in quotes; the
 * emitter chooses for the rest (plain when it can). */
static bool looks_typed(const char *s)
{
        static const char *const words[] = {
                "~",     "null", "Null", "NULL", "true", "True", "TRUE", "false", "False",
                "FALSE", "yes",  "Yes",  "YES",  "no",   "No",   "NO",   "on",    "On",
                "ON",    "off",  "Off",  "OFF",  "y",    "Y",    "n",    "N",
        };

        if (!*s)
                return true;
        for (size_t i = 0; i < ELEMENTSOF(words); i++)
                if (streq(s, words[i]))
                        return true;
        return strspn(s, "0123456789+-.eE_:xXoabcdefABCDEF") == strlen(s) &&
               strpbrk(s, "0123456789");
}

static void string(Dumper *d, const char *s)
{
        scalar(d, s, looks_typed(s) ? YAML_DOUBLE_QUOTED_SCALAR_STYLE : YAML_ANY_SCALAR_STYLE);
}

static void key(Dumper *d, const char *k)
{
        scalar(d, k, YAML_PLAIN_SCALAR_STYLE);
}

static void key_string(Dumper *d, const char *k, const char *v)
{
        key(d, k);
        string(d, v);
}

static void key_uint(Dumper *d, const char *k, uint64_t v)
{
        char buf[32];

        snprintf(buf, sizeof(buf), "%" PRIu64, v);
        key(d, k);
        scalar(d, buf, YAML_PLAIN_SCALAR_STYLE);
}

static void key_int(Dumper *d, const char *k, int64_t v)
{
        char buf[32];

        snprintf(buf, sizeof(buf), "%" PRId64, v);
        key(d, k);
        scalar(d, buf, YAML_PLAIN_SCALAR_STYLE);
}

static void key_bool(Dumper *d, const char *k, bool v)
{
        key(d, k);
        scalar(d, v ? "true" : "false", YAML_PLAIN_SCALAR_STYLE);
}

static void key_duration(Dumper *d, const char *k, uint64_t usec)
{
        char buf[CONFIG_DURATION_STR_MAX];

        key(d, k);
        scalar(d, config_format_duration(usec, buf), YAML_PLAIN_SCALAR_STYLE);
}

static void mapping_start(Dumper *d, bool flow)
{
        yaml_event_t e;
        int ok;

        if (d->failed)
                return;
        ok = yaml_mapping_start_event_initialize(
                &e, NULL, NULL, 1, flow ? YAML_FLOW_MAPPING_STYLE : YAML_BLOCK_MAPPING_STYLE);
        emit(d, &e, ok);
}

static void mapping_end(Dumper *d)
{
        yaml_event_t e;

        if (d->failed)
                return;
        emit(d, &e, yaml_mapping_end_event_initialize(&e));
}

static void sequence_start(Dumper *d, bool flow)
{
        yaml_event_t e;
        int ok;

        if (d->failed)
                return;
        ok = yaml_sequence_start_event_initialize(
                &e, NULL, NULL, 1, flow ? YAML_FLOW_SEQUENCE_STYLE : YAML_BLOCK_SEQUENCE_STYLE);
        emit(d, &e, ok);
}

static void sequence_end(Dumper *d)
{
        yaml_event_t e;

        if (d->failed)
                return;
        emit(d, &e, yaml_sequence_end_event_initialize(&e));
}

static void key_strv(Dumper *d, const char *k, char *const *l)
{
        if (!l)
                return;
        key(d, k);
        sequence_start(d, true);
        for (char *const *i = l; *i; i++)
                string(d, *i);
        sequence_end(d);
}

static void dump_tls(Dumper *d, const ConfigTls *t, bool with_sni)
{
        mapping_start(d, false);
        if (t->ca_file)
                key_string(d, "ca_file", t->ca_file);
        key_bool(d, "verify", t->verify != 0);
        if (with_sni && t->sni)
                key_string(d, "sni", t->sni);
        mapping_end(d);
}

static void dump_upstream(Dumper *d, const ConfigUpstream *u)
{
        mapping_start(d, false);
        if (u->name)
                key_string(d, "name", u->name);
        key_string(d, "scheme", scheme_to_string(u->scheme));
        key_string(d, "pass_host", pass_host_to_string(u->pass_host));
        if (u->upstream_host)
                key_string(d, "upstream_host", u->upstream_host);
        if (u->balancer)
                key_string(d, "balancer", u->balancer);
        key_uint(d, "retries", u->retries);
        key_uint(d, "keepalive_pool", u->keepalive_pool);
        key_duration(d, "keepalive_idle", u->keepalive_idle_usec);

        key(d, "timeout");
        mapping_start(d, true);
        key_duration(d, "connect", u->connect_timeout_usec);
        key_duration(d, "send", u->send_timeout_usec);
        key_duration(d, "read", u->read_timeout_usec);
        mapping_end(d);

        key(d, "tls");
        dump_tls(d, &u->tls, true);

        key(d, "nodes");
        sequence_start(d, false);
        for (size_t i = 0; i < u->n_nodes; i++) {
                const ConfigNode *n = u->nodes + i;

                mapping_start(d, true);
                if (n->host)
                        key_string(d, "host", n->host);
                key_uint(d, "port", n->port);
                key_uint(d, "weight", n->weight);
                mapping_end(d);
        }
        sequence_end(d);
        mapping_end(d);
}

static void dump_listener(Dumper *d, const ConfigListener *l)
{
        mapping_start(d, false);
        if (l->name)
                key_string(d, "name", l->name);
        if (l->listen)
                key_string(d, "listen", l->listen);
        /* The defaults of a plain HTTP listener are left out, so that the dump of a
         * configuration that never named a protocol reads as it always did. */
        if (l->protocol != LISTENER_HTTP)
                key_string(d, "protocol", listener_protocol_to_string(l->protocol));

        switch (l->protocol) {
        case LISTENER_HTTPS:
                key(d, "certificates");
                sequence_start(d, false);
                for (size_t i = 0; i < l->n_certificates; i++) {
                        const ConfigCertificate *c = l->certificates + i;

                        mapping_start(d, true);
                        if (c->cert_file)
                                key_string(d, "cert", c->cert_file);
                        if (c->key_file)
                                key_string(d, "key", c->key_file);
                        if (c->ocsp_file)
                                key_string(d, "ocsp", c->ocsp_file);
                        mapping_end(d);
                }
                sequence_end(d);
                key_duration(d, "ticket_rotate", l->ticket_rotate_usec);
                break;
        case LISTENER_TCP:
                if (l->upstream)
                        key_string(d, "upstream", l->upstream);
                if (l->tls_originate)
                        key_string(d, "tls", "originate");
                break;
        case LISTENER_TLS_PASSTHROUGH:
                key(d, "sni_routes");
                sequence_start(d, false);
                for (size_t i = 0; i < l->n_sni_routes; i++) {
                        mapping_start(d, true);
                        key_strv(d, "server_names", l->sni_routes[i].server_names);
                        if (l->sni_routes[i].upstream)
                                key_string(d, "upstream", l->sni_routes[i].upstream);
                        mapping_end(d);
                }
                sequence_end(d);
                break;
        default:
                break;
        }
        if (l->protocol != LISTENER_HTTP || l->idle_timeout_usec != CONFIG_IDLE_TIMEOUT_DEFAULT)
                key_duration(d, "idle_timeout", l->idle_timeout_usec);
        mapping_end(d);
}

static void dump_route(Dumper *d, const ConfigRoute *r)
{
        mapping_start(d, false);
        if (r->name)
                key_string(d, "name", r->name);
        key_strv(d, "paths", r->paths);
        key_strv(d, "hosts", r->hosts);
        key_strv(d, "methods", r->methods);
        key_int(d, "priority", r->priority);
        /* Like a listener's protocol: written when it is not the default. */
        if (r->websocket)
                key_bool(d, "websocket", true);

        key(d, "upstreams");
        sequence_start(d, false);
        for (size_t i = 0; i < r->n_upstreams; i++) {
                mapping_start(d, true);
                if (r->upstreams[i].name)
                        key_string(d, "name", r->upstreams[i].name);
                key_uint(d, "weight", r->upstreams[i].weight);
                mapping_end(d);
        }
        sequence_end(d);
        mapping_end(d);
}

static void dump_config(Dumper *d, const Config *c)
{
        yaml_event_t e;

        emit(d, &e, yaml_stream_start_event_initialize(&e, YAML_UTF8_ENCODING));
        emit(d, &e, yaml_document_start_event_initialize(&e, NULL, NULL, NULL, 1));
        mapping_start(d, false);

        key_bool(d, "access_log", c->access_log);
        key_uint(d, "workers", c->workers);

        key(d, "timeouts");
        mapping_start(d, false);
        key_duration(d, "header", c->header_timeout_usec);
        key_duration(d, "keepalive", c->keepalive_timeout_usec);
        key_duration(d, "shutdown_grace", c->shutdown_grace_usec);
        mapping_end(d);

        key(d, "limits");
        mapping_start(d, false);
        key_uint(d, "max_header_bytes", c->max_header_bytes);
        key_uint(d, "max_headers", c->max_headers);
        if (c->max_connections > 0)
                key_uint(d, "max_connections", c->max_connections);
        mapping_end(d);

        key(d, "dns");
        mapping_start(d, false);
        key_strv(d, "servers", c->dns.servers);
        key_duration(d, "ttl_min", c->dns.ttl_min_usec);
        key_duration(d, "ttl_max", c->dns.ttl_max_usec);
        key_duration(d, "timeout", c->dns.timeout_usec);
        mapping_end(d);

        key(d, "tls");
        dump_tls(d, &c->tls, false);

        key(d, "listeners");
        sequence_start(d, false);
        for (size_t i = 0; i < c->n_listeners; i++)
                dump_listener(d, c->listeners + i);
        sequence_end(d);

        key(d, "upstreams");
        sequence_start(d, false);
        for (size_t i = 0; i < c->n_upstreams; i++)
                dump_upstream(d, c->upstreams[i]);
        sequence_end(d);

        key(d, "routes");
        sequence_start(d, false);
        for (size_t i = 0; i < c->n_routes; i++)
                dump_route(d, c->routes[i]);
        sequence_end(d);

        mapping_end(d);
        emit(d, &e, yaml_document_end_event_initialize(&e, 1));
        emit(d, &e, yaml_stream_end_event_initialize(&e));
}

int config_dump(const Config *c, FILE *f)
{
        Dumper d = {};

        if (!c || !f)
                return -EINVAL;
        if (!yaml_emitter_initialize(&d.emitter))
                return -ENOMEM;
        yaml_emitter_set_output_file(&d.emitter, f);
        yaml_emitter_set_unicode(&d.emitter, 1);
        yaml_emitter_set_indent(&d.emitter, 2);
        yaml_emitter_set_width(&d.emitter, 100);

        dump_config(&d, c);
        if (!d.failed && !yaml_emitter_flush(&d.emitter))
                d.failed = true;

        yaml_emitter_delete(&d.emitter);
        if (d.failed)
                return -EIO;
        return fflush(f) == EOF ? -errno : 0;
}
