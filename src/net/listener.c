/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>

#include "base/log.h"
#include "net/listener.h"

#define LISTEN_BACKLOG 4096

static int bind_address(const ListenerSpec *spec)
{
        const struct sockaddr *sa = spec->address;
        _cleanup_close_ int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        int one = 1;
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (sa->sa_family == AF_INET6) {
                /* "[::]:80" (and "*:80") serve IPv4 too, as nginx's ipv6only=off. */
                int zero = 0;
                (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
        }
        if (bind(fd, sa, spec->address_len) < 0 || listen(fd, LISTEN_BACKLOG) < 0)
                return -errno;
        return TAKE_FD(fd);
}

static int make_nonblocking(int fd)
{
        int flags = fcntl(fd, F_GETFL);
        if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
                return -errno;
        return 0;
}

void listeners_free(Listener *l, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                safe_close(l[i].fd);
                free(l[i].name);
        }
        free(l);
}

static int listener_add(Listener **l, size_t *n, const ListenerSpec *spec, int fd,
                        bool activated)
{
        const char *name = spec->name;
        Listener *nl = realloc(*l, (*n + 1) * sizeof(Listener));
        if (!nl)
                return -ENOMEM;
        *l = nl;
        /* Heads and small bodies go out as one write each, which Nagle would only delay. Set
         * once on the listening socket, it saves a system call per connection. */
        int one = 1;
        bool nodelay = setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0;
        nl[*n] = (Listener){ .name = strdup(name), .fd = fd, .activated = activated,
                             .protocol = spec->protocol, .nodelay = nodelay };
        if (!nl[*n].name)
                return -ENOMEM;
        (*n)++;
        return 0;
}

int listeners_open(const ListenerSpec *specs, size_t n_specs, Listener **ret, size_t *ret_n)
{
        char **names = NULL;
        int n_fds = sd_listen_fds_with_names(true, &names);
        if (n_fds < 0)
                return log_error_errno(n_fds, "Failed to take activated sockets: %m");

        Listener *l = NULL;
        size_t n = 0;
        bool *used = calloc(n_fds > 0 ? (size_t)n_fds : 1, sizeof(bool));
        int r = 0;
        if (!used) {
                r = -ENOMEM;
                goto finish;
        }
        for (size_t i = 0; i < n_specs; i++) {
                const ListenerSpec *spec = &specs[i];
                bool found = false;

                /* Every socket of that name is this listener's: a socket unit with several
                 * ListenStream= lines passes them all under one FileDescriptorName=. */
                for (int k = 0; k < n_fds; k++) {
                        if (used[k] || !names || !names[k] || !streq(names[k], spec->name))
                                continue;
                        used[k] = true;
                        found = true;
                        int fd = SD_LISTEN_FDS_START + k;
                        r = make_nonblocking(fd);
                        if (r >= 0)
                                r = listener_add(&l, &n, spec, fd, true);
                        if (r < 0)
                                goto finish;
                }
                if (found)
                        continue;
                if (spec->address_len == 0) {
                        r = log_error_errno(EADDRNOTAVAIL,
                                            "Listener '%s' has no 'listen' address and no socket "
                                            "named '%s' was passed by systemd", spec->name, spec->name);
                        goto finish;
                }
                int fd = bind_address(spec);
                if (fd < 0) {
                        r = log_error_errno(fd, "Failed to listen on %s (listener '%s'): %m",
                                            spec->listen, spec->name);
                        goto finish;
                }
                r = listener_add(&l, &n, spec, fd, false);
                if (r < 0) {
                        safe_close(fd);
                        goto finish;
                }
        }
        for (int k = 0; k < n_fds; k++) {
                if (used[k])
                        continue;
                log_warning("Socket %d named '%s' was passed by systemd but no listener has that "
                            "name: closing it", SD_LISTEN_FDS_START + k,
                            names && names[k] ? names[k] : "?");
                safe_close(SD_LISTEN_FDS_START + k);
        }

        *ret = TAKE_PTR(l);
        *ret_n = n;
        n = 0;
finish:
        if (l)
                listeners_free(l, n);
        free(used);
        strv_free(names);
        return r;
}
