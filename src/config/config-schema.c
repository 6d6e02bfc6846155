/* SPDX-License-Identifier: MIT */
/* The native YAML format as tables: each key names a parser, where its value goes, and the
 * parser's argument (a range, a validator, a nested table). The walker (config-walk.c) applies
 * a table to a mapping node; list and block parsers recurse into nested tables. */

#include <assert.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>

#include "config/config-health.h"
#include "config/config-overlay.h"
#include "config/config-walk.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(Hashmap *, hashmap_free);

/* ---- validators ---- */

static const ConfigValidator validate_name = {"name", config_check_name};
static const ConfigValidator validate_node_host = {"host", config_check_node_host};
static const ConfigValidator validate_route_host = {"host", config_check_route_host};
static const ConfigValidator validate_host_port = {"host", config_check_host_port};
static const ConfigValidator validate_sni = {"server name", config_check_sni};
static const ConfigValidator validate_path = {"path", config_check_path};
static const ConfigValidator validate_method = {"method", config_check_method};
static const ConfigValidator validate_dns_server = {"DNS server address", config_check_dns_server};
static const ConfigValidator validate_absolute_path = {"path", config_check_absolute_path};
static const ConfigValidator validate_key_path = {"key path", config_check_key_path};
static const ConfigValidator validate_server_name = {"server name", config_check_server_name};

/* ---- the tables ---- */

static const ConfigChoice choice_scheme = {.what = "scheme", .names = config_scheme_names,
                                           .n_names = _SCHEME_MAX};
static const ConfigChoice choice_pass_host = {.what = "pass_host",
                                              .names = config_pass_host_names,
                                              .n_names = _PASS_HOST_MAX};
/* The balancers balancer.h knows; the name is kept as a string for it to look up. */
const char *const config_balancer_names[CONFIG_BALANCER_MAX] = {
        "roundrobin",
        "least_conn",
        "chash",
        "ewma",
};
static const ConfigChoice choice_balancer = {.what = "balancer", .names = config_balancer_names,
                                             .n_names = CONFIG_BALANCER_MAX, .as_string = true};
const ConfigChoiceRefusal config_hash_on_refusals[] = {
        {"consumer", "lbproxy has no consumers (APISIX's authenticated users)"},
        {"vars_combinations", "hash on one variable, header or cookie"},
        {},
};
static const ConfigChoice choice_node_state = {.what = "state",
                                               .names = config_node_admin_state_names,
                                               .n_names = _NODE_ADMIN_MAX};
static const ConfigChoice choice_hash_on = {.what = "hash_on", .names = config_hash_on_names,
                                            .n_names = _HASH_ON_MAX,
                                            .refused = config_hash_on_refusals};

/* Items are marked where their name is, which is where a duplicate points back to. */
static ConfigMark item_mark(ConfigContext *ctx, yaml_node_t *node, yaml_node_t *name)
{
        return config_mark(ctx, name ? name : node);
}

/* listeners[] */

static int parse_listen(ConfigContext *ctx, const ConfigField *f, yaml_node_t *node, void *base,
                        const char *path)
{
        ConfigListener *l = base;
        struct sockaddr_storage ss;
        char esc[CONFIG_ESCAPE_MAX];
        const char *why;
        socklen_t len = 0;
        char *s;
        int r;

        r = config_string_value(ctx, node, path, NULL, &s);
        if (r < 0 || !s)
                return r;
        why = config_parse_address(s, 0, true, &ss, &len);
        if (why) {
                config_node_error(ctx, node, path, "invalid listen address '%s': %s",
                           config_node_escape(node, esc), why);
                free(s);
                return 0;
        }
        config_set_string(&l->listen, s);
        l->address = ss;
        l->address_len = len;
        return 0;
}

/* listeners[].certificates[] */

static int certificate_finish(ConfigContext *ctx, const ConfigTable *t, yaml_node_t *node,
                              yaml_node_t *const *values, void *item, const char *path)
{
        ((ConfigCertificate *)item)->mark = config_mark(ctx, node);
        return 0;
}

static const ConfigField certificate_fields[] = {
        REQUIRED("cert", config_parse_string, offsetof(ConfigCertificate, cert_file),
                 &validate_absolute_path),
        REQUIRED("key", config_parse_string, offsetof(ConfigCertificate, key_file),
                 &validate_key_path),
        FIELD("ocsp", config_parse_string, offsetof(ConfigCertificate, ocsp_file),
              &validate_absolute_path),
};

static const ConfigTable certificate_table = TABLE(certificate_fields, NULL, certificate_finish);

static const ConfigList certificates_list = {
        &certificate_table,
        sizeof(ConfigCertificate),
        offsetof(ConfigListener, n_certificates),
        "at least one certificate is required",
        NULL,
        NULL,
};

/* listeners[].sni_routes[] */

static int sni_route_finish(ConfigContext *ctx, const ConfigTable *t, yaml_node_t *node,
                            yaml_node_t *const *values, void *item, const char *path)
{
        ConfigSniRoute *sr = item;

        sr->mark = config_mark(ctx, node);
        sr->upstream_mark = config_mark(ctx, config_field_value(t, values, "upstream"));
        return 0;
}

static const ConfigStrv strv_server_names = {&validate_server_name,
                                             "at least one server name is required",
                                             &config_count_server_names};

static const ConfigField sni_route_fields[] = {
        REQUIRED("server_names", config_parse_strv, offsetof(ConfigSniRoute, server_names),
                 &strv_server_names),
        REQUIRED("upstream", config_parse_string, offsetof(ConfigSniRoute, upstream),
                 &validate_name),
};

