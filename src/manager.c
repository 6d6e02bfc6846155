/* SPDX-License-Identifier: MIT */
#include <signal.h>

#include "bus.h"
#include "state.h"

#include "conn-client.h"
#include "daemon.h"
#include "log.h"
#include "manager.h"
#include "pool.h"

#define STATUS_INTERVAL_USEC (5 * USEC_PER_SEC)

static void format_status(Manager *m, char *buf, size_t size)
{
        snprintf(buf, size, "Serving %zu routes over %zu upstreams; %llu requests, %zu connections",
                 m->model->n_routes, m->model->n_upstreams,
                 (unsigned long long)m->worker.requests, m->worker.n_clients);
}

static void on_status_timer(evutil_socket_t fd, short what, void *userdata)
{
        Manager *m = userdata;
        char status[256];
        format_status(m, status, sizeof(status));
        daemon_notify_status(status);
}

static void set_model(Manager *m, Model *model)
{
        model_unref(m->model);
        m->model = model;
        /* One worker on this thread: it sees the new model at once. */
        model_unref(m->worker.model);
        m->worker.model = model_ref(model);
}

static void warn_unverified(const Model *model)
{
        for (size_t i = 0; i < model->n_upstreams; i++) {
                const ConfigUpstream *cu = model->upstreams[i]->config;
                if (cu->scheme == SCHEME_HTTPS && !cu->tls.verify)
                        log_warning("Upstream '%s': TLS certificate verification is OFF "
                                    "(tls.verify: false): its identity is not checked",
                                    cu->name);
        }
}

/* The one way a model goes live: state carried over, D-Bus told before and after. */
static void swap_model(Manager *m, Model *model)
{
        Model *old = m->model ? model_ref(m->model) : NULL;

        if (old)
                model_carry_state(model, old);
        warn_unverified(model);
        bus_model_removing(m->bus, old, model);
        set_model(m, model);
        bus_model_swapped(m->bus, old, model);
        model_unref(old);

        char status[256];
        format_status(m, status, sizeof(status));
        daemon_notify_status(status);
}

int manager_apply_config(Manager *m, Config *config, char **ret_error)
{
        Model *model;
        int r = model_new(config, m->resolver, &model, ret_error);
        if (r < 0)
                return r;
        if (m->state_dir) {
                r = state_save(m->state_dir, model->config);
                if (r < 0) {
                        model_unref(model);
                        if (ret_error && asprintf(ret_error, "cannot save the state in %s: %s",
                                                  m->state_dir, strerror(-r)) < 0)
                                *ret_error = NULL;
                        return r;
                }
        }
        swap_model(m, model);
        return 0;
}

int manager_reload(Manager *m, char **ret_errors)
{
        _cleanup_(config_freep) Config *config = NULL;
        _cleanup_free_ char *errors = NULL;

        daemon_notify_reloading();
        int r = config_load(m->config_paths, &errors, &config);
        if (r < 0) {
                log_error("Reload refused, configuration unchanged:\n%s", errors ? errors : "");
                if (ret_errors)
                        *ret_errors = TAKE_PTR(errors);
                daemon_notify_ready("Reload refused: configuration invalid, previous one kept");
                return r;
        }
        Model *model;
        r = model_new(TAKE_PTR(config), m->resolver, &model, &errors);
        if (r < 0) {
                daemon_notify_ready("Reload failed, previous configuration kept");
                log_error_errno(r, "Reload failed, configuration unchanged: %s",
                                errors ? errors : strerror(-r));
                if (ret_errors)
                        *ret_errors = TAKE_PTR(errors);
                return r;
        }
        /* The files are current again: runtime changes made over D-Bus are dropped. */
        if (m->state_dir) {
                r = state_remove(m->state_dir);
                if (r < 0)
                        log_warning_errno(r, "Cannot remove the runtime state in %s: %m",
                                          m->state_dir);
        }
        swap_model(m, model);
        log_info("Configuration reloaded: %zu routes, %zu upstreams", model->n_routes,
                 model->n_upstreams);
        char status[256];
        format_status(m, status, sizeof(status));
        daemon_notify_ready(status);
        return 0;
}

void manager_node_health_changed(Manager *m, const Upstream *u, const Node *n, const char *why)
{
        if (why)
                log_event(LOG_WARNING, LBPROXY_MESSAGE_NODE_HEALTH, u->config->name, n->name, NULL,
                          "Upstream '%s': node %s is failing (%s)", u->config->name, n->name,
                          why);
        else
                log_event(LOG_NOTICE, LBPROXY_MESSAGE_NODE_HEALTH, u->config->name, n->name, NULL,
                          "Upstream '%s': node %s is healthy again", u->config->name, n->name);
        bus_upstream_health_changed(m->bus, u);
}

static void on_grace_timeout(evutil_socket_t fd, short what, void *userdata)
{
        Manager *m = userdata;
        log_warning("Shutdown grace period over: closing %zu connections still open",
                    m->worker.n_clients);
        event_base_loopexit(m->base, NULL);
}

