/* SPDX-License-Identifier: MIT */
#include <assert.h>
#include <dirent.h>
#include <fcntl.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <inttypes.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "base/log.h"
#include "base/wake.h"
#include "http/http1.h"
#include "lb/metrics.h"
#include "lb/model.h"
#include "proxy/metrics-server.h"

/* A scraper sends a few hundred bytes; more is not a scrape. */
#define REQUEST_HEAD_MAX 8192
#define CONNECTIONS_MAX 64
#define IDLE_TIMEOUT_SEC 30

typedef struct MetricsConn MetricsConn;

struct MetricsServer {
        MetricsServerOptions options;
        struct event_base *base;
        struct event **accepts; /* one per listening socket */
        size_t n_accepts;
        Wake stop; /* from the control thread: the loop ends */
        MetricsConn *conns;
        size_t n_conns;
        pthread_t thread;
        bool has_thread;
        double start_time; /* of the process, seconds since the epoch */
};

struct MetricsConn {
        MetricsServer *server;
        struct bufferevent *bev;
        bool closing; /* after what is queued is written */
        MetricsConn *prev, *next;
};

static void conn_free(MetricsConn *c)
{
        MetricsServer *s = c->server;
        if (c->prev)
                c->prev->next = c->next;
        else
                s->conns = c->next;
        if (c->next)
                c->next->prev = c->prev;
        s->n_conns--;
        bufferevent_free(c->bev);
        free(c);
}

/* ---- what the control loop and the process say ---- */

