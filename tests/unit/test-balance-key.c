/* SPDX-License-Identifier: MIT */
/* The key chash hashes a request by: each variable, header and cookie, and the client's
 * address for a request without it. */
#include "base/hashmap.h"
#include "base/util.h"
#include "proxy/balance-key.h"
#include "tap.h"

static const char request[] = "GET /a/b?x=1&User=alice&empty=&flag HTTP/1.1\r\n"
                              "Host: Example.COM:8080\r\n"
                              "X-User-Id: 42\r\n"
                              "Cookie: theme=dark; sid=abc123\r\n"
                              "Cookie: other=1\r\n"
                              "\r\n";

static const char client[] = "192.0.2.7";

static uint64_t h(const char *s)
{
        return hashmap_hash(s, strlen(s));
}

static uint64_t key(HashOn on, const char *name, const HttpHead *head)
{
        ConfigUpstream u = { .hash_on = on, .hash_key = (char *)name };
        return balance_key(&u, head, client, strlen(client));
}

int main(void)
{
        HttpHead head;
        const char *reason;
        CHECK(http1_parse_request(request, strlen(request), 64, 8192, &head, &reason) > 0);

        CHECK(key(HASH_ON_VARS, NULL, &head) == h(client));
        CHECK(key(HASH_ON_VARS, "remote_addr", &head) == h(client));
        CHECK(key(HASH_ON_VARS, "uri", &head) == h("/a/b"));
        CHECK(key(HASH_ON_VARS, "request_uri", &head) == h("/a/b?x=1&User=alice&empty=&flag"));
        CHECK(key(HASH_ON_VARS, "host", &head) == h("example.com"));
        CHECK(key(HASH_ON_VARS, "arg_user", &head) == h("alice")); /* names without case */
        CHECK(key(HASH_ON_VARS, "arg_x", &head) == h("1"));
        CHECK(key(HASH_ON_VARS, "arg_empty", &head) == h(""));
        CHECK(key(HASH_ON_VARS, "arg_flag", &head) == h(""));
        CHECK(key(HASH_ON_VARS, "arg_missing", &head) == h(client));
        CHECK(key(HASH_ON_VARS, "http_x_user_id", &head) == h("42"));
        CHECK(key(HASH_ON_VARS, "http_missing", &head) == h(client));
        CHECK(key(HASH_ON_HEADER, "x-user-id", &head) == h("42"));
        CHECK(key(HASH_ON_HEADER, "x_user_id", &head) == h(client)); /* a header name as is */
        CHECK(key(HASH_ON_COOKIE, "sid", &head) == h("abc123"));
        CHECK(key(HASH_ON_COOKIE, "other", &head) == h("1"));
        CHECK(key(HASH_ON_COOKIE, "SID", &head) == h(client)); /* cookie names keep case */
        CHECK(key(HASH_ON_COOKIE, "the", &head) == h(client));
        /* A tcp session has no request: the client's address. */
        CHECK(key(HASH_ON_HEADER, "x-user-id", NULL) == h(client));

        static const char v6[] = "GET / HTTP/1.1\r\nHost: [2001:DB8::1]:443\r\n\r\n";
        CHECK(http1_parse_request(v6, strlen(v6), 64, 8192, &head, &reason) > 0);
        CHECK(key(HASH_ON_VARS, "host", &head) == h("[2001:db8::1]"));
        TEST_MAIN_END();
}
