/* SPDX-License-Identifier: MIT */
/* The prober's thread and schedule: which addresses are probed (the model's nodes, each name's
 * current answer), when, how many at once, and what each result means for the node. One
 * probe's connection is health-probe-conn.c. Everything here runs on the prober's thread but
 * for start, the wake-up and stop. */
#include <arpa/inet.h>
#include <assert.h>
#include <event2/event_struct.h>
#include <pthread.h>

#include "base/hashmap.h"
#include "base/log.h"
#include "base/thread-sched.h"
#include "base/wake.h"
#include "lb/health.h"
#include "lb/model.h"
#include "net/resolver.h"
#include "proxy/health-probe-conn.h"
#include "proxy/health-probe-wheel.h"
#include "proxy/health-probe.h"
#include "tls/tls.h"

/* How often the names of probed nodes are looked at for a new answer. */
#define PROBER_DNS_CHECK_USEC USEC_PER_SEC
#define PROBER_DEFAULT_INTERVAL_USEC USEC_PER_SEC
#define PROBER_DEFAULT_TIMEOUT_USEC USEC_PER_SEC
#define PROBER_DEFAULT_CONCURRENCY 10

typedef struct ProbeTarget ProbeTarget;

/* An upstream with active checks, as the current model has it. */
typedef struct ProbeUpstream {
        char *name;
        Upstream *u;    /* in the prober's model */
        TlsClient *tls; /* a reference: what its probes handshake with, or NULL */
        bool tls_failed; /* no TlsClient could be made for it: not probed */
        unsigned in_flight;
        ProbeTarget *wait_head, *wait_tail; /* due, waiting for a place */
        unsigned seen;  /* the sync that found it */
} ProbeUpstream;

/* A node with probed addresses: whether another of them is up decides what a failure of one
 * means for the node. */
typedef struct ProbeNode {
        char *key; /* upstream NUL node: its length is key_len, not strlen() */
        size_t key_len;
        unsigned n_targets, n_down;
} ProbeNode;

struct ProbeTarget {
        char *key; /* upstream NUL node NUL address */
        size_t key_len;
        HealthProber *prober;
        ProbeUpstream *pu;
        ProbeNode *pn;
        Node *node; /* in the prober's model */
        struct sockaddr_storage sa;
        socklen_t sa_len;
        char text[SOCKADDR_STR_MAX];
        uint64_t addr_hash;
        bool multi; /* its node has several addresses: counted here, skipped when down */
        AddressCounters counters;
        char *request; /* NULL: tcp. HTTP/1.1 keep-alive */
        size_t request_len;
        char *request_close; /* the same with `Connection: close` */
        size_t request_close_len;
        char *session_key;
        TlsClient *tls; /* what its connection was made with (pu->tls when made) */
        ProbeWheelEntry due; /* when it is probed next */
        Probe *probe;   /* its connection; made at the first probe */
        bool probing;   /* a probe runs */
        uint64_t due_usec; /* when its probe is due: the wheel has it on its start grid */
        bool waiting;
        ProbeTarget *wait_next;
        unsigned seen;
};

/* A node's name and the answer its targets were made from. */
typedef struct ProbeName {
        Node *node;
        AddressList *addresses; /* a reference, or NULL (no answer yet) */
} ProbeName;

struct HealthProber {
        HealthProberOptions o;
        struct event_base *base;
        pthread_t thread;
        bool has_thread;
        Wake wake; /* a new model to take, or the stop */
        struct event *dns_timer;
        atomic_bool stopping;
        unsigned generation;
        Model *model; /* a reference */
        Hashmap *targets, *upstreams, *nodes;
        ProbeName *names;
        size_t n_names;
        unsigned sync; /* counts the syncs, to find what one did not see */
        unsigned in_flight;
        bool global_full; /* a target waited for the global limit */
        uint64_t rng;
        ProbeWheel wheel; /* the targets' schedule (set up with base) */
};

static uint64_t next_random(HealthProber *p)
{
        /* xorshift64: spreading probes needs no more. */
        p->rng ^= p->rng << 13;
        p->rng ^= p->rng >> 7;
        p->rng ^= p->rng << 17;
        return p->rng;
}

static const ConfigHealthActive *active_of(const ProbeUpstream *pu)
{
        return &pu->u->config->health_check.active;
}

static uint64_t or_default(uint64_t v, uint64_t d)
{
        return v ? v : d;
}

