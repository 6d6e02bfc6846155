/* SPDX-License-Identifier: MIT */
#include <assert.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>

#include "base/log.h"
#include "net/listener.h"

#define LISTEN_BACKLOG 4096

static int bind_address(const struct sockaddr *sa, socklen_t len, bool reuseport, bool listening)
{
        _cleanup_close_ int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        int one = 1;
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
                return -errno;
        if (sa->sa_family == AF_INET6) {
                /* "[::]:80" (and "*:80") serve IPv4 too, as nginx's ipv6only=off. */
                int zero = 0;
                (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
        }
        if (bind(fd, sa, len) < 0 || (listening && listen(fd, LISTEN_BACKLOG) < 0))
                return -errno;
        return TAKE_FD(fd);
}

static uint16_t address_port(const struct sockaddr *sa)
{
        if (sa->sa_family == AF_INET)
                return ntohs(((const struct sockaddr_in *)sa)->sin_port);
        if (sa->sa_family == AF_INET6)
                return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
        return 0;
}

/* `n` sockets listening on `spec`'s address: one without SO_REUSEPORT when n is 1, else a
 * SO_REUSEPORT group, among which the kernel spreads connections by a hash of their addresses.
 * Fills `fds` (closed again on failure). */
static int bind_sockets(const ListenerSpec *spec, size_t n, int *fds)
{
        struct sockaddr_storage sa;
        socklen_t len = spec->address_len;
        int r = 0;

        assert(n > 0 && len <= sizeof(sa));
        memcpy(&sa, spec->address, len);
        if (n > 1 && address_port(spec->address) != 0) {
                /* Any process of the same user may join a SO_REUSEPORT group, a second lbproxy
                 * started by mistake too, and would silently take a share of the connections.
                 * A socket bound without the option first fails as bind(2) always did when the
                 * address is taken (the group is bound a moment later: a race with another
                 * start is still possible, and as harmless as before). */
                int probe = bind_address(spec->address, len, false, false);
                if (probe < 0)
                        return probe;
                safe_close(probe);
        }
        for (size_t i = 0; i < n; i++)
                fds[i] = -EBADF;
        for (size_t i = 0; i < n && r >= 0; i++) {
                r = fds[i] = bind_address((struct sockaddr *)&sa, len, n > 1, true);
                /* Port 0: the first socket's port is the group's. */
                if (r >= 0 && i == 0 && n > 1 && address_port(spec->address) == 0 &&
                    getsockname(fds[0], (struct sockaddr *)&sa, &len) < 0)
                        r = -errno;
        }
        if (r < 0)
                for (size_t i = 0; i < n; i++)
                        fds[i] = safe_close(fds[i]);
        return r < 0 ? r : 0;
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
                for (size_t k = 0; k < l[i].n_fds; k++)
                        safe_close(l[i].fds[k]);
                free(l[i].fds);
                free(l[i].name);
        }
        free(l);
}

size_t listeners_count_fds(const Listener *l, size_t n)
{
        size_t fds = 0;
        for (size_t i = 0; i < n; i++)
                fds += l[i].n_fds;
        return fds;
}

/* The port a socket is bound to, in decimal, once per listener (every socket of one is bound
 * alike): what requests say as X-Forwarded-Port. "" for a socket that is not inet. */
static void local_port(int fd, char out[static 6])
{
        struct sockaddr_storage sa;
        socklen_t len = sizeof(sa);

        out[0] = '\0';
        if (getsockname(fd, (struct sockaddr *)&sa, &len) < 0 ||
            (sa.ss_family != AF_INET && sa.ss_family != AF_INET6))
                return;
        snprintf(out, 6, "%u", (unsigned)address_port((struct sockaddr *)&sa));
}

/* Adds a Listener for `spec` with the sockets `fds` (n of them), which it owns from here on,
 * even on failure. */
static int listener_add(Listener **l, size_t *n, const ListenerSpec *spec, const int *fds,
                        size_t n_fds, bool activated)
{
        int *copy = malloc(n_fds * sizeof(int));
        Listener *nl = copy ? realloc(*l, (*n + 1) * sizeof(Listener)) : NULL;
        char *name = nl ? strdup(spec->name) : NULL;
        if (!name) {
                for (size_t k = 0; k < n_fds; k++)
                        safe_close(fds[k]);
                free(copy);
                if (nl)
                        *l = nl;
                return -ENOMEM;
        }
        *l = nl;
        /* Heads and small bodies go out as one write each, which Nagle would only delay. Set
         * once on the listening socket, it saves a system call per connection. */
        int one = 1;
        bool nodelay = true;
        for (size_t k = 0; k < n_fds; k++) {
                copy[k] = fds[k];
                nodelay = setsockopt(fds[k], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0 &&
                          nodelay;
        }
        nl[(*n)++] = (Listener){ .name = name, .fds = copy, .n_fds = n_fds,
                                 .activated = activated, .protocol = spec->protocol,
                                 .nodelay = nodelay };
        local_port(fds[0], nl[*n - 1].port);
        return 0;
}

int listeners_open(const ListenerSpec *specs, size_t n_specs, size_t n_workers, Listener **ret,
                   size_t *ret_n)
{
        assert(n_workers > 0);
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
                                r = listener_add(&l, &n, spec, &fd, 1, true);
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
                size_t n_sockets = spec->single ? 1 : n_workers;
                _cleanup_free_ int *fds = malloc(n_sockets * sizeof(int));
                if (!fds) {
                        r = -ENOMEM;
                        goto finish;
                }
                r = bind_sockets(spec, n_sockets, fds);
                if (r < 0) {
                        r = log_error_errno(r, "Failed to listen on %s (listener '%s'): %m",
                                            spec->listen, spec->name);
                        goto finish;
                }
                r = listener_add(&l, &n, spec, fds, n_sockets, false);
                if (r < 0)
                        goto finish;
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
