/* SPDX-License-Identifier: MIT */
#include <assert.h>
#include <arpa/inet.h>

#include "base/hashmap.h"
#include "base/log.h"
#include "net/resolver-event.h"
#include "net/resolver.h"

#define RETRY_FIRST_USEC (1 * USEC_PER_SEC)

struct ResolvedName {
        unsigned n_ref;
        Resolver *resolver;
        char *host;
        pthread_mutex_t lock;   /* guards `addresses`: workers read, the control loop writes */
        AddressList *addresses; /* last good answer, or NULL */
        int error;              /* last failure, 0 after a success */
        char error_text[64];
        bool answered;   /* a first answer (good or bad) came */
        bool querying;
        bool dead;       /* unreferenced while a query was pending: freed when it returns */
        unsigned failures;
        struct event *refresh;
        ResolveWaiter *waiters;
};

struct Resolver {
        struct event_base *base;
        DnsChannel *channel;
        Hashmap *names;
        uint64_t ttl_min_usec, ttl_max_usec;
        atomic_uint_fast64_t answers[_RESOLVER_OUTCOME_MAX]; /* read by the metrics' thread */
};

const char *resolver_outcome_to_string(ResolverOutcome o)
{
        static const char *const names[_RESOLVER_OUTCOME_MAX] = {
                [RESOLVER_ADDRESSES] = "addresses",
                [RESOLVER_NO_ADDRESSES] = "no_addresses",
                [RESOLVER_FAILED] = "failed",
        };
        return o >= 0 && o < _RESOLVER_OUTCOME_MAX ? names[o] : NULL;
}

uint64_t resolver_answers(const Resolver *r, ResolverOutcome o)
{
        return atomic_load_explicit(&r->answers[o], memory_order_relaxed);
}

static void count_answer(Resolver *r, ResolverOutcome o)
{
        atomic_fetch_add_explicit(&r->answers[o], 1, memory_order_relaxed);
}

AddressList *address_list_ref(AddressList *l)
{
        if (l)
                atomic_fetch_add_explicit(&l->n_ref, 1, memory_order_relaxed);
        return l;
}

AddressList *address_list_unref(AddressList *l)
{
        if (l && atomic_fetch_sub_explicit(&l->n_ref, 1, memory_order_acq_rel) == 1)
                free(l);
        return NULL;
}

uint64_t resolver_refresh_delay_usec(uint64_t ttl_usec, unsigned failures, uint64_t min_usec,
                                     uint64_t max_usec)
{
        uint64_t d;

        if (failures > 0) {
                d = RETRY_FIRST_USEC;
                for (unsigned i = 1; i < failures && d < max_usec; i++)
                        d *= 2;
                return d < max_usec ? d : max_usec;
        }
        d = ttl_usec;
        if (d < min_usec)
                d = min_usec;
        if (d > max_usec)
                d = max_usec;
        return d;
}

static void schedule_refresh(ResolvedName *n, uint64_t ttl_usec)
{
        Resolver *r = n->resolver;
        uint64_t d = resolver_refresh_delay_usec(ttl_usec, n->failures, r->ttl_min_usec,
                                                 r->ttl_max_usec);
        struct timeval tv = { .tv_sec = (time_t)(d / USEC_PER_SEC),
                              .tv_usec = (suseconds_t)(d % USEC_PER_SEC) };
        evtimer_add(n->refresh, &tv);
}

static void wake_waiters(ResolvedName *n, int error)
{
        pthread_mutex_lock(&n->lock);
        while (n->waiters) {
                ResolveWaiter *w = n->waiters;
                ResolveMailbox *b = w->mailbox;
                n->waiters = w->next;
                if (n->waiters)
                        n->waiters->prev = NULL;
                /* Into its mailbox, under both locks: a cancel that holds either sees the
                 * waiter wholly in one list or wholly in the other. */
                pthread_mutex_lock(&b->lock);
                w->error = error;
                __atomic_store_n(&w->name, NULL, __ATOMIC_RELEASE);
                w->prev = NULL;
                w->next = b->answered;
                if (b->answered)
                        b->answered->prev = w;
                b->answered = w;
                w->answered = true;
                pthread_mutex_unlock(&b->lock);
                /* The waiter may be gone from here on (cancelled and freed on its thread); its
                 * mailbox lives as long as its loop. */
                b->notify(b->userdata);
        }
        pthread_mutex_unlock(&n->lock);
}

