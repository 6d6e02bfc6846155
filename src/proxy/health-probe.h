/* SPDX-License-Identifier: MIT */
#pragma once

/* Active health checks: one thread with an event loop of its own, which carries no client
 * traffic, probes every address of every node of the upstreams with `health_check.active`
 * (once per address, not per worker) and reports what it finds through lb/health.h.
 *
 * It takes each model from the publisher when told one was swapped in. A probe target is keyed
 * by upstream name, node and address, so one that is still there after a swap keeps its
 * schedule and its counters. Each target is probed every healthy.interval while its node (or,
 * for a node with several addresses, the address) is up, unhealthy.interval while down; the
 * first probe of a target comes at a random point of its first interval, so that a thousand
 * nodes do not go at once. A probe is due an interval after the last was due, and starts on a
 * grid of a tenth of its interval (10 to 100 ms), which the probes due in a stretch of it
 * share, with one wake-up of the thread (health-probe-wheel.h). An http/https target keeps its
 * connection between probes (health-probe-conn.h). At most `concurrency` probes of an
 * upstream, and PROBER_MAX_IN_FLIGHT in all, run at once; the others wait their turn, in
 * order. */

#include <stdbool.h>
#include <stddef.h>

#include "lb/publisher.h"

typedef struct Model Model;
typedef struct Upstream Upstream;
typedef struct Node Node;
typedef struct HealthProber HealthProber;

#define PROBER_MAX_IN_FLIGHT 256

typedef struct HealthProberOptions {
        ModelPublisher *models; /* outlives the prober */
        /* A node's health changed by a probe: went down (`why` says what the probe found) or
         * came back (`why` NULL). On the prober's thread. May be NULL. */
        void (*node_health_changed)(void *userdata, const Upstream *u, const Node *n,
                                    const char *why);
        void *userdata;
        long log_queue; /* the log queue its thread takes (log_attach), or -1 */
} HealthProberOptions;

/* Whether any upstream of `m` has active checks. */
bool health_prober_wanted(const Model *m);

/* Starts the thread; it takes the publisher's current model at once. */
int health_prober_start(const HealthProberOptions *o, HealthProber **ret);
/* A model was published: the prober takes it up. Control thread. */
void health_prober_model_changed(HealthProber *p);
/* Ends the thread, closes its probes and drops its model (the control thread's to call). */
HealthProber *health_prober_stop(HealthProber *p);
