/* SPDX-License-Identifier: MIT */
#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>

#include "lb/metrics.h"
#include "lb/model.h"
#include "lb/registry.h"
#include "lb/stats.h"

typedef enum SlotKind {
        SLOT_NONE,
        SLOT_ROUTE,
        SLOT_UPSTREAM,
        SLOT_NODE,
} SlotKind;

/* What the model calls the registry slot s (at info[s]). */
typedef struct SlotInfo {
        SlotKind kind;
        const char *name;      /* the route's, the upstream's, the node's "host:port" */
        uint32_t upstream;     /* a node's upstream's slot + 1 */
} SlotInfo;

typedef struct Scrape {
        const MetricsInput *in;
        const StatsBuckets *buckets;
        SlotInfo *info;
        size_t n_info;
        StatsTable sum; /* every worker's keys, summed; this thread's alone */
        /* The summed keys by kind, so that each family walks its own. */
        struct {
                uint64_t key;
                const atomic_uint_fast64_t *cells;
        } *by_kind[_STATS_KIND_MAX];
        size_t n_by_kind[_STATS_KIND_MAX];
        MetricsText *f;
        char le[STATS_BUCKETS_MAX][24]; /* the buckets' bounds as written */
        int error;
        int family; /* the one being written, in families[] */
} Scrape;

static void info_set(Scrape *s, const RegistryEntry *e, SlotKind kind, const char *name,
                     uint32_t upstream)
{
        assert(e->slot < s->n_info);
        s->info[e->slot] = (SlotInfo){ .kind = kind, .name = name, .upstream = upstream };
}

static int info_build(Scrape *s)
{
        const Model *m = s->in->model;
        uint32_t max = 0;
        for (size_t i = 0; i < m->n_routes; i++)
                max = m->routes[i]->state->slot > max ? m->routes[i]->state->slot : max;
        for (size_t i = 0; i < m->n_upstreams; i++) {
                const Upstream *u = m->upstreams[i];
                max = u->state->slot > max ? u->state->slot : max;
                for (size_t k = 0; k < u->n_nodes; k++)
                        max = u->nodes[k].state->slot > max ? u->nodes[k].state->slot : max;
        }
        s->n_info = (size_t)max + 1;
        s->info = calloc(s->n_info, sizeof(SlotInfo));
        if (!s->info)
                return -ENOMEM;
        for (size_t i = 0; i < m->n_routes; i++)
                info_set(s, m->routes[i]->state, SLOT_ROUTE, m->routes[i]->config->name, 0);
        for (size_t i = 0; i < m->n_upstreams; i++) {
                const Upstream *u = m->upstreams[i];
                info_set(s, u->state, SLOT_UPSTREAM, u->config->name, 0);
                for (size_t k = 0; k < u->n_nodes; k++)
                        info_set(s, u->nodes[k].state, SLOT_NODE, u->nodes[k].name,
                                 u->state->slot + 1);
        }
        return 0;
}

/* The slot + 1 `v`, if the model has it as `kind`; 0 stays 0 (none). */
static const SlotInfo *slot_info(const Scrape *s, uint32_t v)
{
        static const SlotInfo none = { .kind = SLOT_NONE, .name = "" };
        if (v == 0)
                return &none;
        return v - 1 < s->n_info ? &s->info[v - 1] : NULL;
}

static bool slot_is(const Scrape *s, uint32_t v, SlotKind kind)
{
        const SlotInfo *i = slot_info(s, v);
        return i && (i->kind == kind || (v == 0 && kind != SLOT_NODE));
}

