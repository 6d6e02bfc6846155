/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "base/util.h"

const char *sockaddr_to_string(const struct sockaddr *sa, char *buf, size_t size)
{
        char ip[INET6_ADDRSTRLEN];

        switch (sa->sa_family) {
        case AF_INET: {
                const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
                inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
                snprintf(buf, size, "%s:%u", ip, ntohs(in->sin_port));
                break;
        }
        case AF_INET6: {
                const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
                inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
                snprintf(buf, size, "[%s]:%u", ip, ntohs(in6->sin6_port));
                break;
        }
        case AF_UNIX:
                snprintf(buf, size, "unix");
                break;
        default:
                snprintf(buf, size, "?");
        }
        return buf;
}
