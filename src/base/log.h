/* SPDX-License-Identifier: MIT */
#pragma once

/* Program-level logging: to the journal when stderr is connected to it (run by systemd), else to
 * stderr as one line per message (access entries then also go to the journal, if there is
 * one). Library-style modules do not log; they return errors.
 *
 * While the daemon serves, no thread writes an entry itself: entries are copied into the
 * calling thread's queue and one log thread writes them (log-queue.c), so a slow or stuck
 * journald never stalls a request. A full queue drops the entry and counts it; the log thread
 * says "dropped N access entries" once a second at most. Before log_start() and after
 * log_stop() entries are written at once by the thread that logs (sd_journal_sendv() holds it
 * while journald takes nothing, as it holds any program). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <syslog.h>

#include "base/util.h"

/* MESSAGE_IDs, explained in the journal catalog (systemd/lbproxy.catalog). */
#define LBPROXY_MESSAGE_REQUEST "5c1b9a2e4d7f4e1a9b3c6d8e0f2a4b6c"     /* one proxied request */
#define LBPROXY_MESSAGE_NODE_HEALTH "7a3e9c1f5b2d4e8a9c6f1b3d5e7a9c2e" /* node health, admin */
#define LBPROXY_MESSAGE_UPSTREAM_PANIC "687cb4e2411e40749ce24f1f14f568c5" /* all nodes down, or not any more */
#define LBPROXY_MESSAGE_DNS_CHANGE "2f8d6b4a1c9e4f7b8a5d3c1e9f7b5a3d"  /* a name's addresses */
#define LBPROXY_MESSAGE_DNS_FAILURE "4b6d8f0a2c4e4a6b8d0f2a4c6e8b0d2f" /* a name did not resolve */
#define LBPROXY_MESSAGE_CONFIG_CHANGE "9e1c3a5f7b2d4c6e8a0f1b3d5c7e9a2b" /* D-Bus change, reload */
#define LBPROXY_MESSAGE_STATE_REJECTED "62b7d884506b458d9d5b7432629bc9dc" /* state.yaml unused */
#define LBPROXY_MESSAGE_STORE "b3a1f0c27e5d4c9a8f6e2d4b1a9c7e05" /* etcd: a key refused, reachability */

/* Warnings a peer can trigger at will (log_peer_warning): at most this many a second per
 * thread; the rest are counted and the count is said once a second. */
#define LOG_PEER_WARNINGS_PER_SEC 10

void log_setup(void);
void log_set_max_level(int level);
bool log_to_journal(void);

/* Starts the log thread with `n_queues` queues, one per thread that logs while it runs (one
 * per worker); the calling thread takes queue 0. On failure logging stays synchronous. */
int log_start(size_t n_queues);
/* The calling thread logs into queue `i` from now on (a worker thread, at its start). */
void log_attach(size_t i);
/* Writes what the queues hold, ends the log thread, and goes back to synchronous logging. Call
 * when no other thread logs. Takes a second at most: a log thread still stuck then in a write
 * that journald (or stderr) does not take is cancelled, and nothing more is tried there. */
void log_stop(void);
/* Access entries dropped because a queue was full, since the start. Any thread. */
uint64_t log_access_dropped_total(void);

void log_full(int priority, const char *fmt, ...) _printf_(2, 3);
/* Logs and returns -abs(error), so error paths read `return log_error_errno(r, "...: %m")`. */
int log_full_errno(int priority, int error, const char *fmt, ...) _printf_(3, 4);

#define log_debug(...) log_full(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_full(LOG_INFO, __VA_ARGS__)
#define log_notice(...) log_full(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, __VA_ARGS__)
#define log_error(...) log_full(LOG_ERR, __VA_ARGS__)
#define log_error_errno(e, ...) log_full_errno(LOG_ERR, e, __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_WARNING, e, __VA_ARGS__)

/* A warning about something a client (or another peer) did, which it can repeat at will
 * ("refused request"): rate-limited, see LOG_PEER_WARNINGS_PER_SEC. */
void log_peer_warning(const char *fmt, ...) _printf_(1, 2);

/* A notable event: one entry with its MESSAGE_ID and LBPROXY_UPSTREAM / LBPROXY_NODE /
 * LBPROXY_HOST fields where given (NULL = absent). */
void log_event(int priority, const char *message_id, const char *upstream, const char *node,
               const char *host, const char *fmt, ...) _printf_(6, 7);
/* A node's health changed: an event with LBPROXY_HEALTH (its state now) and LBPROXY_REASON. */
void log_health_event(int priority, const char *message_id, const char *upstream,
                      const char *node, const char *health, const char *reason,
                      const char *fmt, ...) _printf_(7, 8);

/* One proxied (or refused) request: one journal entry with LBPROXY_* fields. */
typedef struct AccessRecord {
        const char *route;    /* "-" when none */
        const char *upstream; /* "-" when none */
        const char *node;     /* host:port as configured, "-" when none */
        const char *node_address; /* ip:port connected to, "-" when none */
        const char *client;       /* ip:port */
        const char *method;
        size_t method_len;
        const char *path;
        size_t path_len;
        unsigned status;
        uint64_t duration_usec;
        uint64_t bytes_in, bytes_out; /* request and response bytes, heads included */
        const char *error; /* why a request failed, or NULL */
} AccessRecord;

void log_access(const AccessRecord *a);
