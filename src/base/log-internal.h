/* SPDX-License-Identifier: MIT */
#pragma once

/* What the logging files share: an entry as it crosses from the thread that logs to the one
 * that writes it (LogEntry), its queue (LogRing, log-queue.c) and where it is written
 * (log-sink.c: journal fields, stderr lines). */

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "base/util.h"

typedef enum LogKind {
        LOG_KIND_MESSAGE, /* log_full, log_event */
        LOG_KIND_ACCESS,  /* log_access */
        _LOG_KIND_MAX,
} LogKind;

/* The strings of an entry. Each is cut to its maximum when the entry is made (log_str_max), so
 * an entry, its queue record and its journal fields have known largest sizes. */
typedef enum LogStr {
        LOG_STR_TEXT,       /* a message's text */
        LOG_STR_MESSAGE_ID, /* an event's MESSAGE_ID */
        LOG_STR_HOST,       /* an event's LBPROXY_HOST */
        LOG_STR_ROUTE,
        LOG_STR_UPSTREAM, /* access entries and events */
        LOG_STR_NODE,     /* access entries and events */
        LOG_STR_NODE_ADDRESS,
        LOG_STR_CLIENT,
        LOG_STR_METHOD,
        LOG_STR_PATH,
        LOG_STR_ERROR,
        LOG_STR_HEALTH, /* a health event's LBPROXY_HEALTH */
        LOG_STR_REASON, /* a health event's LBPROXY_REASON */
        _LOG_STR_MAX,
} LogStr;

#define LOG_TEXT_MAX 2047   /* a message, as the 2 KiB buffer it was always formatted in */
#define LOG_NAME_MAX 512    /* route, upstream, node and host names */
#define LOG_ADDRESS_MAX 63  /* "ip:port" (SOCKADDR_STR_MAX - 1) */
#define LOG_METHOD_MAX 32
#define LOG_PATH_MAX 1024   /* one entry stays one datagram; the full path is not worth more */
#define LOG_ERROR_MAX 256
#define LOG_MESSAGE_ID_MAX 32
#define LOG_HEALTH_MAX 16
#define LOG_REASON_MAX 128

extern const uint16_t log_str_max[_LOG_STR_MAX];

/* The sum of every string's maximum: what one entry can carry at most. */
#define LOG_STRINGS_MAX                                                                            \
        (LOG_TEXT_MAX + LOG_MESSAGE_ID_MAX + 4 * LOG_NAME_MAX + 2 * LOG_ADDRESS_MAX +            \
         LOG_METHOD_MAX + LOG_PATH_MAX + LOG_ERROR_MAX)

typedef struct LogEntry {
        LogKind kind;
        int priority;
        int error;     /* a message's errno (ERRNO=), 0: none */
        uint64_t time; /* CLOCK_MONOTONIC µs when logged: orders entries of different threads */
        unsigned status;
        uint64_t duration_usec, bytes_in, bytes_out;
        const char *str[_LOG_STR_MAX]; /* NULL: absent; not NUL-terminated */
        uint16_t len[_LOG_STR_MAX];    /* at most log_str_max[] */
} LogEntry;

/* Sets string `i` of `e` to `s` (NULL: absent), cut to its maximum. */
void log_entry_set(LogEntry *e, LogStr i, const char *s, size_t len);
/* The entry of one request; its strings point into `a`. */
struct AccessRecord;
void log_entry_access(LogEntry *e, const struct AccessRecord *a);

/* ---- log-sink.c: where an entry is written ---- */

/* The journal fields of one entry. Every string appears at most twice (in MESSAGE= and in its
 * own field); the rest is field names (under 25 bytes each), numbers (20 digits at most), the
 * words of an access entry's MESSAGE and the NULs, far below 1 KiB. log_fields_add() checks
 * anyway: a field that does not fit is left out whole, never cut or counted wrong. */
#define LOG_FIELDS_MAX 16
#define LOG_FIELDS_STORAGE (2 * LOG_STRINGS_MAX + 1024)
typedef struct LogFields {
        struct iovec iov[LOG_FIELDS_MAX];
        size_t n;
        size_t used; /* of storage */
        char storage[LOG_FIELDS_STORAGE];
} LogFields;

/* Formats one field ("NAME=value") into f; -ENOBUFS (and nothing added) when it does not fit. */
int log_fields_add(LogFields *f, const char *fmt, ...) _printf_(2, 3);
/* The journal fields of `e`, in the order they always had. Returns -ENOBUFS if one did not fit
 * (cannot happen with LOG_FIELDS_STORAGE; the unit test fills every string to its maximum). */
int log_format_fields(const LogEntry *e, LogFields *f);

/* The sink belongs to one thread at a time: the log thread while it runs, else the thread
 * that logs (only one then). */

#define LOG_JOURNAL_SOCKET "/run/systemd/journal/socket"

/* Whether `path` is a socket (0), or why it is no journal: -ENOENT, -ENOTSOCK, ... */
int log_journal_probe(const char *path);
/* Decides, once, whether there is a journal (LOG_JOURNAL_SOCKET is a socket). Done at the first
 * entry bound for the journal, or by log_start() if none came before. */
void log_sink_open(void);
/* Writes `e` to the journal and/or stderr (stderr lines are buffered until log_sink_flush).
 * False when it went nowhere (the journal or stderr was given up on at the stop). */
bool log_sink_write(const LogEntry *e);
/* Writes the stderr lines buffered so far. */
void log_sink_flush(void);

/* After the log thread was cancelled in a write: nothing more is tried where it was stuck. */
void log_sink_give_up(void);
/* True when stderr is journald's stream (JOURNAL_STREAM), set by log_setup(). */
extern bool log_journal_is_stderr;

/* ---- log-queue.c: one queue per thread that logs, a ring of records ---- */

/* One single-producer, single-consumer ring of bytes. Records (a LogRecord header, then the
 * strings) are 8-byte aligned and never wrap: a record that does not fit before the end is
 * preceded by padding. head and tail count bytes since the start and only grow. */
typedef struct LogRing {
        alignas(64) _Atomic uint64_t tail; /* written by the producer */
        uint64_t peer_window;              /* producer only: log_peer_warning's second */
        unsigned peer_count;               /* and how many it wrote in it */
        _Atomic uint64_t dropped_access;   /* full: entries the producer dropped */
        _Atomic uint64_t dropped_other;
        _Atomic uint64_t suppressed; /* log_peer_warning over its rate */
        alignas(64) _Atomic uint64_t head; /* written by the consumer */
        uint64_t size;                     /* bytes, a power of two */
        unsigned char *buf;
} LogRing;

#define LOG_RING_SIZE (UINT64_C(1) << 20)

int log_ring_init(LogRing *r, uint64_t size);
void log_ring_done(LogRing *r);
/* Copies `e` in. False (and counted) when the ring is full; access entries may fill only 3/4 of
 * it, so a burst of them leaves room for messages. Producer only. */
bool log_ring_push(LogRing *r, const LogEntry *e);
/* The next record before `tail` (a value of r->tail the consumer loaded), decoded into *e with
 * pointers into the ring; false when there is none. Consumer only. */
bool log_ring_peek(LogRing *r, uint64_t tail, LogEntry *e);
/* Frees the record log_ring_peek() returned. Consumer only. */
void log_ring_pop(LogRing *r);

/* Hands `e` to the log thread through the calling thread's ring. False when no log thread
 * runs: the caller writes it itself. */
bool log_queue_push(const LogEntry *e);
/* log_peer_warning's rate: true when the calling thread may write one more now; else the
 * warning is counted as suppressed. */
bool log_queue_peer_allowed(void);
