/* SPDX-License-Identifier: MIT */
#pragma once

/* etcd v3's JSON gateway (Debian's etcd 3.4, grpc-gateway 1.6): the request bodies lbproxy sends
 * and the answers it reads, through json-c. Keys and values are base64 on the wire and plain
 * bytes here; 64-bit numbers are JSON strings there (numbers are taken too); fields with default
 * values are left out of answers (an empty range has no "kvs", a PUT event no "type", a failed
 * txn no "succeeded"), so a missing field reads as its default. Pure: no I/O. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct EtcdKv {
        char *key; /* NUL-terminated after key_len bytes */
        size_t key_len;
        char *value; /* NUL-terminated after value_len bytes; NULL for a deletion */
        size_t value_len;
        int64_t create_revision;
        int64_t mod_revision;
} EtcdKv;

typedef struct EtcdRange {
        int64_t revision; /* header.revision: the snapshot the kvs are of */
        int64_t count;
        EtcdKv *kvs;
        size_t n_kvs;
} EtcdRange;

void etcd_range_done(EtcdRange *r);

typedef enum EtcdWatchKind {
        ETCD_WATCH_CREATED,  /* the watch runs */
        ETCD_WATCH_EVENTS,   /* changes */
        ETCD_WATCH_PROGRESS, /* a header alone: nothing changed up to its revision */
        ETCD_WATCH_CANCELED, /* compact_revision > 0: the start revision was compacted */
        ETCD_WATCH_ERROR,    /* the stream failed ("error":{...}) */
} EtcdWatchKind;

typedef struct EtcdEvent {
        bool deleted;
        EtcdKv kv; /* a deletion has the key and mod_revision only */
} EtcdEvent;

typedef struct EtcdWatchMessage {
        EtcdWatchKind kind;
        int64_t revision; /* header.revision */
        int64_t compact_revision;
        EtcdEvent *events;
        size_t n_events;
        char *error; /* ETCD_WATCH_ERROR, ETCD_WATCH_CANCELED: what etcd said, or NULL */
} EtcdWatchMessage;

void etcd_watch_message_done(EtcdWatchMessage *m);

/* The end of the range of every key beginning with `prefix` (its last byte below 0xff plus one,
 * what follows dropped): NUL-terminated, *ret_len bytes. 0 or -ENOMEM. */
int etcd_prefix_end(const char *prefix, size_t len, char **ret, size_t *ret_len);

/* Request bodies, NUL-terminated JSON. Each returns 0 or -ENOMEM. */
/* /v3/kv/range over [key, end) (end NULL: the key alone); min_mod_revision > 0 counts only keys
 * changed since; keys_only leaves the values out (a count_only count would not heed min_mod_revision:
 * etcd 3.4 counts before it filters). */
int etcd_json_range(const char *key, size_t key_len, const char *end, size_t end_len,
                    int64_t min_mod_revision, bool keys_only, char **ret);
/* /v3/watch: one create_request over [key, end) from start_revision. */
int etcd_json_watch(const char *key, size_t key_len, const char *end, size_t end_len,
                    int64_t start_revision, char **ret);
/* /v3/kv/txn: puts `value` (or deletes the key when value is NULL) if the key's mod_revision is
 * still `mod_revision` (0: if the key does not exist); else ranges the key, to say what is
 * there. */
int etcd_json_txn(const char *key, size_t key_len, const char *value, size_t value_len,
                  int64_t mod_revision, char **ret);
/* /v3/auth/authenticate */
int etcd_json_authenticate(const char *user, const char *password, char **ret);

/* Answers. Each returns 0, -EBADMSG for what is not the answer expected (not JSON, a field of
 * the wrong type, a key or value that is not base64), or -ENOMEM. */
int etcd_json_parse_range(const char *body, size_t len, EtcdRange *ret);
/* One message of a watch stream: one line of it, without the newline. */
int etcd_json_parse_watch(const char *line, size_t len, EtcdWatchMessage *ret);
/* A txn's answer: whether its compare held, and the revision it made (or saw). */
int etcd_json_parse_txn(const char *body, size_t len, bool *ret_succeeded, int64_t *ret_revision);
int etcd_json_parse_authenticate(const char *body, size_t len, char **ret_token);
/* The message of an error answer ({"error": "...", "message": "...", "code": N}), or -EBADMSG
 * when it has none. */
int etcd_json_parse_error(const char *body, size_t len, char **ret_message);
