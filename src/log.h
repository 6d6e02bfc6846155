/* SPDX-License-Identifier: MIT */
#pragma once

/* Program-level logging: to the journal when stderr is connected to it (run by systemd), else to
 * stderr as one line per message. Library-style modules do not log; they return errors. */

#include <stdbool.h>
#include <stdint.h>
#include <syslog.h>

#include "util.h"

/* MESSAGE_IDs, explained in the journal catalog. */
#define LBPROXY_MESSAGE_REQUEST "5c1b9a2e4d7f4e1a9b3c6d8e0f2a4b6c"
#define LBPROXY_MESSAGE_STARTED "0b7e2d4f6a8c4e1b9d3f5a7c9e1b3d5f"

void log_setup(void);
void log_set_max_level(int level);
bool log_to_journal(void);

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
