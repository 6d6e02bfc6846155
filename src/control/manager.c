/* SPDX-License-Identifier: MIT */
#include <assert.h>
#include <signal.h>
#include <sys/resource.h>

#include "base/log.h"
#include "base/thread-sched.h"
#include "config/state.h"
#include "control/daemon.h"
#include "control/manager-health.h"
#include "control/manager.h"
#include "control/state-writer.h"
#include "control/store-sync.h"

#define STATUS_INTERVAL_USEC (5 * USEC_PER_SEC)
/* Room for the counters and a note naming a file:line:column and why. */
#define STATUS_MAX 1024

static uint64_t total_requests(const Manager *m)
{
        uint64_t n = 0;
        for (size_t i = 0; i < m->n_workers; i++)
                n += atomic_load_explicit(&m->workers[i].requests, memory_order_relaxed);
        return n;
}

/* How the connections went to the workers: "connections by worker: 10, 12; wake-ups with
 * nothing to accept: 0, 3". */
static void format_spread(const Manager *m, char *buf, size_t size)
{
        const char *what[] = { "connections by worker: ", "; wake-ups with nothing to accept: " };
        size_t n = 0;
        buf[0] = '\0';
        for (size_t k = 0; k < ELEMENTSOF(what); k++)
                for (size_t i = 0; i < m->n_workers && n < size; i++) {
                        const Worker *w = &m->workers[i];
                        uint64_t v = atomic_load_explicit(k == 0 ? &w->connections
                                                                 : &w->accept_empty,
                                                          memory_order_relaxed);
                        int r = snprintf(buf + n, size - n, "%s%llu", i == 0 ? what[k] : ", ",
                                         (unsigned long long)v);
                        if (r < 0)
                                return;
                        n += (size_t)r;
                }
}

const Model *manager_model(const Manager *m)
{
        return model_publisher_peek(&m->models);
}

size_t manager_connections(const Manager *m)
{
        return conn_limit_current(&m->conn_limit);
}

size_t manager_max_connections(const Manager *m)
{
        return conn_limit_max(&m->conn_limit);
}

static void format_status(Manager *m, char *buf, size_t size)
{
        const Model *model = manager_model(m);
        size_t nodes = 0, healthy = 0;
        size_t clients = conn_limit_current(&m->conn_limit);
        size_t max = conn_limit_max(&m->conn_limit);
        const char *accepting = "";

        for (size_t i = 0; i < model->n_upstreams; i++)
                for (size_t k = 0; k < model->upstreams[i]->n_nodes; k++, nodes++)
                        healthy += !node_is_down(&model->upstreams[i]->nodes[k]);
        if (m->default_max_connections == 0)
                max = 0; /* not started: no limit yet */
        else if (conn_limit_retry_at(&m->conn_limit) > 0)
                accepting = " (not accepting: out of file descriptors or memory)";
        else if (clients >= max)
                accepting = " (max_connections reached: new ones wait)";
        snprintf(buf, size,
                 "Serving %zu routes over %zu upstreams (%zu/%zu nodes healthy) with %zu workers; "
                 "%llu requests, %zu/%zu connections%s",
                 model->n_routes, model->n_upstreams, healthy, nodes, m->n_workers,
                 (unsigned long long)total_requests(m), clients, max, accepting);
        char panics[256];
        size_t n_panics = manager_format_panics(model, panics, sizeof(panics));
        if (n_panics > 0) {
                size_t n = strlen(buf);
                snprintf(buf + n, size - n, "; %zu upstream%s in panic (every node down): %s",
                         n_panics, n_panics == 1 ? "" : "s", panics);
        }
        if (m->status_note) {
                size_t n = strlen(buf);
                snprintf(buf + n, size - n, "; %s", m->status_note);
        }
}

int manager_set_status_note(Manager *m, const char *note)
{
        char *s = NULL;
        if (note) {
                /* One line: STATUS= ends at a newline. */
                s = strndup(note, strcspn(note, "\n"));
                if (!s)
                        return -ENOMEM;
        }
        free(m->status_note);
        m->status_note = s;
        return 0;
}

/* max_connections from the configuration, or derived from the descriptor limit; said when it
 * changes (at start, or by a reload). */
