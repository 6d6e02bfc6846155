/* SPDX-License-Identifier: MIT */
#include <strings.h>

#include "base/hashmap.h"
#include "lb/model.h"
#include "lb/router.h"

/* Routes sharing one path (exact) or one prefix, ordered by priority, then by definition: their
 * places in the model's list. */
typedef struct Bucket {
        uint32_t *routes;
        size_t n;
} Bucket;

struct Router {
        unsigned n_ref; /* the models sharing it; taken and dropped on one thread */
        Hashmap *exact;    /* path -> Bucket */
        Hashmap *prefixes; /* prefix without '*' -> Bucket */
        size_t *prefix_lengths; /* distinct, longest first */
        size_t n_prefix_lengths;
};

static int free_bucket(const char *key, size_t key_len, void *value, void *userdata)
{
        Bucket *b = value;
        free(b->routes);
        free(b);
        return 0;
}

Router *router_ref(Router *r)
{
        if (r)
                r->n_ref++;
        return r;
}

Router *router_free(Router *r)
{
        if (!r || --r->n_ref > 0)
                return NULL;
        if (r->exact) {
                hashmap_foreach(r->exact, free_bucket, NULL);
                hashmap_free(r->exact);
        }
        if (r->prefixes) {
                hashmap_foreach(r->prefixes, free_bucket, NULL);
                hashmap_free(r->prefixes);
        }
        free(r->prefix_lengths);
        free(r);
        return NULL;
}

static int bucket_add(Hashmap *map, const char *key, size_t key_len, Route *const *routes,
                      uint32_t route)
{
        Bucket *b = hashmap_get(map, key, key_len);
        if (!b) {
                b = calloc(1, sizeof(*b));
                if (!b)
                        return -ENOMEM;
                int r = hashmap_put(map, key, key_len, b);
                if (r < 0)
                        return free(b), r;
        }
        /* A route listing the same path twice needs to be in the bucket once. */
        for (size_t i = 0; i < b->n; i++)
                if (b->routes[i] == route)
                        return 0;
        uint32_t *l = realloc(b->routes, (b->n + 1) * sizeof(uint32_t));
        if (!l)
                return -ENOMEM;
        b->routes = l;

        /* Insert after every route of equal or higher priority: stable by definition order. */
        int priority = routes[route]->config->priority;
        size_t at = b->n;
        while (at > 0 && routes[b->routes[at - 1]]->config->priority < priority)
                at--;
        memmove(b->routes + at + 1, b->routes + at, (b->n - at) * sizeof(uint32_t));
        b->routes[at] = route;
        b->n++;
        return 0;
}

static int cmp_size_desc(const void *a, const void *b)
{
        size_t x = *(const size_t *)a, y = *(const size_t *)b;
        return x < y ? 1 : x > y ? -1 : 0;
}

static int add_prefix_length(Router *r, size_t len)
{
        for (size_t i = 0; i < r->n_prefix_lengths; i++)
                if (r->prefix_lengths[i] == len)
                        return 0;
        size_t *l = realloc(r->prefix_lengths, (r->n_prefix_lengths + 1) * sizeof(size_t));
        if (!l)
                return -ENOMEM;
        r->prefix_lengths = l;
        l[r->n_prefix_lengths++] = len;
        return 0;
}

int router_new(Route *const *routes, size_t n_routes, Router **ret)
{
        if (n_routes > UINT32_MAX)
                return -E2BIG;
        Router *r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        r->n_ref = 1;
        r->exact = hashmap_new();
        r->prefixes = hashmap_new();
        if (!r->exact || !r->prefixes)
                return router_free(r), -ENOMEM;

        for (size_t i = 0; i < n_routes; i++) {
                for (char **p = routes[i]->config->paths; p && *p; p++) {
                        size_t len = strlen(*p);
                        int k;
                        if (len > 0 && (*p)[len - 1] == '*') {
                                k = bucket_add(r->prefixes, *p, len - 1, routes, (uint32_t)i);
                                if (k >= 0)
                                        k = add_prefix_length(r, len - 1);
                        } else
                                k = bucket_add(r->exact, *p, len, routes, (uint32_t)i);
                        if (k < 0)
                                return router_free(r), k;
                }
        }
        if (r->n_prefix_lengths > 1)
                qsort(r->prefix_lengths, r->n_prefix_lengths, sizeof(size_t), cmp_size_desc);
        *ret = r;
        return 0;
}

/* "*.example.com" matches "a.example.com" (one or more labels), not "example.com". */
static bool host_matches(const char *pattern, HttpSlice host)
{
        if (pattern[0] == '*' && pattern[1] == '.') {
                size_t suffix = strlen(pattern + 1); /* ".example.com" */
                return host.len > suffix &&
                       strncasecmp(host.p + host.len - suffix, pattern + 1, suffix) == 0;
        }
        return strlen(pattern) == host.len && strncasecmp(pattern, host.p, host.len) == 0;
}

static bool route_accepts(const Route *route, HttpSlice method, HttpSlice host)
{
        const ConfigRoute *c = route->config;

        if (c->methods && c->methods[0]) {
                bool ok = false;
                for (char **m = c->methods; *m && !ok; m++)
                        ok = strlen(*m) == method.len && memcmp(*m, method.p, method.len) == 0;
                if (!ok)
                        return false;
        }
        if (c->hosts && c->hosts[0]) {
                bool ok = false;
                for (char **h = c->hosts; *h && !ok; h++)
                        ok = host_matches(*h, host);
                if (!ok)
                        return false;
        }
        return true;
}

static Route *bucket_match(const Bucket *b, Route *const *routes, HttpSlice method,
                           HttpSlice host)
{
        if (!b)
                return NULL;
        for (size_t i = 0; i < b->n; i++)
                if (route_accepts(routes[b->routes[i]], method, host))
                        return routes[b->routes[i]];
        return NULL;
}

Route *router_match(const Router *r, Route *const *routes, HttpSlice method, HttpSlice host,
                    HttpSlice path)
{
        Route *route = bucket_match(hashmap_get(r->exact, path.p, path.len), routes, method,
                                    host);
        if (route)
                return route;

        for (size_t i = 0; i < r->n_prefix_lengths; i++) {
                size_t len = r->prefix_lengths[i];
                if (len > path.len)
                        continue;
                route = bucket_match(hashmap_get(r->prefixes, path.p, len), routes, method, host);
                if (route)
                        return route;
        }
        return NULL;
}
