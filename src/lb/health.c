/* SPDX-License-Identifier: MIT */
/* A node's health word (health.h): events counted in a row, transitions by compare-and-swap,
 * and what a pick may do with the node. */
#include <assert.h>
#include <stdio.h>

#include "base/util.h"
#include "lb/health.h"
#include "lb/model.h"

static inline unsigned counter(uint64_t w, HealthEvent ev)
{
        return (unsigned)((w >> (ev * HEALTH_COUNTER_BITS)) & HEALTH_COUNTER_MASK);
}

static inline uint64_t with_counter(uint64_t w, HealthEvent ev, unsigned v)
{
        unsigned shift = ev * HEALTH_COUNTER_BITS;
        return (w & ~(HEALTH_COUNTER_MASK << shift)) | ((uint64_t)v << shift);
}

static inline NodeAdminState word_admin(uint64_t w)
{
        return (NodeAdminState)((w & HEALTH_ADMIN_MASK) >> HEALTH_ADMIN_SHIFT);
}

static inline unsigned word_backoff(uint64_t w)
{
        return (unsigned)((w & HEALTH_BACKOFF_MASK) >> HEALTH_BACKOFF_SHIFT);
}

/* The back-off after `k` failed trials: 10 s, 20 s, ... at most 5 min. */
static uint64_t backoff_usec(unsigned k)
{
        uint64_t d = HEALTH_TRIAL_FIRST_USEC << k;
        return d < HEALTH_TRIAL_MAX_USEC ? d : HEALTH_TRIAL_MAX_USEC;
}

/* The word after a transition: counters cleared, why it happened kept for showing. */
static uint64_t transition(uint64_t w, bool down, HealthEvent ev, HealthSource source,
                           unsigned count)
{
        uint64_t keep = w & (HEALTH_ADMIN_MASK | HEALTH_DRAINED);
        return keep | (down ? HEALTH_DOWN : 0) | ((uint64_t)ev << HEALTH_REASON_SHIFT) |
               (source == HEALTH_SOURCE_ACTIVE ? HEALTH_REASON_ACTIVE : 0) |
               ((uint64_t)count << HEALTH_REASON_COUNT_SHIFT);
}

int health_classify_status(const ConfigHealthCheck *hc, HealthSource source, unsigned status)
{
        bool active = source == HEALTH_SOURCE_ACTIVE;
        /* With probes and no passive: written, the probes alone judge statuses (APISIX counts
         * requests only with checks.passive). The built-in check's "any answer is a success"
         * would reset the probes' HTTP failures at every request: a node answering 500s
         * under traffic would never go down. */
        if (!active && hc->active.enabled && !hc->passive.enabled)
                return -1;
        const HealthStatusSet *bad = active ? &hc->active.unhealthy.http_statuses
                                            : &hc->passive.unhealthy.http_statuses;
        const HealthStatusSet *good = active ? &hc->active.healthy.http_statuses
                                             : &hc->passive.healthy.http_statuses;
        if (health_status_set_has(bad, status))
                return HEALTH_EVENT_HTTP_FAILURE;
        if (health_status_set_has(good, status))
                return HEALTH_EVENT_SUCCESS;
        return -1;
}

static unsigned threshold(const ConfigHealthCheck *hc, HealthSource source, HealthEvent ev)
{
        bool active = source == HEALTH_SOURCE_ACTIVE;
        const ConfigHealthUnhealthy *u = active ? &hc->active.unhealthy : &hc->passive.unhealthy;
        switch (ev) {
        case HEALTH_EVENT_SUCCESS:
                return active ? hc->active.healthy.successes : hc->passive.healthy.successes;
        case HEALTH_EVENT_HTTP_FAILURE:
                return u->http_failures;
        case HEALTH_EVENT_TCP_FAILURE:
                return u->tcp_failures;
        case HEALTH_EVENT_TIMEOUT:
                return u->timeouts;
        case _HEALTH_EVENT_MAX:
                break;
        }
        assert(!"an event of no kind");
        return 0;
}

