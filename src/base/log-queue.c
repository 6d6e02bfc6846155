/* SPDX-License-Identifier: MIT */

/* The log thread and its queues. Each thread that logs while the daemon serves (every worker;
 * worker 0 is the control loop) copies its entries into a ring of its own, which only it
 * writes and only the log thread reads: the request path takes no lock and makes no system
 * call for logging under load. The log thread writes the entries through the sink
 * (log-sink.c), in the order they were logged across rings, and is the only one that waits
 * when the journal is slow. A full ring drops the entry and counts it; the log thread says so
 * once a second at most. */

#include <assert.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>

#include "base/log-internal.h"
#include "base/log.h"

#if HAVE_ASAN
#include <sanitizer/asan_interface.h>
#endif

/* A record in a ring: this header, then the strings that are present, one after the other. */
typedef struct LogRecord {
        uint32_t size;    /* bytes to the next record, a multiple of 8 */
        uint8_t kind;     /* LogKind, or LOG_RECORD_PAD: skip `size` bytes to the ring's end */
        uint8_t priority;
        uint16_t present; /* bit i: string i is given */
        int32_t error;
        uint32_t status;
        uint64_t time, duration_usec, bytes_in, bytes_out;
        uint16_t len[_LOG_STR_MAX];
} LogRecord;

#define LOG_RECORD_PAD 0xff
#define ALIGN8(x) (((uint64_t)(x) + 7) & ~(uint64_t)7)
#define LOG_RECORD_MAX ALIGN8(sizeof(LogRecord) + LOG_STRINGS_MAX)

_Static_assert(_LOG_STR_MAX <= 16, "LogRecord.present has 16 bits");
_Static_assert(_LOG_KIND_MAX < LOG_RECORD_PAD, "a kind is not the padding mark");
_Static_assert(sizeof(LogRecord) % 8 == 0, "records stay 8-byte aligned");
_Static_assert(LOG_RING_SIZE >= 16 * LOG_RECORD_MAX, "a ring holds many of the largest records");

/* How long the log thread lingers after a round that wrote something: entries logged
 * meanwhile are taken without waking it, so under load producers never make a system call. */
#define LINGER_NSEC 1000000
/* How long log_stop() lets the log thread write what the rings hold. */
#define STOP_DRAIN_USEC USEC_PER_SEC
#define REPORT_INTERVAL_USEC USEC_PER_SEC

int log_ring_init(LogRing *r, uint64_t size)
{
        assert(size >= 4 * LOG_RECORD_MAX && (size & (size - 1)) == 0);
        memset(r, 0, sizeof(*r));
        atomic_init(&r->tail, 0);
        atomic_init(&r->head, 0);
        atomic_init(&r->dropped_access, 0);
        atomic_init(&r->dropped_other, 0);
        atomic_init(&r->suppressed, 0);
        r->size = size;
        r->buf = malloc(size);
        return r->buf ? 0 : -ENOMEM;
}

void log_ring_done(LogRing *r)
{
        r->buf = mfree(r->buf);
}

/* Access entries dropped since the start, for the metrics: written only when a ring is full. */
static atomic_uint_fast64_t access_dropped_total;

uint64_t log_access_dropped_total(void)
{
        return atomic_load_explicit(&access_dropped_total, memory_order_relaxed);
}

