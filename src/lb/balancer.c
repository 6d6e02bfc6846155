/* SPDX-License-Identifier: MIT */
#include <assert.h>

#include "base/util.h"
#include "lb/balancer.h"

static const BalancerOps *const all_ops[] = {
        &balancer_swrr_ops,
        &balancer_least_conn_ops,
        &balancer_chash_ops,
        &balancer_ewma_ops,
};

const BalancerOps *balancer_ops_find(const char *name)
{
        for (size_t i = 0; i < ELEMENTSOF(all_ops); i++)
                if (streq(all_ops[i]->name, name))
                        return all_ops[i];
        return NULL;
}

static bool wants_names(const BalancerOps *ops)
{
        return ops == &balancer_chash_ops;
}

int balancer_new(const BalancerSpec *spec, Balancer **ret)
{
        const BalancerOps *ops = spec->ops;
        size_t n = spec->n;

        assert(!ops->needs_entries || spec->entries);
        assert(!wants_names(ops) || spec->names);
        Balancer *b = aligned_alloc(REGISTRY_CACHE_LINE,
                                    (sizeof(Balancer) + REGISTRY_CACHE_LINE - 1) &
                                            ~(size_t)(REGISTRY_CACHE_LINE - 1));
        if (!b)
                return -ENOMEM;
        memset(b, 0, sizeof(*b));
        b->n_ref = 1;
        b->ops = ops;
        b->n = n;
        b->hash_balance_factor = spec->hash_balance_factor;
        b->total = spec->total;
        assert(!ops->needs_entries || b->total);
        atomic_init(&b->ticket, 0);
        b->weights = memdup(spec->weights, (n ? n : 1) * sizeof(uint32_t));
        if (!b->weights)
                return balancer_free(b), -ENOMEM;
        for (size_t i = 0; i < n; i++)
                b->total_weight += b->weights[i];
        b->health = spec->health;
        if (spec->entries) {
                b->entries = memdup(spec->entries, (n ? n : 1) * sizeof(RegistryEntry *));
                if (!b->entries)
                        return balancer_free(b), -ENOMEM;
        }
        if (wants_names(ops)) {
                b->names = calloc(n + 1, sizeof(char *));
                if (!b->names)
                        return balancer_free(b), -ENOMEM;
                for (size_t i = 0; i < n; i++) {
                        b->names[i] = strdup(spec->names[i]);
                        if (!b->names[i])
                                return balancer_free(b), -ENOMEM;
                }
        }
        int r = ops->init ? ops->init(b) : 0;
        if (r < 0)
                return balancer_free(b), r;
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
        if (b->state && b->ops->done)
                b->ops->done(b);
        for (size_t i = 0; b->names && i < b->n; i++)
                free(b->names[i]);
        free(b->names);
        free(b->entries);
        free(b->weights);
        free(b);
        return NULL;
}

ssize_t balancer_pick(Balancer *b, const BalancerRequest *req)
{
        /* A single item needs no algorithm. */
        if (b->n == 1) {
                uint64_t now = 0;
                bool down = false;
                if (b->weights[0] == 0 || bitmap_test(req->skip, 0))
                        return -ENOENT;
                return balancer_item_health(b, 0, req, false, &now, &down) ? 0
                                                                           : balancer_none(down);
        }
        return b->ops->pick(b, req);
}

bool balancer_same(const Balancer *b, const BalancerSpec *spec)
{
        /* The weights are the configuration's: a D-Bus weight change builds a new model. */
        if (b->ops != spec->ops || b->n != spec->n ||
            b->hash_balance_factor != spec->hash_balance_factor ||
            b->health.trials != spec->health.trials ||
            b->health.slow_start_usec != spec->health.slow_start_usec ||
            !b->entries != !spec->entries ||
            memcmp(b->weights, spec->weights, b->n * sizeof(uint32_t)) != 0)
                return false;
        /* The entries are found by the names of the nodes, which the caller compared. */
        for (size_t i = 0; b->names && i < b->n; i++)
                if (!streq(b->names[i], spec->names[i]))
                        return false;
        return true;
}
