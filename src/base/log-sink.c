/* SPDX-License-Identifier: MIT */

/* Where an entry is written: its journal fields (the same fields, in the same order, as the
 * entries always had) and its stderr line. Under systemd (stderr is journald's stream) the
 * journal gets every entry and stderr nothing; else stderr gets every line and the journal,
 * if there is one, a copy of the access entries with their fields. Entries go to the journal
 * through sd_journal_sendv(), which blocks while journald takes nothing: the log thread is the
 * only one that calls it while the daemon serves (log-queue.c). */

/* CODE_FILE/LINE/FUNC would only ever name the one call below. */
#define SD_JOURNAL_SUPPRESS_LOCATION

#include <assert.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <systemd/sd-journal.h>

#include "base/log-internal.h"
#include "base/log.h"

bool log_journal_is_stderr;

/* The write a sink call may block in, and be cancelled in (log_stop). */
typedef enum LogSinkWrite {
        LOG_SINK_NONE,
        LOG_SINK_JOURNAL,
        LOG_SINK_STDERR,
} LogSinkWrite;

static struct {
        bool journal_decided; /* log_sink_open() looked for the socket */
        int journal_error;    /* why entries no longer go to the journal, 0: they do */
        bool journal_said;    /* journal_error was said (once) */
        bool journal_stuck;   /* given up at the stop: nothing more is sent */
        bool stderr_stuck;
        LogSinkWrite writing; /* the write under way, while it may be cancelled */
        size_t out_len, out_done;
        char out[64 * 1024]; /* stderr lines not written yet (out_done of them are) */
} sink;

/* A line is at most the MESSAGE field, and a notice 256 bytes: the buffer flushed down to half
 * always has room for both. */
_Static_assert(sizeof(sink.out) / 2 > LOG_FIELDS_STORAGE + 512, "a line always fits the buffer");

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
                if (e->str[LOG_STR_HOST])
                        r |= log_fields_add(f, "LBPROXY_HOST=%.*s", STR(e, LOG_STR_HOST));
                if (e->str[LOG_STR_HEALTH])
                        r |= log_fields_add(f, "LBPROXY_HEALTH=%.*s", STR(e, LOG_STR_HEALTH));
                if (e->str[LOG_STR_REASON])
                        r |= log_fields_add(f, "LBPROXY_REASON=%.*s", STR(e, LOG_STR_REASON));
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

/* The two writes that block for as long as their reader takes nothing (journald, or whoever
 * reads stderr), and the only points at which log_stop() may cancel the log thread: that
 * thread runs with cancellation disabled, and it is enabled just around them. Nothing of ours
 * changes during them (sink.writing is set before; sink.out_done and the ring's head move
 * after), so a cancelled write leaves nothing half-updated, and the thread holds no lock of
 * ours (there is none). In any other thread cancellation stays as it was. */
static int write_cancellable(LogSinkWrite what, const void *data, size_t n)
{
        int old, r;

        sink.writing = what;
        (void)pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &old);
        if (what == LOG_SINK_JOURNAL)
                r = sd_journal_sendv(data, (int)n);
        else {
                ssize_t k = write(STDERR_FILENO, data, n); /* n: at most sizeof(sink.out) */
                r = k < 0 ? -errno : (int)k;
        }
        (void)pthread_setcancelstate(old, NULL);
        sink.writing = LOG_SINK_NONE;
        return r;
}

void log_sink_flush(void)
{
        while (!sink.stderr_stuck && sink.out_done < sink.out_len) {
                int n = write_cancellable(LOG_SINK_STDERR, sink.out + sink.out_done,
                                          sink.out_len - sink.out_done);
                if (n == -EINTR)
                        continue;
                if (n <= 0)
                        break; /* stderr is gone: nowhere left to say so */
                sink.out_done += (size_t)n;
        }
        sink.out_len = sink.out_done = 0;
}

static void out_line(const char *text, size_t len)
{
        static const char prefix[] = "lbproxy: ";

        assert(sink.out_len + sizeof(prefix) + len <= sizeof(sink.out));
        memcpy(sink.out + sink.out_len, prefix, sizeof(prefix) - 1);
        sink.out_len += sizeof(prefix) - 1;
        memcpy(sink.out + sink.out_len, text, len);
        sink.out_len += len;
        sink.out[sink.out_len++] = '\n';
}

int log_journal_probe(const char *path)
{
        struct stat st;

        if (stat(path, &st) < 0)
                return -errno;
        return S_ISSOCK(st.st_mode) ? 0 : -ENOTSOCK;
}

void log_sink_open(void)
{
        if (sink.journal_decided)
                return;
        sink.journal_decided = true;
        /* sd_journal_sendv() returns 0 for a missing socket (ENOENT), dropping the entry: a
         * journal that is not there is found here, once, and never tried. */
        sink.journal_error = log_journal_probe(LOG_JOURNAL_SOCKET);
}

/* Whether entries go to the journal; when they no longer do, says why, once. */
static bool journal_usable(void)
{
        log_sink_open();
        if (sink.journal_stuck)
                return false;
        if (sink.journal_error == 0)
                return true;
        if (!sink.journal_said) {
                char text[256];
                int error = -sink.journal_error;
                int n = log_journal_is_stderr ?
                        snprintf(text, sizeof(text), "Cannot write to the journal (%s): log "
                                 "entries go to stderr from now on, without their fields",
                                 strerror(error)) :
                        snprintf(text, sizeof(text), "No journal (%s): access entries go to "
                                 "stderr only", strerror(error));
                out_line(text, n < 0 ? 0 : (size_t)n);
                sink.journal_said = true;
        }
        return false;
}

bool log_sink_write(const LogEntry *e)
{
        LogFields f;
        int r = log_format_fields(e, &f);
        assert(r >= 0); /* LOG_FIELDS_STORAGE holds every string at its maximum */
        assert(f.n > 0);

        /* Room for the line first, and the journal before it: a write cancelled at the stop has
         * written nothing of this entry, which the stopping thread then takes again. */
        if (sink.out_len > sizeof(sink.out) / 2)
                log_sink_flush();

        /* Under systemd every entry goes to the journal; else access entries get a copy there. */
        bool journal = log_journal_is_stderr || e->kind == LOG_KIND_ACCESS;
        bool written = false;
        if (journal && journal_usable()) {
                r = write_cancellable(LOG_SINK_JOURNAL, f.iov, f.n);
                if (r >= 0)
                        written = true;
                else {
                        /* Any later entry would fail the same way (nobody behind the socket). */
                        sink.journal_error = r;
                        (void)journal_usable(); /* says so */
                }
        }
        /* Under systemd stderr takes the journal's place once the journal failed, but not for a
         * journal given up at the stop: stderr is journald's stream then. */
        bool to_stderr = !log_journal_is_stderr || (!written && !sink.journal_stuck);
        if (to_stderr && !sink.stderr_stuck) {
                static const char message[] = "MESSAGE=";
                assert(f.iov[0].iov_len >= sizeof(message) - 1);
                out_line((const char *)f.iov[0].iov_base + sizeof(message) - 1,
                         f.iov[0].iov_len - (sizeof(message) - 1));
                written = true;
        }
        return written;
}

void log_sink_give_up(void)
{
        if (sink.writing == LOG_SINK_JOURNAL)
                sink.journal_stuck = true;
        else if (sink.writing == LOG_SINK_STDERR)
                sink.stderr_stuck = true;
        sink.writing = LOG_SINK_NONE;
}
