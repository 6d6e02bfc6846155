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
        bool single;  /* served by one thread (not the workers): one socket when bound */
} ListenerSpec;

typedef struct Listener {
        char *name;
        /* Bound here for more than one worker: a socket per worker, each bound to the address
         * with SO_REUSEPORT, so that the kernel gives each connection to one worker's socket
         * and wakes only that worker. Otherwise (one worker, or activated) one socket. */
        int *fds;
        size_t n_fds;
        bool activated; /* came from systemd: never closed or re-bound by us on reload */
        bool nodelay;   /* TCP_NODELAY set here: accepted sockets inherit it (Linux) */
        int protocol;   /* its spec's */
        char port[6];   /* the local port in decimal (X-Forwarded-Port); "" when not inet */
} Listener;

/* Opens the sockets for every spec: activated fds (from sd_listen_fds_with_names) are matched by
 * name (every fd of that name is a Listener of the spec), the rest are bound to their address,
 * `n_workers` sockets each. An activated fd that matches no spec is logged and closed. On
 * failure the message names the listener and address. */
int listeners_open(const ListenerSpec *specs, size_t n_specs, size_t n_workers, Listener **ret,
                   size_t *ret_n);
/* The listening descriptors of `l` in all (the file descriptor budget counts them). */
size_t listeners_count_fds(const Listener *l, size_t n);
void listeners_free(Listener *l, size_t n);
