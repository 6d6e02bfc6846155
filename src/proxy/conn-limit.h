/* SPDX-License-Identifier: MIT */
#pragma once

/* Admission of client connections, process-wide and shared by every worker thread:
 *   - how many are open against max_connections, exactly: a worker takes a slot before it
 *     calls accept(2) and the connection gives it back when it closes, so the count never
 *     passes the maximum, whatever the number of workers;
 *   - the back-off after accept(2) ran out of file descriptors or memory (EMFILE, ENFILE,
 *     ENOBUFS, ENOMEM): 100 ms, doubling up to 1 s, back to 100 ms once an accept succeeds;
 *   - the workers that stopped accepting for either reason, woken when a connection closes;
 *   - the messages about both, one a second at most for the whole process, with a count.
 * The fast paths (a slot taken and given back) are a few atomic operations; the lock is taken
 * only on the slow ones (a back-off starting, a message). */

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct Worker Worker;

/* Events of one kind since their last message. */
typedef struct ConnLimitEvents {
        uint64_t logged_usec; /* CLOCK_MONOTONIC; 0: never */
        unsigned count;
} ConnLimitEvents;

typedef struct ConnLimit {
        atomic_size_t current;  /* client connections open, and slots taken for an accept */
        atomic_size_t max;
        atomic_uint n_waiting;  /* workers registered as paused (Worker.accept_waiting) */
        atomic_uint_fast64_t retry_at_usec; /* CLOCK_MONOTONIC end of the back-off; 0: none */
        atomic_uint_fast64_t backoff_usec;  /* the last back-off; 0 once an accept succeeded */
        Worker *workers; /* whom to wake; set before the worker threads start */
        size_t n_workers;

        pthread_mutex_t lock; /* the back-off decision and the counts below */
        ConnLimitEvents failed; /* accept failures */
        ConnLimitEvents full;   /* workers pausing at the limit */
} ConnLimit;

void conn_limit_init(ConnLimit *cl);
void conn_limit_done(ConnLimit *cl);
void conn_limit_set_workers(ConnLimit *cl, Worker *workers, size_t n);
/* A new maximum (start, reload). Workers waiting at the old one are woken when it grew. */
void conn_limit_set_max(ConnLimit *cl, size_t max);
size_t conn_limit_current(const ConnLimit *cl);
size_t conn_limit_max(const ConnLimit *cl);

/* A slot for one accept(2); false at the limit. */
bool conn_limit_take(ConnLimit *cl);
/* Gives a slot back that no connection came of (accept(2) failed, or the connection could not
 * be set up). */
void conn_limit_put(ConnLimit *cl);
/* A client connection closed: its slot is free, and so is a file descriptor, which ends a
 * back-off early. Wakes the workers that wait. */
void conn_limit_closed(ConnLimit *cl);

/* The end of the back-off in progress (CLOCK_MONOTONIC), or 0 when there is none. */
uint64_t conn_limit_retry_at(ConnLimit *cl);
/* accept(2) on `listener` failed with `error` (a positive errno) for want of descriptors or
 * memory: starts a back-off, or joins the one in progress, and says so (at most once a
 * second). Returns its end. */
uint64_t conn_limit_back_off(ConnLimit *cl, const char *listener, int error);
/* Connections were accepted: the next back-off starts small again. */
void conn_limit_accepted(ConnLimit *cl);
/* A worker stopped accepting at the limit: says so, at most once a second. */
void conn_limit_report_full(ConnLimit *cl);

/* Registers `w` as paused: at the limit (`until` 0) or in the back-off ending at `until`. Returns
 * false when what it waits for happened meanwhile (a slot came free, a connection closed during
 * the back-off): then `w` is not registered and should go on accepting. */
bool conn_limit_wait(ConnLimit *cl, Worker *w, uint64_t until);
/* `w` goes on by itself (its back-off timer, or it stops): no longer registered. */
void conn_limit_unwait(ConnLimit *cl, Worker *w);

/* Whether the fd limit can hold `max` connections: the descriptors they need beside the
 * daemon's own (see conn_limit_default). */
size_t conn_limit_fds_needed(size_t max, size_t n_listen_fds, size_t n_workers);
/* max_connections when the configuration sets none, from the soft RLIMIT_NOFILE `nofile`. */
size_t conn_limit_default(uint64_t nofile, size_t n_listen_fds, size_t n_workers);
