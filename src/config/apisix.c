/* SPDX-License-Identifier: MIT */
/* APISIX manifests → native upstreams and routes (see apisix.h for the naming). A small
 * table per mapping says which keys are translated and which are refused, and why; the loader's
 * walker reads each mapping against it (config-walk.h: unknown, duplicate, null and refused
 * keys) and its value parsers read each value, with the native validators (config-values.c),
 * so a host, a path or a number means the same in both forms and is refused in the same words.
 * Paths given to the walker carry the document's label ("ApisixRoute/r: spec.http[0]"). Like the
 * native schema, every problem is reported and the walk goes on; only out-of-memory ends it.
 *
 * Where APISIX's defaults differ from lbproxy's, APISIX's win, because a manifest means what
 * it means in APISIX: an external node's and a route upstream's weight default to 100, each
 * upstream timeout to 60s (the ingress controller's DefaultUpstreamTimeout, which is also
 * nginx's), a zero timeout means the default as in the controller, and retries default to the
 * number of nodes minus one (apisix/balancer.lua). A healthCheck's zero (a number the CRD
 * omits when empty) likewise leaves APISIX's default. */

#include <limits.h>
#include <stdarg.h>

#include "config/apisix.h"
#include "config/config-health.h"
#include "config/config-walk.h"

#define APISIX_API_GROUP "apisix.apache.org/"
#define APISIX_API_VERSION APISIX_API_GROUP "v2"
#define APISIX_INGRESS_CLASS "apisix"

#define APISIX_DEFAULT_WEIGHT 100
#define APISIX_DEFAULT_TIMEOUT_USEC (60 * USEC_PER_SEC)

#define APISIX_LABEL_MAX 384 /* "ApisixUpstream/" + namespace + "/" + name */

/* One document being translated. */
typedef struct Apisix {
        ConfigContext *ctx;
        yaml_document_t *doc;
        /* "ApisixRoute/lb-route", "ApisixUpstream/ns/name": which document a message is about,
         * put before every path. */
        char label[APISIX_LABEL_MAX];
        /* metadata.name and .namespace once valid, else NULL; they point into the document. */
        const char *name;
        const char *namespace;
} Apisix;

/* Values checked as native ones are. */
static const ConfigValidator validate_node_host = {"host", config_check_node_host};
static const ConfigValidator validate_host_port = {"host", config_check_host_port};
static const ConfigStrv strv_paths = {
        &(const ConfigValidator){"path", config_check_path},
        "must not be empty",
        &config_count_route_paths,
};
static const ConfigStrv strv_hosts = {
        &(const ConfigValidator){"host", config_check_route_host},
        "must not be empty",
        &config_count_route_hosts,
};
static const ConfigStrv strv_methods = {
        &(const ConfigValidator){"method", config_check_method},
        "must not be empty",
        &config_count_route_methods,
};

/* ---- messages ---- */

/* Paths are short by construction ("spec.http[0].upstreams[1].weight"); a label is at most
 * a kind and two Kubernetes names. Should one ever be cut, the message still points at the
 * right line. */
static void format_into(char *buf, size_t size, const char *fmt, ...) _printf_(3, 4);

static void format_into(char *buf, size_t size, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        (void)vsnprintf(buf, size, fmt, ap);
        va_end(ap);
}

/* Every path given to the walker is whole: "ApisixRoute/lb-route: spec.http[0].name", so a
 * message says which document it is about. */
static const char *full_path(const Apisix *a, const char *path, char buf[static CONFIG_PATH_MAX])
{
        bool has_path = path && *path;

        format_into(buf, CONFIG_PATH_MAX, "%s%s%s", a->label, *a->label && has_path ? ": " : "",
                    has_path ? path : "");
        return buf;
}

static const char *escape(const char *s, char buf[static CONFIG_ESCAPE_MAX])
{
        return config_escape(s, strlen(s), buf);
}

/* `base`.`key`, in `buf`. */
static const char *joined(char buf[static CONFIG_PATH_MAX], const char *base, const char *key)
{
        config_path_join(buf, base, key);
        return buf;
}

/* Whether a mapping has `key` with a value that is not null. */
static bool has_value(Apisix *a, yaml_node_t *mapping, const char *key)
{
        yaml_node_t *v = config_mapping_get(a->doc, mapping, key);

        return v && !config_node_is_null(v);
}

/* ---- names ---- */

/* Kubernetes object names: a DNS subdomain (RFC 1123) for metadata.name, a DNS label for
 * metadata.namespace. Being lower case with no '_', they leave '_' free as our separator. */
static const char *check_kubernetes_name(const char *s, bool dns_label)
{
        size_t l = strlen(s), label = 0;

        if (l > (dns_label ? 63 : 253))
                return dns_label ? "longer than 63 characters" : "longer than 253 characters";
        for (size_t i = 0; i <= l; i++) {
                char ch = i < l ? s[i] : '.';

                if (ch == '.' && !dns_label) {
                        if (label == 0 || s[i - 1] == '-')
                                return "must be lower case letters, digits, '-' and '.', each "
                                       "'.'-separated part starting and ending with a letter "
                                       "or digit";
                        label = 0;
                        continue;
                }
                if (ch == '.' && i == l) {
                        if (s[i - 1] == '-')
                                return "must be lower case letters, digits and '-', starting "
                                       "and ending with a letter or digit";
                        break;
                }
                if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                      (ch == '-' && label > 0)))
                        return dns_label ? "must be lower case letters, digits and '-', starting "
                                           "and ending with a letter or digit"
                                         : "must be lower case letters, digits, '-' and '.', "
                                           "each '.'-separated part starting and ending with a "
                                           "letter or digit";
                label++;
        }
        return NULL;
}

/* "<namespace>_<a>[_<b>]", without the namespace when there is none and without b when NULL;
 * NULL with *ret when it makes no valid native name (reported at `node`). 0 or -ENOMEM. */
static int compose_name(Apisix *a, const char *namespace, const char *first, const char *second,
                        yaml_node_t *node, const char *path, const char *what, char **ret)
{
        char esc[CONFIG_ESCAPE_MAX];
        const char *why;
        char *s;

        *ret = NULL;
        if (asprintf(&s, "%s%s%s%s%s", namespace ? namespace : "", namespace ? "_" : "", first,
                     second ? "_" : "", second ? second : "") < 0)
                return -ENOMEM;
        why = config_check_name(s);
        if (why) {
                config_node_error(a->ctx, node, path, "gives the %s '%s': %s", what,
                             escape(s, esc), why);
                free(s);
                return 0;
        }
        *ret = s;
        return 0;
}

/* `ingressClassName`: a cluster would leave a resource of another class to another
 * controller; here there is no other, so it is refused rather than dropped unseen. */
static void check_ingress_class(Apisix *a, yaml_node_t *node, const char *path)
{
        char esc[CONFIG_ESCAPE_MAX];
        const char *v;

        if (!node)
                return;
        v = config_value_text(a->ctx, node, path);
        if (v && !streq(v, APISIX_INGRESS_CLASS))
                config_node_error(a->ctx, node, path,
                             "'%s' is not served here: lbproxy serves the ingress class '"
                             APISIX_INGRESS_CLASS "' only",
                             config_node_escape(node, esc));
}

