/* SPDX-License-Identifier: MIT */
#include <assert.h>
#include <time.h>

#include <event2/util.h>

#include "http/http-date.h"

const char *http_date_now(void)
{
        /* Per thread: each worker formats its own, with no lock and no shared cache line. */
        static _Thread_local char date[HTTP_DATE_LEN + 1];
        static _Thread_local time_t formatted = -1;
        time_t now = time(NULL);

        if (now != formatted) {
                struct tm tm;
                /* libevent's IMF-fixdate: English names whatever the locale (strftime's %a
                 * and %b follow it). */
                int n = evutil_date_rfc1123(date, sizeof(date), gmtime_r(&now, &tm));
                assert(n == HTTP_DATE_LEN);
                (void)n;
                formatted = now;
        }
        return date;
}
