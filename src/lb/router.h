/* SPDX-License-Identifier: MIT */
#pragma once

/* Finds the route of a request: exact paths before prefixes, the longest prefix first; among
 * routes on the same path, higher priority first, and the first whose hosts and methods match.
 * The cost does not grow with the number of routes: exact paths are one hash lookup, prefixes one
 * lookup per distinct prefix length. */

#include <stddef.h>

#include "http/http1.h"

typedef struct Route Route;
typedef struct Router Router;

/* `routes` must outlive the router. */
int router_new(Route **routes, size_t n_routes, Router **ret);
Router *router_free(Router *r);

/* `host` is the request's Host without port, lower case not required; may be empty. */
Route *router_match(const Router *r, HttpSlice method, HttpSlice host, HttpSlice path);
