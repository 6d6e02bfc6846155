/* SPDX-License-Identifier: MIT */
#pragma once

/* A minimal check macro for the unit test programs: prints each failure with its line, and
 * the program exits non-zero when any check failed. */

#include <stdio.h>

#include "base/util.h" /* streq_ptr */

static int tap_failures;

#define CHECK(cond)                                                                                \
        do {                                                                                       \
                if (!(cond)) {                                                                     \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
                        tap_failures++;                                                            \
                }                                                                                  \
        } while (0)

/* Two strings (either may be NULL) are equal; prints both when not. */
#define CHECK_STR(a, b)                                                                            \
        do {                                                                                       \
                const char *_a = (a), *_b = (b);                                                   \
                if (!streq_ptr(_a, _b)) {                                                          \
                        fprintf(stderr, "%s:%d: check failed: %s == %s\n  got:  %s\n  want: %s\n", \
                                __FILE__, __LINE__, #a, #b, _a ? _a : "(null)",                    \
                                _b ? _b : "(null)");                                               \
                        tap_failures++;                                                            \
                }                                                                                  \
        } while (0)

#define TEST_MAIN_END()                                                                            \
        do {                                                                                       \
                if (tap_failures)                                                                  \
                        fprintf(stderr, "%d checks failed\n", tap_failures);                       \
                return tap_failures ? 1 : 0;                                                       \
        } while (0)
