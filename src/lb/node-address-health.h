/* SPDX-License-Identifier: MIT */
#pragma once

/* Which addresses of a node named by DNS the active checks found down, so that picking skips
 * them while the node stays up on the others. The prober (one thread) writes, every worker
 * reads at each pick: a fixed set of address hashes, one cache line of atomics in the node's
 * registry entry, no lock. A count says at one load that nothing is down (the common case).
 *
 * What the prober counts per address to decide it (the node's own counters are the registry's,
 * lb/health.h) is here too: the same thresholds, events in a row per kind. */

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config/config.h"

/* More addresses than this down at once are not marked (the node's own health still counts
 * them): a name with that many dead addresses is a DNS problem rather than one of a node. */
#define NODE_ADDRESS_DOWN_MAX 7

typedef struct NodeAddressHealth {
        atomic_uint n_down;
        atomic_uint_fast64_t down[NODE_ADDRESS_DOWN_MAX]; /* hashes; 0 = a free place */
} NodeAddressHealth;

/* The hash of an address without its port (the node's, or a probe's other port, say the
 * same), never 0. */
uint64_t node_address_hash(const struct sockaddr_storage *ip);

/* Marks the address down (again: nothing), or -ENOSPC when every place is taken. One writer. */
int node_address_mark_down(NodeAddressHealth *h, uint64_t hash);
/* Marks it up; true when it was down. */
bool node_address_mark_up(NodeAddressHealth *h, uint64_t hash);
void node_address_health_clear(NodeAddressHealth *h);

static inline bool node_address_any_down(const NodeAddressHealth *h)
{
        return atomic_load_explicit(&h->n_down, memory_order_relaxed) != 0;
}
/* Any thread. */
bool node_address_is_down(const NodeAddressHealth *h, uint64_t hash);

/* One address's counters under the active thresholds. */
typedef struct AddressCounters {
        uint8_t successes, http_failures, tcp_failures, timeouts;
        bool down;
} AddressCounters;

typedef enum AddressEvent {
        ADDRESS_SUCCESS,
        ADDRESS_HTTP_FAILURE,
        ADDRESS_TCP_FAILURE,
        ADDRESS_TIMEOUT,
} AddressEvent;

/* Counts `ev`; returns -1 when the address went down, 1 when it came up, 0 otherwise. */
int address_counters_report(AddressCounters *c, const ConfigHealthActive *a, AddressEvent ev);
