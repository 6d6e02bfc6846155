/* SPDX-License-Identifier: MIT */
#pragma once

/* The Date field's value (RFC 9110 5.6.7, IMF-fixdate) for the current second. */

#define HTTP_DATE_LEN 29 /* "Sun, 06 Nov 1994 08:49:37 GMT" */

/* Now, as "Sun, 06 Nov 1994 08:49:37 GMT" (HTTP_DATE_LEN characters, NUL-terminated). Formatted
 * at most once a second per thread, in a buffer of the calling thread's that the next call in a
 * later second overwrites. */
const char *http_date_now(void);
