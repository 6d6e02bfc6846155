/* SPDX-License-Identifier: MIT */
#include "lb/model.h"
#include "lb/router.h"
#include "tap.h"

static HttpSlice S(const char *s)
{
        return (HttpSlice){ s, strlen(s) };
}

static Route **routes_of_router;

static const char *match(const Router *r, const char *method, const char *host, const char *path)
{
        Route *route = router_match(r, routes_of_router, S(method), S(host), S(path));
        return route ? route->config->name : NULL;
}

int main(void)
{
        char *exact_paths[] = { "/headers", NULL };
        char *prefix_paths[] = { "/api/*", NULL };
        char *long_prefix_paths[] = { "/api/v2/*", NULL };
        char *all_paths[] = { "/*", NULL };
        char *host_a[] = { "a.example", NULL };
        char *host_wild[] = { "*.example.org", NULL };
        char *post_only[] = { "POST", NULL };
        ConfigRoute configs[] = {
                { .name = "exact", .paths = exact_paths },
                { .name = "prefix", .paths = prefix_paths },
                { .name = "long-prefix", .paths = long_prefix_paths },
                { .name = "catch-all", .paths = all_paths },
                { .name = "exact-host-a", .paths = exact_paths, .hosts = host_a, .priority = 5 },
                { .name = "api-post", .paths = prefix_paths, .methods = post_only, .priority = 1 },
                { .name = "wild", .paths = long_prefix_paths, .hosts = host_wild, .priority = 2 },
        };
        Route routes[ELEMENTSOF(configs)];
        Route *list[ELEMENTSOF(configs)];
        Router *r;

        for (size_t i = 0; i < ELEMENTSOF(configs); i++) {
                routes[i] = (Route){ .config = &configs[i] };
                list[i] = &routes[i];
        }
        routes_of_router = list;
        CHECK(router_new(list, ELEMENTSOF(list), &r) == 0);

        /* Exact before prefix; the higher priority first where hosts match. */
        CHECK(streq_ptr(match(r, "GET", "x", "/headers"), "exact"));
        CHECK(streq_ptr(match(r, "GET", "a.example", "/headers"), "exact-host-a"));
        CHECK(streq_ptr(match(r, "GET", "A.EXAMPLE", "/headers"), "exact-host-a"));
        /* The longest prefix first; a prefix matches itself too. */
        CHECK(streq_ptr(match(r, "GET", "x", "/api/v2/users"), "long-prefix"));
        CHECK(streq_ptr(match(r, "GET", "x", "/api/v2/"), "long-prefix"));
        CHECK(streq_ptr(match(r, "GET", "x", "/api/v1"), "prefix"));
        CHECK(streq_ptr(match(r, "GET", "x", "/api/"), "prefix"));
        CHECK(streq_ptr(match(r, "GET", "x", "/api"), "catch-all"));
        /* Methods. */
        CHECK(streq_ptr(match(r, "POST", "x", "/api/v1"), "api-post"));
        /* One leading wildcard label: a sub-domain, not the domain itself. */
        CHECK(streq_ptr(match(r, "GET", "b.example.org", "/api/v2/x"), "wild"));
        CHECK(streq_ptr(match(r, "GET", "c.b.example.org", "/api/v2/x"), "wild"));
        CHECK(streq_ptr(match(r, "GET", "example.org", "/api/v2/x"), "long-prefix"));
        /* The exact path does not match longer paths. */
        CHECK(streq_ptr(match(r, "GET", "x", "/headersX"), "catch-all"));
        router_free(r);

        /* Without a catch-all, no match is NULL (404). */
        CHECK(router_new(list, 3, &r) == 0);
        CHECK(match(r, "GET", "x", "/nothing") == NULL);
        CHECK(match(r, "GET", "x", "/") == NULL);
        router_free(r);
        TEST_MAIN_END();
}
