/* SPDX-License-Identifier: MIT */
/* Placeholder until GnuTLS lands: https upstreams are refused when the model is built. */
#include "tls.h"
#include "util.h"

int tls_client_new(const ConfigUpstream *cu, TlsClient **ret, char **ret_error)
{
        if (ret_error && asprintf(ret_error, "upstream '%s': scheme https is not supported yet",
                                  cu->name) < 0)
                *ret_error = NULL;
        return -EOPNOTSUPP;
}

TlsClient *tls_client_free(TlsClient *t)
{
        return NULL;
}

int tls_client_attach(TlsClient *t, Stream *s, const char *server_name, const char *cache_key)
{
        return -EOPNOTSUPP;
}
