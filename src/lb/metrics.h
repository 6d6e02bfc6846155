/* SPDX-License-Identifier: MIT */
#pragma once

/* The families of the Prometheus text format (0.0.4) that come from the model and the
 * registry: requests by route, upstream, node and status, the histograms, bytes, the nodes'
 * state, connections by listener, TLS handshakes. Computed at each scrape: every worker's stats
 * table (stats.h) is summed, and what the model names gets its labels. A key whose route, upstream
 * or node the model does not have (removed, or only in an older model still draining) is left
 * out. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/util.h"

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

/* The text of a scrape: a buffer that grows (a scrape of 1,000 nodes is megabytes; stdio's
 * streams cost a third of the time). After a failed allocation it takes nothing more. */
typedef struct MetricsText {
        char *buf; /* NUL-terminated */
        size_t len, cap;
        bool failed;
} MetricsText;

/* Room for n more bytes and a NUL; false (and `failed`) when there is none. */
bool metrics_text_grow(MetricsText *t, size_t n);

static inline void metrics_text_add(MetricsText *t, const char *s, size_t n)
{
        if (_unlikely_(t->cap - t->len <= n) && !metrics_text_grow(t, n))
                return;
        memcpy(t->buf + t->len, s, n);
        t->len += n;
        t->buf[t->len] = '\0';
}

static inline void metrics_text_puts(MetricsText *t, const char *s)
{
        metrics_text_add(t, s, strlen(s));
}
/* A line of names and numbers: at most 4 KiB. */
void metrics_text_printf(MetricsText *t, const char *fmt, ...) _printf_(2, 3);
void metrics_text_u64(MetricsText *t, uint64_t v);
void metrics_text_done(MetricsText *t);

/* Appends the families to `t`. 0, or -ENOMEM. */
int metrics_write(const MetricsInput *in, MetricsText *t);

/* A number of µs as seconds, shortest form ("0.0005", "2.5", "60"). */
void metrics_write_seconds(MetricsText *t, uint64_t usec);