bool log_ring_push(LogRing *r, const LogEntry *e)
{
        uint64_t need = sizeof(LogRecord);
        for (size_t i = 0; i < _LOG_STR_MAX; i++)
                if (e->str[i])
                        need += e->len[i];
        need = ALIGN8(need);
        assert(need <= LOG_RECORD_MAX);

        /* Acquire: the consumer is done reading the bytes up to head before they are reused. */
        uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
        uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
        uint64_t at = tail & (r->size - 1), to_end = r->size - at;
        uint64_t pad = to_end < need ? to_end : 0;
        uint64_t limit = e->kind == LOG_KIND_ACCESS ? r->size / 4 * 3 : r->size;
        if (tail - head + pad + need > limit) {
                if (e->kind == LOG_KIND_ACCESS)
                        atomic_fetch_add_explicit(&access_dropped_total, 1,
                                                  memory_order_relaxed);
                atomic_fetch_add_explicit(e->kind == LOG_KIND_ACCESS ? &r->dropped_access :
                                                                       &r->dropped_other,
                                          1, memory_order_relaxed);
                return false;
        }
        if (pad) {
                /* to_end is a non-zero multiple of 8: room for size and kind. */
                LogRecord *p = (LogRecord *)(r->buf + at);
                p->size = (uint32_t)pad;
                p->kind = LOG_RECORD_PAD;
                at = 0;
        }

        LogRecord *rec = (LogRecord *)(r->buf + at);
        *rec = (LogRecord){
                .size = (uint32_t)need,
                .kind = (uint8_t)e->kind,
                .priority = (uint8_t)e->priority,
                .error = e->error,
                .status = e->status,
                .time = e->time,
                .duration_usec = e->duration_usec,
                .bytes_in = e->bytes_in,
                .bytes_out = e->bytes_out,
        };
        char *s = (char *)(rec + 1);
        for (size_t i = 0; i < _LOG_STR_MAX; i++) {
                if (!e->str[i])
                        continue;
                rec->present |= (uint16_t)(1u << i);
                rec->len[i] = e->len[i];
                memcpy(s, e->str[i], e->len[i]);
                s += e->len[i];
        }
        /* Release publishes the record; seq_cst also orders this store before the load of
         * `sleeping` in log_queue_push (see wait_for_entries). */
        atomic_store_explicit(&r->tail, tail + pad + need, memory_order_seq_cst);
        return true;
}

bool log_ring_peek(LogRing *r, uint64_t tail, LogEntry *e)
{
        uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);

        while (head != tail) {
                const LogRecord *rec = (const LogRecord *)(r->buf + (head & (r->size - 1)));
                if (rec->kind == LOG_RECORD_PAD) {
                        head += rec->size;
                        atomic_store_explicit(&r->head, head, memory_order_release);
                        continue;
                }
                *e = (LogEntry){
                        .kind = (LogKind)rec->kind,
                        .priority = rec->priority,
                        .error = rec->error,
                        .time = rec->time,
                        .status = rec->status,
                        .duration_usec = rec->duration_usec,
                        .bytes_in = rec->bytes_in,
                        .bytes_out = rec->bytes_out,
                };
                const char *s = (const char *)(rec + 1);
                for (size_t i = 0; i < _LOG_STR_MAX; i++) {
                        if (!(rec->present & (1u << i)))
                                continue;
                        e->str[i] = s;
                        e->len[i] = rec->len[i];
                        s += rec->len[i];
                }
                return true;
        }
        return false;
}

void log_ring_pop(LogRing *r)
{
        uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
        const LogRecord *rec = (const LogRecord *)(r->buf + (head & (r->size - 1)));
        /* Release: the producer may reuse the bytes once it sees the new head. */
        atomic_store_explicit(&r->head, head + rec->size, memory_order_release);
}

typedef enum LogMode {
        LOG_SYNC,   /* no log thread: the thread that logs writes */
        LOG_THREAD, /* the log thread writes what the rings hold */
} LogMode;

static struct {
        _Atomic LogMode mode; /* read by every thread that logs */
        LogRing *rings;
        size_t n_rings;
        int efd;                        /* wakes the log thread */
        atomic_bool sleeping;           /* the log thread waits on efd */
        atomic_bool stopping;           /* log_stop() asks the log thread to finish */
        _Atomic uint64_t dropped_other; /* from a thread with no ring (should not happen) */
        pthread_t thread;

        /* The log thread's own. */
        uint64_t *tails;
        LogEntry *next; /* each ring's next entry in this round */
        bool *has_next;
        uint64_t lost_access, lost_other; /* went nowhere (given up on at the stop) */
        uint64_t last_report;
} q = { .mode = LOG_SYNC, .efd = -EBADF };

static _Thread_local LogRing *my_ring;

bool log_queue_push(const LogEntry *e)
{
        LogRing *r = my_ring;

        if (!r) {
                if (atomic_load_explicit(&q.mode, memory_order_relaxed) == LOG_SYNC)
                        return false;
                /* Not a thread that was given a ring: writing here would race the log thread. */
                atomic_fetch_add_explicit(&q.dropped_other, 1, memory_order_relaxed);
                return true;
        }
        if (!log_ring_push(r, e))
                return true;
        /* Only the producer that turns `sleeping` from true to false writes the eventfd; while
         * the log thread is awake this is one load of a line that is read-mostly. */
        if (atomic_load_explicit(&q.sleeping, memory_order_seq_cst) &&
            atomic_exchange_explicit(&q.sleeping, false, memory_order_seq_cst))
                (void)eventfd_write(q.efd, 1);
        return true;
}

