/* SPDX-License-Identifier: MIT */
#pragma once

/* Runtime state: the configuration as changed over D-Bus, kept in the state directory as native
 * YAML so it survives a restart or a kill -9. Written atomically: a crash leaves the old file or
 * the new one, never half of one. */

#include "config/config.h"

#define STATE_FILE "state.yaml"
#define STATE_REJECTED_FILE "state.yaml.rejected"

/* "<dir>/state.yaml" */
int state_path(const char *dir, char **ret);

/* The state file of a directory, written at the cost of what changed: the text of each upstream
 * and route is made once and kept (with a reference on the Config last written, so the objects
 * it was made of stay what they were), and a new state is the settings, then the texts, most of
 * them from before. One thread at a time. */
typedef struct StateFile StateFile;
int state_file_new(const char *dir, StateFile **ret);
StateFile *state_file_free(StateFile *s);
/* Writes `c` whole and atomically: a temporary file, written, fsync()ed, renamed over
 * state.yaml, the directory fsync()ed. Returns 0 once that is done, or a negative errno; when it
 * fails before the rename, state.yaml is as it was. */
int state_file_save(StateFile *s, const Config *c);
/* Removes state.yaml (the files are the truth again). */
int state_file_remove(StateFile *s);

/* state_file_save() once, without keeping anything. */
int state_save(const char *dir, const Config *c);
/* The files are the truth again (after a Reload()). */
int state_remove(const char *dir);
/* Creates the directory when missing (mode 0700, parents as needed, as systemd's
 * StateDirectory= would) and checks that a file can be created in it. A negative errno when
 * lbproxy could not persist there. */
int state_dir_prepare(const char *dir);

/* The configuration `files` read with the runtime state's upstreams and routes in place of
 * theirs, checked as one configuration (the files are not read again). Returns 1 and *ret when
 * there is a state and it fits, 0 when `dir` is NULL or holds no state, or a negative errno:
 * -EINVAL with *ret_errors ("file:line:column: message" lines, to free) when the state does not
 * parse or does not fit the files, another errno when it cannot be read. */
int state_load(const Config *files, const char *dir, Config **ret, char **ret_errors);

/* Moves a state that was not used aside, to STATE_REJECTED_FILE in the same directory,
 * replacing an older one: kept for the operator, never read again. */
int state_reject(const char *dir);
