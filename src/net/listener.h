/* SPDX-License-Identifier: MIT */
#pragma once

/* Listening sockets: taken from socket activation by FileDescriptorName=, or bound here when
 * lbproxy is started by hand. Opened once, at start. Accepting on them is the proxy's
 * (proxy/accept.h). */

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* What a listening socket is opened for. */
typedef struct ListenerSpec {
        const char *name;   /* matched against FileDescriptorName= */
        const char *listen; /* the address as written, for messages; NULL when only activated */
        /* Bound when no activated socket has the name; address_len 0: there is none. An IPv6
         * address is bound dual-stack (IPV6_V6ONLY off), so "[::]:80" serves IPv4 too. */
        const struct sockaddr *address;
        socklen_t address_len;
        int protocol; /* what it speaks, in the caller's words: carried to the Listener, not read */
} ListenerSpec;

typedef struct Listener {
        char *name;
        int fd;
        bool activated; /* came from systemd: never closed or re-bound by us on reload */
        bool nodelay;   /* TCP_NODELAY set here: accepted sockets inherit it (Linux) */
        int protocol;   /* its spec's */
} Listener;

/* Opens a socket for every spec: activated fds (from sd_listen_fds_with_names) are matched by
 * name (every fd of that name is the spec's), the rest are bound to their address. An activated
 * fd that matches no spec is logged and closed. On failure the message names the listener and
 * address. */
int listeners_open(const ListenerSpec *specs, size_t n_specs, Listener **ret, size_t *ret_n);
void listeners_free(Listener *l, size_t n);
