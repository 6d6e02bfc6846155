/* SPDX-License-Identifier: MIT */
/* TEMPORARY, until lb/health.c lands on main: the API of lb/health.h over the old passive
 * failure count (one failure turns a node down, one success up), so that the prober links and
 * runs. Delete this file (and its line in meson.build) when merging health.c: both define the
 * same symbols, and the link says so. */
#include "lb/health.h"
#include "lb/model.h"

int health_classify_status(const ConfigHealthCheck *hc, HealthSource source, unsigned status)
{
        const ConfigHealthHealthy *h = source == HEALTH_SOURCE_ACTIVE ? &hc->active.healthy
                                                                      : &hc->passive.healthy;
        const ConfigHealthUnhealthy *u = source == HEALTH_SOURCE_ACTIVE ? &hc->active.unhealthy
                                                                        : &hc->passive.unhealthy;
        if (health_status_set_has(&h->http_statuses, status))
                return HEALTH_EVENT_SUCCESS;
        if (health_status_set_has(&u->http_statuses, status))
                return HEALTH_EVENT_HTTP_FAILURE;
        return -1;
}

HealthChange node_health_report(Node *n, const Upstream *u, HealthSource source, HealthEvent ev)
{
        if (ev == HEALTH_EVENT_SUCCESS)
                return node_report_success(n) ? HEALTH_CAME_UP : HEALTH_UNCHANGED;
        return node_report_failure(n) ? HEALTH_WENT_DOWN : HEALTH_UNCHANGED;
}

bool node_is_down(const Node *n)
{
        return !node_is_healthy(n);
}

NodeAdminState node_admin_state(const Node *n)
{
        return NODE_ADMIN_READY;
}
