/* SPDX-License-Identifier: MIT */
#include <pthread.h>

#include "base/log.h"
#include "base/wake.h"
#include "bus/bus-event.h"
#include "bus/bus.h"
#include "lb/model.h"

#define RECONNECT_USEC (5 * USEC_PER_SEC)

struct Bus {
        Manager *manager;
        struct event_base *base; /* the control loop */
        sd_bus *bus;
        BusEvent *event;
        struct event *reconnect;
        Wake flush;  /* deferred PropertiesChanged for health, NodeDrained: from any thread */
        pthread_mutex_t dirty_lock; /* health changes come from worker threads */
        char **dirty_health;  /* upstream names whose Health changed */
        /* NodeDrained signals to send: upstream, host, port (as text), three strings each. */
        char **drained;
        bool connected;
};

static void bus_disconnect(Bus *b)
{
        b->event = bus_event_free(b->event);
        if (b->bus) {
                sd_bus_flush_close_unref(b->bus);
                b->bus = NULL;
        }
        b->connected = false;
}

Manager *bus_manager(const Bus *b)
{
        return b->manager;
}

void bus_kick(Bus *b)
{
        /* Without a connection a reply goes nowhere, and there is nothing to kick. */
        if (b->event)
                bus_event_kick(b->event);
}

static void schedule_reconnect(Bus *b)
{
        if (evtimer_pending(b->reconnect, NULL))
                return;
        struct timeval tv = { .tv_sec = RECONNECT_USEC / USEC_PER_SEC };
        evtimer_add(b->reconnect, &tv);
}

static void on_disconnect(void *userdata)
{
        Bus *b = userdata;
        log_warning("D-Bus: lost the system bus; proxying goes on, reconnecting in %llus",
                    (unsigned long long)(RECONNECT_USEC / USEC_PER_SEC));
        bus_disconnect(b);
        schedule_reconnect(b);
}

static void schedule_reconnect(Bus *b);

static int on_name_acquired(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        Bus *b = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);
        if (e) {
                /* A policy or user fixed later is picked up without a restart. */
                log_error("D-Bus: cannot own the name %s: %s; trying again in %llus", BUS_NAME,
                          e->message, (unsigned long long)(RECONNECT_USEC / USEC_PER_SEC));
                schedule_reconnect(b);
        } else
                log_info("D-Bus: serving %s on the system bus", BUS_NAME);
        return 0;
}

static int bus_connect(Bus *b)
{
        Manager *m = b->manager;
        sd_bus *bus = NULL;
        int r;

        r = sd_bus_open_system(&bus);
        if (r < 0)
                return r;
        b->bus = bus;

        /* The objects live as long as the connection (floating slots). */
        r = sd_bus_add_object_vtable(bus, NULL, BUS_PATH, BUS_INTERFACE_MANAGER,
                                     bus_manager_vtable, b);
        if (r >= 0)
                r = sd_bus_add_fallback_vtable(bus, NULL, BUS_PATH_UPSTREAM,
                                               BUS_INTERFACE_UPSTREAM, bus_upstream_vtable,
                                               bus_upstream_find, m);
        if (r >= 0)
                r = sd_bus_add_node_enumerator(bus, NULL, BUS_PATH_UPSTREAM,
                                               bus_upstream_enumerate, m);
        if (r >= 0)
                r = sd_bus_add_fallback_vtable(bus, NULL, BUS_PATH_ROUTE, BUS_INTERFACE_ROUTE,
                                               bus_route_vtable, bus_route_find, m);
        if (r >= 0)
                r = sd_bus_add_node_enumerator(bus, NULL, BUS_PATH_ROUTE, bus_route_enumerate, m);
        if (r >= 0)
                r = sd_bus_add_object_manager(bus, NULL, BUS_PATH);
        if (r >= 0)
                r = sd_bus_add_filter(bus, NULL, bus_filter_property_set, b);
        if (r >= 0)
                r = sd_bus_request_name_async(bus, NULL, BUS_NAME, 0, on_name_acquired, b);
        if (r >= 0)
                r = bus_event_attach(bus, b->base, on_disconnect, b, &b->event);
        if (r < 0) {
                bus_disconnect(b);
                return r;
        }
        b->connected = true;
        return 0;
}

