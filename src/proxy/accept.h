/* SPDX-License-Identifier: MIT */
#pragma once

/* Listening sockets: taken from socket activation by FileDescriptorName=, or bound here when
 * lbproxy is started by hand. Each worker accepts on each of them, in bounded batches, taking a
 * slot of the process-wide connection limit (conn-limit.h) before each accept(2); each accepted
 * connection becomes a ClientConn of the worker. At the limit, or when accept(2) runs out of
 * descriptors, the worker stops watching its sockets (connections wait in the backlog) until a
 * connection closes or the back-off ends. */

#include <event2/event.h>
#include <stdbool.h>

#include "config/config.h"

typedef struct Worker Worker;

typedef struct Listener {
        char *name;
        int fd;
        bool activated; /* came from systemd: never closed or re-bound by us on reload */
        bool https;
        bool nodelay; /* TCP_NODELAY set here: accepted sockets inherit it (Linux) */
        ListenerProtocol protocol; /* as configured when opened */
} Listener;

/* One worker's watch on one listening socket: every worker accepts on every socket, and the
 * kernel hands each connection to one of them. */
typedef struct ListenerWatch {
        Listener *listener;
        Worker *worker;
        struct event *ev; /* readable: connections wait in the backlog */
} ListenerWatch;

/* Opens every listener of `c`: activated fds (from sd_listen_fds_with_names) are matched by
 * name, the rest are bound to their `listen` address. An activated fd that matches no listener
 * is logged and closed. On failure the message names the listener and address. */
int listeners_open(const Config *c, Listener **ret, size_t *ret_n);
/* Starts accepting on `w`'s loop: fills `watches` (n of them). */
int listeners_watch(Listener *l, size_t n, Worker *w, ListenerWatch *watches);
/* Stops accepting on one worker (shutdown); the sockets stay open so the backlog is kept for a
 * successor. */
void listeners_unwatch(Worker *w);
/* Accepting again after a pause (the back-off's timer, or woken by a connection that closed);
 * on the worker's thread. */
void listeners_resume(Worker *w);
void listeners_free(Listener *l, size_t n);
