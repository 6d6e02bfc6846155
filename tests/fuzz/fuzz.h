/* SPDX-License-Identifier: MIT */
#pragma once

/* What every libFuzzer target here shares: its entry point, and a check that stops the run
 * with the line that failed (abort() is what libFuzzer reports as a crash, with the input). */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
        do {                                                                                       \
                if (!(cond)) {                                                                     \
                        fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #cond);                 \
                        abort();                                                                   \
                }                                                                                  \
        } while (0)
