/* SPDX-License-Identifier: MIT */
#include <assert.h>

#include "base/hashmap.h"
#include "lb/model-config.h"
#include "lb/model-internal.h"
#include "lb/router.h"
#include "tls/tls-server.h"
#include "tls/tls.h"

/* Names to places in a model's list, shared by successive models while the names stay in the
 * same places (a change that leaves them rebuilds no index). */
struct NameIndex {
        unsigned n_ref; /* the models sharing it; control thread */
        Hashmap *map;   /* name -> place + 1 */
};

static NameIndex *name_index_unref(NameIndex *x)
{
        if (!x || --x->n_ref > 0)
                return NULL;
        hashmap_free(x->map);
        free(x);
        return NULL;
}

static int name_index_new(const char *(*name_at)(const Model *m, size_t i), const Model *m,
                          size_t n, NameIndex **ret)
{
        NameIndex *x = calloc(1, sizeof(*x));
        if (!x)
                return -ENOMEM;
        x->n_ref = 1;
        x->map = hashmap_new();
        if (!x->map)
                return free(x), -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                const char *name = name_at(m, i);
                int r = hashmap_put(x->map, name, strlen(name), (void *)(uintptr_t)(i + 1));
                if (r < 0)
                        return name_index_unref(x), r;
        }
        *ret = x;
        return 0;
}

static size_t name_index_get(const NameIndex *x, const char *name)
{
        return (uintptr_t)hashmap_get(x->map, name, strlen(name)); /* 0: none */
}

static Upstream *upstream_unref(Upstream *u)
{
        if (!u || --u->n_ref > 0)
                return NULL;
        for (size_t i = 0; i < u->n_nodes; i++)
                node_done(&u->nodes[i]);
        free(u->nodes);
        balancer_free(u->balancer);
        tls_client_free(u->tls);
        registry_entry_unref(u->state);
        config_upstream_unref(u->config);
        free(u);
        return NULL;
}

static Route *route_unref(Route *r)
{
        if (!r || --r->n_ref > 0)
                return NULL;
        free(r->targets);
        balancer_free(r->balancer);
        registry_entry_unref(r->state);
        config_route_unref(r->config);
        free(r);
        return NULL;
}

/* Whether `u` has the nodes of `cu`, in its order (a balancer picks them by index). */
static bool same_nodes(const Upstream *u, const ConfigUpstream *cu)
{
        if (u->n_nodes != cu->n_nodes)
                return false;
        for (size_t i = 0; i < u->n_nodes; i++)
                if (u->nodes[i].port != cu->nodes[i].port || !streq(u->nodes[i].host,
                                                                   cu->nodes[i].host))
                        return false;
        return true;
}

/* A new Upstream for `cu`, with `tls` (handed over; NULL for http). `o` is the one of the same
 * name in the base model, or NULL: its balancer goes on when the nodes and weights are its. */
static int upstream_new(const ConfigUpstream *cu, const Upstream *o, TlsClient *tls,
                        const ModelContext *ctx, Upstream **ret)
{
        Upstream *u = calloc(1, sizeof(*u));
        if (!u) {
                tls_client_free(tls);
                return -ENOMEM;
        }
        u->n_ref = 1;
        u->tls = tls; /* first: the nodes' pool keys carry its policy id */
        u->config = config_upstream_ref((ConfigUpstream *)cu);
        u->nodes = calloc(cu->n_nodes ? cu->n_nodes : 1, sizeof(Node));
        if (!u->nodes)
                return upstream_unref(u), -ENOMEM;
        int r = registry_upstream(ctx->registry, cu->name, &u->state);
        if (r < 0)
                return upstream_unref(u), r;

        size_t n = cu->n_nodes ? cu->n_nodes : 1;
        _cleanup_free_ uint32_t *weights = calloc(n, sizeof(uint32_t));
        _cleanup_free_ RegistryEntry **entries = calloc(n, sizeof(RegistryEntry *));
        _cleanup_free_ const char **names = calloc(n, sizeof(char *));
        if (!weights || !entries || !names)
                return upstream_unref(u), -ENOMEM;
        for (size_t i = 0; i < cu->n_nodes; i++) {
                r = node_init(&u->nodes[i], u, &cu->nodes[i], ctx);
                u->n_nodes = i + 1;
                if (r < 0)
                        return upstream_unref(u), r;
                weights[i] = cu->nodes[i].weight;
                entries[i] = u->nodes[i].state;
                names[i] = u->nodes[i].name;
        }

        const BalancerOps *ops = balancer_ops_find(cu->balancer ? cu->balancer : "roundrobin");
        if (!ops) /* the loader knows the names balancer.c does */
                return upstream_unref(u), -EOPNOTSUPP;
        BalancerSpec spec = { .ops = ops, .weights = weights, .n = cu->n_nodes,
                              .entries = entries, .names = names, .total = u->state,
                              .hash_balance_factor = cu->hash_balance_factor,
                              .health = { .trials = !cu->health_check.active.enabled,
                                          .slow_start_usec = cu->slow_start_usec } };
        if (o && same_nodes(o, cu) && balancer_same(o->balancer, &spec))
                u->balancer = balancer_ref(o->balancer); /* its schedule goes on */
        else {
                r = balancer_new(&spec, &u->balancer);
                if (r < 0)
                        return upstream_unref(u), r;
        }
        *ret = u;
        return 0;
}

