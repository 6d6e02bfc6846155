/* SPDX-License-Identifier: MIT */
#pragma once

/* Whether the configuration of an upstream, a route or a listener is the same, by value: a
 * reload reads the files again into new objects, and what compares equal lets the next model
 * reuse the old one's Upstream, Route or TlsServer whole. Marks (file:line:column) are not
 * compared: they serve the loader's messages, not the model. */

#include <stdbool.h>

#include "config/config.h"

/* Every field but the marks. */
bool upstream_config_equal(const ConfigUpstream *a, const ConfigUpstream *b);

/* Every field but the marks. */
bool route_config_equal(const ConfigRoute *a, const ConfigRoute *b);
/* What the router reads: paths, hosts, methods, priority. */
bool route_config_match_equal(const ConfigRoute *a, const ConfigRoute *b);

/* What an https listener's TlsServer is built from: name, certificates, ticket rotation. */
bool listener_tls_config_equal(const ConfigListener *a, const ConfigListener *b);
