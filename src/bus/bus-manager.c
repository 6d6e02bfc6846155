/* SPDX-License-Identifier: MIT */

/* org.lbproxy1.Manager: every change is made on a copy of the configuration, validated whole,
 * built into a new model, persisted, and only then swapped in. A failed call changes nothing. */

#include "base/log.h"
#include "bus/bus.h"
#include "config/config-edit.h"
#include "lb/model.h"

static int reply_error(sd_bus_error *error, int r, const char *message)
{
        const char *name;

        switch (r) {
        case -EINVAL:
                name = SD_BUS_ERROR_INVALID_ARGS;
                break;
        case -ENOENT:
                name = BUS_ERROR_NOT_FOUND;
                break;
        case -EEXIST:
                name = BUS_ERROR_EXISTS;
                break;
        case -EBUSY:
                name = BUS_ERROR_IN_USE;
                break;
        default:
                return sd_bus_error_set_errnof(error, -r, "%s",
                                               message ? message : strerror(-r));
        }
        return sd_bus_error_set(error, name, message ? message : strerror(-r));
}

/* Swaps in `config` (owned) or says why not. */
static int commit(Manager *m, Config *config, sd_bus_error *error, const char *what)
{
        _cleanup_free_ char *message = NULL;
        int r = manager_apply_config(m, config, &message);
        if (r < 0)
                return reply_error(error, r == -ENOMEM ? r : -EINVAL, message);
        log_event(LOG_NOTICE, LBPROXY_MESSAGE_CONFIG_CHANGE, NULL, NULL, NULL,
                  "Configuration changed over D-Bus: %s", what);
        return 0;
}

static int begin(Manager *m, Config **ret, sd_bus_error *error)
{
        int r = config_copy(manager_model(m)->config, ret);
        return r < 0 ? reply_error(error, r, "cannot copy the configuration") : 0;
}

/* An option of an a{sv}: its key and the one D-Bus type it takes. */
typedef struct OptionSpec {
        const char *key;
        const char *type;
} OptionSpec;

/* Reads an a{sv}: each entry's key must be in `specs` with its type, else the call is refused
 * naming the key; `apply` reads the value (the variant is entered) into `userdata`. */
static int read_options(sd_bus_message *msg, const OptionSpec *specs, size_t n_specs,
                        int (*apply)(sd_bus_message *msg, const OptionSpec *spec, void *userdata),
                        void *userdata, sd_bus_error *error)
{
        int r = sd_bus_message_enter_container(msg, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(msg, 'e', "sv")) > 0) {
                const char *key, *contents;
                const OptionSpec *spec = NULL;
                char type;

                r = sd_bus_message_read(msg, "s", &key);
                if (r >= 0)
                        r = sd_bus_message_peek_type(msg, &type, &contents);
                if (r < 0)
                        return r;
                for (size_t i = 0; i < n_specs && !spec; i++)
                        if (streq(specs[i].key, key))
                                spec = &specs[i];
                if (!spec)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "options: unknown key '%s'", key);
                if (!streq(contents, spec->type))
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "options.%s: expected type '%s', got '%s'", key,
                                                 spec->type, contents);
                r = sd_bus_message_enter_container(msg, 'v', contents);
                if (r >= 0)
                        r = apply(msg, spec, userdata);
                if (r >= 0)
                        r = sd_bus_message_exit_container(msg);
                if (r >= 0)
                        r = sd_bus_message_exit_container(msg);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(msg);
}

static const OptionSpec upstream_options[] = {
        { "pass_host", "s" },
        { "upstream_host", "s" },
        { "balancer", "s" },
        { "sni", "s" },
        { "ca_file", "s" },
        { "verify", "b" },
        { "retries", "u" },
        { "keepalive_pool", "u" },
        { "connect_timeout_usec", "t" },
        { "send_timeout_usec", "t" },
        { "read_timeout_usec", "t" },
};

