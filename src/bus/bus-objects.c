/* SPDX-License-Identifier: MIT */

/* The objects below /org/lbproxy1: an org.lbproxy1.Upstream per upstream and an
 * org.lbproxy1.Route per route, found by name in the current model. Their properties read the
 * live state (counters, requests in flight and health from the registry, summed over the
 * workers); weights and health emit PropertiesChanged, counters do not. */

#include "bus/bus.h"
#include "lb/model.h"

int bus_upstream_path(const char *name, char **ret)
{
        return sd_bus_path_encode(BUS_PATH_UPSTREAM, name, ret);
}

int bus_route_path(const char *name, char **ret)
{
        return sd_bus_path_encode(BUS_PATH_ROUTE, name, ret);
}

int bus_upstream_find(sd_bus *bus, const char *path, const char *interface, void *userdata,
                      void **found, sd_bus_error *error)
{
        Manager *m = userdata;
        _cleanup_free_ char *name = NULL;

        /* Unknown names (and the prefix itself) are "no such object", not an error. */
        if (sd_bus_path_decode(path, BUS_PATH_UPSTREAM, &name) <= 0 || !name[0])
                return 0;
        Upstream *u = model_find_upstream(manager_model(m), name);
        if (!u)
                return 0;
        *found = u;
        return 1;
}

int bus_route_find(sd_bus *bus, const char *path, const char *interface, void *userdata,
                   void **found, sd_bus_error *error)
{
        Manager *m = userdata;
        _cleanup_free_ char *name = NULL;

        if (sd_bus_path_decode(path, BUS_PATH_ROUTE, &name) <= 0 || !name[0])
                return 0;
        Route *r = model_find_route(manager_model(m), name);
        if (!r)
                return 0;
        *found = r;
        return 1;
}

static int enumerate(char ***nodes, size_t n, const char *(*name_of)(const Model *, size_t),
                     int (*path_of)(const char *, char **), const Model *model)
{
        char **l = calloc(n + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                int r = path_of(name_of(model, i), &l[i]);
                if (r < 0) {
                        strv_free(l);
                        return r;
                }
        }
        *nodes = l;
        return 1;
}

static const char *upstream_name_at(const Model *m, size_t i)
{
        return m->upstreams[i]->config->name;
}

static const char *route_name_at(const Model *m, size_t i)
{
        return m->routes[i]->config->name;
}

int bus_upstream_enumerate(sd_bus *bus, const char *prefix, void *userdata, char ***nodes,
                           sd_bus_error *error)
{
        const Model *model = manager_model(userdata);
        return enumerate(nodes, model->n_upstreams, upstream_name_at, bus_upstream_path, model);
}

int bus_route_enumerate(sd_bus *bus, const char *prefix, void *userdata, char ***nodes,
                        sd_bus_error *error)
{
        const Model *model = manager_model(userdata);
        return enumerate(nodes, model->n_routes, route_name_at, bus_route_path, model);
}

/* ---- org.lbproxy1.Upstream ---- */

static int property_upstream_string(sd_bus *bus, const char *path, const char *interface,
                                    const char *property, sd_bus_message *reply, void *userdata,
                                    sd_bus_error *error)
{
        const ConfigUpstream *cu = ((Upstream *)userdata)->config;
        const char *v = "";

        if (streq(property, "Name"))
                v = cu->name;
        else if (streq(property, "Scheme"))
                v = scheme_to_string(cu->scheme);
        else if (streq(property, "PassHost"))
                v = pass_host_to_string(cu->pass_host);
        else if (streq(property, "UpstreamHost"))
                v = cu->upstream_host ? cu->upstream_host : "";
        else if (streq(property, "Balancer"))
                v = cu->balancer ? cu->balancer : "roundrobin";
        return sd_bus_message_append(reply, "s", v);
}

/* Writable properties are set by bus_filter_property_set(), which takes every Set of them
 * before the object dispatch would call this. */
static int property_upstream_set_unreached(sd_bus *bus, const char *path, const char *interface,
                                           const char *property, sd_bus_message *value,
                                           void *userdata, sd_bus_error *error)
{
        return sd_bus_error_setf(error, SD_BUS_ERROR_FAILED, "%s is set by the bus filter",
                                 property);
}

static int property_upstream_nodes(sd_bus *bus, const char *path, const char *interface,
                                   const char *property, sd_bus_message *reply, void *userdata,
                                   sd_bus_error *error)
{
        Upstream *u = userdata;
        int r = sd_bus_message_open_container(reply, 'a', "(squ)");
        for (size_t i = 0; r >= 0 && i < u->n_nodes; i++)
                r = sd_bus_message_append(reply, "(squ)", u->nodes[i].host, u->nodes[i].port,
                                          u->balancer->weights[i]);
        return r < 0 ? r : sd_bus_message_close_container(reply);
}

static int property_upstream_addresses(sd_bus *bus, const char *path, const char *interface,
                                       const char *property, sd_bus_message *reply,
                                       void *userdata, sd_bus_error *error)
{
        Upstream *u = userdata;
        int r = sd_bus_message_open_container(reply, 'a', "(sqas)");

        for (size_t i = 0; r >= 0 && i < u->n_nodes; i++) {
                const Node *n = &u->nodes[i];
                _cleanup_strv_free_ char **addresses = NULL;
                r = node_addresses_text(n, &addresses);
                if (r >= 0)
                        r = sd_bus_message_open_container(reply, 'r', "sqas");
                if (r >= 0)
                        r = sd_bus_message_append(reply, "sq", n->host, n->port);
                if (r >= 0)
                        r = sd_bus_message_append_strv(reply, addresses);
                if (r >= 0)
                        r = sd_bus_message_close_container(reply);
        }
        return r < 0 ? r : sd_bus_message_close_container(reply);
}

