/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>

#include "store/etcd-lines.h"

int etcd_lines_next(struct evbuffer *buf, size_t max, char **ret, size_t *ret_len)
{
        for (;;) {
                size_t eol_len = 0;
                struct evbuffer_ptr p = evbuffer_search_eol(buf, NULL, &eol_len, EVBUFFER_EOL_LF);

                if (p.pos < 0)
                        return evbuffer_get_length(buf) > max ? -EMSGSIZE : 0;
                size_t len = (size_t)p.pos;
                if (len > max)
                        return -EMSGSIZE;
                if (len == 0 || (len == 1 && *(char *)evbuffer_pullup(buf, 1) == '\r')) {
                        evbuffer_drain(buf, len + eol_len);
                        continue;
                }
                char *line = malloc(len + 1);
                if (!line)
                        return -ENOMEM;
                if (evbuffer_remove(buf, line, len) != (int)len) {
                        free(line);
                        return -ENOMEM;
                }
                evbuffer_drain(buf, eol_len);
                if (line[len - 1] == '\r')
                        len--;
                line[len] = 0;
                *ret = line;
                *ret_len = len;
                return 1;
        }
}
