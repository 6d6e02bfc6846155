/* SPDX-License-Identifier: MIT */
/* Logging without a daemon: journal fields of entries whose every string is at its maximum
 * (nothing cut, nothing overflowing), the field storage's own check, the per-thread ring
 * (order, wrap-around, full, the room kept for messages, a producer and a consumer thread),
 * and what counts as a journal socket. */

#include <fcntl.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "base/log-internal.h"
#include "base/log.h"
#include "tap.h"

/* The value of field `name` in f (its iovec), or NULL. */
static const struct iovec *field(const LogFields *f, const char *name, size_t *ret_value_len)
{
        size_t l = strlen(name);
        for (size_t i = 0; i < f->n; i++) {
                const char *b = f->iov[i].iov_base;
                if (f->iov[i].iov_len > l && memcmp(b, name, l) == 0 && b[l] == '=') {
                        *ret_value_len = f->iov[i].iov_len - l - 1;
                        return &f->iov[i];
                }
        }
        return NULL;
}

static bool fields_inside_storage(const LogFields *f)
{
        for (size_t i = 0; i < f->n; i++) {
                const char *b = f->iov[i].iov_base;
                if (b < f->storage || f->iov[i].iov_len > sizeof(f->storage) ||
                    b + f->iov[i].iov_len > f->storage + f->used)
                        return false;
        }
        return f->used <= sizeof(f->storage);
}

static void test_access_at_maximum(void)
{
        size_t big = 100000;
        char *s = malloc(big + 1);
        memset(s, 'x', big);
        s[big] = '\0';
        AccessRecord a = {
                .route = s, .upstream = s, .node = s, .node_address = s, .client = s,
                .method = s, .method_len = big, .path = s, .path_len = big,
                .status = 502, .duration_usec = UINT64_MAX, .bytes_in = UINT64_MAX,
                .bytes_out = UINT64_MAX, .error = s,
        };
        LogEntry e;
        log_entry_access(&e, &a);
        CHECK(e.len[LOG_STR_PATH] == LOG_PATH_MAX);
        CHECK(e.len[LOG_STR_ROUTE] == LOG_NAME_MAX);
        CHECK(e.len[LOG_STR_METHOD] == LOG_METHOD_MAX);
        CHECK(e.len[LOG_STR_CLIENT] == LOG_ADDRESS_MAX);
        CHECK(e.len[LOG_STR_ERROR] == LOG_ERROR_MAX);

        LogFields f;
        CHECK(log_format_fields(&e, &f) == 0);
        CHECK(f.n == 15);
        CHECK(fields_inside_storage(&f));
        size_t l;
        CHECK(field(&f, "LBPROXY_PATH", &l) && l == LOG_PATH_MAX);
        CHECK(field(&f, "LBPROXY_ROUTE", &l) && l == LOG_NAME_MAX);
        CHECK(field(&f, "LBPROXY_UPSTREAM", &l) && l == LOG_NAME_MAX);
        CHECK(field(&f, "LBPROXY_NODE", &l) && l == LOG_NAME_MAX);
        CHECK(field(&f, "LBPROXY_NODE_ADDRESS", &l) && l == LOG_ADDRESS_MAX);
        CHECK(field(&f, "LBPROXY_CLIENT", &l) && l == LOG_ADDRESS_MAX);
        CHECK(field(&f, "LBPROXY_METHOD", &l) && l == LOG_METHOD_MAX);
        CHECK(field(&f, "LBPROXY_ERROR", &l) && l == LOG_ERROR_MAX);
        CHECK(field(&f, "LBPROXY_BYTES_OUT", &l) && l == 20);
        CHECK(field(&f, "PRIORITY", &l) && l == 1);
        /* MESSAGE carries every string whole, and ends with the error. */
        const struct iovec *m = field(&f, "MESSAGE", &l);
        CHECK(m && l == 2 * LOG_ADDRESS_MAX + LOG_METHOD_MAX + LOG_PATH_MAX + 3 * LOG_NAME_MAX +
                                LOG_ERROR_MAX + strlen(" \" \" 502 route= upstream= node= "
                                                       "address= duration_usec= error=") +
                                20);
        CHECK(m && memcmp((const char *)m->iov_base + m->iov_len - 7, "xxxxxxx", 7) == 0);

        /* Without an error: no LBPROXY_ERROR, and MESSAGE has no " error=". */
        a.error = NULL;
        log_entry_access(&e, &a);
        CHECK(log_format_fields(&e, &f) == 0);
        CHECK(f.n == 14);
        CHECK(!field(&f, "LBPROXY_ERROR", &l));
        free(s);
}

