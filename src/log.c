/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>

#include "log.h"

static bool journal_is_stderr;
static int max_level = LOG_INFO;

/* systemd sets JOURNAL_STREAM=dev:inode of the stream it connected stderr to; if fd 2 is still
 * that stream, structured entries go to the journal directly and nothing goes to stderr. */
void log_setup(void)
{
        const char *e = getenv("JOURNAL_STREAM");
        struct stat st;
        unsigned long long dev, ino;

        journal_is_stderr = e && sscanf(e, "%llu:%llu", &dev, &ino) == 2 &&
                            fstat(STDERR_FILENO, &st) == 0 && st.st_dev == dev &&
                            st.st_ino == ino;
}

void log_set_max_level(int level)
{
        max_level = level;
}

bool log_to_journal(void)
{
        return journal_is_stderr;
}

__attribute__((format(printf, 3, 0)))
static void log_internal(int priority, int error, const char *fmt, va_list ap)
{
        char buf[2048];

        if (priority > max_level)
                return;
        if (error)
                errno = error; /* %m in fmt names it */
        vsnprintf(buf, sizeof(buf), fmt, ap);

        if (journal_is_stderr && error)
                sd_journal_send("MESSAGE=%s", buf, "PRIORITY=%i", priority, "ERRNO=%i", error,
                                NULL);
        else if (journal_is_stderr)
                sd_journal_send("MESSAGE=%s", buf, "PRIORITY=%i", priority, NULL);
        else
                fprintf(stderr, "lbproxy: %s\n", buf);
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

void log_event(int priority, const char *message_id, const char *upstream, const char *node,
               const char *host, const char *fmt, ...)
{
        char message[1024];
        va_list ap;

        if (priority > max_level)
                return;
        va_start(ap, fmt);
        vsnprintf(message, sizeof(message), fmt, ap);
        va_end(ap);

        if (!journal_is_stderr) {
                fprintf(stderr, "lbproxy: %s\n", message);
                return;
        }
        (void)sd_journal_send("MESSAGE=%s", message, "MESSAGE_ID=%s", message_id,
                              "PRIORITY=%i", priority, "LBPROXY_UPSTREAM=%s",
                              upstream ? upstream : "", "LBPROXY_NODE=%s", node ? node : "",
                              "LBPROXY_HOST=%s", host ? host : "", NULL);
}

#define FIELD(iov, n, buf, size, ...)                                                              \
        do {                                                                                       \
                int _l = snprintf((buf), (size), __VA_ARGS__);                                     \
                if (_l < 0)                                                                        \
                        _l = 0;                                                                    \
                if ((size_t)_l >= (size))                                                          \
                        _l = (int)(size)-1;                                                        \
                (iov)[(n)++] = (struct iovec){ .iov_base = (buf), .iov_len = (size_t)_l };         \
                (buf) += _l + 1;                                                                   \
                (size) -= (size_t)_l + 1;                                                          \
        } while (0)

void log_access(const AccessRecord *a)
{
        /* Paths are capped so one entry stays one datagram; the full path is not worth more. */
        int path_len = (int)(a->path_len > 1024 ? 1024 : a->path_len);
        int method_len = (int)(a->method_len > 32 ? 32 : a->method_len);
        char message[1536];

        snprintf(message, sizeof(message), "%s \"%.*s %.*s\" %u route=%s upstream=%s node=%s "
                 "address=%s duration_usec=%llu%s%s",
                 a->client, method_len, a->method, path_len, a->path, a->status, a->route,
                 a->upstream, a->node, a->node_address, (unsigned long long)a->duration_usec,
                 a->error ? " error=" : "", a->error ? a->error : "");

        if (!journal_is_stderr)
                fprintf(stderr, "lbproxy: %s\n", message);

        char storage[4096], *p = storage;
        size_t left = sizeof(storage);
        struct iovec iov[16];
        size_t n = 0;

        FIELD(iov, n, p, left, "MESSAGE=%s", message);
        FIELD(iov, n, p, left, "MESSAGE_ID=" LBPROXY_MESSAGE_REQUEST);
        FIELD(iov, n, p, left, "PRIORITY=%i", a->status >= 500 ? LOG_WARNING : LOG_INFO);
        FIELD(iov, n, p, left, "LBPROXY_ROUTE=%s", a->route);
        FIELD(iov, n, p, left, "LBPROXY_UPSTREAM=%s", a->upstream);
        FIELD(iov, n, p, left, "LBPROXY_NODE=%s", a->node);
        FIELD(iov, n, p, left, "LBPROXY_NODE_ADDRESS=%s", a->node_address);
        FIELD(iov, n, p, left, "LBPROXY_METHOD=%.*s", method_len, a->method);
        FIELD(iov, n, p, left, "LBPROXY_PATH=%.*s", path_len, a->path);
        FIELD(iov, n, p, left, "LBPROXY_STATUS=%u", a->status);
        FIELD(iov, n, p, left, "LBPROXY_DURATION_USEC=%llu", (unsigned long long)a->duration_usec);
        FIELD(iov, n, p, left, "LBPROXY_CLIENT=%s", a->client);
        FIELD(iov, n, p, left, "LBPROXY_BYTES_IN=%llu", (unsigned long long)a->bytes_in);
        FIELD(iov, n, p, left, "LBPROXY_BYTES_OUT=%llu", (unsigned long long)a->bytes_out);
        if (a->error)
                FIELD(iov, n, p, left, "LBPROXY_ERROR=%s", a->error);

        (void)sd_journal_sendv(iov, (int)n);
}
