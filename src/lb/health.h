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
 * success of that trial makes it healthy.
 *
 * The word also carries the admin state (written when a model with it is installed:
 * health_commit_upstream) and whether the node is ramping up (slow start), so a pick reads one
 * word per node, and finds it 0 for a healthy, ready node at full weight. */

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

/* The word's layout (registry.h: RegistryEntry.health). */
#define HEALTH_COUNTER_BITS 8
#define HEALTH_COUNTER_MASK UINT64_C(0xff)
#define HEALTH_COUNTERS_MASK UINT64_C(0xffffffff)     /* one byte per HealthEvent */
#define HEALTH_FAILURES_MASK UINT64_C(0xffffff00)     /* the three failure counters */
#define HEALTH_DOWN (UINT64_C(1) << 32)
#define HEALTH_REASON_SHIFT 33                        /* 2 bits: the event that tripped */
#define HEALTH_REASON_ACTIVE (UINT64_C(1) << 35)      /* it was an active check's */
#define HEALTH_BACKOFF_SHIFT 36                       /* 3 bits: passive trials' back-off */
#define HEALTH_BACKOFF_MASK (UINT64_C(7) << HEALTH_BACKOFF_SHIFT)
#define HEALTH_REASON_COUNT_SHIFT 40                  /* 8 bits: how many in a row */
#define HEALTH_ADMIN_SHIFT 48                         /* 2 bits: NodeAdminState */
#define HEALTH_ADMIN_MASK (UINT64_C(3) << HEALTH_ADMIN_SHIFT)
#define HEALTH_SLOW_START (UINT64_C(1) << 50)         /* ramping up: see up_since_usec */
#define HEALTH_DRAINED (UINT64_C(1) << 51)            /* drain: NodeDrained was said */
/* What a pick must look at further: all is well when none of these is set. */
#define HEALTH_PICK_MASK (HEALTH_DOWN | HEALTH_ADMIN_MASK | HEALTH_SLOW_START)

/* Back-off of passive trials: 10 s, doubling, at most 5 min. */
#define HEALTH_TRIAL_FIRST_USEC (10 * USEC_PER_SEC)
#define HEALTH_TRIAL_MAX_USEC (300 * USEC_PER_SEC)
/* Slow start ramps from this share of the weight (per mille) to all of it. */
#define HEALTH_SLOW_START_FLOOR_PERMILLE 100

/* What a status means under the healthy and unhealthy lists of `source`'s part of the
 * upstream's health_check: SUCCESS, HTTP_FAILURE, or -1 for a status in neither list (it moves
 * nothing). A request's status moves nothing either when the upstream has an active check and
 * no passive part written. */
int health_classify_status(const ConfigHealthCheck *hc, HealthSource source, unsigned status);

/* One event of node `n` of `u`. Returns the change it caused, if any; a caller that sees one
 * tells the control loop (the journal, D-Bus), with node_health_reason() as the why. Any
 * thread, no lock. */
HealthChange node_health_report(Node *n, const Upstream *u, HealthSource source, HealthEvent ev);

/* What a pick may do with a node now. */
typedef enum HealthPick {
        HEALTH_PICK_YES,
        HEALTH_PICK_NOT_NOW, /* admin state, or slow start's share: pass it over */
        HEALTH_PICK_DOWN,    /* down: pass it over, and count it towards panic */
} HealthPick;

/* The policy a pick applies: the upstream's, kept in its Balancer. */
typedef struct HealthPickPolicy {
        bool trials;              /* passive only: a down node gets a trial request now and then */
        uint64_t slow_start_usec; /* 0 = none */
} HealthPickPolicy;

/* The slow path of health_pick(), when the word is not 0. `thin`: slow start passes the node
 * over for part of the picks that fall on it (round robin, chash); least_conn and ewma scale
 * its weight instead (health_slow_start_permille). `*now` is read once per pick, when needed. */
HealthPick health_pick_slow(RegistryEntry *e, uint64_t word, const HealthPickPolicy *p,
                            bool panic, bool thin, uint64_t *now);

static inline HealthPick health_pick(RegistryEntry *e, const HealthPickPolicy *p, bool panic,
                                     bool thin, uint64_t *now)
{
        uint64_t w = atomic_load_explicit(&e->health, memory_order_relaxed);
        if (__builtin_expect((w & HEALTH_PICK_MASK) == 0, 1))
                return HEALTH_PICK_YES;
        return health_pick_slow(e, w, p, panic, thin, now);
}

/* Slow start: the node's share of its weight now, per mille (1000 when not ramping). */
unsigned health_slow_start_permille(RegistryEntry *e, const HealthPickPolicy *p, uint64_t *now);

/* A new model is about to serve: the admin states of `u`'s nodes (their `state:`) are written
 * into their words, and nodes new to a running lbproxy (`fresh`: not the first model) begin
 * their slow start. `report` hears each node whose admin state changed. Control thread. */
void health_commit_upstream(Upstream *u, bool fresh,
                            void (*report)(void *userdata, const Upstream *u, const Node *n),
                            void *userdata);

/* Whether a draining node just lost its last request in flight and nobody said so yet: true
 * once per drain (the caller emits NodeDrained). Any thread. */
bool node_health_claim_drained(RegistryEntry *e);

/* The node's state as shown (D-Bus, metrics, logs). */
typedef struct NodeHealthView {
        bool down;
        NodeAdminState admin;
        bool slow_start;     /* ramping up after it came back or was added */
        uint64_t since_usec; /* CLOCK_REALTIME of the last transition; 0 = never changed */
        char reason[64];     /* "3 timeouts in a row", "2 successes in a row", "" */
} NodeHealthView;
void node_health_view(const Node *n, NodeHealthView *ret);
/* "healthy", "down", "drain" or "maint": the admin state wins over health. */
const char *node_health_to_string(const Node *n);
/* Why the node is in its state now ("3 timeouts in a row (active)"), into buf. */
const char *node_health_reason(const Node *n, char *buf, size_t size);

/* Whether the node is down by its health (whatever its admin state). */
bool node_is_down(const Node *n);
/* Its admin state now (SetNodeState, `state:`): a maint node gets no probes. */
NodeAdminState node_admin_state(const Node *n);