static void apply_max_connections(Manager *m)
{
        size_t configured = manager_model(m)->config->max_connections;
        size_t max = configured > 0 ? configured : m->default_max_connections;
        if (m->default_max_connections == 0 || max == conn_limit_max(&m->conn_limit))
                return; /* not started yet (the listeners and workers count), or unchanged */
        conn_limit_set_max(&m->conn_limit, max);
        log_info("Accepting up to %zu client connections (%s; file descriptor limit %llu)", max,
                 configured > 0 ? "max_connections" : "derived from the file descriptor limit",
                 (unsigned long long)m->nofile);
        size_t needed = conn_limit_fds_needed(max, listeners_count_fds(m->listeners,
                                                                      m->n_listeners),
                                              m->n_workers);
        if (needed > m->nofile)
                log_warning("max_connections %zu may need about %zu file descriptors, more than "
                            "the limit of %llu (LimitNOFILE=): when they run out, accepting pauses "
                            "and new connections wait", max, needed,
                            (unsigned long long)m->nofile);
}

static void on_status_timer(evutil_socket_t fd, short what, void *userdata)
{
        Manager *m = userdata;
        char status[STATUS_MAX];
        format_status(m, status, sizeof(status));
        daemon_notify_status(status);
}

/* Models whose last reference went on a worker thread come here to be freed. */
static void on_model_released(Model *model, void *userdata)
{
        Manager *m = userdata;
        pthread_mutex_lock(&m->release_lock);
        Model **l = realloc(m->released, (m->n_released + 1) * sizeof(Model *));
        if (l) {
                m->released = l;
                l[m->n_released++] = model;
        }
        pthread_mutex_unlock(&m->release_lock);
        if (!l)
                log_error("Out of memory: a retired model is leaked");
        /* A Wake, not event_active(): the metrics thread releases models too, and with one
         * worker libevent runs without locks. */
        wake_signal(&m->release_wake);
}

static void free_released(Manager *m)
{
        pthread_mutex_lock(&m->release_lock);
        Model **l = TAKE_PTR(m->released);
        size_t n = m->n_released;
        m->n_released = 0;
        pthread_mutex_unlock(&m->release_lock);
        for (size_t i = 0; i < n; i++)
                model_release(l[i]);
        free(l);
}

static void on_release_event(evutil_socket_t fd, short what, void *userdata)
{
        free_released(userdata);
}

static void warn_unverified(const Model *model)
{
        for (size_t i = 0; i < model->n_upstreams; i++) {
                const ConfigUpstream *cu = model->upstreams[i]->config;
                if (cu->scheme == SCHEME_HTTPS && !cu->tls.verify)
                        log_warning("Upstream '%s': TLS certificate verification is OFF "
                                    "(tls.verify: false): its identity is not checked",
                                    cu->name);
        }
}

/* The one way a model goes live: D-Bus told before and after; workers pick it up at their next
 * request (worker_refresh_model). What outlives a swap is in the registry, or shared by the
 * new model when it was built. */
static void update_prober(Manager *m);

static void swap_model(Manager *m, Model *model)
{
        Model *old = model_ref(model_publisher_peek(&m->models));
        const ControlFrontend *f = m->frontend_data ? m->frontend : NULL;

        warn_unverified(model);
        if (f)
                f->model_removing(m->frontend_data, old, model);
        manager_health_commit(m, old, model);
        model_publisher_set(&m->models, model);
        if (f)
                f->model_swapped(m->frontend_data, old, model);
        model_unref(old);
        apply_max_connections(m);
        update_prober(m);

        /* At start READY=1 brings the first status, once the workers run. */
        if (m->n_workers == 0)
                return;
        manager_update_status(m);
}

void manager_update_status(Manager *m)
{
        char status[STATUS_MAX];
        format_status(m, status, sizeof(status));
        daemon_notify_status(status);
}

/* ---- changes, durable before they serve ----
 *
 * A change over D-Bus is built into a model at once (what does not build is refused at once),
 * then waits in `pending` while the state writer thread writes it; once it is on disk it is
 * swapped in and its caller answered. One write at a time: changes made meanwhile wait, and the
 * next write is of the newest (which holds the ones before it), so a burst costs one write. A
 * write that fails fails every change waiting that holds it (all those before the next reload);
 * nothing of theirs served, and state.yaml is as it was (state_file_save). A reload swaps at
 * once, drops the changes waiting, and has the state removed; its caller is answered once that
 * is done. */

/* The newest model: the last change waiting to be written, or the one serving. */
static Model *newest_model(const Manager *m)
{
        for (size_t i = m->n_pending; i > 0; i--)
                if (m->pending[i - 1].model)
                        return m->pending[i - 1].model;
        return model_publisher_peek(&m->models);
}

const Config *manager_config(const Manager *m)
{
        return newest_model(m)->config;
}