static inline unsigned saturated_inc(unsigned c)
{
        return c < HEALTH_COUNTER_MASK ? c + 1 : c;
}

HealthChange node_health_report(Node *n, const Upstream *u, HealthSource source, HealthEvent ev)
{
        RegistryEntry *e = n->state;
        const ConfigHealthCheck *hc = &u->config->health_check;
        /* With no active check, a down node comes back by its trial requests alone. */
        bool trials = !hc->active.enabled;
        uint64_t old = atomic_load_explicit(&e->health, memory_order_relaxed), new;
        HealthChange change;

        assert(ev < _HEALTH_EVENT_MAX);
        do {
                bool down = old & HEALTH_DOWN;
                change = HEALTH_UNCHANGED;
                if (ev == HEALTH_EVENT_SUCCESS) {
                        /* Successes count only towards coming back: a healthy node with no
                         * failure in a row has nothing to write (the common case). */
                        if (!down && (old & HEALTH_FAILURES_MASK) == 0)
                                return HEALTH_UNCHANGED;
                        new = old & ~HEALTH_FAILURES_MASK;
                        if (down) {
                                unsigned c = saturated_inc(counter(old, ev));
                                unsigned t = threshold(hc, source, ev);
                                new = with_counter(new, ev, c);
                                if ((t > 0 && c >= t) || (source == HEALTH_SOURCE_PASSIVE && trials)) {
                                        new = transition(new, false, ev, source, c);
                                        change = HEALTH_CAME_UP;
                                }
                        }
                } else {
                        unsigned c = saturated_inc(counter(old, ev));
                        new = with_counter(with_counter(old, HEALTH_EVENT_SUCCESS, 0), ev, c);
                        unsigned t = threshold(hc, source, ev);
                        if (!down && t > 0 && c >= t) {
                                new = transition(new, true, ev, source, c);
                                change = HEALTH_WENT_DOWN;
                        } else if (down && trials && source == HEALTH_SOURCE_PASSIVE) {
                                /* A trial (or a request in panic) failed: wait longer. */
                                unsigned k = word_backoff(old);
                                if (backoff_usec(k) < HEALTH_TRIAL_MAX_USEC)
                                        k++;
                                new = (new & ~HEALTH_BACKOFF_MASK) |
                                      ((uint64_t)k << HEALTH_BACKOFF_SHIFT);
                        }
                        if (new == old)
                                return HEALTH_UNCHANGED; /* counters saturated */
                }
                /* Written before the word that makes them matter: a pick that sees the new
                 * word finds them set (a lost exchange leaves them unread). */
                uint64_t mono = now_usec(CLOCK_MONOTONIC);
                if (change == HEALTH_WENT_DOWN || (new & HEALTH_BACKOFF_MASK) != (old & HEALTH_BACKOFF_MASK))
                        atomic_store_explicit(&e->trial_at_usec, mono + backoff_usec(word_backoff(new)),
                                              memory_order_relaxed);
                if (change == HEALTH_CAME_UP && u->config->slow_start_usec > 0) {
                        atomic_store_explicit(&e->up_since_usec, mono, memory_order_relaxed);
                        atomic_store_explicit(&e->slow_start_seen, 0, memory_order_relaxed);
                        new |= HEALTH_SLOW_START;
                } else if (change == HEALTH_WENT_DOWN)
                        new &= ~HEALTH_SLOW_START;
        } while (!atomic_compare_exchange_weak_explicit(&e->health, &old, new,
                                                        memory_order_release,
                                                        memory_order_relaxed));
        if (change != HEALTH_UNCHANGED) {
                atomic_store_explicit(&e->health_since_usec, now_usec(CLOCK_REALTIME),
                                      memory_order_relaxed);
                registry_bump_health_epoch(e->registry);
        }
        return change;
}

