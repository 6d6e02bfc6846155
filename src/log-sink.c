/* SPDX-License-Identifier: MIT */

/* Where an entry is written: its journal fields (the same fields, in the same order, as the
 * entries always had) and its stderr line. Under systemd (stderr is journald's stream) the
 * journal gets every entry and stderr nothing; else stderr gets every line and the journal,
 * if there is one, a copy of the access entries with their fields. When the journal cannot be
 * written (no socket, nobody behind it), that is said once, and stderr takes its place. */

#include <assert.h>
#include <stdarg.h>

#include "journal.h"
#include "log-internal.h"
#include "log.h"

bool log_journal_is_stderr;

static struct {
        int journal_fd;
        bool journal_gone; /* said once; not tried again */
        uint64_t skipped, skipped_taken;
        size_t out_len;
        char out[64 * 1024]; /* stderr lines not written yet */
} sink = { .journal_fd = -EBADF };

_Static_assert(sizeof(sink.out) > 2 * LOG_FIELDS_STORAGE, "a line always fits the buffer");

int log_fields_add(LogFields *f, const char *fmt, ...)
{
        size_t left = sizeof(f->storage) - f->used;
        char *p = f->storage + f->used;
        va_list ap;

        if (f->n >= LOG_FIELDS_MAX)
                return -ENOBUFS;
        va_start(ap, fmt);
        int l = vsnprintf(p, left, fmt, ap);
        va_end(ap);
        if (l < 0 || (size_t)l >= left)
                return -ENOBUFS;
        f->iov[f->n++] = (struct iovec){ .iov_base = p, .iov_len = (size_t)l };
        f->used += (size_t)l + 1;
        return 0;
}

/* printf arguments for string i of e: "%.*s". */
#define STR(e, i) (int)(e)->len[i], (e)->str[i] ? (e)->str[i] : ""

static int format_message(const LogEntry *e, LogFields *f)
{
        int r = log_fields_add(f, "MESSAGE=%.*s", STR(e, LOG_STR_TEXT));
        if (e->str[LOG_STR_MESSAGE_ID]) {
                /* An event (log_event). */
                r |= log_fields_add(f, "MESSAGE_ID=%.*s", STR(e, LOG_STR_MESSAGE_ID));
                r |= log_fields_add(f, "PRIORITY=%i", e->priority);
                r |= log_fields_add(f, "LBPROXY_UPSTREAM=%.*s", STR(e, LOG_STR_UPSTREAM));
                r |= log_fields_add(f, "LBPROXY_NODE=%.*s", STR(e, LOG_STR_NODE));
                r |= log_fields_add(f, "LBPROXY_HOST=%.*s", STR(e, LOG_STR_HOST));
                return r;
        }
        r |= log_fields_add(f, "PRIORITY=%i", e->priority);
        if (e->error)
                r |= log_fields_add(f, "ERRNO=%i", e->error);
        return r;
}

static int format_access(const LogEntry *e, LogFields *f)
{
        int r = log_fields_add(f, "MESSAGE=%.*s \"%.*s %.*s\" %u route=%.*s upstream=%.*s node=%.*s "
                               "address=%.*s duration_usec=%llu%s%.*s",
                               STR(e, LOG_STR_CLIENT), STR(e, LOG_STR_METHOD),
                               STR(e, LOG_STR_PATH), e->status, STR(e, LOG_STR_ROUTE),
                               STR(e, LOG_STR_UPSTREAM), STR(e, LOG_STR_NODE),
                               STR(e, LOG_STR_NODE_ADDRESS),
                               (unsigned long long)e->duration_usec,
                               e->str[LOG_STR_ERROR] ? " error=" : "", STR(e, LOG_STR_ERROR));
        r |= log_fields_add(f, "MESSAGE_ID=%s", LBPROXY_MESSAGE_REQUEST);
        r |= log_fields_add(f, "PRIORITY=%i", e->priority);
        r |= log_fields_add(f, "LBPROXY_ROUTE=%.*s", STR(e, LOG_STR_ROUTE));
        r |= log_fields_add(f, "LBPROXY_UPSTREAM=%.*s", STR(e, LOG_STR_UPSTREAM));
        r |= log_fields_add(f, "LBPROXY_NODE=%.*s", STR(e, LOG_STR_NODE));
        r |= log_fields_add(f, "LBPROXY_NODE_ADDRESS=%.*s", STR(e, LOG_STR_NODE_ADDRESS));
        r |= log_fields_add(f, "LBPROXY_METHOD=%.*s", STR(e, LOG_STR_METHOD));
        r |= log_fields_add(f, "LBPROXY_PATH=%.*s", STR(e, LOG_STR_PATH));
        r |= log_fields_add(f, "LBPROXY_STATUS=%u", e->status);
        r |= log_fields_add(f, "LBPROXY_DURATION_USEC=%llu", (unsigned long long)e->duration_usec);
        r |= log_fields_add(f, "LBPROXY_CLIENT=%.*s", STR(e, LOG_STR_CLIENT));
        r |= log_fields_add(f, "LBPROXY_BYTES_IN=%llu", (unsigned long long)e->bytes_in);
        r |= log_fields_add(f, "LBPROXY_BYTES_OUT=%llu", (unsigned long long)e->bytes_out);
        if (e->str[LOG_STR_ERROR])
                r |= log_fields_add(f, "LBPROXY_ERROR=%.*s", STR(e, LOG_STR_ERROR));
        return r;
}

