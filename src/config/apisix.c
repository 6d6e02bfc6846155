/* SPDX-License-Identifier: MIT */
/* APISIX manifests → native upstreams and routes (see apisix.h for the naming). A small
 * table per mapping says which keys are translated and which are refused, and why; values are
 * checked with the native validators (config-values.c), so a host or a path means the same in
 * both forms. Like the native schema, every problem is reported and the walk goes on; only
 * out-of-memory ends it.
 *
 * Where APISIX's defaults differ from lbproxy's, APISIX's win, because a manifest means what
 * it means in APISIX: an external node's and a route upstream's weight default to 100, each
 * upstream timeout to 60s (the ingress controller's DefaultUpstreamTimeout, which is also
 * nginx's), a zero timeout means the default as in the controller, and retries default to the
 * number of nodes minus one (apisix/balancer.lua). */

#include <assert.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>

#include "config/apisix.h"

#define APISIX_API_GROUP "apisix.apache.org/"
#define APISIX_API_VERSION APISIX_API_GROUP "v2"
#define APISIX_INGRESS_CLASS "apisix"

#define APISIX_DEFAULT_WEIGHT 100
#define APISIX_DEFAULT_TIMEOUT_USEC (60 * USEC_PER_SEC)

#define APISIX_PATH_MAX 256
#define APISIX_LABEL_MAX 384 /* "ApisixUpstream/" + namespace + "/" + name */
#define APISIX_KEYS_MAX 16

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

/* A key a mapping may have. `refusal` says why the key cannot apply here; NULL when it is
 * translated. */
typedef struct ApisixKey {
        const char *key;
        const char *refusal;
} ApisixKey;

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

static const char *full_path(const Apisix *a, const char *path,
                             char buf[static APISIX_LABEL_MAX + APISIX_PATH_MAX])
{
        bool has_path = path && *path;

        format_into(buf, APISIX_LABEL_MAX + APISIX_PATH_MAX, "%s%s%s", a->label,
                    *a->label && has_path ? ": " : "", has_path ? path : "");
        return buf;
}

static void apisix_error(Apisix *a, const yaml_node_t *node, const char *path, const char *fmt,
                         ...) _printf_(4, 5);

static void apisix_error(Apisix *a, const yaml_node_t *node, const char *path, const char *fmt,
                         ...)
{
        char full[APISIX_LABEL_MAX + APISIX_PATH_MAX];
        _cleanup_free_ char *msg = NULL;
        ConfigMark m = config_mark(a->ctx, node);
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&msg, fmt, ap);
        va_end(ap);
        if (r < 0) {
                msg = NULL;
                a->ctx->oom = true;
                return;
        }
        config_error(a->ctx, &m, full_path(a, path, full), "%s", msg);
}

static const char *node_escape(const yaml_node_t *node, char buf[static CONFIG_ESCAPE_MAX])
{
        return config_escape((const char *)node->data.scalar.value, node->data.scalar.length, buf);
}

static const char *escape(const char *s, char buf[static CONFIG_ESCAPE_MAX])
{
        return config_escape(s, strlen(s), buf);
}

static void path_join(char buf[static APISIX_PATH_MAX], const char *path, const char *key)
{
        bool has_path = path && *path;

        format_into(buf, APISIX_PATH_MAX, "%s%s%s", has_path ? path : "", has_path ? "." : "",
                    key);
}

static void path_index(char buf[static APISIX_PATH_MAX], const char *path, size_t i)
{
        format_into(buf, APISIX_PATH_MAX, "%s[%zu]", path, i);
}

/* ---- walking ---- */

/* The same alias-expansion guard as the native schema's, on the same counters. */
static bool visit(Apisix *a, yaml_node_t *node)
{
        ConfigContext *ctx = a->ctx;
        ConfigMark m;

        if (ctx->too_complex)
                return false;
        if (++ctx->visits <= ctx->max_visits)
                return true;

        ctx->too_complex = true;
        m = config_mark(ctx, yaml_document_get_root_node(a->doc));
        config_error(ctx, &m, NULL, "the document expands to more than %zu values through aliases",
                     ctx->max_visits);
        return false;
}

/* Reads the keys of a mapping: an unknown, duplicate or refused key is reported at the key;
 * values[i] gets key i's value, NULL when absent, null or refused. False when `node` is not
 * a mapping (reported) or the walk must stop. */