unsigned health_slow_start_permille(RegistryEntry *e, const HealthPickPolicy *p, uint64_t *now)
{
        uint64_t w = atomic_load_explicit(&e->health, memory_order_relaxed);
        if (!(w & HEALTH_SLOW_START))
                return 1000;
        if (*now == 0)
                *now = now_usec(CLOCK_MONOTONIC);
        uint64_t since = atomic_load_explicit(&e->up_since_usec, memory_order_relaxed);
        uint64_t elapsed = *now > since ? *now - since : 0;
        if (p->slow_start_usec == 0 || elapsed >= p->slow_start_usec) {
                /* Done ramping: the word is 0 again, and picks take the fast path. */
                while ((w & HEALTH_SLOW_START) &&
                       !atomic_compare_exchange_weak_explicit(&e->health, &w,
                                                              w & ~HEALTH_SLOW_START,
                                                              memory_order_relaxed,
                                                              memory_order_relaxed))
                        ;
                return 1000;
        }
        return HEALTH_SLOW_START_FLOOR_PERMILLE +
               (unsigned)((1000 - HEALTH_SLOW_START_FLOOR_PERMILLE) * elapsed / p->slow_start_usec);
}

HealthPick health_pick_slow(RegistryEntry *e, uint64_t w, const HealthPickPolicy *p, bool panic,
                            bool thin, uint64_t *now)
{
        if (word_admin(w) != NODE_ADMIN_READY)
                return HEALTH_PICK_NOT_NOW; /* drain and maint: not even in panic */
        if (w & HEALTH_DOWN) {
                if (panic)
                        return HEALTH_PICK_YES;
                if (p->trials) {
                        if (*now == 0)
                                *now = now_usec(CLOCK_MONOTONIC);
                        uint64_t at = atomic_load_explicit(&e->trial_at_usec, memory_order_relaxed);
                        /* One request per back-off: the one whose exchange moves the time on. */
                        if (*now >= at &&
                            atomic_compare_exchange_strong_explicit(
                                    &e->trial_at_usec, &at, *now + backoff_usec(word_backoff(w)),
                                    memory_order_relaxed, memory_order_relaxed))
                                return HEALTH_PICK_YES;
                }
                return HEALTH_PICK_DOWN;
        }
        if (!(w & HEALTH_SLOW_START) || !thin)
                return HEALTH_PICK_YES;
        unsigned pm = health_slow_start_permille(e, p, now);
        if (pm >= 1000)
                return HEALTH_PICK_YES;
        /* Of the picks that fall on it, it takes pm per mille, evenly: the c-th is taken when
         * it crosses a multiple of 1000 / pm. */
        uint64_t c = atomic_fetch_add_explicit(&e->slow_start_seen, 1, memory_order_relaxed);
        return (c + 1) * pm / 1000 > c * pm / 1000 ? HEALTH_PICK_YES : HEALTH_PICK_NOT_NOW;
}

void health_commit_upstream(Upstream *u, bool fresh,
                            void (*report)(void *userdata, const Upstream *u, const Node *n),
                            void *userdata)
{
        uint64_t slow_start = u->config->slow_start_usec;
        for (size_t i = 0; i < u->n_nodes; i++) {
                Node *n = &u->nodes[i];
                RegistryEntry *e = n->state;
                NodeAdminState want = u->config->nodes[i].state;
                bool added = e->fresh && fresh;
                e->fresh = false;

                uint64_t old = atomic_load_explicit(&e->health, memory_order_relaxed), new;
                bool changed;
                do {
                        NodeAdminState was = word_admin(old);
                        changed = was != want;
                        new = (old & ~(HEALTH_ADMIN_MASK | HEALTH_DRAINED)) |
                              ((uint64_t)want << HEALTH_ADMIN_SHIFT);
                        if (!changed)
                                new |= old & HEALTH_DRAINED;
                        /* Back from drain or maint, or new: it ramps up (HAProxy's slowstart). */
                        bool ramp = slow_start > 0 && want == NODE_ADMIN_READY &&
                                    (added || (changed && was != NODE_ADMIN_READY));
                        if (ramp) {
                                atomic_store_explicit(&e->up_since_usec,
                                                      now_usec(CLOCK_MONOTONIC),
                                                      memory_order_relaxed);
                                atomic_store_explicit(&e->slow_start_seen, 0,
                                                      memory_order_relaxed);
                                new |= HEALTH_SLOW_START;
                        }
                        if (new == old)
                                break;
                } while (!atomic_compare_exchange_weak_explicit(&e->health, &old, new,
                                                                memory_order_release,
                                                                memory_order_relaxed));
                if (changed) {
                        atomic_store_explicit(&e->health_since_usec, now_usec(CLOCK_REALTIME),
                                              memory_order_relaxed);
                        registry_bump_health_epoch(e->registry);
                        if (report)
                                report(userdata, u, n);
                }
        }
}