int log_format_fields(const LogEntry *e, LogFields *f)
{
        f->n = 0;
        f->used = 0;
        /* Each failure is -ENOBUFS; or-ing them keeps it. */
        return e->kind == LOG_KIND_ACCESS ? format_access(e, f) : format_message(e, f);
}

void log_sink_flush(void)
{
        size_t done = 0;

        while (done < sink.out_len) {
                ssize_t n = write(STDERR_FILENO, sink.out + done, sink.out_len - done);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break; /* stderr is gone: nowhere left to say so */
                done += (size_t)n;
        }
        sink.out_len = 0;
}

static void out_line(const char *text, size_t len)
{
        static const char prefix[] = "lbproxy: ";

        if (sink.out_len + sizeof(prefix) + len > sizeof(sink.out))
                log_sink_flush();
        memcpy(sink.out + sink.out_len, prefix, sizeof(prefix) - 1);
        sink.out_len += sizeof(prefix) - 1;
        memcpy(sink.out + sink.out_len, text, len);
        sink.out_len += len;
        sink.out[sink.out_len++] = '\n';
}

static int journal_write(const LogFields *f, uint64_t wait_usec)
{
        int r;

        for (int attempt = 0; attempt < 2; attempt++) {
                if (sink.journal_fd < 0) {
                        r = journal_connect();
                        if (r < 0)
                                return r;
                        sink.journal_fd = r;
                }
                r = journal_send(sink.journal_fd, f->iov, f->n, wait_usec);
                if (r != -ECONNREFUSED && r != -ENOTCONN)
                        return r;
                /* journald went away; a new one listens on a new socket at the same path. */
                sink.journal_fd = safe_close(sink.journal_fd);
        }
        return r;
}

static void journal_gone(int error)
{
        char text[256];

        sink.journal_gone = true;
        sink.journal_fd = safe_close(sink.journal_fd);
        int n = log_journal_is_stderr ?
                snprintf(text, sizeof(text), "Cannot write to the journal (%s): log entries go "
                         "to stderr from now on, without their fields", strerror(-error)) :
                snprintf(text, sizeof(text), "No journal (%s): access entries go to stderr only",
                         strerror(-error));
        out_line(text, n < 0 ? 0 : (size_t)n);
}

int log_sink_write(const LogEntry *e, uint64_t wait_usec)
{
        LogFields f;
        int r = log_format_fields(e, &f);
        assert(r >= 0); /* LOG_FIELDS_STORAGE holds every string at its maximum */

        /* Under systemd every entry goes to the journal; else access entries get a copy there. */
        bool to_stderr = !log_journal_is_stderr;
        if (!sink.journal_gone && (log_journal_is_stderr || e->kind == LOG_KIND_ACCESS)) {
                r = journal_write(&f, log_journal_is_stderr ? wait_usec : 0);
                if (r == -EAGAIN && log_journal_is_stderr)
                        return -EAGAIN;
                if (r == -EAGAIN)
                        sink.skipped++; /* stderr, the log that matters here, has it */
                else if (r < 0)
                        journal_gone(r);
        }
        if (sink.journal_gone && log_journal_is_stderr)
                to_stderr = true;
        if (to_stderr && f.n > 0) {
                static const char message[] = "MESSAGE=";
                assert(f.iov[0].iov_len >= sizeof(message) - 1);
                out_line((const char *)f.iov[0].iov_base + sizeof(message) - 1,
                         f.iov[0].iov_len - (sizeof(message) - 1));
        }
        return 0;
}

uint64_t log_sink_skipped(void)
{
        return sink.skipped - sink.skipped_taken;
}

uint64_t log_sink_take_skipped(void)
{
        uint64_t n = sink.skipped - sink.skipped_taken;
        sink.skipped_taken = sink.skipped;
        return n;
}
