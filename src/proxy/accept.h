/* SPDX-License-Identifier: MIT */
#pragma once

/* Accepting on the listening sockets (net/listener.h). Each worker accepts on each of them, in
 * bounded batches, taking a slot of the process-wide connection limit (conn-limit.h) before each
 * accept(2); each accepted connection becomes a ClientConn of the worker. At the limit, or when
 * accept(2) runs out of descriptors, the worker stops watching its sockets (connections wait in
 * the backlog) until a connection closes or the back-off ends. */

#include <event2/event.h>

#include "net/listener.h"

typedef struct Worker Worker;

/* One worker's watch on one listening socket: every worker accepts on every socket, and the
 * kernel hands each connection to one of them. */
typedef struct ListenerWatch {
        Listener *listener;
        Worker *worker;
        struct event *ev; /* readable: connections wait in the backlog */
} ListenerWatch;

/* Starts accepting on `w`'s loop: fills `watches` (n of them). */
int listeners_watch(Listener *l, size_t n, Worker *w, ListenerWatch *watches);
/* Stops accepting on one worker (shutdown); the sockets stay open so the backlog is kept for a
 * successor. */
void listeners_unwatch(Worker *w);
/* Accepting again after a pause (the back-off's timer, or woken by a connection that closed);
 * on the worker's thread. */
void listeners_resume(Worker *w);
