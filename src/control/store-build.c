/* SPDX-License-Identifier: MIT */
/* From etcd's keys and values to a Config, through the one pipeline: the store's objects as a
 * ConfigSource after the files (a whole read) or after the configuration serving (changes). A
 * value the loader refuses is taken out, with a journal entry naming its key, and the build is
 * tried again: its object keeps its last good value (or, new, is not served) and the rest
 * applies. */

#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "config/config-source.h"
#include "control/store-build.h"

/* A build is tried again once per value refused; past this, whatever is wrong is refused whole. */
#define STORE_BUILD_ROUNDS 16

int store_key_parse(const char *prefix, const char *key, ConfigObjectKind *ret_kind,
                    const char **ret_name)
{
        size_t l = strlen(prefix);
        const char *rest;

        if (strncmp(key, prefix, l) != 0)
                return -EINVAL;
        rest = key + l;
        if (strncmp(rest, "upstreams/", 10) == 0) {
                *ret_kind = CONFIG_OBJECT_UPSTREAM;
                rest += 10;
        } else if (strncmp(rest, "routes/", 7) == 0) {
                *ret_kind = CONFIG_OBJECT_ROUTE;
                rest += 7;
        } else
                return -EINVAL;
        if (!*rest || strchr(rest, '/'))
                return -EINVAL;
        *ret_name = rest;
        return 0;
}

void store_items_done(StoreItems *s)
{
        for (size_t i = 0; i < s->n; i++)
                free((char *)s->items[i].path);
        free(s->items);
        *s = (StoreItems){};
}

int store_items_add(StoreItems *s, const char *prefix, const char *key, const char *value,
                    size_t len)
{
        ConfigObjectKind kind;
        const char *name;
        char *path;

        if (store_key_parse(prefix, key, &kind, &name) < 0)
                return 0; /* not ours: etcdctl may keep other things under the prefix */
        if (s->n == s->allocated) {
                size_t n = s->allocated ? s->allocated * 2 : 16;
                ConfigStoreItem *a = reallocarray(s->items, n, sizeof(*a));
                if (!a)
                        return -ENOMEM;
                s->items = a;
                s->allocated = n;
        }
        if (asprintf(&path, "etcd %s", key) < 0)
                return -ENOMEM;
        /* name points into path, after "etcd " and the prefix and kind. */
        s->items[s->n++] = (ConfigStoreItem){
                .kind = kind,
                .name = path + 5 + (size_t)(name - key),
                .path = path,
                .value = value,
                .len = len,
        };
        return 1;
}

static const void *current_object(const Config *c, ConfigObjectKind kind, const char *name)
{
        if (!c)
                return NULL;
        return kind == CONFIG_OBJECT_UPSTREAM ? (const void *)config_find_upstream(c, name)
                                              : (const void *)config_find_route(c, name);
}

/* The item a problem is about: its path is the item's, or under it. */
static ConfigStoreItem *item_of(StoreItems *s, const ConfigProblem *p)
{
        for (size_t i = 0; i < s->n; i++) {
                size_t l = strlen(s->items[i].path);
                const char *q = p->path;
                if (strncmp(q, s->items[i].path, l) == 0 &&
                    (q[l] == 0 || q[l] == '.' || q[l] == '['))
                        return s->items + i;
        }
        return NULL;
}

int store_build(const Config *start, bool whole, StoreItems *s, const Config *current,
                Config **ret, char **ret_error)
{
        int r = -EINVAL;

        for (unsigned round = 0; round < STORE_BUILD_ROUNDS; round++) {
                ConfigStoreItems items = {.whole = whole, .items = s->items, .n = s->n};
                ConfigSource sources[] = {config_source_loaded(start), config_source_store(&items)};
                ConfigProblems p = {};
                bool other = false;
                size_t refused = 0;

                r = config_build(sources, ELEMENTSOF(sources), ret, &p, NULL);
                if (r != -EINVAL) {
                        config_problems_done(&p);
                        return r;
                }
                for (size_t i = 0; i < p.n; i++) {
                        ConfigStoreItem *it = item_of(s, &p.items[i]);

                        if (!it || (!it->value && !it->keep)) {
                                other = true;
                                continue;
                        }
                        const void *last = it->keep ? NULL
                                                    : current_object(current, it->kind, it->name);
                        log_event(LOG_WARNING, LBPROXY_MESSAGE_STORE, NULL, NULL, NULL,
                                  "etcd key %s refused, %s: %s%s%s", it->path + 5,
                                  last ? "its last good value serves" : "not served",
                                  p.items[i].path + strlen(it->path) +
                                          (p.items[i].path[strlen(it->path)] == '.'),
                                  p.items[i].path[strlen(it->path)] ? ": " : "",
                                  p.items[i].message);
                        it->value = NULL;
                        it->keep = last;
                        refused++;
                }
                if (other || refused == 0 || p.n_dropped > 0) {
                        if (ret_error)
                                *ret_error = config_problems_join(&p);
                        config_problems_done(&p);
                        return -EINVAL;
                }
                config_problems_done(&p);
        }
        if (ret_error)
                *ret_error = strdup("too many values refused");
        return r;
}
