/* SPDX-License-Identifier: MIT */
#pragma once

/* The configuration as the YAML files say it, after validation. Immutable once loaded: the
 * model (model.h) is built from it, and a reload builds a new one beside the old. Upstreams and
 * routes are objects of their own, reference-counted and never changed once loaded: a change
 * makes a new Config that shares every object it did not change with the old one. */

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "base/util.h"

typedef enum Scheme {
        SCHEME_HTTP,
        SCHEME_HTTPS,
        _SCHEME_MAX,
        _SCHEME_INVALID = -EINVAL,
} Scheme;

typedef enum PassHost {
        PASS_HOST_PASS,    /* the client's Host header */
        PASS_HOST_NODE,    /* the node's host[:port] */
        PASS_HOST_REWRITE, /* upstream_host */
        _PASS_HOST_MAX,
        _PASS_HOST_INVALID = -EINVAL,
} PassHost;

/* chash: where a request's key comes from (APISIX's hash_on). */
typedef enum HashOn {
        HASH_ON_VARS,   /* remote_addr, uri, request_uri, host, arg_NAME, http_NAME */
        HASH_ON_HEADER, /* a request header, by name */
        HASH_ON_COOKIE, /* a cookie, by name */
        _HASH_ON_MAX,
        _HASH_ON_INVALID = -EINVAL,
} HashOn;

const char *scheme_to_string(Scheme s);
Scheme scheme_from_string(const char *s);
uint16_t scheme_default_port(Scheme s);
const char *pass_host_to_string(PassHost p);
PassHost pass_host_from_string(const char *s);
const char *hash_on_to_string(HashOn h);

/* Where a value came from, for messages. Its file is a name kept alive by whatever holds the
 * mark: a Config (Config.files) for its listeners, an upstream or a route for itself (their
 * `file`); NULL for what came from no file (D-Bus). Listeners, upstreams, routes and route
 * upstreams are marked at their name's value; nodes, certificates and SNI routes at their
 * mapping. */
typedef SourceMark ConfigMark;

typedef enum ListenerProtocol {
        LISTENER_HTTP,            /* HTTP/1.1, routed by the routes: (default) */
        LISTENER_HTTPS,           /* TLS terminated here, then as http */
        LISTENER_TCP,             /* bytes both ways to `upstream`'s nodes */
        LISTENER_TLS_PASSTHROUGH, /* TLS not terminated: routed by the ClientHello's SNI */
        LISTENER_METRICS,         /* GET /metrics: the Prometheus text format, nothing else */
        _LISTENER_PROTOCOL_MAX,
        _LISTENER_PROTOCOL_INVALID = -EINVAL,
} ListenerProtocol;

const char *listener_protocol_to_string(ListenerProtocol p);
ListenerProtocol listener_protocol_from_string(const char *s);

/* A certificate and key a TLS listener presents; picked by SNI, the first is the default. */
typedef struct ConfigCertificate {
        char *cert_file; /* PEM chain */
        char *key_file;  /* PEM key; a relative path is looked up in $CREDENTIALS_DIRECTORY */
        char *ocsp_file; /* DER OCSP response to staple, or NULL */
        ConfigMark mark;
} ConfigCertificate;

/* tls-passthrough: connections whose SNI matches go to `upstream`. */
typedef struct ConfigSniRoute {
        char **server_names; /* "a.example" or "*.example.org"; lower case */
        char *upstream;
        ConfigMark mark;
        ConfigMark upstream_mark;
} ConfigSniRoute;

