/* SPDX-License-Identifier: MIT */
#pragma once

/* Apache APISIX ingress-controller manifests (apiVersion apisix.apache.org/v2, kinds
 * ApisixUpstream and ApisixRoute) read as configuration documents, beside native ones in the
 * same stream. Each is translated into native upstreams and routes of the Config being loaded,
 * so that everything after the loader — validation across files, the model, --dump — sees
 * only the native form.
 *
 * Names: an ApisixUpstream becomes the upstream metadata.name, or "<namespace>_<name>" when
 * metadata.namespace is given. An ApisixRoute becomes one route per spec.http[] rule, named
 * "<name>_<rule>" (with the same "<namespace>_" prefix), or just "<name>" when the rule is
 * named like the ApisixRoute itself, as in the APISIX load-balancing tutorial. Kubernetes names
 * cannot contain '_', so a namespace never blurs into a name; ApisixRoute upstreams[].name
 * resolve in the route's own namespace, as the ingress controller resolves them. Names that
 * still collide (with native ones, or through rule names containing '_') are reported as
 * duplicates, never merged.
 *
 * Whatever has no meaning outside Kubernetes (Services, Secrets, plugins, discovery...) is
 * refused with an error naming the field and why; nothing is silently ignored. */

#include "config/config-internal.h"

/* A ConfigDocumentHook: takes any document with an apiVersion or a kind. Translates the
 * APISIX kinds it knows and reports every other manifest as unsupported. */
int apisix_document_hook(ConfigContext *ctx, yaml_document_t *doc, yaml_node_t *root);

/* Kubernetes' metav1.Duration, which is Go's time.ParseDuration syntax: "5s", "1.5s",
 * "2h45m", "300ms", "0"; units ns, us (µs), ms, s, m, h; a bare number only as "0". Rounds up
 * to whole microseconds. -EINVAL when malformed or negative, -ERANGE above
 * CONFIG_DURATION_MAX. */
int apisix_parse_duration(const char *s, uint64_t *ret_usec);