static const ConfigTable sni_route_table = TABLE(sni_route_fields, NULL, sni_route_finish);

static const ConfigList sni_routes_list = {
        &sni_route_table,
        sizeof(ConfigSniRoute),
        offsetof(ConfigListener, n_sni_routes),
        "at least one SNI route is required",
        NULL,
        NULL,
};

/* listeners[] */

/* `tls: originate`: one word for now, so that `tls:` can grow other modes. */
static int parse_listener_tls(ConfigContext *ctx, const ConfigField *f, yaml_node_t *node,
                              void *base, const char *path)
{
        char esc[CONFIG_ESCAPE_MAX];
        const char *v = config_scalar_text(ctx, node, path, "a string");

        if (!v)
                return 0;
        if (streq(v, "originate"))
                ((ConfigListener *)base)->tls_originate = true;
        else
                config_node_error(ctx, node, path, "unknown tls mode '%s' (known: originate)",
                           config_node_escape(node, esc));
        return 0;
}

void config_listener_init(ConfigListener *l)
{
        l->protocol = LISTENER_HTTP;
        l->ticket_rotate_usec = CONFIG_TICKET_ROTATE_DEFAULT;
        l->idle_timeout_usec = CONFIG_IDLE_TIMEOUT_DEFAULT;
}

static void listener_init(void *item)
{
        config_listener_init(item);
}

/* Which protocols a key belongs to (a bit per ListenerProtocol); keys not listed go with all. */
static const struct {
        const char *key;
        unsigned protocols;
} listener_protocol_keys[] = {
        {"certificates", 1u << LISTENER_HTTPS},
        {"ticket_rotate", 1u << LISTENER_HTTPS},
        {"upstream", 1u << LISTENER_TCP},
        {"tls", 1u << LISTENER_TCP},
        {"sni_routes", 1u << LISTENER_TLS_PASSTHROUGH},
};

static int listener_check_protocol(ConfigContext *ctx, const ConfigTable *t, yaml_node_t *node,
                                   yaml_node_t *const *values, ConfigListener *l,
                                   const char *path)
{
        const char *proto = listener_protocol_to_string(l->protocol);
        char p[CONFIG_PATH_MAX], a[CONFIG_DURATION_STR_MAX], b[CONFIG_DURATION_STR_MAX];
        yaml_node_t *v;

        for (size_t i = 0; i < ELEMENTSOF(listener_protocol_keys); i++) {
                unsigned mask = listener_protocol_keys[i].protocols;

                v = config_field_value(t, values, listener_protocol_keys[i].key);
                if (!v || (mask & (1u << l->protocol)))
                        continue;
                config_path_join(p, path, listener_protocol_keys[i].key);
                /* Each key belongs to one protocol today. */
                config_node_error(
                        ctx, v, p, "only for protocol %s (this listener's protocol is %s)",
                        listener_protocol_to_string((ListenerProtocol)__builtin_ctz(mask)), proto);
        }

        if (l->protocol == LISTENER_HTTPS && !config_field_value(t, values, "certificates"))
                config_node_error(ctx, node, path,
                           "missing required key 'certificates' (protocol is https)");
        if (l->protocol == LISTENER_TCP && !config_field_value(t, values, "upstream"))
                config_node_error(ctx, node, path,
                                  "missing required key 'upstream' (protocol is tcp)");
        if (l->protocol == LISTENER_TLS_PASSTHROUGH && !config_field_value(t, values, "sni_routes"))
                config_node_error(ctx, node, path,
                           "missing required key 'sni_routes' (protocol is tls-passthrough)");

        v = config_field_value(t, values, "ticket_rotate");
        if (v && (l->ticket_rotate_usec < CONFIG_TICKET_ROTATE_MIN ||
                  l->ticket_rotate_usec > CONFIG_TICKET_ROTATE_MAX)) {
                char d[CONFIG_DURATION_STR_MAX];

                config_path_join(p, path, "ticket_rotate");
                config_node_error(ctx, v, p, "%s is out of range (%s..%s)",
                           config_format_duration(l->ticket_rotate_usec, d),
                           config_format_duration(CONFIG_TICKET_ROTATE_MIN, a),
                           config_format_duration(CONFIG_TICKET_ROTATE_MAX, b));
        }
        v = config_field_value(t, values, "idle_timeout");
        if (v && l->idle_timeout_usec == 0) {
                config_path_join(p, path, "idle_timeout");
                config_node_error(ctx, v, p, "must be longer than 0");
        }

        l->upstream_mark = config_mark(ctx, config_field_value(t, values, "upstream"));

        /* A server name routes to one place: the same name twice in one listener is a
         * mistake, not a preference. */
        for (size_t i = 0; i < l->n_sni_routes; i++)
                for (char **n = l->sni_routes[i].server_names; n && *n; n++)
                        for (size_t k = 0; k < i; k++)
                                if (config_strv_contains(l->sni_routes[k].server_names, *n)) {
                                        char e[CONFIG_ESCAPE_MAX];

                                        snprintf(p, sizeof(p), "%s%ssni_routes[%zu]", path,
                                                 *path ? "." : "", i);
                                        config_error(ctx, &l->sni_routes[i].mark, p,
                                                     "server name '%s' is in sni_routes[%zu] "
                                                     "already",
                                                     config_escape(*n, strlen(*n), e), k);
                                        break;
                                }
        return 0;
}