void resolve_mailbox_init(ResolveMailbox *b, void (*notify)(void *userdata), void *userdata)
{
        *b = (ResolveMailbox){ .notify = notify, .userdata = userdata };
        pthread_mutex_init(&b->lock, NULL);
}

void resolve_mailbox_done(ResolveMailbox *b)
{
        assert(!b->answered);
        pthread_mutex_destroy(&b->lock);
}

void resolve_mailbox_deliver(ResolveMailbox *b)
{
        pthread_mutex_lock(&b->lock);
        ResolveWaiter *list = b->answered;
        b->answered = NULL;
        for (ResolveWaiter *w = list; w; w = w->next)
                w->answered = false;
        pthread_mutex_unlock(&b->lock);
        /* Nothing runs between here and the activations that could free a waiter: the
         * callbacks come later, from the loop. */
        for (ResolveWaiter *w = list, *next; w; w = next) {
                next = w->next;
                w->prev = w->next = NULL;
                w->mailbox = NULL;
                event_active(w->wake, EV_READ, 0);
        }
}

static void format_list(const AddressList *l, char *buf, size_t size)
{
        size_t used = 0;
        buf[0] = 0;
        for (size_t i = 0; l && i < l->n && used + 2 < size; i++) {
                char ip[INET6_ADDRSTRLEN];
                const struct sockaddr_storage *ss = &l->addrs[i];
                if (ss->ss_family == AF_INET)
                        inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, ip,
                                  sizeof(ip));
                else
                        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, ip,
                                  sizeof(ip));
                int k = snprintf(buf + used, size - used, "%s%s", i ? " " : "", ip);
                if (k < 0)
                        break;
                used += (size_t)k;
        }
}

static bool lists_equal(const AddressList *a, const AddressList *b)
{
        if (!a || !b || a->n != b->n)
                return false;
        return memcmp(a->addrs, b->addrs, a->n * sizeof(a->addrs[0])) == 0;
}

static AddressList *list_from_answer(const struct ares_addrinfo *res, uint64_t *ret_ttl_usec)
{
        size_t n = 0;
        int ttl = INT32_MAX;

        for (const struct ares_addrinfo_node *a = res ? res->nodes : NULL; a; a = a->ai_next)
                if (a->ai_family == AF_INET || a->ai_family == AF_INET6)
                        n++;
        if (n == 0)
                return NULL;
        AddressList *l = calloc(1, sizeof(AddressList) + n * sizeof(struct sockaddr_storage));
        if (!l)
                return NULL;
        atomic_init(&l->n_ref, 1);
        for (const struct ares_addrinfo_node *a = res->nodes; a; a = a->ai_next) {
                if (a->ai_family != AF_INET && a->ai_family != AF_INET6)
                        continue;
                memcpy(&l->addrs[l->n++], a->ai_addr, a->ai_addrlen);
                if (a->ai_ttl < ttl)
                        ttl = a->ai_ttl;
        }
        /* A CNAME's TTL bounds the answer too. */
        for (const struct ares_addrinfo_cname *c = res->cnames; c; c = c->next)
                if (c->ttl < ttl)
                        ttl = c->ttl;
        *ret_ttl_usec = ttl > 0 ? (uint64_t)ttl * USEC_PER_SEC : 0;
        return l;
}

static void resolved_name_free(ResolvedName *n);

