/* SPDX-License-Identifier: MIT */
#include <assert.h>
#include <errno.h>
#include <string.h>

#include "tls/tls-sni.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
        char name[TLS_SNI_NAME_MAX + 1];
        ssize_t r = tls_sni_parse(data, size, name);

        assert(r == -EAGAIN || r == -EBADMSG || r >= 0);
        if (r > 0) {
                assert((size_t)r <= TLS_SNI_NAME_MAX);
                assert(strlen(name) == (size_t)r);
        }
        return 0;
}
