/* SPDX-License-Identifier: MIT */
/* etcd's JSON gateway as lbproxy speaks it: base64, request bodies, answers with their fields
 * left out, watch messages split on newlines whatever the chunks. */

#include <event2/buffer.h>

#include "tls/tls-base64.h"
#include "store/etcd-json.h"
#include "store/etcd-lines.h"
#include "tap.h"

static void test_base64(void)
{
        static const struct {
                const char *plain, *encoded;
        } cases[] = {
                {"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},
                {"foo", "Zm9v"},  {"foob", "Zm9vYg=="},  {"fooba", "Zm9vYmE="},
                {"foobar", "Zm9vYmFy"}, {"/lbproxy/upstreams/u", "L2xicHJveHkvdXBzdHJlYW1zL3U="},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *e = NULL, *d = NULL;
                size_t n = 0;

                CHECK(tls_base64_encode(cases[i].plain, strlen(cases[i].plain), &e) == 0);
                CHECK(e && streq(e, cases[i].encoded));
                CHECK(tls_base64_decode(cases[i].encoded, strlen(cases[i].encoded), &d, &n) == 0);
                CHECK(d && n == strlen(cases[i].plain) && memcmp(d, cases[i].plain, n) == 0);
        }
        /* Binary, every byte value. */
        char all[256];
        for (size_t i = 0; i < sizeof(all); i++)
                all[i] = (char)i;
        _cleanup_free_ char *e = NULL, *d = NULL;
        size_t n = 0;
        CHECK(tls_base64_encode(all, sizeof(all), &e) == 0);
        CHECK(tls_base64_decode(e, strlen(e), &d, &n) == 0 && n == sizeof(all) &&
              memcmp(d, all, n) == 0);

        static const char *const bad[] = {"Zg=", "Z===", "Zm9v!A==", "=Zg=", "Zg==Zg==", "Zm=v",
                                          "Zm9v\nZm9v"};
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                char *x = NULL;
                CHECK(tls_base64_decode(bad[i], strlen(bad[i]), &x, &n) == -EINVAL);
                CHECK(!x);
        }
}

static void test_prefix_end(void)
{
        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL;
        size_t n = 0;

        CHECK(etcd_prefix_end("/lbproxy/", 9, &a, &n) == 0 && n == 9 && streq(a, "/lbproxy0"));
        CHECK(etcd_prefix_end("a\xff", 2, &b, &n) == 0 && n == 1 && streq(b, "b"));
        CHECK(etcd_prefix_end("\xff\xff", 2, &c, &n) == 0 && n == 1 && c[0] == 0);
}

static void test_requests(void)
{
        _cleanup_free_ char *range = NULL, *count = NULL, *watch = NULL, *put = NULL,
                            *create = NULL, *del = NULL;

        CHECK(etcd_json_range("/p/", 3, "/p0", 3, 0, false, &range) == 0);
        CHECK(range && streq(range, "{\"key\":\"L3Av\",\"range_end\":\"L3Aw\"}"));
        CHECK(etcd_json_range("/p/", 3, "/p0", 3, 43, true, &count) == 0);
        CHECK(count && streq(count, "{\"key\":\"L3Av\",\"range_end\":\"L3Aw\",\"min_mod_revision\":"
                                    "\"43\",\"keys_only\":true}"));
        CHECK(etcd_json_watch("/p/", 3, "/p0", 3, 42, &watch) == 0);
        CHECK(watch && streq(watch, "{\"create_request\":{\"key\":\"L3Av\",\"range_end\":\"L3Aw\","
                                    "\"start_revision\":\"42\"}}"));
        CHECK(etcd_json_txn("k", 1, "v", 1, 7, &put) == 0);
        CHECK(put && streq(put, "{\"compare\":[{\"key\":\"aw==\",\"result\":\"EQUAL\",\"target\":"
                                "\"MOD\",\"mod_revision\":\"7\"}],\"success\":[{\"request_put\":"
                                "{\"key\":\"aw==\",\"value\":\"dg==\"}}],\"failure\":[{"
                                "\"request_range\":{\"key\":\"aw==\"}}]}"));
        CHECK(etcd_json_txn("k", 1, "v", 1, 0, &create) == 0);
        CHECK(create && strstr(create, "\"target\":\"CREATE\",\"create_revision\":\"0\""));
        CHECK(etcd_json_txn("k", 1, NULL, 0, 9, &del) == 0);
        CHECK(del && strstr(del, "\"request_delete_range\":{\"key\":\"aw==\"}"));
}

