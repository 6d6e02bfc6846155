/* SPDX-License-Identifier: MIT */
#pragma once

/* Runtime state: the configuration as changed over D-Bus, kept in the state directory as native
 * YAML so it survives a restart or a kill -9. Written atomically: a crash leaves the old file or
 * the new one, never half of one. */

#include "config.h"

#define STATE_FILE "state.yaml"

/* "<dir>/state.yaml" */
int state_path(const char *dir, char **ret);
int state_save(const char *dir, const Config *c);
/* The files are the truth again (after a Reload()). */
int state_remove(const char *dir);
/* Gives `files` the upstreams and routes of `state` (what D-Bus changes), keeping everything
 * else (listeners, dns, tls defaults, timeouts) from the files: an administrator who edits
 * those and restarts sees them applied. `state` is left without upstreams and routes. */
int state_merge(Config *files, Config *state);

/* True when a state file exists. */
bool state_exists(const char *dir);