static void on_answer(void *userdata, int status, int timeouts, struct ares_addrinfo *res)
{
        ResolvedName *n = userdata;
        uint64_t ttl = 0;

        n->querying = false;
        if (n->dead || status == ARES_EDESTRUCTION) {
                ares_freeaddrinfo(res);
                if (n->dead)
                        resolved_name_free(n);
                return;
        }

        AddressList *l = status == ARES_SUCCESS ? list_from_answer(res, &ttl) : NULL;
        ares_freeaddrinfo(res);

        if (l) {
                count_answer(n->resolver, RESOLVER_ADDRESSES);
                char now[512], before[512];
                format_list(l, now, sizeof(now));
                if (!lists_equal(l, n->addresses)) {
                        format_list(n->addresses, before, sizeof(before));
                        if (n->addresses)
                                log_event(LOG_NOTICE, LBPROXY_MESSAGE_DNS_CHANGE, NULL, NULL,
                                          n->host, "DNS: %s now resolves to %s (was %s), TTL %llus",
                                          n->host, now, before,
                                          (unsigned long long)(ttl / USEC_PER_SEC));
                        else
                                log_event(LOG_INFO, LBPROXY_MESSAGE_DNS_CHANGE, NULL, NULL,
                                          n->host, "DNS: %s resolves to %s, TTL %llus", n->host,
                                          now, (unsigned long long)(ttl / USEC_PER_SEC));
                } else if (n->failures > 0)
                        log_info("DNS: %s resolves again (%s)", n->host, now);
                pthread_mutex_lock(&n->lock);
                AddressList *old = n->addresses;
                n->addresses = l;
                n->error = 0;
                pthread_mutex_unlock(&n->lock);
                address_list_unref(old);
                n->failures = 0;
        } else {
                int error = status == ARES_SUCCESS ? -ENXIO : dns_status_to_errno(status);
                count_answer(n->resolver,
                             error == -ENXIO ? RESOLVER_NO_ADDRESSES : RESOLVER_FAILED);
                snprintf(n->error_text, sizeof(n->error_text), "%s",
                         status == ARES_SUCCESS ? "no addresses" : ares_strerror(status));
                /* Logged once per run of failures, not at every retry. */
                if (n->failures == 0) {
                        if (n->addresses)
                                log_event(LOG_WARNING, LBPROXY_MESSAGE_DNS_FAILURE, NULL, NULL,
                                          n->host, "DNS: resolving %s failed (%s); keeping its "
                                          "last addresses", n->host, n->error_text);
                        else
                                log_event(LOG_ERR, LBPROXY_MESSAGE_DNS_FAILURE, NULL, NULL,
                                          n->host, "DNS: cannot resolve %s: %s", n->host,
                                          n->error_text);
                }
                pthread_mutex_lock(&n->lock);
                n->error = error;
                pthread_mutex_unlock(&n->lock);
                n->failures++;
        }
        pthread_mutex_lock(&n->lock);
        n->answered = true;
        pthread_mutex_unlock(&n->lock);
        schedule_refresh(n, ttl);
        wake_waiters(n, n->addresses ? 0 : n->error);
}

static void start_query(ResolvedName *n)
{
        if (n->querying)
                return;
        n->querying = true;
        dns_channel_getaddrinfo(n->resolver->channel, n->host, on_answer, n);
}

static void on_refresh(evutil_socket_t fd, short what, void *userdata)
{
        start_query(userdata);
}

int resolver_new(struct event_base *base, const ResolverOptions *o, Resolver **ret)
{
        Resolver *r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        r->base = base;
        r->ttl_min_usec = o->ttl_min_usec;
        r->ttl_max_usec = o->ttl_max_usec ? o->ttl_max_usec : 3600 * USEC_PER_SEC;
        r->names = hashmap_new();
        int k = r->names ? dns_channel_new(base, o->servers, &r->channel) : -ENOMEM;
        if (k < 0) {
                hashmap_free(r->names);
                free(r);
                return k;
        }
        *ret = r;
        return 0;
}

static void resolved_name_free(ResolvedName *n)
{
        if (n->refresh)
                event_free(n->refresh);
        address_list_unref(n->addresses);
        pthread_mutex_destroy(&n->lock);
        free(n->host);
        free(n);
}

static int cancel_name(const char *key, size_t key_len, void *value, void *userdata)
{
        ResolvedName *n = value;
        /* Queries end with ARES_EDESTRUCTION when the channel goes; mark so they free it. */
        wake_waiters(n, -ECANCELED);
        if (n->querying)
                n->dead = true;
        else
                resolved_name_free(n);
        return 0;
}