static void on_reconnect(evutil_socket_t fd, short what, void *userdata)
{
        Bus *b = userdata;
        if (b->connected)
                bus_disconnect(b); /* connected without the name: start over */
        int r = bus_connect(b);
        if (r < 0) {
                log_debug("D-Bus: system bus still unavailable: %s", strerror(-r));
                schedule_reconnect(b);
                return;
        }
        log_info("D-Bus: connected to the system bus again");
}

static void on_flush(evutil_socket_t fd, short what, void *userdata)
{
        Bus *b = userdata;
        pthread_mutex_lock(&b->dirty_lock);
        char **names = TAKE_PTR(b->dirty_health);
        _cleanup_strv_free_ char **drained = TAKE_PTR(b->drained);
        pthread_mutex_unlock(&b->dirty_lock);

        for (char **n = names; b->connected && n && *n; n++) {
                _cleanup_free_ char *path = NULL;
                if (bus_upstream_path(*n, &path) >= 0)
                        (void)sd_bus_emit_properties_changed(b->bus, path, BUS_INTERFACE_UPSTREAM,
                                                             "Health", "HealthDetails", NULL);
        }
        strv_free(names);
        for (char **d = drained; b->connected && d && d[0] && d[1] && d[2]; d += 3)
                (void)sd_bus_emit_signal(b->bus, BUS_PATH, BUS_INTERFACE_MANAGER, "NodeDrained",
                                         "ssq", d[0], d[1], (uint16_t)atoi(d[2]));
        bus_event_kick(b->event);
}

static void bus_free(void *userdata)
{
        Bus *b = userdata;
        if (!b)
                return;
        bus_disconnect(b);
        if (b->reconnect)
                event_free(b->reconnect);
        wake_done(&b->flush);
        strv_free(b->dirty_health);
        strv_free(b->drained);
        pthread_mutex_destroy(&b->dirty_lock);
        free(b);
}

/* Connects (now, or later when the bus is not there yet). */
static int bus_start(Manager *m, struct event_base *base, void **ret)
{
        Bus *b = calloc(1, sizeof(*b));
        if (!b)
                return -ENOMEM;
        b->manager = m;
        b->base = base;
        pthread_mutex_init(&b->dirty_lock, NULL);
        b->flush.fd = -EBADF;
        b->reconnect = evtimer_new(base, on_reconnect, b);
        if (!b->reconnect || wake_init(&b->flush, base, on_flush, b) < 0) {
                bus_free(b);
                return -ENOMEM;
        }
        int r = bus_connect(b);
        if (r < 0) {
                log_warning("D-Bus: no system bus (%s); retrying in the background",
                            strerror(-r));
                schedule_reconnect(b);
        }
        *ret = b;
        return 0;
}

static bool has_upstream(const Model *m, const char *name)
{
        return m && model_find_upstream(m, name);
}

static bool has_route(const Model *m, const char *name)
{
        return m && model_find_route(m, name);
}

/* Before a model swap: objects that are going away are announced while still findable. */
static void bus_model_removing(void *userdata, const Model *old, const Model *new)
{
        Bus *b = userdata;
        if (!b || !b->connected || !old)
                return;
        /* An object the new model has in the same place is kept (most are, after a change):
         * no lookup by name for it. */
        for (size_t i = 0; i < old->n_upstreams; i++) {
                const char *name = old->upstreams[i]->config->name;
                _cleanup_free_ char *path = NULL;
                if (new && i < new->n_upstreams && new->upstreams[i] == old->upstreams[i])
                        continue;
                if (!has_upstream(new, name) && bus_upstream_path(name, &path) >= 0)
                        (void)sd_bus_emit_object_removed(b->bus, path);
        }
        for (size_t i = 0; i < old->n_routes; i++) {
                const char *name = old->routes[i]->config->name;
                _cleanup_free_ char *path = NULL;
                if (new && i < new->n_routes && new->routes[i] == old->routes[i])
                        continue;
                if (!has_route(new, name) && bus_route_path(name, &path) >= 0)
                        (void)sd_bus_emit_object_removed(b->bus, path);
        }
}

static bool weights_equal(const Balancer *a, const Balancer *b)
{
        return a->n == b->n && memcmp(a->weights, b->weights, a->n * sizeof(uint32_t)) == 0;
}

