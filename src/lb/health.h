/* SPDX-License-Identifier: MIT */
#pragma once

/* A node's health: what active probes and passive observation of requests say of it, and its
 * administrative state (ready, drain, maint), as the balancers read them.
 *
 * As in lua-resty-healthcheck (APISIX), a node has one set of counters, fed by both sources:
 * events in a row per kind (successes, HTTP failures, TCP failures, timeouts). A success resets
 * the failure counters, a failure the success counter; a counter reaching its threshold (the
 * active or passive one, by where the event came from) turns the node down or up. The counters
 * and the state are one atomic word in the node's registry entry, changed by compare-and-swap,
 * so the event that crosses a threshold is the one that reports the transition, whichever
 * thread it ran on, and a success on a healthy node writes nothing.
 *
 * Down with no active check (passive-only, which APISIX refuses): nothing would ever bring the
 * node back, so one request is let through after a back-off (10 s, doubling to 5 min) and a
 * success of that trial makes it healthy. */

#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "lb/registry.h"

typedef struct Node Node;
typedef struct Upstream Upstream;

typedef enum HealthEvent {
        HEALTH_EVENT_SUCCESS,      /* a status in the healthy list; a tcp probe connected */
        HEALTH_EVENT_HTTP_FAILURE, /* a status in the unhealthy list */
        HEALTH_EVENT_TCP_FAILURE,  /* refused, reset, TLS failed, closed without an answer */
        HEALTH_EVENT_TIMEOUT,      /* connect or response timed out */
        _HEALTH_EVENT_MAX,
} HealthEvent;

typedef enum HealthSource {
        HEALTH_SOURCE_ACTIVE,
        HEALTH_SOURCE_PASSIVE,
} HealthSource;

typedef enum HealthChange {
        HEALTH_UNCHANGED,
        HEALTH_WENT_DOWN,
        HEALTH_CAME_UP,
} HealthChange;

/* What a status means under the healthy and unhealthy lists of `source`'s part of the
 * upstream's health_check: SUCCESS, HTTP_FAILURE, or -1 for a status in neither list (it moves
 * nothing). */
int health_classify_status(const ConfigHealthCheck *hc, HealthSource source, unsigned status);

/* One event of node `n` of `u`. Returns the change it caused, if any; a caller that sees one
 * tells the control loop (the journal, D-Bus). Any thread, no lock. */
HealthChange node_health_report(Node *n, const Upstream *u, HealthSource source, HealthEvent ev);

/* The node's state as shown (D-Bus, metrics, logs). */
typedef struct NodeHealthView {
        bool down;
        NodeAdminState admin;
        bool slow_start;      /* ramping up after it came back or was added */
        uint64_t since_usec;  /* CLOCK_REALTIME of the last transition; 0 = never changed */
        char reason[64];      /* "3 timeouts in a row", "2 successes in a row", "" */
} NodeHealthView;
void node_health_view(const Node *n, NodeHealthView *ret);
/* "healthy", "down", "drain", "maint" (the admin state wins over health). */
const char *node_health_to_string(const Node *n);

/* Whether the node is down by its health (whatever its admin state). */
bool node_is_down(const Node *n);
/* Its admin state now (SetNodeState, `state:`): a maint node gets no probes. */
NodeAdminState node_admin_state(const Node *n);