static uint64_t target_interval(const ProbeTarget *t)
{
        const ConfigHealthActive *a = active_of(t->pu);
        bool down = t->multi ? t->counters.down : node_is_down(t->node);
        return or_default(down ? a->unhealthy.interval_usec : a->healthy.interval_usec,
                          PROBER_DEFAULT_INTERVAL_USEC);
}

/* Probes start on a grid of a tenth of their interval, in whole steps of the wheel, 10 to
 * 100 ms (1 s: 100 ms): the probes of a stretch of the grid start in one wake-up of the prober's
 * thread, and their results are looked at in the next (health-probe-step.c), where a grid of
 * one step took a wake-up for every step. A wake-up is dear, the more so for what it finds
 * cold (in this project's VM 30 µs of the thread's CPU for an epoll_wait that slept 10 ms, and
 * a step of tcp checks about 100 µs more than its checks; 1,000 probes a second on a 10 ms
 * grid made 110 steps a second, on a 50 ms grid 45, on this one 23: tests/bench/RESULTS.md),
 * and a start up to a tenth of its interval early is not (HAProxy's spread-checks moves its
 * checks by up to half). */
#define PROBE_START_GRID_MAX_USEC (10 * PROBE_TICK_USEC)

static uint64_t start_grid(uint64_t interval_usec)
{
        uint64_t g = interval_usec / 10 / PROBE_TICK_USEC * PROBE_TICK_USEC;
        return g < PROBE_TICK_USEC ? PROBE_TICK_USEC
               : g > PROBE_START_GRID_MAX_USEC ? PROBE_START_GRID_MAX_USEC
                                                : g;
}

/* Due at `at` (CLOCK_MONOTONIC), started at the last point of its grid before then (early, not
 * late: a node's failure is found as soon as with probes at exact times, within interval ×
 * threshold + timeout). The next probe is due an interval after this `at`, not after the grid's
 * point or the actual start: no drift, one probe per interval on average. */
static void arm_at(ProbeTarget *t, uint64_t at, uint64_t interval_usec)
{
        uint64_t g = start_grid(interval_usec);
        t->due_usec = at;
        probe_wheel_add_at(&t->prober->wheel, &t->due, at / g * g);
}

/* The next probe: an interval after the last was due, whatever it took; now if that is past. */
static void arm_next(ProbeTarget *t)
{
        uint64_t interval = target_interval(t);
        uint64_t now = now_usec(CLOCK_MONOTONIC), at = t->due_usec + interval;
        arm_at(t, at > now ? at : now, interval);
}

static void unqueue(ProbeTarget *t)
{
        if (!t->waiting)
                return;
        ProbeUpstream *pu = t->pu;
        ProbeTarget **link = &pu->wait_head, *prev = NULL;
        while (*link && *link != t) {
                prev = *link;
                link = &(*link)->wait_next;
        }
        assert(*link == t);
        *link = t->wait_next;
        if (pu->wait_tail == t)
                pu->wait_tail = prev;
        t->wait_next = NULL;
        t->waiting = false;
}

static void target_free(ProbeTarget *t)
{
        HealthProber *p = t->prober;
        unqueue(t);
        if (t->probing) {
                t->pu->in_flight--;
                p->in_flight--;
        }
        t->probe = probe_free(t->probe);
        probe_wheel_del(&p->wheel, &t->due);
        if (t->counters.down) {
                t->pn->n_down--;
                if (t->node)
                        (void)node_address_mark_up(&t->node->state->address_health,
                                                   t->addr_hash);
        }
        if (--t->pn->n_targets == 0) {
                hashmap_remove(p->nodes, t->pn->key, t->pn->key_len);
                free(t->pn->key);
                free(t->pn);
        }
        free(t->key);
        free(t->request);
        free(t->request_close);
        free(t->session_key);
        free(t);
}

/* ---- results ---- */

static HealthEvent event_of(const ProbeTarget *t, const ProbeResult *r)
{
        if (r->error == -ETIMEDOUT)
                return HEALTH_EVENT_TIMEOUT;
        if (r->error < 0)
                return HEALTH_EVENT_TCP_FAILURE;
        if (!t->request)
                return HEALTH_EVENT_SUCCESS;
        int ev = health_classify_status(&t->pu->u->config->health_check, HEALTH_SOURCE_ACTIVE,
                                        r->status);
        return ev < 0 ? _HEALTH_EVENT_MAX : (HealthEvent)ev;
}