/* Appends a zeroed item to an array counted by *n, so config_unref() sees it even half-read. */
static void *array_append(void **array, size_t *n, size_t size)
{
        char *p;

        if (*n >= SIZE_MAX / size - 1)
                return NULL;
        p = reallocarray(*array, *n + 1, size);
        if (!p)
                return NULL;
        *array = p;
        p += *n * size;
        memset(p, 0, size);
        (*n)++;
        return p;
}

/* Appends an upstream or route to its Config's array of pointers; false when out of memory. */
static bool append_object(void ***array, size_t *n, void *o)
{
        void **p = reallocarray(*array, *n + 1, sizeof(void *));

        if (!p)
                return false;
        *array = p;
        p[(*n)++] = o;
        return true;
}

/* ---- ApisixUpstream ---- */

enum {
        NODE_TYPE,
        NODE_NAME,
        NODE_WEIGHT,
        NODE_PORT,
        _NODE_MAX,
};

static const ConfigField node_keys[_NODE_MAX] = {
        [NODE_TYPE] = {.key = "type"},
        [NODE_NAME] = {.key = "name"},
        [NODE_WEIGHT] = {.key = "weight"},
        [NODE_PORT] = {.key = "port"},
};

static int translate_node(Apisix *a, yaml_node_t *node, const char *path, ConfigUpstream *u)
{
        yaml_node_t *v[_NODE_MAX];
        char p[CONFIG_PATH_MAX], esc[CONFIG_ESCAPE_MAX];
        const char *type;
        ConfigNode *n;
        int64_t i;
        int r;

        if (!config_read_mapping(a->ctx, node, path, node_keys, _NODE_MAX, NULL, v))
                return 0;

        n = array_append((void **)&u->nodes, &u->n_nodes, sizeof(ConfigNode));
        if (!n)
                return -ENOMEM;
        n->mark = config_mark(a->ctx, node);
        n->weight = APISIX_DEFAULT_WEIGHT;

        config_path_join(p, path, "type");
        if (!v[NODE_TYPE])
                config_node_error(a->ctx, node, p,
                             "missing, which makes the node a Kubernetes Service in APISIX: "
                             "Services do not exist outside Kubernetes (use type: Domain)");
        else if ((type = config_value_text(a->ctx, v[NODE_TYPE], p))) {
                if (streq(type, "Service"))
                        config_node_error(a->ctx, v[NODE_TYPE], p,
                                     "'Service' names a Kubernetes ExternalName Service, which "
                                     "does not exist outside Kubernetes (use type: Domain)");
                else if (!streq(type, "Domain"))
                        config_node_error(a->ctx, v[NODE_TYPE], p,
                                          "unknown type '%s' (known: Domain, "
                                          "Service)",
                                          config_node_escape(v[NODE_TYPE], esc));
        }

        config_path_join(p, path, "name");
        if (!v[NODE_NAME])
                config_missing_key(a->ctx, node, path, "name");
        else {
                r = config_string_value(a->ctx, v[NODE_NAME], p, &validate_node_host, &n->host);
                if (r < 0)
                        return r;
        }

        config_path_join(p, path, "weight");
        if (v[NODE_WEIGHT] &&
            config_value_integer(a->ctx, v[NODE_WEIGHT], p, 0, CONFIG_WEIGHT_MAX, &i))
                n->weight = (uint32_t)i;
        config_path_join(p, path, "port");
        if (v[NODE_PORT] && config_value_integer(a->ctx, v[NODE_PORT], p, 1, CONFIG_PORT_MAX, &i))
                n->port = (uint16_t)i;
        return 0;
}

enum {
        LB_TYPE,
        LB_HASH_ON,
        LB_KEY,
        _LB_MAX,
};

static const ConfigField loadbalancer_keys[_LB_MAX] = {
        [LB_TYPE] = {.key = "type"},
        [LB_HASH_ON] = {.key = "hashOn"},
        [LB_KEY] = {.key = "key"},
};

/* APISIX's loadbalancer types are the native balancers, by the same names; hashOn takes the
 * native hash_on's values and refuses what it refuses. */
static const ConfigChoice choice_hash_on = {.what = "hashOn", .names = config_hash_on_names,
                                            .n_names = _HASH_ON_MAX,
                                            .refused = config_hash_on_refusals};

static int translate_loadbalancer(Apisix *a, yaml_node_t *node, const char *path,
                                  ConfigUpstream *u)
{
        static const char *const hash_keys[4] = {"hashOn", "key", "-", "type"};
        char p[CONFIG_PATH_MAX], esc[CONFIG_ESCAPE_MAX], known[128] = "";
        yaml_node_t *v[_LB_MAX];
        const char *type = "roundrobin";
        bool known_type = false;
        size_t o = 0;
        int r;

        if (!config_read_mapping(a->ctx, node, path, loadbalancer_keys, _LB_MAX, NULL, v))
                return 0;

        config_path_join(p, path, "type");
        /* The ingress controller takes a missing type as roundrobin. */
        if (v[LB_TYPE]) {
                type = config_value_text(a->ctx, v[LB_TYPE], p);
                if (!type)
                        return 0;
        }
        for (size_t i = 0; i < CONFIG_BALANCER_MAX; i++) {
                known_type = known_type || streq(type, config_balancer_names[i]);
                if (o < sizeof(known))
                        o += (size_t)snprintf(known + o, sizeof(known) - o, "%s%s", i ? ", " : "",
                                              config_balancer_names[i]);
        }
        if (!known_type) {
                config_node_error(a->ctx, v[LB_TYPE], p, "unknown type '%s' (known: %s)",
                                  escape(type, esc), known);
                return 0;
        }
        free(u->balancer);
        u->balancer = strdup(type);
        if (!u->balancer)
                return -ENOMEM;

        if (v[LB_HASH_ON]) {
                ConfigField f = {.key = "hashOn", .offset = offsetof(ConfigUpstream, hash_on),
                                 .arg = &choice_hash_on};
                r = config_parse_choice(a->ctx, &f, v[LB_HASH_ON], u, joined(p, path, "hashOn"));
                if (r < 0)
                        return r;
        }
        if (v[LB_KEY]) {
                r = config_string_value(a->ctx, v[LB_KEY], joined(p, path, "key"), NULL,
                                        &u->hash_key);
                if (r < 0)
                        return r;
        }
        config_check_hash(a->ctx, u, (yaml_node_t *const[3]){v[LB_HASH_ON], v[LB_KEY], NULL},
                          hash_keys, node, path);
        return 0;
}

enum {
        TIMEOUT_CONNECT,
        TIMEOUT_SEND,
        TIMEOUT_READ,
        _TIMEOUT_MAX,
};

static const ConfigField timeout_keys[_TIMEOUT_MAX] = {
        [TIMEOUT_CONNECT] = {.key = "connect"},
        [TIMEOUT_SEND] = {.key = "send"},
        [TIMEOUT_READ] = {.key = "read"},
};

