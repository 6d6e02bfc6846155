/* SPDX-License-Identifier: MIT */
#pragma once

/* lbproxy on the system bus as org.lbproxy1: the Manager object at /org/lbproxy1, one object per
 * upstream and per route below it, under an object manager. Losing the bus never stops the
 * proxy: the connection is retried in the background. It sees the daemon through the control
 * API (control/control.h) alone. */

#include <systemd/sd-bus.h>

#include "control/control.h"

/* The D-Bus service, as the Manager runs it (manager_start()). */
extern const ControlFrontend bus_frontend;

#define BUS_NAME "org.lbproxy1"
#define BUS_PATH "/org/lbproxy1"
#define BUS_INTERFACE_MANAGER "org.lbproxy1.Manager"
#define BUS_INTERFACE_UPSTREAM "org.lbproxy1.Upstream"
#define BUS_INTERFACE_ROUTE "org.lbproxy1.Route"
#define BUS_PATH_UPSTREAM BUS_PATH "/upstream"
#define BUS_PATH_ROUTE BUS_PATH "/route"

#define BUS_ERROR_NOT_FOUND "org.lbproxy1.Error.NotFound"
#define BUS_ERROR_EXISTS "org.lbproxy1.Error.Exists"
#define BUS_ERROR_IN_USE "org.lbproxy1.Error.InUse"
/* With a shared store: the object changed there since this instance saw it. */
#define BUS_ERROR_CONFLICT "org.lbproxy1.Error.Conflict"

/* The Manager methods' userdata: the connection's owner, and the Manager it serves. */
typedef struct Bus Bus;
Manager *bus_manager(const Bus *b);
/* After sending from outside a bus callback (a deferred reply): see bus-event.h. */
void bus_kick(Bus *b);

/* Shared by the object files. */
int bus_upstream_path(const char *name, char **ret);
int bus_route_path(const char *name, char **ret);
extern const sd_bus_vtable bus_manager_vtable[];
/* Takes Properties.Set of the writable properties whose change must be durable before it is
 * answered (an Upstream's Balancer); installed with sd_bus_add_filter(). */
int bus_filter_property_set(sd_bus_message *msg, void *userdata, sd_bus_error *error);
extern const sd_bus_vtable bus_upstream_vtable[];
extern const sd_bus_vtable bus_route_vtable[];
int bus_upstream_find(sd_bus *bus, const char *path, const char *interface, void *userdata,
                      void **found, sd_bus_error *error);
int bus_route_find(sd_bus *bus, const char *path, const char *interface, void *userdata,
                   void **found, sd_bus_error *error);
int bus_upstream_enumerate(sd_bus *bus, const char *prefix, void *userdata, char ***nodes,
                           sd_bus_error *error);
int bus_route_enumerate(sd_bus *bus, const char *prefix, void *userdata, char ***nodes,
                        sd_bus_error *error);