static void test_messages_at_maximum(void)
{
        char *s = malloc(100000);
        memset(s, 'y', 100000);
        LogEntry e = { .kind = LOG_KIND_MESSAGE, .priority = LOG_ERR, .error = 2147483647 };
        for (size_t i = 0; i < _LOG_STR_MAX; i++)
                log_entry_set(&e, (LogStr)i, s, 100000);
        LogFields f;
        size_t l;
        /* An event: MESSAGE_ID and the five LBPROXY_ fields (a health event's all set). */
        CHECK(log_format_fields(&e, &f) == 0);
        CHECK(f.n == 8);
        CHECK(fields_inside_storage(&f));
        CHECK(field(&f, "MESSAGE", &l) && l == LOG_TEXT_MAX);
        CHECK(field(&f, "LBPROXY_HOST", &l) && l == LOG_NAME_MAX);
        CHECK(field(&f, "LBPROXY_REASON", &l) && l == LOG_REASON_MAX);
        /* A message with an errno. */
        e.str[LOG_STR_MESSAGE_ID] = NULL;
        CHECK(log_format_fields(&e, &f) == 0);
        CHECK(f.n == 3);
        CHECK(field(&f, "ERRNO", &l) && l == 10);
        free(s);
}

static void test_fields_storage_check(void)
{
        LogFields f = {};
        char *s = malloc(sizeof(f.storage));
        memset(s, 'z', sizeof(f.storage));
        /* Leave 100 bytes: a field of 100 bytes (plus its NUL) does not fit, one of 99 does. */
        size_t first = sizeof(f.storage) - 100 - 1 - 2;
        CHECK(log_fields_add(&f, "A=%.*s", (int)first, s) == 0);
        CHECK(f.used == sizeof(f.storage) - 100);
        CHECK(log_fields_add(&f, "B=%.*s", 98, s) == -ENOBUFS);
        CHECK(f.n == 1);
        CHECK(log_fields_add(&f, "B=%.*s", 97, s) == 0);
        CHECK(f.n == 2 && f.iov[1].iov_len == 99);
        CHECK(f.used == sizeof(f.storage));
        CHECK(log_fields_add(&f, "C=") == -ENOBUFS);
        CHECK(f.n == 2);
        CHECK(fields_inside_storage(&f));
        /* And never more fields than iovecs. */
        f = (LogFields){};
        for (size_t i = 0; i < LOG_FIELDS_MAX; i++)
                CHECK(log_fields_add(&f, "F=%zu", i) == 0);
        CHECK(log_fields_add(&f, "F=x") == -ENOBUFS);
        CHECK(f.n == LOG_FIELDS_MAX);
        free(s);
}

static void message(LogEntry *e, uint64_t seq, const char *text, size_t len, LogKind kind)
{
        *e = (LogEntry){ .kind = kind, .priority = LOG_INFO, .time = seq, .status = (unsigned)seq };
        log_entry_set(e, LOG_STR_TEXT, text, len);
}

static void test_ring(void)
{
        LogRing r;
        char text[LOG_TEXT_MAX];
        for (size_t i = 0; i < sizeof(text); i++)
                text[i] = (char)('a' + i % 26);
        CHECK(log_ring_init(&r, 32768) == 0);

        /* Many rounds of varying sizes: every record comes back whole, in order, across the
         * wrap-around. */
        uint64_t pushed = 0, popped = 0;
        LogEntry e, got;
        for (int round = 0; round < 200; round++) {
                for (int k = 0; k < 7; k++) {
                        size_t len = (pushed * 37) % sizeof(text);
                        message(&e, pushed, text, len, LOG_KIND_MESSAGE);
                        if (!log_ring_push(&r, &e))
                                break;
                        pushed++;
                }
                uint64_t tail = atomic_load(&r.tail);
                while (popped < pushed && log_ring_peek(&r, tail, &got)) {
                        size_t len = (popped * 37) % sizeof(text);
                        CHECK(got.time == popped && got.status == (unsigned)popped);
                        CHECK(got.len[LOG_STR_TEXT] == len);
                        CHECK(memcmp(got.str[LOG_STR_TEXT], text, len) == 0);
                        CHECK(!got.str[LOG_STR_PATH]);
                        log_ring_pop(&r);
                        popped++;
                }
        }
        CHECK(pushed == 1400 && popped == pushed);
        CHECK(atomic_load(&r.head) == atomic_load(&r.tail));
        CHECK(!log_ring_peek(&r, atomic_load(&r.tail), &got));

        /* Access entries stop at 3/4 of the ring; messages still fit after them. */
        size_t n_access = 0;
        for (;;) {
                message(&e, 0, text, 1000, LOG_KIND_ACCESS);
                if (!log_ring_push(&r, &e))
                        break;
                n_access++;
        }
        CHECK(atomic_load(&r.dropped_access) == 1);
        CHECK(atomic_load(&r.tail) - atomic_load(&r.head) <= 32768 / 4 * 3);
        CHECK(n_access >= 20);
        size_t n_messages = 0;
        for (;;) {
                message(&e, 0, text, 1000, LOG_KIND_MESSAGE);
                if (!log_ring_push(&r, &e))
                        break;
                n_messages++;
        }
        CHECK(n_messages >= 6);
        CHECK(atomic_load(&r.dropped_other) == 1);
        CHECK(atomic_load(&r.tail) - atomic_load(&r.head) <= 32768);
        log_ring_done(&r);
}