static AddressEvent address_event(HealthEvent ev)
{
        switch (ev) {
        case HEALTH_EVENT_SUCCESS:
                return ADDRESS_SUCCESS;
        case HEALTH_EVENT_HTTP_FAILURE:
                return ADDRESS_HTTP_FAILURE;
        case HEALTH_EVENT_TCP_FAILURE:
                return ADDRESS_TCP_FAILURE;
        case HEALTH_EVENT_TIMEOUT:
                return ADDRESS_TIMEOUT;
        default:
                assert(!"no address event for this health event");
                return ADDRESS_TCP_FAILURE;
        }
}

/* A node with several addresses is up while one is: an address's failure counts against the
 * node only when no other address is up. */
static HealthEvent count_address(ProbeTarget *t, HealthEvent ev)
{
        int change = address_counters_report(&t->counters, active_of(t->pu), address_event(ev));
        NodeAddressHealth *h = &t->node->state->address_health;
        if (change < 0) {
                t->pn->n_down++;
                if (node_address_mark_down(h, t->addr_hash) < 0)
                        log_warning("Upstream '%s': node %s has more addresses down than are "
                                    "marked; %s is still used", t->pu->name, t->node->name,
                                    t->text);
                log_notice("Upstream '%s': address %s of node %s is down", t->pu->name, t->text,
                           t->node->name);
        } else if (change > 0) {
                t->pn->n_down--;
                (void)node_address_mark_up(h, t->addr_hash);
                log_notice("Upstream '%s': address %s of node %s is up again", t->pu->name,
                           t->text, t->node->name);
        }
        unsigned others_up = t->pn->n_targets - t->pn->n_down - (t->counters.down ? 0 : 1);
        return ev != HEALTH_EVENT_SUCCESS && others_up > 0 ? HEALTH_EVENT_SUCCESS : ev;
}

static void report(ProbeTarget *t, const ProbeResult *r)
{
        HealthEvent ev = event_of(t, r);
        if (ev == _HEALTH_EVENT_MAX)
                return; /* a status in neither list moves nothing */
        HealthEvent node_ev = t->multi ? count_address(t, ev) : ev;
        Upstream *u = t->pu->u;
        HealthChange c = node_health_report(t->node, u, HEALTH_SOURCE_ACTIVE, node_ev);
        if (c == HEALTH_UNCHANGED || !t->prober->o.node_health_changed)
                return;
        char why[512];
        if (ev == HEALTH_EVENT_HTTP_FAILURE)
                snprintf(why, sizeof(why), "active check of %s: status %u", t->text, r->status);
        else
                snprintf(why, sizeof(why), "active check of %s: %s", t->text,
                         r->detail ? r->detail : strerror(-r->error));
        t->prober->o.node_health_changed(t->prober->o.userdata, u, t->node,
                                         c == HEALTH_WENT_DOWN ? why : NULL);
}

/* ---- the schedule ---- */

static void start_waiting(HealthProber *p, ProbeUpstream *pu);
static void target_start(ProbeTarget *t);

static void on_probe_done(Probe *probe, const ProbeResult *r, void *userdata)
{
        ProbeTarget *t = userdata;
        HealthProber *p = t->prober;
        assert(t->probe == probe && t->probing);
        t->probing = false;
        t->pu->in_flight--;
        p->in_flight--;
        if (r->stale) {
                /* The server closed the kept connection as the request went out: again, on a
                 * new one (which is not kept, so this happens once). */
                target_start(t);
                return;
        }
        report(t, r);

        arm_next(t);
        start_waiting(p, t->pu);
}

static void target_start(ProbeTarget *t)
{
        HealthProber *p = t->prober;
        const ConfigHealthActive *a = active_of(t->pu);
        /* Kept alive when the next probe comes before the server likely drops the connection. */
        bool keep = t->request && target_interval(t) <= PROBE_KEEPALIVE_IDLE_MAX;
        ProbeSpec spec = {
                .sa = (const struct sockaddr *)&t->sa,
                .sa_len = t->sa_len,
                .tls = t->pu->tls,
                .server_name = t->node->server_name,
                .session_key = t->session_key,
                .request = keep ? t->request : t->request_close,
                .request_len = keep ? t->request_len : t->request_close_len,
                .keep_alive = keep,
                .timeout_usec = or_default(a->timeout_usec, PROBER_DEFAULT_TIMEOUT_USEC),
        };
        int r = t->probe ? 0 : probe_new(p->base, &p->wheel, on_probe_done, t, &t->probe);
        if (r >= 0)
                r = probe_start(t->probe, &spec);
        if (r < 0) {
                /* Out of descriptors or memory: lbproxy's trouble, not the node's. */
                log_warning_errno(r, "Upstream '%s': cannot probe %s: %m", t->pu->name,
                                  t->text);
                arm_next(t);
                return;
        }
        t->probing = true;
        t->pu->in_flight++;
        p->in_flight++;
}