static int listener_finish(ConfigContext *ctx, const ConfigTable *t, yaml_node_t *node,
                           yaml_node_t *const *values, void *item, const char *path)
{
        ConfigListener *l = item;
        yaml_node_t *proto = config_field_value(t, values, "protocol");
        char p[CONFIG_PATH_MAX], addr[SOCKADDR_STR_MAX];
        int r;

        l->mark = item_mark(ctx, node, config_field_value(t, values, "name"));
        free(l->path);
        l->path = strdup(path);
        if (!l->path)
                return -ENOMEM;
        if (l->name) {
                config_path_join(p, path, "name");
                r = config_register_name(ctx, &ctx->listener_names, "listener name", l->name,
                                         &l->mark, p);
                if (r < 0)
                        return r;
        }
        if (l->address_len > 0) {
                ConfigMark m = config_mark(ctx, config_field_value(t, values, "listen"));

                config_path_join(p, path, "listen");
                sockaddr_to_string((const struct sockaddr *)&l->address, addr, sizeof(addr));
                r = config_register_name(ctx, &ctx->listener_addresses, "listen address", addr, &m,
                                         p);
                if (r < 0)
                        return r;
        }

        /* An unknown protocol was reported already: which keys fit it is moot. */
        if (proto && (proto->type != YAML_SCALAR_NODE ||
                      listener_protocol_from_string((const char *)proto->data.scalar.value) < 0))
                return 0;
        return listener_check_protocol(ctx, t, node, values, l, path);
}

static const ConfigChoice choice_protocol = {.what = "protocol",
                                             .names = config_listener_protocol_names,
                                             .n_names = _LISTENER_PROTOCOL_MAX};

static const ConfigField listener_fields[] = {
        REQUIRED("name", config_parse_string, offsetof(ConfigListener, name), &validate_name),
        FIELD("listen", parse_listen, 0, NULL),
        FIELD("protocol", config_parse_choice, offsetof(ConfigListener, protocol),
              &choice_protocol),
        FIELD("certificates", config_parse_list, offsetof(ConfigListener, certificates),
              &certificates_list),
        FIELD("ticket_rotate", config_parse_duration_field,
              offsetof(ConfigListener, ticket_rotate_usec), NULL),
        FIELD("upstream", config_parse_string, offsetof(ConfigListener, upstream), &validate_name),
        FIELD("tls", parse_listener_tls, 0, NULL),
        FIELD("idle_timeout", config_parse_duration_field,
              offsetof(ConfigListener, idle_timeout_usec), NULL),
        FIELD("sni_routes", config_parse_list, offsetof(ConfigListener, sni_routes),
              &sni_routes_list),
};

static const ConfigTable listener_table = TABLE(listener_fields, listener_init, listener_finish);

/* upstreams[].nodes[] */

static void node_init(void *item)
{
        ConfigNode *n = item;

        n->weight = 1;
}

static int node_finish(ConfigContext *ctx, const ConfigTable *t, yaml_node_t *node,
                       yaml_node_t *const *values, void *item, const char *path)
{
        ((ConfigNode *)item)->mark = config_mark(ctx, node);
        return 0;
}

static const ConfigField node_fields[] = {
        REQUIRED("host", config_parse_string, offsetof(ConfigNode, host), &validate_node_host),
        FIELD("port", config_parse_integer, offsetof(ConfigNode, port),
              RANGE(1, CONFIG_PORT_MAX, uint16_t, false)),
        FIELD("weight", config_parse_integer, offsetof(ConfigNode, weight),
              RANGE(0, CONFIG_WEIGHT_MAX, uint32_t, false)),
        FIELD("state", config_parse_choice, offsetof(ConfigNode, state), &choice_node_state),
};

static const ConfigTable node_table = TABLE(node_fields, node_init, node_finish);

/* upstreams[] */

static const ConfigField upstream_timeout_fields[] = {
        FIELD("connect", config_parse_duration_field,
              offsetof(ConfigUpstream, connect_timeout_usec), NULL),
        FIELD("send", config_parse_duration_field, offsetof(ConfigUpstream, send_timeout_usec),
              NULL),
        FIELD("read", config_parse_duration_field, offsetof(ConfigUpstream, read_timeout_usec),
              NULL),
};

static const ConfigTable upstream_timeout_table = TABLE(upstream_timeout_fields, NULL, NULL);

static const ConfigField upstream_tls_fields[] = {
        FIELD("ca_file", config_parse_string, offsetof(ConfigTls, ca_file), NULL),
        FIELD("verify", config_parse_tristate, offsetof(ConfigTls, verify), NULL),
        FIELD("sni", config_parse_string, offsetof(ConfigTls, sni), &validate_sni),
};

static const ConfigTable upstream_tls_table = TABLE(upstream_tls_fields, NULL, NULL);

unsigned config_upstream_default_retries(size_t n_nodes)
{
        return n_nodes == 0 ? 0 : n_nodes - 1 < CONFIG_RETRIES_MAX ? (unsigned)(n_nodes - 1)
                                                                   : CONFIG_RETRIES_MAX;
}

void config_upstream_init(ConfigUpstream *u)
{
        u->scheme = SCHEME_HTTP;
        u->pass_host = PASS_HOST_PASS;
        u->retries = 1;
        u->keepalive_pool = 32;
        u->keepalive_idle_usec = 60 * USEC_PER_SEC;
        u->connect_timeout_usec = 5 * USEC_PER_SEC;
        u->send_timeout_usec = 60 * USEC_PER_SEC;
        u->read_timeout_usec = 60 * USEC_PER_SEC;
        /* ca_file NULL and verify -1 inherit the top-level tls: block, see config_finish(). */
        u->tls.verify = -1;
        config_health_check_init(&u->health_check);
}

