/* SPDX-License-Identifier: MIT */
#include "base/util.h"
#include "lb/balancer.h"

static const BalancerOps *const all_ops[] = {
        &balancer_swrr_ops,
};

const BalancerOps *balancer_ops_find(const char *name)
{
        for (size_t i = 0; i < ELEMENTSOF(all_ops); i++)
                if (streq(all_ops[i]->name, name))
                        return all_ops[i];
        return NULL;
}

int balancer_new(const BalancerOps *ops, const uint32_t *weights, size_t n, Balancer **ret)
{
        Balancer *b = calloc(1, sizeof(*b));
        if (!b)
                return -ENOMEM;
        b->n_ref = 1;
        b->ops = ops;
        b->n = n;
        b->weights = memdup(weights, n * sizeof(uint32_t));
        if (!b->weights)
                return free(b), -ENOMEM;
        pthread_mutex_init(&b->lock, NULL);
        int r = ops->init(b);
        if (r < 0) {
                balancer_free(b);
                return r;
        }
        *ret = b;
        return 0;
}

Balancer *balancer_ref(Balancer *b)
{
        if (b)
                b->n_ref++;
        return b;
}

Balancer *balancer_free(Balancer *b)
{
        if (!b || --b->n_ref > 0)
                return NULL;
        if (b->ops->done)
                b->ops->done(b);
        pthread_mutex_destroy(&b->lock);
        free(b->weights);
        free(b);
        return NULL;
}

ssize_t balancer_pick(Balancer *b, const uint64_t *skip)
{
        /* A single item needs no schedule and no lock. */
        if (b->n == 1)
                return b->weights[0] > 0 && !bitmap_test(skip, 0) ? 0 : -ENOENT;

        pthread_mutex_lock(&b->lock);
        ssize_t i = b->ops->pick(b, skip);
        pthread_mutex_unlock(&b->lock);
        return i;
}

void balancer_set_weight(Balancer *b, size_t i, uint32_t weight)
{
        pthread_mutex_lock(&b->lock);
        b->weights[i] = weight;
        if (b->ops->set_weight)
                b->ops->set_weight(b, i, weight);
        pthread_mutex_unlock(&b->lock);
}

bool balancer_same(const Balancer *b, const BalancerOps *ops, const uint32_t *weights, size_t n)
{
        /* The weights are the configuration's: a D-Bus weight change builds a new model rather
         * than calling balancer_set_weight(), so no lock is needed to read them. */
        return b->ops == ops && b->n == n && memcmp(b->weights, weights, n * sizeof(uint32_t)) == 0;
}
