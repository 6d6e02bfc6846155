/* SPDX-License-Identifier: MIT */
/* Edits of the overlay: one upstream or route document read by the loader's tables into a new
 * Config that shares everything else with the old one, then checked whole. */

#include <assert.h>

#include "config/config-internal.h"
#include "config/config-overlay.h"
#include "config/config-source.h"
#include "config/config-walk.h"

static ssize_t find_object(const Config *c, ConfigObjectKind kind, const char *name)
{
        size_t n = kind == CONFIG_OBJECT_UPSTREAM ? c->n_upstreams : c->n_routes;

        for (size_t i = 0; i < n; i++)
                if (streq_ptr(kind == CONFIG_OBJECT_UPSTREAM ? c->upstreams[i]->name
                                                             : c->routes[i]->name,
                              name))
                        return (ssize_t)i;
        return -ENOENT;
}

static void object_unref(ConfigObjectKind kind, void *o)
{
        if (kind == CONFIG_OBJECT_UPSTREAM)
                config_upstream_unref(o);
        else
                config_route_unref(o);
}

/* Reads a document as one object, its problems at `path` (the caller's, when an edit's). */
static int walk_yaml(ConfigContext *ctx, ConfigObjectKind kind, yaml_document_t *doc,
                     const char *path, bool edit, void **ret)
{
        int r;

        ctx->document = doc;
        ctx->file = NULL;
        ctx->visits = 0;
        ctx->max_visits = (size_t)(doc->nodes.top - doc->nodes.start) * CONFIG_VISITS_FACTOR +
                          CONFIG_VISITS_FLOOR;
        ctx->too_complex = false;
        ctx->walking_edit = edit;
        ctx->walking_object = true;
        r = config_schema_walk_object(ctx, kind, yaml_document_get_root_node(doc), path, ret);
        ctx->walking_edit = ctx->walking_object = false;
        ctx->document = NULL;
        return r;
}

static int walk_document(ConfigContext *ctx, ConfigObjectKind kind, ConfigTree *t, const char *path,
                         bool edit, void **ret)
{
        return walk_yaml(ctx, kind, config_tree_document(t), path, edit, ret);
}

/* Puts `o` (taken) in the place of object `index`, or after the last when index < 0, or removes
 * object `index` when `o` is NULL. */
static int place(Config *c, ConfigObjectKind kind, ssize_t index, void *o, size_t *ret_index)
{
        void ***array =
                kind == CONFIG_OBJECT_UPSTREAM ? (void ***)&c->upstreams : (void ***)&c->routes;
        size_t *n = kind == CONFIG_OBJECT_UPSTREAM ? &c->n_upstreams : &c->n_routes;

        if (index >= 0) {
                object_unref(kind, (*array)[index]);
                if (o)
                        (*array)[index] = o;
                else {
                        memmove(*array + index, *array + index + 1,
                                (*n - (size_t)index - 1) * sizeof(void *));
                        (*n)--;
                }
                *ret_index = (size_t)index;
                return 0;
        }

        void **a = reallocarray(*array, *n + 1, sizeof(void *));
        if (!a) {
                object_unref(kind, o);
                return -ENOMEM;
        }
        *array = a;
        a[*n] = o;
        *ret_index = (*n)++;
        return 0;
}

int config_build_edit(ConfigBuild *b, const ConfigEdit *edit)
{
        ssize_t index = -1;
        size_t at = 0;
        void *o = NULL;
        int r;

        assert(edit->name || edit->document);
        if (edit->name) {
                index = find_object(b->config, edit->kind, edit->name);
                if (index < 0)
                        return -ENOENT;
        }
        if (edit->document) {
                r = walk_document(b, edit->kind, edit->document, "", true, &o);
                if (r < 0)
                        return r;
        }
        r = place(b->config, edit->kind, index, o, &at);
        if (r < 0)
                return r;
        if (!o) {
                config_forget_object_path(b, edit->kind, at);
                return 0;
        }
        /* Its problems are the caller's, with paths in its document. */
        b->edited_kind = edit->kind;
        b->edited_index = (ssize_t)at;
        return config_set_object_path(b, edit->kind, at, "");
}

