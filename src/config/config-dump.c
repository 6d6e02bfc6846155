/* SPDX-License-Identifier: MIT */
/* Writes a Config back as native YAML, by way of a document in memory (config-tree.h): the same
 * document an edit of one upstream or route starts from. libyaml's emitter does the quoting, so
 * any string that loaded can be written and read back the same. Every value is written,
 * defaults included: the dump is what the daemon runs with, not what the files happened to say. */

#include <inttypes.h>

#include "config/config-internal.h"

typedef struct Dumper {
        ConfigTree *t;
        bool failed;
} Dumper;

/* A node id, or 0 after remembering that something failed (out of memory). */
static int ok(Dumper *d, int id)
{
        if (id > 0)
                return id;
        d->failed = true;
        return 0;
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

static int mapping(Dumper *d, bool flow)
{
        return d->failed ? 0 : ok(d, config_tree_add_mapping_styled(d->t, flow));
}

static int sequence(Dumper *d, bool flow)
{
        return d->failed ? 0 : ok(d, config_tree_add_sequence_styled(d->t, flow));
}

static void set(Dumper *d, int map, const char *k, int value)
{
        if (!d->failed && value > 0 && config_tree_set(d->t, map, k, value) < 0)
                d->failed = true;
}

static void append(Dumper *d, int seq, int value)
{
        if (!d->failed && value > 0 && config_tree_append(d->t, seq, value) < 0)
                d->failed = true;
}

static int plain(Dumper *d, const char *s)
{
        return d->failed ? 0
                         : ok(d, config_tree_add_scalar_styled(d->t, s, YAML_PLAIN_SCALAR_STYLE));
}

static int string(Dumper *d, const char *s)
{
        if (d->failed)
                return 0;
        return ok(d, config_tree_add_scalar_styled(d->t, s,
                                                   looks_typed(s) ? YAML_DOUBLE_QUOTED_SCALAR_STYLE
                                                                  : YAML_ANY_SCALAR_STYLE));
}

static void key_string(Dumper *d, int map, const char *k, const char *v)
{
        if (v)
                set(d, map, k, string(d, v));
}

static void key_uint(Dumper *d, int map, const char *k, uint64_t v)
{
        char buf[32];

        snprintf(buf, sizeof(buf), "%" PRIu64, v);
        set(d, map, k, plain(d, buf));
}

static void key_int(Dumper *d, int map, const char *k, int64_t v)
{
        char buf[32];

        snprintf(buf, sizeof(buf), "%" PRId64, v);
        set(d, map, k, plain(d, buf));
}

static void key_bool(Dumper *d, int map, const char *k, bool v)
{
        set(d, map, k, plain(d, v ? "true" : "false"));
}

static void key_duration(Dumper *d, int map, const char *k, uint64_t usec)
{
        char buf[CONFIG_DURATION_STR_MAX];

        set(d, map, k, plain(d, config_format_duration(usec, buf)));
}

static void key_strv(Dumper *d, int map, const char *k, char *const *l)
{
        int seq;

        if (!l)
                return;
        seq = sequence(d, true);
        for (char *const *i = l; *i; i++)
                append(d, seq, string(d, *i));
        set(d, map, k, seq);
}

static int dump_tls(Dumper *d, const ConfigTls *t, bool with_sni)
{
        int m = mapping(d, false);

        key_string(d, m, "ca_file", t->ca_file);
        key_bool(d, m, "verify", t->verify != 0);
        if (with_sni)
                key_string(d, m, "sni", t->sni);
        return m;
}

/* Runs of three statuses or more as ranges ("200-208"), the rest one by one. */
static int dump_statuses(Dumper *d, const HealthStatusSet *set)
{
        int seq = sequence(d, true);
        char buf[16];

        for (unsigned s = HEALTH_STATUS_MIN; s <= HEALTH_STATUS_MAX; s++) {
                unsigned e = s;

                if (!health_status_set_has(set, s))
                        continue;
                while (e < HEALTH_STATUS_MAX && health_status_set_has(set, e + 1))
                        e++;
                if (e - s >= 2) {
                        snprintf(buf, sizeof(buf), "%u-%u", s, e);
                        append(d, seq, string(d, buf));
                        s = e;
                        continue;
                }
                snprintf(buf, sizeof(buf), "%u", s);
                append(d, seq, plain(d, buf));
        }
        return seq;
}

static int dump_healthy(Dumper *d, const ConfigHealthHealthy *h, bool active)
{
        int m = mapping(d, true);

        if (active)
                key_duration(d, m, "interval", h->interval_usec);
        key_uint(d, m, "successes", h->successes);
        set(d, m, "http_statuses", dump_statuses(d, &h->http_statuses));
        return m;
}

static int dump_unhealthy(Dumper *d, const ConfigHealthUnhealthy *u, bool active)
{
        int m = mapping(d, true);

        if (active)
                key_duration(d, m, "interval", u->interval_usec);
        key_uint(d, m, "http_failures", u->http_failures);
        key_uint(d, m, "tcp_failures", u->tcp_failures);
        key_uint(d, m, "timeouts", u->timeouts);
        set(d, m, "http_statuses", dump_statuses(d, &u->http_statuses));
        return m;
}

/* Only what was configured: an upstream without health_check: dumps as it always did, and a
 * part that is off is not written (the loader would turn it on). */
static void dump_health_check(Dumper *d, int m, const ConfigHealthCheck *hc)
{
        const ConfigHealthActive *a = &hc->active;
        int h, am, pm;

        if (!a->enabled && !hc->passive.enabled)
                return;
        h = mapping(d, false);
        if (a->enabled) {
                bool http = a->type != HEALTH_CHECK_TCP;

                am = mapping(d, false);
                key_string(d, am, "type", health_check_type_to_string(a->type));
                /* The loader takes these with the types that use them only. */
                if (http) {
                        key_string(d, am, "http_path", a->http_path);
                        key_string(d, am, "host", a->host);
                }
                if (a->port > 0)
                        key_uint(d, am, "port", a->port);
                key_duration(d, am, "timeout", a->timeout_usec);
                key_uint(d, am, "concurrency", a->concurrency);
                if (http)
                        key_strv(d, am, "headers", a->headers);
                if (a->type == HEALTH_CHECK_HTTPS)
                        key_bool(d, am, "verify", a->verify != 0);
                set(d, am, "healthy", dump_healthy(d, &a->healthy, true));
                set(d, am, "unhealthy", dump_unhealthy(d, &a->unhealthy, true));
                set(d, h, "active", am);
        }
        if (hc->passive.enabled) {
                pm = mapping(d, false);
                set(d, pm, "healthy", dump_healthy(d, &hc->passive.healthy, false));
                set(d, pm, "unhealthy", dump_unhealthy(d, &hc->passive.unhealthy, false));
                set(d, h, "passive", pm);
        }
        set(d, m, "health_check", h);
}

static void dump_upstream(Dumper *d, int m, const ConfigUpstream *u)
{
        int timeout, nodes;

        key_string(d, m, "name", u->name);
        key_string(d, m, "scheme", scheme_to_string(u->scheme));
        key_string(d, m, "pass_host", pass_host_to_string(u->pass_host));
        key_string(d, m, "upstream_host", u->upstream_host);
        key_string(d, m, "balancer", u->balancer);
        /* The loader takes these with chash only. */
        if (u->balancer && streq(u->balancer, "chash")) {
                key_string(d, m, "hash_on", hash_on_to_string(u->hash_on));
                key_string(d, m, "hash_key", u->hash_key);
                if (u->hash_balance_factor > 0)
                        key_uint(d, m, "hash_balance_factor", u->hash_balance_factor);
        }
        key_uint(d, m, "retries", u->retries);
        key_uint(d, m, "keepalive_pool", u->keepalive_pool);
        key_duration(d, m, "keepalive_idle", u->keepalive_idle_usec);

        timeout = mapping(d, true);
        key_duration(d, timeout, "connect", u->connect_timeout_usec);
        key_duration(d, timeout, "send", u->send_timeout_usec);
        key_duration(d, timeout, "read", u->read_timeout_usec);
        set(d, m, "timeout", timeout);

        set(d, m, "tls", dump_tls(d, &u->tls, true));
        dump_health_check(d, m, &u->health_check);
        /* Like health_check:, written when used. */
        if (u->slow_start_usec > 0)
                key_duration(d, m, "slow_start", u->slow_start_usec);

        nodes = sequence(d, false);
        for (size_t i = 0; i < u->n_nodes; i++) {
                const ConfigNode *n = u->nodes + i;
                int node = mapping(d, true);

                key_string(d, node, "host", n->host);
                key_uint(d, node, "port", n->port);
                key_uint(d, node, "weight", n->weight);
                if (n->state != NODE_ADMIN_READY)
                        key_string(d, node, "state", node_admin_state_to_string(n->state));
                append(d, nodes, node);
        }
        set(d, m, "nodes", nodes);
}

static int dump_listener(Dumper *d, const ConfigListener *l)
{
        int m = mapping(d, false), list;

        key_string(d, m, "name", l->name);
        key_string(d, m, "listen", l->listen);
        /* The defaults of a plain HTTP listener are left out, so that the dump of a
         * configuration that never named a protocol reads as it always did. */
        if (l->protocol != LISTENER_HTTP)
                key_string(d, m, "protocol", listener_protocol_to_string(l->protocol));

        switch (l->protocol) {
        case LISTENER_HTTPS:
                list = sequence(d, false);
                for (size_t i = 0; i < l->n_certificates; i++) {
                        const ConfigCertificate *c = l->certificates + i;
                        int cert = mapping(d, true);

                        key_string(d, cert, "cert", c->cert_file);
                        key_string(d, cert, "key", c->key_file);
                        key_string(d, cert, "ocsp", c->ocsp_file);
                        append(d, list, cert);
                }
                set(d, m, "certificates", list);
                key_duration(d, m, "ticket_rotate", l->ticket_rotate_usec);
                break;
        case LISTENER_TCP:
                key_string(d, m, "upstream", l->upstream);
                if (l->tls_originate)
                        key_string(d, m, "tls", "originate");
                break;
        case LISTENER_TLS_PASSTHROUGH:
                list = sequence(d, false);
                for (size_t i = 0; i < l->n_sni_routes; i++) {
                        int sr = mapping(d, true);

                        key_strv(d, sr, "server_names", l->sni_routes[i].server_names);
                        key_string(d, sr, "upstream", l->sni_routes[i].upstream);
                        append(d, list, sr);
                }
                set(d, m, "sni_routes", list);
                break;
        default:
                break;
        }
        if ((l->protocol != LISTENER_HTTP && l->protocol != LISTENER_METRICS) ||
            l->idle_timeout_usec != CONFIG_IDLE_TIMEOUT_DEFAULT)
                key_duration(d, m, "idle_timeout", l->idle_timeout_usec);
        return m;
}

static void dump_route(Dumper *d, int m, const ConfigRoute *r)
{
        int list;

        key_string(d, m, "name", r->name);
        key_strv(d, m, "paths", r->paths);
        key_strv(d, m, "hosts", r->hosts);
        key_strv(d, m, "methods", r->methods);
        key_int(d, m, "priority", r->priority);
        /* Like a listener's protocol: written when it is not the default. */
        if (r->websocket)
                key_bool(d, m, "websocket", true);

        list = sequence(d, false);
        for (size_t i = 0; i < r->n_upstreams; i++) {
                int ru = mapping(d, true);

                key_string(d, ru, "name", r->upstreams[i].name);
                key_uint(d, ru, "weight", r->upstreams[i].weight);
                append(d, list, ru);
        }
        set(d, m, "upstreams", list);
}

static void dump_config(Dumper *d, const Config *c, bool with_objects)
{
        int root = config_tree_root(d->t), m, list;

        key_bool(d, root, "access_log", c->access_log);
        key_uint(d, root, "workers", c->workers);

        m = mapping(d, false);
        key_duration(d, m, "header", c->header_timeout_usec);
        key_duration(d, m, "keepalive", c->keepalive_timeout_usec);
        key_duration(d, m, "shutdown_grace", c->shutdown_grace_usec);
        set(d, root, "timeouts", m);

        m = mapping(d, false);
        key_uint(d, m, "max_header_bytes", c->max_header_bytes);
        key_uint(d, m, "max_headers", c->max_headers);
        if (c->max_connections > 0)
                key_uint(d, m, "max_connections", c->max_connections);
        set(d, root, "limits", m);

        m = mapping(d, false);
        key_strv(d, m, "servers", c->dns.servers);
        key_duration(d, m, "ttl_min", c->dns.ttl_min_usec);
        key_duration(d, m, "ttl_max", c->dns.ttl_max_usec);
        key_duration(d, m, "timeout", c->dns.timeout_usec);
        set(d, root, "dns", m);

        set(d, root, "tls", dump_tls(d, &c->tls, false));

        /* Written when not the default, as a listener's protocol. */
        if (c->metrics.n_buckets > 0 || !c->metrics.node_labels) {
                m = mapping(d, false);
                if (c->metrics.n_buckets > 0) {
                        list = sequence(d, true);
                        for (size_t i = 0; i < c->metrics.n_buckets; i++) {
                                /* Seconds, as written: "0.005", "2". */
                                char buf[32];
                                uint64_t u = c->metrics.buckets_usec[i];
                                int n = snprintf(buf, sizeof(buf), "%" PRIu64 ".%06" PRIu64,
                                                 u / USEC_PER_SEC, u % USEC_PER_SEC);
                                while (buf[n - 1] == '0')
                                        buf[--n] = '\0';
                                if (buf[n - 1] == '.')
                                        buf[--n] = '\0';
                                append(d, list, plain(d, buf));
                        }
                        set(d, m, "buckets", list);
                }
                key_bool(d, m, "node_labels", c->metrics.node_labels);
                set(d, root, "metrics", m);
        }

        /* Written when there is one, as metrics. */
        if (c->store.etcd.endpoints) {
                const ConfigEtcd *e = &c->store.etcd;
                int etcd = mapping(d, false);

                key_strv(d, etcd, "endpoints", e->endpoints);
                key_string(d, etcd, "prefix", config_etcd_prefix(c));
                key_duration(d, etcd, "timeout", e->timeout_usec);
                if (e->username) {
                        key_string(d, etcd, "username", e->username);
                        if (e->password)
                                key_string(d, etcd, "password", e->password);
                }
                if (e->tls.ca_file || e->tls.cert) {
                        int tls = mapping(d, false);
                        if (e->tls.ca_file)
                                key_string(d, tls, "ca_file", e->tls.ca_file);
                        if (e->tls.cert) {
                                key_string(d, tls, "cert", e->tls.cert);
                                key_string(d, tls, "key", e->tls.key);
                        }
                        set(d, etcd, "tls", tls);
                }
                m = mapping(d, false);
                set(d, m, "etcd", etcd);
                set(d, root, "store", m);
        }

        list = sequence(d, false);
        for (size_t i = 0; i < c->n_listeners; i++)
                append(d, list, dump_listener(d, c->listeners + i));
        set(d, root, "listeners", list);
        if (!with_objects)
                return;

        list = sequence(d, false);
        for (size_t i = 0; i < c->n_upstreams; i++) {
                m = mapping(d, false);
                dump_upstream(d, m, c->upstreams[i]);
                append(d, list, m);
        }
        set(d, root, "upstreams", list);

        list = sequence(d, false);
        for (size_t i = 0; i < c->n_routes; i++) {
                m = mapping(d, false);
                dump_route(d, m, c->routes[i]);
                append(d, list, m);
        }
        set(d, root, "routes", list);
}

int config_dump_upstream(ConfigTree *t, int mapping, const ConfigUpstream *u)
{
        Dumper d = {.t = t};

        dump_upstream(&d, mapping, u);
        return d.failed ? -ENOMEM : 0;
}

int config_dump_route(ConfigTree *t, int mapping, const ConfigRoute *r)
{
        Dumper d = {.t = t};

        dump_route(&d, mapping, r);
        return d.failed ? -ENOMEM : 0;
}

static int emit(ConfigTree *t, FILE *f)
{
        yaml_emitter_t emitter;
        int r;

        if (!yaml_emitter_initialize(&emitter)) {
                config_tree_free(t);
                return -ENOMEM;
        }
        yaml_emitter_set_output_file(&emitter, f);
        yaml_emitter_set_unicode(&emitter, 1);
        yaml_emitter_set_indent(&emitter, 2);
        yaml_emitter_set_width(&emitter, 100);

        r = config_tree_emit(t, &emitter);
        if (r >= 0 && (!yaml_emitter_close(&emitter) || !yaml_emitter_flush(&emitter)))
                r = -EIO;
        yaml_emitter_delete(&emitter);
        if (r < 0)
                return r;
        return fflush(f) == EOF ? -errno : 0;
}

static int dump(const Config *c, FILE *f, bool with_objects)
{
        Dumper d = {};
        int r;

        if (!c || !f)
                return -EINVAL;
        r = config_tree_new(&d.t);
        if (r < 0)
                return r;
        dump_config(&d, c, with_objects);
        if (d.failed) {
                config_tree_free(d.t);
                return -ENOMEM;
        }
        return emit(TAKE_PTR(d.t), f);
}

int config_dump(const Config *c, FILE *f)
{
        return dump(c, f, true);
}

int config_dump_settings(const Config *c, FILE *f)
{
        return dump(c, f, false);
}

/* One upstream or route, as the item of a sequence (the state's) or as a document of its own (a
 * store's value). */
static int dump_one(ConfigObjectKind kind, const void *o, bool item, char **ret, size_t *ret_len)
{
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        Dumper d = {};
        FILE *f;
        int r, m;

        r = item ? config_tree_new_sequence(&d.t) : config_tree_new(&d.t);
        if (r < 0)
                return r;
        m = item ? mapping(&d, false) : config_tree_root(d.t);
        if (kind == CONFIG_OBJECT_UPSTREAM)
                dump_upstream(&d, m, o);
        else
                dump_route(&d, m, o);
        if (item)
                append(&d, config_tree_root(d.t), m);
        if (d.failed) {
                config_tree_free(d.t);
                return -ENOMEM;
        }
        f = open_memstream(&text, &len);
        if (!f) {
                config_tree_free(d.t);
                return -ENOMEM;
        }
        r = emit(TAKE_PTR(d.t), f);
        if (fclose(f) != 0 && r >= 0)
                r = -ENOMEM;
        if (r < 0)
                return r;
        *ret = TAKE_PTR(text);
        *ret_len = len;
        return 0;
}

int config_dump_item(ConfigObjectKind kind, const void *o, char **ret, size_t *ret_len)
{
        return dump_one(kind, o, true, ret, ret_len);
}

int config_dump_object(ConfigObjectKind kind, const void *o, char **ret, size_t *ret_len)
{
        return dump_one(kind, o, false, ret, ret_len);
}