bool log_queue_peer_allowed(void)
{
        LogRing *r = my_ring;
        if (!r)
                return true;
        uint64_t second = now_usec(CLOCK_MONOTONIC_COARSE) / USEC_PER_SEC;
        if (second != r->peer_window) {
                r->peer_window = second;
                r->peer_count = 0;
        }
        if (r->peer_count < LOG_PEER_WARNINGS_PER_SEC) {
                r->peer_count++;
                return true;
        }
        atomic_fetch_add_explicit(&r->suppressed, 1, memory_order_relaxed);
        return false;
}

/* ---- the log thread ---- */

/* While journald takes nothing, this waits in sd_journal_sendv (log-sink.c), and entries pile
 * up in the rings, where the ones that do not fit are dropped and counted. */
static void write_entry(const LogEntry *e)
{
        if (log_sink_write(e))
                return;
        if (e->kind == LOG_KIND_ACCESS)
                q.lost_access++;
        else
                q.lost_other++;
}

static void message_entry(LogEntry *e, int priority, const char *text, int len)
{
        *e = (LogEntry){ .kind = LOG_KIND_MESSAGE, .priority = priority,
                         .time = now_usec(CLOCK_MONOTONIC) };
        log_entry_set(e, LOG_STR_TEXT, text, len < 0 ? 0 : (size_t)len);
}

static bool counts_pending(void)
{
        if (atomic_load_explicit(&q.dropped_other, memory_order_relaxed) || q.lost_access ||
            q.lost_other)
                return true;
        for (size_t i = 0; i < q.n_rings; i++) {
                LogRing *r = &q.rings[i];
                if (atomic_load_explicit(&r->dropped_access, memory_order_relaxed) ||
                    atomic_load_explicit(&r->dropped_other, memory_order_relaxed) ||
                    atomic_load_explicit(&r->suppressed, memory_order_relaxed))
                        return true;
        }
        return false;
}

/* Says what was dropped or suppressed since the last time, once a second at most (`force`:
 * now, at the stop). Returns the µs until the next report is due, or -1 for none pending. */
static int64_t report(bool force)
{
        uint64_t now = now_usec(CLOCK_MONOTONIC);

        if (!counts_pending())
                return -1;
        if (!force && now - q.last_report < REPORT_INTERVAL_USEC)
                return (int64_t)(q.last_report + REPORT_INTERVAL_USEC - now);
        q.last_report = now;

        unsigned long long access = q.lost_access, other = q.lost_other, suppressed = 0;
        q.lost_access = q.lost_other = 0;
        other += atomic_exchange_explicit(&q.dropped_other, 0, memory_order_relaxed);
        for (size_t i = 0; i < q.n_rings; i++) {
                LogRing *r = &q.rings[i];
                access += atomic_exchange_explicit(&r->dropped_access, 0, memory_order_relaxed);
                other += atomic_exchange_explicit(&r->dropped_other, 0, memory_order_relaxed);
                suppressed += atomic_exchange_explicit(&r->suppressed, 0, memory_order_relaxed);
        }

        char text[256];
        LogEntry e;
        if (access || other) {
                int n;
                if (access && other)
                        n = snprintf(text, sizeof(text), "Log queue full: dropped %llu access "
                                     "entries and %llu other messages", access, other);
                else if (access)
                        n = snprintf(text, sizeof(text), "Log queue full: dropped %llu access "
                                     "entries", access);
                else
                        n = snprintf(text, sizeof(text), "Log queue full: dropped %llu messages",
                                     other);
                message_entry(&e, LOG_WARNING, text, n);
                write_entry(&e);
        }
        if (suppressed) {
                int n = snprintf(text, sizeof(text), "Suppressed %llu warnings about clients "
                                 "(more than %d a second per worker)", suppressed,
                                 LOG_PEER_WARNINGS_PER_SEC);
                message_entry(&e, LOG_WARNING, text, n);
                write_entry(&e);
        }
        return -1;
}

