/* SPDX-License-Identifier: MIT */
#include "base/hashmap.h"
#include "proxy/conn-upstream.h"
#include "proxy/pool.h"
#include "proxy/worker.h"

typedef struct Bucket {
        UpstreamConn *head; /* most recently returned first: the warmest connection is reused */
        unsigned n;
} Bucket;

struct Pool {
        Worker *worker;
        Hashmap *buckets;
        size_t n_idle;
};

static void bucket_unlink(Bucket *b, UpstreamConn *c)
{
        if (c->pool_prev)
                c->pool_prev->pool_next = c->pool_next;
        else
                b->head = c->pool_next;
        if (c->pool_next)
                c->pool_next->pool_prev = c->pool_prev;
        c->pool_prev = c->pool_next = NULL;
        b->n--;
}

static void pool_drop(Pool *p, UpstreamConn *c)
{
        Bucket *b = hashmap_get_hashed(p->buckets, c->pool_key, c->pool_key_len, c->pool_key_hash);
        if (b)
                bucket_unlink(b, c);
        p->n_idle--;
        upstream_conn_free(c);
}

/* An idle connection has nothing to say: bytes, end of input or an error all retire it. */
static void idle_on_read(Stream *s, void *userdata)
{
        UpstreamConn *c = userdata;
        pool_drop(c->worker->pool, c);
}

static void idle_on_error(Stream *s, int error, void *userdata)
{
        UpstreamConn *c = userdata;
        pool_drop(c->worker->pool, c);
}

static void idle_on_drain(Stream *s, void *userdata)
{
}

static void idle_on_connect(Stream *s, int error, void *userdata)
{
}

static const StreamHandler idle_handler = {
        .on_read = idle_on_read,
        .on_drain = idle_on_drain,
        .on_connect = idle_on_connect,
        .on_error = idle_on_error,
};

static void idle_on_timeout(evutil_socket_t fd, short what, void *userdata)
{
        UpstreamConn *c = userdata;
        pool_drop(c->worker->pool, c);
}

Pool *pool_new(Worker *w)
{
        Pool *p = calloc(1, sizeof(*p));
        if (!p)
                return NULL;
        p->worker = w;
        p->buckets = hashmap_new();
        if (!p->buckets)
                return free(p), NULL;
        return p;
}

static int free_bucket(const char *key, size_t key_len, void *value, void *userdata)
{
        Bucket *b = value;
        while (b->head) {
                UpstreamConn *c = b->head;
                bucket_unlink(b, c);
                upstream_conn_free(c);
        }
        free(b);
        return 0;
}

Pool *pool_free(Pool *p)
{
        if (!p)
                return NULL;
        hashmap_foreach(p->buckets, free_bucket, NULL);
        hashmap_free(p->buckets);
        free(p);
        return NULL;
}

UpstreamConn *pool_take(Pool *p, const char *key, size_t key_len, uint64_t key_hash)
{
        Bucket *b = hashmap_get_hashed(p->buckets, key, key_len, key_hash);
        if (!b || !b->head)
                return NULL;
        UpstreamConn *c = b->head;
        bucket_unlink(b, c);
        p->n_idle--;
        event_del(&c->timer);
        /* Still reading: the taker reads the response on it at once, and a stop and start in
         * one turn of the loop would cost libevent an EPOLL_CTL_MOD all the same. */
        c->reused = true;
        return c;
}

void pool_put(Pool *p, UpstreamConn *c, unsigned max, uint64_t idle_usec)
{
        Bucket *b = hashmap_get_hashed(p->buckets, c->pool_key, c->pool_key_len, c->pool_key_hash);

        if (p->worker->stopping || max == 0 || (b && b->n >= max) ||
            evbuffer_get_length(c->stream.in) > 0 || c->stream.eof ||
            stream_has_pending_in(&c->stream)) {
                upstream_conn_free(c);
                return;
        }
        if (!b) {
                b = calloc(1, sizeof(*b));
                if (!b || hashmap_put(p->buckets, c->pool_key, c->pool_key_len, b) < 0) {
                        free(b);
                        upstream_conn_free(c);
                        return;
                }
        }

        c->pool_prev = NULL;
        c->pool_next = b->head;
        if (b->head)
                b->head->pool_prev = c;
        b->head = c;
        b->n++;
        p->n_idle++;

        stream_set_handler(&c->stream, &idle_handler, c);
        event_del(&c->timer);
        event_assign(&c->timer, p->worker->base, -1, 0, idle_on_timeout, c);
        struct timeval tv = { .tv_sec = (time_t)(idle_usec / USEC_PER_SEC),
                              .tv_usec = (suseconds_t)(idle_usec % USEC_PER_SEC) };
        event_add(&c->timer, &tv);
        stream_read_start(&c->stream);
}

size_t pool_size(const Pool *p)
{
        return p->n_idle;
}