static int apply_upstream_option(sd_bus_message *msg, const OptionSpec *spec, void *userdata)
{
        ConfigUpstreamOptions *o = userdata;
        const char *key = spec->key;
        int r;

        if (streq(spec->type, "s")) {
                const char *v;
                r = sd_bus_message_read(msg, "s", &v);
                if (streq(key, "pass_host"))
                        o->pass_host = v;
                else if (streq(key, "upstream_host"))
                        o->upstream_host = v;
                else if (streq(key, "balancer"))
                        o->balancer = v;
                else if (streq(key, "sni"))
                        o->sni = v;
                else
                        o->ca_file = v;
        } else if (streq(spec->type, "b")) {
                int v;
                r = sd_bus_message_read(msg, "b", &v);
                o->verify = !!v;
        } else if (streq(spec->type, "u")) {
                uint32_t v;
                r = sd_bus_message_read(msg, "u", &v);
                if (streq(key, "retries"))
                        o->retries = v;
                else
                        o->keepalive_pool = v;
        } else {
                uint64_t v;
                r = sd_bus_message_read(msg, "t", &v);
                /* Out of range values fail in the edit, which names the option. */
                int64_t u = v > INT64_MAX ? INT64_MAX : (int64_t)v;
                if (streq(key, "connect_timeout_usec"))
                        o->connect_timeout_usec = u;
                else if (streq(key, "send_timeout_usec"))
                        o->send_timeout_usec = u;
                else
                        o->read_timeout_usec = u;
        }
        return r;
}

static int read_upstream_options(sd_bus_message *msg, ConfigUpstreamOptions *o,
                                 sd_bus_error *error)
{
        return read_options(msg, upstream_options, ELEMENTSOF(upstream_options),
                            apply_upstream_option, o, error);
}

static int reply_path(sd_bus_message *msg, int (*path_of)(const char *, char **),
                      const char *name)
{
        _cleanup_free_ char *path = NULL;
        int r = path_of(name, &path);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(msg, "o", path);
}

static int method_add_upstream(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        const char *name, *scheme;
        ConfigNode *nodes = NULL;
        size_t n_nodes = 0;
        ConfigUpstreamOptions options = CONFIG_UPSTREAM_OPTIONS_INIT;
        _cleanup_free_ char *message = NULL;
        Config *c = NULL;
        int r;

        r = sd_bus_message_read(msg, "ss", &name, &scheme);
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(msg, 'a', "(squ)");
        if (r < 0)
                return r;
        for (;;) {
                const char *host;
                uint16_t port;
                uint32_t weight;
                r = sd_bus_message_read(msg, "(squ)", &host, &port, &weight);
                if (r < 0)
                        goto finish;
                if (r == 0)
                        break;
                ConfigNode *l = realloc(nodes, (n_nodes + 1) * sizeof(ConfigNode));
                if (!l) {
                        r = -ENOMEM;
                        goto finish;
                }
                nodes = l;
                /* Borrowed strings: config_edit copies what it keeps. */
                nodes[n_nodes++] = (ConfigNode){ .host = (char *)host, .port = port,
                                                 .weight = weight };
        }
        r = sd_bus_message_exit_container(msg);
        if (r >= 0)
                r = read_upstream_options(msg, &options, error);
        if (r < 0)
                goto finish;

        r = begin(m, &c, error);
        if (r < 0)
                goto finish;
        r = config_edit_add_upstream(c, name, scheme, nodes, n_nodes, &options, &message);
        if (r < 0) {
                config_unref(c);
                r = reply_error(error, r, message);
                goto finish;
        }
        r = commit(m, c, error, "upstream added");
        if (r >= 0)
                r = reply_path(msg, bus_upstream_path, name);
finish:
        free(nodes);
        return r;
}

/* The methods that take plain arguments share one shape: read, edit a copy, commit, reply. */
typedef enum EditKind {
        EDIT_REMOVE_UPSTREAM,
        EDIT_ADD_NODE,
        EDIT_REMOVE_NODE,
        EDIT_SET_NODE_WEIGHT,
        EDIT_REMOVE_ROUTE,
        EDIT_SET_ROUTE_UPSTREAM_WEIGHT,
} EditKind;

