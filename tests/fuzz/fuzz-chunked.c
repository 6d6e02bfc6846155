/* SPDX-License-Identifier: MIT */
/* Feeds arbitrary bytes to the chunked framer whole, byte by byte and split at points drawn from
 * the input, and checks every way gives the same answer at the same offset. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "http/http1.h"

/* Feeds buf in pieces whose sizes come from next_step(); returns the status, and the offset of
 * the end of the body (1) or of the failure (< 0). */
static int feed(const char *buf, size_t len, size_t max_line, uint64_t seed, size_t max_step,
                size_t *ret_off)
{
        HttpChunked c;
        size_t off = 0;
        int r = 0;

        http_chunked_init(&c);
        do {
                size_t n = len - off;
                if (max_step > 0) {
                        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
                        size_t step = (size_t)(seed >> 33) % max_step;
                        if (step < n)
                                n = step;
                }
                /* an exact-size copy, so reading past the piece is caught */
                char *piece = malloc(n ? n : 1);
                memcpy(piece, buf + off, n);
                size_t used = (size_t)-1;
                r = http_chunked_feed(&c, piece, n, max_line, &used);
                free(piece);

                CHECK(r == 0 || r == 1 || r == -EBADMSG || r == -EMSGSIZE);
                CHECK(used <= n);
                CHECK(r != 0 || used == n);
                off += used;
        } while (r == 0 && off < len);

        *ret_off = off;
        return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const char *buf = (const char *)data;
        size_t max_line = size > 0 && (data[0] & 1) ? 8 : 64;
        uint64_t seed = 0xcbf29ce484222325ull;
        size_t off_whole, off;

        for (size_t i = 0; i < size; i++)
                seed = (seed ^ data[i]) * 0x100000001b3ull;

        int r_whole = feed(buf, size, max_line, 0, 0, &off_whole);
        CHECK(off_whole <= size);
        CHECK(r_whole != 0 || off_whole == size);

        int r = feed(buf, size, max_line, seed, 7, &off);
        CHECK(r == r_whole && off == off_whole);
        r = feed(buf, size, max_line, seed, 300, &off);
        CHECK(r == r_whole && off == off_whole);
        if (size <= 4096) {
                r = feed(buf, size, max_line, 0, 2, &off); /* steps of 0 and 1 byte */
                CHECK(r == r_whole && off == off_whole);
        }

        /* Once the body ended, what follows is not looked at. */
        if (r_whole == 1 && off_whole < size) {
                char *copy = malloc(off_whole ? off_whole : 1);
                memcpy(copy, buf, off_whole);
                r = feed(copy, off_whole, max_line, 0, 0, &off);
                CHECK(r == 1 && off == off_whole);
                free(copy);
        }
        return 0;
}
