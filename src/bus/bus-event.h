/* SPDX-License-Identifier: MIT */
#pragma once

/* Drives an sd-bus connection from a libevent loop: its fd, its timeout, and a deferred "kick"
 * that processes what sd-bus has already read (invisible to epoll) and re-arms. Processing runs in
 * batches so a flood of bus messages cannot starve the proxy on the same loop. */

#include <event2/event.h>
#include <systemd/sd-bus.h>

typedef struct BusEvent BusEvent;

/* Called when the connection is lost (the bus went away): the owner tears down and retries. */
typedef void (*bus_event_disconnect_fn)(void *userdata);

int bus_event_attach(sd_bus *bus, struct event_base *base, bus_event_disconnect_fn on_disconnect,
                     void *userdata, BusEvent **ret);
BusEvent *bus_event_free(BusEvent *b);

/* Call after sending from outside a bus callback (signals, deferred replies). */
void bus_event_kick(BusEvent *b);
