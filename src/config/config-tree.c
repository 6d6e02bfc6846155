/* SPDX-License-Identifier: MIT */
/* Documents built in memory, as libyaml documents: the loader walks them exactly as it walks a
 * parsed file. Strings are double-quoted scalars and numbers and booleans plain ones, which is
 * how the walker tells a string "5" from the integer 5. Nodes are never freed one by one: a
 * replaced or removed value stays in the document, unreferenced, until the tree goes. */

#include <inttypes.h>
#include <yaml.h>

#include "config/config-internal.h"
#include "config/config-tree.h"

struct ConfigTree {
        yaml_document_t doc;
};

yaml_document_t *config_tree_document(ConfigTree *t)
{
        return &t->doc;
}

/* The first node made is the root: a mapping, or a sequence. */
static int tree_new(bool sequence, ConfigTree **ret)
{
        ConfigTree *t = calloc(1, sizeof(*t));
        int root;

        if (!t)
                return -ENOMEM;
        if (!yaml_document_initialize(&t->doc, NULL, NULL, NULL, 1, 1)) {
                free(t);
                return -ENOMEM;
        }
        root = sequence ? config_tree_add_sequence_styled(t, false)
                        : config_tree_add_mapping_styled(t, false);
        if (root != 1) {
                config_tree_free(t);
                return -ENOMEM;
        }
        *ret = t;
        return 0;
}

int config_tree_new(ConfigTree **ret)
{
        return tree_new(false, ret);
}

int config_tree_new_sequence(ConfigTree **ret)
{
        return tree_new(true, ret);
}

ConfigTree *config_tree_free(ConfigTree *t)
{
        if (!t)
                return NULL;
        yaml_document_delete(&t->doc);
        free(t);
        return NULL;
}

int config_tree_root(const ConfigTree *t)
{
        return 1;
}

static yaml_node_t *node_of(const ConfigTree *t, int id, yaml_node_type_t type)
{
        yaml_node_t *n = yaml_document_get_node((yaml_document_t *)&t->doc, id);

        return n && n->type == type ? n : NULL;
}

int config_tree_add_mapping_styled(ConfigTree *t, bool flow)
{
        int id = yaml_document_add_mapping(
                &t->doc, NULL, flow ? YAML_FLOW_MAPPING_STYLE : YAML_BLOCK_MAPPING_STYLE);

        return id > 0 ? id : -ENOMEM;
}

int config_tree_add_sequence_styled(ConfigTree *t, bool flow)
{
        int id = yaml_document_add_sequence(
                &t->doc, NULL, flow ? YAML_FLOW_SEQUENCE_STYLE : YAML_BLOCK_SEQUENCE_STYLE);

        return id > 0 ? id : -ENOMEM;
}

int config_tree_add_scalar_styled(ConfigTree *t, const char *s, yaml_scalar_style_t style)
{
        int id = yaml_document_add_scalar(&t->doc, NULL, (yaml_char_t *)s, (int)strlen(s), style);

        return id > 0 ? id : -ENOMEM;
}

int config_tree_emit(ConfigTree *t, yaml_emitter_t *e)
{
        /* yaml_emitter_dump() deletes the document, whether or not it succeeds. */
        int ok = yaml_emitter_dump(e, &t->doc);

        free(t);
        return ok ? 0 : -EIO;
}

int config_tree_add_mapping(ConfigTree *t)
{
        return config_tree_add_mapping_styled(t, false);
}

int config_tree_add_sequence(ConfigTree *t)
{
        return config_tree_add_sequence_styled(t, true);
}

static int add_scalar(ConfigTree *t, const char *s, yaml_scalar_style_t style)
{
        return config_tree_add_scalar_styled(t, s, style);
}

int config_tree_add_string(ConfigTree *t, const char *s)
{
        return add_scalar(t, s, YAML_DOUBLE_QUOTED_SCALAR_STYLE);
}

int config_tree_add_integer(ConfigTree *t, int64_t v)
{
        char buf[32];

        snprintf(buf, sizeof(buf), "%" PRId64, v);
        return add_scalar(t, buf, YAML_PLAIN_SCALAR_STYLE);
}

