/* SPDX-License-Identifier: MIT */
/* The state writer thread. The thread takes the request under the lock, writes without it, and
 * publishes the result under it, then wakes the owner's loop (base/wake.h: libevent is told to
 * lock only with more than one worker, and an eventfd needs no lock of libevent's). */

#include <assert.h>

#include <pthread.h>

#include "base/log.h"
#include "base/thread-sched.h"
#include "base/wake.h"
#include "config/state.h"
#include "control/state-writer.h"

typedef struct Request {
        Config *config; /* NULL: remove the state */
        uint64_t generation;
        bool set;
} Request;

struct StateWriter {
        StateFile *file; /* the thread's alone once it runs */
        pthread_t thread;
        bool thread_started;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        Request waiting;          /* under lock */
        bool stop;                /* under lock */
        uint64_t done_generation; /* under lock: the last one finished, and how */
        int done_result;
        bool done_set;
        bool busy; /* the owner's loop only: a request is out, not yet reported */
        Wake wake; /* the owner's loop: a request finished */
        StateWriterDone done;
        void *userdata;
};

static void *writer_thread(void *userdata)
{
        StateWriter *w = userdata;

        /* A state of 10,000 routes takes a millisecond or more to write, which requests on
         * the same core should wait for as little as can be (base/thread-sched.h). Not fatal
         * when refused. */
        (void)thread_lower_priority(THREAD_STATE_NICE);

        for (;;) {
                Request req;
                int r;

                pthread_mutex_lock(&w->lock);
                while (!w->waiting.set && !w->stop)
                        pthread_cond_wait(&w->cond, &w->lock);
                if (w->stop) {
                        pthread_mutex_unlock(&w->lock);
                        return NULL;
                }
                req = w->waiting;
                w->waiting = (Request){};
                pthread_mutex_unlock(&w->lock);

                r = req.config ? state_file_save(w->file, req.config) : state_file_remove(w->file);
                config_unref(req.config);

                pthread_mutex_lock(&w->lock);
                w->done_generation = req.generation;
                w->done_result = r;
                w->done_set = true;
                pthread_mutex_unlock(&w->lock);
                wake_signal(&w->wake);
        }
}

static void on_wake(evutil_socket_t fd, short what, void *userdata)
{
        StateWriter *w = userdata;
        uint64_t generation;
        bool set;
        int r;

        pthread_mutex_lock(&w->lock);
        set = w->done_set;
        generation = w->done_generation;
        r = w->done_result;
        w->done_set = false;
        pthread_mutex_unlock(&w->lock);
        if (!set)
                return;
        w->busy = false;
        w->done(w->userdata, generation, r);
}

int state_writer_new(const char *dir, struct event_base *base, StateWriterDone done, void *userdata,
                     StateWriter **ret)
{
        StateWriter *w = calloc(1, sizeof(*w));
        int r;

        if (!w)
                return -ENOMEM;
        w->wake.fd = -EBADF;
        w->done = done;
        w->userdata = userdata;
        pthread_mutex_init(&w->lock, NULL);
        pthread_cond_init(&w->cond, NULL);
        r = state_file_new(dir, &w->file);
        if (r >= 0)
                r = wake_init(&w->wake, base, on_wake, w);
        if (r >= 0) {
                r = -pthread_create(&w->thread, NULL, writer_thread, w);
                w->thread_started = r >= 0;
                if (w->thread_started)
                        (void)pthread_setname_np(w->thread, "lbproxy-state");
        }
        if (r < 0) {
                state_writer_free(w);
                return r;
        }
        *ret = w;
        return 0;
}

StateWriter *state_writer_free(StateWriter *w)
{
        if (!w)
                return NULL;
        if (w->thread_started) {
                pthread_mutex_lock(&w->lock);
                w->stop = true;
                pthread_cond_signal(&w->cond);
                pthread_mutex_unlock(&w->lock);
                pthread_join(w->thread, NULL);
        }
        config_unref(w->waiting.config);
        wake_done(&w->wake);
        state_file_free(w->file);
        pthread_cond_destroy(&w->cond);
        pthread_mutex_destroy(&w->lock);
        free(w);
        return NULL;
}

void state_writer_request(StateWriter *w, Config *c, uint64_t generation)
{
        assert(!w->busy);
        w->busy = true;
        pthread_mutex_lock(&w->lock);
        w->waiting = (Request){.config = config_ref(c), .generation = generation, .set = true};
        pthread_cond_signal(&w->cond);
        pthread_mutex_unlock(&w->lock);
}

bool state_writer_busy(const StateWriter *w)
{
        return w->busy;
}
