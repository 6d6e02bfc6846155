/* SPDX-License-Identifier: MIT */
#pragma once

/* The families of the Prometheus text format (0.0.4) that come from the model and the
 * registry: requests by route, upstream, node and status, the histograms, bytes, the nodes'
 * state, connections by listener, TLS handshakes. Computed at each scrape: every worker's stats
 * table (stats.h) is summed, and what the model names gets its labels. A key whose route, upstream
 * or node the model does not have (removed, or only in an older model still draining) is left
 * out. */

#include <stdbool.h>
#include <stdio.h>

typedef struct Model Model;
typedef struct Registry Registry;

typedef struct MetricsInput {
        const Model *model;    /* the one serving: names, weights */
        const Registry *registry;
        /* The proxy's listeners, by the index the workers count them under. */
        const char *const *listeners;
        size_t n_listeners;
        bool node_labels; /* false: per upstream, the node label left out */
} MetricsInput;

/* Writes the families to `f`. 0, or -ENOMEM. */
int metrics_write(const MetricsInput *in, FILE *f);

/* Writes `s` as a label value (backslash, quote and newline escaped). */
void metrics_write_label(FILE *f, const char *s);
/* Writes a number of µs as seconds, shortest form ("0.0005", "2.5", "60"). */
void metrics_write_seconds(FILE *f, uint64_t usec);