static void translate_timeout(Apisix *a, yaml_node_t *node, const char *path, ConfigUpstream *u)
{
        uint64_t *dest[_TIMEOUT_MAX] = {
                [TIMEOUT_CONNECT] = &u->connect_timeout_usec,
                [TIMEOUT_SEND] = &u->send_timeout_usec,
                [TIMEOUT_READ] = &u->read_timeout_usec,
        };
        yaml_node_t *v[_TIMEOUT_MAX];
        char p[CONFIG_PATH_MAX];
        uint64_t usec;

        if (!config_read_mapping(a->ctx, node, path, timeout_keys, _TIMEOUT_MAX, NULL, v))
                return;
        for (size_t i = 0; i < _TIMEOUT_MAX; i++) {
                config_path_join(p, path, timeout_keys[i].key);
                /* Zero is "not set" to the ingress controller, which then sends its default. */
                if (v[i] && config_value_duration(a->ctx, v[i], p, &config_duration_go, &usec) &&
                    usec > 0)
                        *dest[i] = usec;
        }
}

/* ---- healthCheck ---- */

/* The CRD's names for the keys of native health_check (ApisixUpstream v2: ActiveHealthCheck,
 * PassiveHealthCheck and their Healthy/Unhealthy), in one table for both parts: a key the part
 * does not have is unknown there. */
enum {
        HC_TYPE,
        HC_TIMEOUT,
        HC_CONCURRENCY,
        HC_HOST,
        HC_PORT,
        HC_HTTP_PATH,
        HC_STRICT_TLS,
        HC_REQUEST_HEADERS,
        HC_HEALTHY,
        HC_UNHEALTHY,
        _HC_MAX,
};

static const ConfigField active_keys[_HC_MAX] = {
        [HC_TYPE] = {.key = "type"},
        [HC_TIMEOUT] = {.key = "timeout"},
        [HC_CONCURRENCY] = {.key = "concurrency"},
        [HC_HOST] = {.key = "host"},
        [HC_PORT] = {.key = "port"},
        [HC_HTTP_PATH] = {.key = "httpPath"},
        [HC_STRICT_TLS] = {.key = "strictTLS"},
        [HC_REQUEST_HEADERS] = {.key = "requestHeaders"},
        [HC_HEALTHY] = {.key = "healthy"},
        [HC_UNHEALTHY] = {.key = "unhealthy"},
};

static const ConfigField passive_keys[] = {
        {.key = "type"},
        {.key = "healthy"},
        {.key = "unhealthy"},
};

enum {
        HL_INTERVAL,
        HL_HTTP_CODES,
        HL_SUCCESSES,
        HL_HTTP_FAILURES,
        HL_TCP_FAILURES,
        HL_TIMEOUT,
        HL_TIMEOUTS,
        _HL_MAX,
};

/* healthy has the first three, unhealthy all but successes; passive ones no interval. */
static const ConfigField level_keys[_HL_MAX] = {
        [HL_INTERVAL] = {.key = "interval"},
        [HL_HTTP_CODES] = {.key = "httpCodes"},
        [HL_SUCCESSES] = {.key = "successes"},
        [HL_HTTP_FAILURES] = {.key = "httpFailures"},
        [HL_TCP_FAILURES] = {.key = "tcpFailures"},
        [HL_TIMEOUT] = {.key = "timeout"},
        [HL_TIMEOUTS] = {.key = "timeouts"},
};

static const char *const crd_keys[3] = {"healthy", "unhealthy", "httpCodes"};
static const ConfigValidator validate_probe_path = {"path", config_check_probe_path};
static const ConfigStrv strv_request_headers = {
        &(const ConfigValidator){"header", config_check_probe_header},
        "must not be empty",
        &config_count_health_headers,
};

/* An integer of the CRD's range, kept when it is not 0 (omitted, to the controller). */
static void crd_integer(Apisix *a, yaml_node_t *node, const char *path, const char *key,
                        int64_t max, unsigned *dest)
{
        char p[CONFIG_PATH_MAX];
        int64_t i;

        if (node && config_value_integer(a->ctx, node, joined(p, path, key), 0, max, &i) && i > 0)
                *dest = (unsigned)i;
}

/* interval: a metav1.Duration ("2s"); the active timeout: a time.Duration, which manifests
 * write as "5s" or, as the CRD's comment reads, a number of seconds. */
static void crd_duration(Apisix *a, yaml_node_t *node, const char *path, const char *key,
                         bool seconds, uint64_t *dest)
{
        char p[CONFIG_PATH_MAX];
        const char *v;
        uint64_t usec;
        int64_t i;

        if (!node)
                return;
        joined(p, path, key);
        v = node->type == YAML_SCALAR_NODE ? (const char *)node->data.scalar.value : NULL;
        if (seconds && v && config_is_plain(node) && *v && strspn(v, "0123456789") == strlen(v)) {
                if (config_value_integer(a->ctx, node, p, 0, CONFIG_DURATION_MAX / USEC_PER_SEC,
                                         &i) &&
                    i > 0)
                        *dest = (uint64_t)i * USEC_PER_SEC;
                return;
        }
        if (config_value_duration(a->ctx, node, p, &config_duration_go, &usec) && usec > 0)
                *dest = usec;
}

static int translate_level(Apisix *a, yaml_node_t *node, const char *path, bool active,
                           bool healthy, ConfigHealthHealthy *h, ConfigHealthUnhealthy *u)
{
        yaml_node_t *v[_HL_MAX];
        ConfigField fields[_HL_MAX];
        char p[CONFIG_PATH_MAX];
        size_t n = 0;
        int map[_HL_MAX];

        /* The keys this level has, in the table's order. */
        for (int i = 0; i < _HL_MAX; i++) {
                bool has = i == HL_INTERVAL     ? active
                           : i == HL_SUCCESSES  ? healthy
                           : i == HL_HTTP_CODES ? true
                                                : !healthy;
                map[i] = has ? (int)n : -1;
                if (has)
                        fields[n++] = level_keys[i];
        }
        yaml_node_t *got[_HL_MAX];
        if (!config_read_mapping(a->ctx, node, path, fields, n, NULL, got))
                return 0;
        for (int i = 0; i < _HL_MAX; i++)
                v[i] = map[i] >= 0 ? got[map[i]] : NULL;

        if (v[HL_HTTP_CODES]) {
                ConfigField f = {.key = "httpCodes",
                                 .offset = healthy ? offsetof(ConfigHealthHealthy, http_statuses)
                                                   : offsetof(ConfigHealthUnhealthy,
                                                              http_statuses)};
                int r = config_parse_statuses(a->ctx, &f, v[HL_HTTP_CODES],
                                              healthy ? (void *)h : (void *)u,
                                              joined(p, path, "httpCodes"));
                if (r < 0)
                        return r;
        }
        if (healthy) {
                crd_duration(a, v[HL_INTERVAL], path, "interval", false, &h->interval_usec);
                crd_integer(a, v[HL_SUCCESSES], path, "successes", HEALTH_COUNTER_MAX,
                            &h->successes);
                return 0;
        }
        crd_duration(a, v[HL_INTERVAL], path, "interval", false, &u->interval_usec);
        crd_integer(a, v[HL_HTTP_FAILURES], path, "httpFailures", HEALTH_COUNTER_MAX,
                    &u->http_failures);
        crd_integer(a, v[HL_TCP_FAILURES], path, "tcpFailures", HEALTH_COUNTER_MAX,
                    &u->tcp_failures);
        /* The CRD's json name is "timeout"; "timeouts", as APISIX and the Go field name it, is
         * what one writes by mistake and means the same. */
        if (v[HL_TIMEOUT] && v[HL_TIMEOUTS])
                config_node_error(a->ctx, v[HL_TIMEOUTS], joined(p, path, "timeouts"),
                                  "given with 'timeout' already (the same count: keep 'timeout')");
        else if (v[HL_TIMEOUTS]) {
                ConfigMark m = config_mark(a->ctx, v[HL_TIMEOUTS]);

                config_warning(a->ctx, &m, joined(p, path, "timeouts"),
                               "read as 'timeout', the CRD's name for the count of timeouts");
                crd_integer(a, v[HL_TIMEOUTS], path, "timeouts", HEALTH_COUNTER_MAX,
                            &u->timeouts);
        } else
                crd_integer(a, v[HL_TIMEOUT], path, "timeout", HEALTH_COUNTER_MAX, &u->timeouts);
        return 0;
}

