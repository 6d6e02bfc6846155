/* SPDX-License-Identifier: MIT */
/* The active prober against a server of the test's own: probes at the configured rate, the
 * request as configured (path, Host, headers; keep-alive at this interval), and what each kind
 * of answer (200, 500, silence, refusal) does to the node, heard through the prober's hook. The
 * configuration's health_check is filled by hand. */
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "lb/health.h"
#include "lb/model.h"
#include "lb/publisher.h"
#include "proxy/health-probe.h"
#include "tap.h"

enum { ANSWER_200, ANSWER_500, HANG, REFUSE };

static struct {
        int listen_fd;
        uint16_t port;
        atomic_int mode;
        atomic_bool stop;
        atomic_uint requests;
        pthread_mutex_t lock;
        char last[1024];
        int hung[64];
        size_t n_hung;
} srv = { .lock = PTHREAD_MUTEX_INITIALIZER };

static struct {
        pthread_mutex_t lock;
        unsigned downs, ups;
        char why[256];
} heard = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void *serve(void *arg)
{
        while (!atomic_load(&srv.stop)) {
                if (atomic_load(&srv.mode) == REFUSE && srv.listen_fd >= 0) {
                        close(srv.listen_fd);
                        srv.listen_fd = -1;
                }
                struct pollfd pfd = { .fd = srv.listen_fd, .events = POLLIN };
                if (poll(&pfd, 1, 20) <= 0 || srv.listen_fd < 0)
                        continue;
                int fd = accept(srv.listen_fd, NULL, NULL);
                if (fd < 0)
                        continue;
                struct timeval tv = { .tv_sec = 1 };
                setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
                char buf[1024];
                size_t n = 0;
                while (n < sizeof(buf) - 1) {
                        ssize_t k = read(fd, buf + n, sizeof(buf) - 1 - n);
                        if (k <= 0)
                                break;
                        n += (size_t)k;
                        buf[n] = 0;
                        if (strstr(buf, "\r\n\r\n"))
                                break;
                }
                buf[n] = 0;
                pthread_mutex_lock(&srv.lock);
                memcpy(srv.last, buf, n + 1);
                pthread_mutex_unlock(&srv.lock);
                atomic_fetch_add(&srv.requests, 1);
                int mode = atomic_load(&srv.mode);
                if (mode == HANG && srv.n_hung < ELEMENTSOF(srv.hung)) {
                        srv.hung[srv.n_hung++] = fd;
                        continue;
                }
                const char *answer = mode == ANSWER_500
                                             ? "HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n"
                                             : "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                (void)write(fd, answer, strlen(answer));
                close(fd);
        }
        for (size_t i = 0; i < srv.n_hung; i++)
                close(srv.hung[i]);
        return NULL;
}

static void on_health(void *userdata, const Upstream *u, const Node *n, const char *why)
{
        pthread_mutex_lock(&heard.lock);
        if (why) {
                heard.downs++;
                snprintf(heard.why, sizeof(heard.why), "%s", why);
        } else
                heard.ups++;
        pthread_mutex_unlock(&heard.lock);
}

static unsigned downs(void)
{
        pthread_mutex_lock(&heard.lock);
        unsigned n = heard.downs;
        pthread_mutex_unlock(&heard.lock);
        return n;
}

static unsigned ups(void)
{
        pthread_mutex_lock(&heard.lock);
        unsigned n = heard.ups;
        pthread_mutex_unlock(&heard.lock);
        return n;
}

/* Waits (polling, at most `ms`) until `fn` returns at least `want`. */
static bool wait_for(unsigned (*fn)(void), unsigned want, unsigned ms)
{
        for (unsigned i = 0; i < ms / 10; i++) {
                if (fn() >= want)
                        return true;
                usleep(10 * 1000);
        }
        return fn() >= want;
}

static unsigned requests(void)
{
        return atomic_load(&srv.requests);
}

