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

/* Keeps what the batch removes, where it serves now; how many it kept. */
static size_t keep_removed(StoreItems *s, const Config *current, const ConfigProblems *p)
{
        size_t n = 0;

        for (size_t i = 0; i < s->n; i++) {
                ConfigStoreItem *it = s->items + i;
                const void *last = current_object(current, it->kind, it->name);

                if (it->value || it->keep || !last)
                        continue;
                log_event(LOG_WARNING, LBPROXY_MESSAGE_STORE, NULL, NULL, NULL,
                          "etcd key %s deleted, but its object still serves: %s%s%s",
                          it->path + 5, p->items[0].path, *p->items[0].path ? ": " : "",
                          p->items[0].message);
                it->keep = last;
                n++;
        }
        return n;
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
        _cleanup_free_ bool *done = calloc(s->n ? s->n : 1, sizeof(bool));
        int r = -EINVAL;

        if (!done)
                return -ENOMEM;
        for (unsigned round = 0; round < STORE_BUILD_ROUNDS; round++) {
                ConfigStoreItems items = {.whole = whole, .items = s->items, .n = s->n};
                ConfigSource sources[] = {config_source_loaded(start), config_source_store(&items)};
                _cleanup_(config_problems_done) ConfigProblems p = {};
                bool other = false;

                r = config_build(sources, ELEMENTSOF(sources), ret, &p, NULL);
                if (r != -EINVAL)
                        return r;
                for (size_t i = 0; i < p.n && !other; i++) {
                        ConfigStoreItem *it = item_of(s, &p.items[i]);
                        other = !it || (!it->value && !it->keep);
                }
                /* Problems of objects the items do not hold (a route naming an upstream
                 * removed): the batch's removals cause them. Those are refused first, alone:
                 * what the rest of the batch says may be fine once they are. */
                if (other) {
                        if (keep_removed(s, current, &p) > 0)
                                continue;
                        if (ret_error)
                                *ret_error = config_problems_join(&p);
                        return -EINVAL;
                }
                memset(done, 0, s->n * sizeof(bool));
                for (size_t i = 0; i < p.n; i++) {
                        ConfigStoreItem *it = item_of(s, &p.items[i]);
                        const char *rest = p.items[i].path + strlen(it->path);
                        size_t k = (size_t)(it - s->items);

                        if (done[k])
                                continue; /* a second problem of a value refused already */
                        done[k] = true;
                        /* A value refused keeps what serves; what was kept and is at fault now
                         * (a route naming an upstream gone) goes. */
                        const void *last = it->value ? current_object(current, it->kind, it->name)
                                                     : NULL;
                        log_event(LOG_WARNING, LBPROXY_MESSAGE_STORE, NULL, NULL, NULL,
                                  "etcd key %s refused, %s: %s%s%s", it->path + 5,
                                  last ? "its last good value serves" : "not served",
                                  rest + (*rest == '.'), *rest ? ": " : "", p.items[i].message);
                        it->value = NULL;
                        it->keep = last;
                }
        }
        if (ret_error)
                *ret_error = strdup("too many values refused");
        return r;
}

int store_build_range(const Config *files, const char *prefix, const EtcdRange *range,
                      const Config *current, Config **ret, char **ret_error)
{
        StoreItems items = {};
        int r = 0;

        for (size_t i = 0; i < range->n_kvs && r >= 0; i++)
                r = store_items_add(&items, prefix, range->kvs[i].key, range->kvs[i].value,
                                    range->kvs[i].value_len);
        if (r >= 0)
                r = store_build(files, true, &items, current, ret, ret_error);
        store_items_done(&items);
        return r;
}