static bool has_room(const HealthProber *p, const ProbeUpstream *pu)
{
        unsigned c = active_of(pu)->concurrency;
        return p->in_flight < PROBER_MAX_IN_FLIGHT &&
               pu->in_flight < (c ? c : PROBER_DEFAULT_CONCURRENCY);
}

static int start_waiting_of(const char *key, size_t key_len, void *value, void *userdata)
{
        HealthProber *p = userdata;
        ProbeUpstream *pu = value;
        while (pu->wait_head && has_room(p, pu)) {
                ProbeTarget *t = pu->wait_head;
                unqueue(t);
                target_start(t);
        }
        return p->in_flight < PROBER_MAX_IN_FLIGHT ? 0 : 1;
}

/* A place came free in `pu` and in all: its own waiting first, then, when the global limit
 * held others back, theirs. */
static void start_waiting(HealthProber *p, ProbeUpstream *pu)
{
        (void)start_waiting_of(NULL, 0, pu, p);
        if (p->global_full && p->in_flight < PROBER_MAX_IN_FLIGHT) {
                p->global_full = false;
                if (hashmap_foreach(p->upstreams, start_waiting_of, p) != 0)
                        p->global_full = true;
        }
}

static void on_target_due(ProbeWheelEntry *e)
{
        ProbeTarget *t = (ProbeTarget *)((char *)e - offsetof(ProbeTarget, due));
        HealthProber *p = t->prober;
        assert(!t->probing);
        if (node_admin_state(t->node) == NODE_ADMIN_MAINT) {
                arm_next(t);
                return;
        }
        if (has_room(p, t->pu)) {
                target_start(t);
                return;
        }
        if (p->in_flight >= PROBER_MAX_IN_FLIGHT)
                p->global_full = true;
        t->waiting = true;
        if (t->pu->wait_tail)
                t->pu->wait_tail->wait_next = t;
        else
                t->pu->wait_head = t;
        t->pu->wait_tail = t;
}

/* ---- what is probed: the model's targets ---- */

static const char *probe_host(const Upstream *u, const Node *n)
{
        const ConfigUpstream *cu = u->config;
        if (cu->health_check.active.host)
                return cu->health_check.active.host;
        if (cu->pass_host == PASS_HOST_REWRITE && cu->upstream_host)
                return cu->upstream_host;
        return n->host_header;
}

/* The request ends `Connection: close` when asked; else HTTP/1.1 keeps the connection. */
static int format_request(ProbeTarget *t, bool close, char **ret, size_t *ret_len)
{
        const ConfigHealthActive *a = active_of(t->pu);
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (!f)
                return -ENOMEM;
        fprintf(f, "GET %s HTTP/1.1\r\nHost: %s\r\n", a->http_path ? a->http_path : "/",
                probe_host(t->pu->u, t->node));
        for (char **h = a->headers; h && *h; h++)
                fprintf(f, "%s\r\n", *h);
        if (close)
                fputs("Connection: close\r\n", f);
        fputs("\r\n", f);
        if (fclose(f) != 0) {
                free(buf);
                return -ENOMEM;
        }
        *ret = buf;
        *ret_len = len;
        return 0;
}

static bool same_text(const char *a, const char *b)
{
        return a == b || (a && b && streq(a, b));
}

/* The target's requests as its upstream's configuration has them now; a change closes the
 * connection kept for the old ones. */
static int make_request(ProbeTarget *t)
{
        _cleanup_free_ char *request = NULL, *request_close = NULL;
        size_t len = 0, close_len = 0;
        if (active_of(t->pu)->type != HEALTH_CHECK_TCP) {
                int r = format_request(t, false, &request, &len);
                if (r >= 0)
                        r = format_request(t, true, &request_close, &close_len);
                if (r < 0)
                        return r;
        }
        if (same_text(request, t->request) && same_text(request_close, t->request_close))
                return 0;
        if (t->probe)
                probe_forget(t->probe);
        free(t->request);
        free(t->request_close);
        t->request = TAKE_PTR(request);
        t->request_len = len;
        t->request_close = TAKE_PTR(request_close);
        t->request_close_len = close_len;
        return 0;
}