/* The Upstream for `cu` in the new model: `o` (the base model's of that name, or NULL) itself
 * when `cu` is its configuration and its TLS client still serves (with ctx->reread_files, its
 * ca_file still holds what it held); else a new one, which keeps `o`'s TLS client (its
 * sessions) and balancer where those did not change. */
static int upstream_build(const ConfigUpstream *cu, Upstream *o, const ModelContext *ctx,
                          Upstream **ret, char **ret_error)
{
        TlsClient *tls = NULL;
        if (cu->scheme == SCHEME_HTTPS) {
                TlsClientPolicy policy = { .upstream = cu->name, .ca_file = cu->tls.ca_file,
                                           .verify = cu->tls.verify != 0 };
                int r = tls_client_update(&policy, o ? o->tls : NULL, ctx->reread_files, &tls,
                                          ret_error);
                if (r < 0)
                        return r;
        }
        if (o && tls == o->tls && upstream_config_equal(o->config, cu)) {
                tls_client_free(tls);
                o->n_ref++;
                *ret = o;
                return 0;
        }
        return upstream_new(cu, o, tls, ctx, ret);
}

Upstream *model_find_upstream(const Model *m, const char *name)
{
        size_t i = name_index_get(m->upstream_index, name);
        return i > 0 ? m->upstreams[i - 1] : NULL;
}

/* Whether `r` balances over the upstreams `cr` names, in its order. */
static bool same_targets(const Route *r, const ConfigRoute *cr)
{
        if (r->n_targets != cr->n_upstreams)
                return false;
        for (size_t i = 0; i < r->n_targets; i++)
                if (!streq(r->config->upstreams[i].name, cr->upstreams[i].name))
                        return false;
        return true;
}

/* A new Route for `cr` over the upstreams of `m`. `o` is the one of the same name in the base
 * model, or NULL: its balancer goes on when the upstreams and weights are its. */
static int route_new(const Model *m, const ConfigRoute *cr, const Route *o,
                     const ModelContext *ctx, Route **ret)
{
        Route *route = calloc(1, sizeof(*route));
        if (!route)
                return -ENOMEM;
        route->n_ref = 1;
        route->config = config_route_ref((ConfigRoute *)cr);
        int r = registry_route(ctx->registry, cr->name, &route->state);
        if (r < 0)
                return route_unref(route), r;
        route->targets = calloc(cr->n_upstreams ? cr->n_upstreams : 1, sizeof(RouteTarget));
        _cleanup_free_ uint32_t *weights = calloc(cr->n_upstreams ? cr->n_upstreams : 1,
                                                  sizeof(uint32_t));
        if (!route->targets || !weights)
                return route_unref(route), -ENOMEM;
        for (size_t i = 0; i < cr->n_upstreams; i++) {
                Upstream *u = model_find_upstream(m, cr->upstreams[i].name);
                if (!u) /* the config loader refuses dangling references */
                        return route_unref(route), -ENOENT;
                route->targets[i] = (RouteTarget){ .upstream = u, .weight = cr->upstreams[i].weight };
                weights[i] = cr->upstreams[i].weight;
        }
        route->n_targets = cr->n_upstreams;
        /* Route level stays weighted round robin. */
        BalancerSpec spec = { .ops = &balancer_swrr_ops, .weights = weights,
                              .n = cr->n_upstreams };
        if (o && same_targets(o, cr) && balancer_same(o->balancer, &spec))
                route->balancer = balancer_ref(o->balancer);
        else {
                r = balancer_new(&spec, &route->balancer);
                if (r < 0)
                        return route_unref(route), r;
        }
        *ret = route;
        return 0;
}

