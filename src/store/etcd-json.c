/* SPDX-License-Identifier: MIT */
/* etcd's JSON through json-c: request bodies built as objects and written plain, answers parsed
 * whole and read field by field. A field that is missing reads as its default (the gateway
 * leaves those out); a field of the wrong type makes the answer -EBADMSG. */

#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "tls/tls-base64.h"
#include "store/etcd-json.h"

static void json_putp(json_object **o)
{
        json_object_put(*o);
}
#define _cleanup_json_ _cleanup_(json_putp)

void etcd_range_done(EtcdRange *r)
{
        for (size_t i = 0; i < r->n_kvs; i++) {
                free(r->kvs[i].key);
                free(r->kvs[i].value);
        }
        free(r->kvs);
        *r = (EtcdRange){};
}

void etcd_watch_message_done(EtcdWatchMessage *m)
{
        for (size_t i = 0; i < m->n_events; i++) {
                free(m->events[i].kv.key);
                free(m->events[i].kv.value);
        }
        free(m->events);
        free(m->error);
        *m = (EtcdWatchMessage){};
}

int etcd_prefix_end(const char *prefix, size_t len, char **ret, size_t *ret_len)
{
        char *end = memdup(prefix, len + 1);
        size_t n = len;

        if (!end)
                return -ENOMEM;
        while (n > 0 && (unsigned char)end[n - 1] == 0xff)
                n--;
        if (n == 0) {
                /* Every byte 0xff: the range runs to the end of the key space ("\0"). */
                end[0] = 0;
                *ret = end;
                *ret_len = 1;
                return 0;
        }
        end[n - 1] = (char)((unsigned char)end[n - 1] + 1);
        end[n] = 0;
        *ret = end;
        *ret_len = n;
        return 0;
}

/* ---- building ---- */

