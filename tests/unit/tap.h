/* SPDX-License-Identifier: MIT */
#pragma once

/* A minimal check macro for the unit test programs: prints each failure with its line, and
 * the program exits non-zero when any check failed. */

#include <stdio.h>

static int tap_failures;

#define CHECK(cond)                                                                                \
        do {                                                                                       \
                if (!(cond)) {                                                                     \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
                        tap_failures++;                                                            \
                }                                                                                  \
        } while (0)

#define TEST_MAIN_END()                                                                            \
        do {                                                                                       \
                if (tap_failures)                                                                  \
                        fprintf(stderr, "%d checks failed\n", tap_failures);                       \
                return tap_failures ? 1 : 0;                                                       \
        } while (0)