static int upstream_sync(HealthProber *p, Upstream *u, ProbeUpstream **ret)
{
        const ConfigUpstream *cu = u->config;
        ProbeUpstream *pu = hashmap_get(p->upstreams, cu->name, strlen(cu->name));
        if (!pu) {
                pu = calloc(1, sizeof(*pu));
                if (!pu || !(pu->name = strdup(cu->name)) ||
                    hashmap_put(p->upstreams, pu->name, strlen(pu->name), pu) < 0) {
                        if (pu)
                                free(pu->name);
                        free(pu);
                        return -ENOMEM;
                }
        }
        pu->seen = p->sync;
        if (pu->u == u) { /* unchanged: its TLS too (or its failure, said once) */
                *ret = pu;
                return 0;
        }
        /* New or changed: its TLS as it is now. */
        pu->u = u;
        pu->tls = tls_client_free(pu->tls);
        pu->tls_failed = false;
        const ConfigHealthActive *a = &cu->health_check.active;
        bool tls = a->type == HEALTH_CHECK_HTTPS ||
                   (a->type == HEALTH_CHECK_TCP && cu->scheme == SCHEME_HTTPS);
        if (tls && u->tls && a->verify != 0)
                pu->tls = tls_client_ref(u->tls);
        else if (tls) {
                /* Not an https upstream, or its probes do not verify: a client of their own,
                 * trusting what the upstream trusts. */
                TlsClientPolicy policy = { .upstream = cu->name,
                                           .ca_file = cu->tls.ca_file,
                                           .verify = cu->tls.verify && a->verify != 0 };
                _cleanup_free_ char *error = NULL;
                int r = tls_client_new(&policy, &pu->tls, &error);
                if (r < 0) {
                        log_error("Upstream '%s': its health checks cannot use TLS, not "
                                  "probed: %s", cu->name, error ? error : strerror(-r));
                        pu->tls_failed = true;
                }
        }
        *ret = pu;
        return 0;
}

static int target_sync(HealthProber *p, ProbeUpstream *pu, Node *n,
                       const struct sockaddr_storage *ip, bool multi)
{
        const ConfigHealthActive *a = active_of(pu);
        struct sockaddr_storage sa = *ip;
        uint16_t port = a->port ? a->port : n->port;
        socklen_t sa_len;
        if (sa.ss_family == AF_INET6) {
                ((struct sockaddr_in6 *)&sa)->sin6_port = htons(port);
                sa_len = sizeof(struct sockaddr_in6);
        } else {
                ((struct sockaddr_in *)&sa)->sin_port = htons(port);
                sa_len = sizeof(struct sockaddr_in);
        }
        char text[SOCKADDR_STR_MAX];
        sockaddr_to_string((struct sockaddr *)&sa, text, sizeof(text));

        _cleanup_free_ char *key = NULL;
        int k = asprintf(&key, "%s%c%s%c%s", pu->name, 0, n->name, 0, text);
        if (k < 0)
                return -ENOMEM;
        size_t key_len = (size_t)k;
        ProbeTarget *t = hashmap_get(p->targets, key, key_len);
        if (!t) {
                size_t node_key_len = strlen(pu->name) + 1 + strlen(n->name);
                ProbeNode *pn = hashmap_get(p->nodes, key, node_key_len);
                if (!pn) {
                        pn = calloc(1, sizeof(*pn));
                        if (pn)
                                pn->key_len = node_key_len;
                        if (!pn || !(pn->key = memdup(key, node_key_len + 1)) ||
                            hashmap_put(p->nodes, pn->key, node_key_len, pn) < 0) {
                                if (pn)
                                        free(pn->key);
                                free(pn);
                                return -ENOMEM;
                        }
                }
                t = calloc(1, sizeof(*t));
                if (!t)
                        return -ENOMEM;
                t->prober = p;
                t->pn = pn;
                pn->n_targets++;
                t->pu = pu;
                t->key = TAKE_PTR(key);
                t->key_len = key_len;
                t->due.due = on_target_due;
                if (hashmap_put(p->targets, t->key, t->key_len, t) < 0) {
                        target_free(t);
                        return -ENOMEM;
                }
                /* Somewhere in its first interval: a thousand new nodes do not go at once. */
                uint64_t interval = or_default(a->healthy.interval_usec,
                                               PROBER_DEFAULT_INTERVAL_USEC);
                arm_at(t, now_usec(CLOCK_MONOTONIC) + next_random(p) % interval, interval);
        }
        assert(t->pu == pu);
        t->seen = p->sync;
        t->node = n;
        t->sa = sa;
        t->sa_len = sa_len;
        memcpy(t->text, text, sizeof(text));
        t->addr_hash = node_address_hash(ip);
        if (t->multi && !multi && t->counters.down)
                /* Alone now: the node's own health says it; no address is skipped. */
                (void)node_address_mark_up(&n->state->address_health, t->addr_hash);
        else if (!t->multi && multi && t->counters.down)
                (void)node_address_mark_down(&n->state->address_health, t->addr_hash);
        t->multi = multi;
        _cleanup_free_ char *session_key = NULL;
        if (pu->tls && asprintf(&session_key, "probe|%s|%s|%s", tls_client_policy_id(pu->tls),
                                n->server_name, text) < 0)
                return -ENOMEM;
        if (pu->tls != t->tls || !same_text(session_key, t->session_key)) {
                /* Another TLS policy or server name: not the connection kept for the old. */
                if (t->probe)
                        probe_forget(t->probe);
                t->tls = pu->tls;
                free(t->session_key);
                t->session_key = TAKE_PTR(session_key);
        }
        return make_request(t);
}