/* Writes what the rings hold, oldest entry first across rings. Returns how many. */
static size_t drain(void)
{
        size_t written = 0;

        for (size_t i = 0; i < q.n_rings; i++) {
                /* seq_cst (not just acquire): see wait_for_entries. */
                q.tails[i] = atomic_load_explicit(&q.rings[i].tail, memory_order_seq_cst);
                q.has_next[i] = log_ring_peek(&q.rings[i], q.tails[i], &q.next[i]);
        }
        for (;;) {
                size_t best = SIZE_MAX;
                for (size_t i = 0; i < q.n_rings; i++)
                        if (q.has_next[i] && (best == SIZE_MAX || q.next[i].time < q.next[best].time))
                                best = i;
                if (best == SIZE_MAX)
                        return written;
                write_entry(&q.next[best]);
                log_ring_pop(&q.rings[best]);
                q.has_next[best] = log_ring_peek(&q.rings[best], q.tails[best], &q.next[best]);
                written++;
                if (written % 64 == 0)
                        (void)report(false);
        }
}

static bool rings_empty(void)
{
        for (size_t i = 0; i < q.n_rings; i++)
                if (atomic_load_explicit(&q.rings[i].tail, memory_order_seq_cst) !=
                    atomic_load_explicit(&q.rings[i].head, memory_order_relaxed))
                        return false;
        return true;
}

/* Sleeps until a producer wakes us, the stop, or `timeout_usec`.
 *
 * Why no entry is left waiting for a wake-up that never comes: a producer stores its ring's
 * tail, then loads `sleeping`; this thread stores `sleeping = true`, then loads every tail.
 * All four accesses are seq_cst, so they fall into one total order: either the producer's load
 * comes after our store (it sees true and writes the eventfd), or our load of its tail comes
 * after its store (we see the entry and do not sleep). The stop is the same with `stopping` in
 * place of a tail, and log_stop() writes the eventfd unconditionally. */
static void wait_for_entries(int64_t timeout_usec)
{
        atomic_store_explicit(&q.sleeping, true, memory_order_seq_cst);
        if (!rings_empty() || atomic_load_explicit(&q.stopping, memory_order_seq_cst)) {
                atomic_store_explicit(&q.sleeping, false, memory_order_seq_cst);
                return;
        }
        struct pollfd p = { .fd = q.efd, .events = POLLIN };
        int ms = (int)((timeout_usec + 999) / 1000);
        (void)poll(&p, 1, ms);
        eventfd_t v;
        (void)eventfd_read(q.efd, &v); /* non-blocking: resets a wake-up, if any came */
        atomic_store_explicit(&q.sleeping, false, memory_order_seq_cst);
}

static void run(void)
{
        for (;;) {
                bool stopping = atomic_load(&q.stopping);
                size_t n = drain();
                int64_t due = report(stopping);
                log_sink_flush();
                /* Everything logged before log_stop() was in the rings when `stopping` was
                 * read (the workers have ended, the stopping thread logs no more). */
                if (stopping)
                        return;
                if (n > 0) {
                        struct timespec ts = { .tv_nsec = LINGER_NSEC };
                        (void)nanosleep(&ts, NULL);
                        continue;
                }
                /* Wakes once a second at least, for counts that came without an entry. */
                wait_for_entries(due >= 0 ? due : (int64_t)REPORT_INTERVAL_USEC);
        }
}

/* Runs when log_stop() cancelled the thread, once the frames below log_thread are unwound.
 * AddressSanitizer does not see them go (google/sanitizers#1399): their poisoned stack shadow
 * stays, and its own thread teardown, which runs on that part of the stack, then reports a
 * stack-use-after-scope. Everything below this frame is dead: its shadow is cleared. */
static void on_cancelled(void *userdata)
{
#if HAVE_ASAN
        pthread_attr_t attr;
        void *low;
        size_t size;

        if (pthread_getattr_np(pthread_self(), &attr) != 0)
                return;
        if (pthread_attr_getstack(&attr, &low, &size) == 0)
                __asan_unpoison_memory_region(low, (size_t)((char *)__builtin_frame_address(0) -
                                                            (char *)low));
        pthread_attr_destroy(&attr);
#endif
}

