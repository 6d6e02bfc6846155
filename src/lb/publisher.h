/* SPDX-License-Identifier: MIT */
#pragma once

/* The model new requests use: published by the control loop (at start, a reload, a D-Bus
 * change) and picked up by each worker at its next request. A worker that has the current one
 * pays one atomic load; the lock is taken only when a new model came. */

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "base/util.h"

typedef struct Model Model;

typedef struct ModelPublisher {
        pthread_mutex_t lock;
        Model *model;           /* the current one (a reference); written under the lock */
        atomic_uint generation; /* counts the models published */
} ModelPublisher;

void model_publisher_init(ModelPublisher *p);
/* Drops the current model. */
void model_publisher_done(ModelPublisher *p);

/* Makes `model` (a reference, handed over) the current one, and drops the previous one's. On
 * the thread that publishes. */
void model_publisher_set(ModelPublisher *p, Model *model);

/* The current model, borrowed: on the thread that publishes, until it publishes again. */
static inline Model *model_publisher_peek(const ModelPublisher *p)
{
        return p->model;
}

/* The slow path of model_publisher_get_newer(). */
Model *model_publisher_take_newer(ModelPublisher *p, unsigned *generation);

/* Whether a model was published since `generation`. Any thread. */
static inline bool model_publisher_has_newer(ModelPublisher *p, unsigned generation)
{
        return atomic_load_explicit(&p->generation, memory_order_acquire) != generation;
}

/* When a model was published since `*generation`: a reference on the current one, with
 * *generation updated; else NULL. Any thread. */
static inline Model *model_publisher_get_newer(ModelPublisher *p, unsigned *generation)
{
        if (_likely_(!model_publisher_has_newer(p, *generation)))
                return NULL;
        return model_publisher_take_newer(p, generation);
}
