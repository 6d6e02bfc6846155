/* SPDX-License-Identifier: MIT */
#pragma once

/* Finds the route of a request: exact paths before prefixes, the longest prefix first; among
 * routes on the same path, higher priority first, and the first whose hosts and methods match.
 * The cost does not grow with the number of routes: exact paths are one hash lookup, prefixes one
 * lookup per distinct prefix length. */

#include <stddef.h>
#include <stdint.h>

#include "http/http1.h"

typedef struct Route Route;
typedef struct Router Router;

/* The router keeps the routes' places in `routes`, not the routes: a model whose routes match
 * as those of the model before (the same paths, hosts, methods and priorities in the same
 * places) shares its router, even where a route was rebuilt for its upstreams. */
int router_new(Route *const *routes, size_t n_routes, Router **ret);
Router *router_ref(Router *r);
/* Drops a reference; the last one frees it. */
Router *router_free(Router *r);

/* `routes` is what the router was built over, or a list that matches alike (above). `host` is
 * the request's Host without port, lower case not required; may be empty. */
Route *router_match(const Router *r, Route *const *routes, HttpSlice method, HttpSlice host,
                    HttpSlice path);
