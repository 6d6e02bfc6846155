/* SPDX-License-Identifier: MIT */
/* A watch stream from etcd, as the client hands it on dechunked: in pieces that fall anywhere (the first byte
 * of the input says where), split into lines, each parsed as a watch message; and the input
 * whole as a range's and a txn's answer. What a message says must hold together. */

#include <event2/buffer.h>
#include <string.h>

#include "fuzz.h"
#include "store/etcd-json.h"
#include "store/etcd-lines.h"

static void check_message(const char *line, size_t len)
{
        EtcdWatchMessage m = {};
        int r = etcd_json_parse_watch(line, len, &m);

        CHECK(r == 0 || r == -EBADMSG || r == -ENOMEM);
        if (r < 0)
                return;
        CHECK(m.kind >= ETCD_WATCH_CREATED && m.kind <= ETCD_WATCH_ERROR);
        CHECK(m.kind == ETCD_WATCH_EVENTS ? m.n_events > 0 : m.n_events == 0);
        CHECK(m.kind != ETCD_WATCH_ERROR || m.error);
        for (size_t i = 0; i < m.n_events; i++) {
                const EtcdKv *kv = &m.events[i].kv;
                CHECK(kv->key && kv->key[kv->key_len] == 0);
                CHECK(m.events[i].deleted ? !kv->value : kv->value && kv->value[kv->value_len] == 0);
        }
        etcd_watch_message_done(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct evbuffer *buf;
        size_t chunk;

        if (size == 0)
                return 0;
        chunk = (size_t)data[0] % 16 + 1;
        data++;
        size--;

        buf = evbuffer_new();
        CHECK(buf);
        for (size_t i = 0; i < size; i += chunk) {
                char *line;
                size_t len;
                int r;

                CHECK(evbuffer_add(buf, data + i, size - i < chunk ? size - i : chunk) == 0);
                while ((r = etcd_lines_next(buf, 4096, &line, &len)) == 1) {
                        CHECK(len > 0 && line[len] == 0); /* a NUL inside is the parser's to refuse */
                        check_message(line, len);
                        free(line);
                }
                CHECK(r == 0 || r == -EMSGSIZE);
                if (r < 0)
                        break;
        }
        evbuffer_free(buf);

        EtcdRange range = {};
        if (etcd_json_parse_range((const char *)data, size, &range) == 0) {
                for (size_t i = 0; i < range.n_kvs; i++)
                        CHECK(range.kvs[i].key && range.kvs[i].value);
                etcd_range_done(&range);
        }
        bool ok;
        int64_t rev;
        (void)etcd_json_parse_txn((const char *)data, size, &ok, &rev);
        return 0;
}
