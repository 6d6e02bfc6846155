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
/* Applies an edit to the upstreams and routes given so far. -ENOENT when it names an object
 * there is none of. */
int config_build_edit(ConfigBuild *b, const ConfigEdit *e);