int config_build_read_document(ConfigBuild *b, ConfigObjectKind kind, ConfigTree *t,
                               const char *path)
{
        size_t at = 0;
        void *o = NULL;
        int r;

        r = walk_document(b, kind, t, path, false, &o);
        if (r >= 0)
                r = place(b->config, kind, -1, o, &at);
        if (r >= 0)
                r = config_set_object_path(b, kind, at, path);
        return r;
}

int config_build_keep_object(ConfigBuild *b, ConfigObjectKind kind, const void *o, const char *path)
{
        size_t at = 0;
        void *ref = kind == CONFIG_OBJECT_UPSTREAM ? (void *)config_upstream_ref((ConfigUpstream *)o)
                                                   : (void *)config_route_ref((ConfigRoute *)o);
        int r = place(b->config, kind, -1, ref, &at);

        return r < 0 ? r : config_set_object_path(b, kind, at, path);
}

int config_build_remove_object(ConfigBuild *b, ConfigObjectKind kind, const char *name)
{
        return config_build_edit(b, &(ConfigEdit){.kind = kind, .name = name});
}

/* The YAML parser's complaint about a value, where in the value it is. */
static void text_error(ConfigContext *ctx, const yaml_parser_t *p, const char *path)
{
        const yaml_mark_t *m = p->error == YAML_READER_ERROR ? NULL : &p->problem_mark;

        if (p->error == YAML_MEMORY_ERROR) {
                ctx->oom = true;
                return;
        }
        if (m)
                config_error(ctx, NULL, path, "invalid JSON or YAML at line %zu column %zu: %s",
                             m->line + 1, m->column + 1, p->problem ? p->problem : "syntax error");
        else
                config_error(ctx, NULL, path, "invalid JSON or YAML at byte %zu: %s",
                             p->problem_offset, p->problem ? p->problem : "bad characters");
}

/* The key names the object: a value without `name:` takes it, one with another is refused. */
static int check_name(ConfigContext *ctx, yaml_document_t *doc, const char *name, const char *path)
{
        yaml_node_t *root = yaml_document_get_root_node(doc);
        yaml_node_t *v = config_mapping_get(doc, root, "name");
        char at[CONFIG_PATH_MAX], esc[CONFIG_ESCAPE_MAX], esc2[CONFIG_ESCAPE_MAX];

        if (!v) {
                int k = yaml_document_add_scalar(doc, NULL, (yaml_char_t *)"name", -1,
                                                 YAML_PLAIN_SCALAR_STYLE);
                int n = k ? yaml_document_add_scalar(doc, NULL, (yaml_char_t *)name, -1,
                                                     YAML_DOUBLE_QUOTED_SCALAR_STYLE)
                          : 0;
                /* The root again: adding nodes may have moved them. */
                if (!n || !yaml_document_append_mapping_pair(doc, 1, k, n))
                        return -ENOMEM;
                return 1;
        }
        if (v->type == YAML_SCALAR_NODE && v->data.scalar.length == strlen(name) &&
            memcmp(v->data.scalar.value, name, v->data.scalar.length) == 0)
                return 1;
        config_path_join(at, path, "name");
        if (v->type == YAML_SCALAR_NODE)
                config_error(ctx, NULL, at, "'%s' is not the name the key gives ('%s')",
                             config_escape((const char *)v->data.scalar.value,
                                           v->data.scalar.length, esc),
                             config_escape(name, strlen(name), esc2));
        else
                config_error(ctx, NULL, at, "expected a string, got %s", config_node_kind(v));
        return 0;
}

