/* SPDX-License-Identifier: MIT */
#pragma once

/* The glue between c-ares and libevent: a channel whose sockets and timeouts are driven by the
 * event loop. The rest of lbproxy does not see c-ares' socket callbacks. */

#include <ares.h>
#include <event2/event.h>

typedef struct DnsChannel DnsChannel;

/* `servers`: "127.0.0.1:5353", NULL-terminated; NULL or empty: those of /etc/resolv.conf. */
int dns_channel_new(struct event_base *base, char *const *servers, DnsChannel **ret);
/* Cancels pending queries: their callbacks run with ARES_EDESTRUCTION. */
DnsChannel *dns_channel_free(DnsChannel *c);

/* Resolves A and AAAA for `host`. The callback may run before this returns. */
void dns_channel_getaddrinfo(DnsChannel *c, const char *host, ares_addrinfo_callback callback,
                             void *userdata);

/* c-ares status as a negative errno, keeping the meaning that matters to callers. */
int dns_status_to_errno(int status);