static int simple_edit(sd_bus_message *msg, Manager *m, EditKind kind, sd_bus_error *error)
{
        const char *a = NULL, *b = NULL;
        uint16_t port = 0;
        uint32_t weight = 0;
        _cleanup_free_ char *message = NULL;
        const char *what;
        int r;

        switch (kind) {
        case EDIT_REMOVE_UPSTREAM:
        case EDIT_REMOVE_ROUTE:
                r = sd_bus_message_read(msg, "s", &a);
                break;
        case EDIT_ADD_NODE:
        case EDIT_SET_NODE_WEIGHT:
                r = sd_bus_message_read(msg, "ssqu", &a, &b, &port, &weight);
                break;
        case EDIT_REMOVE_NODE:
                r = sd_bus_message_read(msg, "ssq", &a, &b, &port);
                break;
        default:
                r = sd_bus_message_read(msg, "ssu", &a, &b, &weight);
        }
        if (r < 0)
                return r;

        Config *c;
        r = begin(m, &c, error);
        if (r < 0)
                return r;
        switch (kind) {
        case EDIT_REMOVE_UPSTREAM:
                r = config_edit_remove_upstream(c, a, &message);
                what = "upstream removed";
                break;
        case EDIT_ADD_NODE:
                r = config_edit_add_node(c, a, b, port, weight, &message);
                what = "node added";
                break;
        case EDIT_REMOVE_NODE:
                r = config_edit_remove_node(c, a, b, port, &message);
                what = "node removed";
                break;
        case EDIT_SET_NODE_WEIGHT:
                r = config_edit_set_node_weight(c, a, b, port, weight, &message);
                what = "node weight set";
                break;
        case EDIT_REMOVE_ROUTE:
                r = config_edit_remove_route(c, a, &message);
                what = "route removed";
                break;
        default:
                r = config_edit_set_route_upstream_weight(c, a, b, weight, &message);
                what = "route upstream weight set";
        }
        if (r < 0) {
                config_unref(c);
                return reply_error(error, r, message);
        }
        r = commit(m, c, error, what);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(msg, NULL);
}

static int method_remove_upstream(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        return simple_edit(msg, userdata, EDIT_REMOVE_UPSTREAM, error);
}

static int method_add_node(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        return simple_edit(msg, userdata, EDIT_ADD_NODE, error);
}

static int method_remove_node(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        return simple_edit(msg, userdata, EDIT_REMOVE_NODE, error);
}

static int method_set_node_weight(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        return simple_edit(msg, userdata, EDIT_SET_NODE_WEIGHT, error);
}

static int method_remove_route(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        return simple_edit(msg, userdata, EDIT_REMOVE_ROUTE, error);
}

static int method_set_route_upstream_weight(sd_bus_message *msg, void *userdata,
                                            sd_bus_error *error)
{
        return simple_edit(msg, userdata, EDIT_SET_ROUTE_UPSTREAM_WEIGHT, error);
}

static const OptionSpec route_options[] = {
        { "hosts", "as" },
        { "methods", "as" },
        { "priority", "i" },
};

static int apply_route_option(sd_bus_message *msg, const OptionSpec *spec, void *userdata)
{
        ConfigRouteOptions *o = userdata;

        if (streq(spec->key, "priority")) {
                int32_t v;
                int r = sd_bus_message_read(msg, "i", &v);
                o->priority = v;
                return r;
        }
        char **l = NULL;
        int r = sd_bus_message_read_strv(msg, &l);
        char ***field = streq(spec->key, "hosts") ? &o->hosts : &o->methods;
        strv_free(*field);
        *field = l;
        return r;
}

static int read_route_options(sd_bus_message *msg, ConfigRouteOptions *o, sd_bus_error *error)
{
        return read_options(msg, route_options, ELEMENTSOF(route_options), apply_route_option, o,
                            error);
}