static int node_sync(HealthProber *p, ProbeUpstream *pu, Node *n)
{
        if (n->is_literal)
                return target_sync(p, pu, n, &n->literal.sa, false);
        if (!n->dns)
                return 0;
        ProbeName *names = realloc(p->names, (p->n_names + 1) * sizeof(*names));
        if (!names)
                return -ENOMEM;
        p->names = names;
        int error;
        AddressList *l = resolved_name_addresses(n->dns, &error);
        p->names[p->n_names++] = (ProbeName){ .node = n, .addresses = l };
        for (size_t i = 0; l && i < l->n; i++) {
                int r = target_sync(p, pu, n, &l->addrs[i], l->n > 1);
                if (r < 0)
                        return r;
        }
        return 0;
}

static void forget_names(HealthProber *p)
{
        for (size_t i = 0; i < p->n_names; i++)
                address_list_unref(p->names[i].addresses);
        p->names = mfree(p->names);
        p->n_names = 0;
}

static int sweep_target(const char *key, size_t key_len, void *value, void *userdata)
{
        ProbeTarget *t = value;
        HealthProber *p = userdata;
        if (t->seen != p->sync) {
                hashmap_remove(p->targets, t->key, t->key_len);
                target_free(t);
        }
        return 0;
}

static int sweep_upstream(const char *key, size_t key_len, void *value, void *userdata)
{
        ProbeUpstream *pu = value;
        HealthProber *p = userdata;
        if (pu->seen != p->sync) {
                assert(!pu->wait_head && pu->in_flight == 0); /* its targets went first */
                hashmap_remove(p->upstreams, pu->name, strlen(pu->name));
                tls_client_free(pu->tls);
                free(pu->name);
                free(pu);
        }
        return 0;
}

/* Makes the targets those of the model and its names' answers now: the ones still there keep
 * their schedule and counters, new ones are added, the rest go. */
static void sync_targets(HealthProber *p)
{
        p->sync++;
        forget_names(p);
        for (size_t i = 0; i < p->model->n_upstreams; i++) {
                Upstream *u = p->model->upstreams[i];
                if (!u->config->health_check.active.enabled)
                        continue;
                ProbeUpstream *pu;
                int r = upstream_sync(p, u, &pu);
                for (size_t j = 0; r >= 0 && !pu->tls_failed && j < u->n_nodes; j++)
                        if (node_admin_state(&u->nodes[j]) != NODE_ADMIN_MAINT)
                                r = node_sync(p, pu, &u->nodes[j]);
                if (r < 0)
                        log_error_errno(r, "Upstream '%s': not all of its nodes are probed: %m",
                                        u->config->name);
        }
        /* Removing during the walk leaves a tombstone, and moves nothing. */
        (void)hashmap_foreach(p->targets, sweep_target, p);
        (void)hashmap_foreach(p->upstreams, sweep_upstream, p);
}

DEFINE_TRIVIAL_CLEANUP_FUNC(HealthProber *, health_prober_stop);