bool node_health_claim_drained(RegistryEntry *e)
{
        uint64_t w = atomic_load_explicit(&e->health, memory_order_relaxed);
        do {
                if (word_admin(w) != NODE_ADMIN_DRAIN || (w & HEALTH_DRAINED) ||
                    registry_in_flight(e) != 0)
                        return false;
        } while (!atomic_compare_exchange_weak_explicit(&e->health, &w, w | HEALTH_DRAINED,
                                                        memory_order_relaxed,
                                                        memory_order_relaxed));
        return true;
}

static const char *const event_names[_HEALTH_EVENT_MAX] = {
        [HEALTH_EVENT_SUCCESS] = "successes",
        [HEALTH_EVENT_HTTP_FAILURE] = "HTTP failures",
        [HEALTH_EVENT_TCP_FAILURE] = "TCP failures",
        [HEALTH_EVENT_TIMEOUT] = "timeouts",
};

static void format_reason(uint64_t w, char *buf, size_t size)
{
        unsigned count = (unsigned)((w >> HEALTH_REASON_COUNT_SHIFT) & HEALTH_COUNTER_MASK);
        HealthEvent ev = (HealthEvent)((w >> HEALTH_REASON_SHIFT) & 3);
        if (count == 0) {
                snprintf(buf, size, "%s", "");
                return;
        }
        snprintf(buf, size, "%u %s in a row (%s)", count,
                 count == 1 && ev == HEALTH_EVENT_SUCCESS ? "success" : event_names[ev],
                 w & HEALTH_REASON_ACTIVE ? "active check" : "requests");
}

void node_health_view(const Node *n, NodeHealthView *ret)
{
        uint64_t w = atomic_load_explicit(&n->state->health, memory_order_relaxed);
        *ret = (NodeHealthView){
                .down = w & HEALTH_DOWN,
                .admin = word_admin(w),
                .slow_start = w & HEALTH_SLOW_START,
                .since_usec = atomic_load_explicit(&n->state->health_since_usec,
                                                   memory_order_relaxed),
        };
        format_reason(w, ret->reason, sizeof(ret->reason));
}

const char *node_health_reason(const Node *n, char *buf, size_t size)
{
        format_reason(atomic_load_explicit(&n->state->health, memory_order_relaxed), buf, size);
        return buf;
}

const char *node_health_to_string(const Node *n)
{
        uint64_t w = atomic_load_explicit(&n->state->health, memory_order_relaxed);
        switch (word_admin(w)) {
        case NODE_ADMIN_DRAIN:
                return "drain";
        case NODE_ADMIN_MAINT:
                return "maint";
        default:
                return w & HEALTH_DOWN ? "down" : "healthy";
        }
}

bool node_is_down(const Node *n)
{
        return atomic_load_explicit(&n->state->health, memory_order_relaxed) & HEALTH_DOWN;
}

NodeAdminState node_admin_state(const Node *n)
{
        return word_admin(atomic_load_explicit(&n->state->health, memory_order_relaxed));
}