/* The key as the scrape shows it, or 0 to leave it out. */
static uint64_t key_shown(const Scrape *s, uint64_t key)
{
        StatsKind kind = stats_key_kind(key);
        uint32_t a = stats_key_a(key), b = stats_key_b(key);
        bool node_labels = s->in->node_labels;

        switch (kind) {
        case STATS_REQUESTS:
                if (!slot_is(s, a, SLOT_ROUTE))
                        return 0;
                if (b & STATS_B_UPSTREAM) {
                        if (!slot_is(s, b & ~STATS_B_UPSTREAM, SLOT_UPSTREAM))
                                return 0;
                } else if (b != 0) {
                        if (!slot_is(s, b, SLOT_NODE))
                                return 0;
                        if (!node_labels)
                                b = slot_info(s, b)->upstream | STATS_B_UPSTREAM;
                }
                return stats_key(kind, a, b, stats_key_code(key));
        case STATS_ROUTE:
                return slot_is(s, a, SLOT_ROUTE) && slot_is(s, b, SLOT_UPSTREAM) ? key : 0;
        case STATS_NODE:
                if (!slot_is(s, b, SLOT_NODE))
                        return 0;
                return node_labels ? key : stats_key(kind, 0, slot_info(s, b)->upstream, 0);
        case STATS_LISTENER:
                return a >= 1 && a <= s->in->n_listeners && slot_is(s, b, SLOT_UPSTREAM) ? key : 0;
        case STATS_WORKER:
                return key;
        default:
                return 0;
        }
}

static void add_worker_key(uint64_t key, const atomic_uint_fast64_t *cells, void *userdata)
{
        Scrape *s = userdata;
        uint64_t k = key_shown(s, key);
        if (!k || s->error)
                return;
        atomic_uint_fast64_t *sum = stats_table_get(&s->sum, k);
        if (!sum) {
                s->error = -ENOMEM;
                return;
        }
        size_t n = stats_kind_cells(stats_key_kind(k), s->buckets);
        for (size_t i = 0; i < n; i++)
                stats_add(sum, i, atomic_load_explicit(&cells[i], memory_order_relaxed));
}

static void count_kind(uint64_t key, const atomic_uint_fast64_t *cells, void *userdata)
{
        Scrape *s = userdata;
        s->n_by_kind[stats_key_kind(key)]++;
}

static void put_kind(uint64_t key, const atomic_uint_fast64_t *cells, void *userdata)
{
        Scrape *s = userdata;
        StatsKind k = stats_key_kind(key);
        s->by_kind[k][s->n_by_kind[k]].key = key;
        s->by_kind[k][s->n_by_kind[k]++].cells = cells;
}

static int sort_by_kind(Scrape *s)
{
        stats_table_foreach(&s->sum, count_kind, s);
        for (size_t k = 0; k < _STATS_KIND_MAX; k++) {
                s->by_kind[k] = calloc(s->n_by_kind[k] ? s->n_by_kind[k] : 1,
                                       sizeof(*s->by_kind[k]));
                if (!s->by_kind[k])
                        return -ENOMEM;
                s->n_by_kind[k] = 0;
        }
        stats_table_foreach(&s->sum, put_kind, s);
        return 0;
}

bool metrics_text_grow(MetricsText *t, size_t n)
{
        if (t->failed)
                return false;
        size_t cap = t->cap ? t->cap : 65536;
        while (cap - t->len <= n)
                cap *= 2;
        char *b = realloc(t->buf, cap);
        if (!b) {
                t->failed = true;
                return false;
        }
        t->buf = b;
        t->cap = cap;
        return true;
}


void metrics_text_printf(MetricsText *t, const char *fmt, ...)
{
        char buf[4096];
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        /* Every caller writes a line of names and numbers. */
        assert(n >= 0 && (size_t)n < sizeof(buf));
        if (n > 0)
                metrics_text_add(t, buf, (size_t)n);
}

void metrics_text_u64(MetricsText *t, uint64_t v)
{
        char buf[24];
        char *p = buf + sizeof(buf);
        do
                *--p = (char)('0' + v % 10);
        while (v /= 10);
        metrics_text_add(t, p, (size_t)(buf + sizeof(buf) - p));
}

void metrics_text_done(MetricsText *t)
{
        t->buf = mfree(t->buf);
        t->len = t->cap = 0;
        t->failed = false;
}