static int property_upstream_health(sd_bus *bus, const char *path, const char *interface,
                                    const char *property, sd_bus_message *reply, void *userdata,
                                    sd_bus_error *error)
{
        Upstream *u = userdata;
        int r = sd_bus_message_open_container(reply, 'a', "(sqs)");
        for (size_t i = 0; r >= 0 && i < u->n_nodes; i++)
                r = sd_bus_message_append(reply, "(sqs)", u->nodes[i].host, u->nodes[i].port,
                                          node_health_to_string(&u->nodes[i]));
        return r < 0 ? r : sd_bus_message_close_container(reply);
}

/* Each node's health as a person reads it: state, why, slow start, since when (µs since the
 * epoch, 0 = as it was when it appeared). */
static int property_upstream_health_details(sd_bus *bus, const char *path, const char *interface,
                                            const char *property, sd_bus_message *reply,
                                            void *userdata, sd_bus_error *error)
{
        Upstream *u = userdata;
        int r = sd_bus_message_open_container(reply, 'a', "(sqssbt)");
        for (size_t i = 0; r >= 0 && i < u->n_nodes; i++) {
                const Node *n = &u->nodes[i];
                NodeHealthView v;
                node_health_view(n, &v);
                r = sd_bus_message_append(reply, "(sqssbt)", n->host, n->port,
                                          node_health_to_string(n), v.reason, v.slow_start,
                                          v.since_usec);
        }
        return r < 0 ? r : sd_bus_message_close_container(reply);
}

static uint64_t requests_served(const RegistryEntry *e)
{
        RegistryTotals t;
        registry_entry_totals(e, &t);
        return t.requests;
}

static int property_upstream_counter(sd_bus *bus, const char *path, const char *interface,
                                     const char *property, sd_bus_message *reply, void *userdata,
                                     sd_bus_error *error)
{
        Upstream *u = userdata;
        if (streq(property, "ActiveConnections"))
                return sd_bus_message_append(reply, "u", (uint32_t)registry_in_flight(u->state));
        return sd_bus_message_append(reply, "t", requests_served(u->state));
}

static int property_upstream_node_requests(sd_bus *bus, const char *path, const char *interface,
                                           const char *property, sd_bus_message *reply,
                                           void *userdata, sd_bus_error *error)
{
        Upstream *u = userdata;
        int r = sd_bus_message_open_container(reply, 'a', "(sqt)");
        for (size_t i = 0; r >= 0 && i < u->n_nodes; i++)
                r = sd_bus_message_append(reply, "(sqt)", u->nodes[i].host, u->nodes[i].port,
                                          requests_served(u->nodes[i].state));
        return r < 0 ? r : sd_bus_message_close_container(reply);
}

const sd_bus_vtable bus_upstream_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Name", "s", property_upstream_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Scheme", "s", property_upstream_string, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("PassHost", "s", property_upstream_string, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("UpstreamHost", "s", property_upstream_string, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_WRITABLE_PROPERTY("Balancer", "s", property_upstream_string,
                                 property_upstream_set_unreached, 0,
                                 SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Nodes", "a(squ)", property_upstream_nodes, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Addresses", "a(sqas)", property_upstream_addresses, 0, 0),
        SD_BUS_PROPERTY("Health", "a(sqs)", property_upstream_health, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("HealthDetails", "a(sqssbt)", property_upstream_health_details, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("RequestsServed", "t", property_upstream_counter, 0, 0),
        SD_BUS_PROPERTY("ActiveConnections", "u", property_upstream_counter, 0, 0),
        SD_BUS_PROPERTY("NodeRequests", "a(sqt)", property_upstream_node_requests, 0, 0),
        SD_BUS_VTABLE_END,
};

/* ---- org.lbproxy1.Route ---- */

static int append_strv(sd_bus_message *reply, char **l)
{
        int r = sd_bus_message_open_container(reply, 'a', "s");
        for (char **s = l; r >= 0 && s && *s; s++)
                r = sd_bus_message_append(reply, "s", *s);
        return r < 0 ? r : sd_bus_message_close_container(reply);
}

static int property_route(sd_bus *bus, const char *path, const char *interface,
                          const char *property, sd_bus_message *reply, void *userdata,
                          sd_bus_error *error)
{
        Route *route = userdata;
        const ConfigRoute *c = route->config;

        if (streq(property, "Name"))
                return sd_bus_message_append(reply, "s", c->name);
        if (streq(property, "Paths"))
                return append_strv(reply, c->paths);
        if (streq(property, "Hosts"))
                return append_strv(reply, c->hosts);
        if (streq(property, "Methods"))
                return append_strv(reply, c->methods);
        if (streq(property, "Priority"))
                return sd_bus_message_append(reply, "i", (int32_t)c->priority);
        if (streq(property, "RequestsServed"))
                return sd_bus_message_append(reply, "t", requests_served(route->state));

        int r = sd_bus_message_open_container(reply, 'a', "(su)");
        for (size_t i = 0; r >= 0 && i < route->n_targets; i++)
                r = sd_bus_message_append(reply, "(su)", route->targets[i].upstream->config->name,
                                          route->balancer->weights[i]);
        return r < 0 ? r : sd_bus_message_close_container(reply);
}

const sd_bus_vtable bus_route_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Name", "s", property_route, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Paths", "as", property_route, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Hosts", "as", property_route, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Methods", "as", property_route, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Priority", "i", property_route, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Upstreams", "a(su)", property_route, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("RequestsServed", "t", property_route, 0, 0),
        SD_BUS_VTABLE_END,
};
