/* SPDX-License-Identifier: MIT */
#pragma once

/* The walker: how a mapping of a YAML document is read against a table of its keys, and how
 * each value is read. Shared by the native schema (config-schema.c) and the APISIX translator
 * (apisix.c): one set of rules for unknown, duplicate, null and refused keys, integers and their
 * ranges, booleans, durations, strings and their checks, lists and their sizes, and one wording
 * of every message. Each reports through config_error() and goes on, so one run shows every
 * mistake; a negative errno means it cannot go on at all (out of memory). */

#include "config/config-internal.h"

#define CONFIG_TABLE_MAX 16

typedef struct ConfigField ConfigField;

/* `base` is the struct the table fills; the parser writes at base + field->offset. */
typedef int (*ConfigParser)(ConfigContext *ctx, const ConfigField *f, yaml_node_t *node, void *base,
                            const char *path);

struct ConfigField {
        const char *key;
        ConfigParser parse; /* NULL: the value is only handed to the table's finish */
        size_t offset;
        const void *arg;
        bool required;
        /* A key known but not taken here, and why: reported at the key when it has a value. */
        const char *refusal;
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
        const ConfigChoiceRefusal *refused; /* known values refused by name; may be NULL */
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
        size_t count_offset;      /* of the size_t count, beside the array pointer */
        const char *empty_error;  /* NULL: an empty list is fine */
        const ConfigCount *count; /* NULL: no limit */
        /* Set for upstreams and routes: each item is an object of its own, made by this, and the
         * array holds pointers to them. */
        void *(*new_object)(const char *file);
} ConfigList;

#define RANGE(lo, hi, type, sgn) (&(const ConfigRange){(lo), (hi), sizeof(type), (sgn)})
#define FIELD(k, p, o, a)                                                                          \
        {                                                                                          \
                .key = (k), .parse = (p), .offset = (o), .arg = (a)                                \
        }
#define REQUIRED(k, p, o, a)                                                                       \
        {                                                                                          \
                .key = (k), .parse = (p), .offset = (o), .arg = (a), .required = true              \
        }
#define REFUSED(k, why)                                                                            \
        {                                                                                          \
                .key = (k), .refusal = (why)                                                       \
        }
#define TABLE(f, i, fin)                                                                           \
        {                                                                                          \
                .fields = (f), .n_fields = ELEMENTSOF(f), .init = (i), .finish = (fin)             \
        }

/* ---- mappings ---- */

/* Reads the keys of a mapping against `fields` (and `skipped`: known, not read here): an unknown,
 * duplicate or refused key is reported at the key; values[i] gets field i's value, NULL when
 * absent, null (`key: ~` is no key) or refused. False when `node` is not a mapping (reported) or
 * the walk must stop (the document expands too much through aliases). */
bool config_read_mapping(ConfigContext *ctx, yaml_node_t *node, const char *path,
                         const ConfigField *fields, size_t n_fields, const ConfigTable *skipped,
                         yaml_node_t **values);
/* Reads a mapping with `t`: each field's parser on its value, "missing required key" for those
 * without one, then the table's finish. */
int config_walk_mapping(ConfigContext *ctx, yaml_node_t *node, const ConfigTable *t, void *base,
                        const char *path);
/* The value field `key` of `t` had, NULL when none. */
yaml_node_t *config_field_value(const ConfigTable *t, yaml_node_t *const *values, const char *key);

/* ---- values ---- */

void config_node_error(ConfigContext *ctx, const yaml_node_t *node, const char *path,
                       const char *fmt, ...) _printf_(4, 5);
const char *config_node_escape(const yaml_node_t *node, char buf[static CONFIG_ESCAPE_MAX]);
/* "a.b" and "a" + "[3]"; an empty path gives the key alone. */
void config_path_join(char buf[static CONFIG_PATH_MAX], const char *path, const char *key);
void config_path_index(char buf[static CONFIG_PATH_MAX], const char *path, size_t i);
/* Counts a visit; false once the document has expanded too much (reported once). */
bool config_visit(ConfigContext *ctx, yaml_node_t *node);

/* The text of a non-null scalar, or NULL after saying what was there instead of `expected`. */
const char *config_scalar_text(ConfigContext *ctx, yaml_node_t *node, const char *path,
                               const char *expected);
bool config_is_plain(const yaml_node_t *node);
/* The text of a non-empty string, or NULL (reported). */
const char *config_value_text(ConfigContext *ctx, yaml_node_t *node, const char *path);
/* "missing required key 'key'", at the mapping. */
void config_missing_key(ConfigContext *ctx, const yaml_node_t *mapping, const char *path,
                        const char *key);
/* A copy of a non-empty string that `validator` (may be NULL) accepts and may normalize; *ret
 * NULL when it was reported. 0 or -ENOMEM. */
int config_string_value(ConfigContext *ctx, yaml_node_t *node, const char *path,
                        const ConfigValidator *validator, char **ret);
bool config_value_boolean(ConfigContext *ctx, yaml_node_t *node, const char *path, bool *ret);
bool config_value_integer(ConfigContext *ctx, yaml_node_t *node, const char *path, int64_t min,
                          int64_t max, int64_t *ret);
bool config_value_duration(ConfigContext *ctx, yaml_node_t *node, const char *path,
                           const ConfigDurationSyntax *syntax, uint64_t *ret);
/* A non-empty list of strings each `arg`'s validator accepts; *ret is left alone unless all
 * are fine. */
int config_value_strv(ConfigContext *ctx, yaml_node_t *node, const char *path,
                      const ConfigStrv *arg, char ***ret);
/* The items of a sequence, or 0 after saying it is not one, is empty (when `empty_error`) or
 * holds more than `count` allows (when given). */
size_t config_value_sequence(ConfigContext *ctx, yaml_node_t *node, const char *path,
                             const char *empty_error, const ConfigCount *count);
/* The i-th item of a sequence, NULL when the walk must stop (aliases). */
yaml_node_t *config_sequence_item(ConfigContext *ctx, yaml_node_t *node, size_t i);
bool config_strv_contains(char *const *l, const char *s);
void config_set_string(char **p, char *s);

/* ---- parsers for tables ---- */

int config_parse_bool(ConfigContext *ctx, const ConfigField *f, yaml_node_t *node, void *base,
                      const char *path);
int config_parse_tristate(ConfigContext *ctx, const ConfigField *f, yaml_node_t *node, void *base,
                          const char *path);
int config_parse_integer(ConfigContext *ctx, const ConfigField *f, yaml_node_t *node, void *base,
                         const char *path);
int config_parse_duration_field(ConfigContext *ctx, const ConfigField *f, yaml_node_t *node,
                                void *base, const char *path);
int config_parse_string(ConfigContext *ctx, const ConfigField *f, yaml_node_t *node, void *base,
                        const char *path);
int config_parse_choice(ConfigContext *ctx, const ConfigField *f, yaml_node_t *node, void *base,
                        const char *path);
int config_parse_strv(ConfigContext *ctx, const ConfigField *f, yaml_node_t *node, void *base,
                      const char *path);
int config_parse_block(ConfigContext *ctx, const ConfigField *f, yaml_node_t *node, void *base,
                       const char *path);
/* A block whose table's init sets what a block being written means (`passive:` given: APISIX's
 * passive defaults, not the built-in check), before its keys are read. */
int config_parse_block_init(ConfigContext *ctx, const ConfigField *f, yaml_node_t *node,
                            void *base, const char *path);
int config_parse_list(ConfigContext *ctx, const ConfigField *f, yaml_node_t *node, void *base,
                      const char *path);
