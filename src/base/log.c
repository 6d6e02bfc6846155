/* SPDX-License-Identifier: MIT */

/* The logging calls: each makes a LogEntry (strings cut to their maximums) and hands it to the
 * log thread (log-queue.c), or, when none runs, writes it at once (log-sink.c). */

#include <stdarg.h>
#include <sys/stat.h>

#include "base/log-internal.h"
#include "base/log.h"

static int max_level = LOG_INFO;

const uint16_t log_str_max[_LOG_STR_MAX] = {
        [LOG_STR_TEXT] = LOG_TEXT_MAX,
        [LOG_STR_MESSAGE_ID] = LOG_MESSAGE_ID_MAX,
        [LOG_STR_HOST] = LOG_NAME_MAX,
        [LOG_STR_ROUTE] = LOG_NAME_MAX,
        [LOG_STR_UPSTREAM] = LOG_NAME_MAX,
        [LOG_STR_NODE] = LOG_NAME_MAX,
        [LOG_STR_NODE_ADDRESS] = LOG_ADDRESS_MAX,
        [LOG_STR_CLIENT] = LOG_ADDRESS_MAX,
        [LOG_STR_METHOD] = LOG_METHOD_MAX,
        [LOG_STR_PATH] = LOG_PATH_MAX,
        [LOG_STR_ERROR] = LOG_ERROR_MAX,
        [LOG_STR_HEALTH] = LOG_HEALTH_MAX,
        [LOG_STR_REASON] = LOG_REASON_MAX,
};

/* systemd sets JOURNAL_STREAM=dev:inode of the stream it connected stderr to; if fd 2 is still
 * that stream, structured entries go to the journal directly and nothing goes to stderr. */
void log_setup(void)
{
        const char *e = getenv("JOURNAL_STREAM");
        struct stat st;
        unsigned long long dev, ino;

        log_journal_is_stderr = e && sscanf(e, "%llu:%llu", &dev, &ino) == 2 &&
                                fstat(STDERR_FILENO, &st) == 0 && st.st_dev == dev &&
                                st.st_ino == ino;
}

void log_set_max_level(int level)
{
        max_level = level;
}

bool log_to_journal(void)
{
        return log_journal_is_stderr;
}

void log_entry_set(LogEntry *e, LogStr i, const char *s, size_t len)
{
        e->str[i] = s;
        e->len[i] = s ? (uint16_t)(len < log_str_max[i] ? len : log_str_max[i]) : 0;
}

static void log_entry_set_string(LogEntry *e, LogStr i, const char *s)
{
        /* strnlen: a string longer than the maximum is not read to its end. */
        log_entry_set(e, i, s, s ? strnlen(s, log_str_max[i]) : 0);
}

static void submit(const LogEntry *e)
{
        if (log_queue_push(e))
                return;
        (void)log_sink_write(e);
        log_sink_flush();
}

__attribute__((format(printf, 3, 0)))
static void log_internal(int priority, int error, const char *fmt, va_list ap)
{
        char text[LOG_TEXT_MAX + 1];

        if (priority > max_level)
                return;
        if (error)
                errno = error; /* %m in fmt names it */
        int n = vsnprintf(text, sizeof(text), fmt, ap);

        LogEntry e = { .kind = LOG_KIND_MESSAGE, .priority = priority, .error = error,
                       .time = now_usec(CLOCK_MONOTONIC) };
        log_entry_set(&e, LOG_STR_TEXT, text, n < 0 ? 0 : (size_t)n);
        submit(&e);
}

void log_full(int priority, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        log_internal(priority, 0, fmt, ap);
        va_end(ap);
}

int log_full_errno(int priority, int error, const char *fmt, ...)
{
        va_list ap;
        error = abs(error);
        va_start(ap, fmt);
        log_internal(priority, error, fmt, ap);
        va_end(ap);
        return -error;
}

void log_peer_warning(const char *fmt, ...)
{
        va_list ap;

        if (LOG_WARNING > max_level || !log_queue_peer_allowed())
                return;
        va_start(ap, fmt);
        log_internal(LOG_WARNING, 0, fmt, ap);
        va_end(ap);
}

static void event_submit(int priority, const char *message_id, const char *upstream,
                         const char *node, const char *host, const char *health,
                         const char *reason, const char *fmt, va_list ap)
{
        char text[LOG_TEXT_MAX + 1];
        int n = vsnprintf(text, sizeof(text), fmt, ap);

        LogEntry e = { .kind = LOG_KIND_MESSAGE, .priority = priority,
                       .time = now_usec(CLOCK_MONOTONIC) };
        log_entry_set(&e, LOG_STR_TEXT, text, n < 0 ? 0 : (size_t)n);
        log_entry_set_string(&e, LOG_STR_MESSAGE_ID, message_id);
        log_entry_set_string(&e, LOG_STR_UPSTREAM, upstream);
        log_entry_set_string(&e, LOG_STR_NODE, node);
        log_entry_set_string(&e, LOG_STR_HOST, host);
        log_entry_set_string(&e, LOG_STR_HEALTH, health);
        log_entry_set_string(&e, LOG_STR_REASON, reason);
        submit(&e);
}

void log_event(int priority, const char *message_id, const char *upstream, const char *node,
               const char *host, const char *fmt, ...)
{
        va_list ap;

        if (priority > max_level)
                return;
        va_start(ap, fmt);
        event_submit(priority, message_id, upstream, node, host, NULL, NULL, fmt, ap);
        va_end(ap);
}

void log_health_event(int priority, const char *message_id, const char *upstream,
                      const char *node, const char *health, const char *reason,
                      const char *fmt, ...)
{
        va_list ap;

        if (priority > max_level)
                return;
        va_start(ap, fmt);
        event_submit(priority, message_id, upstream, node, NULL, health, reason, fmt, ap);
        va_end(ap);
}

void log_entry_access(LogEntry *e, const AccessRecord *a)
{
        *e = (LogEntry){
                .kind = LOG_KIND_ACCESS,
                .priority = a->status >= 500 ? LOG_WARNING : LOG_INFO,
                .time = now_usec(CLOCK_MONOTONIC),
                .status = a->status,
                .duration_usec = a->duration_usec,
                .bytes_in = a->bytes_in,
                .bytes_out = a->bytes_out,
        };
        log_entry_set_string(e, LOG_STR_ROUTE, a->route);
        log_entry_set_string(e, LOG_STR_UPSTREAM, a->upstream);
        log_entry_set_string(e, LOG_STR_NODE, a->node);
        log_entry_set_string(e, LOG_STR_NODE_ADDRESS, a->node_address);
        log_entry_set_string(e, LOG_STR_CLIENT, a->client);
        log_entry_set(e, LOG_STR_METHOD, a->method, a->method_len);
        log_entry_set(e, LOG_STR_PATH, a->path, a->path_len);
        log_entry_set_string(e, LOG_STR_ERROR, a->error);
}

void log_access(const AccessRecord *a)
{
        LogEntry e;
        log_entry_access(&e, a);
        submit(&e);
}