typedef struct ConfigListener {
        char *name;   /* matched against FileDescriptorName= */
        char *listen; /* "127.0.0.1:9080", "[::1]:9080", "*:80"; NULL when only activated */
        /* Parsed `listen`, valid when address_len > 0. "*:80" and ":80" give [::]:80, meant as
         * one dual-stack socket (IPV6_V6ONLY off); the listener may fall back to 0.0.0.0
         * where IPv6 is missing. */
        struct sockaddr_storage address;
        socklen_t address_len;
        ListenerProtocol protocol;
        ConfigCertificate *certificates; /* https: at least one */
        size_t n_certificates;
        uint64_t ticket_rotate_usec;     /* https: session ticket key lifetime (default 12h) */
        char *upstream;                  /* tcp: the upstream whose nodes take connections */
        ConfigMark upstream_mark;
        bool tls_originate;              /* tcp: `tls: originate`, TLS to the upstream */
        ConfigSniRoute *sni_routes;      /* tls-passthrough */
        size_t n_sni_routes;
        uint64_t idle_timeout_usec;      /* tcp, tls-passthrough, WebSocket: idle both ways
                                            (default 5m) */
        ConfigMark mark;
        char *path; /* "listeners[1]", in the document it was read from: for messages */
} ConfigListener;

/* A node's administrative state (HAProxy's ready, drain and maint): `state:` of a node, set
 * over D-Bus with SetNodeState. */
typedef enum NodeAdminState {
        NODE_ADMIN_READY, /* takes traffic while healthy (default) */
        NODE_ADMIN_DRAIN, /* no new requests; those in flight finish */
        NODE_ADMIN_MAINT, /* no traffic and no probes */
        _NODE_ADMIN_MAX,
        _NODE_ADMIN_INVALID = -EINVAL,
} NodeAdminState;

const char *node_admin_state_to_string(NodeAdminState s);
NodeAdminState node_admin_state_from_string(const char *s);

typedef struct ConfigNode {
        char *host; /* IP literal or domain name, as written (no brackets) */
        uint16_t port; /* the scheme's default port when not given */
        uint32_t weight; /* 0 = out of rotation */
        NodeAdminState state;
        ConfigMark mark;
} ConfigNode;

/* health_check: of an upstream (APISIX's checks, lua-resty-healthcheck's counters). */
typedef enum HealthCheckType {
        HEALTH_CHECK_HTTP,
        HEALTH_CHECK_HTTPS,
        HEALTH_CHECK_TCP,
        _HEALTH_CHECK_TYPE_MAX,
        _HEALTH_CHECK_TYPE_INVALID = -EINVAL,
} HealthCheckType;

const char *health_check_type_to_string(HealthCheckType t);
HealthCheckType health_check_type_from_string(const char *s);

/* HTTP statuses 100..599 as a bitmap (bit status - 100). */
#define HEALTH_STATUS_MIN 100
#define HEALTH_STATUS_MAX 599
#define HEALTH_STATUS_WORDS (((HEALTH_STATUS_MAX - HEALTH_STATUS_MIN + 1) + 63) / 64)
typedef struct HealthStatusSet {
        uint64_t bits[HEALTH_STATUS_WORDS];
} HealthStatusSet;

static inline bool health_status_set_has(const HealthStatusSet *s, unsigned status)
{
        if (status < HEALTH_STATUS_MIN || status > HEALTH_STATUS_MAX)
                return false;
        unsigned i = status - HEALTH_STATUS_MIN;
        return (s->bits[i / 64] >> (i % 64)) & 1;
}

static inline void health_status_set_add(HealthStatusSet *s, unsigned status)
{
        if (status < HEALTH_STATUS_MIN || status > HEALTH_STATUS_MAX)
                return;
        unsigned i = status - HEALTH_STATUS_MIN;
        s->bits[i / 64] |= UINT64_C(1) << (i % 64);
}

/* Counter thresholds count events in a row, each at most 254 (the CRD's range); 0 = that kind
 * of event never changes the state. `interval_usec` is the active checker's period in that
 * state (unused for passive). */
#define HEALTH_COUNTER_MAX 254
typedef struct ConfigHealthHealthy {
        uint64_t interval_usec;
        unsigned successes;
        HealthStatusSet http_statuses;
} ConfigHealthHealthy;