static bool read_mapping(Apisix *a, yaml_node_t *node, const char *path, const ApisixKey *keys,
                         size_t n_keys, yaml_node_t **values)
{
        yaml_node_t *seen[APISIX_KEYS_MAX] = {};
        char esc[CONFIG_ESCAPE_MAX], p[APISIX_PATH_MAX];

        assert(n_keys <= APISIX_KEYS_MAX);
        for (size_t i = 0; i < n_keys; i++)
                values[i] = NULL;

        if (node->type != YAML_MAPPING_NODE) {
                apisix_error(a, node, path, "expected a mapping, got %s", config_node_kind(node));
                return false;
        }

        for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
             pair < node->data.mapping.pairs.top; pair++) {
                yaml_node_t *key = yaml_document_get_node(a->doc, pair->key);
                yaml_node_t *value = yaml_document_get_node(a->doc, pair->value);
                size_t i;

                if (!key || !value || !visit(a, value))
                        return false;
                if (key->type != YAML_SCALAR_NODE) {
                        apisix_error(a, key, path, "expected a string as key, got %s",
                                     config_node_kind(key));
                        continue;
                }
                for (i = 0; i < n_keys; i++)
                        if (strlen(keys[i].key) == key->data.scalar.length &&
                            memcmp(keys[i].key, key->data.scalar.value, key->data.scalar.length) ==
                                    0)
                                break;
                if (i == n_keys) {
                        apisix_error(a, key, path, "unknown key '%s'", node_escape(key, esc));
                        continue;
                }
                if (seen[i]) {
                        /* YAML forbids it; libyaml lets it through. */
                        ConfigMark first = config_mark(a->ctx, seen[i]);

                        apisix_error(a, key, path, "duplicate key '%s' (first at %u:%u)",
                                     keys[i].key, first.line, first.column);
                        continue;
                }
                seen[i] = key;
                /* As in native documents, `key: ~` is the same as no key. */
                if (config_node_is_null(value))
                        continue;
                if (keys[i].refusal) {
                        path_join(p, path, keys[i].key);
                        apisix_error(a, key, p, "%s", keys[i].refusal);
                        continue;
                }
                values[i] = value;
        }
        return true;
}

/* Whether a mapping has `key` with a value that is not null. */
static bool has_value(Apisix *a, yaml_node_t *mapping, const char *key)
{
        yaml_node_t *v = config_mapping_get(a->doc, mapping, key);

        return v && !config_node_is_null(v);
}

static void missing_key(Apisix *a, yaml_node_t *mapping, const char *path, const char *key)
{
        apisix_error(a, mapping, path, "missing required key '%s'", key);
}

/* The items of a sequence, or 0 after reporting that it is not one (or is empty, when
 * `empty_error` is given, or holds more than `count` allows, when given: the native limits). */
static size_t sequence_length(Apisix *a, yaml_node_t *node, const char *path,
                              const char *empty_error, const ConfigCount *count)
{
        char buf[CONFIG_COUNT_STR_MAX];
        const char *why;
        size_t n;

        if (node->type != YAML_SEQUENCE_NODE) {
                apisix_error(a, node, path, "expected a sequence, got %s", config_node_kind(node));
                return 0;
        }
        n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
        if (n == 0 && empty_error)
                apisix_error(a, node, path, "%s", empty_error);
        why = count ? config_check_count(count, n, buf) : NULL;
        if (why) {
                apisix_error(a, node, path, "%s", why);
                return 0;
        }
        return n;
}

static yaml_node_t *sequence_item(Apisix *a, yaml_node_t *node, size_t i)
{
        yaml_node_t *item = yaml_document_get_node(a->doc, node->data.sequence.items.start[i]);

        return item && visit(a, item) ? item : NULL;
}

/* ---- values ---- */