/* The Route for `cr` in the new model `m`: `o` (the base model's of that name, or NULL) itself
 * when `cr` is its configuration and each of its upstreams is the one `m` has, else new. */
static int route_build(const Model *m, const ConfigRoute *cr, Route *o, const ModelContext *ctx,
                       Route **ret)
{
        bool same = o && route_config_equal(o->config, cr);
        for (size_t i = 0; same && i < o->n_targets; i++)
                same = model_find_upstream(m, o->config->upstreams[i].name) ==
                       o->targets[i].upstream;
        if (same) {
                o->n_ref++;
                *ret = o;
                return 0;
        }
        return route_new(m, cr, o, ctx, ret);
}

/* The TLS server of an https listener, from its certificates as configured: `o` (the base
 * model's, or NULL) itself when it was built from the same configuration and (with
 * ctx->reread_files) its files still hold what they held; else a new one, with `o`'s ticket
 * keys, so that tickets issued before stay good. */
static int listener_tls_server(const ConfigListener *cl, TlsServer *o, bool same_config,
                               const ModelContext *ctx, TlsServer **ret, char **ret_error)
{
        _cleanup_free_ TlsCertificateFiles *files =
                calloc(cl->n_certificates ? cl->n_certificates : 1, sizeof(TlsCertificateFiles));
        if (!files)
                return -ENOMEM;
        for (size_t i = 0; i < cl->n_certificates; i++) {
                const ConfigCertificate *cc = &cl->certificates[i];
                files[i] = (TlsCertificateFiles){ .cert_file = cc->cert_file,
                                                  .key_file = cc->key_file,
                                                  .ocsp_file = cc->ocsp_file,
                                                  .mark = cc->mark };
        }
        TlsServerOptions opts = { .listener = cl->name, .mark = cl->mark, .certificates = files,
                                  .n_certificates = cl->n_certificates,
                                  .ticket_rotate_usec = cl->ticket_rotate_usec };
        if (o && same_config && (!ctx->reread_files || tls_server_files_unchanged(o, &opts))) {
                *ret = tls_server_ref(o);
                return 0;
        }
        int r = tls_server_new(&opts, ret, ret_error);
        if (r >= 0)
                tls_server_carry_state(*ret, o);
        return r;
}

static Model *model_free(Model *m)
{
        if (!m)
                return NULL;
        router_free(m->router);
        for (size_t i = 0; m->tls_servers && i < m->config->n_listeners; i++)
                tls_server_free(m->tls_servers[i]);
        free(m->tls_servers);
        for (size_t i = 0; i < m->n_routes; i++)
                route_unref(m->routes[i]);
        free(m->routes);
        for (size_t i = 0; i < m->n_upstreams; i++)
                upstream_unref(m->upstreams[i]);
        free(m->upstreams);
        name_index_unref(m->upstream_index);
        name_index_unref(m->route_index);
        config_unref(m->config);
        free(m);
        return NULL;
}

static const char *upstream_name_at(const Model *m, size_t i)
{
        return m->upstreams[i]->config->name;
}

static const char *route_name_at(const Model *m, size_t i)
{
        return m->routes[i]->config->name;
}

/* Whether the base has the same names in the same places (then its index serves). */
static bool same_names(const Model *base, const Model *m, size_t n_base, size_t n,
                       const char *(*name_at)(const Model *m, size_t i))
{
        if (n_base != n)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!streq(name_at(base, i), name_at(m, i)))
                        return false;
        return true;
}

/* Whether the base's routes match requests as those of `m`, place by place. */
static bool same_matching(const Model *base, const Model *m)
{
        if (base->n_routes != m->n_routes)
                return false;
        for (size_t i = 0; i < m->n_routes; i++)
                if (base->routes[i] != m->routes[i] &&
                    !route_config_match_equal(base->routes[i]->config, m->routes[i]->config))
                        return false;
        return true;
}