/* type: http, https or tcp, by the native names; NULL after saying what is wrong. */
static bool crd_type(Apisix *a, yaml_node_t *node, const char *path, HealthCheckType *ret)
{
        char p[CONFIG_PATH_MAX], esc[CONFIG_ESCAPE_MAX];
        const char *s;
        HealthCheckType t;

        if (!node)
                return true;
        s = config_value_text(a->ctx, node, joined(p, path, "type"));
        if (!s)
                return false;
        t = health_check_type_from_string(s);
        if (t < 0) {
                config_node_error(a->ctx, node, p, "unknown type '%s' (known: http, https, tcp)",
                                  config_node_escape(node, esc));
                return false;
        }
        *ret = t;
        return true;
}

static int translate_active(Apisix *a, yaml_node_t *node, const char *path, ConfigUpstream *u)
{
        ConfigHealthActive *ac = &u->health_check.active;
        yaml_node_t *v[_HC_MAX];
        char p[CONFIG_PATH_MAX];
        HealthCheckType type = HEALTH_CHECK_HTTP;
        bool b;
        int r;

        if (!config_read_mapping(a->ctx, node, path, active_keys, _HC_MAX, NULL, v))
                return 0;
        ac->enabled = true;
        if (!crd_type(a, v[HC_TYPE], path, &type))
                return 0;
        ac->type = type;
        crd_duration(a, v[HC_TIMEOUT], path, "timeout", true, &ac->timeout_usec);
        crd_integer(a, v[HC_CONCURRENCY], path, "concurrency", CONFIG_HEALTH_CONCURRENCY_MAX,
                    &ac->concurrency);
        if (v[HC_PORT]) {
                unsigned port = 0;

                crd_integer(a, v[HC_PORT], path, "port", CONFIG_PORT_MAX, &port);
                ac->port = (uint16_t)port;
        }
        /* What a probe of this type does not send, APISIX ignores: so does lbproxy, after
         * checking it. */
        if (v[HC_HTTP_PATH]) {
                _cleanup_free_ char *s = NULL;

                r = config_string_value(a->ctx, v[HC_HTTP_PATH], joined(p, path, "httpPath"),
                                        &validate_probe_path, &s);
                if (r < 0)
                        return r;
                if (type != HEALTH_CHECK_TCP)
                        config_set_string(&ac->http_path, TAKE_PTR(s));
        }
        if (v[HC_HOST]) {
                _cleanup_free_ char *s = NULL;

                r = config_string_value(a->ctx, v[HC_HOST], joined(p, path, "host"),
                                        &validate_host_port, &s);
                if (r < 0)
                        return r;
                if (type != HEALTH_CHECK_TCP)
                        config_set_string(&ac->host, TAKE_PTR(s));
        }
        if (v[HC_REQUEST_HEADERS]) {
                _cleanup_strv_free_ char **l = NULL;

                r = config_value_strv(a->ctx, v[HC_REQUEST_HEADERS],
                                      joined(p, path, "requestHeaders"), &strv_request_headers,
                                      &l);
                if (r < 0)
                        return r;
                if (type != HEALTH_CHECK_TCP) {
                        strv_free(ac->headers);
                        ac->headers = TAKE_PTR(l);
                }
        }
        if (v[HC_STRICT_TLS] &&
            config_value_boolean(a->ctx, v[HC_STRICT_TLS], joined(p, path, "strictTLS"), &b) &&
            type == HEALTH_CHECK_HTTPS)
                ac->verify = b;
        if (!ac->http_path) {
                ac->http_path = strdup("/");
                if (!ac->http_path)
                        return -ENOMEM;
        }
        if (v[HC_HEALTHY]) {
                r = translate_level(a, v[HC_HEALTHY], joined(p, path, "healthy"), true, true,
                                    &ac->healthy, NULL);
                if (r < 0)
                        return r;
        }
        if (v[HC_UNHEALTHY]) {
                r = translate_level(a, v[HC_UNHEALTHY], joined(p, path, "unhealthy"), true,
                                    false, NULL, &ac->unhealthy);
                if (r < 0)
                        return r;
        }
        config_health_check_statuses(a->ctx, &ac->healthy, &ac->unhealthy, v[HC_HEALTHY],
                                     v[HC_UNHEALTHY], crd_keys, path);
        return 0;
}

static int translate_passive(Apisix *a, yaml_node_t *node, const char *path, ConfigUpstream *u)
{
        ConfigHealthPassive *pa = &u->health_check.passive;
        yaml_node_t *v[ELEMENTSOF(passive_keys)];
        HealthCheckType type = HEALTH_CHECK_HTTP;
        char p[CONFIG_PATH_MAX];
        int r;

        if (!config_read_mapping(a->ctx, node, path, passive_keys, ELEMENTSOF(passive_keys), NULL,
                                 v))
                return 0;
        config_health_passive_init(pa);
        if (!crd_type(a, v[0], path, &type))
                return 0;
        if (v[1]) {
                r = translate_level(a, v[1], joined(p, path, "healthy"), false, true,
                                    &pa->healthy, NULL);
                if (r < 0)
                        return r;
        }
        if (v[2]) {
                r = translate_level(a, v[2], joined(p, path, "unhealthy"), false, false, NULL,
                                    &pa->unhealthy);
                if (r < 0)
                        return r;
        }
        /* A tcp check sees connections, not statuses (lua-resty-healthcheck). */
        if (type == HEALTH_CHECK_TCP) {
                pa->healthy.http_statuses = (HealthStatusSet){};
                pa->unhealthy.http_statuses = (HealthStatusSet){};
                pa->unhealthy.http_failures = 0;
        }
        config_health_check_statuses(a->ctx, &pa->healthy, &pa->unhealthy, v[1], v[2], crd_keys,
                                     path);
        return 0;
}

