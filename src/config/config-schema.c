/* SPDX-License-Identifier: MIT */
/* The native YAML format as tables: each key names a parser, where its value goes, and the
 * parser's argument (a range, a validator, a nested table). A walker applies a table to a
 * mapping node; list and block parsers recurse into nested tables. Parsers report problems
 * through config_error() and go on, so one run shows every mistake; they return a negative
 * errno only when they cannot go on at all (out of memory). */

#include <assert.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>

#include "config/config-internal.h"
#include "config/config-overlay.h"

#define CONFIG_TABLE_MAX 16
#define CONFIG_PATH_MAX 256

DEFINE_TRIVIAL_CLEANUP_FUNC(Hashmap *, hashmap_free);

typedef struct ConfigField ConfigField;

/* `base` is the struct the table fills; the parser writes at base + field->offset. */
typedef int (*ConfigParser)(ConfigContext *ctx, const ConfigField *f, yaml_node_t *node, void *base,
                            const char *path);

struct ConfigField {
        const char *key;
        ConfigParser parse;
        size_t offset;
        const void *arg;
        bool required;
};

typedef struct ConfigTable {
        const ConfigField *fields;
        size_t n_fields;
        /* Sets an item's defaults before its keys are read. */
        void (*init)(void *item);
        /* Checks that span keys, once all of them are read. values[i] is field i's value node
         * or NULL. */
        int (*finish)(ConfigContext *ctx, const struct ConfigTable *t, yaml_node_t *node,
                      yaml_node_t *const *values, void *item, const char *path);
        /* Keys of this table that are known but not read here: skipped, not unknown. */
        const struct ConfigTable *skipped;
} ConfigTable;

typedef struct ConfigRange {
        int64_t min, max;
        size_t size; /* of the destination */
        bool is_signed;
} ConfigRange;

typedef struct ConfigChoice {
        const char *what;
        const char *const *names;
        size_t n_names;
        bool as_string; /* store a copy of the name rather than its index */
} ConfigChoice;

/* Checks, and may normalize in place (case, brackets), a string. Returns NULL when it is fine,
 * else why it is not. */
typedef struct ConfigValidator {
        const char *what;
        const char *(*check)(char *s);
} ConfigValidator;

typedef struct ConfigStrv {
        const ConfigValidator *validator;
        const char *empty_error;
        const ConfigCount *count; /* NULL: no limit */
} ConfigStrv;

typedef struct ConfigList {
        const ConfigTable *table;
        size_t item_size;
        size_t count_offset;     /* of the size_t count, beside the array pointer */
        const char *empty_error; /* NULL: an empty list is fine */
        const ConfigCount *count; /* NULL: no limit */
        /* Set for upstreams and routes: each item is an object of its own, made by this, and the
         * array holds pointers to them. */
        void *(*new_object)(const char *file);
} ConfigList;

/* ---- helpers ---- */

const char *config_node_kind(const yaml_node_t *node)
{
        if (!node)
                return "nothing";
        switch (node->type) {
        case YAML_SCALAR_NODE:
                return config_node_is_null(node) ? "null" : "a scalar";
        case YAML_SEQUENCE_NODE:
                return "a sequence";
        case YAML_MAPPING_NODE:
                return "a mapping";
        default:
                return "nothing";
        }
}

static void node_error(ConfigContext *ctx, const yaml_node_t *node, const char *path,
                       const char *fmt, ...) _printf_(4, 5);

static void node_error(ConfigContext *ctx, const yaml_node_t *node, const char *path,
                       const char *fmt, ...)
{
        _cleanup_free_ char *msg = NULL;
        ConfigMark m = config_mark(ctx, node);
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&msg, fmt, ap);
        va_end(ap);
        if (r < 0) {
                msg = NULL;
                ctx->oom = true;
                return;
        }
        config_error(ctx, &m, path, "%s", msg);
}

static const char *node_escape(const yaml_node_t *node, char buf[static CONFIG_ESCAPE_MAX])
{
        return config_escape((const char *)node->data.scalar.value, node->data.scalar.length, buf);
}

/* Counts a visit; false once the document has expanded too much through aliases, which is
 * reported once. */
static bool visit(ConfigContext *ctx, yaml_node_t *node)
{
        if (ctx->too_complex)
                return false;
        if (++ctx->visits <= ctx->max_visits)
                return true;

        ctx->too_complex = true;
        node_error(ctx, yaml_document_get_root_node(ctx->document), NULL,
                   "the document expands to more than %zu values through aliases", ctx->max_visits);
        return false;
}