static int method_add_route(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        const char *name;
        _cleanup_strv_free_ char **paths = NULL;
        ConfigRouteUpstream *ups = NULL;
        size_t n_ups = 0;
        ConfigRouteOptions options = {};
        _cleanup_free_ char *message = NULL;
        int r;

        r = sd_bus_message_read(msg, "s", &name);
        if (r >= 0)
                r = sd_bus_message_read_strv(msg, &paths);
        if (r >= 0)
                r = sd_bus_message_enter_container(msg, 'a', "(su)");
        if (r < 0)
                return r;
        for (;;) {
                const char *upstream;
                uint32_t weight;
                r = sd_bus_message_read(msg, "(su)", &upstream, &weight);
                if (r <= 0)
                        break;
                ConfigRouteUpstream *l = realloc(ups, (n_ups + 1) * sizeof(*l));
                if (!l) {
                        r = -ENOMEM;
                        break;
                }
                ups = l;
                ups[n_ups++] = (ConfigRouteUpstream){ .name = (char *)upstream, .weight = weight };
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(msg);
        if (r >= 0)
                r = read_route_options(msg, &options, error);
        if (r >= 0) {
                Config *c;
                r = begin(m, &c, error);
                if (r >= 0) {
                        r = config_edit_add_route(c, name, paths, ups, n_ups, &options,
                                                  &message);
                        if (r < 0) {
                                config_unref(c);
                                r = reply_error(error, r, message);
                        } else {
                                r = commit(m, c, error, "route added");
                                if (r >= 0)
                                        r = reply_path(msg, bus_route_path, name);
                        }
                }
        }
        free(ups);
        strv_free(options.hosts);
        strv_free(options.methods);
        return r;
}

static int list(sd_bus_message *msg, Manager *m, bool upstreams)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const Model *model = manager_model(m);
        int r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(so)");
        size_t n = upstreams ? model->n_upstreams : model->n_routes;
        for (size_t i = 0; r >= 0 && i < n; i++) {
                const char *name = upstreams ? model->upstreams[i]->config->name
                                             : model->routes[i]->config->name;
                _cleanup_free_ char *path = NULL;
                r = upstreams ? bus_upstream_path(name, &path) : bus_route_path(name, &path);
                if (r >= 0)
                        r = sd_bus_message_append(reply, "(so)", name, path);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_list_upstreams(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        return list(msg, userdata, true);
}

static int method_list_routes(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        return list(msg, userdata, false);
}

static int method_reload(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        _cleanup_free_ char *errors = NULL;
        int r = manager_reload(m, &errors);
        if (r < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "%s",
                                         errors ? errors : strerror(-r));
        return sd_bus_reply_method_return(msg, NULL);
}

/* Read when asked, never signalled: the count changes with every connection. */
static int property_connections(sd_bus *bus, const char *path, const char *interface,
                                const char *property, sd_bus_message *reply, void *userdata,
                                sd_bus_error *error)
{
        Manager *m = userdata;
        size_t n = streq(property, "ActiveConnections") ? manager_connections(m)
                                                        : manager_max_connections(m);
        return sd_bus_message_append(reply, "u", (uint32_t)(n > UINT32_MAX ? UINT32_MAX : n));
}

const sd_bus_vtable bus_manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_ARGS("AddUpstream",
                                SD_BUS_ARGS("s", name, "s", scheme, "a(squ)", nodes, "a{sv}",
                                            options),
                                SD_BUS_RESULT("o", path), method_add_upstream, 0),
        SD_BUS_METHOD_WITH_ARGS("RemoveUpstream", SD_BUS_ARGS("s", name), SD_BUS_NO_RESULT,
                                method_remove_upstream, 0),
        SD_BUS_METHOD_WITH_ARGS("AddNode",
                                SD_BUS_ARGS("s", upstream, "s", host, "q", port, "u", weight),
                                SD_BUS_NO_RESULT, method_add_node, 0),
        SD_BUS_METHOD_WITH_ARGS("RemoveNode", SD_BUS_ARGS("s", upstream, "s", host, "q", port),
                                SD_BUS_NO_RESULT, method_remove_node, 0),
        SD_BUS_METHOD_WITH_ARGS("SetNodeWeight",
                                SD_BUS_ARGS("s", upstream, "s", host, "q", port, "u", weight),
                                SD_BUS_NO_RESULT, method_set_node_weight, 0),
        SD_BUS_METHOD_WITH_ARGS("AddRoute",
                                SD_BUS_ARGS("s", name, "as", paths, "a(su)", upstreams, "a{sv}",
                                            options),
                                SD_BUS_RESULT("o", path), method_add_route, 0),
        SD_BUS_METHOD_WITH_ARGS("RemoveRoute", SD_BUS_ARGS("s", name), SD_BUS_NO_RESULT,
                                method_remove_route, 0),
        SD_BUS_METHOD_WITH_ARGS("SetRouteUpstreamWeight",
                                SD_BUS_ARGS("s", route, "s", upstream, "u", weight),
                                SD_BUS_NO_RESULT, method_set_route_upstream_weight, 0),
        SD_BUS_METHOD_WITH_ARGS("ListUpstreams", SD_BUS_NO_ARGS, SD_BUS_RESULT("a(so)", upstreams),
                                method_list_upstreams, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListRoutes", SD_BUS_NO_ARGS, SD_BUS_RESULT("a(so)", routes),
                                method_list_routes, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("Reload", NULL, NULL, method_reload, 0),
        SD_BUS_PROPERTY("ActiveConnections", "u", property_connections, 0, 0),
        SD_BUS_PROPERTY("MaxConnections", "u", property_connections, 0, 0),
        SD_BUS_VTABLE_END,
};