static const ConfigField health_check_keys[] = {
        {.key = "active"},
        {.key = "passive"},
};

static int translate_health_check(Apisix *a, yaml_node_t *node, const char *path,
                                  ConfigUpstream *u)
{
        yaml_node_t *v[ELEMENTSOF(health_check_keys)];
        char p[CONFIG_PATH_MAX];
        int r;

        if (!config_read_mapping(a->ctx, node, path, health_check_keys,
                                 ELEMENTSOF(health_check_keys), NULL, v))
                return 0;
        if (!v[0] && !v[1]) {
                config_node_error(a->ctx, node, path, "expected active:, passive: or both");
                return 0;
        }
        if (v[0]) {
                r = translate_active(a, v[0], joined(p, path, "active"), u);
                if (r < 0)
                        return r;
        }
        if (v[1]) {
                r = translate_passive(a, v[1], joined(p, path, "passive"), u);
                if (r < 0)
                        return r;
        }
        return 0;
}

enum {
        UP_INGRESS_CLASS,
        UP_EXTERNAL_NODES,
        UP_SCHEME,
        UP_PASS_HOST,
        UP_UPSTREAM_HOST,
        UP_LOADBALANCER,
        UP_RETRIES,
        UP_TIMEOUT,
        UP_HEALTH_CHECK,
        UP_TLS_SECRET,
        UP_SUBSETS,
        UP_DISCOVERY,
        UP_PORT_LEVEL_SETTINGS,
        _UP_MAX,
};

static const ConfigField upstream_keys[_UP_MAX] = {
        [UP_INGRESS_CLASS] = {.key = "ingressClassName"},
        [UP_EXTERNAL_NODES] = {.key = "externalNodes"},
        [UP_SCHEME] = {.key = "scheme"},
        [UP_PASS_HOST] = {.key = "passHost"},
        [UP_UPSTREAM_HOST] = {.key = "upstreamHost"},
        [UP_LOADBALANCER] = {.key = "loadbalancer"},
        [UP_RETRIES] = {.key = "retries"},
        [UP_TIMEOUT] = {.key = "timeout"},
        [UP_HEALTH_CHECK] = {.key = "healthCheck"},
        [UP_TLS_SECRET] = {.key = "tlsSecret",
                           .refusal = "client certificates come from a Kubernetes Secret, "
                                      "which does not exist outside Kubernetes"},
        [UP_SUBSETS] = {.key = "subsets",
                        .refusal = "subsets pick the Pods of a Kubernetes Service by label, "
                                   "which do not exist outside Kubernetes"},
        [UP_DISCOVERY] = {.key = "discovery",
                          .refusal = "service discovery registries are not supported (list "
                                     "the nodes in externalNodes)"},
        [UP_PORT_LEVEL_SETTINGS] = {.key = "portLevelSettings",
                                    .refusal =
                                            "per-port settings apply to the ports of a Kubernetes "
                                            "Service, which does not exist outside Kubernetes"},
};

static int translate_upstream(Apisix *a, yaml_node_t *spec, yaml_node_t *name_node)
{
        char sp[CONFIG_PATH_MAX], q[CONFIG_PATH_MAX], p[CONFIG_PATH_MAX], esc[CONFIG_ESCAPE_MAX];
        Config *c = a->ctx->config;
        yaml_node_t *v[_UP_MAX];
        const char *s;
        ConfigUpstream *u;
        size_t n;
        int64_t i;
        int r;

        full_path(a, "spec", sp);
        if (!config_read_mapping(a->ctx, spec, sp, upstream_keys, _UP_MAX, NULL, v))
                return 0;
        check_ingress_class(a, v[UP_INGRESS_CLASS], joined(q, sp, "ingressClassName"));

        u = config_upstream_new(a->ctx->file);
        if (!u)
                return -ENOMEM;
        /* Counted at once, so config_unref() frees it even half-read. */
        if (!append_object((void ***)&c->upstreams, &c->n_upstreams, u)) {
                config_upstream_unref(u);
                return -ENOMEM;
        }
        r = config_note_object(a->ctx, CONFIG_OBJECT_UPSTREAM, full_path(a, "metadata", q));
        if (r < 0)
                return r;
        config_upstream_init(u);
        u->mark = config_mark(a->ctx, name_node);
        u->connect_timeout_usec = APISIX_DEFAULT_TIMEOUT_USEC;
        u->send_timeout_usec = APISIX_DEFAULT_TIMEOUT_USEC;
        u->read_timeout_usec = APISIX_DEFAULT_TIMEOUT_USEC;
        u->balancer = strdup(config_balancer_names[0]);
        if (!u->balancer)
                return -ENOMEM;

        if (a->name) {
                r = compose_name(a, a->namespace, a->name, NULL, name_node,
                                 full_path(a, "metadata.name", q), "upstream name", &u->name);
                if (r < 0)
                        return r;
        }

        if (v[UP_SCHEME] &&
            (s = config_value_text(a->ctx, v[UP_SCHEME], joined(q, sp, "scheme")))) {
                Scheme scheme = scheme_from_string(s);

                if (scheme >= 0)
                        u->scheme = scheme;
                else if (streq(s, "grpc") || streq(s, "grpcs"))
                        config_node_error(a->ctx, v[UP_SCHEME], joined(q, sp, "scheme"),
                                     "'%s' is not supported (known: http, https)", s);
                else
                        config_node_error(a->ctx, v[UP_SCHEME], joined(q, sp, "scheme"),
                                     "unknown scheme '%s' (known: http, https, grpc, grpcs)",
                                     config_node_escape(v[UP_SCHEME], esc));
        }

        if (v[UP_PASS_HOST] &&
            (s = config_value_text(a->ctx, v[UP_PASS_HOST], joined(q, sp, "passHost")))) {
                PassHost ph = pass_host_from_string(s);

                if (ph >= 0)
                        u->pass_host = ph;
                else
                        config_node_error(a->ctx, v[UP_PASS_HOST], joined(q, sp, "passHost"),
                                     "unknown passHost '%s' (known: pass, node, rewrite)",
                                     config_node_escape(v[UP_PASS_HOST], esc));
        }
        if (v[UP_UPSTREAM_HOST]) {
                r = config_string_value(a->ctx, v[UP_UPSTREAM_HOST],
                                        joined(q, sp, "upstreamHost"), &validate_host_port,
                                        &u->upstream_host);
                if (r < 0)
                        return r;
                /* APISIX would ignore it; a host that is never sent is a mistake to point at. */
                if (u->pass_host != PASS_HOST_REWRITE)
                        config_node_error(a->ctx, v[UP_UPSTREAM_HOST],
                                          joined(q, sp, "upstreamHost"),
                                          "only used with passHost: rewrite");
        } else if (u->pass_host == PASS_HOST_REWRITE)
                config_node_error(a->ctx, spec, sp,
                             "missing required key 'upstreamHost' (passHost is rewrite)");

        if (v[UP_LOADBALANCER]) {
                r = translate_loadbalancer(a, v[UP_LOADBALANCER], joined(q, sp, "loadbalancer"), u);
                if (r < 0)
                        return r;
        }
        if (v[UP_TIMEOUT])
                translate_timeout(a, v[UP_TIMEOUT], joined(q, sp, "timeout"), u);
        if (v[UP_HEALTH_CHECK]) {
                r = translate_health_check(a, v[UP_HEALTH_CHECK], joined(q, sp, "healthCheck"), u);
                if (r < 0)
                        return r;
        }

        /* Without externalNodes an ApisixUpstream decorates the Kubernetes Service of its name. */
        if (!v[UP_EXTERNAL_NODES])
                config_node_error(a->ctx, spec, sp,
                             "missing required key 'externalNodes': without it an "
                             "ApisixUpstream configures the Kubernetes Service of its name, "
                             "which does not exist outside Kubernetes");
        else {
                n = config_value_sequence(a->ctx, v[UP_EXTERNAL_NODES],
                                          joined(q, sp, "externalNodes"),
                                          "at least one node is required", &config_count_nodes);
                for (size_t j = 0; j < n; j++) {
                        yaml_node_t *item = config_sequence_item(a->ctx, v[UP_EXTERNAL_NODES], j);

                        if (!item)
                                return 0;
                        config_path_index(p, joined(q, sp, "externalNodes"), j);
                        r = translate_node(a, item, p, u);
                        if (r < 0)
                                return r;
                }
        }
        /* Here, once scheme: is known, whatever the order of the keys. */
        for (size_t j = 0; j < u->n_nodes; j++)
                if (u->nodes[j].port == 0)
                        u->nodes[j].port = scheme_default_port(u->scheme);
        r = config_check_nodes(a->ctx, u, joined(q, sp, "externalNodes"));
        if (r < 0)
                return r;

        /* APISIX retries on every other node by default. */
        n = u->n_nodes > 0 ? u->n_nodes - 1 : 0;
        u->retries = (unsigned)(n < CONFIG_RETRIES_MAX ? n : CONFIG_RETRIES_MAX);
        if (v[UP_RETRIES] && config_value_integer(a->ctx, v[UP_RETRIES], joined(q, sp, "retries"),
                                                  0, CONFIG_RETRIES_MAX, &i))
                u->retries = (unsigned)i;
        return 0;
}

