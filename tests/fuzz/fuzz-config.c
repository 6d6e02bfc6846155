/* SPDX-License-Identifier: MIT */
/* Feeds arbitrary bytes to the config loader and checks what it promises: a failure comes with
 * messages and leaves *ret alone, and whatever loads dumps to YAML that loads again and dumps
 * to the same text. Leaks are LSan's to find. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "fuzz.h"

#define UNTOUCHED ((Config *)(uintptr_t)0x5a5a)

static char *dump(const Config *c, size_t *ret_size)
{
        char *text = NULL;
        FILE *f = open_memstream(&text, ret_size);

        CHECK(f);
        CHECK(config_dump(c, f) == 0);
        CHECK(fclose(f) == 0);
        return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        Config *c = UNTOUCHED, *c2 = UNTOUCHED;
        char *errors = NULL, *text, *text2;
        size_t n, n2;
        int r;

        r = config_load_string("fuzz.yaml", (const char *)data, size, &errors, &c);
        if (r < 0) {
                CHECK(r == -EINVAL || r == -ENOMEM);
                CHECK(c == UNTOUCHED);
                CHECK(r == -ENOMEM || (errors && *errors));
                free(errors);
                return 0;
        }
        CHECK(c != UNTOUCHED && c);
        CHECK(!errors);

        text = dump(c, &n);
        r = config_load_string("dump.yaml", text, n, &errors, &c2);
        if (r < 0) {
                fprintf(stderr, "dump does not load:\n%s\n---\n%s\n", errors, text);
                abort();
        }
        text2 = dump(c2, &n2);
        if (n != n2 || memcmp(text, text2, n) != 0) {
                fprintf(stderr, "dump of dump differs:\n%s\n---\n%s\n", text, text2);
                abort();
        }

        free(text);
        free(text2);
        config_unref(c2);
        config_unref(c);
        return 0;
}
