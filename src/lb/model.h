/* SPDX-License-Identifier: MIT */
#pragma once

/* The live model the data plane reads: routes compiled into a router, upstreams with their nodes
 * and balancers. Built from a Config, never changed in place except for balancer state and
 * resolved addresses; what changes with every request (counters, requests in flight, health)
 * lives in the Registry (registry.h), where each Node, Upstream and Route points at its entry.
 * Reference-counted: a request holds the model it started with, so a swap (reload, D-Bus
 * change) never pulls the floor from under it. */

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "base/util.h"
#include "config/config.h"
#include "lb/balancer.h"
#include "lb/health.h"
#include "lb/registry.h"
#include "tls/tls.h"

typedef struct Router Router;
typedef struct TlsServer TlsServer;
typedef struct Resolver Resolver;
typedef struct ResolvedName ResolvedName;
typedef struct AddressList AddressList;

/* "https|" + TLS policy id + "|" + SNI (a DNS name: 253 bytes at most) + "|" + address */
#define POOL_KEY_MAX (8 + TLS_POLICY_ID_LEN + 1 + 256 + SOCKADDR_STR_MAX)

/* One address of a node, as a request uses it: copied into the request, so a DNS change or a
 * model swap never frees it underneath. */
typedef struct NodeAddress {
        struct sockaddr_storage sa;
        socklen_t sa_len;
        char text[SOCKADDR_STR_MAX]; /* "127.0.0.2:8080", for logs */
        /* Keys idle connections and TLS sessions: scheme, TLS policy id, SNI and address. */
        char pool_key[POOL_KEY_MAX];
        size_t pool_key_len;
        uint64_t pool_key_hash; /* hashed once here, not at every pool lookup */
} NodeAddress;

typedef struct Node {
        char *host; /* as configured */
        uint16_t port;
        char *name;        /* "host:port" as configured, for logs */
        char *host_header; /* Host with pass_host: node ("host", or "host:port" off-default) */
        const char *server_name; /* SNI and the name verified: tls.sni, else host */
        const char *tls_policy_id; /* the upstream's TlsClient's, or NULL (plain http) */
        bool is_literal;   /* host is an IP address: needs no resolving */
        NodeAddress literal; /* its address, when is_literal */
        ResolvedName *dns;   /* its name's addresses, when not */
        /* Those addresses as requests use them, made once per DNS answer rather than formatted
         * (address text, pool key) for every request; workers share them under the lock. */
        pthread_mutex_t dns_addresses_lock;
        AddressList *dns_addresses_for; /* the answer they were made from (a reference) */
        NodeAddress *dns_addresses;
        bool dns_addresses_lock_init;
        atomic_uint next_address; /* round robin over the node's addresses */
        RegistryEntry *state;     /* health, requests in flight, counters */
} Node;

typedef struct Upstream {
        unsigned n_ref; /* the models sharing it; control thread */
        ConfigUpstream *config; /* a reference: it may outlive the Configs that held it (it
                                 * holds the name of its file, so its marks stay valid) */
        Node *nodes;
        size_t n_nodes;
        Balancer *balancer;
        TlsClient *tls; /* scheme https only */
        RegistryEntry *state; /* requests in flight, counters */
} Upstream;

typedef struct RouteTarget {
        Upstream *upstream;
        uint32_t weight;
} RouteTarget;

typedef struct Route {
        unsigned n_ref; /* the models sharing it; control thread */
        ConfigRoute *config; /* a reference, as Upstream.config */
        RouteTarget *targets;
        size_t n_targets;
        Balancer *balancer; /* over targets */
        RegistryEntry *state; /* counters */
} Route;

typedef struct NameIndex NameIndex;

typedef struct Model {
        atomic_uint n_ref;
        Config *config; /* owned */
        Upstream **upstreams;
        size_t n_upstreams;
        Route **routes;
        size_t n_routes;
        NameIndex *upstream_index; /* name -> place in upstreams */
        NameIndex *route_index;    /* name -> place in routes */
        Router *router;
        TlsServer **tls_servers; /* per config listener, same index: https ones only, else NULL */
} Model;

