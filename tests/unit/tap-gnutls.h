/* SPDX-License-Identifier: MIT */
#pragma once

/* For the unit tests that set up TLS peers of their own with GnuTLS: a call that must work, or
 * the test cannot go on (it aborts, saying GnuTLS's words). */

#include <gnutls/gnutls.h>
#include <stdio.h>
#include <stdlib.h>

#define GNUTLS_OK(expr)                                                                            \
        do {                                                                                       \
                int _r = (expr);                                                                   \
                if (_r < 0) {                                                                      \
                        fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #expr,              \
                                gnutls_strerror(_r));                                              \
                        abort();                                                                   \
                }                                                                                  \
        } while (0)
