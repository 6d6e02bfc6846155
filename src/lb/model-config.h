/* SPDX-License-Identifier: MIT */
#pragma once

/* The configuration objects a model's upstreams and routes are built from: their own copies, so
 * that an Upstream or a Route outlives the Config it came from and the next model reuses it
 * whole, and their comparison by value, which says whether it may. Marks (file:line:column) are
 * not copied: they serve the loader's messages, not the model. */

#include <stdbool.h>

#include "config/config.h"

int upstream_config_copy(const ConfigUpstream *from, ConfigUpstream **ret);
ConfigUpstream *upstream_config_free(ConfigUpstream *c);
/* Every field but the marks. */
bool upstream_config_equal(const ConfigUpstream *a, const ConfigUpstream *b);

int route_config_copy(const ConfigRoute *from, ConfigRoute **ret);
ConfigRoute *route_config_free(ConfigRoute *c);
/* Every field but the marks. */
bool route_config_equal(const ConfigRoute *a, const ConfigRoute *b);
/* What the router reads: paths, hosts, methods, priority. */
bool route_config_match_equal(const ConfigRoute *a, const ConfigRoute *b);

/* What an https listener's TlsServer is built from: name, certificates, ticket rotation. */
bool listener_tls_config_equal(const ConfigListener *a, const ConfigListener *b);