Resolver *resolver_free(Resolver *r)
{
        if (!r)
                return NULL;
        hashmap_foreach(r->names, cancel_name, NULL);
        dns_channel_free(r->channel); /* runs the pending callbacks, which free dead names */
        hashmap_free(r->names);
        free(r);
        return NULL;
}

int resolver_get(Resolver *r, const char *host, ResolvedName **ret)
{
        ResolvedName *n = hashmap_get(r->names, host, strlen(host));
        if (n) {
                n->n_ref++;
                *ret = n;
                return 0;
        }
        n = calloc(1, sizeof(*n));
        if (!n)
                return -ENOMEM;
        n->n_ref = 1;
        n->resolver = r;
        n->host = strdup(host);
        n->refresh = evtimer_new(r->base, on_refresh, n);
        pthread_mutex_init(&n->lock, NULL);
        if (!n->host || !n->refresh || hashmap_put(r->names, host, strlen(host), n) < 0) {
                resolved_name_free(n);
                return -ENOMEM;
        }
        *ret = n;
        start_query(n);
        return 0;
}

ResolvedName *resolved_name_unref(ResolvedName *n)
{
        if (!n || --n->n_ref > 0)
                return NULL;
        hashmap_remove(n->resolver->names, n->host, strlen(n->host));
        wake_waiters(n, -ECANCELED);
        if (n->querying)
                n->dead = true; /* freed by on_answer */
        else
                resolved_name_free(n);
        return NULL;
}

AddressList *resolved_name_addresses(ResolvedName *n, int *ret_error)
{
        pthread_mutex_lock(&n->lock);
        AddressList *l = address_list_ref(n->addresses);
        if (!l)
                *ret_error = !n->answered ? -EAGAIN : n->error ? n->error : -EHOSTUNREACH;
        pthread_mutex_unlock(&n->lock);
        return l;
}

const char *resolved_name_host(const ResolvedName *n)
{
        return n->host;
}

const char *resolved_name_error(const ResolvedName *n)
{
        return n->error ? n->error_text : NULL;
}

void resolved_name_wait(ResolvedName *n, ResolveWaiter *w, ResolveMailbox *mailbox)
{
        pthread_mutex_lock(&n->lock);
        if (n->answered) {
                /* The answer came between the caller's look and now. */
                w->error = n->addresses ? 0 : n->error ? n->error : -EHOSTUNREACH;
                w->name = NULL;
                w->mailbox = NULL;
                event_active(w->wake, EV_READ, 0);
        } else {
                w->mailbox = mailbox;
                w->name = n;
                w->prev = NULL;
                w->next = n->waiters;
                if (n->waiters)
                        n->waiters->prev = w;
                n->waiters = w;
        }
        pthread_mutex_unlock(&n->lock);
}

/* Out of a name's or a mailbox's list, under its lock. */
static void unlink_waiter(ResolveWaiter **head, ResolveWaiter *w)
{
        if (w->prev)
                w->prev->next = w->next;
        else
                *head = w->next;
        if (w->next)
                w->next->prev = w->prev;
        w->prev = w->next = NULL;
}

void resolved_name_cancel_wait(ResolveWaiter *w)
{
        ResolveMailbox *b = w->mailbox;
        if (!b)
                return; /* not waiting: the common case, every exchange's end */
        /* In the name's list, unless the resolver moved it to the mailbox, which it does
         * holding the name's lock: read the name without the lock to find the lock, then check
         * again under it. Names outlive their waiters' models, so `n` is alive here. */
        ResolvedName *n = __atomic_load_n(&w->name, __ATOMIC_ACQUIRE);
        if (n) {
                pthread_mutex_lock(&n->lock);
                if (w->name == n) {
                        unlink_waiter(&n->waiters, w);
                        w->name = NULL;
                }
                pthread_mutex_unlock(&n->lock);
        }
        /* Answered meanwhile: out of the mailbox, before its loop activates the waiter. */
        pthread_mutex_lock(&b->lock);
        if (w->answered) {
                unlink_waiter(&b->answered, w);
                w->answered = false;
        }
        pthread_mutex_unlock(&b->lock);
        w->mailbox = NULL;
}
