/* SPDX-License-Identifier: MIT */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "proxy/handoff.h"

void handoff_init(Handoff *h)
{
        *h = (Handoff){ 0 };
        pthread_mutex_init(&h->lock, NULL);
}

size_t handoff_done(Handoff *h)
{
        size_t n = h->n;
        for (size_t i = 0; i < h->n; i++)
                safe_close(h->items[i].fd);
        free(h->items);
        h->items = NULL;
        h->n = h->allocated = 0;
        pthread_mutex_destroy(&h->lock);
        return n;
}

int handoff_push(Handoff *h, int fd, const struct sockaddr *peer, socklen_t peer_len,
                 const Listener *l)
{
        int r;
        assert(peer_len <= sizeof(struct sockaddr_storage));
        pthread_mutex_lock(&h->lock);
        if (h->n == h->allocated) {
                /* Grows to the largest burst and stays: no allocation per connection. */
                size_t a = h->allocated ? h->allocated * 2 : 64;
                HandedConn *items = realloc(h->items, a * sizeof(HandedConn));
                if (!items) {
                        pthread_mutex_unlock(&h->lock);
                        return -ENOMEM;
                }
                h->items = items;
                h->allocated = a;
        }
        HandedConn *c = &h->items[h->n];
        c->fd = fd;
        c->listener = l;
        memset(&c->peer, 0, sizeof(c->peer));
        memcpy(&c->peer, peer, peer_len);
        r = h->n++ == 0;
        pthread_mutex_unlock(&h->lock);
        return r;
}

size_t handoff_take(Handoff *h, HandedConn *ret, size_t max, bool *ret_more)
{
        pthread_mutex_lock(&h->lock);
        size_t n = h->n < max ? h->n : max;
        /* Not with nothing waiting: items may not be allocated yet (NULL). */
        if (n > 0) {
                memcpy(ret, h->items, n * sizeof(HandedConn));
                memmove(h->items, h->items + n, (h->n - n) * sizeof(HandedConn));
                h->n -= n;
        }
        *ret_more = h->n > 0;
        pthread_mutex_unlock(&h->lock);
        return n;
}