/* Nodes are told apart by host and port (over D-Bus they are named so): one of each. */
int config_check_nodes(ConfigContext *ctx, const ConfigUpstream *u, const char *path)
{
        _cleanup_(hashmap_freep) Hashmap *seen = NULL;
        char key[CONFIG_NODE_KEY_MAX], p[CONFIG_PATH_MAX];

        /* A node that did not load whole may look like another: what it is was said. */
        if (u->n_nodes < 2 || config_has_errors_under(ctx, path))
                return 0;
        seen = hashmap_new();
        if (!seen)
                return -ENOMEM;
        for (size_t i = 0; i < u->n_nodes; i++) {
                const ConfigNode *n = u->nodes + i;
                uintptr_t first;

                /* A host that did not load was reported already. */
                if (!n->host)
                        continue;
                config_node_key(n->host, n->port, key);
                first = (uintptr_t)hashmap_get(seen, key, strlen(key));
                if (first == 0) {
                        if (hashmap_put(seen, key, strlen(key), (void *)(uintptr_t)(i + 1)) < 0)
                                return -ENOMEM;
                        continue;
                }
                snprintf(p, sizeof(p), "%s[%zu]", path, i);
                config_error_code(ctx, -EEXIST, ctx->walking_edit, &n->mark, p,
                                  "%s is listed already (as nodes[%zu])", key, first - 1);
        }
        return 0;
}

/* A variable chash may hash, by APISIX's (nginx's) names. */
static bool hash_var_known(const char *s)
{
        static const char *const plain[] = {"remote_addr", "uri", "request_uri", "host"};
        for (size_t i = 0; i < ELEMENTSOF(plain); i++)
                if (streq(s, plain[i]))
                        return true;
        const char *name = strncmp(s, "arg_", 4) == 0    ? s + 4
                           : strncmp(s, "http_", 5) == 0 ? s + 5
                                                         : NULL;
        if (!name || !*name)
                return false;
        for (const char *p = name; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                      (*p >= '0' && *p <= '9') || *p == '_' || *p == '-' || *p == '.'))
                        return false;
        return true;
}

/* A header's or cookie's name: an RFC 9110 token. */
static bool hash_name_valid(const char *s)
{
        if (!*s)
                return false;
        for (const char *p = s; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                      (*p >= '0' && *p <= '9') || strchr("!#$%&'*+-.^_`|~", *p)))
                        return false;
        return true;
}

void config_check_hash(ConfigContext *ctx, const ConfigUpstream *u, yaml_node_t *const nodes[3],
                       const char *const keys[4], yaml_node_t *at, const char *path)
{
        char p[CONFIG_PATH_MAX], esc[CONFIG_ESCAPE_MAX];
        bool chash = u->balancer && streq(u->balancer, "chash");

        /* Beside another balancer they would be ignored: a mistake to point at. */
        if (!chash) {
                for (size_t i = 0; i < 3; i++) {
                        config_path_join(p, path, keys[i]);
                        if (nodes[i] && !config_has_errors_under(ctx, p))
                                config_node_error(ctx, nodes[i], p, "only used with %s: chash",
                                                  keys[3]);
                }
                return;
        }
        /* A value reported already is not reported twice. */
        for (size_t i = 0; i < 2; i++) {
                config_path_join(p, path, keys[i]);
                if (nodes[i] && config_has_errors_under(ctx, p))
                        return;
        }
        config_path_join(p, path, keys[1]);
        if (!u->hash_key) {
                if (u->hash_on != HASH_ON_VARS)
                        config_node_error(ctx, at, path,
                                          "missing required key '%s' (%s is %s)", keys[1],
                                          keys[0], hash_on_to_string(u->hash_on));
        } else if (u->hash_on == HASH_ON_VARS && !hash_var_known(u->hash_key))
                config_node_error(ctx, nodes[1], p,
                                  "unknown variable '%s' (known: remote_addr, uri, request_uri, "
                                  "host, arg_NAME, http_NAME)",
                                  config_escape(u->hash_key, strlen(u->hash_key), esc));
        else if (u->hash_on != HASH_ON_VARS && !hash_name_valid(u->hash_key))
                config_node_error(ctx, nodes[1], p, "invalid %s name '%s': not a valid HTTP token",
                                  hash_on_to_string(u->hash_on), config_escape(u->hash_key, strlen(u->hash_key), esc));
        if (nodes[2] && u->hash_balance_factor > 0 && u->hash_balance_factor <= 100) {
                config_path_join(p, path, keys[2]);
                config_node_error(ctx, nodes[2], p,
                                  "must be 0 (no bound) or above 100 (percent of the average "
                                  "load)");
        }
}

static void upstream_init(void *item)
{
        config_upstream_init(item);
}

