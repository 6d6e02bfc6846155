/* SPDX-License-Identifier: MIT */
#pragma once

/* Accepting on the listening sockets (net/listener.h), in bounded batches, taking a slot of the
 * process-wide connection limit (conn-limit.h) before each accept(2); each accepted connection
 * becomes a ClientConn of a worker. A socket lbproxy bound is one per worker (SO_REUSEPORT: the
 * kernel picks the worker); a socket from systemd is one for all, watched by worker 0, which
 * hands its connections to the workers in turn. At the limit, or when accept(2) runs out of
 * descriptors, a worker stops watching its sockets (connections wait in the backlog) until a
 * connection closes or the back-off ends. */

#include <event2/event.h>

#include "net/listener.h"

typedef struct Worker Worker;

/* One worker's watch on one listener: on its own socket of a bound listener, or (worker 0) on
 * an activated one. */
typedef struct ListenerWatch {
        Listener *listener;
        Worker *worker;
        struct event *ev; /* readable: connections wait in the backlog; NULL: not watched here */
        bool hand_on;     /* accepts for every worker */
} ListenerWatch;

/* Starts accepting on `w`'s loop: fills `watches` (n of them). */
int listeners_watch(Listener *l, size_t n, Worker *w, ListenerWatch *watches);
/* Stops accepting on one worker (shutdown); the sockets stay open so the backlog is kept for a
 * successor. */
void listeners_unwatch(Worker *w);
/* Serves the connections another worker accepted for `w` (its Handoff); on `w`'s thread. */
void listeners_take_handed(Worker *w);
/* Accepting again after a pause (the back-off's timer, or woken by a connection that closed);
 * on the worker's thread. */
void listeners_resume(Worker *w);