static void path_join(char buf[static CONFIG_PATH_MAX], const char *path, const char *key)
{
        if (path && *path)
                snprintf(buf, CONFIG_PATH_MAX, "%s.%s", path, key);
        else
                snprintf(buf, CONFIG_PATH_MAX, "%s", key);
}

static void path_index(char buf[static CONFIG_PATH_MAX], const char *path, size_t i)
{
        snprintf(buf, CONFIG_PATH_MAX, "%s[%zu]", path, i);
}

/* The text of a scalar, or NULL after reporting what was there instead. */
static const char *scalar_text(ConfigContext *ctx, yaml_node_t *node, const char *path,
                               const char *expected)
{
        if (node->type != YAML_SCALAR_NODE || config_node_is_null(node)) {
                node_error(ctx, node, path, "expected %s, got %s", expected,
                           config_node_kind(node));
                return NULL;
        }
        /* "\0" is a valid YAML escape; a C string would silently end there. */
        if (strlen((const char *)node->data.scalar.value) != node->data.scalar.length) {
                node_error(ctx, node, path, "must not contain a NUL character");
                return NULL;
        }
        return (const char *)node->data.scalar.value;
}

static bool is_plain(const yaml_node_t *node)
{
        return node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

static yaml_node_t *field_value(const ConfigTable *t, yaml_node_t *const *values, const char *key)
{
        for (size_t i = 0; i < t->n_fields; i++)
                if (streq(t->fields[i].key, key))
                        return values[i] && !config_node_is_null(values[i]) ? values[i] : NULL;
        assert(!"no such field");
        return NULL;
}

static bool strv_contains(char *const *l, const char *s)
{
        for (; l && *l; l++)
                if (streq(*l, s))
                        return true;
        return false;
}

/* False (and reported) when a sequence of `n` more items does not fit. Checked before any item
 * is read, so an oversized list costs nothing more. */
static bool count_fits(ConfigContext *ctx, const ConfigCount *count, yaml_node_t *node,
                       const char *path, size_t n)
{
        char buf[CONFIG_COUNT_STR_MAX];
        const char *why;

        if (!count)
                return true;
        why = config_check_count(count, n, buf);
        if (why)
                node_error(ctx, node, path, "%s", why);
        return !why;
}

static void set_string(char **p, char *s)
{
        free(*p);
        *p = s;
}

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

/* ---- parsers ---- */

static bool parse_boolean(ConfigContext *ctx, yaml_node_t *node, const char *path, bool *ret)
{
        char esc[CONFIG_ESCAPE_MAX];
        const char *v;

        v = scalar_text(ctx, node, path, "a boolean");
        if (!v)
                return false;
        if (is_plain(node) && config_boolean_word(v, ret))
                return true;
        node_error(ctx, node, path, "expected a boolean (true or false), got %s'%s'",
                   is_plain(node) ? "" : "the quoted string ", node_escape(node, esc));
        return false;
}

static int parse_bool(ConfigContext *ctx, const ConfigField *f, yaml_node_t *node, void *base,
                      const char *path)
{
        bool b;

        if (parse_boolean(ctx, node, path, &b))
                *(bool *)((char *)base + f->offset) = b;
        return 0;
}

/* For ConfigTls.verify, whose -1 means "not said here, inherit". */
static int parse_tristate(ConfigContext *ctx, const ConfigField *f, yaml_node_t *node, void *base,
                          const char *path)
{
        bool b;

        if (parse_boolean(ctx, node, path, &b))
                *(int *)((char *)base + f->offset) = b;
        return 0;
}

static int parse_integer(ConfigContext *ctx, const ConfigField *f, yaml_node_t *node, void *base,
                         const char *path)
{
        const ConfigRange *range = f->arg;
        char esc[CONFIG_ESCAPE_MAX];
        const char *v, *p;
        uint64_t mag = 0;
        bool neg = false, overflow = false;
        int64_t value;
        void *dest = (char *)base + f->offset;

        v = scalar_text(ctx, node, path, "an integer");
        if (!v)
                return 0;

        p = v;
        if (*p == '-' || *p == '+')
                neg = *p++ == '-';
        if (!is_plain(node) || !*p || p[strspn(p, "0123456789")] != 0) {
                node_error(ctx, node, path, "expected an integer, got %s'%s'",
                           is_plain(node) ? "" : "the quoted string ", node_escape(node, esc));
                return 0;
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
        if (overflow || value < range->min || value > range->max) {
                node_error(ctx, node, path, "%s is out of range (%" PRId64 "..%" PRId64 ")",
                           node_escape(node, esc), range->min, range->max);
                return 0;
        }

        switch (range->size) {
        case sizeof(uint16_t):
                *(uint16_t *)dest = (uint16_t)value;
                break;
        case sizeof(uint32_t):
                if (range->is_signed)
                        *(int32_t *)dest = (int32_t)value;
                else
                        *(uint32_t *)dest = (uint32_t)value;
                break;
        case sizeof(uint64_t):
                *(uint64_t *)dest = (uint64_t)value;
                break;
        default:
                assert(!"unsupported integer size");
        }
        return 0;
}

static int parse_duration(ConfigContext *ctx, const ConfigField *f, yaml_node_t *node, void *base,
                          const char *path)
{
        char esc[CONFIG_ESCAPE_MAX], max[CONFIG_DURATION_STR_MAX];
        const char *v;
        uint64_t usec;
        int r;

        v = scalar_text(ctx, node, path, "a duration");
        if (!v)
                return 0;
        r = config_parse_duration(v, &usec);
        if (r == -ERANGE)
                node_error(ctx, node, path, "duration '%s' is too long (at most %s)",
                           node_escape(node, esc),
                           config_format_duration(CONFIG_DURATION_MAX, max));
        else if (r < 0 && v[0] == '-')
                node_error(ctx, node, path, "duration '%s' is negative", node_escape(node, esc));
        else if (r < 0)
                node_error(ctx, node, path,
                           "invalid duration '%s' (expected seconds, or a number with a unit "
                           "us, ms, s, m, h, d, as in 500ms or 1.5s)",
                           node_escape(node, esc));
        else
                *(uint64_t *)((char *)base + f->offset) = usec;
        return 0;
}

/* The string of a scalar, validated; NULL (and reported) when it is not usable. */
static int string_value(ConfigContext *ctx, yaml_node_t *node, const char *path,
                        const ConfigValidator *validator, char **ret)
{
        char esc[CONFIG_ESCAPE_MAX];
        const char *v, *why;
        char *s;

        *ret = NULL;
        v = scalar_text(ctx, node, path, "a string");
        if (!v)
                return 0;
        if (!*v) {
                node_error(ctx, node, path, "must not be empty");
                return 0;
        }
        s = strdup(v);
        if (!s)
                return -ENOMEM;
        if (validator) {
                why = validator->check(s);
                if (why) {
                        node_error(ctx, node, path, "invalid %s '%s': %s", validator->what,
                                   node_escape(node, esc), why);
                        free(s);
                        return 0;
                }
        }
        *ret = s;
        return 0;
}

static int parse_string(ConfigContext *ctx, const ConfigField *f, yaml_node_t *node, void *base,
                        const char *path)
{
        char *s;
        int r;

        r = string_value(ctx, node, path, f->arg, &s);
        if (r < 0)
                return r;
        if (s)
                set_string((char **)((char *)base + f->offset), s);
        return 0;
}

static int parse_choice(ConfigContext *ctx, const ConfigField *f, yaml_node_t *node, void *base,
                        const char *path)
{
        const ConfigChoice *choice = f->arg;
        char esc[CONFIG_ESCAPE_MAX], known[256] = "";
        void *dest = (char *)base + f->offset;
        const char *v;
        size_t o = 0;

        v = scalar_text(ctx, node, path, "a string");
        if (!v)
                return 0;
        for (size_t i = 0; i < choice->n_names; i++) {
                if (!streq(v, choice->names[i]))
                        continue;
                if (choice->as_string) {
                        char *s = strdup(v);

                        if (!s)
                                return -ENOMEM;
                        set_string(dest, s);
                } else
                        *(int *)dest = (int)i;
                return 0;
        }

        for (size_t i = 0; i < choice->n_names && o < sizeof(known); i++)
                o += (size_t)snprintf(known + o, sizeof(known) - o, "%s%s", i ? ", " : "",
                                      choice->names[i]);
        node_error(ctx, node, path, "unknown %s '%s' (known: %s)", choice->what,
                   node_escape(node, esc), known);
        return 0;
}

static int parse_strv(ConfigContext *ctx, const ConfigField *f, yaml_node_t *node, void *base,
                      const char *path)
{
        const ConfigStrv *arg = f->arg;
        _cleanup_strv_free_ char **l = NULL;
        char ***dest = (char ***)((char *)base + f->offset);
        size_t n, k = 0;

        if (node->type != YAML_SEQUENCE_NODE) {
                node_error(ctx, node, path, "expected a sequence, got %s", config_node_kind(node));
                return 0;
        }
        n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
        if (n == 0) {
                node_error(ctx, node, path, "%s", arg->empty_error);
                return 0;
        }
        if (!count_fits(ctx, arg->count, node, path, n))
                return 0;

        l = calloc(n + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                yaml_node_t *item =
                        yaml_document_get_node(ctx->document, node->data.sequence.items.start[i]);
                char p[CONFIG_PATH_MAX];
                int r;

                if (!item || !visit(ctx, item))
                        return 0;
                path_index(p, path, i);
                r = string_value(ctx, item, p, arg->validator, &l[k]);
                if (r < 0)
                        return r;
                if (l[k])
                        k++;
        }

        /* Only a list whose every entry is fine replaces what an earlier file said. */
        if (k == n) {
                strv_free(*dest);
                *dest = TAKE_PTR(l);
        }
        return 0;
}

static int walk_mapping(ConfigContext *ctx, yaml_node_t *node, const ConfigTable *t, void *base,
                        const char *path);

static int parse_block(ConfigContext *ctx, const ConfigField *f, yaml_node_t *node, void *base,
                       const char *path)
{
        return walk_mapping(ctx, node, f->arg, (char *)base + f->offset, path);
}

/* Appends one item per sequence entry: top-level lists thus concatenate across documents. */
static int parse_list(ConfigContext *ctx, const ConfigField *f, yaml_node_t *node, void *base,
                      const char *path)
{
        const ConfigList *list = f->arg;
        void **array = (void **)((char *)base + f->offset);
        size_t *count = (size_t *)((char *)base + list->count_offset);
        size_t slot = list->new_object ? sizeof(void *) : list->item_size;
        size_t n;
        char *a;

        if (node->type != YAML_SEQUENCE_NODE) {
                node_error(ctx, node, path, "expected a sequence, got %s", config_node_kind(node));
                return 0;
        }
        n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
        if (n == 0) {
                if (list->empty_error)
                        node_error(ctx, node, path, "%s", list->empty_error);
                return 0;
        }

        if (n > SIZE_MAX / slot - *count)
                return -ENOMEM;
        if (!count_fits(ctx, list->count, node, path, *count + n))
                return 0;
        a = reallocarray(*array, *count + n, slot);
        if (!a)
                return -ENOMEM;
        *array = a;
        memset(a + *count * slot, 0, n * slot);

        for (size_t i = 0; i < n; i++) {
                yaml_node_t *item =
                        yaml_document_get_node(ctx->document, node->data.sequence.items.start[i]);
                void *dest = a + *count * slot;
                char p[CONFIG_PATH_MAX];
                int r;

                if (!item || !visit(ctx, item))
                        return 0;
                if (list->new_object) {
                        void *o = list->new_object(ctx->file);

                        if (!o)
                                return -ENOMEM;
                        *(void **)dest = o;
                        dest = o;
                }
                /* Counted before it is filled, so config_unref() sees a half-read item. */
                (*count)++;
                if (list->table->init)
                        list->table->init(dest);
                path_index(p, path, i);
                r = walk_mapping(ctx, item, list->table, dest, p);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* The index of the field named by the scalar `key`, or t->n_fields. */
static size_t find_field(const ConfigTable *t, const yaml_node_t *key)
{
        size_t i;

        for (i = 0; i < t->n_fields; i++)
                if (strlen(t->fields[i].key) == key->data.scalar.length &&
                    memcmp(t->fields[i].key, key->data.scalar.value, key->data.scalar.length) == 0)
                        break;
        return i;
}

static int walk_mapping(ConfigContext *ctx, yaml_node_t *node, const ConfigTable *t, void *base,
                        const char *path)
{
        yaml_node_t *values[CONFIG_TABLE_MAX] = {}, *keys[CONFIG_TABLE_MAX] = {};
        char esc[CONFIG_ESCAPE_MAX];
        int r;

        assert(t->n_fields <= CONFIG_TABLE_MAX);

        if (node->type != YAML_MAPPING_NODE) {
                node_error(ctx, node, path, "expected a mapping, got %s", config_node_kind(node));
                return 0;
        }

        for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
             pair < node->data.mapping.pairs.top; pair++) {
                yaml_node_t *key = yaml_document_get_node(ctx->document, pair->key);
                yaml_node_t *value = yaml_document_get_node(ctx->document, pair->value);
                const ConfigField *f = NULL;
                char p[CONFIG_PATH_MAX];
                size_t i;

                if (!key || !value || !visit(ctx, value))
                        return 0;

                if (key->type != YAML_SCALAR_NODE) {
                        node_error(ctx, key, path, "expected a string as key, got %s",
                                   config_node_kind(key));
                        continue;
                }
                i = find_field(t, key);
                f = i < t->n_fields ? t->fields + i : NULL;
                if (!f && t->skipped && find_field(t->skipped, key) < t->skipped->n_fields)
                        continue;
                if (!f) {
                        node_error(ctx, key, path, "unknown key '%s'", node_escape(key, esc));
                        continue;
                }
                if (values[i]) {
                        /* YAML forbids it; libyaml lets it through, and the last one would
                         * silently win. */
                        ConfigMark first = config_mark(ctx, keys[i]);

                        node_error(ctx, key, path, "duplicate key '%s' (first at %u:%u)", f->key,
                                   first.line, first.column);
                        continue;
                }
                keys[i] = key;
                values[i] = value;
                if (config_node_is_null(value))
                        continue;

                path_join(p, path, f->key);
                r = f->parse(ctx, f, value, base, p);
                if (r < 0)
                        return r;
        }

        for (size_t i = 0; i < t->n_fields; i++)
                if (t->fields[i].required && (!values[i] || config_node_is_null(values[i])))
                        node_error(ctx, node, path, "missing required key '%s'", t->fields[i].key);

        return t->finish ? t->finish(ctx, t, node, values, base, path) : 0;
}

/* ---- the tables ---- */

#define RANGE(lo, hi, type, sgn) (&(const ConfigRange){(lo), (hi), sizeof(type), (sgn)})
#define FIELD(k, p, o, a)                                                                          \
        {                                                                                          \
                .key = (k), .parse = (p), .offset = (o), .arg = (a)                                \
        }
#define REQUIRED(k, p, o, a)                                                                       \
        {                                                                                          \
                .key = (k), .parse = (p), .offset = (o), .arg = (a), .required = true              \
        }
#define TABLE(f, i, fin)                                                                           \
        {                                                                                          \
                .fields = (f), .n_fields = ELEMENTSOF(f), .init = (i), .finish = (fin)             \
        }

static const ConfigChoice choice_scheme = {"scheme", config_scheme_names, _SCHEME_MAX, false};
static const ConfigChoice choice_pass_host = {"pass_host", config_pass_host_names, _PASS_HOST_MAX,
                                              false};
/* The balancers balancer.h knows; the name is kept as a string for it to look up. */
const char *const config_balancer_names[CONFIG_BALANCER_MAX] = {
        "roundrobin",
};
static const ConfigChoice choice_balancer = {"balancer", config_balancer_names,
                                             CONFIG_BALANCER_MAX, true};

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

        r = string_value(ctx, node, path, NULL, &s);
        if (r < 0 || !s)
                return r;
        why = config_parse_address(s, 0, true, &ss, &len);
        if (why) {
                node_error(ctx, node, path, "invalid listen address '%s': %s",
                           node_escape(node, esc), why);
                free(s);
                return 0;
        }
        set_string(&l->listen, s);
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
        REQUIRED("cert", parse_string, offsetof(ConfigCertificate, cert_file),
                 &validate_absolute_path),
        REQUIRED("key", parse_string, offsetof(ConfigCertificate, key_file), &validate_key_path),
        FIELD("ocsp", parse_string, offsetof(ConfigCertificate, ocsp_file),
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
        sr->upstream_mark = config_mark(ctx, field_value(t, values, "upstream"));
        return 0;
}

static const ConfigStrv strv_server_names = {&validate_server_name,
                                             "at least one server name is required",
                                             &config_count_server_names};

static const ConfigField sni_route_fields[] = {
        REQUIRED("server_names", parse_strv, offsetof(ConfigSniRoute, server_names),
                 &strv_server_names),
        REQUIRED("upstream", parse_string, offsetof(ConfigSniRoute, upstream), &validate_name),
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
        const char *v = scalar_text(ctx, node, path, "a string");

        if (!v)
                return 0;
        if (streq(v, "originate"))
                ((ConfigListener *)base)->tls_originate = true;
        else
                node_error(ctx, node, path, "unknown tls mode '%s' (known: originate)",
                           node_escape(node, esc));
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

                v = field_value(t, values, listener_protocol_keys[i].key);
                if (!v || (mask & (1u << l->protocol)))
                        continue;
                path_join(p, path, listener_protocol_keys[i].key);
                /* Each key belongs to one protocol today. */
                node_error(ctx, v, p, "only for protocol %s (this listener's protocol is %s)",
                           listener_protocol_to_string((ListenerProtocol)__builtin_ctz(mask)),
                           proto);
        }

        if (l->protocol == LISTENER_HTTPS && !field_value(t, values, "certificates"))
                node_error(ctx, node, path,
                           "missing required key 'certificates' (protocol is https)");
        if (l->protocol == LISTENER_TCP && !field_value(t, values, "upstream"))
                node_error(ctx, node, path, "missing required key 'upstream' (protocol is tcp)");
        if (l->protocol == LISTENER_TLS_PASSTHROUGH && !field_value(t, values, "sni_routes"))
                node_error(ctx, node, path,
                           "missing required key 'sni_routes' (protocol is tls-passthrough)");

        v = field_value(t, values, "ticket_rotate");
        if (v && (l->ticket_rotate_usec < CONFIG_TICKET_ROTATE_MIN ||
                  l->ticket_rotate_usec > CONFIG_TICKET_ROTATE_MAX)) {
                char d[CONFIG_DURATION_STR_MAX];

                path_join(p, path, "ticket_rotate");
                node_error(ctx, v, p, "%s is out of range (%s..%s)",
                           config_format_duration(l->ticket_rotate_usec, d),
                           config_format_duration(CONFIG_TICKET_ROTATE_MIN, a),
                           config_format_duration(CONFIG_TICKET_ROTATE_MAX, b));
        }
        v = field_value(t, values, "idle_timeout");
        if (v && l->idle_timeout_usec == 0) {
                path_join(p, path, "idle_timeout");
                node_error(ctx, v, p, "must be longer than 0");
        }

        l->upstream_mark = config_mark(ctx, field_value(t, values, "upstream"));

        /* A server name routes to one place: the same name twice in one listener is a
         * mistake, not a preference. */
        for (size_t i = 0; i < l->n_sni_routes; i++)
                for (char **n = l->sni_routes[i].server_names; n && *n; n++)
                        for (size_t k = 0; k < i; k++)
                                if (strv_contains(l->sni_routes[k].server_names, *n)) {
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
        yaml_node_t *proto = field_value(t, values, "protocol");
        char p[CONFIG_PATH_MAX], addr[SOCKADDR_STR_MAX];
        int r;

        l->mark = item_mark(ctx, node, field_value(t, values, "name"));
        free(l->path);
        l->path = strdup(path);
        if (!l->path)
                return -ENOMEM;
        if (l->name) {
                path_join(p, path, "name");
                r = config_register_name(ctx, &ctx->listener_names, "listener name", l->name,
                                         &l->mark, p);
                if (r < 0)
                        return r;
        }
        if (l->address_len > 0) {
                ConfigMark m = config_mark(ctx, field_value(t, values, "listen"));

                path_join(p, path, "listen");
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

static const ConfigChoice choice_protocol = {"protocol", config_listener_protocol_names,
                                             _LISTENER_PROTOCOL_MAX, false};

static const ConfigField listener_fields[] = {
        REQUIRED("name", parse_string, offsetof(ConfigListener, name), &validate_name),
        FIELD("listen", parse_listen, 0, NULL),
        FIELD("protocol", parse_choice, offsetof(ConfigListener, protocol), &choice_protocol),
        FIELD("certificates", parse_list, offsetof(ConfigListener, certificates),
              &certificates_list),
        FIELD("ticket_rotate", parse_duration, offsetof(ConfigListener, ticket_rotate_usec),
              NULL),
        FIELD("upstream", parse_string, offsetof(ConfigListener, upstream), &validate_name),
        FIELD("tls", parse_listener_tls, 0, NULL),
        FIELD("idle_timeout", parse_duration, offsetof(ConfigListener, idle_timeout_usec), NULL),
        FIELD("sni_routes", parse_list, offsetof(ConfigListener, sni_routes), &sni_routes_list),
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
        REQUIRED("host", parse_string, offsetof(ConfigNode, host), &validate_node_host),
        FIELD("port", parse_integer, offsetof(ConfigNode, port),
              RANGE(1, CONFIG_PORT_MAX, uint16_t, false)),
        FIELD("weight", parse_integer, offsetof(ConfigNode, weight),
              RANGE(0, CONFIG_WEIGHT_MAX, uint32_t, false)),
};

static const ConfigTable node_table = TABLE(node_fields, node_init, node_finish);

/* upstreams[] */

static const ConfigField upstream_timeout_fields[] = {
        FIELD("connect", parse_duration, offsetof(ConfigUpstream, connect_timeout_usec), NULL),
        FIELD("send", parse_duration, offsetof(ConfigUpstream, send_timeout_usec), NULL),
        FIELD("read", parse_duration, offsetof(ConfigUpstream, read_timeout_usec), NULL),
};

static const ConfigTable upstream_timeout_table = TABLE(upstream_timeout_fields, NULL, NULL);

static const ConfigField upstream_tls_fields[] = {
        FIELD("ca_file", parse_string, offsetof(ConfigTls, ca_file), NULL),
        FIELD("verify", parse_tristate, offsetof(ConfigTls, verify), NULL),
        FIELD("sni", parse_string, offsetof(ConfigTls, sni), &validate_sni),
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

static void upstream_init(void *item)
{
        config_upstream_init(item);
}

static int upstream_finish(ConfigContext *ctx, const ConfigTable *t, yaml_node_t *node,
                           yaml_node_t *const *values, void *item, const char *path)
{
        ConfigUpstream *u = item;
        yaml_node_t *ph = field_value(t, values, "pass_host");
        yaml_node_t *uh = field_value(t, values, "upstream_host");
        bool pass_host_ok;
        char p[CONFIG_PATH_MAX];
        int r;

        u->mark = item_mark(ctx, node, field_value(t, values, "name"));
        r = config_note_object(ctx, CONFIG_OBJECT_UPSTREAM, path);
        if (r < 0)
                return r;

        /* An unknown pass_host was reported already; do not pile a second error on it. */
        pass_host_ok = !ph || (ph->type == YAML_SCALAR_NODE &&
                               pass_host_from_string((const char *)ph->data.scalar.value) >= 0);
        if (pass_host_ok && u->pass_host == PASS_HOST_REWRITE && !uh)
                node_error(ctx, node, path,
                           "missing required key 'upstream_host' (pass_host is rewrite)");
        if (pass_host_ok && u->pass_host != PASS_HOST_REWRITE && uh) {
                path_join(p, path, "upstream_host");
                node_error(ctx, uh, p, "only allowed with pass_host: rewrite");
        }

        if (!u->balancer) {
                u->balancer = strdup(config_balancer_names[0]);
                if (!u->balancer)
                        return -ENOMEM;
        }

        /* Here, not in node_init(): scheme: may come after nodes:. */
        for (size_t i = 0; i < u->n_nodes; i++)
                if (u->nodes[i].port == 0)
                        u->nodes[i].port = scheme_default_port(u->scheme);
        path_join(p, path, "nodes");
        r = config_check_nodes(ctx, u, p);
        if (r < 0)
                return r;

        /* Unless told otherwise, a request whose node refuses it tries every other node once
         * (as APISIX does) before it is a 502. */
        if (!field_value(t, values, "retries"))
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
        REQUIRED("name", parse_string, offsetof(ConfigUpstream, name), &validate_name),
        FIELD("scheme", parse_choice, offsetof(ConfigUpstream, scheme), &choice_scheme),
        FIELD("pass_host", parse_choice, offsetof(ConfigUpstream, pass_host), &choice_pass_host),
        FIELD("upstream_host", parse_string, offsetof(ConfigUpstream, upstream_host),
              &validate_host_port),
        FIELD("balancer", parse_choice, offsetof(ConfigUpstream, balancer), &choice_balancer),
        FIELD("retries", parse_integer, offsetof(ConfigUpstream, retries),
              RANGE(0, CONFIG_RETRIES_MAX, unsigned, false)),
        FIELD("keepalive_pool", parse_integer, offsetof(ConfigUpstream, keepalive_pool),
              RANGE(0, CONFIG_KEEPALIVE_POOL_MAX, unsigned, false)),
        FIELD("keepalive_idle", parse_duration, offsetof(ConfigUpstream, keepalive_idle_usec),
              NULL),
        FIELD("timeout", parse_block, 0, &upstream_timeout_table),
        FIELD("tls", parse_block, offsetof(ConfigUpstream, tls), &upstream_tls_table),
        REQUIRED("nodes", parse_list, offsetof(ConfigUpstream, nodes), &nodes_list),
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

        ru->mark = item_mark(ctx, node, field_value(t, values, "name"));
        return 0;
}

static const ConfigField route_upstream_fields[] = {
        REQUIRED("name", parse_string, offsetof(ConfigRouteUpstream, name), &validate_name),
        FIELD("weight", parse_integer, offsetof(ConfigRouteUpstream, weight),
              RANGE(0, CONFIG_WEIGHT_MAX, uint32_t, false)),
};

static const ConfigTable route_upstream_table =
        TABLE(route_upstream_fields, route_upstream_init, route_upstream_finish);

/* routes[] */

static int route_finish(ConfigContext *ctx, const ConfigTable *t, yaml_node_t *node,
                        yaml_node_t *const *values, void *item, const char *path)
{
        ConfigRoute *rt = item;

        rt->mark = item_mark(ctx, node, field_value(t, values, "name"));
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
        REQUIRED("name", parse_string, offsetof(ConfigRoute, name), &validate_name),
        REQUIRED("paths", parse_strv, offsetof(ConfigRoute, paths), &strv_paths),
        FIELD("hosts", parse_strv, offsetof(ConfigRoute, hosts), &strv_hosts),
        FIELD("methods", parse_strv, offsetof(ConfigRoute, methods), &strv_methods),
        FIELD("priority", parse_integer, offsetof(ConfigRoute, priority),
              RANGE(INT_MIN, INT_MAX, int, true)),
        FIELD("websocket", parse_bool, offsetof(ConfigRoute, websocket), NULL),
        REQUIRED("upstreams", parse_list, offsetof(ConfigRoute, upstreams), &route_upstreams_list),
};

static const ConfigTable route_table = TABLE(route_fields, NULL, route_finish);

/* The top level. timeouts: and limits: fill fields of Config itself. */

static const ConfigField timeouts_fields[] = {
        FIELD("header", parse_duration, offsetof(Config, header_timeout_usec), NULL),
        FIELD("keepalive", parse_duration, offsetof(Config, keepalive_timeout_usec), NULL),
        FIELD("shutdown_grace", parse_duration, offsetof(Config, shutdown_grace_usec), NULL),
};

static const ConfigTable timeouts_table = TABLE(timeouts_fields, NULL, NULL);

static const ConfigField limits_fields[] = {
        FIELD("max_header_bytes", parse_integer, offsetof(Config, max_header_bytes),
              RANGE(1024, 1048576, size_t, false)),
        FIELD("max_headers", parse_integer, offsetof(Config, max_headers),
              RANGE(1, 128, size_t, false)),
        /* Each takes a descriptor or more: ten million is ten times what the kernel lets a
         * process open by default (fs.nr_open). */
        FIELD("max_connections", parse_integer, offsetof(Config, max_connections),
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
        FIELD("servers", parse_strv, offsetof(ConfigDns, servers), &strv_dns_servers),
        FIELD("ttl_min", parse_duration, offsetof(ConfigDns, ttl_min_usec), NULL),
        FIELD("ttl_max", parse_duration, offsetof(ConfigDns, ttl_max_usec), NULL),
        FIELD("timeout", parse_duration, offsetof(ConfigDns, timeout_usec), NULL),
};

static const ConfigTable dns_table = TABLE(dns_fields, NULL, dns_finish);

/* No sni: here: one server name for every upstream makes no sense. */
static const ConfigField tls_fields[] = {
        FIELD("ca_file", parse_string, offsetof(ConfigTls, ca_file), NULL),
        FIELD("verify", parse_tristate, offsetof(ConfigTls, verify), NULL),
};

static const ConfigTable tls_table = TABLE(tls_fields, NULL, NULL);

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
        yaml_node_t *l = field_value(t, values, "listeners");

        if (l) {
                ctx->listeners_mark = config_mark(ctx, l);
                /* "expected a sequence" said it already. */
                if (l->type != YAML_SEQUENCE_NODE)
                        ctx->listeners_invalid = true;
        }
        return 0;
}

static const ConfigField top_fields[] = {
        FIELD("access_log", parse_bool, offsetof(Config, access_log), NULL),
        FIELD("workers", parse_integer, offsetof(Config, workers),
              RANGE(0, 64, unsigned, false)),
        FIELD("timeouts", parse_block, 0, &timeouts_table),
        FIELD("limits", parse_block, 0, &limits_table),
        FIELD("dns", parse_block, offsetof(Config, dns), &dns_table),
        FIELD("tls", parse_block, offsetof(Config, tls), &tls_table),
        FIELD("listeners", parse_list, offsetof(Config, listeners), &listeners_list),
        FIELD("upstreams", parse_list, offsetof(Config, upstreams), &upstreams_list),
        FIELD("routes", parse_list, offsetof(Config, routes), &routes_list),
};

static const ConfigTable top_table = TABLE(top_fields, NULL, top_finish);

/* The runtime state (state.c) is a whole configuration as config_dump() wrote it: only its
 * upstreams and routes are read, in place of the files'; the rest is the files' business. */
static int state_finish(ConfigContext *ctx, const ConfigTable *t, yaml_node_t *node,
                        yaml_node_t *const *values, void *item, const char *path)
{
        yaml_node_t *u = field_value(t, values, "upstreams");

        ctx->state_mark = config_mark(ctx, u ? u : node);
        return 0;
}

static const ConfigField state_fields[] = {
        FIELD("upstreams", parse_list, offsetof(Config, upstreams), &upstreams_list),
        FIELD("routes", parse_list, offsetof(Config, routes), &routes_list),
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
                if (f->parse != parse_block)
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
        r = walk_mapping(ctx, root, list->table, o, path);
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
        return walk_mapping(ctx, root, ctx->reading_state ? &state_table : &top_table,
                            ctx->config, "");
}