static int upstream_finish(ConfigContext *ctx, const ConfigTable *t, yaml_node_t *node,
                           yaml_node_t *const *values, void *item, const char *path)
{
        ConfigUpstream *u = item;
        yaml_node_t *ph = config_field_value(t, values, "pass_host");
        yaml_node_t *uh = config_field_value(t, values, "upstream_host");
        bool pass_host_ok;
        char p[CONFIG_PATH_MAX];
        int r;

        u->mark = item_mark(ctx, node, config_field_value(t, values, "name"));
        r = config_note_object(ctx, CONFIG_OBJECT_UPSTREAM, path);
        if (r < 0)
                return r;

        /* An unknown pass_host was reported already; do not pile a second error on it. */
        pass_host_ok = !ph || (ph->type == YAML_SCALAR_NODE &&
                               pass_host_from_string((const char *)ph->data.scalar.value) >= 0);
        if (pass_host_ok && u->pass_host == PASS_HOST_REWRITE && !uh)
                config_node_error(ctx, node, path,
                           "missing required key 'upstream_host' (pass_host is rewrite)");
        if (pass_host_ok && u->pass_host != PASS_HOST_REWRITE && uh) {
                config_path_join(p, path, "upstream_host");
                config_node_error(ctx, uh, p, "only allowed with pass_host: rewrite");
        }

        if (!u->balancer) {
                u->balancer = strdup(config_balancer_names[0]);
                if (!u->balancer)
                        return -ENOMEM;
        }
        static const char *const hash_keys[4] = {"hash_on", "hash_key", "hash_balance_factor",
                                                 "balancer"};
        yaml_node_t *hash_nodes[3];
        for (size_t i = 0; i < 3; i++)
                hash_nodes[i] = config_field_value(t, values, hash_keys[i]);
        /* An unknown balancer was reported already: whether its keys belong is unknown. */
        config_path_join(p, path, "balancer");
        if (!config_has_errors_under(ctx, p))
                config_check_hash(ctx, u, hash_nodes, hash_keys, node, path);

        /* Here, not in node_init(): scheme: may come after nodes:. */
        for (size_t i = 0; i < u->n_nodes; i++)
                if (u->nodes[i].port == 0)
                        u->nodes[i].port = scheme_default_port(u->scheme);
        config_path_join(p, path, "nodes");
        r = config_check_nodes(ctx, u, p);
        if (r < 0)
                return r;

        /* Unless told otherwise, a request whose node refuses it tries every other node once
         * (as APISIX does) before it is a 502. */
        if (!config_field_value(t, values, "retries"))
                u->retries = config_upstream_default_retries(u->n_nodes);
        return 0;
}

static const ConfigList nodes_list = {
        &node_table,
        sizeof(ConfigNode),
        offsetof(ConfigUpstream, n_nodes),
        "at least one node is required",
        &config_count_nodes,
        NULL,
};

static const ConfigField upstream_fields[] = {
        REQUIRED("name", config_parse_string, offsetof(ConfigUpstream, name), &validate_name),
        FIELD("scheme", config_parse_choice, offsetof(ConfigUpstream, scheme), &choice_scheme),
        FIELD("pass_host", config_parse_choice, offsetof(ConfigUpstream, pass_host),
              &choice_pass_host),
        FIELD("upstream_host", config_parse_string, offsetof(ConfigUpstream, upstream_host),
              &validate_host_port),
        FIELD("balancer", config_parse_choice, offsetof(ConfigUpstream, balancer),
              &choice_balancer),
        FIELD("hash_on", config_parse_choice, offsetof(ConfigUpstream, hash_on), &choice_hash_on),
        FIELD("hash_key", config_parse_string, offsetof(ConfigUpstream, hash_key), NULL),
        FIELD("hash_balance_factor", config_parse_integer,
              offsetof(ConfigUpstream, hash_balance_factor),
              RANGE(0, CONFIG_HASH_BALANCE_FACTOR_MAX, unsigned, false)),
        FIELD("retries", config_parse_integer, offsetof(ConfigUpstream, retries),
              RANGE(0, CONFIG_RETRIES_MAX, unsigned, false)),
        FIELD("keepalive_pool", config_parse_integer, offsetof(ConfigUpstream, keepalive_pool),
              RANGE(0, CONFIG_KEEPALIVE_POOL_MAX, unsigned, false)),
        FIELD("keepalive_idle", config_parse_duration_field,
              offsetof(ConfigUpstream, keepalive_idle_usec), NULL),
        FIELD("timeout", config_parse_block, 0, &upstream_timeout_table),
        FIELD("tls", config_parse_block, offsetof(ConfigUpstream, tls), &upstream_tls_table),
        FIELD("health_check", config_parse_block, offsetof(ConfigUpstream, health_check),
              &config_health_check_table),
        FIELD("slow_start", config_parse_duration_field, offsetof(ConfigUpstream, slow_start_usec),
              NULL),
        REQUIRED("nodes", config_parse_list, offsetof(ConfigUpstream, nodes), &nodes_list),
};

static const ConfigTable upstream_table = TABLE(upstream_fields, upstream_init, upstream_finish);

/* routes[].upstreams[] */

static void route_upstream_init(void *item)
{
        ConfigRouteUpstream *ru = item;

        ru->weight = 1;
}

static int route_upstream_finish(ConfigContext *ctx, const ConfigTable *t, yaml_node_t *node,
                                 yaml_node_t *const *values, void *item, const char *path)
{
        ConfigRouteUpstream *ru = item;

        ru->mark = item_mark(ctx, node, config_field_value(t, values, "name"));
        return 0;
}

static const ConfigField route_upstream_fields[] = {
        REQUIRED("name", config_parse_string, offsetof(ConfigRouteUpstream, name), &validate_name),
        FIELD("weight", config_parse_integer, offsetof(ConfigRouteUpstream, weight),
              RANGE(0, CONFIG_WEIGHT_MAX, uint32_t, false)),
};

static const ConfigTable route_upstream_table =
        TABLE(route_upstream_fields, route_upstream_init, route_upstream_finish);

/* routes[] */