static Model *build_model(Registry *reg, const Model *base)
{
        char yaml[1024];
        snprintf(yaml, sizeof(yaml),
                 "listeners: [{name: web, listen: \"127.0.0.1:1\"}]\n"
                 "upstreams:\n"
                 "- name: a\n"
                 "  nodes: [{host: 127.0.0.1, port: %u}]\n"
                 "  health_check:\n"
                 "    active:\n"
                 "      http_path: /status\n"
                 "      timeout: 300ms\n"
                 "      headers: [\"X-Probe: yes\"]\n"
                 "      healthy: {interval: 100ms, successes: 1, http_statuses: [200]}\n"
                 "      unhealthy: {interval: 100ms, http_failures: 1, tcp_failures: 1,\n"
                 "                  timeouts: 1, http_statuses: [500]}\n"
                 "routes:\n"
                 "- {name: r, paths: [/*], upstreams: [{name: a}]}\n",
                 srv.port);
        Config *c = NULL;
        char *errors = NULL;
        int r = config_load_string("t.yaml", yaml, strlen(yaml), &errors, &c);
        if (r < 0) {
                fprintf(stderr, "%s\n", errors ? errors : strerror(-r));
                free(errors);
                return NULL;
        }

        Model *m = NULL;
        ModelContext ctx = { .registry = reg, .base = base };
        char *error = NULL;
        r = model_new(c, &ctx, &m, &error);
        if (r < 0)
                fprintf(stderr, "model_new: %s\n", error ? error : strerror(-r));
        free(error);
        return r < 0 ? NULL : m;
}

int main(void)
{
        srv.listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in sin = { .sin_family = AF_INET,
                                   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(sin);
        if (bind(srv.listen_fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
            listen(srv.listen_fd, 64) < 0 ||
            getsockname(srv.listen_fd, (struct sockaddr *)&sin, &len) < 0) {
                perror("listen");
                return 1;
        }
        srv.port = ntohs(sin.sin_port);
        pthread_t server;
        pthread_create(&server, NULL, serve, NULL);

        Registry *reg = NULL;
        CHECK(registry_new(&reg) == 0);
        Model *m = build_model(reg, NULL);
        CHECK(m != NULL);
        if (!m)
                return 1;
        CHECK(health_prober_wanted(m));
        ModelPublisher pub;
        model_publisher_init(&pub);
        model_publisher_set(&pub, model_ref(m));

        HealthProber *p = NULL;
        HealthProberOptions o = { .models = &pub, .node_health_changed = on_health,
                                  .log_queue = -1 };
        CHECK(health_prober_start(&o, &p) == 0);

        /* One probe per interval (100 ms): about ten a second, the first within the first
         * interval. */
        CHECK(wait_for(requests, 1, 1000));
        unsigned before = requests();
        usleep(1000 * 1000);
        unsigned rate = requests() - before;
        fprintf(stderr, "probes in 1 s at 100 ms: %u\n", rate);
        CHECK(rate >= 6 && rate <= 12);
        pthread_mutex_lock(&srv.lock);
        char want[256];
        snprintf(want, sizeof(want),
                 "GET /status HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nX-Probe: yes\r\n\r\n",
                 srv.port);
        CHECK_STR(srv.last, want);
        pthread_mutex_unlock(&srv.lock);
        CHECK(downs() == 0 && ups() == 0);

        /* A status of the unhealthy list. */
        atomic_store(&srv.mode, ANSWER_500);
        CHECK(wait_for(downs, 1, 2000));
        pthread_mutex_lock(&heard.lock);
        CHECK(strstr(heard.why, "status 500") != NULL);
        pthread_mutex_unlock(&heard.lock);
        CHECK(node_is_down(&m->upstreams[0]->nodes[0]));
        atomic_store(&srv.mode, ANSWER_200);
        CHECK(wait_for(ups, 1, 2000));
        CHECK(!node_is_down(&m->upstreams[0]->nodes[0]));

        /* A swap to a model with the same upstream keeps the probes going. */
        Model *m2 = build_model(reg, m);
        CHECK(m2 && m2->upstreams[0] == m->upstreams[0]);
        model_publisher_set(&pub, model_ref(m2));
        health_prober_model_changed(p);
        before = requests();
        CHECK(wait_for(requests, before + 3, 2000));

        /* Accepted, never answered: the timeout. */
        atomic_store(&srv.mode, HANG);
        CHECK(wait_for(downs, 2, 2000));
        pthread_mutex_lock(&heard.lock);
        CHECK(strstr(heard.why, "timeout") != NULL);
        fprintf(stderr, "why: %s\n", heard.why);
        pthread_mutex_unlock(&heard.lock);
        atomic_store(&srv.mode, ANSWER_200);
        CHECK(wait_for(ups, 2, 2000));

        /* Refused. */
        atomic_store(&srv.mode, REFUSE);
        CHECK(wait_for(downs, 3, 2000));
        pthread_mutex_lock(&heard.lock);
        fprintf(stderr, "why: %s\n", heard.why);
        CHECK(strstr(heard.why, "refused") != NULL);
        pthread_mutex_unlock(&heard.lock);

        health_prober_stop(p);
        atomic_store(&srv.stop, true);
        pthread_join(server, NULL);
        model_publisher_done(&pub);
        model_unref(m);
        model_unref(m2);
        registry_free(reg);
        TEST_MAIN_END();
}
