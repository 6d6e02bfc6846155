/* SPDX-License-Identifier: MIT */
/* Edits of the overlay: one upstream or route document read by the loader's tables into a new
 * Config that shares everything else with the old one, then checked whole. */

#include <assert.h>

#include "config/config-internal.h"
#include "config/config-overlay.h"
#include "config/config-source.h"

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
static int walk_document(ConfigContext *ctx, ConfigObjectKind kind, ConfigTree *t, const char *path,
                         bool edit, void **ret)
{
        yaml_document_t *doc = config_tree_document(t);
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

int config_node_document(const Config *c, const char *upstream, const char *host, uint16_t port,
                         ConfigTree **ret, int *ret_node, size_t *ret_index)
{
        _cleanup_(config_tree_freep) ConfigTree *t = NULL;
        const ConfigUpstream *u = config_find_upstream(c, upstream);
        ssize_t k;
        int r, node;

        if (!u)
                return -ENOENT;
        k = config_upstream_find_node(u, host, port);
        if (k == -ENOENT)
                return -ENXIO;
        if (k < 0)
                return (int)k;
        r = config_object_document(c, CONFIG_OBJECT_UPSTREAM, upstream, &t);
        if (r < 0)
                return r;
        /* The document is the dump of `u`: its nodes in the same order. */
        node = config_tree_item(t, config_tree_get(t, config_tree_root(t), "nodes"), (size_t)k);
        assert(node > 0);
        *ret = TAKE_PTR(t);
        *ret_node = node;
        *ret_index = (size_t)k;
        return 0;
}

int config_edit_node_state(const Config *c, const char *upstream, const char *host, uint16_t port,
                           const char *state, ConfigEdit *ret_edit, size_t *ret_index)
{
        _cleanup_(config_tree_freep) ConfigTree *t = NULL;
        size_t k;
        int r, node;

        r = config_node_document(c, upstream, host, port, &t, &node, &k);
        if (r < 0)
                return r;
        r = config_tree_set(t, node, "state", config_tree_add_string(t, state));
        if (r < 0)
                return r;
        *ret_edit = (ConfigEdit){.kind = CONFIG_OBJECT_UPSTREAM, .name = upstream,
                                 .document = TAKE_PTR(t)};
        *ret_index = k;
        return 0;
}
