/* SPDX-License-Identifier: MIT */
/* The walker (config-walk.h): mappings read against tables of keys, and each kind of value read
 * and checked with one wording of every message. */

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>

#include "config/config-walk.h"

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

void config_node_error(ConfigContext *ctx, const yaml_node_t *node, const char *path,
                       const char *fmt, ...) _printf_(4, 5);

void config_node_error(ConfigContext *ctx, const yaml_node_t *node, const char *path,
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

const char *config_node_escape(const yaml_node_t *node, char buf[static CONFIG_ESCAPE_MAX])
{
        return config_escape((const char *)node->data.scalar.value, node->data.scalar.length, buf);
}

/* Counts a visit; false once the document has expanded too much through aliases, which is
 * reported once. */
bool config_visit(ConfigContext *ctx, yaml_node_t *node)
{
        if (ctx->too_complex)
                return false;
        if (++ctx->visits <= ctx->max_visits)
                return true;

        ctx->too_complex = true;
        config_node_error(ctx, yaml_document_get_root_node(ctx->document), NULL,
                          "the document expands to more than %zu values through aliases",
                          ctx->max_visits);
        return false;
}

void config_path_join(char buf[static CONFIG_PATH_MAX], const char *path, const char *key)
{
        if (path && *path)
                snprintf(buf, CONFIG_PATH_MAX, "%s.%s", path, key);
        else
                snprintf(buf, CONFIG_PATH_MAX, "%s", key);
}

void config_path_index(char buf[static CONFIG_PATH_MAX], const char *path, size_t i)
{
        snprintf(buf, CONFIG_PATH_MAX, "%s[%zu]", path, i);
}

/* The text of a scalar, or NULL after reporting what was there instead. */
const char *config_scalar_text(ConfigContext *ctx, yaml_node_t *node, const char *path,
                               const char *expected)
{
        if (node->type != YAML_SCALAR_NODE || config_node_is_null(node)) {
                config_node_error(ctx, node, path, "expected %s, got %s", expected,
                                  config_node_kind(node));
                return NULL;
        }
        /* "\0" is a valid YAML escape; a C string would silently end there. */
        if (strlen((const char *)node->data.scalar.value) != node->data.scalar.length) {
                config_node_error(ctx, node, path, "must not contain a NUL character");
                return NULL;
        }
        return (const char *)node->data.scalar.value;
}

bool config_is_plain(const yaml_node_t *node)
{
        return node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

yaml_node_t *config_field_value(const ConfigTable *t, yaml_node_t *const *values, const char *key)
{
        for (size_t i = 0; i < t->n_fields; i++)
                if (streq(t->fields[i].key, key))
                        return values[i];
        assert(!"no such field");
        return NULL;
}

bool config_strv_contains(char *const *l, const char *s)
{
        for (; l && *l; l++)
                if (streq(*l, s))
                        return true;
        return false;
}

/* False (and reported) when a sequence of `n` more items does not fit. Checked before any item
 * is read, so an oversized list costs nothing more. */
static bool config_count_fits(ConfigContext *ctx, const ConfigCount *count, yaml_node_t *node,
                              const char *path, size_t n)
{
        char buf[CONFIG_COUNT_STR_MAX];
        const char *why;

        if (!count)
                return true;
        why = config_check_count(count, n, buf);
        if (why)
                config_node_error(ctx, node, path, "%s", why);
        return !why;
}

void config_set_string(char **p, char *s)
{
        free(*p);
        *p = s;
}

/* ---- parsers ---- */

bool config_value_boolean(ConfigContext *ctx, yaml_node_t *node, const char *path, bool *ret)
{
        char esc[CONFIG_ESCAPE_MAX];
        const char *v;

        v = config_scalar_text(ctx, node, path, "a boolean");
        if (!v)
                return false;
        if (config_is_plain(node) && config_boolean_word(v, ret))
                return true;
        config_node_error(ctx, node, path, "expected a boolean (true or false), got %s'%s'",
                          config_is_plain(node) ? "" : "the quoted string ",
                          config_node_escape(node, esc));
        return false;
}

int config_parse_bool(ConfigContext *ctx, const ConfigField *f, yaml_node_t *node, void *base,
                      const char *path)
{
        bool b;

        if (config_value_boolean(ctx, node, path, &b))
                *(bool *)((char *)base + f->offset) = b;
        return 0;
}

/* For ConfigTls.verify, whose -1 means "not said here, inherit". */
int config_parse_tristate(ConfigContext *ctx, const ConfigField *f, yaml_node_t *node, void *base,
                          const char *path)
{
        bool b;

        if (config_value_boolean(ctx, node, path, &b))
                *(int *)((char *)base + f->offset) = b;
        return 0;
}

bool config_value_integer(ConfigContext *ctx, yaml_node_t *node, const char *path, int64_t min,
                          int64_t max, int64_t *ret)
{
        char esc[CONFIG_ESCAPE_MAX];
        const char *v, *p;
        uint64_t mag = 0;
        bool neg = false, overflow = false;
        int64_t value;

        v = config_scalar_text(ctx, node, path, "an integer");
        if (!v)
                return false;

        p = v;
        if (*p == '-' || *p == '+')
                neg = *p++ == '-';
        if (!config_is_plain(node) || !*p || p[strspn(p, "0123456789")] != 0) {
                config_node_error(ctx, node, path, "expected an integer, got %s'%s'",
                                  config_is_plain(node) ? "" : "the quoted string ",
                                  config_node_escape(node, esc));
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
                config_node_error(ctx, node, path, "%s is out of range (%" PRId64 "..%" PRId64 ")",
                                  config_node_escape(node, esc), min, max);
                return false;
        }
        *ret = value;
        return true;
}

int config_parse_integer(ConfigContext *ctx, const ConfigField *f, yaml_node_t *node, void *base,
                         const char *path)
{
        const ConfigRange *range = f->arg;
        void *dest = (char *)base + f->offset;
        int64_t value;

        if (!config_value_integer(ctx, node, path, range->min, range->max, &value))
                return 0;
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

bool config_value_duration(ConfigContext *ctx, yaml_node_t *node, const char *path,
                           const ConfigDurationSyntax *syntax, uint64_t *ret)
{
        char esc[CONFIG_ESCAPE_MAX], max[CONFIG_DURATION_STR_MAX];
        const char *v;
        int r;

        v = config_scalar_text(ctx, node, path, "a duration");
        if (!v)
                return false;
        r = config_parse_duration_as(v, syntax, ret);
        if (r == -ERANGE)
                config_node_error(ctx, node, path, "duration '%s' is too long (at most %s)",
                                  config_node_escape(node, esc),
                                  config_format_duration(CONFIG_DURATION_MAX, max));
        else if (r < 0 && v[0] == '-')
                config_node_error(ctx, node, path, "duration '%s' is negative",
                                  config_node_escape(node, esc));
        else if (r < 0)
                config_node_error(ctx, node, path, "invalid duration '%s' (%s)",
                                  config_node_escape(node, esc), config_duration_hint(syntax));
        return r >= 0;
}

int config_parse_duration_field(ConfigContext *ctx, const ConfigField *f, yaml_node_t *node,
                                void *base, const char *path)
{
        uint64_t usec;

        if (config_value_duration(ctx, node, path, &config_duration_native, &usec))
                *(uint64_t *)((char *)base + f->offset) = usec;
        return 0;
}

const char *config_value_text(ConfigContext *ctx, yaml_node_t *node, const char *path)
{
        const char *v = config_scalar_text(ctx, node, path, "a string");

        if (v && !*v) {
                config_node_error(ctx, node, path, "must not be empty");
                return NULL;
        }
        return v;
}

void config_missing_key(ConfigContext *ctx, const yaml_node_t *mapping, const char *path,
                        const char *key)
{
        config_node_error(ctx, mapping, path, "missing required key '%s'", key);
}

/* The string of a scalar, validated; NULL (and reported) when it is not usable. */
int config_string_value(ConfigContext *ctx, yaml_node_t *node, const char *path,
                        const ConfigValidator *validator, char **ret)
{
        char esc[CONFIG_ESCAPE_MAX];
        const char *v, *why;
        char *s;

        *ret = NULL;
        v = config_value_text(ctx, node, path);
        if (!v)
                return 0;
        s = strdup(v);
        if (!s)
                return -ENOMEM;
        if (validator) {
                why = validator->check(s);
                if (why) {
                        config_node_error(ctx, node, path, "invalid %s '%s': %s", validator->what,
                                          config_node_escape(node, esc), why);
                        free(s);
                        return 0;
                }
        }
        *ret = s;
        return 0;
}

int config_parse_string(ConfigContext *ctx, const ConfigField *f, yaml_node_t *node, void *base,
                        const char *path)
{
        char *s;
        int r;

        r = config_string_value(ctx, node, path, f->arg, &s);
        if (r < 0)
                return r;
        if (s)
                config_set_string((char **)((char *)base + f->offset), s);
        return 0;
}

int config_parse_choice(ConfigContext *ctx, const ConfigField *f, yaml_node_t *node, void *base,
                        const char *path)
{
        const ConfigChoice *choice = f->arg;
        char esc[CONFIG_ESCAPE_MAX], known[256] = "";
        void *dest = (char *)base + f->offset;
        const char *v;
        size_t o = 0;

        v = config_scalar_text(ctx, node, path, "a string");
        if (!v)
                return 0;
        for (size_t i = 0; i < choice->n_names; i++) {
                if (!streq(v, choice->names[i]))
                        continue;
                if (choice->as_string) {
                        char *s = strdup(v);

                        if (!s)
                                return -ENOMEM;
                        config_set_string(dest, s);
                } else
                        *(int *)dest = (int)i;
                return 0;
        }

        for (const ConfigChoiceRefusal *x = choice->refused; x && x->name; x++)
                if (streq(v, x->name)) {
                        config_node_error(ctx, node, path, "%s '%s' is not supported: %s",
                                          choice->what, x->name, x->why);
                        return 0;
                }
        for (size_t i = 0; i < choice->n_names && o < sizeof(known); i++)
                o += (size_t)snprintf(known + o, sizeof(known) - o, "%s%s", i ? ", " : "",
                                      choice->names[i]);
        config_node_error(ctx, node, path, "unknown %s '%s' (known: %s)", choice->what,
                          config_node_escape(node, esc), known);
        return 0;
}

size_t config_value_sequence(ConfigContext *ctx, yaml_node_t *node, const char *path,
                             const char *empty_error, const ConfigCount *count)
{
        size_t n;

        if (node->type != YAML_SEQUENCE_NODE) {
                config_node_error(ctx, node, path, "expected a sequence, got %s",
                                  config_node_kind(node));
                return 0;
        }
        n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
        if (n == 0 && empty_error)
                config_node_error(ctx, node, path, "%s", empty_error);
        if (!config_count_fits(ctx, count, node, path, n))
                return 0;
        return n;
}

yaml_node_t *config_sequence_item(ConfigContext *ctx, yaml_node_t *node, size_t i)
{
        yaml_node_t *item =
                yaml_document_get_node(ctx->document, node->data.sequence.items.start[i]);

        return item && config_visit(ctx, item) ? item : NULL;
}

int config_value_strv(ConfigContext *ctx, yaml_node_t *node, const char *path,
                      const ConfigStrv *arg, char ***ret)
{
        _cleanup_strv_free_ char **l = NULL;
        size_t n, k = 0;

        n = config_value_sequence(ctx, node, path, arg->empty_error, arg->count);
        if (n == 0)
                return 0;
        l = calloc(n + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                yaml_node_t *item = config_sequence_item(ctx, node, i);
                char p[CONFIG_PATH_MAX];
                int r;

                if (!item)
                        return 0;
                config_path_index(p, path, i);
                r = config_string_value(ctx, item, p, arg->validator, &l[k]);
                if (r < 0)
                        return r;
                if (l[k])
                        k++;
        }

        /* Only a list whose every entry is fine replaces what an earlier file said. */
        if (k == n) {
                strv_free(*ret);
                *ret = TAKE_PTR(l);
        }
        return 0;
}

int config_parse_strv(ConfigContext *ctx, const ConfigField *f, yaml_node_t *node, void *base,
                      const char *path)
{
        return config_value_strv(ctx, node, path, f->arg, (char ***)((char *)base + f->offset));
}

int config_parse_block(ConfigContext *ctx, const ConfigField *f, yaml_node_t *node, void *base,
                       const char *path)
{
        return config_walk_mapping(ctx, node, f->arg, (char *)base + f->offset, path);
}

int config_parse_block_init(ConfigContext *ctx, const ConfigField *f, yaml_node_t *node,
                            void *base, const char *path)
{
        const ConfigTable *t = f->arg;

        /* What is not a mapping is refused by the walk: its defaults would be moot. */
        if (node->type == YAML_MAPPING_NODE && t->init)
                t->init((char *)base + f->offset);
        return config_walk_mapping(ctx, node, t, (char *)base + f->offset, path);
}

/* Appends one item per sequence entry: top-level lists thus concatenate across documents. */
int config_parse_list(ConfigContext *ctx, const ConfigField *f, yaml_node_t *node, void *base,
                      const char *path)
{
        const ConfigList *list = f->arg;
        void **array = (void **)((char *)base + f->offset);
        size_t *count = (size_t *)((char *)base + list->count_offset);
        size_t slot = list->new_object ? sizeof(void *) : list->item_size;
        size_t n;
        char *a;

        n = config_value_sequence(ctx, node, path, list->empty_error, NULL);
        if (n == 0)
                return 0;
        if (n > SIZE_MAX / slot - *count)
                return -ENOMEM;
        if (!config_count_fits(ctx, list->count, node, path, *count + n))
                return 0;
        a = reallocarray(*array, *count + n, slot);
        if (!a)
                return -ENOMEM;
        *array = a;
        memset(a + *count * slot, 0, n * slot);

        for (size_t i = 0; i < n; i++) {
                yaml_node_t *item = config_sequence_item(ctx, node, i);
                void *dest = a + *count * slot;
                char p[CONFIG_PATH_MAX];
                int r;

                if (!item)
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
                config_path_index(p, path, i);
                r = config_walk_mapping(ctx, item, list->table, dest, p);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* The index of the field named by the scalar `key`, or n. */
static size_t find_field(const ConfigField *fields, size_t n, const yaml_node_t *key)
{
        size_t i;

        for (i = 0; i < n; i++)
                if (strlen(fields[i].key) == key->data.scalar.length &&
                    memcmp(fields[i].key, key->data.scalar.value, key->data.scalar.length) == 0)
                        break;
        return i;
}

bool config_read_mapping(ConfigContext *ctx, yaml_node_t *node, const char *path,
                         const ConfigField *fields, size_t n_fields, const ConfigTable *skipped,
                         yaml_node_t **values)
{
        yaml_node_t *keys[CONFIG_TABLE_MAX] = {};
        char esc[CONFIG_ESCAPE_MAX], p[CONFIG_PATH_MAX];

        assert(n_fields <= CONFIG_TABLE_MAX);
        for (size_t i = 0; i < n_fields; i++)
                values[i] = NULL;

        if (node->type != YAML_MAPPING_NODE) {
                config_node_error(ctx, node, path, "expected a mapping, got %s",
                                  config_node_kind(node));
                return false;
        }

        for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
             pair < node->data.mapping.pairs.top; pair++) {
                yaml_node_t *key = yaml_document_get_node(ctx->document, pair->key);
                yaml_node_t *value = yaml_document_get_node(ctx->document, pair->value);
                size_t i;

                if (!key || !value || !config_visit(ctx, value))
                        return false;
                if (key->type != YAML_SCALAR_NODE) {
                        config_node_error(ctx, key, path, "expected a string as key, got %s",
                                          config_node_kind(key));
                        continue;
                }
                i = find_field(fields, n_fields, key);
                if (i == n_fields && skipped &&
                    find_field(skipped->fields, skipped->n_fields, key) < skipped->n_fields)
                        continue;
                if (i == n_fields) {
                        config_node_error(ctx, key, path, "unknown key '%s'",
                                          config_node_escape(key, esc));
                        continue;
                }
                if (keys[i]) {
                        /* YAML forbids it; libyaml lets it through, and the last one would
                         * silently win. */
                        ConfigMark first = config_mark(ctx, keys[i]);

                        config_node_error(ctx, key, path, "duplicate key '%s' (first at %u:%u)",
                                          fields[i].key, first.line, first.column);
                        continue;
                }
                keys[i] = key;
                if (config_node_is_null(value))
                        continue;
                if (fields[i].refusal) {
                        config_path_join(p, path, fields[i].key);
                        config_node_error(ctx, key, p, "%s", fields[i].refusal);
                        continue;
                }
                values[i] = value;
        }
        return true;
}

int config_walk_mapping(ConfigContext *ctx, yaml_node_t *node, const ConfigTable *t, void *base,
                        const char *path)
{
        yaml_node_t *values[CONFIG_TABLE_MAX];
        char p[CONFIG_PATH_MAX];
        int r;

        if (!config_read_mapping(ctx, node, path, t->fields, t->n_fields, t->skipped, values))
                return 0;
        for (size_t i = 0; i < t->n_fields; i++) {
                const ConfigField *f = t->fields + i;

                if (!values[i] || !f->parse)
                        continue;
                config_path_join(p, path, f->key);
                r = f->parse(ctx, f, values[i], base, p);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < t->n_fields; i++)
                if (t->fields[i].required && !values[i])
                        config_missing_key(ctx, node, path, t->fields[i].key);

        return t->finish ? t->finish(ctx, t, node, values, base, path) : 0;
}