/* The base model's object of the name `cu` (or `cr`) has, the i-th of the new model: looked up
 * by name unless the base has it at that place, as after most changes (a change shares every
 * object it does not touch, in its place), which spares 10,000 routes as many lookups. */
static Upstream *base_upstream(const Model *base, size_t i, const ConfigUpstream *cu)
{
        if (!base)
                return NULL;
        if (i < base->n_upstreams && base->upstreams[i]->config == cu)
                return base->upstreams[i];
        return model_find_upstream(base, cu->name);
}

static Route *base_route(const Model *base, size_t i, const ConfigRoute *cr)
{
        if (!base)
                return NULL;
        if (i < base->n_routes && base->routes[i]->config == cr)
                return base->routes[i];
        return model_find_route(base, cr->name);
}

static int build_upstreams(Model *m, const ModelContext *ctx, char **ret_error)
{
        const Config *config = m->config;
        const Model *base = ctx->base;

        for (size_t i = 0; i < config->n_upstreams; i++) {
                const ConfigUpstream *cu = config->upstreams[i];
                Upstream *u;
                int r = upstream_build(cu, base_upstream(base, i, cu),
                                       ctx, &u, ret_error);
                if (r < 0)
                        return r;
                m->upstreams[m->n_upstreams++] = u;
        }
        if (base && same_names(base, m, base->n_upstreams, m->n_upstreams, upstream_name_at)) {
                m->upstream_index = base->upstream_index;
                m->upstream_index->n_ref++;
                return 0;
        }
        return name_index_new(upstream_name_at, m, m->n_upstreams, &m->upstream_index);
}

static int build_routes(Model *m, const ModelContext *ctx)
{
        const Config *config = m->config;
        const Model *base = ctx->base;

        for (size_t i = 0; i < config->n_routes; i++) {
                const ConfigRoute *cr = config->routes[i];
                Route *route;
                int r = route_build(m, cr, base_route(base, i, cr), ctx,
                                    &route);
                if (r < 0)
                        return r;
                m->routes[m->n_routes++] = route;
        }
        int r;
        if (base && same_names(base, m, base->n_routes, m->n_routes, route_name_at)) {
                m->route_index = base->route_index;
                m->route_index->n_ref++;
        } else {
                r = name_index_new(route_name_at, m, m->n_routes, &m->route_index);
                if (r < 0)
                        return r;
        }
        if (base && same_matching(base, m)) {
                m->router = router_ref(base->router);
                return 0;
        }
        return router_new(m->routes, m->n_routes, &m->router);
}

/* Certificates are loaded here, so that --check and a reload refuse one that does not load, and
 * the running model stays as it was. */
static int build_tls_servers(Model *m, const ModelContext *ctx, char **ret_error)
{
        const Config *config = m->config;
        const Model *base = ctx->base;

        m->tls_servers = calloc(config->n_listeners + 1, sizeof(TlsServer *));
        if (!m->tls_servers)
                return -ENOMEM;
        for (size_t i = 0; i < config->n_listeners; i++) {
                const ConfigListener *cl = &config->listeners[i];
                if (cl->protocol != LISTENER_HTTPS)
                        continue;
                TlsServer *o = base ? model_find_tls_server(base, cl->name) : NULL;
                const ConfigListener *ol = o ? model_find_listener(base, cl->name) : NULL;
                int r = listener_tls_server(cl, o, ol && listener_tls_config_equal(ol, cl), ctx,
                                            &m->tls_servers[i], ret_error);
                if (r < 0)
                        return r;
        }
        return 0;
}

