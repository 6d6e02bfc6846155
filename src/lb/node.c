/* SPDX-License-Identifier: MIT */
/* A Node of an upstream: made with the model, its addresses as requests use them (a literal's
 * once, a name's once per DNS answer, with their pool keys), and its health, which lives in its
 * registry entry. */
#include <arpa/inet.h>
#include <assert.h>
#include <netinet/in.h>

#include "base/hashmap.h"
#include "lb/model-internal.h"
#include "net/resolver.h"

void node_done(Node *n)
{
        if (n->dns_addresses_lock_init)
                pthread_mutex_destroy(&n->dns_addresses_lock);
        free(n->dns_addresses);
        address_list_unref(n->dns_addresses_for);
        free(n->host);
        free(n->name);
        free(n->host_header);
        resolved_name_unref(n->dns);
        registry_entry_unref(n->state);
}

/* A pooled connection (and a cached TLS session) serves only a request that would have made
 * the same one: same scheme, address and, for https, the same TLS policy and server name. */
static void set_pool_key(NodeAddress *a, Scheme scheme, const Node *n)
{
        bool tls = scheme == SCHEME_HTTPS;
        assert(!tls || n->tls_policy_id);
        int k = snprintf(a->pool_key, sizeof(a->pool_key), "%s|%s|%s|%s",
                         scheme_to_string(scheme), tls ? n->tls_policy_id : "",
                         tls ? n->server_name : "", a->text);
        /* The parts are bounded (a name by the config's 253, an id by its hash): a cut key
         * could name another address. */
        assert(k > 0 && (size_t)k < sizeof(a->pool_key));
        a->pool_key_len = (size_t)k;
        a->pool_key_hash = hashmap_hash(a->pool_key, a->pool_key_len);
}

static void set_address(NodeAddress *a, const struct sockaddr_storage *ip, uint16_t port)
{
        a->sa = *ip;
        if (ip->ss_family == AF_INET) {
                ((struct sockaddr_in *)&a->sa)->sin_port = htons(port);
                a->sa_len = sizeof(struct sockaddr_in);
        } else {
                ((struct sockaddr_in6 *)&a->sa)->sin6_port = htons(port);
                a->sa_len = sizeof(struct sockaddr_in6);
        }
        sockaddr_to_string((struct sockaddr *)&a->sa, a->text, sizeof(a->text));
}

/* An IP literal node gets its one address now; a name is handed to the resolver. */
static int node_set_address(Node *n, Scheme scheme, Resolver *resolver)
{
        struct sockaddr_storage ip = {};
        struct sockaddr_in *in = (struct sockaddr_in *)&ip;
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ip;

        if (inet_pton(AF_INET, n->host, &in->sin_addr) == 1)
                in->sin_family = AF_INET;
        else if (inet_pton(AF_INET6, n->host, &in6->sin6_addr) == 1)
                in6->sin6_family = AF_INET6;
        else
                return resolver ? resolver_get(resolver, n->host, &n->dns) : 0;

        n->is_literal = true;
        set_address(&n->literal, &ip, n->port);
        set_pool_key(&n->literal, scheme, n);
        return 0;
}

/* The first address from `i` on that the active checks did not find down; `i` when all are
 * (the node is then down itself, and used only when every node is). */
static unsigned skip_down_addresses(const NodeAddressHealth *h, const AddressList *l, unsigned i)
{
        if (l->n == 1 || !node_address_any_down(h))
                return i;
        for (size_t k = 0; k < l->n; k++) {
                unsigned j = (unsigned)((i + k) % l->n);
                if (!node_address_is_down(h, node_address_hash(&l->addrs[j])))
                        return j;
        }
        return i;
}