static int add_string(json_object *o, const char *key, const char *s)
{
        json_object *v = json_object_new_string(s);

        if (!v || json_object_object_add(o, key, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

static int add_base64(json_object *o, const char *key, const char *data, size_t len)
{
        _cleanup_free_ char *b = NULL;
        int r = tls_base64_encode(data, len, &b);

        return r < 0 ? r : add_string(o, key, b);
}

/* 64-bit numbers as strings, as the gateway writes them (JSON numbers lose precision past 2^53
 * in many readers; etcd takes both). */
static int add_int64(json_object *o, const char *key, int64_t v)
{
        char buf[24];

        snprintf(buf, sizeof(buf), "%" PRId64, v);
        return add_string(o, key, buf);
}

static int add_object(json_object *o, const char *key, json_object *v)
{
        if (!v)
                return -ENOMEM;
        if (json_object_object_add(o, key, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

static int add_item(json_object *a, json_object *v)
{
        if (!v)
                return -ENOMEM;
        if (json_object_array_add(a, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

static int write_out(json_object *o, char **ret)
{
        const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                                 JSON_C_TO_STRING_NOSLASHESCAPE);
        char *copy = s ? strdup(s) : NULL;

        if (!copy)
                return -ENOMEM;
        *ret = copy;
        return 0;
}

int etcd_json_range(const char *key, size_t key_len, const char *end, size_t end_len,
                    int64_t min_mod_revision, bool keys_only, char **ret)
{
        _cleanup_json_ json_object *o = json_object_new_object();
        int r;

        if (!o)
                return -ENOMEM;
        r = add_base64(o, "key", key, key_len);
        if (r >= 0 && end)
                r = add_base64(o, "range_end", end, end_len);
        if (r >= 0 && min_mod_revision > 0)
                r = add_int64(o, "min_mod_revision", min_mod_revision);
        if (r >= 0 && keys_only)
                r = add_object(o, "keys_only", json_object_new_boolean(1));
        return r < 0 ? r : write_out(o, ret);
}

int etcd_json_watch(const char *key, size_t key_len, const char *end, size_t end_len,
                    int64_t start_revision, char **ret)
{
        _cleanup_json_ json_object *o = json_object_new_object();
        json_object *c = json_object_new_object();
        int r;

        if (!o || add_object(o, "create_request", c) < 0)
                return -ENOMEM;
        r = add_base64(c, "key", key, key_len);
        if (r >= 0)
                r = add_base64(c, "range_end", end, end_len);
        if (r >= 0 && start_revision > 0)
                r = add_int64(c, "start_revision", start_revision);
        return r < 0 ? r : write_out(o, ret);
}

int etcd_json_txn(const char *key, size_t key_len, const char *value, size_t value_len,
                  int64_t mod_revision, char **ret)
{
        _cleanup_json_ json_object *o = json_object_new_object();
        json_object *compare, *cmp, *success, *op, *failure, *fop, *req, *freq;
        int r;

        /* add_object() and add_item() put what they could not add: nothing leaks. */
        if (!o || add_object(o, "compare", compare = json_object_new_array()) < 0 ||
            add_item(compare, cmp = json_object_new_object()) < 0 ||
            add_object(o, "success", success = json_object_new_array()) < 0 ||
            add_item(success, op = json_object_new_object()) < 0 ||
            add_object(op, value ? "request_put" : "request_delete_range",
                       req = json_object_new_object()) < 0 ||
            add_object(o, "failure", failure = json_object_new_array()) < 0 ||
            add_item(failure, fop = json_object_new_object()) < 0 ||
            add_object(fop, "request_range", freq = json_object_new_object()) < 0)
                return -ENOMEM;
        r = add_base64(cmp, "key", key, key_len);
        if (r >= 0)
                r = add_string(cmp, "result", "EQUAL");
        if (r >= 0)
                r = add_string(cmp, "target", mod_revision > 0 ? "MOD" : "CREATE");
        if (r >= 0)
                r = add_int64(cmp, mod_revision > 0 ? "mod_revision" : "create_revision",
                              mod_revision);
        if (r >= 0)
                r = add_base64(req, "key", key, key_len);
        if (r >= 0 && value)
                r = add_base64(req, "value", value, value_len);
        if (r >= 0)
                r = add_base64(freq, "key", key, key_len);
        return r < 0 ? r : write_out(o, ret);
}

int etcd_json_authenticate(const char *user, const char *password, char **ret)
{
        _cleanup_json_ json_object *o = json_object_new_object();
        int r;

        if (!o)
                return -ENOMEM;
        r = add_string(o, "name", user);
        if (r >= 0)
                r = add_string(o, "password", password ? password : "");
        return r < 0 ? r : write_out(o, ret);
}

/* ---- reading ---- */

static int parse(const char *s, size_t len, json_object **ret)
{
        json_tokener *tok;
        json_object *o;
        enum json_tokener_error e;

        if (len > INT32_MAX)
                return -EBADMSG;
        tok = json_tokener_new();
        if (!tok)
                return -ENOMEM;
        o = json_tokener_parse_ex(tok, s, (int)len);
        e = json_tokener_get_error(tok);
        /* The whole text must be one value: what follows it, or an incomplete one, is not. */
        if (o && (e != json_tokener_success || json_tokener_get_parse_end(tok) != len)) {
                json_object_put(o);
                o = NULL;
        }
        json_tokener_free(tok);
        if (!o)
                return -EBADMSG; /* json-c 0.16 does not tell out of memory apart */
        if (!json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                return -EBADMSG;
        }
        *ret = o;
        return 0;
}

/* The member `key` of `o` when it has the type given; NULL when missing or null; -EBADMSG in
 * *r when of another type. */
static json_object *member(json_object *o, const char *key, json_type type, int *r)
{
        json_object *v = NULL;

        if (!o || !json_object_object_get_ex(o, key, &v) || !v)
                return NULL;
        if (!json_object_is_type(v, type)) {
                *r = -EBADMSG;
                return NULL;
        }
        return v;
}

/* A 64-bit number: a string of digits (as the gateway writes them) or a JSON integer. */
static int64_t member_int64(json_object *o, const char *key, int *r)
{
        json_object *v = NULL;

        if (!o || !json_object_object_get_ex(o, key, &v) || !v)
                return 0;
        if (json_object_is_type(v, json_type_int))
                return json_object_get_int64(v);
        if (json_object_is_type(v, json_type_string)) {
                const char *s = json_object_get_string(v);
                char *end;

                errno = 0;
                long long n = strtoll(s, &end, 10);
                if (errno == 0 && end != s && !*end)
                        return n;
        }
        *r = -EBADMSG;
        return 0;
}

static bool member_bool(json_object *o, const char *key, int *r)
{
        json_object *v = member(o, key, json_type_boolean, r);

        return v && json_object_get_boolean(v);
}

static int member_base64(json_object *o, const char *key, char **ret, size_t *ret_len)
{
        int r = 0;
        json_object *v = member(o, key, json_type_string, &r);

        *ret = NULL;
        *ret_len = 0;
        if (r < 0)
                return r;
        if (!v) {
                /* Missing: empty (the gateway leaves out an empty value). */
                *ret = strdup("");
                return *ret ? 0 : -ENOMEM;
        }
        r = tls_base64_decode(json_object_get_string(v), (size_t)json_object_get_string_len(v), ret,
                          ret_len);
        return r == -EINVAL ? -EBADMSG : r;
}

static int parse_kv(json_object *o, bool with_value, EtcdKv *ret)
{
        int r = 0;

        *ret = (EtcdKv){};
        if (!json_object_is_type(o, json_type_object))
                return -EBADMSG;
        ret->create_revision = member_int64(o, "create_revision", &r);
        ret->mod_revision = member_int64(o, "mod_revision", &r);
        if (r < 0)
                return r;
        r = member_base64(o, "key", &ret->key, &ret->key_len);
        if (r >= 0 && with_value)
                r = member_base64(o, "value", &ret->value, &ret->value_len);
        if (r < 0) {
                free(ret->key);
                free(ret->value);
                *ret = (EtcdKv){};
        }
        return r;
}

static int64_t header_revision(json_object *o, int *r)
{
        return member_int64(member(o, "header", json_type_object, r), "revision", r);
}

int etcd_json_parse_range(const char *body, size_t len, EtcdRange *ret)
{
        _cleanup_json_ json_object *o = NULL;
        EtcdRange range = {};
        json_object *kvs;
        int r = parse(body, len, &o);

        if (r < 0)
                return r;
        range.revision = header_revision(o, &r);
        range.count = member_int64(o, "count", &r);
        kvs = member(o, "kvs", json_type_array, &r);
        if (r < 0)
                return r;
        size_t n = kvs ? json_object_array_length(kvs) : 0;
        if (n > 0) {
                range.kvs = calloc(n, sizeof(EtcdKv));
                if (!range.kvs)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                r = parse_kv(json_object_array_get_idx(kvs, i), true, &range.kvs[i]);
                if (r < 0) {
                        etcd_range_done(&range);
                        return r;
                }
                range.n_kvs++;
        }
        *ret = range;
        return 0;
}

static int parse_events(json_object *events, EtcdWatchMessage *m)
{
        size_t n = json_object_array_length(events);
        int r = 0;

        if (n == 0)
                return 0;
        m->events = calloc(n, sizeof(EtcdEvent));
        if (!m->events)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_object *e = json_object_array_get_idx(events, i), *kv;
                json_object *type;
                bool deleted;

                if (!json_object_is_type(e, json_type_object))
                        return -EBADMSG;
                /* PUT is the default, left out; DELETE is named. */
                type = member(e, "type", json_type_string, &r);
                kv = member(e, "kv", json_type_object, &r);
                if (r < 0 || !kv)
                        return -EBADMSG;
                if (type && streq(json_object_get_string(type), "DELETE"))
                        deleted = true;
                else if (!type || streq(json_object_get_string(type), "PUT"))
                        deleted = false;
                else
                        return -EBADMSG;
                r = parse_kv(kv, !deleted, &m->events[i].kv);
                if (r < 0)
                        return r;
                m->events[i].deleted = deleted;
                m->n_events++;
        }
        return 0;
}

int etcd_json_parse_watch(const char *line, size_t len, EtcdWatchMessage *ret)
{
        _cleanup_json_ json_object *o = NULL;
        EtcdWatchMessage m = {};
        json_object *result, *error, *events, *reason;
        int r = parse(line, len, &o);

        if (r < 0)
                return r;
        result = member(o, "result", json_type_object, &r);
        error = member(o, "error", json_type_object, &r);
        if (r < 0 || (!result && !error))
                return -EBADMSG;
        if (!result) {
                /* grpc-gateway 1.6 says grpc_code and http_code, newer ones code: either way the
                 * message is what a person reads. */
                json_object *msg = member(error, "message", json_type_string, &r);

                m.kind = ETCD_WATCH_ERROR;
                m.error = strdup(msg ? json_object_get_string(msg) : "watch stream failed");
                if (!m.error)
                        return -ENOMEM;
                *ret = m;
                return 0;
        }
        m.revision = header_revision(result, &r);
        m.compact_revision = member_int64(result, "compact_revision", &r);
        events = member(result, "events", json_type_array, &r);
        reason = member(result, "cancel_reason", json_type_string, &r);
        if (r < 0)
                return r;
        if (member_bool(result, "canceled", &r) || m.compact_revision > 0) {
                m.kind = ETCD_WATCH_CANCELED;
                if (reason) {
                        m.error = strdup(json_object_get_string(reason));
                        if (!m.error)
                                return -ENOMEM;
                }
        } else if (member_bool(result, "created", &r))
                m.kind = ETCD_WATCH_CREATED;
        else if (events && json_object_array_length(events) > 0)
                m.kind = ETCD_WATCH_EVENTS;
        else
                m.kind = ETCD_WATCH_PROGRESS;
        if (r >= 0 && m.kind == ETCD_WATCH_EVENTS)
                r = parse_events(events, &m);
        if (r < 0) {
                etcd_watch_message_done(&m);
                return r;
        }
        *ret = m;
        return 0;
}

int etcd_json_parse_txn(const char *body, size_t len, bool *ret_succeeded, int64_t *ret_revision)
{
        _cleanup_json_ json_object *o = NULL;
        int r = parse(body, len, &o);
        int64_t revision;
        bool succeeded;

        if (r < 0)
                return r;
        revision = header_revision(o, &r);
        succeeded = member_bool(o, "succeeded", &r);
        if (r < 0)
                return r;
        *ret_succeeded = succeeded;
        *ret_revision = revision;
        return 0;
}

/* The first of `keys` that the answer has as a string. */
static int parse_string(const char *body, size_t len, const char *const *keys, char **ret)
{
        _cleanup_json_ json_object *o = NULL;
        json_object *v = NULL;
        int r = parse(body, len, &o);

        if (r < 0)
                return r;
        for (; *keys && !v; keys++)
                v = member(o, *keys, json_type_string, &r);
        if (!v)
                return -EBADMSG;
        *ret = strdup(json_object_get_string(v));
        return *ret ? 0 : -ENOMEM;
}

int etcd_json_parse_authenticate(const char *body, size_t len, char **ret_token)
{
        return parse_string(body, len, (const char *const[]){"token", NULL}, ret_token);
}

int etcd_json_parse_error(const char *body, size_t len, char **ret_message)
{
        return parse_string(body, len, (const char *const[]){"message", "error", NULL},
                            ret_message);
}
