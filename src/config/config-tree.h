/* SPDX-License-Identifier: MIT */
#pragma once

/* A document built in memory rather than read from a file: what D-Bus arguments become before
 * the loader reads them, and what an upstream or a route of a Config becomes to be edited. It has
 * the shape a file has (mappings, sequences, scalars) and the loader walks it with the same
 * tables; only its problems carry key paths ("nodes[1].port") instead of file:line:column.
 *
 * Scalars keep their YAML type: a string stays a string even when it reads "true" or "5", so a
 * D-Bus "s" "yes" given for a boolean is refused as a quoted string would be in a file. Nodes are
 * named by ids (> 0); the first mapping, made with the tree, is the root. Functions that make or
 * change nodes return an id or 0, or a negative errno (-ENOMEM, -EINVAL for an id that is not
 * there or not of the kind needed). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/util.h"

typedef struct ConfigTree ConfigTree;

int config_tree_new(ConfigTree **ret);
ConfigTree *config_tree_free(ConfigTree *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(ConfigTree *, config_tree_free);

int config_tree_root(const ConfigTree *t);

int config_tree_add_mapping(ConfigTree *t);
int config_tree_add_sequence(ConfigTree *t);
int config_tree_add_string(ConfigTree *t, const char *s);
int config_tree_add_integer(ConfigTree *t, int64_t v);
int config_tree_add_unsigned(ConfigTree *t, uint64_t v);
int config_tree_add_boolean(ConfigTree *t, bool v);
/* As YAML writes a float ("1.5"): durations take seconds that way. */
int config_tree_add_number(ConfigTree *t, double v);

/* Sets `key` of `mapping` to the node `value`, in the place of what it was. */
int config_tree_set(ConfigTree *t, int mapping, const char *key, int value);
/* The value of `key` in `mapping`, or 0. */
int config_tree_get(const ConfigTree *t, int mapping, const char *key);
/* Removes `key` from `mapping`: 1 when it was there, 0 when not. */
int config_tree_unset(ConfigTree *t, int mapping, const char *key);

int config_tree_append(ConfigTree *t, int sequence, int value);
/* Items of a sequence (0 for anything else), the i-th one (0 when there is none), and removing
 * it. */
size_t config_tree_length(const ConfigTree *t, int sequence);
int config_tree_item(const ConfigTree *t, int sequence, size_t i);
int config_tree_remove_item(ConfigTree *t, int sequence, size_t i);

bool config_tree_is_mapping(const ConfigTree *t, int node);
