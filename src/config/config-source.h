/* SPDX-License-Identifier: MIT */
#pragma once

/* One pipeline for every source of configuration. A Config is built from a list of sources, in
 * order; each gives the build what it says (files to read, a Config read before, documents,
 * objects) through the functions below, and the one loader reads them with its one set of rules
 * and checks the result whole. The files are one source; the state (state.yaml: the upstreams
 * and routes changed over D-Bus) another; an edit over D-Bus a third; a shared store (etcd)
 * would be one more, plugged in here without the data plane knowing. */

#include "config/config-overlay.h"
#include "config/config.h"

typedef struct ConfigContext ConfigBuild;

typedef struct ConfigSource {
        const char *name; /* "files", "state", ... */
        int (*contribute)(const struct ConfigSource *s, ConfigBuild *b);
        const void *data;
} ConfigSource;

/* Runs `sources` in order into one Config, checked whole. Returns 0 and *ret, or a negative
 * errno: -EINVAL with the problems (either or both of *ret_problems and *ret_errors, the
 * latter as "file:line:column: path: message" lines), -ENOMEM, or what a source failed with
 * (an unreadable file). */
int config_build(const ConfigSource *sources, size_t n, Config **ret, ConfigProblems *ret_problems,
                 char **ret_errors);

/* The sources lbproxy has. */
ConfigSource config_source_files(char *const *paths); /* YAML files and directories */
ConfigSource config_source_loaded(const Config *c);   /* all of `c`, parsed once, shared */
ConfigSource config_source_state(const char *path);   /* its upstreams and routes replace */
ConfigSource config_source_edit(const ConfigEdit *e); /* one object's document */

/* A shared store's objects (etcd): each named by its key, its value the text the store holds. */
typedef struct ConfigStoreItem {
        ConfigObjectKind kind;
        const char *name;
        const char *path;  /* where its problems are reported: "etcd /lbproxy/upstreams/u" */
        const char *value; /* JSON or YAML; NULL: the object is gone (or kept, below) */
        size_t len;
        const void *keep;  /* instead of value: its last good object, from a Config before */
} ConfigStoreItem;

typedef struct ConfigStoreItems {
        /* The store's objects in place of those given so far; else changes to them (each item
         * replaces or removes the object of its name). */
        bool whole;
        const ConfigStoreItem *items;
        size_t n;
} ConfigStoreItems;

ConfigSource config_source_store(const ConfigStoreItems *s);

/* What a source's contribute() may do. */
/* Reads YAML files, and directories' *.yaml files in name order. */
int config_build_read_paths(ConfigBuild *b, char *const *paths);
/* Starts from everything `c` has (the first source only): its listeners and settings, and its
 * upstreams and routes, shared. */
int config_build_start_from(ConfigBuild *b, const Config *c);
/* Forgets the upstreams and routes given so far: the source's own take their place. */
void config_build_replace_objects(ConfigBuild *b);
/* Reads a file as the state is read: its upstreams and routes only. */
int config_build_read_objects(ConfigBuild *b, const char *path);
/* Reads a document (config-tree.h) as one more upstream or route; its problems are reported at
 * `path` ("routes[3]", or what names it in the source: "etcd /lbproxy/routes/r"). */
int config_build_read_document(ConfigBuild *b, ConfigObjectKind kind, ConfigTree *t,
                               const char *path);
/* Reads one value of a store (JSON or YAML text: one upstream or route in the native schema) as
 * one more object named `name` (a value without `name:` takes it; one with another is refused);
 * its problems, syntax included, are reported at `path` ("etcd /lbproxy/upstreams/u"). */
int config_build_read_text(ConfigBuild *b, ConfigObjectKind kind, const char *name,
                           const char *text, size_t len, const char *path);
/* Takes `o` (a ConfigUpstream or ConfigRoute of a Config read before) as one more object. */
int config_build_keep_object(ConfigBuild *b, ConfigObjectKind kind, const void *o, const char *path);
/* Removes the object `name` given so far; -ENOENT when there is none. */
int config_build_remove_object(ConfigBuild *b, ConfigObjectKind kind, const char *name);
/* Applies an edit to the upstreams and routes given so far. -ENOENT when it names an object
 * there is none of. */
int config_build_edit(ConfigBuild *b, const ConfigEdit *e);