typedef struct ConfigHealthUnhealthy {
        uint64_t interval_usec;
        unsigned http_failures;
        unsigned tcp_failures;
        unsigned timeouts;
        HealthStatusSet http_statuses;
} ConfigHealthUnhealthy;

typedef struct ConfigHealthActive {
        bool enabled; /* `active:` was given */
        HealthCheckType type;
        char *http_path;     /* "/..." (default "/"); NULL while not enabled */
        char *host;          /* Host of the probe; NULL = as the upstream's pass_host says */
        uint16_t port;       /* 0 = the node's port */
        uint64_t timeout_usec;
        unsigned concurrency; /* probes at once for this upstream (default 10) */
        char **headers;      /* "Name: value", NULL-terminated, or NULL */
        int verify;          /* https: 1 = verify as the upstream does (default), 0 = off */
        ConfigHealthHealthy healthy;
        ConfigHealthUnhealthy unhealthy;
} ConfigHealthActive;

typedef struct ConfigHealthPassive {
        bool enabled; /* `passive:` was given; else the built-in connection-failure check */
        ConfigHealthHealthy healthy;
        ConfigHealthUnhealthy unhealthy;
} ConfigHealthPassive;

typedef struct ConfigHealthCheck {
        ConfigHealthActive active;
        ConfigHealthPassive passive;
} ConfigHealthCheck;

/* Every field, those of a part that is off included (they hold the defaults then). */
bool config_health_check_equal(const ConfigHealthCheck *a, const ConfigHealthCheck *b);

typedef struct ConfigTls {
        char *ca_file; /* extra trust anchors beside the system store; NULL = none */
        int verify;    /* 1 = verify certificate and name (default), 0 = off */
        char *sni;     /* NULL = the node's host */
} ConfigTls;

/* What upstreams and routes begin with: they are shared between Configs by reference. */
typedef struct ConfigObject {
        atomic_uint n_ref;
        const char *file; /* the file it was read from (a reference: its marks point into it) */
} ConfigObject;

typedef struct ConfigUpstream {
        ConfigObject object;
        char *name;
        Scheme scheme;
        PassHost pass_host;
        char *upstream_host; /* required with PASS_HOST_REWRITE */
        char *balancer;      /* config_balancer_names: "roundrobin" (default), "least_conn",
                              * "chash", "ewma" */
        HashOn hash_on;      /* chash: what hash_key names (default vars) */
        char *hash_key;      /* chash: a var, header or cookie name; NULL = remote_addr */
        unsigned hash_balance_factor; /* chash: bounded loads, in percent; 0 = none */
        ConfigNode *nodes;
        size_t n_nodes;
        uint64_t connect_timeout_usec;
        uint64_t send_timeout_usec;
        uint64_t read_timeout_usec;
        unsigned retries;        /* further nodes tried after a connect failure */
        unsigned keepalive_pool; /* idle connections kept per node address */
        uint64_t keepalive_idle_usec;
        ConfigTls tls; /* top-level tls: merged in, then the upstream's own block */
        /* Always filled: without `health_check:` the passive part holds the built-in check
         * (connection failures and timeouts only) and active is off. */
        ConfigHealthCheck health_check;
        uint64_t slow_start_usec; /* 0 = none */
        ConfigMark mark;
} ConfigUpstream;

typedef struct ConfigRouteUpstream {
        char *name;
        uint32_t weight;
        ConfigMark mark;
} ConfigRouteUpstream;

typedef struct ConfigRoute {
        ConfigObject object;
        char *name;
        char **paths;   /* NULL-terminated, non-empty; a trailing '*' makes a prefix */
        char **hosts;   /* NULL-terminated or NULL (= any), lower case; "*.example.com" */
        char **methods; /* NULL-terminated or NULL (= any), upper case */
        int priority;   /* higher wins among routes matching the same path */
        bool websocket; /* Upgrade: websocket is passed on and the connection becomes a tunnel */
        ConfigRouteUpstream *upstreams;
        size_t n_upstreams;
        ConfigMark mark;
} ConfigRoute;

