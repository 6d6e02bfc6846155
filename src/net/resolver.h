/* SPDX-License-Identifier: MIT */
#pragma once

/* Names of upstream nodes, resolved with c-ares on the control loop and kept fresh: every name
 * is one ResolvedName shared by all nodes that use it (and kept across model swaps, so a reload
 * does not forget answers). Re-resolved when the TTL (clamped to dns.ttl_min..ttl_max) runs out;
 * a failed refresh keeps the last good addresses and retries with backoff.
 *
 * A request that needs a name not answered yet waits for the first answer (bounded by
 * dns.timeout) instead of failing. */

#include <event2/event.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct Resolver Resolver;
typedef struct ResolvedName ResolvedName;
typedef struct ResolveWaiter ResolveWaiter;
typedef struct ResolveMailbox ResolveMailbox;

/* The addresses of a name, without ports. Immutable; replaced whole on a change. */
typedef struct AddressList {
        atomic_uint n_ref;
        size_t n;
        struct sockaddr_storage addrs[];
} AddressList;

AddressList *address_list_ref(AddressList *l);
AddressList *address_list_unref(AddressList *l);

/* Someone waiting for a first answer, on another thread's loop than the resolver's: the answer
 * activates `wake` (with EV_READ) on that loop, with `error` set: 0, or -ENXIO / -EHOSTUNREACH /
 * -ECANCELED. Embedded in the waiter's own object; only its own thread frees it. */
struct ResolveWaiter {
        struct event *wake;
        int error;
        ResolveWaiter *prev, *next; /* in its name's list, then in its mailbox's */
        ResolvedName *name;         /* while in the name's list; guarded by the name's lock */
        ResolveMailbox *mailbox;    /* while waiting; the waiter's thread alone reads it */
        bool answered;              /* in the mailbox's list; guarded by the mailbox's lock */
};

/* Where the answers for one loop's waiters go. libevent runs without locks, so the resolver's
 * thread never activates an event of another loop: it moves answered waiters here and calls
 * `notify` (which wakes that loop, e.g. through an eventfd); the loop then runs
 * resolve_mailbox_deliver(), which activates each waiter's `wake` on its own thread. */
struct ResolveMailbox {
        pthread_mutex_t lock;
        ResolveWaiter *answered;
        void (*notify)(void *userdata); /* any thread */
        void *userdata;
};

void resolve_mailbox_init(ResolveMailbox *b, void (*notify)(void *userdata), void *userdata);
/* Once no waiter of its loop is left. */
void resolve_mailbox_done(ResolveMailbox *b);
/* On the mailbox's loop: activates the `wake` of every waiter answered since the last time. */
void resolve_mailbox_deliver(ResolveMailbox *b);

/* How names are resolved (the configuration's dns: block, as the layer above reads it). */
typedef struct ResolverOptions {
        char *const *servers;  /* "127.0.0.1:5353", NULL-terminated; NULL = /etc/resolv.conf */
        uint64_t ttl_min_usec; /* answers are kept at least this long... */
        uint64_t ttl_max_usec; /* ...and at most this long (0: an hour) */
} ResolverOptions;

int resolver_new(struct event_base *base, const ResolverOptions *o, Resolver **ret);
Resolver *resolver_free(Resolver *r);

/* What the answers to its queries were, counted for the metrics. */
typedef enum ResolverOutcome {
        RESOLVER_ADDRESSES,    /* addresses */
        RESOLVER_NO_ADDRESSES, /* the name does not exist, or has no address */
        RESOLVER_FAILED,       /* no answer: timeout, refused, server failure */
        _RESOLVER_OUTCOME_MAX,
} ResolverOutcome;
const char *resolver_outcome_to_string(ResolverOutcome o);
/* Answers since the start. Any thread. */
uint64_t resolver_answers(const Resolver *r, ResolverOutcome o);

/* Takes a reference on the entry for `host`, creating it (and starting its first query). */
int resolver_get(Resolver *r, const char *host, ResolvedName **ret);
ResolvedName *resolved_name_unref(ResolvedName *n);

/* The current addresses (a new reference), or NULL with:
 *   -EAGAIN  no answer yet: queue a waiter with resolved_name_wait()
 *   -ENXIO   the name does not exist (NXDOMAIN / no addresses)
 *   -EHOSTUNREACH  resolving failed and there is nothing to fall back on */
AddressList *resolved_name_addresses(ResolvedName *n, int *ret_error);
const char *resolved_name_host(const ResolvedName *n);
/* Why the last resolution failed, in words ("NXDOMAIN", "timeout"), or NULL. */
const char *resolved_name_error(const ResolvedName *n);

/* Queues `w`, whose answer goes through `mailbox` (its loop's), or activates its `wake` at once
 * when an answer came meanwhile. On the waiter's loop. */
void resolved_name_wait(ResolvedName *n, ResolveWaiter *w, ResolveMailbox *mailbox);
/* Ends the wait of `w` wherever it is (the name's list, the mailbox): afterwards nobody
 * activates its `wake`. On the waiter's loop; safe against a concurrent answer. */
void resolved_name_cancel_wait(ResolveWaiter *w);

/* The delay before the next refresh: the TTL clamped to [min, max] after a success; after
 * `failures` consecutive failures, 1 s doubling up to `max` (pure: for tests). */
uint64_t resolver_refresh_delay_usec(uint64_t ttl_usec, unsigned failures, uint64_t min_usec,
                                     uint64_t max_usec);
