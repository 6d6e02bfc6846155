/* SPDX-License-Identifier: MIT */
#pragma once

/* The key a chash upstream hashes a request by (hash_on, hash_key: APISIX's names), hashed to
 * the 64 bits the balancer takes. Computed while the request head is at hand, once per
 * request: retries on other nodes walk the ring from the same key. */

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "http/http1.h"

/* `h` may be NULL (a tcp or tls-passthrough session: only the client's address is known). A
 * request without the key hashes the client's address, as APISIX does. */
uint64_t balance_key(const ConfigUpstream *cu, const HttpHead *h, const char *client_ip,
                     size_t client_ip_len);
