/* SPDX-License-Identifier: MIT */
#pragma once

/* Between model.c (building models) and node.c (a node's addresses and health). */

#include "lb/model.h"

/* Sets up `n` for `cn`, a node of `u` (whose configuration and TLS client are set): its names,
 * its registry entry, its address or its name handed to ctx->resolver. On failure node_done()
 * frees what was made. */
int node_init(Node *n, const Upstream *u, const ConfigNode *cn, const ModelContext *ctx);
void node_done(Node *n);
