/* SPDX-License-Identifier: MIT */
#pragma once

/* libevent's memory, kept per thread for reuse. An evbuffer takes a new chain (a power of two,
 * 512 bytes to 64 KiB) for the first bytes that go into it and frees it once they are drained:
 * four chains per proxied request, sizes too large for glibc's per-thread cache, so each costs a
 * walk of malloc's bins and a free that merges chunks. Freed blocks of those sizes wait in a
 * short list of the thread's instead, and the next chain is one of them. Everything libevent
 * allocates stays a plain malloc() block: realloc() and free() work on any of it. */

/* Routes libevent's allocations through here. Before any other libevent call, on the main
 * thread, whose blocks are freed at exit. */
void event_alloc_setup(void);
/* Frees the blocks the calling thread keeps; at the end of a thread that ran a loop. */
void event_alloc_thread_done(void);