int node_pick_address(Node *n, Scheme scheme, NodeAddress *ret)
{
        if (n->is_literal) {
                *ret = n->literal;
                return 0;
        }
        if (!n->dns)
                return -EHOSTUNREACH;

        int error = 0;
        AddressList *l = resolved_name_addresses(n->dns, &error);
        if (!l)
                return error;
        unsigned i = l->n == 1 ? 0
                               : atomic_fetch_add_explicit(&n->next_address, 1,
                                                           memory_order_relaxed) % l->n;
        i = skip_down_addresses(&n->state->address_health, l, i);

        pthread_mutex_lock(&n->dns_addresses_lock);
        if (n->dns_addresses_for != l) {
                /* A new answer: its addresses made once. Without memory, made per request. */
                NodeAddress *a = calloc(l->n, sizeof(*a));
                if (a) {
                        for (size_t k = 0; k < l->n; k++) {
                                set_address(&a[k], &l->addrs[k], n->port);
                                set_pool_key(&a[k], scheme, n);
                        }
                        free(n->dns_addresses);
                        address_list_unref(n->dns_addresses_for);
                        n->dns_addresses = a;
                        n->dns_addresses_for = address_list_ref(l);
                }
        }
        if (n->dns_addresses_for == l)
                *ret = n->dns_addresses[i];
        else {
                set_address(ret, &l->addrs[i], n->port);
                set_pool_key(ret, scheme, n);
        }
        pthread_mutex_unlock(&n->dns_addresses_lock);
        address_list_unref(l);
        return 0;
}

int node_addresses_text(const Node *n, char ***ret)
{
        AddressList *l = NULL;
        size_t count = n->is_literal ? 1 : 0;
        if (n->dns) {
                int error;
                l = resolved_name_addresses(n->dns, &error);
                count = l ? l->n : 0;
        }
        char **texts = calloc(count + 1, sizeof(char *));
        for (size_t i = 0; texts && i < count; i++) {
                NodeAddress a;
                if (l)
                        set_address(&a, &l->addrs[i], n->port);
                texts[i] = strdup(l ? a.text : n->literal.text);
                if (!texts[i]) {
                        strv_free(texts); /* the strings before this one, and the list */
                        texts = NULL;
                }
        }
        address_list_unref(l);
        if (!texts)
                return -ENOMEM;
        *ret = texts;
        return 0;
}

int node_init(Node *n, const Upstream *u, const ConfigNode *cn, const ModelContext *ctx)
{
        const ConfigUpstream *cu = u->config;
        bool v6 = strchr(cn->host, ':') != NULL;
        bool default_port = cn->port == scheme_default_port(cu->scheme);

        pthread_mutex_init(&n->dns_addresses_lock, NULL);
        n->dns_addresses_lock_init = true;
        n->host = strdup(cn->host);
        n->port = cn->port;
        n->server_name = cu->tls.sni ? cu->tls.sni : n->host;
        n->tls_policy_id = u->tls ? tls_client_policy_id(u->tls) : NULL;
        if (!n->host || asprintf(&n->name, v6 ? "[%s]:%u" : "%s:%u", cn->host, cn->port) < 0)
                return -ENOMEM;
        int r = default_port ? asprintf(&n->host_header, v6 ? "[%s]" : "%s", cn->host)
                             : asprintf(&n->host_header, v6 ? "[%s]:%u" : "%s:%u", cn->host,
                                        cn->port);
        if (r < 0) {
                n->host_header = NULL;
                return -ENOMEM;
        }
        r = registry_node(ctx->registry, cu->name, cn->host, cn->port, &n->state);
        if (r < 0)
                return r;
        return node_set_address(n, cu->scheme, ctx->resolver);
}

bool upstream_update_panic(Upstream *u)
{
        /* Nodes out of rotation (weight 0, drain, maint) count for nothing: panic is about
         * health, and takes none of them either. */
        bool ready = false, all_down = true;
        for (size_t i = 0; i < u->n_nodes; i++) {
                const Node *n = &u->nodes[i];
                if (u->config->nodes[i].weight == 0 || node_admin_state(n) != NODE_ADMIN_READY)
                        continue;
                ready = true;
                all_down = all_down && node_is_down(n);
        }
        bool panic = ready && all_down;
        return atomic_exchange_explicit(&u->state->panic, panic, memory_order_relaxed) != panic;
}
