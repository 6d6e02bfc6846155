/* SPDX-License-Identifier: MIT */
#include <assert.h>

#include "lb/model.h"
#include "lb/publisher.h"

void model_publisher_init(ModelPublisher *p)
{
        *p = (ModelPublisher){};
        pthread_mutex_init(&p->lock, NULL);
        atomic_init(&p->generation, 0);
}

void model_publisher_done(ModelPublisher *p)
{
        p->model = model_unref(p->model);
        pthread_mutex_destroy(&p->lock);
}

void model_publisher_set(ModelPublisher *p, Model *model)
{
        assert(model);
        pthread_mutex_lock(&p->lock);
        Model *old = p->model;
        p->model = model;
        atomic_fetch_add_explicit(&p->generation, 1, memory_order_release);
        pthread_mutex_unlock(&p->lock);
        model_unref(old);
}

Model *model_publisher_take_newer(ModelPublisher *p, unsigned *generation)
{
        pthread_mutex_lock(&p->lock);
        Model *model = model_ref(p->model);
        *generation = atomic_load_explicit(&p->generation, memory_order_relaxed);
        pthread_mutex_unlock(&p->lock);
        return model;
}