static void family(MetricsText *f, const char *name, const char *type, const char *help)
{
        metrics_text_printf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A counter family of two series, {outcome="success"} and {outcome="failure"}. */
static void outcomes(MetricsText *f, const char *name, const char *help,
                     const atomic_uint_fast64_t *ok, const atomic_uint_fast64_t *failed)
{
        family(f, name, "counter", help);
        metrics_text_printf(f,
                            "%s{outcome=\"success\"} %" PRIu64 "\n"
                            "%s{outcome=\"failure\"} %" PRIu64 "\n",
                            name, (uint64_t)atomic_load_explicit(ok, memory_order_relaxed), name,
                            (uint64_t)atomic_load_explicit(failed, memory_order_relaxed));
}

/* Seconds since the epoch when the process started: its start in clock ticks after boot, and
 * the boot time. 0 when /proc says neither. */
static double process_start_time(void)
{
        unsigned long long start_ticks = 0, btime = 0;
        char buf[1024];
        FILE *f = fopen("/proc/self/stat", "re");
        if (f) {
                size_t n = fread(buf, 1, sizeof(buf) - 1, f);
                buf[n] = '\0';
                fclose(f);
                /* After the command's closing parenthesis: field 3 on; starttime is 22. */
                const char *p = strrchr(buf, ')');
                for (int field = 2; p && field < 22; field++)
                        p = strchr(p + 1, ' ');
                if (p)
                        start_ticks = strtoull(p + 1, NULL, 10);
        }
        f = fopen("/proc/stat", "re");
        if (f) {
                while (fgets(buf, sizeof(buf), f))
                        if (sscanf(buf, "btime %llu", &btime) == 1)
                                break;
                fclose(f);
        }
        long hz = sysconf(_SC_CLK_TCK);
        if (!btime || hz <= 0)
                return 0;
        return (double)btime + (double)start_ticks / (double)hz;
}

static size_t open_fds(void)
{
        size_t n = 0;
        DIR *d = opendir("/proc/self/fd");
        if (!d)
                return 0;
        struct dirent *de;
        while ((de = readdir(d)))
                if (de->d_name[0] != '.')
                        n++;
        closedir(d);
        return n > 0 ? n - 1 : 0; /* the directory's own */
}

static uint64_t resident_bytes(void)
{
        unsigned long long size = 0, resident = 0;
        FILE *f = fopen("/proc/self/statm", "re");
        if (!f)
                return 0;
        if (fscanf(f, "%llu %llu", &size, &resident) != 2)
                resident = 0;
        fclose(f);
        return resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

static void write_control(const MetricsServerOptions *o, MetricsText *f, double start_time)
{
        const MetricsControl *c = o->control;

        family(f, "lbproxy_config_generation", "gauge",
               "Models published since the start (each reload and D-Bus change makes one).");
        metrics_text_printf(f, "lbproxy_config_generation %u\n",
                atomic_load_explicit(&o->models->generation, memory_order_relaxed));
        if (c) {
                outcomes(f, "lbproxy_config_reloads_total", "Reloads (SIGHUP, Reload()) by outcome.",
                         &c->reloads_ok, &c->reloads_failed);
                outcomes(f, "lbproxy_config_changes_total",
                         "Configuration changes over D-Bus by outcome.", &c->changes_ok,
                         &c->changes_failed);
        }
        family(f, "lbproxy_build_info", "gauge", "The version of lbproxy, as a label; always 1.");
        metrics_text_printf(f, "lbproxy_build_info{version=\"%s\"} 1\n", LBPROXY_VERSION);
        family(f, "lbproxy_access_log_dropped_total", "counter",
               "Access log entries dropped because the log queue was full.");
        metrics_text_printf(f, "lbproxy_access_log_dropped_total %" PRIu64 "\n", log_access_dropped_total());
        if (o->resolver) {
                family(f, "lbproxy_dns_answers_total", "counter",
                       "Answers to the DNS queries for node names, by outcome.");
                for (ResolverOutcome i = 0; i < _RESOLVER_OUTCOME_MAX; i++)
                        metrics_text_printf(f, "lbproxy_dns_answers_total{outcome=\"%s\"} %" PRIu64 "\n",
                                resolver_outcome_to_string(i), resolver_answers(o->resolver, i));
        }

        struct rusage ru;
        if (getrusage(RUSAGE_SELF, &ru) == 0) {
                double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
                             ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
                family(f, "process_cpu_seconds_total", "counter",
                       "Total user and system CPU time spent in seconds.");
                metrics_text_printf(f, "process_cpu_seconds_total %.6f\n", cpu);
        }
        family(f, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
        metrics_text_printf(f, "process_resident_memory_bytes %" PRIu64 "\n", resident_bytes());
        family(f, "process_open_fds", "gauge", "Number of open file descriptors.");
        metrics_text_printf(f, "process_open_fds %zu\n", open_fds());
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
                family(f, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
                metrics_text_printf(f, "process_max_fds %llu\n", (unsigned long long)rl.rlim_cur);
        }
        if (start_time > 0) {
                family(f, "process_start_time_seconds", "gauge",
                       "Start time of the process since unix epoch in seconds.");
                metrics_text_printf(f, "process_start_time_seconds %.2f\n", start_time);
        }
}

static int render(const MetricsServerOptions *o, double start_time, char **ret, size_t *ret_len)
{
        MetricsText t = {};

        /* The model serving now, held while its names are read. Its last reference may drop
         * here: the release handler hands it back to the control loop. */
        pthread_mutex_lock(&o->models->lock);
        Model *m = model_ref(o->models->model);
        pthread_mutex_unlock(&o->models->lock);

        MetricsInput in = { .model = m,
                            .registry = o->registry,
                            .listeners = o->listeners,
                            .n_listeners = o->n_listeners,
                            .node_labels = o->node_labels };
        int r = m ? metrics_write(&in, &t) : 0;
        model_unref(m);
        if (r >= 0)
                write_control(o, &t, start_time);
        if (r >= 0 && t.failed)
                r = -ENOMEM;
        if (r < 0) {
                metrics_text_done(&t);
                return r;
        }
        *ret = TAKE_PTR(t.buf);
        *ret_len = t.len;
        return 0;
}

/* ---- HTTP ---- */

static void respond(MetricsConn *c, unsigned status, const char *reason, const char *type,
                    const char *body, size_t len, bool head_only, bool close)
{
        struct evbuffer *out = bufferevent_get_output(c->bev);
        evbuffer_add_printf(out,
                            "HTTP/1.1 %u %s\r\n"
                            "Content-Type: %s\r\n"
                            "Content-Length: %zu\r\n"
                            "%s"
                            "\r\n",
                            status, reason, type, len, close ? "Connection: close\r\n" : "");
        if (!head_only)
                evbuffer_add(out, body, len);
        c->closing = close;
}

static void free_body(const void *data, size_t len, void *userdata)
{
        free((void *)data);
}

static bool slice_eq(HttpSlice s, const char *v)
{
        return s.len == strlen(v) && memcmp(s.p, v, s.len) == 0;
}

/* Answers the requests the input holds, one response at a time: a pipelining client that does
 * not read gets no second scrape built for it. */
static void serve(MetricsConn *c)
{
        struct evbuffer *in = bufferevent_get_input(c->bev);
        struct evbuffer *out = bufferevent_get_output(c->bev);

        while (!c->closing && evbuffer_get_length(out) == 0) {
                size_t len = evbuffer_get_length(in);
                if (len == 0)
                        return;
                size_t n = len < REQUEST_HEAD_MAX ? len : REQUEST_HEAD_MAX;
                const char *p = (const char *)evbuffer_pullup(in, (ssize_t)n);
                HttpHead h;
                ssize_t r = http1_parse_request(p, n, 64, REQUEST_HEAD_MAX, &h, NULL);
                if (r == -EAGAIN)
                        return;
                if (r < 0) {
                        static const char text[] = "bad request\n";
                        respond(c, 400, "Bad Request", "text/plain; charset=utf-8", text,
                                sizeof(text) - 1, false, true);
                        return;
                }
                bool get = slice_eq(h.method, "GET"), head = slice_eq(h.method, "HEAD");
                /* A body is not read: the connection cannot carry another request. */
                bool close = !h.keep_alive || h.body != HTTP_BODY_NONE;
                bool metrics = (get || head) && slice_eq(h.path, "/metrics");
                evbuffer_drain(in, (size_t)r);
                if (!metrics) {
                        static const char text[] = "not found: this listener serves GET /metrics\n";
                        respond(c, 404, "Not Found", "text/plain; charset=utf-8", text,
                                sizeof(text) - 1, head, close);
                        continue;
                }
                char *body = NULL;
                size_t body_len = 0;
                if (render(&c->server->options, c->server->start_time, &body, &body_len) < 0) {
                        static const char text[] = "out of memory\n";
                        respond(c, 500, "Internal Server Error", "text/plain; charset=utf-8",
                                text, sizeof(text) - 1, head, true);
                        return;
                }
                respond(c, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", NULL,
                        body_len, true, close);
                /* Megabytes for a large configuration: handed over, not copied. */
                if (head)
                        free(body);
                else if (evbuffer_add_reference(bufferevent_get_output(c->bev), body, body_len,
                                                free_body, NULL) < 0) {
                        free(body);
                        c->closing = true; /* the head promised what cannot follow */
                }
        }
}

static void on_read(struct bufferevent *bev, void *userdata)
{
        serve(userdata);
}

static void on_write(struct bufferevent *bev, void *userdata)
{
        MetricsConn *c = userdata;
        /* All written: close, or answer what was pipelined meanwhile. */
        if (c->closing)
                conn_free(c);
        else
                serve(c);
}

static void on_event(struct bufferevent *bev, short what, void *userdata)
{
        /* EOF, an error or the idle timeout: the scraper is gone or silent. */
        conn_free(userdata);
}

static void on_accept(evutil_socket_t fd, short what, void *userdata)
{
        MetricsServer *s = userdata;

        for (int i = 0; i < 16; i++) {
                int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (cfd < 0)
                        return;
                if (s->n_conns >= CONNECTIONS_MAX) {
                        close(cfd);
                        continue;
                }
                MetricsConn *c = calloc(1, sizeof(*c));
                struct bufferevent *bev = c ? bufferevent_socket_new(s->base, cfd,
                                                                     BEV_OPT_CLOSE_ON_FREE)
                                            : NULL;
                if (!bev) {
                        free(c);
                        close(cfd);
                        return;
                }
                *c = (MetricsConn){ .server = s, .bev = bev, .next = s->conns };
                if (s->conns)
                        s->conns->prev = c;
                s->conns = c;
                s->n_conns++;
                struct timeval tv = { .tv_sec = IDLE_TIMEOUT_SEC };
                bufferevent_set_timeouts(bev, &tv, &tv);
                /* Input beyond a head or two waits in the socket. */
                bufferevent_setwatermark(bev, EV_READ, 0, 2 * REQUEST_HEAD_MAX);
                bufferevent_setcb(bev, on_read, on_write, on_event, c);
                bufferevent_enable(bev, EV_READ | EV_WRITE);
        }
}

static void on_stop(evutil_socket_t fd, short what, void *userdata)
{
        MetricsServer *s = userdata;
        event_base_loopbreak(s->base);
}

static void *run(void *userdata)
{
        MetricsServer *s = userdata;
        event_base_dispatch(s->base);
        return NULL;
}

static void server_free(MetricsServer *s)
{
        while (s->conns)
                conn_free(s->conns);
        for (size_t i = 0; i < s->n_accepts; i++)
                if (s->accepts[i])
                        event_free(s->accepts[i]);
        free(s->accepts);
        wake_done(&s->stop);
        if (s->base)
                event_base_free(s->base);
        free(s);
}

int metrics_server_start(const MetricsServerOptions *o, const Listener *sockets, size_t n,
                         MetricsServer **ret)
{
        MetricsServer *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->options = *o;
        s->stop.fd = -EBADF;
        s->start_time = process_start_time();
        s->base = event_base_new();
        s->accepts = calloc(n ? n : 1, sizeof(struct event *));
        if (!s->base || !s->accepts || wake_init(&s->stop, s->base, on_stop, s) < 0) {
                server_free(s);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                /* One socket each: the spec said `single` (activated ones are one anyway). */
                assert(sockets[i].n_fds == 1);
                s->accepts[i] = event_new(s->base, sockets[i].fds[0], EV_READ | EV_PERSIST,
                                          on_accept, s);
                if (!s->accepts[i]) {
                        server_free(s);
                        return -ENOMEM;
                }
                s->n_accepts++;
                event_add(s->accepts[i], NULL);
        }
        int r = pthread_create(&s->thread, NULL, run, s);
        if (r != 0) {
                server_free(s);
                return -r;
        }
        s->has_thread = true;
        (void)pthread_setname_np(s->thread, "lbproxy-metrics");
        *ret = s;
        return 0;
}

MetricsServer *metrics_server_stop(MetricsServer *s)
{
        if (!s)
                return NULL;
        if (s->has_thread) {
                /* Not event_active(): libevent may be without locks. */
                wake_signal(&s->stop);
                pthread_join(s->thread, NULL);
        }
        server_free(s);
        return NULL;
}