/* ---- ApisixRoute ---- */

enum {
        REF_NAME,
        REF_WEIGHT,
        _REF_MAX,
};

static const ConfigField reference_keys[_REF_MAX] = {
        [REF_NAME] = {.key = "name"},
        [REF_WEIGHT] = {.key = "weight"},
};

static int translate_reference(Apisix *a, yaml_node_t *node, const char *path, ConfigRoute *rt)
{
        yaml_node_t *v[_REF_MAX];
        char p[CONFIG_PATH_MAX],
                esc[CONFIG_ESCAPE_MAX];
        ConfigRouteUpstream *ru;
        const char *name, *why;
        int64_t i;
        int r;

        if (!config_read_mapping(a->ctx, node, path, reference_keys, _REF_MAX, NULL, v))
                return 0;

        ru = array_append((void **)&rt->upstreams, &rt->n_upstreams, sizeof(ConfigRouteUpstream));
        if (!ru)
                return -ENOMEM;
        ru->weight = APISIX_DEFAULT_WEIGHT;
        ru->mark = config_mark(a->ctx, v[REF_NAME] ? v[REF_NAME] : node);

        config_path_join(p, path, "weight");
        if (v[REF_WEIGHT] &&
            config_value_integer(a->ctx, v[REF_WEIGHT], p, 0, CONFIG_WEIGHT_MAX, &i))
                ru->weight = (uint32_t)i;

        config_path_join(p, path, "name");
        if (!v[REF_NAME]) {
                config_missing_key(a->ctx, node, path, "name");
                return 0;
        }
        name = config_value_text(a->ctx, v[REF_NAME], p);
        if (!name)
                return 0;
        why = check_kubernetes_name(name, false);
        if (why) {
                config_node_error(a->ctx, v[REF_NAME], p, "invalid ApisixUpstream name '%s': %s",
                             config_node_escape(v[REF_NAME], esc), why);
                return 0;
        }
        /* With its metadata in error, the route's namespace is unknown: whatever this would
         * resolve to could only add misleading errors. */
        if (!a->name)
                return 0;
        /* Resolved in the route's namespace, as the ingress controller does. */
        r = compose_name(a, a->namespace, name, NULL, v[REF_NAME], p, "upstream name", &ru->name);
        if (r < 0 || !ru->name)
                return r;
        return 0;
}

enum {
        MATCH_PATHS,
        MATCH_HOSTS,
        MATCH_METHODS,
        MATCH_REMOTE_ADDRS,
        MATCH_EXPRS,
        MATCH_FILTER_FUNC,
        _MATCH_MAX,
};

static const ConfigField match_keys[_MATCH_MAX] = {
        [MATCH_PATHS] = {.key = "paths"},
        [MATCH_HOSTS] = {.key = "hosts"},
        [MATCH_METHODS] = {.key = "methods"},
        [MATCH_REMOTE_ADDRS] = {.key = "remoteAddrs",
                                .refusal = "matching on client addresses is not supported "
                                           "yet"},
        [MATCH_EXPRS] = {.key = "exprs",
                         .refusal = "matching on request variables (headers, query, cookies) is "
                                    "not supported yet"},
        [MATCH_FILTER_FUNC] = {.key = "filter_func",
                               .refusal = "Lua filter functions cannot run here"},
};

static int translate_match(Apisix *a, yaml_node_t *node, const char *path, ConfigRoute *rt)
{
        yaml_node_t *v[_MATCH_MAX];
        char p[CONFIG_PATH_MAX];
        int r;

        if (!config_read_mapping(a->ctx, node, path, match_keys, _MATCH_MAX, NULL, v))
                return 0;

        config_path_join(p, path, "paths");
        if (!v[MATCH_PATHS])
                config_missing_key(a->ctx, node, path, "paths");
        else {
                r = config_value_strv(a->ctx, v[MATCH_PATHS], p, &strv_paths, &rt->paths);
                if (r < 0)
                        return r;
        }
        if (v[MATCH_HOSTS]) {
                config_path_join(p, path, "hosts");
                r = config_value_strv(a->ctx, v[MATCH_HOSTS], p, &strv_hosts, &rt->hosts);
                if (r < 0)
                        return r;
        }
        if (v[MATCH_METHODS]) {
                config_path_join(p, path, "methods");
                r = config_value_strv(a->ctx, v[MATCH_METHODS], p, &strv_methods,
                                      &rt->methods);
                if (r < 0)
                        return r;
        }
        return 0;
}

enum {
        HTTP_NAME,
        HTTP_PRIORITY,
        HTTP_MATCH,
        HTTP_UPSTREAMS,
        HTTP_WEBSOCKET,
        HTTP_TIMEOUT,
        HTTP_BACKENDS,
        HTTP_PLUGINS,
        HTTP_PLUGIN_CONFIG_NAME,
        HTTP_PLUGIN_CONFIG_NAMESPACE,
        HTTP_AUTHENTICATION,
        _HTTP_MAX,
};