static int route_finish(ConfigContext *ctx, const ConfigTable *t, yaml_node_t *node,
                        yaml_node_t *const *values, void *item, const char *path)
{
        ConfigRoute *rt = item;

        rt->mark = item_mark(ctx, node, config_field_value(t, values, "name"));
        return config_note_object(ctx, CONFIG_OBJECT_ROUTE, path);
}

static const ConfigStrv strv_paths = {
        &validate_path,
        "at least one path is required",
        &config_count_route_paths,
};
static const ConfigStrv strv_hosts = {
        &validate_route_host,
        "must not be empty (leave hosts: out to match any host)",
        &config_count_route_hosts,
};
static const ConfigStrv strv_methods = {
        &validate_method,
        "must not be empty (leave methods: out to match any method)",
        &config_count_route_methods,
};
static const ConfigList route_upstreams_list = {
        &route_upstream_table,
        sizeof(ConfigRouteUpstream),
        offsetof(ConfigRoute, n_upstreams),
        "at least one upstream is required",
        &config_count_route_upstreams,
        NULL,
};

static const ConfigField route_fields[] = {
        REQUIRED("name", config_parse_string, offsetof(ConfigRoute, name), &validate_name),
        REQUIRED("paths", config_parse_strv, offsetof(ConfigRoute, paths), &strv_paths),
        FIELD("hosts", config_parse_strv, offsetof(ConfigRoute, hosts), &strv_hosts),
        FIELD("methods", config_parse_strv, offsetof(ConfigRoute, methods), &strv_methods),
        FIELD("priority", config_parse_integer, offsetof(ConfigRoute, priority),
              RANGE(INT_MIN, INT_MAX, int, true)),
        FIELD("websocket", config_parse_bool, offsetof(ConfigRoute, websocket), NULL),
        REQUIRED("upstreams", config_parse_list, offsetof(ConfigRoute, upstreams),
                 &route_upstreams_list),
};

static const ConfigTable route_table = TABLE(route_fields, NULL, route_finish);

/* The top level. timeouts: and limits: fill fields of Config itself. */

static const ConfigField timeouts_fields[] = {
        FIELD("header", config_parse_duration_field, offsetof(Config, header_timeout_usec), NULL),
        FIELD("keepalive", config_parse_duration_field, offsetof(Config, keepalive_timeout_usec),
              NULL),
        FIELD("shutdown_grace", config_parse_duration_field, offsetof(Config, shutdown_grace_usec),
              NULL),
};

static const ConfigTable timeouts_table = TABLE(timeouts_fields, NULL, NULL);

static const ConfigField limits_fields[] = {
        FIELD("max_header_bytes", config_parse_integer, offsetof(Config, max_header_bytes),
              RANGE(1024, 1048576, size_t, false)),
        FIELD("max_headers", config_parse_integer, offsetof(Config, max_headers),
              RANGE(1, 128, size_t, false)),
        /* Each takes a descriptor or more: ten million is ten times what the kernel lets a
         * process open by default (fs.nr_open). */
        FIELD("max_connections", config_parse_integer, offsetof(Config, max_connections),
              RANGE(1, 10000000, size_t, false)),
};

static const ConfigTable limits_table = TABLE(limits_fields, NULL, NULL);

static const ConfigStrv strv_dns_servers = {
        &validate_dns_server,
        "must not be empty (leave servers: out to use /etc/resolv.conf)",
        NULL,
};

static int dns_finish(ConfigContext *ctx, const ConfigTable *t, yaml_node_t *node,
                      yaml_node_t *const *values, void *item, const char *path)
{
        /* ttl_min <= ttl_max is checked once every file is merged: a later file may raise
         * ttl_max. Reported at the last dns: block. */
        ctx->dns_mark = config_mark(ctx, node);
        return 0;
}

static const ConfigField dns_fields[] = {
        FIELD("servers", config_parse_strv, offsetof(ConfigDns, servers), &strv_dns_servers),
        FIELD("ttl_min", config_parse_duration_field, offsetof(ConfigDns, ttl_min_usec), NULL),
        FIELD("ttl_max", config_parse_duration_field, offsetof(ConfigDns, ttl_max_usec), NULL),
        FIELD("timeout", config_parse_duration_field, offsetof(ConfigDns, timeout_usec), NULL),
};

static const ConfigTable dns_table = TABLE(dns_fields, NULL, dns_finish);

static const ConfigValidator validate_etcd_endpoint = {"etcd endpoint",
                                                       config_check_etcd_endpoint};
static const ConfigValidator validate_etcd_prefix = {"key prefix", config_check_etcd_prefix};

static const ConfigStrv strv_etcd_endpoints = {&validate_etcd_endpoint, "must not be empty", NULL};

static int etcd_finish(ConfigContext *ctx, const ConfigTable *t, yaml_node_t *node,
                       yaml_node_t *const *values, void *item, const char *path)
{
        ConfigEtcd *e = item;
        yaml_node_t *p = config_field_value(t, values, "password");
        yaml_node_t *tm = config_field_value(t, values, "timeout");
        char at[CONFIG_PATH_MAX];

        if (p && !e->username) {
                ConfigMark m = config_mark(ctx, p);
                config_path_join(at, path, "password");
                config_error(ctx, &m, at, "only used with username");
        }
        if (tm && e->timeout_usec == 0) {
                ConfigMark m = config_mark(ctx, tm);
                config_path_join(at, path, "timeout");
                config_error(ctx, &m, at, "must be more than 0");
        }
        /* TLS is all or nothing: one client, one policy. */
        size_t n_https = 0, n = 0;
        for (char **ep = e->endpoints; ep && *ep; ep++, n++)
                n_https += strncmp(*ep, "https://", 8) == 0;
        yaml_node_t *ep = config_field_value(t, values, "endpoints");
        if (ep && n_https > 0 && n_https < n) {
                ConfigMark m = config_mark(ctx, ep);
                config_path_join(at, path, "endpoints");
                config_error(ctx, &m, at, "mixes http:// and https:// (TLS is for all or none)");
        }
        yaml_node_t *tls = config_field_value(t, values, "tls");
        if (tls && n > 0 && n_https == 0) {
                ConfigMark m = config_mark(ctx, tls);
                config_path_join(at, path, "tls");
                config_error(ctx, &m, at, "only used with https:// endpoints");
        }
        return 0;
}

