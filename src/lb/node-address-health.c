/* SPDX-License-Identifier: MIT */
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "base/hashmap.h"
#include "lb/node-address-health.h"

uint64_t node_address_hash(const struct sockaddr_storage *ip)
{
        char key[1 + sizeof(struct in6_addr)];
        size_t n;
        if (ip->ss_family == AF_INET6) {
                key[0] = 6;
                memcpy(key + 1, &((const struct sockaddr_in6 *)ip)->sin6_addr, 16);
                n = 17;
        } else {
                key[0] = 4;
                memcpy(key + 1, &((const struct sockaddr_in *)ip)->sin_addr, 4);
                n = 5;
        }
        uint64_t h = hashmap_hash(key, n);
        return h ? h : 1;
}

int node_address_mark_down(NodeAddressHealth *h, uint64_t hash)
{
        if (node_address_is_down(h, hash))
                return 0;
        for (size_t i = 0; i < NODE_ADDRESS_DOWN_MAX; i++) {
                uint_fast64_t free_place = 0;
                if (atomic_compare_exchange_strong_explicit(&h->down[i], &free_place, hash,
                                                            memory_order_relaxed,
                                                            memory_order_relaxed)) {
                        atomic_fetch_add_explicit(&h->n_down, 1, memory_order_relaxed);
                        return 0;
                }
        }
        return -ENOSPC;
}

bool node_address_mark_up(NodeAddressHealth *h, uint64_t hash)
{
        for (size_t i = 0; i < NODE_ADDRESS_DOWN_MAX; i++) {
                uint_fast64_t expected = hash;
                if (atomic_compare_exchange_strong_explicit(&h->down[i], &expected, 0,
                                                            memory_order_relaxed,
                                                            memory_order_relaxed)) {
                        atomic_fetch_sub_explicit(&h->n_down, 1, memory_order_relaxed);
                        return true;
                }
        }
        return false;
}

void node_address_health_clear(NodeAddressHealth *h)
{
        for (size_t i = 0; i < NODE_ADDRESS_DOWN_MAX; i++) {
                uint_fast64_t v = atomic_load_explicit(&h->down[i], memory_order_relaxed);
                if (v)
                        (void)node_address_mark_up(h, v);
        }
}

bool node_address_is_down(const NodeAddressHealth *h, uint64_t hash)
{
        if (!node_address_any_down(h))
                return false;
        for (size_t i = 0; i < NODE_ADDRESS_DOWN_MAX; i++)
                if (atomic_load_explicit(&h->down[i], memory_order_relaxed) == hash)
                        return true;
        return false;
}

static void bump(uint8_t *c)
{
        if (*c < UINT8_MAX)
                (*c)++;
}

/* A threshold of 0 never changes the state. */
static bool reached(uint8_t count, unsigned threshold)
{
        return threshold > 0 && count >= threshold;
}

int address_counters_report(AddressCounters *c, const ConfigHealthActive *a, AddressEvent ev)
{
        const ConfigHealthUnhealthy *u = &a->unhealthy;
        if (ev == ADDRESS_SUCCESS) {
                c->http_failures = c->tcp_failures = c->timeouts = 0;
                bump(&c->successes);
                if (c->down && reached(c->successes, a->healthy.successes)) {
                        c->down = false;
                        return 1;
                }
                return 0;
        }
        c->successes = 0;
        bool down;
        switch (ev) {
        case ADDRESS_HTTP_FAILURE:
                bump(&c->http_failures);
                down = reached(c->http_failures, u->http_failures);
                break;
        case ADDRESS_TCP_FAILURE:
                bump(&c->tcp_failures);
                down = reached(c->tcp_failures, u->tcp_failures);
                break;
        case ADDRESS_TIMEOUT:
                bump(&c->timeouts);
                down = reached(c->timeouts, u->timeouts);
                break;
        default:
                assert(!"an address event of no kind");
                return 0;
        }
        if (!c->down && down) {
                c->down = true;
                return -1;
        }
        return 0;
}