static void take_model(HealthProber *p)
{
        Model *m = model_publisher_get_newer(p->o.models, &p->generation);
        if (!m)
                return;
        Model *old = p->model;
        p->model = m;
        sync_targets(p);
        /* After the targets let go of its nodes. Freed on the control thread (model.h). */
        model_unref(old);
}

/* A name whose answer changed since the targets were made: its addresses are synced. Cheap
 * when none did (a pointer compared per name). */
static void on_dns_timer(evutil_socket_t fd, short what, void *userdata)
{
        HealthProber *p = userdata;
        for (size_t i = 0; i < p->n_names; i++) {
                int error;
                AddressList *l = resolved_name_addresses(p->names[i].node->dns, &error);
                bool changed = l != p->names[i].addresses;
                address_list_unref(l);
                if (changed) {
                        sync_targets(p);
                        break;
                }
        }
}

static void on_wake(evutil_socket_t fd, short what, void *userdata)
{
        HealthProber *p = userdata;
        if (atomic_load(&p->stopping)) {
                event_base_loopbreak(p->base);
                return;
        }
        take_model(p);
}

static void *run(void *userdata)
{
        HealthProber *p = userdata;
        /* Below the workers, as the control thread (base/thread-sched.h), whichever made it. */
        (void)thread_lower_priority(THREAD_CONTROL_NICE);
        if (p->o.log_queue >= 0)
                log_attach((size_t)p->o.log_queue);
        take_model(p);
        event_base_dispatch(p->base);
        return NULL;
}

bool health_prober_wanted(const Model *m)
{
        for (size_t i = 0; i < m->n_upstreams; i++)
                if (m->upstreams[i]->config->health_check.active.enabled)
                        return true;
        return false;
}

static int free_target(const char *key, size_t key_len, void *value, void *userdata)
{
        target_free(value);
        return 0;
}

static int free_upstream(const char *key, size_t key_len, void *value, void *userdata)
{
        ProbeUpstream *pu = value;
        tls_client_free(pu->tls);
        free(pu->name);
        free(pu);
        return 0;
}

HealthProber *health_prober_stop(HealthProber *p)
{
        if (!p)
                return NULL;
        if (p->has_thread) {
                atomic_store(&p->stopping, true);
                wake_signal(&p->wake);
                pthread_join(p->thread, NULL);
        }
        /* The thread is gone: its objects are this thread's now. */
        if (p->targets)
                (void)hashmap_foreach(p->targets, free_target, NULL);
        if (p->upstreams)
                (void)hashmap_foreach(p->upstreams, free_upstream, NULL);
        hashmap_free(p->targets);
        hashmap_free(p->upstreams);
        hashmap_free(p->nodes);
        forget_names(p);
        model_unref(p->model);
        wake_done(&p->wake);
        if (p->dns_timer)
                event_free(p->dns_timer);
        if (p->base) {
                probe_wheel_done(&p->wheel);
                event_base_free(p->base);
        }
        free(p);
        return NULL;
}

int health_prober_start(const HealthProberOptions *o, HealthProber **ret)
{
        _cleanup_(health_prober_stopp) HealthProber *p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->wake.fd = -EBADF;
        p->o = *o;
        p->rng = now_usec(CLOCK_MONOTONIC) | 1;
        p->base = event_base_new();
        p->targets = hashmap_new();
        p->upstreams = hashmap_new();
        p->nodes = hashmap_new();
        if (!p->base || !p->targets || !p->upstreams || !p->nodes)
                return -ENOMEM;
        probe_wheel_init(&p->wheel, p->base);
        int r = wake_init(&p->wake, p->base, on_wake, p);
        if (r < 0)
                return r;
        p->dns_timer = event_new(p->base, -1, EV_PERSIST, on_dns_timer, p);
        if (!p->dns_timer)
                return -ENOMEM;
        struct timeval tv = { .tv_sec = PROBER_DNS_CHECK_USEC / USEC_PER_SEC };
        event_add(p->dns_timer, &tv);

        r = -pthread_create(&p->thread, NULL, run, p);
        if (r < 0)
                return r;
        p->has_thread = true;
        (void)pthread_setname_np(p->thread, "lbproxy-probe");
        *ret = TAKE_PTR(p);
        return 0;
}

void health_prober_model_changed(HealthProber *p)
{
        if (p)
                wake_signal(&p->wake);
}