int config_build_read_text(ConfigBuild *b, ConfigObjectKind kind, const char *name,
                           const char *text, size_t len, const char *path)
{
        yaml_parser_t parser;
        yaml_document_t doc;
        yaml_node_t *root;
        size_t at = 0;
        void *o = NULL;
        int r;

        if (!yaml_parser_initialize(&parser))
                return -ENOMEM;
        yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
        if (!yaml_parser_load(&parser, &doc)) {
                text_error(b, &parser, path);
                yaml_parser_delete(&parser);
                return 0;
        }
        yaml_parser_delete(&parser);
        root = yaml_document_get_root_node(&doc);
        if (!root || config_node_is_null(root)) {
                config_error(b, NULL, path, "empty value (delete the key to remove the %s)",
                             kind == CONFIG_OBJECT_UPSTREAM ? "upstream" : "route");
                r = 0;
        } else if (root->type != YAML_MAPPING_NODE) {
                config_error(b, NULL, path, "expected a mapping (one %s), got %s",
                             kind == CONFIG_OBJECT_UPSTREAM ? "upstream" : "route",
                             config_node_kind(root));
                r = 0;
        } else {
                /* Read from no file: its problems have key paths only. */
                b->file = NULL;
                r = check_name(b, &doc, name, path);
                if (r > 0)
                        r = walk_yaml(b, kind, &doc, path, false, &o);
                if (r >= 0 && o)
                        r = place(b->config, kind, -1, o, &at);
                if (r >= 0 && o)
                        r = config_set_object_path(b, kind, at, path);
        }
        yaml_document_delete(&doc);
        return r < 0 ? r : 0;
}

static int contribute_edit(const ConfigSource *s, ConfigBuild *b)
{
        return config_build_edit(b, s->data);
}

ConfigSource config_source_edit(const ConfigEdit *e)
{
        return (ConfigSource){.name = "edit", .contribute = contribute_edit, .data = e};
}

int config_edit_apply(const Config *c, const ConfigEdit *edit, Config **ret,
                      ConfigProblems *ret_problems)
{
        ConfigSource sources[] = {config_source_loaded(c), config_source_edit(edit)};

        assert(c && edit && ret);
        return config_build(sources, ELEMENTSOF(sources), ret, ret_problems, NULL);
}

int config_object_document(const Config *c, ConfigObjectKind kind, const char *name,
                           ConfigTree **ret)
{
        _cleanup_(config_tree_freep) ConfigTree *t = NULL;
        ssize_t i = find_object(c, kind, name);
        int r;

        if (i < 0)
                return (int)i;
        r = config_tree_new(&t);
        if (r < 0)
                return r;
        if (kind == CONFIG_OBJECT_UPSTREAM)
                r = config_dump_upstream(t, config_tree_root(t), c->upstreams[i]);
        else
                r = config_dump_route(t, config_tree_root(t), c->routes[i]);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(t);
        return 0;
}

ssize_t config_upstream_find_node(const ConfigUpstream *u, const char *host, uint16_t port)
{
        char want[CONFIG_NODE_KEY_MAX], key[CONFIG_NODE_KEY_MAX];
        _cleanup_free_ char *h = strdup(host);

        if (!h)
                return -ENOMEM;
        /* A host that is not valid names no node; the check strips an IPv6 literal's []. */
        if (config_check_node_host(h))
                return -ENOENT;
        config_node_key(h, port, want);
        for (size_t i = 0; i < u->n_nodes; i++)
                if (streq(config_node_key(u->nodes[i].host, u->nodes[i].port, key), want))
                        return (ssize_t)i;
        return -ENOENT;
}

static int contribute_store(const ConfigSource *s, ConfigBuild *b)
{
        const ConfigStoreItems *items = s->data;
        int r;

        if (items->whole)
                config_build_replace_objects(b);
        for (size_t i = 0; i < items->n; i++) {
                const ConfigStoreItem *it = items->items + i;

                if (!items->whole) {
                        r = config_build_remove_object(b, it->kind, it->name);
                        if (r < 0 && r != -ENOENT)
                                return r;
                }
                if (it->keep)
                        r = config_build_keep_object(b, it->kind, it->keep, it->path);
                else if (it->value)
                        r = config_build_read_text(b, it->kind, it->name, it->value, it->len,
                                                   it->path);
                else
                        r = 0;
                if (r < 0)
                        return r;
        }
        return 0;
}

ConfigSource config_source_store(const ConfigStoreItems *s)
{
        return (ConfigSource){.name = "store", .contribute = contribute_store, .data = s};
}