void metrics_write_seconds(MetricsText *f, uint64_t usec)
{
        uint64_t frac = usec % USEC_PER_SEC;
        metrics_text_printf(f, "%" PRIu64, usec / USEC_PER_SEC);
        if (frac == 0)
                return;
        char digits[8];
        snprintf(digits, sizeof(digits), "%06" PRIu64, frac);
        for (int i = 5; i >= 0 && digits[i] == '0'; i--)
                digits[i] = '\0';
        metrics_text_printf(f, ".%s", digits);
}

static void header(MetricsText *f, const char *name, const char *type, const char *help)
{
        metrics_text_printf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A series' labels, formatted once per key. Names are checked by the configuration (at most
 * 255 characters of [A-Za-z0-9_.-], hosts at most 253): they fit, even escaped. */
typedef struct Labels {
        char buf[2048];
        size_t len;
} Labels;

static void labels_add(Labels *l, const char *s)
{
        size_t n = strlen(s);
        assert(l->len + n < sizeof(l->buf));
        memcpy(l->buf + l->len, s, n);
        l->len += n;
}

/* A label value: backslash, quote and newline escaped. */
static void labels_add_value(Labels *l, const char *s)
{
        for (; *s; s++) {
                assert(l->len + 2 < sizeof(l->buf));
                if (*s == '\\' || *s == '"' || *s == '\n') {
                        l->buf[l->len++] = '\\';
                        l->buf[l->len++] = *s == '\n' ? 'n' : *s;
                } else
                        l->buf[l->len++] = *s;
        }
}

static void labels_pair(Labels *l, const char *name, const char *value)
{
        if (l->len > 0)
                labels_add(l, ",");
        labels_add(l, name);
        labels_add(l, "=\"");
        labels_add_value(l, value);
        labels_add(l, "\"");
}

/* The labels of a key's series, without braces. */
static void format_labels(const Scrape *s, uint64_t key, Labels *l)
{
        uint32_t a = stats_key_a(key), b = stats_key_b(key);
        const SlotInfo *node = NULL, *upstream = NULL;
        char code[8];

        l->len = 0;
        switch (stats_key_kind(key)) {
        case STATS_REQUESTS:
                if (b & STATS_B_UPSTREAM)
                        upstream = slot_info(s, b & ~STATS_B_UPSTREAM);
                else if (b) {
                        node = slot_info(s, b);
                        upstream = slot_info(s, node->upstream);
                } else
                        upstream = slot_info(s, 0);
                labels_pair(l, "route", slot_info(s, a)->name);
                labels_pair(l, "upstream", upstream->name);
                if (s->in->node_labels)
                        labels_pair(l, "node", node ? node->name : "");
                snprintf(code, sizeof(code), "%u", stats_key_code(key));
                labels_pair(l, "code", code);
                break;
        case STATS_ROUTE:
                labels_pair(l, "route", slot_info(s, a)->name);
                labels_pair(l, "upstream", slot_info(s, b)->name);
                break;
        case STATS_NODE:
                if (s->in->node_labels) {
                        node = slot_info(s, b);
                        upstream = slot_info(s, node->upstream);
                } else
                        upstream = slot_info(s, b);
                labels_pair(l, "upstream", upstream->name);
                if (node)
                        labels_pair(l, "node", node->name);
                break;
        case STATS_LISTENER:
                labels_pair(l, "listener", s->in->listeners[a - 1]);
                if (b != 0) /* a session's upstream */
                        labels_pair(l, "upstream", slot_info(s, b)->name);
                break;
        default:
                break;
        }
        l->buf[l->len] = '\0';
}

/* A number and the line's end: printf's generality is most of a scrape's time. */
static void write_value(MetricsText *f, uint64_t v)
{
        metrics_text_u64(f, v);
        metrics_text_add(f, "\n", 1);
}