/* One producer thread, one consumer (this one): the ring under real concurrency (run it under
 * ThreadSanitizer too). Every entry comes out once, in order, or was counted as dropped. */
#define THREADED_N 200000
static atomic_bool producer_done;

static void *producer(void *userdata)
{
        LogRing *r = userdata;
        char text[64];
        for (uint64_t i = 0; i < THREADED_N; i++) {
                LogEntry e;
                int n = snprintf(text, sizeof(text), "entry %llu", (unsigned long long)i);
                message(&e, i, text, (size_t)n, i % 3 ? LOG_KIND_ACCESS : LOG_KIND_MESSAGE);
                (void)log_ring_push(r, &e);
        }
        atomic_store(&producer_done, true);
        return NULL;
}

static void test_ring_threads(void)
{
        LogRing r;
        pthread_t t;
        CHECK(log_ring_init(&r, 32768) == 0);
        CHECK(pthread_create(&t, NULL, producer, &r) == 0);
        uint64_t got_n = 0, last = 0;
        bool in_order = true, intact = true;
        for (;;) {
                /* Read before the tail: all the producer pushed is below the tail read after. */
                bool done = atomic_load(&producer_done);
                uint64_t tail = atomic_load(&r.tail);
                LogEntry e;
                while (log_ring_peek(&r, tail, &e)) {
                        char text[64];
                        int n = snprintf(text, sizeof(text), "entry %llu",
                                         (unsigned long long)e.time);
                        if (got_n > 0 && e.time <= last)
                                in_order = false;
                        if (e.len[LOG_STR_TEXT] != (size_t)n ||
                            memcmp(e.str[LOG_STR_TEXT], text, (size_t)n) != 0)
                                intact = false;
                        last = e.time;
                        got_n++;
                        log_ring_pop(&r);
                }
                if (done)
                        break;
        }
        pthread_join(t, NULL);
        CHECK(in_order);
        CHECK(intact);
        uint64_t dropped = atomic_load(&r.dropped_access) + atomic_load(&r.dropped_other);
        CHECK(got_n + dropped == THREADED_N);
        CHECK(got_n > 0);
        log_ring_done(&r);
}

/* The decision made once at the start: a socket at the path (directly or through a symlink,
 * as a container may have it) is a journal; anything else is "no journal" with its reason. A
 * socket nobody is behind still counts: sd_journal_sendv() says so later (-ECONNREFUSED). */
static void test_journal_probe(void)
{
        char dir[] = "/tmp/test-log-XXXXXX";
        CHECK(mkdtemp(dir) != NULL);
        char sock[64], file[64], link[64], dangling[64];
        snprintf(sock, sizeof(sock), "%s/socket", dir);
        snprintf(file, sizeof(file), "%s/file", dir);
        snprintf(link, sizeof(link), "%s/link", dir);
        snprintf(dangling, sizeof(dangling), "%s/dangling", dir);

        CHECK(log_journal_probe(sock) == -ENOENT);
        CHECK(log_journal_probe(dir) == -ENOTSOCK);
        int fd = open(file, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
        CHECK(fd >= 0);
        close(fd);
        CHECK(log_journal_probe(file) == -ENOTSOCK);

        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
        CHECK(log_journal_probe(sock) == 0);
        CHECK(symlink(sock, link) == 0);
        CHECK(log_journal_probe(link) == 0);
        CHECK(symlink("/nonexistent/socket", dangling) == 0);
        CHECK(log_journal_probe(dangling) == -ENOENT);
        close(fd);
        CHECK(log_journal_probe(sock) == 0); /* nobody behind it: still a socket */

        unlink(sock);
        unlink(file);
        unlink(link);
        unlink(dangling);
        rmdir(dir);
}

int main(void)
{
        test_access_at_maximum();
        test_messages_at_maximum();
        test_fields_storage_check();
        test_ring();
        test_ring_threads();
        test_journal_probe();
        TEST_MAIN_END();
}