static bool is_plain(const yaml_node_t *node)
{
        return node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

/* The text of a non-null scalar, or NULL after saying what was there instead. */
static const char *scalar_text(Apisix *a, yaml_node_t *node, const char *path,
                               const char *expected)
{
        if (node->type != YAML_SCALAR_NODE || config_node_is_null(node)) {
                apisix_error(a, node, path, "expected %s, got %s", expected,
                             config_node_kind(node));
                return NULL;
        }
        if (strlen((const char *)node->data.scalar.value) != node->data.scalar.length) {
                apisix_error(a, node, path, "must not contain a NUL character");
                return NULL;
        }
        return (const char *)node->data.scalar.value;
}

/* A non-empty string, or NULL (reported). */
static const char *string_value(Apisix *a, yaml_node_t *node, const char *path)
{
        const char *v = scalar_text(a, node, path, "a string");

        if (v && !*v) {
                apisix_error(a, node, path, "must not be empty");
                return NULL;
        }
        return v;
}

/* A copy of a string that `check` accepts (and may normalize), or NULL: *ret is NULL when it
 * was reported. Returns 0 or -ENOMEM. */
static int checked_string(Apisix *a, yaml_node_t *node, const char *path, const char *what,
                          const char *(*check)(char *s), char **ret)
{
        char esc[CONFIG_ESCAPE_MAX];
        const char *v, *why;
        char *s;

        *ret = NULL;
        v = string_value(a, node, path);
        if (!v)
                return 0;
        s = strdup(v);
        if (!s)
                return -ENOMEM;
        why = check(s);
        if (why) {
                apisix_error(a, node, path, "invalid %s '%s': %s", what, node_escape(node, esc),
                             why);
                free(s);
                return 0;
        }
        *ret = s;
        return 0;
}

static bool int_value(Apisix *a, yaml_node_t *node, const char *path, int64_t min, int64_t max,
                      int64_t *ret)
{
        char esc[CONFIG_ESCAPE_MAX];
        const char *v, *p;
        uint64_t mag = 0;
        bool neg = false, overflow = false;
        int64_t value;

        v = scalar_text(a, node, path, "an integer");
        if (!v)
                return false;
        p = v;
        if (*p == '-' || *p == '+')
                neg = *p++ == '-';
        if (!is_plain(node) || !*p || p[strspn(p, "0123456789")] != 0) {
                apisix_error(a, node, path, "expected an integer, got %s'%s'",
                             is_plain(node) ? "" : "the quoted string ", node_escape(node, esc));
                return false;
        }
        for (; *p; p++) {
                if (mag > (UINT64_C(1) << 63) / 10) {
                        overflow = true;
                        break;
                }
                mag = mag * 10 + (uint64_t)(*p - '0');
        }
        if (!overflow && mag > (neg ? (UINT64_C(1) << 63) : (uint64_t)INT64_MAX))
                overflow = true;
        value = overflow ? 0 : neg ? (int64_t)(0 - mag) : (int64_t)mag;
        if (overflow || value < min || value > max) {
                apisix_error(a, node, path, "%s is out of range (%" PRId64 "..%" PRId64 ")",
                             node_escape(node, esc), min, max);
                return false;
        }
        *ret = value;
        return true;
}

static bool bool_value(Apisix *a, yaml_node_t *node, const char *path, bool *ret)
{
        char esc[CONFIG_ESCAPE_MAX];
        const char *v;

        v = scalar_text(a, node, path, "a boolean");
        if (!v)
                return false;
        if (is_plain(node) && config_boolean_word(v, ret))
                return true;
        apisix_error(a, node, path, "expected a boolean (true or false), got %s'%s'",
                     is_plain(node) ? "" : "the quoted string ", node_escape(node, esc));
        return false;
}

int apisix_parse_duration(const char *s, uint64_t *ret_usec)
{
        return config_parse_duration_as(s, &config_duration_go, ret_usec);
}

static bool duration_value(Apisix *a, yaml_node_t *node, const char *path, uint64_t *ret)
{
        char esc[CONFIG_ESCAPE_MAX], max[CONFIG_DURATION_STR_MAX];
        const char *v;
        int r;

        v = scalar_text(a, node, path, "a duration");
        if (!v)
                return false;
        r = apisix_parse_duration(v, ret);
        if (r == -ERANGE)
                apisix_error(a, node, path, "duration '%s' is too long (at most %s)",
                             node_escape(node, esc),
                             config_format_duration(CONFIG_DURATION_MAX, max));
        else if (r < 0 && v[0] == '-')
                apisix_error(a, node, path, "duration '%s' is negative", node_escape(node, esc));
        else if (r < 0)
                apisix_error(a, node, path,
                             "invalid duration '%s' (expected a number with a unit ns, us, ms, s, "
                             "m or h, as in 5s, 1.5s or 1m30s)",
                             node_escape(node, esc));
        return r >= 0;
}

/* A non-empty list of strings each `check` accepts; *ret is left alone unless all are fine. */
static int strv_value(Apisix *a, yaml_node_t *node, const char *path, const char *what,
                      const char *(*check)(char *s), const ConfigCount *count, char ***ret)
{
        _cleanup_strv_free_ char **l = NULL;
        size_t n, k = 0;

        n = sequence_length(a, node, path, "must not be empty", count);
        if (n == 0)
                return 0;
        l = calloc(n + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                yaml_node_t *item = sequence_item(a, node, i);
                char p[APISIX_PATH_MAX];
                int r;

                if (!item)
                        return 0;
                path_index(p, path, i);
                r = checked_string(a, item, p, what, check, &l[k]);
                if (r < 0)
                        return r;
                if (l[k])
                        k++;
        }
        if (k == n)
                *ret = TAKE_PTR(l);
        return 0;
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
                apisix_error(a, node, path, "gives the %s '%s': %s", what,
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
        v = string_value(a, node, path);
        if (v && !streq(v, APISIX_INGRESS_CLASS))
                apisix_error(a, node, path,
                             "'%s' is not served here: lbproxy serves the ingress class '"
                             APISIX_INGRESS_CLASS "' only",
                             node_escape(node, esc));
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

static const ApisixKey node_keys[_NODE_MAX] = {
        [NODE_TYPE] = {"type", NULL},
        [NODE_NAME] = {"name", NULL},
        [NODE_WEIGHT] = {"weight", NULL},
        [NODE_PORT] = {"port", NULL},
};

static int translate_node(Apisix *a, yaml_node_t *node, const char *path, ConfigUpstream *u)
{
        yaml_node_t *v[_NODE_MAX];
        char p[APISIX_PATH_MAX], esc[CONFIG_ESCAPE_MAX];
        const char *type;
        ConfigNode *n;
        int64_t i;
        int r;

        if (!read_mapping(a, node, path, node_keys, _NODE_MAX, v))
                return 0;

        n = array_append((void **)&u->nodes, &u->n_nodes, sizeof(ConfigNode));
        if (!n)
                return -ENOMEM;
        n->mark = config_mark(a->ctx, node);
        n->weight = APISIX_DEFAULT_WEIGHT;

        path_join(p, path, "type");
        if (!v[NODE_TYPE])
                apisix_error(a, node, p,
                             "missing, which makes the node a Kubernetes Service in APISIX: "
                             "Services do not exist outside Kubernetes (use type: Domain)");
        else if ((type = string_value(a, v[NODE_TYPE], p))) {
                if (streq(type, "Service"))
                        apisix_error(a, v[NODE_TYPE], p,
                                     "'Service' names a Kubernetes ExternalName Service, which "
                                     "does not exist outside Kubernetes (use type: Domain)");
                else if (!streq(type, "Domain"))
                        apisix_error(a, v[NODE_TYPE], p, "unknown type '%s' (known: Domain, "
                                     "Service)",
                                     node_escape(v[NODE_TYPE], esc));
        }

        path_join(p, path, "name");
        if (!v[NODE_NAME])
                missing_key(a, node, path, "name");
        else {
                r = checked_string(a, v[NODE_NAME], p, "host", config_check_node_host,
                                   &n->host);
                if (r < 0)
                        return r;
        }

        path_join(p, path, "weight");
        if (v[NODE_WEIGHT] && int_value(a, v[NODE_WEIGHT], p, 0, CONFIG_WEIGHT_MAX, &i))
                n->weight = (uint32_t)i;
        path_join(p, path, "port");
        if (v[NODE_PORT] && int_value(a, v[NODE_PORT], p, 1, CONFIG_PORT_MAX, &i))
                n->port = (uint16_t)i;
        return 0;
}

enum {
        LB_TYPE,
        LB_HASH_ON,
        LB_KEY,
        _LB_MAX,
};

static const ApisixKey loadbalancer_keys[_LB_MAX] = {
        [LB_TYPE] = {"type", NULL},
        [LB_HASH_ON] = {"hashOn", NULL},
        [LB_KEY] = {"key", NULL},
};

/* APISIX's balancers; those config_balancer_names knows map to the balancer of that name. */
static const char *const apisix_balancers[] = {"roundrobin", "chash", "ewma", "least_conn"};

static int translate_loadbalancer(Apisix *a, yaml_node_t *node, const char *path,
                                  ConfigUpstream *u)
{
        char p[APISIX_PATH_MAX], esc[CONFIG_ESCAPE_MAX], known[128] = "";
        yaml_node_t *v[_LB_MAX];
        const char *type = "roundrobin";
        bool is_apisix = false, supported = false;
        size_t o = 0;

        if (!read_mapping(a, node, path, loadbalancer_keys, _LB_MAX, v))
                return 0;

        path_join(p, path, "type");
        /* The ingress controller takes a missing type as roundrobin. */
        if (v[LB_TYPE]) {
                type = string_value(a, v[LB_TYPE], p);
                if (!type)
                        return 0;
        }
        for (size_t i = 0; i < ELEMENTSOF(apisix_balancers); i++)
                is_apisix = is_apisix || streq(type, apisix_balancers[i]);
        for (size_t i = 0; i < CONFIG_BALANCER_MAX; i++) {
                supported = supported || streq(type, config_balancer_names[i]);
                if (o < sizeof(known))
                        o += (size_t)snprintf(known + o, sizeof(known) - o, "%s%s", i ? ", " : "",
                                              config_balancer_names[i]);
        }

        if (!is_apisix)
                apisix_error(a, v[LB_TYPE], p,
                             "unknown type '%s' (known: roundrobin, chash, ewma, least_conn)",
                             escape(type, esc));
        else if (!supported)
                apisix_error(a, v[LB_TYPE], p, "'%s' is not supported yet (known: %s)",
                             escape(type, esc), known);
        else {
                free(u->balancer);
                u->balancer = strdup(type);
                if (!u->balancer)
                        return -ENOMEM;
        }

        /* hashOn and key say what chash hashes; beside any other type they would be ignored. */
        if (is_apisix && !streq(type, "chash"))
                for (size_t i = LB_HASH_ON; i <= LB_KEY; i++)
                        if (v[i]) {
                                path_join(p, path, loadbalancer_keys[i].key);
                                apisix_error(a, v[i], p, "only used with type: chash");
                        }
        return 0;
}

enum {
        TIMEOUT_CONNECT,
        TIMEOUT_SEND,
        TIMEOUT_READ,
        _TIMEOUT_MAX,
};

static const ApisixKey timeout_keys[_TIMEOUT_MAX] = {
        [TIMEOUT_CONNECT] = {"connect", NULL},
        [TIMEOUT_SEND] = {"send", NULL},
        [TIMEOUT_READ] = {"read", NULL},
};

static void translate_timeout(Apisix *a, yaml_node_t *node, const char *path, ConfigUpstream *u)
{
        uint64_t *dest[_TIMEOUT_MAX] = {
                [TIMEOUT_CONNECT] = &u->connect_timeout_usec,
                [TIMEOUT_SEND] = &u->send_timeout_usec,
                [TIMEOUT_READ] = &u->read_timeout_usec,
        };
        yaml_node_t *v[_TIMEOUT_MAX];
        char p[APISIX_PATH_MAX];
        uint64_t usec;

        if (!read_mapping(a, node, path, timeout_keys, _TIMEOUT_MAX, v))
                return;
        for (size_t i = 0; i < _TIMEOUT_MAX; i++) {
                path_join(p, path, timeout_keys[i].key);
                /* Zero is "not set" to the ingress controller, which then sends its default. */
                if (v[i] && duration_value(a, v[i], p, &usec) && usec > 0)
                        *dest[i] = usec;
        }
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

static const ApisixKey upstream_keys[_UP_MAX] = {
        [UP_INGRESS_CLASS] = {"ingressClassName", NULL},
        [UP_EXTERNAL_NODES] = {"externalNodes", NULL},
        [UP_SCHEME] = {"scheme", NULL},
        [UP_PASS_HOST] = {"passHost", NULL},
        [UP_UPSTREAM_HOST] = {"upstreamHost", NULL},
        [UP_LOADBALANCER] = {"loadbalancer", NULL},
        [UP_RETRIES] = {"retries", NULL},
        [UP_TIMEOUT] = {"timeout", NULL},
        [UP_HEALTH_CHECK] = {"healthCheck", "active/passive health checks are not supported yet"},
        [UP_TLS_SECRET] = {"tlsSecret", "client certificates come from a Kubernetes Secret, "
                                        "which does not exist outside Kubernetes"},
        [UP_SUBSETS] = {"subsets", "subsets pick the Pods of a Kubernetes Service by label, "
                                   "which do not exist outside Kubernetes"},
        [UP_DISCOVERY] = {"discovery", "service discovery registries are not supported (list "
                                       "the nodes in externalNodes)"},
        [UP_PORT_LEVEL_SETTINGS] = {"portLevelSettings",
                                    "per-port settings apply to the ports of a Kubernetes "
                                    "Service, which does not exist outside Kubernetes"},
};

static int translate_upstream(Apisix *a, yaml_node_t *spec, yaml_node_t *name_node)
{
        Config *c = a->ctx->config;
        yaml_node_t *v[_UP_MAX];
        char p[APISIX_PATH_MAX], full[APISIX_LABEL_MAX + APISIX_PATH_MAX],
                esc[CONFIG_ESCAPE_MAX];
        const char *s;
        ConfigUpstream *u;
        size_t n;
        int64_t i;
        int r;

        if (!read_mapping(a, spec, "spec", upstream_keys, _UP_MAX, v))
                return 0;
        check_ingress_class(a, v[UP_INGRESS_CLASS], "spec.ingressClassName");

        u = config_upstream_new(a->ctx->file);
        if (!u)
                return -ENOMEM;
        /* Counted at once, so config_unref() frees it even half-read. */
        if (!append_object((void ***)&c->upstreams, &c->n_upstreams, u)) {
                config_upstream_unref(u);
                return -ENOMEM;
        }
        r = config_note_object(a->ctx, CONFIG_OBJECT_UPSTREAM, full_path(a, "metadata", full));
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
                r = compose_name(a, a->namespace, a->name, NULL, name_node, "metadata.name",
                                 "upstream name", &u->name);
                if (r < 0)
                        return r;
        }

        if (v[UP_SCHEME] && (s = string_value(a, v[UP_SCHEME], "spec.scheme"))) {
                Scheme scheme = scheme_from_string(s);

                if (scheme >= 0)
                        u->scheme = scheme;
                else if (streq(s, "grpc") || streq(s, "grpcs"))
                        apisix_error(a, v[UP_SCHEME], "spec.scheme",
                                     "'%s' is not supported (known: http, https)", s);
                else
                        apisix_error(a, v[UP_SCHEME], "spec.scheme",
                                     "unknown scheme '%s' (known: http, https, grpc, grpcs)",
                                     node_escape(v[UP_SCHEME], esc));
        }

        if (v[UP_PASS_HOST] && (s = string_value(a, v[UP_PASS_HOST], "spec.passHost"))) {
                PassHost ph = pass_host_from_string(s);

                if (ph >= 0)
                        u->pass_host = ph;
                else
                        apisix_error(a, v[UP_PASS_HOST], "spec.passHost",
                                     "unknown passHost '%s' (known: pass, node, rewrite)",
                                     node_escape(v[UP_PASS_HOST], esc));
        }
        if (v[UP_UPSTREAM_HOST]) {
                r = checked_string(a, v[UP_UPSTREAM_HOST], "spec.upstreamHost", "host",
                                   config_check_host_port, &u->upstream_host);
                if (r < 0)
                        return r;
                /* APISIX would ignore it; a host that is never sent is a mistake to point at. */
                if (u->pass_host != PASS_HOST_REWRITE)
                        apisix_error(a, v[UP_UPSTREAM_HOST], "spec.upstreamHost",
                                     "only used with passHost: rewrite");
        } else if (u->pass_host == PASS_HOST_REWRITE)
                apisix_error(a, spec, "spec",
                             "missing required key 'upstreamHost' (passHost is rewrite)");

        if (v[UP_LOADBALANCER]) {
                r = translate_loadbalancer(a, v[UP_LOADBALANCER], "spec.loadbalancer", u);
                if (r < 0)
                        return r;
        }
        if (v[UP_TIMEOUT])
                translate_timeout(a, v[UP_TIMEOUT], "spec.timeout", u);

        /* Without externalNodes an ApisixUpstream decorates the Kubernetes Service of its name. */
        if (!v[UP_EXTERNAL_NODES])
                apisix_error(a, spec, "spec",
                             "missing required key 'externalNodes': without it an "
                             "ApisixUpstream configures the Kubernetes Service of its name, "
                             "which does not exist outside Kubernetes");
        else {
                n = sequence_length(a, v[UP_EXTERNAL_NODES], "spec.externalNodes",
                                    "at least one node is required", &config_count_nodes);
                for (size_t j = 0; j < n; j++) {
                        yaml_node_t *item = sequence_item(a, v[UP_EXTERNAL_NODES], j);

                        if (!item)
                                return 0;
                        path_index(p, "spec.externalNodes", j);
                        r = translate_node(a, item, p, u);
                        if (r < 0)
                                return r;
                }
        }
        /* Here, once scheme: is known, whatever the order of the keys. */
        for (size_t j = 0; j < u->n_nodes; j++)
                if (u->nodes[j].port == 0)
                        u->nodes[j].port = scheme_default_port(u->scheme);
        r = config_check_nodes(a->ctx, u, full_path(a, "spec.externalNodes", full));
        if (r < 0)
                return r;

        /* APISIX retries on every other node by default. */
        n = u->n_nodes > 0 ? u->n_nodes - 1 : 0;
        u->retries = (unsigned)(n < CONFIG_RETRIES_MAX ? n : CONFIG_RETRIES_MAX);
        if (v[UP_RETRIES] && int_value(a, v[UP_RETRIES], "spec.retries", 0, CONFIG_RETRIES_MAX, &i))
                u->retries = (unsigned)i;
        return 0;
}

/* ---- ApisixRoute ---- */

enum {
        REF_NAME,
        REF_WEIGHT,
        _REF_MAX,
};

static const ApisixKey reference_keys[_REF_MAX] = {
        [REF_NAME] = {"name", NULL},
        [REF_WEIGHT] = {"weight", NULL},
};

static int translate_reference(Apisix *a, yaml_node_t *node, const char *path, ConfigRoute *rt)
{
        yaml_node_t *v[_REF_MAX];
        char p[APISIX_PATH_MAX],
                esc[CONFIG_ESCAPE_MAX];
        ConfigRouteUpstream *ru;
        const char *name, *why;
        int64_t i;
        int r;

        if (!read_mapping(a, node, path, reference_keys, _REF_MAX, v))
                return 0;

        ru = array_append((void **)&rt->upstreams, &rt->n_upstreams, sizeof(ConfigRouteUpstream));
        if (!ru)
                return -ENOMEM;
        ru->weight = APISIX_DEFAULT_WEIGHT;
        ru->mark = config_mark(a->ctx, v[REF_NAME] ? v[REF_NAME] : node);

        path_join(p, path, "weight");
        if (v[REF_WEIGHT] && int_value(a, v[REF_WEIGHT], p, 0, CONFIG_WEIGHT_MAX, &i))
                ru->weight = (uint32_t)i;

        path_join(p, path, "name");
        if (!v[REF_NAME]) {
                missing_key(a, node, path, "name");
                return 0;
        }
        name = string_value(a, v[REF_NAME], p);
        if (!name)
                return 0;
        why = check_kubernetes_name(name, false);
        if (why) {
                apisix_error(a, v[REF_NAME], p, "invalid ApisixUpstream name '%s': %s",
                             node_escape(v[REF_NAME], esc), why);
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

static const ApisixKey match_keys[_MATCH_MAX] = {
        [MATCH_PATHS] = {"paths", NULL},
        [MATCH_HOSTS] = {"hosts", NULL},
        [MATCH_METHODS] = {"methods", NULL},
        [MATCH_REMOTE_ADDRS] = {"remoteAddrs", "matching on client addresses is not supported "
                                               "yet"},
        [MATCH_EXPRS] = {"exprs", "matching on request variables (headers, query, cookies) is "
                                  "not supported yet"},
        [MATCH_FILTER_FUNC] = {"filter_func", "Lua filter functions cannot run here"},
};

static int translate_match(Apisix *a, yaml_node_t *node, const char *path, ConfigRoute *rt)
{
        yaml_node_t *v[_MATCH_MAX];
        char p[APISIX_PATH_MAX];
        int r;

        if (!read_mapping(a, node, path, match_keys, _MATCH_MAX, v))
                return 0;

        path_join(p, path, "paths");
        if (!v[MATCH_PATHS])
                missing_key(a, node, path, "paths");
        else {
                r = strv_value(a, v[MATCH_PATHS], p, "path", config_check_path,
                               &config_count_route_paths, &rt->paths);
                if (r < 0)
                        return r;
        }
        if (v[MATCH_HOSTS]) {
                path_join(p, path, "hosts");
                r = strv_value(a, v[MATCH_HOSTS], p, "host", config_check_route_host,
                               &config_count_route_hosts, &rt->hosts);
                if (r < 0)
                        return r;
        }
        if (v[MATCH_METHODS]) {
                path_join(p, path, "methods");
                r = strv_value(a, v[MATCH_METHODS], p, "method", config_check_method,
                               &config_count_route_methods, &rt->methods);
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

static const ApisixKey http_keys[_HTTP_MAX] = {
        [HTTP_NAME] = {"name", NULL},
        [HTTP_PRIORITY] = {"priority", NULL},
        [HTTP_MATCH] = {"match", NULL},
        [HTTP_UPSTREAMS] = {"upstreams", NULL},
        [HTTP_WEBSOCKET] = {"websocket", NULL},
        [HTTP_TIMEOUT] = {"timeout", "per-route timeouts are not supported (set spec.timeout "
                                     "on the ApisixUpstream)"},
        [HTTP_BACKENDS] = {"backends", "backends are Kubernetes Services, which do not exist "
                                       "outside Kubernetes (name an ApisixUpstream with "
                                       "externalNodes in upstreams instead)"},
        [HTTP_PLUGINS] = {"plugins", "plugins are not supported: " NO_PLUGINS},
        [HTTP_PLUGIN_CONFIG_NAME] = {"plugin_config_name",
                                     "ApisixPluginConfig is not supported: " NO_PLUGINS},
        [HTTP_PLUGIN_CONFIG_NAMESPACE] = {"plugin_config_namespace",
                                          "ApisixPluginConfig is not supported: " NO_PLUGINS},
        [HTTP_AUTHENTICATION] = {"authentication", "authentication is not supported: it is "
                                                   "done by APISIX plugins, and " NO_PLUGINS},
};

static int translate_rule(Apisix *a, yaml_node_t *node, const char *path)
{
        Config *c = a->ctx->config;
        yaml_node_t *v[_HTTP_MAX];
        char p[APISIX_PATH_MAX], full[APISIX_LABEL_MAX + APISIX_PATH_MAX],
                esc[CONFIG_ESCAPE_MAX];
        const char *rule = NULL, *why;
        ConfigRoute *rt;
        bool websocket;
        size_t n;
        int64_t i;
        int r;

        if (!read_mapping(a, node, path, http_keys, _HTTP_MAX, v))
                return 0;

        rt = config_route_new(a->ctx->file);
        if (!rt)
                return -ENOMEM;
        if (!append_object((void ***)&c->routes, &c->n_routes, rt)) {
                config_route_unref(rt);
                return -ENOMEM;
        }
        rt->mark = config_mark(a->ctx, v[HTTP_NAME] ? v[HTTP_NAME] : node);
        r = config_note_object(a->ctx, CONFIG_OBJECT_ROUTE, full_path(a, path, full));
        if (r < 0)
                return r;

        path_join(p, path, "name");
        if (!v[HTTP_NAME])
                missing_key(a, node, path, "name");
        else
                rule = string_value(a, v[HTTP_NAME], p);
        if (rule) {
                /* config_check_name() only reads, but takes a string it may change. */
                char *copy = strdup(rule);

                if (!copy)
                        return -ENOMEM;
                why = config_check_name(copy);
                free(copy);
                if (why) {
                        apisix_error(a, v[HTTP_NAME], p, "invalid name '%s': %s",
                                     node_escape(v[HTTP_NAME], esc), why);
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

        path_join(p, path, "priority");
        if (v[HTTP_PRIORITY] && int_value(a, v[HTTP_PRIORITY], p, INT_MIN, INT_MAX, &i))
                rt->priority = (int)i;

        path_join(p, path, "websocket");
        if (v[HTTP_WEBSOCKET] && bool_value(a, v[HTTP_WEBSOCKET], p, &websocket))
                rt->websocket = websocket;

        path_join(p, path, "match");
        if (!v[HTTP_MATCH])
                missing_key(a, node, path, "match");
        else {
                r = translate_match(a, v[HTTP_MATCH], p, rt);
                if (r < 0)
                        return r;
        }

        path_join(p, path, "upstreams");
        if (!v[HTTP_UPSTREAMS]) {
                /* A refused backends: said enough. */
                if (!has_value(a, node, "backends"))
                        missing_key(a, node, path, "upstreams");
                return 0;
        }
        n = sequence_length(a, v[HTTP_UPSTREAMS], p, "at least one upstream is required",
                            &config_count_route_upstreams);
        for (size_t j = 0; j < n; j++) {
                yaml_node_t *item = sequence_item(a, v[HTTP_UPSTREAMS], j);
                char q[APISIX_PATH_MAX];

                if (!item)
                        return 0;
                path_index(q, p, j);
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

static const ApisixKey route_keys[_ROUTE_MAX] = {
        [ROUTE_INGRESS_CLASS] = {"ingressClassName", NULL},
        [ROUTE_HTTP] = {"http", NULL},
        [ROUTE_STREAM] = {"stream", "TCP/UDP stream routes are not supported"},
};

static int translate_route(Apisix *a, yaml_node_t *spec)
{
        yaml_node_t *v[_ROUTE_MAX];
        char p[APISIX_PATH_MAX];
        size_t n;
        int r;

        if (!read_mapping(a, spec, "spec", route_keys, _ROUTE_MAX, v))
                return 0;
        check_ingress_class(a, v[ROUTE_INGRESS_CLASS], "spec.ingressClassName");

        if (!v[ROUTE_HTTP]) {
                /* A refused stream: said enough. */
                if (!has_value(a, spec, "stream"))
                        missing_key(a, spec, "spec", "http");
                return 0;
        }
        n = sequence_length(a, v[ROUTE_HTTP], "spec.http", "at least one rule is required",
                            NULL);
        for (size_t i = 0; i < n; i++) {
                yaml_node_t *item = sequence_item(a, v[ROUTE_HTTP], i);

                if (!item)
                        return 0;
                path_index(p, "spec.http", i);
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
static const ApisixKey metadata_keys[_META_MAX] = {
        [META_NAME] = {"name", NULL},
        [META_NAMESPACE] = {"namespace", NULL},
        [META_LABELS] = {"labels", NULL},
        [META_ANNOTATIONS] = {"annotations", NULL},
};

/* Reads metadata: sets a->name, a->namespace and the label; *ret_name_node is where the
 * upstream is marked. */
static void read_metadata(Apisix *a, yaml_node_t *node, const char *kind,
                          yaml_node_t **ret_name_node)
{
        yaml_node_t *v[_META_MAX];
        char esc[CONFIG_ESCAPE_MAX];
        const char *name = NULL, *namespace = NULL, *why;

        *ret_name_node = node;
        if (!read_mapping(a, node, "metadata", metadata_keys, _META_MAX, v))
                return;

        if (!v[META_NAME])
                missing_key(a, node, "metadata", "name");
        else if ((name = string_value(a, v[META_NAME], "metadata.name"))) {
                *ret_name_node = v[META_NAME];
                why = check_kubernetes_name(name, false);
                if (why) {
                        apisix_error(a, v[META_NAME], "metadata.name", "invalid name '%s': %s",
                                     node_escape(v[META_NAME], esc), why);
                        name = NULL;
                }
        }
        if (v[META_NAMESPACE] &&
            (namespace = string_value(a, v[META_NAMESPACE], "metadata.namespace"))) {
                why = check_kubernetes_name(namespace, true);
                if (why) {
                        apisix_error(a, v[META_NAMESPACE], "metadata.namespace",
                                     "invalid namespace '%s': %s",
                                     node_escape(v[META_NAMESPACE], esc), why);
                        namespace = NULL;
                        name = NULL; /* not without its namespace: that would be another name */
                }
        }
        for (size_t i = META_LABELS; i <= META_ANNOTATIONS; i++)
                if (v[i] && v[i]->type != YAML_MAPPING_NODE) {
                        char p[APISIX_PATH_MAX];

                        path_join(p, "metadata", metadata_keys[i].key);
                        apisix_error(a, v[i], p, "expected a mapping, got %s",
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

static const ApisixKey document_keys[_DOC_MAX] = {
        [DOC_API_VERSION] = {"apiVersion", NULL},
        [DOC_KIND] = {"kind", NULL},
        [DOC_METADATA] = {"metadata", NULL},
        [DOC_SPEC] = {"spec", NULL},
};

static int translate_document(Apisix *a, yaml_node_t *root)
{
        yaml_node_t *api = config_mapping_get(a->doc, root, "apiVersion");
        yaml_node_t *kind = config_mapping_get(a->doc, root, "kind");
        yaml_node_t *v[_DOC_MAX], *name_node;
        char esc[CONFIG_ESCAPE_MAX];
        const char *s;

        /* What the document is comes first: the keys of a manifest of another kind would only
         * make a heap of unknown-key errors. */
        if (!api || config_node_is_null(api)) {
                missing_key(a, root, NULL, "apiVersion");
                return 0;
        }
        s = string_value(a, api, "apiVersion");
        if (!s)
                return 0;
        if (!streq(s, APISIX_API_VERSION)) {
                if (strncmp(s, APISIX_API_GROUP, strlen(APISIX_API_GROUP)) == 0)
                        apisix_error(a, api, "apiVersion",
                                     "'%s' is not supported (supported: " APISIX_API_VERSION ")",
                                     node_escape(api, esc));
                else
                        apisix_error(a, api, "apiVersion",
                                     "'%s' is not supported: of Kubernetes manifests, only "
                                     "APISIX's (" APISIX_API_VERSION " ApisixUpstream and "
                                     "ApisixRoute) are read",
                                     node_escape(api, esc));
                return 0;
        }
        if (!kind || config_node_is_null(kind)) {
                missing_key(a, root, NULL, "kind");
                return 0;
        }
        s = string_value(a, kind, "kind");
        if (!s)
                return 0;
        if (!streq(s, "ApisixUpstream") && !streq(s, "ApisixRoute")) {
                apisix_error(a, kind, "kind",
                             "'%s' is not supported (supported: ApisixUpstream, ApisixRoute)",
                             node_escape(kind, esc));
                return 0;
        }
        /* Until metadata.name is known, messages at least say which kind of document. */
        format_into(a->label, sizeof(a->label), "%s", s);

        if (!read_mapping(a, root, NULL, document_keys, _DOC_MAX, v))
                return 0;
        if (!v[DOC_METADATA]) {
                missing_key(a, root, NULL, "metadata");
                name_node = root;
        } else
                read_metadata(a, v[DOC_METADATA], s, &name_node);
        if (!v[DOC_SPEC]) {
                missing_key(a, root, NULL, "spec");
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
