/* SPDX-License-Identifier: MIT */
/* Placeholder so the tree links until config-edit.c lands; removed then. Every edit is refused. */
#include "config-edit.h"

#define REFUSE(...)                                                                                \
        do {                                                                                       \
                if (ret_error)                                                                     \
                        *ret_error = strdup("runtime changes are not available yet");              \
                return -EOPNOTSUPP;                                                                \
        } while (0)

int config_copy(const Config *c, Config **ret)
{
        return -EOPNOTSUPP;
}
int config_edit_add_upstream(Config *c, const char *name, const char *scheme,
                             const ConfigNode *nodes, size_t n_nodes,
                             const ConfigUpstreamOptions *options, char **ret_error)
{
        REFUSE();
}
int config_edit_remove_upstream(Config *c, const char *name, char **ret_error)
{
        REFUSE();
}
int config_edit_add_node(Config *c, const char *upstream, const char *host, uint16_t port,
                         uint32_t weight, char **ret_error)
{
        REFUSE();
}
int config_edit_remove_node(Config *c, const char *upstream, const char *host, uint16_t port,
                            char **ret_error)
{
        REFUSE();
}
int config_edit_set_node_weight(Config *c, const char *upstream, const char *host,
                                uint16_t port, uint32_t weight, char **ret_error)
{
        REFUSE();
}
int config_edit_add_route(Config *c, const char *name, char **paths,
                          const ConfigRouteUpstream *upstreams, size_t n_upstreams,
                          const ConfigRouteOptions *options, char **ret_error)
{
        REFUSE();
}
int config_edit_remove_route(Config *c, const char *name, char **ret_error)
{
        REFUSE();
}
int config_edit_set_route_upstream_weight(Config *c, const char *route, const char *upstream,
                                          uint32_t weight, char **ret_error)
{
        REFUSE();
}