static void test_range(void)
{
        /* As Debian's etcd 3.4 answers: numbers as strings, an empty value left out. */
        static const char body[] =
                "{\"header\":{\"cluster_id\":\"14841639068965178418\",\"member_id\":"
                "\"10276657743932975437\",\"revision\":\"12\",\"raft_term\":\"2\"},\"kvs\":[{"
                "\"key\":\"L3AvdXBzdHJlYW1zL3U=\",\"create_revision\":\"5\",\"mod_revision\":"
                "\"11\",\"version\":\"3\",\"value\":\"bmFtZTogdQ==\"},{\"key\":\"L3AvZQ==\","
                "\"create_revision\":\"12\",\"mod_revision\":\"12\",\"version\":\"1\"}],"
                "\"count\":\"2\"}";
        EtcdRange r = {};

        CHECK(etcd_json_parse_range(body, strlen(body), &r) == 0);
        CHECK(r.revision == 12 && r.count == 2 && r.n_kvs == 2);
        if (r.n_kvs == 2) {
                CHECK(streq(r.kvs[0].key, "/p/upstreams/u") && r.kvs[0].mod_revision == 11 &&
                      r.kvs[0].create_revision == 5);
                CHECK(r.kvs[0].value_len == 7 && streq(r.kvs[0].value, "name: u"));
                CHECK(streq(r.kvs[1].key, "/p/e") && r.kvs[1].value_len == 0 &&
                      streq(r.kvs[1].value, ""));
        }
        etcd_range_done(&r);

        /* Empty: no kvs, no count. */
        static const char empty[] = "{\"header\":{\"revision\":\"3\"}}";
        CHECK(etcd_json_parse_range(empty, strlen(empty), &r) == 0);
        CHECK(r.revision == 3 && r.n_kvs == 0 && r.count == 0);
        etcd_range_done(&r);

        static const char *const bad[] = {
                "", "[]", "{\"header\":{\"revision\":\"x\"}}", "{\"kvs\":{}}",
                "{\"kvs\":[{\"key\":\"!!!!\"}]}", "{\"header\":{}} trailing", "{\"kvs\":[1]}",
                "{\"header\":{\"revision\":\"12",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                CHECK(etcd_json_parse_range(bad[i], strlen(bad[i]), &r) == -EBADMSG);
}

static void test_watch_messages(void)
{
        EtcdWatchMessage m = {};
        static const char created[] = "{\"result\":{\"header\":{\"revision\":\"12\"},\"created\":true}}";
        CHECK(etcd_json_parse_watch(created, strlen(created), &m) == 0);
        CHECK(m.kind == ETCD_WATCH_CREATED && m.revision == 12);
        etcd_watch_message_done(&m);

        /* A PUT has no type; a DELETE has no value. */
        static const char events[] =
                "{\"result\":{\"header\":{\"revision\":\"14\"},\"events\":[{\"kv\":{\"key\":"
                "\"aw==\",\"create_revision\":\"13\",\"mod_revision\":\"13\",\"version\":\"1\","
                "\"value\":\"dg==\"}},{\"type\":\"DELETE\",\"kv\":{\"key\":\"aw==\","
                "\"mod_revision\":\"14\"}}]}}";
        CHECK(etcd_json_parse_watch(events, strlen(events), &m) == 0);
        CHECK(m.kind == ETCD_WATCH_EVENTS && m.revision == 14 && m.n_events == 2);
        if (m.n_events == 2) {
                CHECK(!m.events[0].deleted && streq(m.events[0].kv.key, "k") &&
                      streq(m.events[0].kv.value, "v") && m.events[0].kv.mod_revision == 13);
                CHECK(m.events[1].deleted && streq(m.events[1].kv.key, "k") &&
                      !m.events[1].kv.value && m.events[1].kv.mod_revision == 14);
        }
        etcd_watch_message_done(&m);

        static const char progress[] = "{\"result\":{\"header\":{\"revision\":\"20\"}}}";
        CHECK(etcd_json_parse_watch(progress, strlen(progress), &m) == 0);
        CHECK(m.kind == ETCD_WATCH_PROGRESS && m.revision == 20);
        etcd_watch_message_done(&m);

        static const char compacted[] =
                "{\"result\":{\"header\":{\"revision\":\"30\"},\"canceled\":true,"
                "\"compact_revision\":\"25\",\"cancel_reason\":\"mvcc: required revision has "
                "been compacted\"}}";
        CHECK(etcd_json_parse_watch(compacted, strlen(compacted), &m) == 0);
        CHECK(m.kind == ETCD_WATCH_CANCELED && m.compact_revision == 25 && m.error &&
              strstr(m.error, "compacted"));
        etcd_watch_message_done(&m);

        /* grpc-gateway 1.6's error, and a newer one's. */
        static const char error1[] = "{\"error\":{\"grpc_code\":14,\"http_code\":503,\"message\":"
                                     "\"etcdserver: no leader\",\"http_status\":\"Service "
                                     "Unavailable\"}}";
        static const char error2[] = "{\"error\":{\"code\":14,\"message\":\"unavailable\"}}";
        CHECK(etcd_json_parse_watch(error1, strlen(error1), &m) == 0);
        CHECK(m.kind == ETCD_WATCH_ERROR && streq(m.error, "etcdserver: no leader"));
        etcd_watch_message_done(&m);
        CHECK(etcd_json_parse_watch(error2, strlen(error2), &m) == 0);
        CHECK(m.kind == ETCD_WATCH_ERROR && streq(m.error, "unavailable"));
        etcd_watch_message_done(&m);

        static const char *const bad[] = {
                "{}", "{\"result\":[]}", "{\"result\":{\"events\":[{\"type\":\"PUT\"}]}}",
                "{\"result\":{\"events\":[{\"type\":\"MOVE\",\"kv\":{}}]}}",
                "{\"result\":{\"events\":[{\"kv\":{\"key\":\"a\"}}]}}", "not json",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                CHECK(etcd_json_parse_watch(bad[i], strlen(bad[i]), &m) == -EBADMSG);
}

static void test_txn_and_errors(void)
{
        bool ok = true;
        int64_t rev = 0;
        _cleanup_free_ char *token = NULL, *message = NULL, *message2 = NULL;

        static const char won[] = "{\"header\":{\"revision\":\"8\"},\"succeeded\":true,"
                                  "\"responses\":[{\"response_put\":{\"header\":{}}}]}";
        static const char lost[] = "{\"header\":{\"revision\":\"9\"},\"responses\":[]}";
        CHECK(etcd_json_parse_txn(won, strlen(won), &ok, &rev) == 0 && ok && rev == 8);
        CHECK(etcd_json_parse_txn(lost, strlen(lost), &ok, &rev) == 0 && !ok && rev == 9);

        static const char auth[] = "{\"header\":{},\"token\":\"abc.1\"}";
        CHECK(etcd_json_parse_authenticate(auth, strlen(auth), &token) == 0 &&
              streq(token, "abc.1"));

        static const char err[] = "{\"error\":\"etcdserver: mvcc: required revision has been "
                                  "compacted\",\"message\":\"etcdserver: mvcc: required "
                                  "revision has been compacted\",\"code\":11}";
        CHECK(etcd_json_parse_error(err, strlen(err), &message) == 0 &&
              strstr(message, "compacted"));
        static const char err2[] = "{\"error\":\"bad\",\"code\":3}";
        CHECK(etcd_json_parse_error(err2, strlen(err2), &message2) == 0 && streq(message2, "bad"));
}

/* Messages come out whole whatever the chunks: one in pieces, several in one. */
static void test_lines(void)
{
        static const char stream[] = "{\"a\":1}\n{\"b\":2}\r\n\n{\"c\":3}\n{\"d\"";
        struct evbuffer *buf = evbuffer_new();
        const char *want[] = {"{\"a\":1}", "{\"b\":2}", "{\"c\":3}"};
        size_t got = 0;

        CHECK(buf);
        for (size_t step = 1; step <= sizeof(stream) - 1; step += 3) {
                got = 0;
                evbuffer_drain(buf, evbuffer_get_length(buf));
                for (size_t i = 0; i < sizeof(stream) - 1; i += step) {
                        size_t n = step < sizeof(stream) - 1 - i ? step : sizeof(stream) - 1 - i;
                        char *line;
                        size_t len;
                        int r;

                        evbuffer_add(buf, stream + i, n);
                        while ((r = etcd_lines_next(buf, 1024, &line, &len)) == 1) {
                                CHECK(got < 3 && streq(line, want[got]) &&
                                      len == strlen(want[got]));
                                got++;
                                free(line);
                        }
                        CHECK(r == 0);
                }
                CHECK(got == 3);
                CHECK(evbuffer_get_length(buf) == 4); /* {"d" waits for its newline */
        }

        char *line = NULL;
        size_t len;
        evbuffer_drain(buf, evbuffer_get_length(buf));
        evbuffer_add(buf, "0123456789", 10);
        CHECK(etcd_lines_next(buf, 8, &line, &len) == -EMSGSIZE);
        evbuffer_add(buf, "\n", 1);
        CHECK(etcd_lines_next(buf, 8, &line, &len) == -EMSGSIZE);
        CHECK(etcd_lines_next(buf, 10, &line, &len) == 1 && streq(line, "0123456789"));
        free(line);
        evbuffer_free(buf);
}

int main(void)
{
        test_base64();
        test_prefix_end();
        test_requests();
        test_range();
        test_watch_messages();
        test_txn_and_errors();
        test_lines();
        TEST_MAIN_END();
}