/* After a model swap: new objects, and changed weights, are announced. An object the two
 * models share is the same (a change builds only what it changes): skipped before its path is
 * made, which with 10,000 routes would cost more than the change. */
static void bus_model_swapped(void *userdata, const Model *old, const Model *new)
{
        Bus *b = userdata;
        if (!b || !b->connected)
                return;
        for (size_t i = 0; i < new->n_upstreams; i++) {
                const Upstream *u = new->upstreams[i];
                if (old && i < old->n_upstreams && old->upstreams[i] == u)
                        continue; /* the same object, in the same place */
                const Upstream *o = old ? model_find_upstream(old, u->config->name) : NULL;
                _cleanup_free_ char *path = NULL;
                if (o == u || bus_upstream_path(u->config->name, &path) < 0)
                        continue;
                if (!o)
                        (void)sd_bus_emit_object_added(b->bus, path);
                else {
                        if (!weights_equal(u->balancer, o->balancer) || u->n_nodes != o->n_nodes)
                                (void)sd_bus_emit_properties_changed(
                                        b->bus, path, BUS_INTERFACE_UPSTREAM, "Nodes", NULL);
                        if (u->balancer->ops != o->balancer->ops)
                                (void)sd_bus_emit_properties_changed(
                                        b->bus, path, BUS_INTERFACE_UPSTREAM, "Balancer", NULL);
                }
        }
        for (size_t i = 0; i < new->n_routes; i++) {
                const Route *r = new->routes[i];
                if (old && i < old->n_routes && old->routes[i] == r)
                        continue;
                const Route *o = old ? model_find_route(old, r->config->name) : NULL;
                _cleanup_free_ char *path = NULL;
                if (o == r || (o && weights_equal(r->balancer, o->balancer)) ||
                    bus_route_path(r->config->name, &path) < 0)
                        continue;
                if (!o)
                        (void)sd_bus_emit_object_added(b->bus, path);
                else
                        (void)sd_bus_emit_properties_changed(b->bus, path, BUS_INTERFACE_ROUTE,
                                                             "Upstreams", NULL);
        }
        bus_event_kick(b->event);
}

/* A node's health changed (from the data plane): PropertiesChanged, coalesced. */
static void bus_upstream_health_changed(void *userdata, const Upstream *u)
{
        Bus *b = userdata;
        if (!b)
                return;
        pthread_mutex_lock(&b->dirty_lock);
        size_t n = strv_length(b->dirty_health);
        bool known = false;
        for (size_t i = 0; i < n && !known; i++)
                known = streq(b->dirty_health[i], u->config->name);
        if (!known) {
                char **l = realloc(b->dirty_health, (n + 2) * sizeof(char *));
                if (l) {
                        b->dirty_health = l;
                        l[n] = strdup(u->config->name);
                        l[n + 1] = NULL;
                }
        }
        pthread_mutex_unlock(&b->dirty_lock);
        /* Emitted from the control loop, where the bus lives. */
        wake_signal(&b->flush);
}

static void bus_node_drained(void *userdata, const char *upstream, const char *host,
                             uint16_t port)
{
        Bus *b = userdata;
        char port_text[8];
        if (!b)
                return;
        snprintf(port_text, sizeof(port_text), "%u", port);
        pthread_mutex_lock(&b->dirty_lock);
        size_t n = strv_length(b->drained);
        char **l = realloc(b->drained, (n + 4) * sizeof(char *));
        if (l) {
                b->drained = l;
                l[n] = strdup(upstream);
                l[n + 1] = strdup(host);
                l[n + 2] = strdup(port_text);
                l[n + 3] = NULL;
                if (!l[n] || !l[n + 1] || !l[n + 2]) {
                        /* Out of memory: this signal is lost, the list stays whole. */
                        free(l[n]);
                        free(l[n + 1]);
                        free(l[n + 2]);
                        l[n] = NULL;
                }
        }
        pthread_mutex_unlock(&b->dirty_lock);
        wake_signal(&b->flush);
}

const ControlFrontend bus_frontend = {
        .start = bus_start,
        .free = bus_free,
        .model_removing = bus_model_removing,
        .model_swapped = bus_model_swapped,
        .upstream_health_changed = bus_upstream_health_changed,
        .node_drained = bus_node_drained,
};