int config_tree_add_unsigned(ConfigTree *t, uint64_t v)
{
        char buf[32];

        snprintf(buf, sizeof(buf), "%" PRIu64, v);
        return add_scalar(t, buf, YAML_PLAIN_SCALAR_STYLE);
}

int config_tree_add_boolean(ConfigTree *t, bool v)
{
        return add_scalar(t, v ? "true" : "false", YAML_PLAIN_SCALAR_STYLE);
}

int config_tree_add_number(ConfigTree *t, double v)
{
        char buf[64];

        snprintf(buf, sizeof(buf), "%.17g", v);
        return add_scalar(t, buf, YAML_PLAIN_SCALAR_STYLE);
}

static yaml_node_pair_t *find_pair(const ConfigTree *t, yaml_node_t *mapping, const char *key)
{
        size_t l = strlen(key);

        for (yaml_node_pair_t *p = mapping->data.mapping.pairs.start;
             p < mapping->data.mapping.pairs.top; p++) {
                yaml_node_t *k = yaml_document_get_node((yaml_document_t *)&t->doc, p->key);

                if (k && k->type == YAML_SCALAR_NODE && k->data.scalar.length == l &&
                    memcmp(k->data.scalar.value, key, l) == 0)
                        return p;
        }
        return NULL;
}

int config_tree_set(ConfigTree *t, int mapping, const char *key, int value)
{
        yaml_node_t *m = node_of(t, mapping, YAML_MAPPING_NODE);
        yaml_node_pair_t *p;
        int k;

        if (!m || !yaml_document_get_node(&t->doc, value))
                return -EINVAL;
        p = find_pair(t, m, key);
        if (p) {
                p->value = value;
                return 0;
        }
        k = add_scalar(t, key, YAML_PLAIN_SCALAR_STYLE);
        if (k < 0)
                return k;
        /* By id: adding the key may have moved the nodes. */
        return yaml_document_append_mapping_pair(&t->doc, mapping, k, value) ? 0 : -ENOMEM;
}

int config_tree_get(const ConfigTree *t, int mapping, const char *key)
{
        yaml_node_t *m = node_of(t, mapping, YAML_MAPPING_NODE);
        yaml_node_pair_t *p = m ? find_pair(t, m, key) : NULL;

        return p ? p->value : 0;
}

int config_tree_unset(ConfigTree *t, int mapping, const char *key)
{
        yaml_node_t *m = node_of(t, mapping, YAML_MAPPING_NODE);
        yaml_node_pair_t *p = m ? find_pair(t, m, key) : NULL;

        if (!m)
                return -EINVAL;
        if (!p)
                return 0;
        memmove(p, p + 1, (size_t)(m->data.mapping.pairs.top - p - 1) * sizeof(*p));
        m->data.mapping.pairs.top--;
        return 1;
}

int config_tree_append(ConfigTree *t, int sequence, int value)
{
        if (!node_of(t, sequence, YAML_SEQUENCE_NODE) || !yaml_document_get_node(&t->doc, value))
                return -EINVAL;
        return yaml_document_append_sequence_item(&t->doc, sequence, value) ? 0 : -ENOMEM;
}

size_t config_tree_length(const ConfigTree *t, int sequence)
{
        yaml_node_t *s = node_of(t, sequence, YAML_SEQUENCE_NODE);

        return s ? (size_t)(s->data.sequence.items.top - s->data.sequence.items.start) : 0;
}

int config_tree_item(const ConfigTree *t, int sequence, size_t i)
{
        yaml_node_t *s = node_of(t, sequence, YAML_SEQUENCE_NODE);

        if (!s || i >= config_tree_length(t, sequence))
                return 0;
        return s->data.sequence.items.start[i];
}

int config_tree_remove_item(ConfigTree *t, int sequence, size_t i)
{
        yaml_node_t *s = node_of(t, sequence, YAML_SEQUENCE_NODE);
        size_t n = config_tree_length(t, sequence);

        if (!s || i >= n)
                return -EINVAL;
        memmove(s->data.sequence.items.start + i, s->data.sequence.items.start + i + 1,
                (n - i - 1) * sizeof(yaml_node_item_t));
        s->data.sequence.items.top--;
        return 0;
}

bool config_tree_is_mapping(const ConfigTree *t, int node)
{
        return node_of(t, node, YAML_MAPPING_NODE) != NULL;
}
