/* SPDX-License-Identifier: MIT */
#include <event2/event_struct.h>
#include <pthread.h>

#include "base/util.h"
#include "net/resolver-event.h"

/* One libevent event per socket c-ares opens, keyed by fd. */
typedef struct DnsSocket {
        struct event ev;
        DnsChannel *channel;
        int fd;
        struct DnsSocket *next;
} DnsSocket;

struct DnsChannel {
        ares_channel channel;
        struct event_base *base;
        struct event *timer;
        DnsSocket *sockets;
};

static void rearm_timer(DnsChannel *c)
{
        struct timeval tv, *t = ares_timeout(c->channel, NULL, &tv);
        if (t)
                evtimer_add(c->timer, t);
        else
                evtimer_del(c->timer);
}

static void on_socket_event(evutil_socket_t fd, short what, void *userdata)
{
        DnsSocket *s = userdata;
        DnsChannel *c = s->channel;

        /* `s` may be freed inside ares_process_fd (its socket closed): use only `c` after. */
        ares_process_fd(c->channel, what & EV_READ ? fd : ARES_SOCKET_BAD,
                        what & EV_WRITE ? fd : ARES_SOCKET_BAD);
        rearm_timer(c);
}

static void on_timer(evutil_socket_t fd, short what, void *userdata)
{
        DnsChannel *c = userdata;
        ares_process_fd(c->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
        rearm_timer(c);
}

static DnsSocket **find_socket(DnsChannel *c, int fd)
{
        DnsSocket **p = &c->sockets;
        while (*p && (*p)->fd != fd)
                p = &(*p)->next;
        return p;
}

/* c-ares says which sockets it wants watched; (0, 0) means it closed the socket. */
static void on_sock_state(void *userdata, ares_socket_t fd, int readable, int writable)
{
        DnsChannel *c = userdata;
        DnsSocket **p = find_socket(c, fd);
        DnsSocket *s = *p;

        if (s) {
                event_del(&s->ev);
                if (!readable && !writable) {
                        *p = s->next;
                        free(s);
                        return;
                }
        } else {
                if (!readable && !writable)
                        return;
                s = calloc(1, sizeof(*s));
                if (!s)
                        return; /* the query times out instead */
                s->channel = c;
                s->fd = fd;
                s->next = c->sockets;
                c->sockets = s;
        }
        short what = (short)(EV_PERSIST | (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0));
        event_assign(&s->ev, c->base, fd, what, on_socket_event, s);
        event_add(&s->ev, NULL);
}

static char *servers_csv(char *const *servers)
{
        size_t len = 1;
        for (char *const *s = servers; *s; s++)
                len += strlen(*s) + 1;
        char *csv = calloc(1, len);
        if (!csv)
                return NULL;
        for (char *const *s = servers; *s; s++) {
                if (s != servers)
                        strcat(csv, ",");
                strcat(csv, *s);
        }
        return csv;
}

static void library_init(void)
{
        (void)ares_library_init(ARES_LIB_INIT_ALL);
}

int dns_channel_new(struct event_base *base, char *const *servers, DnsChannel **ret)
{
        static pthread_once_t once = PTHREAD_ONCE_INIT;
        struct ares_options options = {};
        int r;

        (void)pthread_once(&once, library_init);

        DnsChannel *c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->base = base;
        c->timer = evtimer_new(base, on_timer, c);
        if (!c->timer)
                return free(c), -ENOMEM;

        options.sock_state_cb = on_sock_state;
        options.sock_state_cb_data = c;
        /* Upstream names are fully qualified: no search domains tried first. */
        options.flags = ARES_FLAG_NOSEARCH;
        options.timeout = 2000; /* ms per try */
        options.tries = 2;
        r = ares_init_options(&c->channel, &options,
                              ARES_OPT_SOCK_STATE_CB | ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS |
                                      ARES_OPT_TRIES);
        if (r != ARES_SUCCESS) {
                event_free(c->timer);
                free(c);
                return dns_status_to_errno(r);
        }
        if (servers && servers[0]) {
                _cleanup_free_ char *csv = servers_csv(servers);
                r = csv ? ares_set_servers_ports_csv(c->channel, csv) : ARES_ENOMEM;
                if (r != ARES_SUCCESS) {
                        dns_channel_free(c);
                        return -EINVAL;
                }
        }
        *ret = c;
        return 0;
}

DnsChannel *dns_channel_free(DnsChannel *c)
{
        if (!c)
                return NULL;
        ares_destroy(c->channel);
        while (c->sockets) {
                DnsSocket *s = c->sockets;
                c->sockets = s->next;
                event_del(&s->ev);
                free(s);
        }
        event_free(c->timer);
        free(c);
        return NULL;
}

void dns_channel_getaddrinfo(DnsChannel *c, const char *host, ares_addrinfo_callback callback,
                             void *userdata)
{
        struct ares_addrinfo_hints hints = {
                .ai_family = AF_UNSPEC,
                .ai_socktype = SOCK_STREAM,
                /* Without NOSORT, c-ares opens a UDP socket per address to sort them. */
                .ai_flags = ARES_AI_NOSORT,
        };
        ares_getaddrinfo(c->channel, host, NULL, &hints, callback, userdata);
        rearm_timer(c);
}

int dns_status_to_errno(int status)
{
        switch (status) {
        case ARES_SUCCESS:
                return 0;
        case ARES_ENOTFOUND:
        case ARES_ENODATA:
        case ARES_ENONAME:
                return -ENXIO;
        case ARES_ETIMEOUT:
                return -ETIMEDOUT;
        case ARES_ENOMEM:
                return -ENOMEM;
        case ARES_ECANCELLED:
        case ARES_EDESTRUCTION:
                return -ECANCELED;
        case ARES_ECONNREFUSED:
                return -ECONNREFUSED;
        default:
                return -EHOSTUNREACH;
        }
}
