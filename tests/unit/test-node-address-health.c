/* SPDX-License-Identifier: MIT */
/* The addresses of a node found down (a fixed set of hashes read without a lock) and the
 * per-address counters the prober keeps under the active thresholds. */
#include <arpa/inet.h>

#include "lb/node-address-health.h"
#include "tap.h"

static struct sockaddr_storage ip(const char *text, uint16_t port)
{
        struct sockaddr_storage ss = {};
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        if (inet_pton(AF_INET, text, &in->sin_addr) == 1) {
                in->sin_family = AF_INET;
                in->sin_port = htons(port);
        } else {
                inet_pton(AF_INET6, text, &in6->sin6_addr);
                in6->sin6_family = AF_INET6;
                in6->sin6_port = htons(port);
        }
        return ss;
}

static void test_set(void)
{
        NodeAddressHealth h = {};
        struct sockaddr_storage a = ip("127.0.0.1", 80), a2 = ip("127.0.0.1", 8080),
                                b = ip("127.0.0.2", 80), v6 = ip("::1", 80);
        uint64_t ha = node_address_hash(&a), hb = node_address_hash(&b),
                 h6 = node_address_hash(&v6);

        /* The port is not the address's: a probe on another port marks the same one. */
        CHECK(ha == node_address_hash(&a2));
        CHECK(ha != hb && ha != h6 && ha != 0 && h6 != 0);

        CHECK(!node_address_any_down(&h) && !node_address_is_down(&h, ha));
        CHECK(node_address_mark_down(&h, ha) == 0);
        CHECK(node_address_mark_down(&h, ha) == 0); /* again: still one place */
        CHECK(atomic_load(&h.n_down) == 1);
        CHECK(node_address_is_down(&h, ha) && !node_address_is_down(&h, hb));
        CHECK(node_address_mark_down(&h, h6) == 0 && node_address_is_down(&h, h6));
        CHECK(!node_address_mark_up(&h, hb));
        CHECK(node_address_mark_up(&h, ha) && !node_address_is_down(&h, ha));
        CHECK(node_address_is_down(&h, h6) && atomic_load(&h.n_down) == 1);

        /* Full: the rest are not marked, and a place freed is taken again. */
        for (uint64_t k = 1; k < NODE_ADDRESS_DOWN_MAX; k++)
                CHECK(node_address_mark_down(&h, 1000 + k) == 0);
        CHECK(node_address_mark_down(&h, hb) == -ENOSPC && !node_address_is_down(&h, hb));
        CHECK(node_address_mark_up(&h, 1001));
        CHECK(node_address_mark_down(&h, hb) == 0 && node_address_is_down(&h, hb));

        node_address_health_clear(&h);
        CHECK(!node_address_any_down(&h) && !node_address_is_down(&h, hb));
        CHECK(!node_address_is_down(&h, h6));
}

static void test_counters(void)
{
        ConfigHealthActive a = {
                .healthy = { .successes = 2 },
                .unhealthy = { .http_failures = 3, .tcp_failures = 2, .timeouts = 0 },
        };
        AddressCounters c = {};

        /* Failures of different kinds do not add up; a success resets them. */
        CHECK(address_counters_report(&c, &a, ADDRESS_TCP_FAILURE) == 0);
        CHECK(address_counters_report(&c, &a, ADDRESS_HTTP_FAILURE) == 0);
        CHECK(address_counters_report(&c, &a, ADDRESS_SUCCESS) == 0);
        CHECK(address_counters_report(&c, &a, ADDRESS_TCP_FAILURE) == 0);
        CHECK(address_counters_report(&c, &a, ADDRESS_TCP_FAILURE) == -1 && c.down);
        CHECK(address_counters_report(&c, &a, ADDRESS_TCP_FAILURE) == 0 && c.down);

        /* Up after successes in a row; a failure between starts them again. */
        CHECK(address_counters_report(&c, &a, ADDRESS_SUCCESS) == 0);
        CHECK(address_counters_report(&c, &a, ADDRESS_HTTP_FAILURE) == 0);
        CHECK(address_counters_report(&c, &a, ADDRESS_SUCCESS) == 0 && c.down);
        CHECK(address_counters_report(&c, &a, ADDRESS_SUCCESS) == 1 && !c.down);

        /* A threshold of 0 never turns it down, however many. */
        for (int i = 0; i < 300; i++)
                CHECK(address_counters_report(&c, &a, ADDRESS_TIMEOUT) == 0);
        CHECK(!c.down);
        for (int i = 0; i < 2; i++)
                (void)address_counters_report(&c, &a, ADDRESS_HTTP_FAILURE);
        CHECK(address_counters_report(&c, &a, ADDRESS_HTTP_FAILURE) == -1);
}

int main(void)
{
        test_set();
        test_counters();
        TEST_MAIN_END();
}