static void write_histogram(const Scrape *s, const char *name, uint64_t key,
                            const atomic_uint_fast64_t *c)
{
        const StatsBuckets *b = s->buckets;
        MetricsText *f = s->f;
        Labels l;
        format_labels(s, key, &l);

        uint64_t cumulative = 0;
        for (size_t i = 0; i <= b->n; i++) {
                cumulative += atomic_load_explicit(&c[i], memory_order_relaxed);
                metrics_text_puts(f, name);
                metrics_text_puts(f, "_bucket{");
                metrics_text_add(f, l.buf, l.len);
                metrics_text_puts(f, ",le=\"");
                metrics_text_puts(f, i < b->n ? s->le[i] : "+Inf");
                metrics_text_puts(f, "\"} ");
                write_value(f, cumulative);
        }
        uint64_t sum = atomic_load_explicit(&c[b->n + 1], memory_order_relaxed);
        char frac[8];
        snprintf(frac, sizeof(frac), ".%06u", (unsigned)(sum % USEC_PER_SEC));
        metrics_text_puts(f, name);
        metrics_text_puts(f, "_sum{");
        metrics_text_add(f, l.buf, l.len);
        metrics_text_puts(f, "} ");
        metrics_text_u64(f, sum / USEC_PER_SEC);
        metrics_text_puts(f, frac);
        metrics_text_puts(f, "\n");
        metrics_text_puts(f, name);
        metrics_text_puts(f, "_count{");
        metrics_text_add(f, l.buf, l.len);
        metrics_text_puts(f, "} ");
        write_value(f, cumulative);
}

static void write_counter(const Scrape *s, const char *name, uint64_t key, const char *extra,
                          uint64_t v)
{
        Labels l;
        format_labels(s, key, &l);
        metrics_text_puts(s->f, name);
        metrics_text_add(s->f, "{", 1);
        metrics_text_add(s->f, l.buf, l.len);
        if (extra) {
                if (l.len > 0)
                        metrics_text_add(s->f, ",", 1);
                metrics_text_puts(s->f, extra);
        }
        metrics_text_puts(s->f, "} ");
        write_value(s->f, v);
}

/* A family: its series from the summed keys of one kind. */
typedef struct Family {
        StatsKind kind;
        const char *name;
        const char *type;
        const char *help;
        /* Writes the key's series; cells all zero were left out already. */
        void (*write)(const Scrape *s, const struct Family *fam, uint64_t key,
                      const atomic_uint_fast64_t *c);
        size_t cell; /* the cell it shows, or the histogram's first */
        const char *extra; /* a label of its own ("outcome=\"success\"") */
} Family;

static void write_family_counter(const Scrape *s, const Family *fam, uint64_t key,
                                 const atomic_uint_fast64_t *c)
{
        write_counter(s, fam->name, key, fam->extra,
                      atomic_load_explicit(&c[fam->cell], memory_order_relaxed));
}

static void write_family_histogram(const Scrape *s, const Family *fam, uint64_t key,
                                   const atomic_uint_fast64_t *c)
{
        size_t at = fam->cell == SIZE_MAX ? STATS_NODE_HISTOGRAMS + stats_histogram_cells(s->buckets)
                                          : fam->cell;
        write_histogram(s, fam->name, key, c + at);
}

static void write_listener_open(const Scrape *s, const Family *fam, uint64_t key,
                                const atomic_uint_fast64_t *c)
{
        uint64_t in = atomic_load_explicit(&c[STATS_LISTENER_ACCEPTED], memory_order_relaxed);
        uint64_t out = atomic_load_explicit(&c[STATS_LISTENER_CLOSED], memory_order_relaxed);
        write_counter(s, fam->name, key, NULL, in > out ? in - out : 0);
}

