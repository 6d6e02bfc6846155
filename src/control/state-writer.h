/* SPDX-License-Identifier: MIT */
#pragma once

/* Writes the runtime state (config/state.c: write, fsync, rename) on a thread of its own, so no
 * event loop waits for a disk. One request at a time: the owner asks for the next once it heard
 * of the last, on its own loop, and so writes only the newest of the changes made meanwhile
 * (coalescing is the owner's: manager.c). */

#include <event2/event.h>
#include <stdint.h>

#include "config/config.h"

typedef struct StateWriter StateWriter;

/* On the owner's loop: the request of `generation` is done (r = 0) or failed (a negative errno). */
typedef void (*StateWriterDone)(void *userdata, uint64_t generation, int r);

int state_writer_new(const char *dir, struct event_base *base, StateWriterDone done, void *userdata,
                     StateWriter **ret);
/* Finishes the write under way, if any, and stops the thread; it is not reported. */
StateWriter *state_writer_free(StateWriter *w);

/* Asks for `c` (a reference is taken) to be the state, or, when NULL, for there to be none (the
 * files are the truth again). Only when the writer is idle: no request is under way. */
void state_writer_request(StateWriter *w, Config *c, uint64_t generation);
bool state_writer_busy(const StateWriter *w);