/* What a model is built with. */
typedef struct ModelContext {
        Registry *registry; /* where its objects find their runtime state; outlives the model */
        Resolver *resolver; /* NULL: names are not resolved (--check) */
        /* The model serving now, or NULL: what did not change is shared with it (upstreams,
         * routes, TLS clients and servers, balancer schedules, the router) rather than built
         * again. Read while the new one is built. */
        const Model *base;
        /* Whether the files the base was built from may have changed (a reload): ca_files,
         * certificates and the system trust store are read again and compared. A D-Bus change
         * reads none. */
        bool reread_files;
} ModelContext;

/* Builds a model from `config`, taking ownership of it (also on failure), building only what
 * differs from ctx->base. When a part cannot be built (an unreadable ca_file, a listener's
 * certificate or key that does not load), *ret_error (if given) says which and why. */
int model_new(Config *config, const ModelContext *ctx, Model **ret, char **ret_error);
Model *model_ref(Model *m);
/* Drops a reference. A model must be freed on the control thread (its names belong to the
 * resolver there): when the last reference goes on another thread, the model is handed to the
 * function set with model_set_release_handler(), which passes it back. */
Model *model_unref(Model *m);
void model_set_release_handler(void (*handler)(Model *m, void *userdata), void *userdata);
/* Frees a model whose last reference is gone; control thread only. */
void model_release(Model *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Model *, model_unref);

Upstream *model_find_upstream(const Model *m, const char *name);
Route *model_find_route(const Model *m, const char *name);
const ConfigListener *model_find_listener(const Model *m, const char *name);
/* The TLS server of the https listener named `listener`, or NULL. */
TlsServer *model_find_tls_server(const Model *m, const char *listener);

/* Whether every node of `u` that may take traffic is down, so that it serves in panic (all
 * of them): kept in its registry entry by the control side as nodes change
 * (upstream_update_panic). */
static inline bool upstream_in_panic(const Upstream *u)
{
        return atomic_load_explicit(&u->state->panic, memory_order_relaxed);
}
/* Whether `u`, in panic with no active check, has a trial request due (and takes it). */
bool upstream_trial_due(Upstream *u);
/* Works out whether `u` is in panic now; returns true when that changed. Callers serialize. */
bool upstream_update_panic(Upstream *u);

/* A route with more upstreams than this sends no share of one in panic to the others. */
#define ROUTE_FALLBACK_TARGETS_MAX 64

/* Picks the upstream of a route and the node of that upstream. `skip` marks nodes already tried
 * for this request (a bitmap of upstream->n_nodes bits, may be NULL); `key` is the request's
 * hashed key when upstream_hashes_requests() (else 0). -ENOENT when no target or node has
 * weight. */
int route_pick_upstream(Route *r, Upstream **ret);
int upstream_pick_node(Upstream *u, const uint64_t *skip, uint64_t key, Node **ret);
static inline bool upstream_hashes_requests(const Upstream *u)
{
        return u->balancer->ops->hashes_requests;
}
/* ewma: whether the upstream's balancer wants balancer_latency_sample() for its nodes. */
static inline bool upstream_records_latency(const Upstream *u)
{
        return u->balancer->ops->records_latency;
}
/* Copies the node's next address (round robin over what its name resolves to) into `ret`.
 * Returns 0, or -EAGAIN while its name has no first answer (wait on n->dns), -ENXIO when the
 * name does not exist, -EHOSTUNREACH when it could not be resolved. */
int node_pick_address(Node *n, Scheme scheme, NodeAddress *ret);
/* The node's addresses now, as "ip:port" (its literal, or what its name resolves to, with the
 * node's port), for showing: a NULL-terminated list to strv_free(), empty while the name has no
 * answer. */
int node_addresses_text(const Node *n, char ***ret);
