/* SPDX-License-Identifier: MIT */
#pragma once

/* Inside the store's control side: store-sync.c follows etcd, store-write.c writes the changes
 * made over D-Bus to it. */

#include "base/hashmap.h"
#include "control/store-sync.h"
#include "store/etcd-client.h"

#define STORE_CHECK_USEC (2 * USEC_PER_SEC)
#define STORE_BACKOFF_MIN_USEC (100 * USEC_PER_MSEC)
#define STORE_BACKOFF_MAX_USEC (5 * USEC_PER_SEC)

/* A change written to etcd, waiting to serve here (its revision applied from the watch), or its
 * transaction under way (revision 0). */
typedef struct StoreWrite {
        StoreSync *sync; /* NULL once the StoreSync is gone */
        EtcdCall *call;
        char *key;
        int64_t revision;
        ManagerChangeDone done;
        void *userdata;
        struct StoreWrite *next;
} StoreWrite;

typedef enum StoreState {
        STORE_WAITING, /* for the retry timer */
        STORE_READING, /* a range of the prefix under way */
        STORE_WATCHING,
} StoreState;

struct StoreSync {
        Manager *manager;
        Config *files; /* where a whole read starts from */
        EtcdClient *client;
        char *prefix, *end;
        size_t prefix_len, end_len;
        StoreState state;
        int64_t revision;   /* everything up to it is applied */
        int64_t n_keys;     /* under the prefix at that revision, ours or not */
        size_t endpoint;    /* the one in use, or tried next */
        unsigned failures;  /* in a row, for the back-off */
        unsigned behind;    /* checks in a row that found changes the watch did not bring */
        uint64_t unreachable_since; /* CLOCK_REALTIME µs; 0 while reachable */
        EtcdCall *range, *watch, *check;
        struct event *retry, *tick;
        /* Each key's mod_revision as last seen (the compare of a write), as (void *) values. */
        Hashmap *revisions;
        StoreWrite *writes; /* under way or waiting */
        unsigned applying;  /* manager_apply_config() calls not done yet */
        /* The last whole read was refused (its objects do not fit the files): what serves is not
         * the store's, so a change is not applied on top of it but read whole again. */
        bool whole_refused;
};


/* Answers the writes of revision <= `upto` (all, with INT64_MAX) once nothing is being applied:
 * r = 0, serving; else why not. */
void store_writes_settle(StoreSync *s, int64_t upto, int r, const char *message);
void store_writes_free(StoreSync *s);
/* Answers the writes whose transaction is under way (their client is going): they may or may
 * not have been made. Those made wait for the watch as before. */
void store_writes_abandon(StoreSync *s);
