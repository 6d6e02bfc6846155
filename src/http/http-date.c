/* SPDX-License-Identifier: MIT */
#include <time.h>

#include "http/http-date.h"

/* By hand, not strftime(): %a and %b follow the locale, and HTTP's names are English. */
static void format_date(char *out, time_t t)
{
        static const char days[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
        static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
        struct tm tm;

        gmtime_r(&t, &tm);
        unsigned year = (unsigned)tm.tm_year + 1900;
        char *p = out;
        for (int i = 0; i < 3; i++)
                *p++ = days[tm.tm_wday][i];
        *p++ = ',';
        *p++ = ' ';
        *p++ = (char)('0' + tm.tm_mday / 10);
        *p++ = (char)('0' + tm.tm_mday % 10);
        *p++ = ' ';
        for (int i = 0; i < 3; i++)
                *p++ = months[tm.tm_mon][i];
        *p++ = ' ';
        *p++ = (char)('0' + year / 1000 % 10);
        *p++ = (char)('0' + year / 100 % 10);
        *p++ = (char)('0' + year / 10 % 10);
        *p++ = (char)('0' + year % 10);
        *p++ = ' ';
        *p++ = (char)('0' + tm.tm_hour / 10);
        *p++ = (char)('0' + tm.tm_hour % 10);
        *p++ = ':';
        *p++ = (char)('0' + tm.tm_min / 10);
        *p++ = (char)('0' + tm.tm_min % 10);
        *p++ = ':';
        *p++ = (char)('0' + tm.tm_sec / 10);
        *p++ = (char)('0' + tm.tm_sec % 10);
        *p++ = ' ';
        *p++ = 'G';
        *p++ = 'M';
        *p++ = 'T';
        *p = '\0';
}

const char *http_date_now(void)
{
        /* Per thread: each worker formats its own, with no lock and no shared cache line. */
        static _Thread_local char date[HTTP_DATE_LEN + 1];
        static _Thread_local time_t formatted = -1;
        time_t now = time(NULL);

        if (now != formatted) {
                format_date(date, now);
                formatted = now;
        }
        return date;
}