static void *log_thread(void *userdata)
{
        /* Cancelled only inside a blocking write (log-sink.c), by log_stop(). Not a
         * cancellation point itself, so a cancel cannot act before this. */
        (void)pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
        pthread_cleanup_push(on_cancelled, NULL);
        run();
        pthread_cleanup_pop(0);
        return NULL;
}

static void free_queues(void)
{
        for (size_t i = 0; q.rings && i < q.n_rings; i++)
                log_ring_done(&q.rings[i]);
        q.rings = mfree(q.rings);
        q.n_rings = 0;
        q.tails = mfree(q.tails);
        q.next = mfree(q.next);
        q.has_next = mfree(q.has_next);
        q.efd = safe_close(q.efd);
}

int log_start(size_t n_queues)
{
        int r;

        assert(n_queues > 0);
        assert(atomic_load(&q.mode) == LOG_SYNC);
        q.rings = calloc(n_queues, sizeof(LogRing));
        q.tails = calloc(n_queues, sizeof(uint64_t));
        q.next = calloc(n_queues, sizeof(LogEntry));
        q.has_next = calloc(n_queues, sizeof(bool));
        if (!q.rings || !q.tails || !q.next || !q.has_next) {
                r = -ENOMEM;
                goto fail;
        }
        for (; q.n_rings < n_queues; q.n_rings++) {
                r = log_ring_init(&q.rings[q.n_rings], LOG_RING_SIZE);
                if (r < 0) {
                        q.n_rings++;
                        goto fail;
                }
        }
        /* Whether there is a journal is decided here at the latest, once (log-sink.c). */
        log_sink_open();
        q.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (q.efd < 0) {
                r = -errno;
                goto fail;
        }
        atomic_store(&q.sleeping, false);
        atomic_store(&q.stopping, false);
        q.last_report = 0;

        /* Signals go to the other threads: the log thread's waits and writes are never cut. */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        atomic_store(&q.mode, LOG_THREAD);
        r = -pthread_create(&q.thread, NULL, log_thread, NULL);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r < 0) {
                atomic_store(&q.mode, LOG_SYNC);
                goto fail;
        }
        (void)pthread_setname_np(q.thread, "lbproxy-log");
        my_ring = &q.rings[0];
        return 0;

fail:
        free_queues();
        return log_error_errno(r, "Cannot start the log thread, logging synchronously: %m");
}

void log_attach(size_t i)
{
        if (atomic_load(&q.mode) != LOG_THREAD)
                return;
        assert(i < q.n_rings);
        my_ring = &q.rings[i];
}

/* Why the stop ends in time even when journald takes nothing: the log thread blocks only in
 * sd_journal_sendv() or a write to stderr (a sendmsg or write that waits for the reader), and
 * only there is it cancellable (write_cancellable in log-sink.c: cancellation enabled just
 * around the call, disabled everywhere else, deferred). Anywhere else it makes progress: it
 * ends on its own (it saw `stopping`) or reaches its next write, where the pending cancel acts
 * at once. So after the drain's deadline, pthread_cancel() and an unbounded join end it within
 * a moment. It holds no lock of ours, and nothing of ours is half-updated at a cancellation
 * point: the entry being written is still in its ring (the head moves after the write), and
 * the sink noted which write was under way before it began. The unwinding runs on_cancelled
 * and no cleanup attribute (C without -fexceptions): no frame on that path owns memory or a
 * descriptor of ours (libsystemd may leave the memfd of an oversized entry open; the exit
 * closes it). After the join this thread owns the rings and the sink, and nothing more is
 * tried where the log thread was stuck: what is left goes where it can without waiting, with a
 * last "dropped" line for the rest (under systemd with journald stuck that is nowhere;
 * outside it, stderr). */
void log_stop(void)
{
        if (atomic_load(&q.mode) != LOG_THREAD)
                return;
        atomic_store(&q.stopping, true);
        (void)eventfd_write(q.efd, 1);
        my_ring = NULL;

        struct timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += STOP_DRAIN_USEC / USEC_PER_SEC;
        if (pthread_timedjoin_np(q.thread, NULL, &deadline) != 0) {
                (void)pthread_cancel(q.thread);
                (void)pthread_join(q.thread, NULL);
                log_sink_give_up();
                (void)drain();
                (void)report(true);
                log_sink_flush();
        }
        atomic_store(&q.mode, LOG_SYNC);
        free_queues();
}
