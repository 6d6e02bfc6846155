/* SPDX-License-Identifier: MIT */
#pragma once

/* health_check: of an upstream, for the native schema (config-schema.c) and the APISIX
 * translator (apisix.c). The defaults and the comparison are declared in config-internal.h and
 * config.h with the rest of the upstream's. */

#include "config/config-walk.h"

/* The `health_check:` block of an upstream, read into its ConfigHealthCheck. */
extern const ConfigTable config_health_check_table;

/* A list of HTTP statuses into the HealthStatusSet at base + f->offset: integers 100..599 and
 * ranges "200-208"; empty is an empty set. Replaces the set only when every item is fine. */
int config_parse_statuses(ConfigContext *ctx, const ConfigField *f, yaml_node_t *node, void *base,
                          const char *path);

/* Checks that span a part's keys once they are read: no status both healthy and unhealthy
 * (reported at the unhealthy list when it was written, else at the healthy one; `keys` are the
 * two parts' and the list's names in this document), an interval or timeout of 0. `healthy` and
 * `unhealthy` are the parts' mappings (NULL: not written). */
void config_health_check_statuses(ConfigContext *ctx, const ConfigHealthHealthy *h,
                                  const ConfigHealthUnhealthy *u, yaml_node_t *healthy,
                                  yaml_node_t *unhealthy, const char *const keys[3],
                                  const char *path);