#define NO_PLUGINS "lbproxy runs no APISIX plugins"

static const ConfigField http_keys[_HTTP_MAX] = {
        [HTTP_NAME] = {.key = "name"},
        [HTTP_PRIORITY] = {.key = "priority"},
        [HTTP_MATCH] = {.key = "match"},
        [HTTP_UPSTREAMS] = {.key = "upstreams"},
        [HTTP_WEBSOCKET] = {.key = "websocket"},
        [HTTP_TIMEOUT] = {.key = "timeout",
                          .refusal = "per-route timeouts are not supported (set spec.timeout "
                                     "on the ApisixUpstream)"},
        [HTTP_BACKENDS] = {.key = "backends",
                           .refusal = "backends are Kubernetes Services, which do not exist "
                                      "outside Kubernetes (name an ApisixUpstream with "
                                      "externalNodes in upstreams instead)"},
        [HTTP_PLUGINS] = {.key = "plugins", .refusal = "plugins are not supported: " NO_PLUGINS},
        [HTTP_PLUGIN_CONFIG_NAME] = {.key = "plugin_config_name",
                                     .refusal = "ApisixPluginConfig is not supported: " NO_PLUGINS},
        [HTTP_PLUGIN_CONFIG_NAMESPACE] =
                {.key = "plugin_config_namespace",
                 .refusal = "ApisixPluginConfig is not supported: " NO_PLUGINS},
        [HTTP_AUTHENTICATION] = {.key = "authentication",
                                 .refusal = "authentication is not supported: it is "
                                            "done by APISIX plugins, and " NO_PLUGINS},
};

static int translate_rule(Apisix *a, yaml_node_t *node, const char *path)
{
        Config *c = a->ctx->config;
        yaml_node_t *v[_HTTP_MAX];
        char p[CONFIG_PATH_MAX], esc[CONFIG_ESCAPE_MAX];
        const char *rule = NULL, *why;
        ConfigRoute *rt;
        bool websocket;
        size_t n;
        int64_t i;
        int r;

        if (!config_read_mapping(a->ctx, node, path, http_keys, _HTTP_MAX, NULL, v))
                return 0;

        rt = config_route_new(a->ctx->file);
        if (!rt)
                return -ENOMEM;
        if (!append_object((void ***)&c->routes, &c->n_routes, rt)) {
                config_route_unref(rt);
                return -ENOMEM;
        }
        rt->mark = config_mark(a->ctx, v[HTTP_NAME] ? v[HTTP_NAME] : node);
        r = config_note_object(a->ctx, CONFIG_OBJECT_ROUTE, path);
        if (r < 0)
                return r;

        config_path_join(p, path, "name");
        if (!v[HTTP_NAME])
                config_missing_key(a->ctx, node, path, "name");
        else
                rule = config_value_text(a->ctx, v[HTTP_NAME], p);
        if (rule) {
                /* config_check_name() only reads, but takes a string it may change. */
                char *copy = strdup(rule);

                if (!copy)
                        return -ENOMEM;
                why = config_check_name(copy);
                free(copy);
                if (why) {
                        config_node_error(a->ctx, v[HTTP_NAME], p, "invalid name '%s': %s",
                                     config_node_escape(v[HTTP_NAME], esc), why);
                        rule = NULL;
                }
        }
        if (rule && a->name) {
                /* The tutorial names its one rule like the ApisixRoute: "lb-route", not
                 * "lb-route_lb-route". */
                r = compose_name(a, a->namespace, a->name, streq(rule, a->name) ? NULL : rule,
                                 v[HTTP_NAME], p, "route name", &rt->name);
                if (r < 0)
                        return r;
        }

        config_path_join(p, path, "priority");
        if (v[HTTP_PRIORITY] &&
            config_value_integer(a->ctx, v[HTTP_PRIORITY], p, INT_MIN, INT_MAX, &i))
                rt->priority = (int)i;

        config_path_join(p, path, "websocket");
        if (v[HTTP_WEBSOCKET] && config_value_boolean(a->ctx, v[HTTP_WEBSOCKET], p, &websocket))
                rt->websocket = websocket;

        config_path_join(p, path, "match");
        if (!v[HTTP_MATCH])
                config_missing_key(a->ctx, node, path, "match");
        else {
                r = translate_match(a, v[HTTP_MATCH], p, rt);
                if (r < 0)
                        return r;
        }

        config_path_join(p, path, "upstreams");
        if (!v[HTTP_UPSTREAMS]) {
                /* A refused backends: said enough. */
                if (!has_value(a, node, "backends"))
                        config_missing_key(a->ctx, node, path, "upstreams");
                return 0;
        }
        n = config_value_sequence(a->ctx, v[HTTP_UPSTREAMS], p, "at least one upstream is required",
                            &config_count_route_upstreams);
        for (size_t j = 0; j < n; j++) {
                yaml_node_t *item = config_sequence_item(a->ctx, v[HTTP_UPSTREAMS], j);
                char q[CONFIG_PATH_MAX];

                if (!item)
                        return 0;
                config_path_index(q, p, j);
                r = translate_reference(a, item, q, rt);
                if (r < 0)
                        return r;
        }
        return 0;
}

enum {
        ROUTE_INGRESS_CLASS,
        ROUTE_HTTP,
        ROUTE_STREAM,
        _ROUTE_MAX,
};

static const ConfigField route_keys[_ROUTE_MAX] = {
        [ROUTE_INGRESS_CLASS] = {.key = "ingressClassName"},
        [ROUTE_HTTP] = {.key = "http"},
        [ROUTE_STREAM] = {.key = "stream", .refusal = "TCP/UDP stream routes are not supported"},
};