static const Family families[] = {
        { STATS_REQUESTS, "lbproxy_http_requests_total", "counter",
          "HTTP requests by route, upstream, the node that answered (\"\" when lbproxy did) and the status sent.",
          write_family_counter, 0, NULL },
        { STATS_ROUTE, "lbproxy_http_request_duration_seconds", "histogram",
          "Time from a request's head in to its response's last byte out.",
          write_family_histogram, 2, NULL },
        { STATS_ROUTE, "lbproxy_http_request_bytes_total", "counter",
          "Bytes of requests as sent to the nodes (head and body).", write_family_counter, 0,
          NULL },
        { STATS_ROUTE, "lbproxy_http_response_bytes_total", "counter",
          "Bytes of responses as sent to the clients (head and body).", write_family_counter,
          1, NULL },
        { STATS_NODE, "lbproxy_upstream_response_duration_seconds", "histogram",
          "Time from a request going to a node to the first byte of its response.",
          write_family_histogram, STATS_NODE_HISTOGRAMS, NULL },
        { STATS_NODE, "lbproxy_upstream_connect_duration_seconds", "histogram",
          "Time to connect to a node (its TLS handshake included).", write_family_histogram,
          SIZE_MAX, NULL },
        { STATS_NODE, "lbproxy_upstream_connections_opened_total", "counter",
          "Connections opened to a node.", write_family_counter, STATS_NODE_OPENED, NULL },
        { STATS_NODE, "lbproxy_upstream_connections_reused_total", "counter",
          "Requests sent on an idle pooled connection to a node.", write_family_counter,
          STATS_NODE_REUSED, NULL },
        { STATS_NODE, "lbproxy_upstream_health_checks_total", "counter",
          "Passive health checks (each connect to a node) by outcome.", write_family_counter,
          STATS_NODE_OPENED, "outcome=\"success\"" },
        { STATS_NODE, "lbproxy_upstream_health_checks_total", NULL, NULL, write_family_counter,
          STATS_NODE_FAILED, "outcome=\"failure\"" },
        { STATS_LISTENER, "lbproxy_client_connections_total", "counter",
          "Client connections accepted, by listener.", write_family_counter,
          STATS_LISTENER_ACCEPTED, NULL },
        { STATS_LISTENER, "lbproxy_client_connections_open", "gauge",
          "Client connections open now, by listener.", write_listener_open, 0, NULL },
        { STATS_LISTENER, "lbproxy_stream_sessions_total", "counter",
          "tcp and tls-passthrough sessions, by listener and upstream.", write_family_counter,
          STATS_LISTENER_SESSIONS, NULL },
        { STATS_LISTENER, "lbproxy_stream_bytes_total", "counter",
          "Bytes of stream sessions, by direction.", write_family_counter,
          STATS_LISTENER_BYTES_IN, "direction=\"to_upstream\"" },
        { STATS_LISTENER, "lbproxy_stream_bytes_total", NULL, NULL, write_family_counter,
          STATS_LISTENER_BYTES_OUT, "direction=\"to_client\"" },
        { STATS_WORKER, "lbproxy_tls_handshakes_total", "counter",
          "TLS handshakes completed, with clients (side=\"server\") and nodes (side=\"client\"), "
          "by whether the session was resumed.", write_family_counter,
          STATS_WORKER_TLS_SERVER_FULL, "side=\"server\",resumed=\"false\"" },
        { STATS_WORKER, "lbproxy_tls_handshakes_total", NULL, NULL, write_family_counter,
          STATS_WORKER_TLS_SERVER_RESUMED, "side=\"server\",resumed=\"true\"" },
        { STATS_WORKER, "lbproxy_tls_handshakes_total", NULL, NULL, write_family_counter,
          STATS_WORKER_TLS_CLIENT_FULL, "side=\"client\",resumed=\"false\"" },
        { STATS_WORKER, "lbproxy_tls_handshakes_total", NULL, NULL, write_family_counter,
          STATS_WORKER_TLS_CLIENT_RESUMED, "side=\"client\",resumed=\"true\"" },
        { STATS_WORKER, "lbproxy_tls_handshake_failures_total", "counter",
          "TLS handshakes that failed (a client's: or did not finish before it left).",
          write_family_counter, STATS_WORKER_TLS_FAILED_SERVER, "side=\"server\"" },
        { STATS_WORKER, "lbproxy_tls_handshake_failures_total", NULL, NULL,
          write_family_counter, STATS_WORKER_TLS_FAILED_CLIENT, "side=\"client\"" },
};

static bool all_zero(const atomic_uint_fast64_t *c, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (atomic_load_explicit(&c[i], memory_order_relaxed))
                        return false;
        return true;
}