static int etcd_tls_finish(ConfigContext *ctx, const ConfigTable *t, yaml_node_t *node,
                           yaml_node_t *const *values, void *item, const char *path)
{
        yaml_node_t *cert = config_field_value(t, values, "cert");
        yaml_node_t *key = config_field_value(t, values, "key");
        char at[CONFIG_PATH_MAX];

        if (!cert == !key)
                return 0;
        ConfigMark m = config_mark(ctx, cert ? cert : key);
        config_path_join(at, path, cert ? "cert" : "key");
        config_error(ctx, &m, at, cert ? "needs key (the client certificate's private key)"
                                       : "only used with cert");
        return 0;
}

static const ConfigValidator validate_readable_file = {"file", config_check_readable_file};

static const ConfigField etcd_tls_fields[] = {
        FIELD("ca_file", config_parse_string, offsetof(ConfigEtcd, tls.ca_file),
              &validate_readable_file),
        FIELD("cert", config_parse_string, offsetof(ConfigEtcd, tls.cert),
              &validate_readable_file),
        FIELD("key", config_parse_string, offsetof(ConfigEtcd, tls.key),
              &validate_readable_file),
};

static const ConfigTable etcd_tls_table = TABLE(etcd_tls_fields, NULL, etcd_tls_finish);

static void etcd_init(void *item)
{
        ConfigEtcd *e = item;

        e->timeout_usec = 5 * USEC_PER_SEC;
}

static const ConfigField etcd_fields[] = {
        REQUIRED("endpoints", config_parse_strv, offsetof(ConfigEtcd, endpoints),
                 &strv_etcd_endpoints),
        FIELD("prefix", config_parse_string, offsetof(ConfigEtcd, prefix), &validate_etcd_prefix),
        FIELD("timeout", config_parse_duration_field, offsetof(ConfigEtcd, timeout_usec), NULL),
        FIELD("username", config_parse_string, offsetof(ConfigEtcd, username), NULL),
        FIELD("password", config_parse_string, offsetof(ConfigEtcd, password), NULL),
        FIELD("tls", config_parse_block, 0, &etcd_tls_table),
};

static const ConfigTable etcd_table = TABLE(etcd_fields, etcd_init, etcd_finish);

static const ConfigField store_fields[] = {
        FIELD("etcd", config_parse_block_init, offsetof(ConfigStore, etcd), &etcd_table),
};

static const ConfigTable store_table = TABLE(store_fields, NULL, NULL);

/* No sni: here: one server name for every upstream makes no sense. */
static const ConfigField tls_fields[] = {
        FIELD("ca_file", config_parse_string, offsetof(ConfigTls, ca_file), NULL),
        FIELD("verify", config_parse_tristate, offsetof(ConfigTls, verify), NULL),
};

static const ConfigTable tls_table = TABLE(tls_fields, NULL, NULL);

/* Histogram bounds in seconds, as Prometheus writes them: increasing, from 1 µs to a day. */
static int parse_buckets(ConfigContext *ctx, const ConfigField *f, yaml_node_t *node, void *base,
                         const char *path)
{
        ConfigMetrics *m = base;
        static const ConfigCount count = { "buckets", "histogram", CONFIG_METRICS_BUCKETS_MAX };
        size_t n = config_value_sequence(ctx, node, path, "must not be empty", &count);
        uint64_t b[CONFIG_METRICS_BUCKETS_MAX];

        for (size_t i = 0; i < n; i++) {
                yaml_node_t *item = config_sequence_item(ctx, node, i);
                char p[CONFIG_PATH_MAX];
                if (!item)
                        return 0;
                config_path_index(p, path, i);
                const char *s = config_scalar_text(ctx, item, p, "a number of seconds");
                if (!s)
                        return 0;
                char *end;
                errno = 0;
                double v = strtod(s, &end);
                if (errno != 0 || end == s || *end || !(v >= 1e-6 && v <= 86400)) {
                        config_node_error(ctx, item, p,
                                          "expected a number of seconds from 0.000001 to 86400");
                        return 0;
                }
                b[i] = (uint64_t)(v * 1e6 + 0.5);
                if (i > 0 && b[i] <= b[i - 1]) {
                        config_node_error(ctx, item, p,
                                          "must be larger than the bucket before it");
                        return 0;
                }
        }
        memcpy(m->buckets_usec, b, n * sizeof(uint64_t));
        m->n_buckets = n;
        return 0;
}

static const ConfigField metrics_fields[] = {
        FIELD("buckets", parse_buckets, 0, NULL),
        FIELD("node_labels", config_parse_bool, offsetof(ConfigMetrics, node_labels), NULL),
};

static const ConfigTable metrics_table = TABLE(metrics_fields, NULL, NULL);

