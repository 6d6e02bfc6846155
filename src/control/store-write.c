/* SPDX-License-Identifier: MIT */
/* Changes made over D-Bus, with a store: written to etcd, never applied here directly. The
 * transaction compares the object's mod_revision with the one this instance last saw (0: it must
 * not exist yet), so of two instances changing one object at once the second fails and changes
 * nothing: no update is lost. The caller is answered once the change serves here, applied from
 * the watch as every other instance applies it (or at once when the watch is lost meanwhile: it
 * is committed, and serves once the store is back). */

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "control/store-internal.h"
#include "store/etcd-json.h"

static void unlink_write(StoreSync *s, StoreWrite *w)
{
        for (StoreWrite **p = &s->writes; *p; p = &(*p)->next)
                if (*p == w) {
                        *p = w->next;
                        return;
                }
}

static void write_free(StoreWrite *w)
{
        free(w->key);
        free(w);
}

static void answer(StoreWrite *w, int r, const char *message)
{
        ManagerChangeDone done = w->done;
        void *userdata = w->userdata;

        write_free(w);
        done(userdata, r, message);
}

void store_writes_settle(StoreSync *s, int64_t upto, int r, const char *message)
{
        /* An earlier revision still being applied: what follows it waits too. */
        if (r >= 0 && s->applying > 0)
                return;
        for (StoreWrite **p = &s->writes; *p;) {
                StoreWrite *w = *p;
                if (w->revision == 0 || w->revision > upto) {
                        p = &w->next;
                        continue;
                }
                *p = w->next;
                answer(w, r, message);
        }
}

void store_writes_free(StoreSync *s)
{
        while (s->writes) {
                StoreWrite *w = s->writes;
                s->writes = w->next;
                etcd_call_cancel(w->call);
                answer(w, -ECANCELED, "lbproxy is stopping");
        }
}

void store_writes_abandon(StoreSync *s)
{
        for (StoreWrite **p = &s->writes; *p;) {
                StoreWrite *w = *p;
                if (!w->call) {
                        p = &w->next;
                        continue;
                }
                *p = w->next;
                etcd_call_cancel(w->call);
                answer(w, -EIO, "a reload replaced the connections to the store (etcd) while "
                                "this write was under way: it may or may not have been made; "
                                "read it again");
        }
}

static void on_written(void *userdata, int r, unsigned status, const char *body, size_t len)
{
        StoreWrite *w = userdata;
        StoreSync *s = w->sync;
        _cleanup_free_ char *message = NULL;
        char buf[512];
        bool succeeded = false;
        int64_t revision = 0;

        w->call = NULL;
        if (r >= 0)
                r = etcd_json_parse_txn(body, len, &succeeded, &revision);
        if (r < 0) {
                unlink_write(s, w);
                if (asprintf(&message, "the store (etcd) did not answer the write of %s (%s): it "
                             "may or may not have been made; read it again", w->key,
                             etcd_why(r, status, body, buf, sizeof(buf))) < 0)
                        message = NULL;
                answer(w, -EIO, message ? message : "the store (etcd) did not answer");
                return;
        }
        if (!succeeded) {
                unlink_write(s, w);
                if (asprintf(&message, "conflict: %s changed in the store since this instance "
                             "saw it; nothing changed (read it again and retry)", w->key) < 0)
                        message = NULL;
                answer(w, -EBUSY, message ? message : "conflict");
                return;
        }
        log_event(LOG_NOTICE, LBPROXY_MESSAGE_STORE, NULL, NULL, NULL,
                  "Written to etcd: %s at revision %" PRId64, w->key, revision);
        w->revision = revision;
        store_writes_settle(s, s->revision, 0, NULL);
}

int manager_store_change(Manager *m, Config *config, ConfigObjectKind kind, const char *name,
                         ManagerChangeDone done, void *userdata, char **ret_error)
{
        StoreSync *s = m->store;
        _cleanup_(config_unrefp) Config *c = NULL;
        _cleanup_free_ char *key = NULL, *text = NULL, *body = NULL;
        const void *o;
        size_t len = 0;
        StoreWrite *w;
        int r;

        if (!s)
                return -EOPNOTSUPP;
        c = config;
        /* Reconnecting to another member is not being away: the write goes to the member
         * tried now, and fails on its own if that one cannot take it. */
        if (s->unreachable_since) {
                if (ret_error)
                        *ret_error = strdup("the store (etcd) cannot be reached: changes are "
                                            "refused until it is back, so that no instance "
                                            "drifts on its own");
                return -EHOSTUNREACH;
        }
        if (asprintf(&key, "%s%s/%s", s->prefix,
                     kind == CONFIG_OBJECT_UPSTREAM ? "upstreams" : "routes", name) < 0)
                return -ENOMEM;
        o = kind == CONFIG_OBJECT_UPSTREAM ? (const void *)config_find_upstream(c, name)
                                           : (const void *)config_find_route(c, name);
        if (o) {
                r = config_dump_object(kind, o, &text, &len);
                if (r < 0)
                        return r;
        }
        int64_t seen = (int64_t)(intptr_t)hashmap_get(s->revisions, key, strlen(key));
        r = etcd_json_txn(key, strlen(key), text, len, seen, &body);
        if (r < 0)
                return r;
        w = calloc(1, sizeof(StoreWrite));
        if (!w)
                return -ENOMEM;
        *w = (StoreWrite){.sync = s, .key = TAKE_PTR(key), .done = done, .userdata = userdata};
        r = etcd_call(s->client, s->endpoint, "/v3/kv/txn", body, on_written, w, &w->call);
        if (r < 0) {
                write_free(w);
                return r;
        }
        w->next = s->writes;
        s->writes = w;
        return 0;
}