static int translate_route(Apisix *a, yaml_node_t *spec)
{
        char sp[CONFIG_PATH_MAX], q[CONFIG_PATH_MAX], p[CONFIG_PATH_MAX];
        yaml_node_t *v[_ROUTE_MAX];
        size_t n;
        int r;

        full_path(a, "spec", sp);
        if (!config_read_mapping(a->ctx, spec, sp, route_keys, _ROUTE_MAX, NULL, v))
                return 0;
        check_ingress_class(a, v[ROUTE_INGRESS_CLASS], joined(q, sp, "ingressClassName"));

        if (!v[ROUTE_HTTP]) {
                /* A refused stream: said enough. */
                if (!has_value(a, spec, "stream"))
                        config_missing_key(a->ctx, spec, sp, "http");
                return 0;
        }
        n = config_value_sequence(a->ctx, v[ROUTE_HTTP], joined(q, sp, "http"),
                                  "at least one rule is required", NULL);
        for (size_t i = 0; i < n; i++) {
                yaml_node_t *item = config_sequence_item(a->ctx, v[ROUTE_HTTP], i);

                if (!item)
                        return 0;
                config_path_index(p, joined(q, sp, "http"), i);
                r = translate_rule(a, item, p);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---- documents ---- */

enum {
        META_NAME,
        META_NAMESPACE,
        META_LABELS,
        META_ANNOTATIONS,
        _META_MAX,
};

/* labels and annotations are bookkeeping for people and tools: they change nothing in how an
 * APISIX resource proxies, so they are allowed and left alone. */
static const ConfigField metadata_keys[_META_MAX] = {
        [META_NAME] = {.key = "name"},
        [META_NAMESPACE] = {.key = "namespace"},
        [META_LABELS] = {.key = "labels"},
        [META_ANNOTATIONS] = {.key = "annotations"},
};

/* Reads metadata: sets a->name, a->namespace and the label; *ret_name_node is where the
 * upstream is marked. */
static void read_metadata(Apisix *a, yaml_node_t *node, const char *kind,
                          yaml_node_t **ret_name_node)
{
        char q[CONFIG_PATH_MAX];
        yaml_node_t *v[_META_MAX];
        char esc[CONFIG_ESCAPE_MAX];
        const char *name = NULL, *namespace = NULL, *why;

        *ret_name_node = node;
        if (!config_read_mapping(a->ctx, node, full_path(a, "metadata", q), metadata_keys,
                                 _META_MAX, NULL, v))
                return;

        if (!v[META_NAME])
                config_missing_key(a->ctx, node, full_path(a, "metadata", q), "name");
        else if ((name = config_value_text(a->ctx, v[META_NAME],
                                           full_path(a, "metadata.name", q)))) {
                *ret_name_node = v[META_NAME];
                why = check_kubernetes_name(name, false);
                if (why) {
                        config_node_error(a->ctx, v[META_NAME], full_path(a, "metadata.name", q),
                                          "invalid name '%s': %s",
                                          config_node_escape(v[META_NAME], esc), why);
                        name = NULL;
                }
        }
        if (v[META_NAMESPACE] &&
            (namespace = config_value_text(a->ctx, v[META_NAMESPACE],
                                           full_path(a, "metadata.namespace", q)))) {
                why = check_kubernetes_name(namespace, true);
                if (why) {
                        config_node_error(a->ctx, v[META_NAMESPACE],
                                          full_path(a, "metadata.namespace", q),
                                          "invalid namespace '%s': %s",
                                          config_node_escape(v[META_NAMESPACE], esc), why);
                        namespace = NULL;
                        name = NULL; /* not without its namespace: that would be another name */
                }
        }
        for (size_t i = META_LABELS; i <= META_ANNOTATIONS; i++)
                if (v[i] && v[i]->type != YAML_MAPPING_NODE) {
                        char p[CONFIG_PATH_MAX];

                        config_path_join(p, full_path(a, "metadata", q), metadata_keys[i].key);
                        config_node_error(a->ctx, v[i], p, "expected a mapping, got %s",
                                     config_node_kind(v[i]));
                }

        a->name = name;
        a->namespace = name ? namespace : NULL;
        if (name)
                format_into(a->label, sizeof(a->label), "%s/%s%s%s", kind,
                         namespace ? namespace : "", namespace ? "/" : "", name);
}

enum {
        DOC_API_VERSION,
        DOC_KIND,
        DOC_METADATA,
        DOC_SPEC,
        _DOC_MAX,
};

static const ConfigField document_keys[_DOC_MAX] = {
        [DOC_API_VERSION] = {.key = "apiVersion"},
        [DOC_KIND] = {.key = "kind"},
        [DOC_METADATA] = {.key = "metadata"},
        [DOC_SPEC] = {.key = "spec"},
};

static int translate_document(Apisix *a, yaml_node_t *root)
{
        char q[CONFIG_PATH_MAX];

        yaml_node_t *api = config_mapping_get(a->doc, root, "apiVersion");
        yaml_node_t *kind = config_mapping_get(a->doc, root, "kind");
        yaml_node_t *v[_DOC_MAX], *name_node;
        char esc[CONFIG_ESCAPE_MAX];
        const char *s;

        /* What the document is comes first: the keys of a manifest of another kind would only
         * make a heap of unknown-key errors. */
        if (!api || config_node_is_null(api)) {
                config_missing_key(a->ctx, root, full_path(a, NULL, q), "apiVersion");
                return 0;
        }
        s = config_value_text(a->ctx, api, full_path(a, "apiVersion", q));
        if (!s)
                return 0;
        if (!streq(s, APISIX_API_VERSION)) {
                if (strncmp(s, APISIX_API_GROUP, strlen(APISIX_API_GROUP)) == 0)
                        config_node_error(a->ctx, api, full_path(a, "apiVersion", q),
                                     "'%s' is not supported (supported: " APISIX_API_VERSION ")",
                                     config_node_escape(api, esc));
                else
                        config_node_error(a->ctx, api, full_path(a, "apiVersion", q),
                                     "'%s' is not supported: of Kubernetes manifests, only "
                                     "APISIX's (" APISIX_API_VERSION " ApisixUpstream and "
                                     "ApisixRoute) are read",
                                     config_node_escape(api, esc));
                return 0;
        }
        if (!kind || config_node_is_null(kind)) {
                config_missing_key(a->ctx, root, full_path(a, NULL, q), "kind");
                return 0;
        }
        s = config_value_text(a->ctx, kind, full_path(a, "kind", q));
        if (!s)
                return 0;
        if (!streq(s, "ApisixUpstream") && !streq(s, "ApisixRoute")) {
                config_node_error(a->ctx, kind, full_path(a, "kind", q),
                             "'%s' is not supported (supported: ApisixUpstream, ApisixRoute)",
                             config_node_escape(kind, esc));
                return 0;
        }
        /* Until metadata.name is known, messages at least say which kind of document. */
        format_into(a->label, sizeof(a->label), "%s", s);

        if (!config_read_mapping(a->ctx, root, full_path(a, NULL, q), document_keys, _DOC_MAX, NULL,
                                 v))
                return 0;
        if (!v[DOC_METADATA]) {
                config_missing_key(a->ctx, root, full_path(a, NULL, q), "metadata");
                name_node = root;
        } else
                read_metadata(a, v[DOC_METADATA], s, &name_node);
        if (!v[DOC_SPEC]) {
                config_missing_key(a->ctx, root, full_path(a, NULL, q), "spec");
                return 0;
        }
        if (streq(s, "ApisixUpstream"))
                return translate_upstream(a, v[DOC_SPEC], name_node);
        return translate_route(a, v[DOC_SPEC]);
}

int apisix_document_hook(ConfigContext *ctx, yaml_document_t *doc, yaml_node_t *root)
{
        Apisix a = {.ctx = ctx, .doc = doc};
        int r;

        /* Native documents have neither key; any Kubernetes manifest has both. */
        if (!config_mapping_get(doc, root, "apiVersion") && !config_mapping_get(doc, root, "kind"))
                return 0;
        r = translate_document(&a, root);
        return r < 0 ? r : 1;
}

int apisix_parse_duration(const char *s, uint64_t *ret_usec)
{
        return config_parse_duration_as(s, &config_duration_go, ret_usec);
}
