/* SPDX-License-Identifier: MIT */
#pragma once

/* Changes to a configuration made while lbproxy runs (D-Bus): each works on a copy, validates it
 * whole with the same rules as the YAML loader, and either succeeds or leaves the copy as it was.
 * A failure returns one of these and a message naming the bad argument:
 *   -EINVAL  invalid argument (InvalidArgs)
 *   -ENOENT  no such upstream / route / node (NotFound)
 *   -EEXIST  the name or node exists already (Exists)
 *   -EBUSY   an upstream still used by a route or listener, named in the message (InUse)
 *   -ENOMEM
 *
 * Arguments are checked first (-EINVAL), then against the configuration (the other codes).
 * Messages name the argument as the D-Bus method does: "name: ...", "nodes[1].port: ...",
 * "options.pass_host: ...", "upstreams[0].name: no upstream named 'x'"; options by their field
 * name below. On failure *ret_error (when ret_error is not NULL) gets the message, to be freed
 * by the caller; it is NULL on success and on -ENOMEM. A failed edit leaves `c` exactly as it
 * was. New objects get the defaults a file would give them, and a mark at "<runtime>" (a name
 * appended to c->files once). */

#include "config/config.h"

/* A deep copy, equal to `c` (files and marks included). */
int config_copy(const Config *c, Config **ret);

/* Options of a new upstream, as D-Bus a{sv} gives them; NULL / -1 = the YAML default. The tls
 * fields (sni, ca_file, verify) override the top-level tls: block, as an upstream's tls: would. */
typedef struct ConfigUpstreamOptions {
        const char *pass_host;
        const char *upstream_host;
        const char *balancer;
        const char *sni;
        const char *ca_file;
        int verify;                     /* -1 = default */
        int64_t retries;                /* -1 = default */
        int64_t keepalive_pool;         /* -1 = default */
        int64_t connect_timeout_usec;   /* -1 = default */
        int64_t send_timeout_usec;      /* -1 = default */
        int64_t read_timeout_usec;      /* -1 = default */
} ConfigUpstreamOptions;

#define CONFIG_UPSTREAM_OPTIONS_INIT                                                               \
        ((ConfigUpstreamOptions){ .verify = -1,                                                    \
                                  .retries = -1,                                                   \
                                  .keepalive_pool = -1,                                            \
                                  .connect_timeout_usec = -1,                                      \
                                  .send_timeout_usec = -1,                                         \
                                  .read_timeout_usec = -1 })

/* scheme NULL or "" = "http". A node's port must be given (1..65535); a node may be listed once. */
int config_edit_add_upstream(Config *c, const char *name, const char *scheme,
                             const ConfigNode *nodes, size_t n_nodes,
                             const ConfigUpstreamOptions *options, char **ret_error);
/* -EBUSY while a route or a listener (tcp, tls-passthrough) uses it. */
int config_edit_remove_upstream(Config *c, const char *name, char **ret_error);
/* Nodes are found by host (IP literals compared as addresses, names without regard to case) and
 * port. The last node of an upstream cannot be removed (-EINVAL). */
int config_edit_add_node(Config *c, const char *upstream, const char *host, uint16_t port,
                         uint32_t weight, char **ret_error);
int config_edit_remove_node(Config *c, const char *upstream, const char *host, uint16_t port,
                            char **ret_error);
int config_edit_set_node_weight(Config *c, const char *upstream, const char *host,
                                uint16_t port, uint32_t weight, char **ret_error);

/* Options of a new route; NULL = none. */
typedef struct ConfigRouteOptions {
        char **hosts;   /* NULL = any host; non-NULL must not be empty, as in a file */
        char **methods; /* NULL = any method; stored upper-cased */
        int priority;
} ConfigRouteOptions;

/* paths: NULL-terminated, at least one. An upstream may be listed once per route. */
int config_edit_add_route(Config *c, const char *name, char **paths,
                          const ConfigRouteUpstream *upstreams, size_t n_upstreams,
                          const ConfigRouteOptions *options, char **ret_error);
int config_edit_remove_route(Config *c, const char *name, char **ret_error);
int config_edit_set_route_upstream_weight(Config *c, const char *route, const char *upstream,
                                          uint32_t weight, char **ret_error);
/* The last upstream of a route cannot be removed (-EINVAL). */
int config_edit_add_route_upstream(Config *c, const char *route, const char *upstream,
                                   uint32_t weight, char **ret_error);
int config_edit_remove_route_upstream(Config *c, const char *route, const char *upstream,
                                      char **ret_error);