typedef struct ConfigDns {
        char **servers; /* "127.0.0.1:5353"; NULL = /etc/resolv.conf */
        uint64_t ttl_min_usec;
        uint64_t ttl_max_usec;
        uint64_t timeout_usec; /* how long a request waits for a first answer */
} ConfigDns;

/* metrics: what the Prometheus endpoint (a `protocol: metrics` listener) shows. */
#define CONFIG_METRICS_BUCKETS_MAX 32
typedef struct ConfigMetrics {
        uint64_t buckets_usec[CONFIG_METRICS_BUCKETS_MAX]; /* histogram bounds, increasing */
        size_t n_buckets; /* 0: the default, 0.5 ms to 60 s */
        bool node_labels; /* series per node (default), or per upstream only */
} ConfigMetrics;

/* store: etcd: the upstreams and routes shared by several instances (README, "Running several
 * instances"). Keys <prefix>upstreams/<name> and <prefix>routes/<name>, each value one upstream
 * or route in the native schema (JSON or YAML). */
typedef struct ConfigEtcd {
        char **endpoints; /* "http://127.0.0.1:2379", NULL-terminated; NULL: no store */
        char *prefix;     /* ends with '/' (default "/lbproxy/") */
        uint64_t timeout_usec; /* of one call (default 5s) */
        char *username;   /* NULL: no authentication */
        char *password;
        /* tls: for https:// endpoints (all or none are): trust beside the system store, and a
         * client certificate with its key (both or neither) for etcd's --client-cert-auth. */
        struct {
                char *ca_file;
                char *cert;
                char *key;
        } tls;
} ConfigEtcd;

typedef struct ConfigStore {
        ConfigEtcd etcd;
} ConfigStore;

typedef struct Config {
        atomic_uint n_ref; /* first: config_derive() copies what follows */
        /* A Config made from another by a change of its upstreams and routes shares the rest:
         * files, listeners, dns and tls are then `base`'s (a reference), the one that read them. */
        struct Config *base;
        char **files; /* the files read, in order (references; the listeners' marks point here) */
        ConfigListener *listeners;
        size_t n_listeners;
        ConfigUpstream **upstreams; /* each a reference, shared with other Configs */
        size_t n_upstreams;
        ConfigRoute **routes;
        size_t n_routes;
        ConfigDns dns;
        ConfigTls tls; /* defaults for every upstream */
        ConfigMetrics metrics;
        ConfigStore store;
        /* What the files said that was taken but deserves a word ("file:line:column: path:
         * message"), NULL-terminated, or NULL: printed by --check, logged at load. */
        char **warnings;

        bool access_log;
        unsigned workers;                /* event loops, one per thread; 0 = one per core */
        uint64_t header_timeout_usec;    /* client: a whole request head must arrive in this */
        uint64_t keepalive_timeout_usec; /* client: idle between requests */
        uint64_t shutdown_grace_usec;    /* SIGTERM: how long requests in flight may go on */
        size_t max_header_bytes;         /* request or response head */
        size_t max_headers;              /* header lines per head */
        size_t max_connections;          /* client connections open at once, all workers
                                          * together; 0: derived from RLIMIT_NOFILE at start */
} Config;

