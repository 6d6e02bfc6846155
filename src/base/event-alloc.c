/* SPDX-License-Identifier: MIT */
#include <event2/event.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>

#include "base/event-alloc.h"
#include "base/util.h"

#define CLASS_MIN_SHIFT 9  /* 512 bytes: libevent's smallest chain */
#define CLASS_MAX_SHIFT 16 /* 64 KiB: the largest read this daemon makes */
#define N_CLASSES (CLASS_MAX_SHIFT - CLASS_MIN_SHIFT + 1)
/* Per class and thread: enough for the chains a burst of requests holds at once; beyond it
 * blocks go back to malloc, so a thread keeps at most about 2 MiB. */
#define KEEP_PER_CLASS 16

typedef struct FreeBlock {
        struct FreeBlock *next;
} FreeBlock;

typedef struct ThreadBlocks {
        FreeBlock *head[N_CLASSES];
        unsigned n[N_CLASSES];
} ThreadBlocks;

static __thread ThreadBlocks blocks;

/* The class of an exact power of two in range, else -1: only chains are asked in such sizes. */
static int class_of_request(size_t size)
{
        if (size < (1u << CLASS_MIN_SHIFT) || size > (1u << CLASS_MAX_SHIFT) ||
            (size & (size - 1)) != 0)
                return -1;
        return __builtin_ctzl(size) - CLASS_MIN_SHIFT;
}

/* The largest class a block of `usable` bytes serves, when it wastes under an eighth of it. */
static int class_of_block(size_t usable)
{
        if (usable < (1u << CLASS_MIN_SHIFT))
                return -1;
        int shift = 63 - __builtin_clzl(usable);
        if (shift > CLASS_MAX_SHIFT || usable - ((size_t)1 << shift) > usable / 8)
                return -1;
        return shift - CLASS_MIN_SHIFT;
}

static void *alloc_block(size_t size)
{
        int c = class_of_request(size);
        if (c >= 0 && blocks.head[c]) {
                FreeBlock *b = blocks.head[c];
                blocks.head[c] = b->next;
                blocks.n[c]--;
                return b;
        }
        return malloc(size);
}

static void free_block(void *p)
{
        if (!p)
                return;
        int c = class_of_block(malloc_usable_size(p));
        if (c < 0 || blocks.n[c] >= KEEP_PER_CLASS) {
                free(p);
                return;
        }
        FreeBlock *b = p;
        b->next = blocks.head[c];
        blocks.head[c] = b;
        blocks.n[c]++;
}

void event_alloc_setup(void)
{
        if (HAVE_ASAN)
                return; /* libevent's own malloc and free, which ASan watches */
        event_set_mem_functions(alloc_block, realloc, free_block);
        /* The main thread's blocks, after main() and its cleanups have freed the rest. */
        atexit(event_alloc_thread_done);
}

void event_alloc_thread_done(void)
{
        for (unsigned c = 0; c < N_CLASSES; c++) {
                while (blocks.head[c]) {
                        FreeBlock *b = blocks.head[c];
                        blocks.head[c] = b->next;
                        free(b);
                }
                blocks.n[c] = 0;
        }
}