static const ConfigList listeners_list = {
        &listener_table,
        sizeof(ConfigListener),
        offsetof(Config, n_listeners),
        NULL,
        NULL,
        NULL,
};
static void *new_upstream(const char *file)
{
        return config_upstream_new(file);
}

static void *new_route(const char *file)
{
        return config_route_new(file);
}

static const ConfigList upstreams_list = {
        &upstream_table,
        sizeof(ConfigUpstream),
        offsetof(Config, n_upstreams),
        NULL,
        NULL,
        new_upstream,
};
static const ConfigList routes_list = {
        &route_table,
        sizeof(ConfigRoute),
        offsetof(Config, n_routes),
        NULL,
        NULL,
        new_route,
};

static int top_finish(ConfigContext *ctx, const ConfigTable *t, yaml_node_t *node,
                      yaml_node_t *const *values, void *item, const char *path)
{
        yaml_node_t *l = config_field_value(t, values, "listeners");

        if (l) {
                ctx->listeners_mark = config_mark(ctx, l);
                /* "expected a sequence" said it already. */
                if (l->type != YAML_SEQUENCE_NODE)
                        ctx->listeners_invalid = true;
        }
        return 0;
}

static const ConfigField top_fields[] = {
        FIELD("access_log", config_parse_bool, offsetof(Config, access_log), NULL),
        FIELD("workers", config_parse_integer, offsetof(Config, workers),
              RANGE(0, 64, unsigned, false)),
        FIELD("timeouts", config_parse_block, 0, &timeouts_table),
        FIELD("limits", config_parse_block, 0, &limits_table),
        FIELD("dns", config_parse_block, offsetof(Config, dns), &dns_table),
        FIELD("tls", config_parse_block, offsetof(Config, tls), &tls_table),
        FIELD("metrics", config_parse_block, offsetof(Config, metrics), &metrics_table),
        FIELD("store", config_parse_block, offsetof(Config, store), &store_table),
        FIELD("listeners", config_parse_list, offsetof(Config, listeners), &listeners_list),
        FIELD("upstreams", config_parse_list, offsetof(Config, upstreams), &upstreams_list),
        FIELD("routes", config_parse_list, offsetof(Config, routes), &routes_list),
};

static const ConfigTable top_table = TABLE(top_fields, NULL, top_finish);

/* The runtime state (state.c) is a whole configuration as config_dump() wrote it: only its
 * upstreams and routes are read, in place of the files'; the rest is the files' business. */
static int state_finish(ConfigContext *ctx, const ConfigTable *t, yaml_node_t *node,
                        yaml_node_t *const *values, void *item, const char *path)
{
        yaml_node_t *u = config_field_value(t, values, "upstreams");

        ctx->state_mark = config_mark(ctx, u ? u : node);
        return 0;
}

static const ConfigField state_fields[] = {
        FIELD("upstreams", config_parse_list, offsetof(Config, upstreams), &upstreams_list),
        FIELD("routes", config_parse_list, offsetof(Config, routes), &routes_list),
};

static const ConfigTable state_table = {
        .fields = state_fields,
        .n_fields = ELEMENTSOF(state_fields),
        .finish = state_finish,
        .skipped = &top_table,
};

void config_schema_init(Config *c)
{
        c->access_log = true;
        c->header_timeout_usec = 30 * USEC_PER_SEC;
        c->keepalive_timeout_usec = 60 * USEC_PER_SEC;
        c->shutdown_grace_usec = 10 * USEC_PER_SEC;
        c->max_header_bytes = 32768;
        c->max_headers = 100;
        c->dns.ttl_min_usec = USEC_PER_SEC;
        c->dns.ttl_max_usec = 3600 * USEC_PER_SEC;
        c->dns.timeout_usec = 5 * USEC_PER_SEC;
        c->tls.verify = 1;
        c->metrics.node_labels = true;
}

bool config_schema_has_key(ConfigObjectKind kind, const char *path)
{
        const ConfigTable *t = kind == CONFIG_OBJECT_UPSTREAM ? &upstream_table : &route_table;
        const char *p = path;

        for (;;) {
                size_t l = strcspn(p, ".");
                const ConfigField *f = NULL;

                for (size_t i = 0; i < t->n_fields && !f; i++)
                        if (strlen(t->fields[i].key) == l && strncmp(t->fields[i].key, p, l) == 0)
                                f = t->fields + i;
                if (!f)
                        return false;
                if (!p[l])
                        return true;
                if (f->parse != config_parse_block && f->parse != config_parse_block_init)
                        return false;
                t = f->arg;
                p += l + 1;
        }
}

int config_schema_walk_object(ConfigContext *ctx, ConfigObjectKind kind, yaml_node_t *root,
                              const char *path, void **ret)
{
        const ConfigList *list = kind == CONFIG_OBJECT_UPSTREAM ? &upstreams_list : &routes_list;
        void *o = list->new_object(ctx->file);
        int r;

        if (!o)
                return -ENOMEM;
        if (list->table->init)
                list->table->init(o);
        r = config_walk_mapping(ctx, root, list->table, o, path);
        if (r < 0) {
                if (kind == CONFIG_OBJECT_UPSTREAM)
                        config_upstream_unref(o);
                else
                        config_route_unref(o);
                return r;
        }
        *ret = o;
        return 0;
}

int config_schema_apply(ConfigContext *ctx, yaml_document_t *doc, yaml_node_t *root)
{
        assert(ctx->document == doc);
        return config_walk_mapping(ctx, root, ctx->reading_state ? &state_table : &top_table,
                            ctx->config, "");
}