Config *config_ref(Config *c);
Config *config_unref(Config *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(Config *, config_unref);

ConfigUpstream *config_upstream_ref(ConfigUpstream *u);
ConfigUpstream *config_upstream_unref(ConfigUpstream *u);
ConfigRoute *config_route_ref(ConfigRoute *r);
ConfigRoute *config_route_unref(ConfigRoute *r);

/* Loads and validates every path in `paths` (NULL-terminated): a path is a YAML file, or a
 * directory whose *.yaml files are read in name order. Returns 0 and the Config, or a negative
 * errno; on error each problem found was appended to `errors` (one "file:line:column: message"
 * per line, NUL-terminated string owned by the caller, may be NULL to discard), and nothing was
 * half-loaded. -EINVAL for invalid content, other errnos for I/O failures. On success *errors
 * is set to NULL.
 *
 * Files and their `---` documents are applied in order: listeners, upstreams and routes
 * concatenate (names must be unique across all of them), while top-level settings and the
 * timeouts/limits/dns/tls blocks are overridden key by key by later documents. References
 * between routes and upstreams, and "at least one listener", are checked once all are read. */
int config_load(char *const *paths, char **errors, Config **ret);

/* Loads `paths` as config_load() does, then `state`, the runtime state (state.h): a native
 * document as config_dump() writes it, whose upstreams and routes replace those of the files
 * (APISIX manifests' included). Its other keys are skipped: listeners, dns, tls defaults and
 * timeouts stay the files'. The result is checked as one configuration by the same rules as
 * config_load(), so a file's listener naming an upstream the state lacks is an error, reported
 * at the state's upstreams: (file:line:column). Returns and reports as config_load(). */
int config_load_with_state(char *const *paths, const char *state, char **errors, Config **ret);

/* Loads a YAML document from memory (for tests and the fuzzer); `name` stands for the file. */
int config_load_string(const char *name, const char *yaml, size_t len, char **errors,
                       Config **ret);

/* Writes `c` as native YAML, every value explicit (defaults too, and each upstream's tls:
 * with the top-level defaults merged in), such that loading the output gives an equal Config.
 * Exceptions, so that configurations which do not use them dump as they always did: a
 * listener's `protocol: http` and its default idle_timeout, a route's `websocket: false`
 * and an unset max_connections (derived at start) are left out. Returns 0, -ENOMEM, or -EIO when
 * writing failed. */
int config_dump(const Config *c, FILE *f);

/* What a load found wrong, one problem each: the code says what kind of problem it is to a
 * caller that maps it (D-Bus error names), the rest is the message. */
typedef struct ConfigProblem {
        int code;         /* -EINVAL; -EEXIST: a name or node twice; -ENOENT: no such upstream */
        bool in_document; /* about the document of an edit: `path` is a key path in it */
        char *where;      /* "file:line:column", or NULL (a document from no file) */
        char *path;       /* "nodes[1].port", "routes[0].upstreams[1].name"; may be "" */
        char *message;
} ConfigProblem;

typedef struct ConfigProblems {
        ConfigProblem *items; /* in the order of the files and positions they point at */
        size_t n;
        size_t n_dropped; /* beyond what is kept */
} ConfigProblems;

void config_problems_done(ConfigProblems *p);
/* "where: path: message" lines, and "(N more errors not shown)"; NULL when out of memory. */
char *config_problems_join(const ConfigProblems *p);

typedef enum ConfigObjectKind {
        CONFIG_OBJECT_UPSTREAM,
        CONFIG_OBJECT_ROUTE,
} ConfigObjectKind;

/* config_dump() without the upstreams: and routes: (the text ends after listeners:), and one
 * upstream or route as config_dump() writes it among its upstreams: or routes: ("- name: ...",
 * from column 0, in memory): the state is written from these, each object's text made once. */
int config_dump_settings(const Config *c, FILE *f);
int config_dump_item(ConfigObjectKind kind, const void *o, char **ret, size_t *ret_len);
/* One upstream or route as a YAML document of its own (a mapping): a store's value. */
int config_dump_object(ConfigObjectKind kind, const void *o, char **ret, size_t *ret_len);

/* The etcd key prefix the configuration names, or the default; NULL without a store. */
const char *config_etcd_prefix(const Config *c);

/* Looks an upstream or a route up by name; NULL when there is none. */
const ConfigUpstream *config_find_upstream(const Config *c, const char *name);
const ConfigRoute *config_find_route(const Config *c, const char *name);
