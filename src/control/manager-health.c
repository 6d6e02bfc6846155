/* SPDX-License-Identifier: MIT */
/* What the Manager does with nodes' health: one journal entry per transition (health or admin
 * state), an upstream's panic (every node down: all are used) worked out on the control loop
 * and said in the journal and STATUS=, the admin states of a new model written before it
 * serves, and NodeDrained when a draining node's last request ends. */
#include <assert.h>
#include <string.h>

#include "base/log.h"
#include "control/manager-health.h"
#include "control/manager.h"
#include "lb/health.h"
#include "lb/model.h"

static void log_node_state(const Upstream *u, const Node *n, const char *why)
{
        NodeHealthView v;
        node_health_view(n, &v);
        const char *state = node_health_to_string(n);
        /* The counters say how many; a probe's own words say what failed (a TLS alert, a
         * status, a timeout). Requests give none beyond the counters. */
        bool detail = why && !streq(why, v.reason);
        if (why)
                log_health_event(LOG_WARNING, LBPROXY_MESSAGE_NODE_HEALTH, u->config->name,
                                 n->name, state, v.reason,
                                 "Upstream '%s': node %s is down (%s%s%s)", u->config->name,
                                 n->name, v.reason, detail ? "; last: " : "", detail ? why : "");
        else if (v.admin != NODE_ADMIN_READY)
                log_health_event(LOG_NOTICE, LBPROXY_MESSAGE_NODE_HEALTH, u->config->name,
                                 n->name, state, "admin state",
                                 "Upstream '%s': node %s is in %s (admin state)",
                                 u->config->name, n->name, state);
        else
                log_health_event(LOG_NOTICE, LBPROXY_MESSAGE_NODE_HEALTH, u->config->name,
                                 n->name, state, v.reason[0] ? v.reason : "admin state",
                                 "Upstream '%s': node %s is %s%s%s%s", u->config->name,
                                 n->name, v.down ? "down" : "healthy",
                                 v.reason[0] ? " (" : "", v.reason, v.reason[0] ? ")" : "");
}

void manager_node_health_changed(void *userdata, const Upstream *u, const Node *n,
                                 const char *why)
{
        Manager *m = userdata;
        log_node_state(u, n, why);
        /* Panic and STATUS= on the control loop, which alone writes an upstream's panic. */
        wake_signal(&m->health_wake);
        if (m->frontend_data)
                m->frontend->upstream_health_changed(m->frontend_data, u);
}

/* The names a node's registry entry was made with: "n" upstream NUL host NUL port (2 bytes). */
static void entry_names(const RegistryEntry *e, const char **upstream, const char **host,
                        uint16_t *port)
{
        assert(e->kind == REGISTRY_NODE && e->key_len >= 5);
        *upstream = e->key + 1;
        *host = *upstream + strlen(*upstream) + 1;
        const unsigned char *p = (const unsigned char *)e->key + e->key_len - 2;
        *port = (uint16_t)(p[0] << 8 | p[1]);
}

void manager_node_drained(void *userdata, const RegistryEntry *e)
{
        Manager *m = userdata;
        const char *upstream, *host;
        uint16_t port;
        entry_names(e, &upstream, &host, &port);
        log_event(LOG_NOTICE, LBPROXY_MESSAGE_NODE_HEALTH, upstream, NULL, NULL,
                  "Upstream '%s': node %s port %u is drained: no request in flight", upstream,
                  host, port);
        if (m->frontend_data && m->frontend->node_drained)
                m->frontend->node_drained(m->frontend_data, upstream, host, port);
}

/* Works out `u`'s panic; says so when it changed. */
static bool update_panic(Upstream *u)
{
        if (!upstream_update_panic(u))
                return false;
        if (upstream_in_panic(u))
                log_event(LOG_ERR, LBPROXY_MESSAGE_UPSTREAM_PANIC, u->config->name, NULL, NULL,
                          "Upstream '%s': every node is down; sending requests to all of them "
                          "(panic)",
                          u->config->name);
        else
                log_event(LOG_NOTICE, LBPROXY_MESSAGE_UPSTREAM_PANIC, u->config->name, NULL, NULL,
                          "Upstream '%s': a node is up again; panic over", u->config->name);
        return true;
}

/* A node's health changed somewhere: every upstream of the model serving now, once per wake-up
 * (transitions are rare; a wake-up stands for all those since the last). */
static void update_panics(Manager *m)
{
        const Model *model = manager_model(m);
        bool changed = false;
        for (size_t i = 0; model && i < model->n_upstreams; i++)
                changed |= update_panic(model->upstreams[i]);
        if (changed)
                manager_update_status(m);
}

static void on_health_event(evutil_socket_t fd, short what, void *userdata)
{
        update_panics(userdata);
}

int manager_health_setup(Manager *m)
{
        return wake_init(&m->health_wake, m->base, on_health_event, m);
}

void manager_health_done(Manager *m)
{
        wake_done(&m->health_wake);
}

static void on_admin_changed(void *userdata, const Upstream *u, const Node *n)
{
        Manager *m = userdata;
        log_node_state(u, n, NULL);
        if (m->frontend_data)
                m->frontend->upstream_health_changed(m->frontend_data, u);
        /* Nothing in flight: drained at once. */
        if (node_health_claim_drained(n->state))
                manager_node_drained(m, n->state);
}

void manager_health_commit(Manager *m, const Model *old, Model *model)
{
        for (size_t i = 0; i < model->n_upstreams; i++) {
                Upstream *u = model->upstreams[i];
                /* An upstream the old model has is committed already; most keep their place. */
                if (old && ((i < old->n_upstreams && old->upstreams[i] == u) ||
                            model_find_upstream(old, u->config->name) == u))
                        continue;
                health_commit_upstream(u, old != NULL, on_admin_changed, m);
                /* Its nodes, weights and admin states are the new model's: the panic too (the
                 * caller says STATUS= after the swap). */
                (void)update_panic(u);
        }
}

size_t manager_format_panics(const Model *model, char *buf, size_t size)
{
        size_t n = 0, len = 0;
        buf[0] = '\0';
        for (size_t i = 0; i < model->n_upstreams; i++) {
                const Upstream *u = model->upstreams[i];
                if (!upstream_in_panic(u))
                        continue;
                n++;
                if (len >= size)
                        continue; /* cut: the count says how many */
                int k = snprintf(buf + len, size - len, "%s%s", n > 1 ? ", " : "",
                                 u->config->name);
                len = k < 0 || (size_t)k >= size - len ? size : len + (size_t)k;
        }
        return n;
}