int model_new(Config *config, const ModelContext *ctx, Model **ret, char **ret_error)
{
        assert(ctx && ctx->registry);

        Model *m = calloc(1, sizeof(*m));
        if (!m) {
                config_unref(config);
                return -ENOMEM;
        }
        atomic_init(&m->n_ref, 1);
        m->config = config;
        /* A reload looks at the system trust store once (not per https upstream). Unable to,
         * the clients built on it serve on. */
        if (ctx->base && ctx->reread_files)
                (void)tls_trust_check_system();

        m->upstreams = calloc(config->n_upstreams + 1, sizeof(Upstream *));
        m->routes = calloc(config->n_routes + 1, sizeof(Route *));
        if (!m->upstreams || !m->routes)
                return model_free(m), -ENOMEM;
        int r = build_upstreams(m, ctx, ret_error);
        if (r >= 0)
                r = build_routes(m, ctx);
        if (r >= 0)
                r = build_tls_servers(m, ctx, ret_error);
        if (r < 0)
                return model_free(m), r;
        *ret = m;
        return 0;
}

Model *model_ref(Model *m)
{
        if (m)
                atomic_fetch_add_explicit(&m->n_ref, 1, memory_order_relaxed);
        return m;
}

static pthread_t control_thread;
static void (*release_handler)(Model *m, void *userdata);
static void *release_userdata;

void model_set_release_handler(void (*handler)(Model *m, void *userdata), void *userdata)
{
        control_thread = pthread_self();
        release_handler = handler;
        release_userdata = userdata;
}

void model_release(Model *m)
{
        model_free(m);
}

Model *model_unref(Model *m)
{
        if (!m || atomic_fetch_sub_explicit(&m->n_ref, 1, memory_order_acq_rel) != 1)
                return NULL;
        if (release_handler && !pthread_equal(pthread_self(), control_thread))
                release_handler(m, release_userdata);
        else
                model_free(m);
        return NULL;
}

int route_pick_upstream(Route *r, Upstream **ret)
{
        ssize_t first = balancer_pick(r->balancer, &(BalancerRequest){});
        if (first < 0)
                return (int)first;
        /* An upstream with no node to take a request (all down: it would serve in panic)
         * leaves its share to the route's others while one of them has a node. */
        ssize_t i = first;
        uint64_t skip[BITMAP_WORDS(ROUTE_FALLBACK_TARGETS_MAX)] = {};
        for (size_t k = 0; k < r->n_targets && r->n_targets <= ROUTE_FALLBACK_TARGETS_MAX; k++) {
                Upstream *u = r->targets[i].upstream;
                /* With no active check, a trial request is all that can bring it back. */
                if (!upstream_in_panic(u) || upstream_trial_due(u))
                        break;
                bitmap_set(skip, (size_t)i);
                i = balancer_pick(r->balancer, &(BalancerRequest){ .skip = skip });
                if (i < 0) {
                        i = first; /* all of them in panic: as picked */
                        break;
                }
        }
        *ret = r->targets[i].upstream;
        return 0;
}

bool upstream_trial_due(Upstream *u)
{
        Balancer *b = u->balancer;
        uint64_t now = 0;
        if (!b->health.trials || !b->entries)
                return false;
        for (size_t i = 0; i < b->n; i++)
                if (b->weights[i] > 0 &&
                    health_pick(b->entries[i], &b->health, false, false, &now) == HEALTH_PICK_YES)
                        return true; /* its trial taken: the request goes there */
        return false;
}

int upstream_pick_node(Upstream *u, const uint64_t *skip, uint64_t key, Node **ret)
{
        BalancerRequest req = { .skip = skip, .key = key };
        ssize_t i = balancer_pick(u->balancer, &req);
        if (i == -EHOSTDOWN) {
                /* Every node left is down: rather all of them than none (panic). */
                req.panic = true;
                i = balancer_pick(u->balancer, &req);
        }
        if (i < 0)
                return (int)i;
        *ret = &u->nodes[i];
        return 0;
}

TlsServer *model_find_tls_server(const Model *m, const char *listener)
{
        for (size_t i = 0; m->tls_servers && i < m->config->n_listeners; i++)
                if (m->tls_servers[i] && streq(m->config->listeners[i].name, listener))
                        return m->tls_servers[i];
        return NULL;
}

Route *model_find_route(const Model *m, const char *name)
{
        size_t i = name_index_get(m->route_index, name);
        return i > 0 ? m->routes[i - 1] : NULL;
}

const ConfigListener *model_find_listener(const Model *m, const char *name)
{
        for (size_t i = 0; i < m->config->n_listeners; i++)
                if (streq(m->config->listeners[i].name, name))
                        return &m->config->listeners[i];
        return NULL;
}