void manager_stop(Manager *m)
{
        if (m->stopping)
                return;
        m->stopping = true;
        m->worker.stopping = true;
        daemon_notify_stopping();
        log_info("Stopping: %zu connections open", m->worker.n_clients);
        listeners_disable(m->listeners, m->n_listeners);

        /* Idle connections go now; busy ones close after their current response. */
        for (ClientConn *c = m->worker.clients, *next; c; c = next) {
                next = c->next;
                client_conn_stop(c);
        }
        if (m->worker.n_clients == 0) {
                event_base_loopexit(m->base, NULL);
                return;
        }
        uint64_t usec = m->model->config->shutdown_grace_usec;
        struct timeval tv = { .tv_sec = (time_t)(usec / USEC_PER_SEC),
                              .tv_usec = (suseconds_t)(usec % USEC_PER_SEC) };
        m->grace_timer = evtimer_new(m->base, on_grace_timeout, m);
        if (m->grace_timer)
                evtimer_add(m->grace_timer, &tv);
}

static void on_signal(evutil_socket_t sig, short what, void *userdata)
{
        Manager *m = userdata;

        if (sig == SIGHUP) {
                (void)manager_reload(m, NULL);
                return;
        }
        if (m->stopping) {
                /* A second SIGTERM/SIGINT does not wait for the grace period. */
                event_base_loopexit(m->base, NULL);
                return;
        }
        manager_stop(m);
}

int manager_new(char **config_paths, const char *state_dir, Config *config, Manager **ret,
                char **ret_error)
{
        Manager *m = calloc(1, sizeof(*m));
        if (!m) {
                config_free(config);
                return -ENOMEM;
        }
        m->config_paths = config_paths;
        if (state_dir) {
                m->state_dir = strdup(state_dir);
                if (!m->state_dir) {
                        config_free(config);
                        free(m);
                        return -ENOMEM;
                }
        }

        struct event_config *ec = event_config_new();
        if (ec) {
                /* Coalesces the event_add/del of one loop iteration into fewer epoll_ctl calls. */
                event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
                m->base = event_base_new_with_config(ec);
                event_config_free(ec);
        }
        if (!m->base) {
                config_free(config);
                free(m);
                return -ENOMEM;
        }

        /* DNS settings are read once: the channel's servers stay as started. */
        int r = resolver_new(m->base, &config->dns, &m->resolver);
        if (r < 0) {
                config_free(config);
                manager_free(m);
                if (ret_error)
                        *ret_error = strdup("cannot set up the DNS resolver (dns.servers)");
                return r;
        }
        Model *model;
        r = model_new(config, m->resolver, &model, ret_error);
        if (r < 0) {
                manager_free(m);
                return r;
        }
        m->worker.id = 0;
        m->worker.base = m->base;
        m->worker.manager = m;
        m->worker.pool = pool_new(&m->worker);
        if (!m->worker.pool) {
                model_unref(model);
                manager_free(m);
                return -ENOMEM;
        }
        swap_model(m, model);
        *ret = m;
        return 0;
}

Manager *manager_free(Manager *m)
{
        if (!m)
                return NULL;
        while (m->worker.clients)
                client_conn_free(m->worker.clients);
        bus_free(m->bus);
        pool_free(m->worker.pool);
        listeners_free(m->listeners, m->n_listeners);
        struct event *events[] = { m->sig_term, m->sig_int, m->sig_hup, m->status_timer,
                                   m->grace_timer, m->watchdog };
        for (size_t i = 0; i < ELEMENTSOF(events); i++)
                if (events[i])
                        event_free(events[i]);
        model_unref(m->worker.model);
        model_unref(m->model);
        resolver_free(m->resolver);
        if (m->base)
                event_base_free(m->base);
        free(m->state_dir);
        free(m);
        return NULL;
}

int manager_start(Manager *m)
{
        int r = listeners_open(m->model->config, &m->listeners, &m->n_listeners);
        if (r < 0)
                return r;
        r = listeners_start(m->listeners, m->n_listeners, &m->worker);
        if (r < 0)
                return r;

        m->sig_term = evsignal_new(m->base, SIGTERM, on_signal, m);
        m->sig_int = evsignal_new(m->base, SIGINT, on_signal, m);
        m->sig_hup = evsignal_new(m->base, SIGHUP, on_signal, m);
        if (!m->sig_term || !m->sig_int || !m->sig_hup)
                return -ENOMEM;
        evsignal_add(m->sig_term, NULL);
        evsignal_add(m->sig_int, NULL);
        evsignal_add(m->sig_hup, NULL);
        signal(SIGPIPE, SIG_IGN);

        if (getenv("NOTIFY_SOCKET")) {
                m->status_timer = event_new(m->base, -1, EV_PERSIST, on_status_timer, m);
                struct timeval tv = { .tv_sec = STATUS_INTERVAL_USEC / USEC_PER_SEC };
                if (m->status_timer)
                        event_add(m->status_timer, &tv);
        }
        m->watchdog = daemon_watchdog_start(m->base);

        /* Without the bus lbproxy still proxies; the control API comes when the bus does. */
        r = bus_start(m, &m->bus);
        if (r < 0)
                return r;

        char status[256];
        format_status(m, status, sizeof(status));
        for (size_t i = 0; i < m->n_listeners; i++)
                log_info("Listening on '%s'%s", m->listeners[i].name,
                         m->listeners[i].activated ? " (socket activation)" : "");
        daemon_notify_ready(status);
        return 0;
}

int manager_run(Manager *m)
{
        event_base_dispatch(m->base);
        log_info("Stopped after %llu requests", (unsigned long long)m->worker.requests);
        return m->exit_code;
}