static void count(atomic_uint_fast64_t *c)
{
        atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

void manager_change_refused(Manager *m)
{
        count(&m->counts.changes_failed);
}

static int add_pending(Manager *m, Model *model, ManagerChangeDone done, void *userdata)
{
        PendingChange *l = reallocarray(m->pending, m->n_pending + 1, sizeof(PendingChange));
        if (!l)
                return -ENOMEM;
        m->pending = l;
        l[m->n_pending++] = (PendingChange){ .generation = ++m->generation, .model = model,
                                             .done = done, .userdata = userdata };
        return 0;
}

static void write_next(Manager *m)
{
        if (!m->writer || state_writer_busy(m->writer) || m->n_pending == 0)
                return;
        const PendingChange *last = &m->pending[m->n_pending - 1];
        state_writer_request(m->writer, last->model ? last->model->config : NULL,
                             last->generation);
}

static void answer(const PendingChange *p, int r, const char *message)
{
        if (p->done)
                p->done(p->userdata, r, message);
}

/* Answers and forgets the first n pending changes: those whose state is written (r = 0), or
 * failed. The newest of their models goes live when they are written. */
static void settle(Manager *m, size_t n, int r, const char *message)
{
        Model *live = NULL;

        for (size_t i = 0; i < n; i++) {
                PendingChange *p = &m->pending[i];
                if (!p->model)
                        continue; /* a reload's: it swapped already */
                count(r >= 0 ? &m->counts.changes_ok : &m->counts.changes_failed);
                if (r >= 0) {
                        model_unref(live);
                        live = TAKE_PTR(p->model);
                } else
                        p->model = model_unref(p->model);
        }
        if (live) {
                (void)manager_set_status_note(m, NULL);
                swap_model(m, live);
        }
        /* Answered after the swap: a caller that hears "done" finds it serving. */
        for (size_t i = 0; i < n; i++)
                answer(&m->pending[i], r, message);
        memmove(m->pending, m->pending + n, (m->n_pending - n) * sizeof(PendingChange));
        m->n_pending -= n;
}

static void on_state_written(void *userdata, uint64_t generation, int r)
{
        Manager *m = userdata;
        _cleanup_free_ char *message = NULL;
        size_t n = 0;

        while (n < m->n_pending && m->pending[n].generation <= generation)
                n++;
        if (r < 0 && n > 0 && !m->pending[n - 1].model) {
                /* A reload's removal: the files serve, but the state stays, and would be used
                 * at the next start. The reload is answered as done; the log says the rest. */
                log_warning_errno(r, "Cannot remove the runtime state in %s: %m", m->state_dir);
                r = 0;
        } else if (r < 0) {
                log_event(LOG_ERR, LBPROXY_MESSAGE_CONFIG_CHANGE, NULL, NULL, NULL,
                          "Configuration change refused: cannot save the state in %s: %s",
                          m->state_dir, strerror(-r));
                if (asprintf(&message, "cannot save the state in %s: %s", m->state_dir,
                             strerror(-r)) < 0)
                        message = NULL;
                /* The changes after it hold it too, up to a reload. */
                while (n < m->n_pending && m->pending[n].model)
                        n++;
        }
        settle(m, n, r, message ? message : r < 0 ? strerror(-r) : NULL);
        write_next(m);
}

/* Builds what `config` changes of the newest model, reusing what it does not change.
 * `reread_files`: the files it names (ca_files, certificates) may have changed too (a reload). */
static int build_model(Manager *m, Config *config, bool reread_files, Model **ret,
                       char **ret_error)
{
        ModelContext ctx = { .registry = m->registry, .resolver = m->resolver,
                             .base = newest_model(m), .reread_files = reread_files };
        return model_new(config, &ctx, ret, ret_error);
}

int manager_apply_config(Manager *m, Config *config, ManagerChangeDone done, void *userdata,
                         char **ret_error)
{
        Model *model;
        int r = build_model(m, config, false, &model, ret_error);
        if (r < 0) {
                count(&m->counts.changes_failed);
                return r;
        }
        if (!m->writer) {
                /* Nothing to write: it serves at once. */
                count(&m->counts.changes_ok);
                (void)manager_set_status_note(m, NULL);
                swap_model(m, model);
                return 1;
        }
        r = add_pending(m, model, done, userdata);
        if (r < 0) {
                count(&m->counts.changes_failed);
                model_unref(model);
                return r;
        }
        write_next(m);
        return 0;
}

static void cancel_pending(Manager *m, int r, const char *message)
{
        for (size_t i = 0; i < m->n_pending; i++) {
                if (m->pending[i].model)
                        count(&m->counts.changes_failed);
                m->pending[i].model = model_unref(m->pending[i].model);
                answer(&m->pending[i], r, message);
        }
        m->n_pending = 0;
}

/* Sockets are opened once, at start: a reload cannot add, remove or retarget a listener, nor
 * change what protocol it speaks. Says which listener changed, or NULL. */
static char *listeners_changed(const Config *old, const Config *new)
{
        char *why = NULL;

        for (size_t i = 0; i < new->n_listeners && !why; i++) {
                const ConfigListener *n = &new->listeners[i], *o = NULL;
                for (size_t k = 0; k < old->n_listeners && !o; k++)
                        if (streq(old->listeners[k].name, n->name))
                                o = &old->listeners[k];
                if (!o)
                        (void)asprintf(&why, "%s:%u:%u: listener '%s' is new", n->mark.file,
                                       n->mark.line, n->mark.column, n->name);
                else if (o->protocol != n->protocol)
                        (void)asprintf(&why, "%s:%u:%u: listener '%s' changes protocol (%s to %s)",
                                       n->mark.file, n->mark.line, n->mark.column, n->name,
                                       listener_protocol_to_string(o->protocol),
                                       listener_protocol_to_string(n->protocol));
                else if (!streq_ptr(o->listen, n->listen))
                        (void)asprintf(&why, "%s:%u:%u: listener '%s' changes its address (%s to %s)",
                                       n->mark.file, n->mark.line, n->mark.column, n->name,
                                       o->listen ? o->listen : "-", n->listen ? n->listen : "-");
        }
        for (size_t k = 0; k < old->n_listeners && !why; k++) {
                bool found = false;
                for (size_t i = 0; i < new->n_listeners && !found; i++)
                        found = streq(old->listeners[k].name, new->listeners[i].name);
                if (!found)
                        (void)asprintf(&why, "listener '%s' is gone", old->listeners[k].name);
        }
        return why;
}

int manager_reload(Manager *m, ManagerChangeDone done, void *userdata, char **ret_errors)
{
        _cleanup_(config_unrefp) Config *config = NULL;
        _cleanup_free_ char *errors = NULL;

        daemon_notify_reloading();
        int r = config_load(m->config_paths, &errors, &config);
        if (r < 0) {
                log_event(LOG_ERR, LBPROXY_MESSAGE_CONFIG_CHANGE, NULL, NULL, NULL,
                          "Reload refused, configuration unchanged:\n%s", errors ? errors : "");
                if (ret_errors)
                        *ret_errors = TAKE_PTR(errors);
                count(&m->counts.reloads_failed);
                daemon_notify_ready("Reload refused: configuration invalid, previous one kept");
                return r;
        }
        for (char **w = config->warnings; w && *w; w++)
                log_warning("%s", *w);
        _cleanup_free_ char *changed = listeners_changed(manager_model(m)->config, config);
        if (changed) {
                free(errors);
                if (asprintf(&errors, "%s: listeners are opened at start; restart lbproxy to "
                             "change them", changed) < 0)
                        errors = NULL;
                log_event(LOG_ERR, LBPROXY_MESSAGE_CONFIG_CHANGE, NULL, NULL, NULL,
                          "Reload refused, configuration unchanged: %s", errors ? errors : "");
                if (ret_errors)
                        *ret_errors = TAKE_PTR(errors);
                count(&m->counts.reloads_failed);
                daemon_notify_ready("Reload refused: listeners changed, previous configuration "
                                    "kept");
                return -EINVAL;
        }
        /* With a store, the files and the prefix: the store's objects stay, then are read again. */
        if (m->store) {
                r = store_sync_reloaded(m->store, &config, &errors);
                if (r < 0) {
                        log_event(LOG_ERR, LBPROXY_MESSAGE_CONFIG_CHANGE, NULL, NULL, NULL,
                                  "Reload refused, configuration unchanged:\n%s",
                                  errors ? errors : strerror(-r));
                        if (ret_errors)
                                *ret_errors = TAKE_PTR(errors);
                        count(&m->counts.reloads_failed);
                        daemon_notify_ready("Reload refused: the files do not fit the store's "
                                            "upstreams and routes, previous configuration kept");
                        return r;
                }
        }
        Model *model;
        r = build_model(m, TAKE_PTR(config), true, &model, &errors);
        if (r < 0) {
                count(&m->counts.reloads_failed);
                daemon_notify_ready("Reload failed, previous configuration kept");
                log_event(LOG_ERR, LBPROXY_MESSAGE_CONFIG_CHANGE, NULL, NULL, NULL,
                          "Reload failed, configuration unchanged: %s",
                          errors ? errors : strerror(-r));
                if (ret_errors)
                        *ret_errors = TAKE_PTR(errors);
                return r;
        }
        /* The files are current again: runtime changes made over D-Bus are dropped, those not
         * yet written included, and the state goes (after a write under way, which the writer
         * finishes first). */
        if (m->n_pending > 0)
                log_notice("Reload: %zu configuration changes not yet saved are dropped",
                           m->n_pending);
        cancel_pending(m, -ESTALE, "dropped: a reload made the configuration files current");
        bool wait = false;
        /* With a store, state.yaml is the cache of its objects, which stay: kept (the next
         * change from the store writes it again). */
        if (m->writer && !m->store) {
                r = add_pending(m, NULL, done, userdata);
                if (r < 0)
                        log_warning_errno(r, "Cannot remove the runtime state in %s: %m",
                                          m->state_dir);
                else {
                        wait = true;
                        write_next(m);
                }
        }
        (void)manager_set_status_note(m, NULL);
        swap_model(m, model);
        count(&m->counts.reloads_ok);
        log_event(LOG_NOTICE, LBPROXY_MESSAGE_CONFIG_CHANGE, NULL, NULL, NULL,
                  "Configuration reloaded: %zu routes, %zu upstreams", model->n_routes,
                  model->n_upstreams);
        char status[STATUS_MAX];
        format_status(m, status, sizeof(status));
        daemon_notify_ready(status);
        return wait ? 0 : 1;
}

/* Active checks: the prober's thread starts with the first model that has any (once the
 * workers run), and takes up every model after. */
static void update_prober(Manager *m)
{
        if (m->prober) {
                health_prober_model_changed(m->prober);
                return;
        }
        if (m->n_workers == 0 || !health_prober_wanted(model_publisher_peek(&m->models)))
                return;
        HealthProberOptions o = { .models = &m->models,
                                  .node_health_changed = manager_node_health_changed,
                                  .userdata = m,
                                  .log_queue = (long)m->n_workers + 1 };
        int r = health_prober_start(&o, &m->prober);
        if (r < 0)
                log_error_errno(r, "Failed to start the active health checks: %m");
}

/* Stopped when every worker's thread has ended (each ends once it has no connection left). */
static void check_stopped(Manager *m)
{
        if (m->stopping && m->threads_running == 0)
                event_base_loopexit(m->base, NULL);
}

static void on_thread_exited(evutil_socket_t fd, short what, void *userdata)
{
        Manager *m = userdata;
        size_t running = 0;
        for (size_t i = 0; i < m->n_workers; i++)
                if (!atomic_load(&m->workers[i].exited))
                        running++;
        m->threads_running = running;
        check_stopped(m);
}

/* A worker thread ended its loop (called on that thread). */
static void on_worker_thread_exited(void *userdata)
{
        Manager *m = userdata;
        wake_signal(&m->thread_exited);
}

static void on_grace_timeout(evutil_socket_t fd, short what, void *userdata)
{
        Manager *m = userdata;
        log_warning("Shutdown grace period over: closing the connections still open");
        for (size_t i = 0; i < m->n_workers; i++)
                worker_force_exit(&m->workers[i]);
        event_base_loopexit(m->base, NULL);
}

void manager_stop(Manager *m)
{
        if (m->stopping)
                return;
        m->stopping = true;
        daemon_notify_stopping();
        log_info("Stopping: requests in flight may finish");

        for (size_t i = 0; i < m->n_workers; i++)
                worker_request_stop(&m->workers[i]);

        uint64_t usec = manager_model(m)->config->shutdown_grace_usec;
        struct timeval tv = { .tv_sec = (time_t)(usec / USEC_PER_SEC),
                              .tv_usec = (suseconds_t)(usec % USEC_PER_SEC) };
        m->grace_timer = evtimer_new(m->base, on_grace_timeout, m);
        if (m->grace_timer)
                evtimer_add(m->grace_timer, &tv);
        check_stopped(m);
}

static void on_signal(evutil_socket_t sig, short what, void *userdata)
{
        Manager *m = userdata;

        if (sig == SIGHUP) {
                (void)manager_reload(m, NULL, NULL, NULL);
                return;
        }
        if (m->stopping) {
                /* A second SIGTERM/SIGINT does not wait for the grace period. */
                on_grace_timeout(-1, 0, m);
                return;
        }
        manager_stop(m);
}

/* Ends every worker's loop at once (the grace period is over, or never began) and waits for
 * its thread. */
static void end_worker_threads(Manager *m)
{
        for (size_t i = 0; i < m->n_workers; i++) {
                worker_force_exit(&m->workers[i]);
                worker_join(&m->workers[i]);
        }
}

static struct event_base *new_base(void)
{
        struct event_config *ec = event_config_new();
        struct event_base *base = NULL;
        if (ec) {
                /* Coalesces the event_add/del of one loop iteration into fewer epoll_ctl calls. */
                event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
                base = event_base_new_with_config(ec);
                event_config_free(ec);
        }
        return base;
}

static size_t workers_wanted(const Config *c)
{
        if (c->workers > 0)
                return c->workers;
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        return n > 0 ? (size_t)(n > 64 ? 64 : n) : 1;
}

int manager_new(char **config_paths, const char *state_dir, Config *config, Manager **ret,
                char **ret_error)
{
        Manager *m = calloc(1, sizeof(*m));
        if (!m) {
                config_unref(config);
                return -ENOMEM;
        }
        m->config_paths = config_paths;
        m->release_wake.fd = -EBADF;
        m->health_wake.fd = -EBADF;
        conn_limit_init(&m->conn_limit);
        model_publisher_init(&m->models);
        pthread_mutex_init(&m->release_lock, NULL);
        /* libevent's locks (evthread) stay off: two mutex calls per event_add, event_del and
         * buffer operation cost about 10% more instructions a request. No thread touches
         * another's loop; they wake each other through eventfds (base/wake.h, worker_post). */
        m->thread_exited.fd = -EBADF;
        if (state_dir) {
                m->state_dir = strdup(state_dir);
                if (!m->state_dir) {
                        config_unref(config);
                        free(m);
                        return -ENOMEM;
                }
        }

        m->base = new_base();
        if (!m->base) {
                config_unref(config);
                free(m);
                return -ENOMEM;
        }

        if (m->state_dir && state_writer_new(m->state_dir, m->base, on_state_written, m,
                                             &m->writer) < 0) {
                config_unref(config);
                manager_free(m);
                if (ret_error)
                        *ret_error = strdup("cannot start the thread that writes the state");
                return -ENOMEM;
        }
        if (wake_init(&m->release_wake, m->base, on_release_event, m) < 0 ||
            wake_init(&m->thread_exited, m->base, on_thread_exited, m) < 0 ||
            manager_health_setup(m) < 0 ||
            registry_new(&m->registry) < 0) {
                config_unref(config);
                manager_free(m);
                return -ENOMEM;
        }
        model_set_release_handler(on_model_released, m);

        /* DNS settings are read once: the channel's servers stay as started. */
        ResolverOptions dns = { .servers = config->dns.servers,
                                .ttl_min_usec = config->dns.ttl_min_usec,
                                .ttl_max_usec = config->dns.ttl_max_usec };
        int r = resolver_new(m->base, &dns, &m->resolver);
        if (r < 0) {
                config_unref(config);
                manager_free(m);
                if (ret_error)
                        *ret_error = strdup("cannot set up the DNS resolver (dns.servers)");
                return r;
        }
        Model *model;
        r = build_model(m, config, true, &model, ret_error);
        if (r < 0) {
                manager_free(m);
                return r;
        }
        swap_model(m, model);
        *ret = m;
        return 0;
}

Manager *manager_free(Manager *m)
{
        if (!m)
                return NULL;
        /* First: their threads read the models, the registry and the resolver. */
        m->metrics = metrics_server_stop(m->metrics);
        m->prober = health_prober_stop(m->prober);
        free(m->listener_names);
        end_worker_threads(m);
        log_stop();
        for (size_t i = 0; i < m->n_workers; i++) {
                worker_done(&m->workers[i]);
                if (m->workers[i].base)
                        event_base_free(m->workers[i].base);
        }
        free(m->workers);
        /* A write under way finishes first; the changes waiting are answered before the front
         * end that waits for them goes. */
        m->writer = state_writer_free(m->writer);
        cancel_pending(m, -ECANCELED, "lbproxy is stopping");
        free(m->pending);
        if (m->frontend_data)
                m->frontend->free(m->frontend_data);
        listeners_free(m->listeners, m->n_listeners);
        struct event *events[] = { m->sig_term, m->sig_int, m->sig_hup, m->status_timer,
                                   m->grace_timer, m->watchdog };
        /* Models retired by worker threads, then the current one: before the resolver. */
        if (m->release_wake.ev)
                free_released(m);
        model_set_release_handler(NULL, NULL);
        model_publisher_done(&m->models);
        for (size_t i = 0; i < ELEMENTSOF(events); i++)
                if (events[i])
                        event_free(events[i]);
        manager_health_done(m);
        wake_done(&m->release_wake);
        wake_done(&m->thread_exited);
        resolver_free(m->resolver);
        /* After the models, whose objects held its entries. */
        registry_free(m->registry);
        if (m->base)
                event_base_free(m->base);
        pthread_mutex_destroy(&m->release_lock);
        conn_limit_done(&m->conn_limit);
        free(m->state_dir);
        free(m->status_note);
        free(m);
        return NULL;
}

static int start_workers(Manager *m)
{
        size_t n = workers_wanted(manager_model(m)->config);

        m->workers = calloc(n, sizeof(Worker));
        if (!m->workers)
                return -ENOMEM;
        m->shared = (WorkerShared){
                .models = &m->models,
                .registry = m->registry,
                .conn_limit = &m->conn_limit,
                .listeners = m->listeners,
                .n_listeners = m->n_proxy_listeners,
                .workers = m->workers,
                .n_workers = n,
                .hooks = { .node_health_changed = manager_node_health_changed,
                           .node_drained = manager_node_drained,
                           .thread_exited = on_worker_thread_exited,
                           .userdata = m },
        };
        /* Before any worker accepts: a closing connection wakes them through it. */
        conn_limit_set_workers(&m->conn_limit, m->workers, n);
        /* From here on entries leave the threads through a queue each: the control loop's
         * (this thread), each worker's (worker_thread: its id + 1), the health prober's (the
         * last, update_prober); without the log thread, logging stays synchronous. */
        (void)log_start(n + 2);
        /* Every worker runs on a thread of its own, one worker too, so a change or a reload
         * built on this loop holds up no request. */
        for (size_t i = 0; i < n; i++) {
                struct event_base *base = new_base();
                if (!base)
                        return -ENOMEM;
                m->n_workers++;
                int r = worker_init(&m->workers[i], (unsigned)i, &m->shared, base);
                if (r < 0) {
                        event_base_free(base);
                        m->n_workers--;
                        return r;
                }
        }
        return 0;
}

/* The workers' threads: once everything they read is in place and the listeners are said to
 * be open (a connection waiting in a socket is taken at once, and its access entry should not
 * come before "Listening on"). */
static int start_worker_threads(Manager *m)
{
        for (size_t i = 0; i < m->n_workers; i++) {
                int r = worker_start_thread(&m->workers[i]);
                if (r < 0)
                        return log_error_errno(r, "Failed to start worker %zu: %m", i);
                m->threads_running++;
        }
        return 0;
}

/* The limit of open files, read once (the workers and listeners count). The soft limit is raised
 * to the hard one first, as systemd advises for programs that use many descriptors and never
 * select(2) (systemd services start with a soft limit of 1024 unless LimitNOFILE= says more), and
 * as HAProxy does: a proxy started by hand then gets the connections its hard limit allows. */
static uint64_t nofile_limit(void)
{
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return UINT64_MAX;
        if (rl.rlim_cur < rl.rlim_max) {
                rlim_t soft = rl.rlim_cur;
                rl.rlim_cur = rl.rlim_max;
                if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                        rl.rlim_cur = soft;
        }
        if (rl.rlim_cur == RLIM_INFINITY)
                return UINT64_MAX;
        return (uint64_t)rl.rlim_cur;
}

/* The sockets of `c`'s listeners, a socket per worker for those bound here. */
static int open_listeners(const Config *c, Listener **ret, size_t *ret_n)
{
        _cleanup_free_ ListenerSpec *specs = calloc(c->n_listeners ? c->n_listeners : 1,
                                                    sizeof(ListenerSpec));
        if (!specs)
                return -ENOMEM;
        for (size_t i = 0; i < c->n_listeners; i++) {
                const ConfigListener *cl = &c->listeners[i];
                specs[i] = (ListenerSpec){ .name = cl->name,
                                           .listen = cl->listen,
                                           .address = (const struct sockaddr *)&cl->address,
                                           .address_len = cl->address_len,
                                           .protocol = cl->protocol,
                                           .single = cl->protocol == LISTENER_METRICS };
        }
        return listeners_open(specs, c->n_listeners, workers_wanted(c), ret, ret_n);
}

/* Moves the metrics listeners after the others, keeping the order of both: the workers accept
 * on the first ones, the metrics thread on the rest. Returns how many the workers get. */
static size_t metrics_listeners_last(Listener *l, size_t n)
{
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
                if (l[i].protocol != LISTENER_METRICS) {
                        Listener t = l[i];
                        memmove(l + k + 1, l + k, (i - k) * sizeof(Listener));
                        l[k++] = t;
                }
        return k;
}

/* The histograms' buckets, fixed at start (a worker's cells are sized by them). */
static void set_buckets(Registry *r, const ConfigMetrics *cm)
{
        StatsBuckets b;
        if (cm->n_buckets == 0)
                stats_buckets_default(&b);
        else {
                static_assert(CONFIG_METRICS_BUCKETS_MAX <= STATS_BUCKETS_MAX, "buckets fit");
                memcpy(b.bound_usec, cm->buckets_usec, cm->n_buckets * sizeof(uint64_t));
                b.n = cm->n_buckets;
        }
        registry_set_buckets(r, &b);
}

static int start_metrics(Manager *m)
{
        const Config *c = manager_model(m)->config;
        if (m->n_proxy_listeners == m->n_listeners)
                return 0;
        m->listener_names = calloc(m->n_proxy_listeners + 1, sizeof(char *));
        if (!m->listener_names)
                return -ENOMEM;
        for (size_t i = 0; i < m->n_proxy_listeners; i++)
                m->listener_names[i] = m->listeners[i].name;
        MetricsServerOptions o = { .models = &m->models,
                                   .registry = m->registry,
                                   .resolver = m->resolver,
                                   .control = &m->counts,
                                   .listeners = (const char *const *)m->listener_names,
                                   .n_listeners = m->n_proxy_listeners,
                                   .node_labels = c->metrics.node_labels };
        return metrics_server_start(&o, m->listeners + m->n_proxy_listeners,
                                    m->n_listeners - m->n_proxy_listeners, &m->metrics);
}

int manager_start(Manager *m, const ControlFrontend *frontend)
{
        const Config *c = manager_model(m)->config;
        int r = open_listeners(c, &m->listeners, &m->n_listeners);
        if (r < 0)
                return r;
        m->n_proxy_listeners = metrics_listeners_last(m->listeners, m->n_listeners);
        m->nofile = nofile_limit();
        m->default_max_connections = conn_limit_default(m->nofile,
                                                        listeners_count_fds(m->listeners,
                                                                            m->n_listeners),
                                                        workers_wanted(c));
        /* Before the threads: workers report node health to the front end, which is never
         * replaced once they run. Without the bus lbproxy still proxies; the control API comes
         * when the bus does (its messages are processed once the loop runs). */
        m->frontend = frontend;
        if (frontend) {
                r = frontend->start(m, m->base, &m->frontend_data);
                if (r < 0)
                        return r;
        }
        set_buckets(m->registry, &c->metrics);
        r = start_workers(m);
        if (r < 0)
                return r;
        update_prober(m);
        r = start_metrics(m);
        if (r < 0)
                return log_error_errno(r, "Failed to start the metrics endpoint: %m");
        apply_max_connections(m);

        m->sig_term = evsignal_new(m->base, SIGTERM, on_signal, m);
        m->sig_int = evsignal_new(m->base, SIGINT, on_signal, m);
        m->sig_hup = evsignal_new(m->base, SIGHUP, on_signal, m);
        if (!m->sig_term || !m->sig_int || !m->sig_hup)
                return -ENOMEM;
        evsignal_add(m->sig_term, NULL);
        evsignal_add(m->sig_int, NULL);
        evsignal_add(m->sig_hup, NULL);
        signal(SIGPIPE, SIG_IGN);

        if (getenv("NOTIFY_SOCKET")) {
                m->status_timer = event_new(m->base, -1, EV_PERSIST, on_status_timer, m);
                struct timeval tv = { .tv_sec = STATUS_INTERVAL_USEC / USEC_PER_SEC };
                if (m->status_timer)
                        event_add(m->status_timer, &tv);
        }
        m->watchdog = daemon_watchdog_start(m->base);

        char status[STATUS_MAX];
        format_status(m, status, sizeof(status));
        for (size_t i = 0; i < m->n_listeners; i++)
                log_info("Listening on '%s'%s", m->listeners[i].name,
                         m->listeners[i].activated ? " (socket activation)" : "");
        r = start_worker_threads(m);
        if (r < 0)
                return r;
        /* A worker that wakes on this thread's core soon preempts the work of a change
         * (base/thread-sched.h). Not fatal when refused. */
        (void)thread_lower_priority(THREAD_CONTROL_NICE);
        daemon_notify_ready(status);
        return 0;
}

int manager_run(Manager *m)
{
        event_base_dispatch(m->base);
        end_worker_threads(m);
        /* The prober logs through a queue of its own: it ends before the queues do. */
        m->prober = health_prober_stop(m->prober);
        /* What the workers logged is written before the last word. */
        log_stop();
        char spread[STATUS_MAX];
        format_spread(m, spread, sizeof(spread));
        log_info("Stopped after %llu requests; %s", (unsigned long long)total_requests(m), spread);
        return m->exit_code;
}
