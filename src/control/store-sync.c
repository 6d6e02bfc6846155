/* SPDX-License-Identifier: MIT */
/* Following etcd: a range of the prefix, then one watch from the revision after it, on the
 * control loop. Reading whole (start, compaction, a revision gone backwards, any reconnect)
 * swaps the store's objects in whole; a watch's events are changes to what serves. A watch can
 * go quiet without closing (3.4 sends progress only every 10 minutes, and a member without
 * quorum keeps its watches open), so the keys changed since our revision are asked for (keys
 * only, with the count of all keys, which tells deletions) every STORE_CHECK_USEC: a failure means etcd is gone (read whole when back), changes not
 * delivered twice in a row mean the watch is stuck (watch again from the same revision). */

#include <event2/event.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "control/manager-health.h"
#include "control/store-build.h"
#include "control/store-internal.h"
#include "control/store-sync.h"
#include "store/etcd-client.h"
#include "store/etcd-json.h"

/* ---- reachability ---- */

static void format_time(uint64_t usec, char *buf, size_t size)
{
        time_t t = (time_t)(usec / USEC_PER_SEC);
        struct tm tm;

        if (!gmtime_r(&t, &tm) || strftime(buf, size, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
                snprintf(buf, size, "@%" PRIu64, usec / USEC_PER_SEC);
}

static void set_unreachable(StoreSync *s, const char *why)
{
        char when[64], note[128];

        if (s->unreachable_since)
                return;
        s->unreachable_since = now_usec(CLOCK_REALTIME);
        format_time(s->unreachable_since, when, sizeof(when));
        log_event(LOG_WARNING, LBPROXY_MESSAGE_STORE, NULL, NULL, NULL,
                  "Store unreachable since %s (%s): serving the last configuration, reconnecting",
                  when, why);
        snprintf(note, sizeof(note), "store unreachable since %s", when);
        (void)manager_set_status_note(s->manager, note);
        manager_update_status(s->manager);
}

static void set_reachable(StoreSync *s)
{
        if (!s->unreachable_since)
                return;
        log_event(LOG_NOTICE, LBPROXY_MESSAGE_STORE, NULL, NULL, NULL,
                  "Store reachable again at %s after %" PRIu64 "s",
                  etcd_client_endpoint(s->client, s->endpoint),
                  (now_usec(CLOCK_REALTIME) - s->unreachable_since) / USEC_PER_SEC);
        s->unreachable_since = 0;
        (void)manager_set_status_note(s->manager, NULL);
        manager_update_status(s->manager);
}

/* ---- applying ---- */

/* What the store applied: its revision, for the writes waiting on it. The StoreSync may be gone
 * when the Manager answers (at exit). */
typedef struct Applying {
        StoreSync *sync;
        int64_t revision;
        struct Applying *next;
} Applying;

static Applying *applying_list; /* one control loop per process */

static void on_applied(void *userdata, int r, const char *message)
{
        Applying *a = userdata, **p;
        StoreSync *s = a->sync;

        for (p = &applying_list; *p != a; p = &(*p)->next)
                ;
        *p = a->next;
        if (r < 0)
                log_event(LOG_ERR, LBPROXY_MESSAGE_STORE, NULL, NULL, NULL,
                          "A change from the store was not applied, the last configuration "
                          "serves: %s", message ? message : strerror(-r));
        if (s) {
                s->applying--;
                if (r < 0)
                        store_writes_settle(s, a->revision, r, message);
                store_writes_settle(s, s->revision, 0, NULL);
        }
        free(a);
}

static void apply(StoreSync *s, Config *config, int64_t revision)
{
        _cleanup_free_ char *error = NULL;
        Applying *a = calloc(1, sizeof(Applying));
        int r;

        if (!a) {
                config_unref(config);
                log_error("A change from the store not applied: out of memory");
                return;
        }
        *a = (Applying){.sync = s, .revision = revision, .next = applying_list};
        applying_list = a;
        s->applying++;
        /* 1: it serves already, 0: on_applied() says when; < 0: refused (it says why). */
        r = manager_apply_config(s->manager, config, on_applied, a, &error);
        if (r != 0)
                on_applied(a, r < 0 ? r : 0, error);
}

static void remember_revision(StoreSync *s, const char *key, int64_t mod_revision)
{
        ConfigObjectKind kind;
        const char *name;

        if (store_key_parse(s->prefix, key, &kind, &name) < 0)
                return;
        if (mod_revision == 0)
                hashmap_remove(s->revisions, key, strlen(key));
        else if (hashmap_put(s->revisions, key, strlen(key), (void *)(intptr_t)mod_revision) < 0)
                /* Its next write compares against nothing and fails as a conflict. */
                log_warning("etcd: cannot remember the revision of %s: out of memory", key);
}

static void read_whole(StoreSync *s);
static void start_watch(StoreSync *s);

static void stop_calls(StoreSync *s)
{
        etcd_call_cancel(s->range);
        etcd_call_cancel(s->watch);
        etcd_call_cancel(s->check);
        s->range = s->watch = s->check = NULL;
}

/* Tries again after a back-off (doubling, with jitter: instances that lost etcd together do not
 * come back in step), on the next endpoint. */
static void retry_later(StoreSync *s, const char *why)
{
        uint64_t d = STORE_BACKOFF_MIN_USEC;

        stop_calls(s);
        s->state = STORE_WAITING;
        s->failures++;
        /* Committed: they serve here once the store is back. */
        store_writes_settle(s, INT64_MAX, 0, NULL);
        s->endpoint = (s->endpoint + 1) % etcd_client_n_endpoints(s->client);
        /* Every endpoint failed once: etcd is unreachable, not just a member. */
        if (s->failures >= etcd_client_n_endpoints(s->client))
                set_unreachable(s, why);
        for (unsigned i = 1; i < s->failures && d < STORE_BACKOFF_MAX_USEC; i++)
                d *= 2;
        if (d > STORE_BACKOFF_MAX_USEC)
                d = STORE_BACKOFF_MAX_USEC;
        d = d / 2 + (uint64_t)random() % (d / 2 + 1);
        struct timeval tv = {.tv_sec = (time_t)(d / USEC_PER_SEC),
                             .tv_usec = (suseconds_t)(d % USEC_PER_SEC)};
        evtimer_add(s->retry, &tv);
}

static void on_retry(evutil_socket_t fd, short what, void *userdata)
{
        read_whole(userdata);
}

static void on_range(void *userdata, int r, unsigned status, const char *body, size_t len)
{
        StoreSync *s = userdata;
        _cleanup_(etcd_range_done) EtcdRange range = {};
        _cleanup_free_ char *error = NULL, *why = NULL;
        char buf[512];
        Config *config = NULL;

        s->range = NULL;
        if (r >= 0)
                r = etcd_json_parse_range(body, len, &range);
        if (r < 0) {
                if (asprintf(&why, "%s: %s", etcd_client_endpoint(s->client, s->endpoint),
                             etcd_why(r, status, body, buf, sizeof(buf))) < 0)
                        why = NULL;
                retry_later(s, why ? why : "range failed");
                return;
        }
        r = store_build_range(s->files, s->prefix, &range, manager_config(s->manager), &config,
                              &error);
        s->failures = 0;
        set_reachable(s);
        s->revision = range.revision;
        s->n_keys = range.count;
        hashmap_free(s->revisions);
        s->revisions = hashmap_new();
        if (!s->revisions) {
                config_unref(config);
                retry_later(s, "out of memory");
                return;
        }
        for (size_t i = 0; i < range.n_kvs; i++)
                remember_revision(s, range.kvs[i].key, range.kvs[i].mod_revision);
        s->whole_refused = r < 0;
        if (r < 0)
                log_event(LOG_ERR, LBPROXY_MESSAGE_STORE, NULL, NULL, NULL,
                          "The store's configuration at revision %" PRId64 " refused, the last "
                          "one serves: %s", range.revision, error ? error : strerror(-r));
        else
                apply(s, config, range.revision);
        store_writes_settle(s, s->revision, 0, NULL);
        start_watch(s);
}

static void read_whole(StoreSync *s)
{
        _cleanup_free_ char *body = NULL;
        int r;

        stop_calls(s);
        s->state = STORE_READING;
        r = etcd_json_range(s->prefix, s->prefix_len, s->end, s->end_len, 0, false, &body);
        if (r >= 0)
                r = etcd_call(s->client, s->endpoint, "/v3/kv/range", body, on_range, s, &s->range);
        if (r < 0)
                retry_later(s, "out of memory");
}

/* ---- the watch ---- */

static void apply_events(StoreSync *s, const EtcdWatchMessage *m)
{
        StoreItems items = {};
        _cleanup_free_ char *error = NULL;
        Config *config = NULL;
        int r = 0;
        size_t n = 0;

        for (size_t i = 0; i < m->n_events && r >= 0; i++) {
                const EtcdKv *kv = &m->events[i].kv;
                remember_revision(s, kv->key, m->events[i].deleted ? 0 : kv->mod_revision);
                if (m->events[i].deleted)
                        s->n_keys--;
                else if (kv->create_revision == kv->mod_revision)
                        s->n_keys++;
                r = store_items_add(&items, s->prefix, kv->key, m->events[i].deleted ? NULL
                                                                                     : kv->value,
                                    kv->value_len);
                n += r > 0;
        }
        if (r >= 0 && n > 0)
                r = store_build(manager_config(s->manager), false, &items,
                                manager_config(s->manager), &config, &error);
        store_items_done(&items);
        if (n == 0)
                return;
        if (r < 0)
                log_event(LOG_ERR, LBPROXY_MESSAGE_STORE, NULL, NULL, NULL,
                          "Changes of revision %" PRId64 " refused, the last configuration "
                          "serves: %s", m->revision, error ? error : strerror(-r));
        else
                apply(s, config, m->revision);
}

static void on_watch_line(void *userdata, const char *line, size_t len)
{
        StoreSync *s = userdata;
        _cleanup_(etcd_watch_message_done) EtcdWatchMessage m = {};
        int r = etcd_json_parse_watch(line, len, &m);

        if (r < 0) {
                log_warning("etcd watch at %s: a message that does not parse (%s), watching again",
                            etcd_client_endpoint(s->client, s->endpoint), strerror(-r));
                retry_later(s, "bad watch message");
                return;
        }
        if (m.kind == ETCD_WATCH_ERROR) {
                retry_later(s, m.error);
                return;
        }
        if (m.kind == ETCD_WATCH_CANCELED) {
                log_notice("etcd watch cancelled (%s): reading %s again",
                           m.error ? m.error : "compacted", s->prefix);
                read_whole(s);
                return;
        }
        if (m.revision > 0 && m.revision < s->revision) {
                log_notice("etcd's revision went back from %" PRId64 " to %" PRId64
                           " (restored or replaced?): reading %s again", s->revision,
                           m.revision, s->prefix);
                read_whole(s);
                return;
        }
        if (m.kind == ETCD_WATCH_EVENTS && s->whole_refused) {
                read_whole(s);
                return;
        }
        if (m.kind == ETCD_WATCH_EVENTS)
                apply_events(s, &m);
        if (m.revision > s->revision)
                s->revision = m.revision;
        s->behind = 0;
        store_writes_settle(s, s->revision, 0, NULL);
}

static void on_watch_end(void *userdata, int r, unsigned status, const char *body, size_t len)
{
        StoreSync *s = userdata;
        _cleanup_free_ char *why = NULL;
        char buf[512];

        s->watch = NULL;
        if (asprintf(&why, "watch at %s %s: %s", etcd_client_endpoint(s->client, s->endpoint),
                     status ? "refused" : "closed", etcd_why(r, status, body, buf,
                                                             sizeof(buf))) < 0)
                why = NULL;
        retry_later(s, why ? why : "watch closed");
}

static void start_watch(StoreSync *s)
{
        _cleanup_free_ char *body = NULL;
        int r;

        etcd_call_cancel(s->watch);
        s->watch = NULL;
        s->state = STORE_WATCHING;
        s->behind = 0;
        r = etcd_json_watch(s->prefix, s->prefix_len, s->end, s->end_len, s->revision + 1, &body);
        if (r >= 0)
                r = etcd_watch(s->client, s->endpoint, body, on_watch_line, on_watch_end, s,
                               &s->watch);
        if (r < 0)
                retry_later(s, "out of memory");
}

static void on_check(void *userdata, int r, unsigned status, const char *body, size_t len)
{
        StoreSync *s = userdata;
        _cleanup_(etcd_range_done) EtcdRange range = {};

        s->check = NULL;
        if (r >= 0)
                r = etcd_json_parse_range(body, len, &range);
        if (r < 0) {
                /* A member without quorum keeps its watch open, and quiet. */
                char buf[512];
                retry_later(s, etcd_why(r, status, body, buf, sizeof(buf)));
                return;
        }
        if (range.revision < s->revision) {
                log_notice("etcd's revision went back from %" PRId64 " to %" PRId64
                           " (restored or replaced?): reading %s again", s->revision,
                           range.revision, s->prefix);
                read_whole(s);
                return;
        }
        /* Keys changed since our revision, or (etcd counts before it leaves out what
         * min_mod_revision excludes) as many keys as we think there are not: deletions too. */
        if (range.n_kvs == 0 && range.count == s->n_keys) {
                s->behind = 0;
                return;
        }
        /* Changes may be on their way; twice in a row, the watch is stuck. */
        if (++s->behind >= 2) {
                log_notice("etcd watch at %s is behind (revision %" PRId64 "): watching again",
                           etcd_client_endpoint(s->client, s->endpoint), s->revision);
                start_watch(s);
        }
}

static void on_tick(evutil_socket_t fd, short what, void *userdata)
{
        StoreSync *s = userdata;
        _cleanup_free_ char *body = NULL;

        if (s->state != STORE_WATCHING || s->check)
                return;
        if (etcd_json_range(s->prefix, s->prefix_len, s->end, s->end_len, s->revision + 1, true,
                            &body) < 0 ||
            etcd_call(s->client, s->endpoint, "/v3/kv/range", body, on_check, s, &s->check) < 0)
                log_warning("etcd: cannot check the watch: out of memory");
}

/* ---- life ---- */

static int client_options(const Config *c, EtcdClientOptions *ret)
{
        const ConfigEtcd *e = &c->store.etcd;

        if (!e->endpoints)
                return -ENOENT;
        *ret = (EtcdClientOptions){
                .endpoints = e->endpoints,
                .timeout_usec = e->timeout_usec,
                .username = e->username,
                .password = e->password,
                .ca_file = e->tls.ca_file,
                .cert_file = e->tls.cert,
                .key_file = e->tls.key,
        };
        return 0;
}

int store_sync_new(Manager *m, const Config *files, const EtcdRange *start,
                   const char *unreachable_why, StoreSync **ret)
{
        _cleanup_(store_sync_freep) StoreSync *s = calloc(1, sizeof(StoreSync));
        EtcdClientOptions o;
        const char *prefix = config_etcd_prefix(files);
        int r;

        if (!s)
                return -ENOMEM;
        r = client_options(files, &o);
        if (r < 0)
                return r;
        s->manager = m;
        s->files = config_ref((Config *)files);
        s->revisions = hashmap_new();
        if (!s->revisions)
                return -ENOMEM;
        s->prefix = strdup(prefix);
        s->prefix_len = strlen(prefix);
        if (!s->prefix)
                return -ENOMEM;
        r = etcd_prefix_end(s->prefix, s->prefix_len, &s->end, &s->end_len);
        if (r >= 0) {
                _cleanup_free_ char *error = NULL;
                r = etcd_client_new(m->base, &o, &s->client, &error);
                if (r < 0 && error)
                        log_error("etcd: %s", error);
        }
        if (r < 0)
                return r;
        s->retry = evtimer_new(m->base, on_retry, s);
        s->tick = event_new(m->base, -1, EV_PERSIST, on_tick, s);
        if (!s->retry || !s->tick)
                return -ENOMEM;
        struct timeval tv = {.tv_sec = (time_t)(STORE_CHECK_USEC / USEC_PER_SEC),
                             .tv_usec = (suseconds_t)(STORE_CHECK_USEC % USEC_PER_SEC)};
        event_add(s->tick, &tv);
        srandom((unsigned)now_usec(CLOCK_MONOTONIC) ^ (unsigned)getpid());
        s->revision = start ? start->revision : 0;
        s->n_keys = start ? start->count : 0;
        for (size_t i = 0; start && i < start->n_kvs; i++)
                remember_revision(s, start->kvs[i].key, start->kvs[i].mod_revision);
        if (start)
                start_watch(s);
        else {
                if (unreachable_why) {
                        s->failures = (unsigned)etcd_client_n_endpoints(s->client) - 1;
                        set_unreachable(s, unreachable_why);
                }
                read_whole(s);
        }
        m->store = s;
        *ret = TAKE_PTR(s);
        return 0;
}

StoreSync *store_sync_free(StoreSync *s)
{
        if (!s)
                return NULL;
        if (s->manager && s->manager->store == s)
                s->manager->store = NULL;
        for (Applying *a = applying_list; a; a = a->next)
                if (a->sync == s)
                        a->sync = NULL;
        if (s->client)
                stop_calls(s);
        store_writes_free(s);
        hashmap_free(s->revisions);
        etcd_client_free(s->client);
        if (s->retry)
                event_free(s->retry);
        if (s->tick)
                event_free(s->tick);
        config_unref(s->files);
        free(s->prefix);
        free(s->end);
        free(s);
        return NULL;
}

/* ---- at start ---- */

/* The read at start asks every endpoint at once on a private loop: the first good answer wins,
 * and the call's timeout bounds the whole (not the timeout times the endpoints). */
typedef struct InitialRead {
        struct event_base *base;
        EtcdClient *client;
        size_t n_pending;
        EtcdCall **calls; /* per endpoint, NULL once done */
        struct InitialAsk *asks;
        bool won;
        EtcdRange range; /* the winner's answer */
        char *why;       /* every failure, "endpoint: why; ..." */
} InitialRead;

typedef struct InitialAsk {
        InitialRead *read;
        size_t endpoint;
} InitialAsk;

static void on_initial(void *userdata, int r, unsigned status, const char *body, size_t len)
{
        InitialAsk *a = userdata;
        InitialRead *ir = a->read;
        char buf[512];

        ir->calls[a->endpoint] = NULL;
        ir->n_pending--;
        if (r >= 0 && !ir->won) {
                r = etcd_json_parse_range(body, len, &ir->range);
                ir->won = r >= 0;
                if (ir->won) {
                        event_base_loopbreak(ir->base);
                        return;
                }
        }
        if (r < 0) {
                char *why = NULL;
                if (asprintf(&why, "%s%s%s: %s", ir->why ? ir->why : "", ir->why ? "; " : "",
                             etcd_client_endpoint(ir->client, a->endpoint),
                             etcd_why(r, status, body, buf, sizeof(buf))) >= 0) {
                        free(ir->why);
                        ir->why = why;
                }
        }
        if (ir->n_pending == 0)
                event_base_loopbreak(ir->base);
}

int store_read_initial(const Config *files, Config **ret, EtcdRange *ret_range,
                       char **ret_error)
{
        _cleanup_free_ char *prefix_end = NULL, *body = NULL, *error = NULL;
        const char *prefix = config_etcd_prefix(files);
        _cleanup_(etcd_client_freep) EtcdClient *client = NULL;
        InitialRead ir = {};
        struct event_base *base;
        EtcdClientOptions o;
        size_t end_len, n;
        int r;

        *ret_error = NULL;
        r = client_options(files, &o);
        if (r < 0)
                return r;
        r = etcd_prefix_end(prefix, strlen(prefix), &prefix_end, &end_len);
        if (r >= 0)
                r = etcd_json_range(prefix, strlen(prefix), prefix_end, end_len, 0, false, &body);
        if (r < 0)
                return r;
        base = event_base_new();
        if (!base)
                return -ENOMEM;
        r = etcd_client_new(base, &o, &client, &error);
        if (r < 0) {
                event_base_free(base);
                if (r == -ENOMEM)
                        return r;
                /* Its TLS files do not load: as unreachable as a store gets. */
                *ret_error = error ? TAKE_PTR(error) : strdup(strerror(-r));
                return 0;
        }
        n = etcd_client_n_endpoints(client);
        ir = (InitialRead){.base = base, .client = client};
        ir.calls = calloc(n, sizeof(EtcdCall *));
        ir.asks = calloc(n, sizeof(InitialAsk));
        r = ir.calls && ir.asks ? 0 : -ENOMEM;
        for (size_t i = 0; r >= 0 && i < n; i++) {
                ir.asks[i] = (InitialAsk){.read = &ir, .endpoint = i};
                r = etcd_call(client, i, "/v3/kv/range", body, on_initial, &ir.asks[i],
                              &ir.calls[i]);
                if (r >= 0)
                        ir.n_pending++;
        }
        if (r >= 0)
                event_base_dispatch(base);
        /* The others are not waited for. */
        for (size_t i = 0; ir.calls && i < n; i++)
                etcd_call_cancel(ir.calls[i]);
        if (r >= 0 && ir.won) {
                r = store_build_range(files, prefix, &ir.range, NULL, ret, ret_error);
                if (r >= 0) {
                        *ret_range = ir.range;
                        ir.range = (EtcdRange){};
                        r = 1;
                }
        } else if (r >= 0) {
                log_event(LOG_WARNING, LBPROXY_MESSAGE_STORE, NULL, NULL, NULL,
                          "No etcd endpoint answered at start (%s): starting from the files "
                          "and the cached state", ir.why ? ir.why : "no answer");
                *ret_error = TAKE_PTR(ir.why);
                r = 0;
        }
        etcd_range_done(&ir.range);
        free(ir.why);
        free(ir.calls);
        free(ir.asks);
        etcd_client_free(TAKE_PTR(client));
        event_base_free(base);
        return r;
}

/* ---- a reload ---- */

int store_sync_reloaded(StoreSync *s, Config **config, char **ret_errors)
{
        const Config *now = manager_config(s->manager);
        _cleanup_free_ ConfigStoreItem *items = NULL;
        _cleanup_(etcd_client_freep) EtcdClient *client = NULL;
        size_t n = now->n_upstreams + now->n_routes;
        Config *merged = NULL;
        EtcdClientOptions o;
        int r;

        /* A new client for the files as they are now: their endpoints, credentials and TLS files
         * (a certificate renewed in place too) take effect with the reload. One that cannot be
         * made (a key that does not load) refuses the reload. */
        if (client_options(*config, &o) >= 0) {
                r = etcd_client_new(s->manager->base, &o, &client, ret_errors);
                if (r < 0)
                        return r;
        }
        /* The objects serving now, until the read below brings the store's newest. */
        items = calloc(n ? n : 1, sizeof(ConfigStoreItem));
        if (!items)
                return -ENOMEM;
        for (size_t i = 0; i < now->n_upstreams; i++)
                items[i] = (ConfigStoreItem){.kind = CONFIG_OBJECT_UPSTREAM,
                                             .name = now->upstreams[i]->name,
                                             .path = now->upstreams[i]->name,
                                             .keep = now->upstreams[i]};
        for (size_t i = 0; i < now->n_routes; i++)
                items[now->n_upstreams + i] = (ConfigStoreItem){.kind = CONFIG_OBJECT_ROUTE,
                                                                .name = now->routes[i]->name,
                                                                .path = now->routes[i]->name,
                                                                .keep = now->routes[i]};
        ConfigStoreItems store = {.whole = true, .items = items, .n = n};
        ConfigSource sources[] = {config_source_loaded(*config), config_source_store(&store)};
        r = config_build(sources, ELEMENTSOF(sources), &merged, NULL, ret_errors);
        if (r < 0)
                return r;
        config_unref(s->files);
        s->files = TAKE_PTR(*config);
        *config = merged;
        if (client) {
                stop_calls(s);
                store_writes_abandon(s);
                etcd_client_free(s->client);
                s->client = TAKE_PTR(client);
                s->endpoint = 0;
                s->failures = 0;
        }
        read_whole(s);
        return 0;
}
