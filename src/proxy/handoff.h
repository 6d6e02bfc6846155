/* SPDX-License-Identifier: MIT */
#pragma once

/* Connections one worker accepted for another (proxy/accept.c: a socket from systemd is one
 * socket for all workers, so one worker accepts on it and hands connections on). A queue per
 * receiving worker, under a mutex: the acceptor pushes, the receiver takes in batches on its own
 * thread. */

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "net/listener.h"

typedef struct HandedConn {
        int fd;
        const Listener *listener;
        struct sockaddr_storage peer;
} HandedConn;

typedef struct Handoff {
        pthread_mutex_t lock;
        HandedConn *items;
        size_t n, allocated;
} Handoff;

void handoff_init(Handoff *h);
/* Closes what is still queued; returns how many it closed (each held a connection slot). */
size_t handoff_done(Handoff *h);
/* Queues `fd` (which the queue owns from here on when it succeeds). Returns -ENOMEM, or 1 when
 * the queue was empty before (the receiver needs waking), 0 when not. */
int handoff_push(Handoff *h, int fd, const struct sockaddr *peer, socklen_t peer_len,
                 const Listener *l);
/* Takes up to `max` of the oldest into `ret`; returns how many, and whether more are left in
 * `ret_more`. */
size_t handoff_take(Handoff *h, HandedConn *ret, size_t max, bool *ret_more);