static void write_family_key(Scrape *s, uint64_t key, const atomic_uint_fast64_t *c)
{
        const Family *fam = &families[s->family];
        if (fam->kind == STATS_LISTENER) {
                /* A listener's connections are under b 0, its sessions under their upstream. */
                bool sessions = fam->write == write_family_counter &&
                                fam->cell >= STATS_LISTENER_SESSIONS;
                if (sessions != (stats_key_b(key) != 0))
                        return;
        }
        if (all_zero(c, stats_kind_cells(fam->kind, s->buckets)))
                return;
        fam->write(s, fam, key, c);
}

static void write_node_gauges(Scrape *s)
{
        const Model *m = s->in->model;
        MetricsText *f = s->f;
        static const char *const names[] = { "lbproxy_upstream_node_up",
                                             "lbproxy_upstream_node_weight",
                                             "lbproxy_upstream_node_in_flight" };
        static const char *const helps[] = {
                "1 when the node takes requests (its last connect succeeded), else 0; without node labels, the nodes up.",
                "The node's weight; without node labels, the upstream's total.",
                "Requests in flight at the node; without node labels, at the upstream.",
        };

        for (size_t g = 0; g < ELEMENTSOF(names); g++) {
                header(f, names[g], "gauge", helps[g]);
                for (size_t i = 0; i < m->n_upstreams; i++) {
                        const Upstream *u = m->upstreams[i];
                        uint64_t total = 0;
                        for (size_t k = 0; k < u->n_nodes; k++) {
                                const Node *n = &u->nodes[k];
                                uint64_t v = g == 0   ? !node_is_down(n)
                                             : g == 1 ? u->config->nodes[k].weight
                                                      : registry_in_flight(n->state);
                                total += v;
                                if (!s->in->node_labels)
                                        continue;
                                Labels l = {};
                                labels_pair(&l, "upstream", u->config->name);
                                labels_pair(&l, "node", n->name);
                                metrics_text_printf(f, "%s{%.*s} ", names[g], (int)l.len, l.buf);
                                write_value(f, v);
                        }
                        if (s->in->node_labels)
                                continue;
                        if (g == 2)
                                total = registry_in_flight(u->state);
                        Labels l = {};
                        labels_pair(&l, "upstream", u->config->name);
                        metrics_text_printf(f, "%s{%.*s} ", names[g], (int)l.len, l.buf);
                        write_value(f, total);
                }
        }
}

int metrics_write(const MetricsInput *in, MetricsText *f)
{
        Scrape s = { .in = in, .buckets = registry_buckets(in->registry), .f = f };
        for (size_t i = 0; i < s.buckets->n; i++) {
                MetricsText le = {};
                metrics_write_seconds(&le, s.buckets->bound_usec[i]);
                if (le.failed) {
                        metrics_text_done(&le);
                        return -ENOMEM;
                }
                assert(le.len < sizeof(s.le[i]));
                memcpy(s.le[i], le.buf, le.len + 1);
                metrics_text_done(&le);
        }
        int r = info_build(&s);
        if (r < 0)
                return r;
        r = stats_table_init(&s.sum, s.buckets);
        if (r < 0) {
                free(s.info);
                return r;
        }
        for (size_t i = 0; i < registry_n_workers(in->registry); i++) {
                RegistryWorker *w = registry_worker(in->registry, i);
                if (w)
                        stats_table_foreach(&w->stats, add_worker_key, &s);
        }
        if (s.error == 0)
                s.error = sort_by_kind(&s);
        if (s.error == 0) {
                for (size_t i = 0; i < ELEMENTSOF(families); i++) {
                        s.family = (int)i;
                        if (families[i].type)
                                header(f, families[i].name, families[i].type, families[i].help);
                        StatsKind k = families[i].kind;
                        for (size_t j = 0; j < s.n_by_kind[k]; j++)
                                write_family_key(&s, s.by_kind[k][j].key, s.by_kind[k][j].cells);
                }
                write_node_gauges(&s);
        }
        stats_table_done(&s.sum);
        for (size_t k = 0; k < _STATS_KIND_MAX; k++)
                free(s.by_kind[k]);
        free(s.info);
        if (s.error == 0 && f->failed)
                s.error = -ENOMEM;
        return s.error;
}
