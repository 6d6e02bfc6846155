/* SPDX-License-Identifier: MIT */
#pragma once

/* The Prometheus endpoint: `protocol: metrics` listeners, served on a thread of their own, so
 * that building a scrape (every worker's counters summed, the model's names) stalls neither a
 * worker nor the control loop (D-Bus, changes). It answers GET (and HEAD) /metrics in the text format
 * 0.0.4, computed at each scrape; anything else gets 404. */

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "lb/publisher.h"
#include "lb/registry.h"
#include "net/listener.h"
#include "net/resolver.h"

/* What the control loop counts and the scrape reads. */
typedef struct MetricsControl {
        atomic_uint_fast64_t reloads_ok, reloads_failed;
        atomic_uint_fast64_t changes_ok, changes_failed; /* D-Bus changes */
} MetricsControl;

typedef struct MetricsServerOptions {
        ModelPublisher *models;
        Registry *registry;
        const Resolver *resolver;        /* may be NULL */
        const MetricsControl *control;
        const char *const *listeners;    /* the proxy's, as the workers index them */
        size_t n_listeners;
        bool node_labels;
} MetricsServerOptions;

typedef struct MetricsServer MetricsServer;

/* Starts the thread serving `sockets` (listening, taken over by nothing else). The options'
 * pointers outlive the server. */
int metrics_server_start(const MetricsServerOptions *o, const Listener *sockets, size_t n,
                         MetricsServer **ret);
/* Stops the thread and closes its connections (not the listening sockets). */
MetricsServer *metrics_server_stop(MetricsServer *s);
