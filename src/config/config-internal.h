/* SPDX-License-Identifier: MIT */
#pragma once

/* Shared between config.c (files, documents, errors, cross-file checks), config-schema.c (the
 * table-driven YAML→struct mapping) and config-dump.c, and the interface a future document
 * translator (APISIX manifests) plugs into. Not for the rest of the daemon: it sees config.h. */

#include <sys/types.h>
#include <yaml.h>

#include "base/hashmap.h"
#include "config/config.h"
#include "config/config-tree.h"

/* File names that marks point into, shared by reference: a Config holds one for each file it
 * read, and each of its upstreams and routes one for its own, so that an object shared by a
 * later Config keeps the name its marks show. */
const char *config_file_name_new(const char *name);
const char *config_file_name_ref(const char *name);
void config_file_name_unref(const char *name);

/* A new, empty upstream or route (one reference) read from `file` (may be NULL); NULL when out
 * of memory. */
ConfigUpstream *config_upstream_new(const char *file);
ConfigRoute *config_route_new(const char *file);

/* A new Config equal to `c`, sharing its upstreams and routes (new arrays of references) and
 * the rest (through `base`). 0 or -ENOMEM. */
int config_derive(const Config *c, Config **ret);

/* Stored errors beyond this are only counted: a fuzzed or badly broken file must not produce
 * megabytes of messages. */
#define CONFIG_ERRORS_MAX 100

/* A walk may visit at most this many times the number of nodes in the document (plus a floor):
 * aliases share nodes, so `[*a, *a, ...]` nested a few levels would otherwise expand
 * exponentially ("billion laughs"). */
#define CONFIG_VISITS_FACTOR 16
#define CONFIG_VISITS_FLOOR 4096

/* Durations above this are refused so that `now + timeout` can never overflow. */
#define CONFIG_DURATION_MAX (UINT64_C(365) * 24 * 3600 * USEC_PER_SEC)

/* Enough for "18446744073709551615us". */
#define CONFIG_DURATION_STR_MAX 32

/* A key path in a message: "upstreams[3].nodes[1].port", or an APISIX document's label (a kind
 * and two Kubernetes names, up to 384 bytes) and its path. */
#define CONFIG_PATH_MAX 640

/* Enough for a quoted, escaped, truncated user string inside a message. */
#define CONFIG_ESCAPE_MAX 96

/* The longest name of a listener, upstream or route: systemd's limit for FileDescriptorName=,
 * which listener names must match. */
#define CONFIG_NAME_MAX 255

/* Ranges the schema checks (and the APISIX translator, on its keys). */
#define CONFIG_HEALTH_CONCURRENCY_MAX 1000 /* probes at once per upstream */
#define CONFIG_PORT_MAX 65535
#define CONFIG_WEIGHT_MAX 10000 /* nodes and route upstreams; 0 = out of rotation */
#define CONFIG_RETRIES_MAX 100
#define CONFIG_KEEPALIVE_POOL_MAX 10000

/* Sizes of what a configuration holds, checked wherever it comes from (files, APISIX manifests,
 * D-Bus, the runtime state) by one check each in config-values.c. Far above real use, they
 * bound what one value or one call can cost: a change re-reads the one object it changes, and
 * the state file is rewritten whole. Documented in lbproxy.yaml(5) and README.md. */
#define CONFIG_ROUTE_PATH_MAX 4096 /* bytes: within the default max_header_bytes */
#define CONFIG_METHOD_MAX 32       /* characters; the longest registered method has 17 */
#define CONFIG_NODES_MAX 4096      /* per upstream (the benchmark runs 1,000) */
#define CONFIG_ROUTE_UPSTREAMS_MAX 64
#define CONFIG_ROUTE_PATHS_MAX 64
#define CONFIG_ROUTE_HOSTS_MAX 256
#define CONFIG_ROUTE_METHODS_MAX 32
#define CONFIG_SERVER_NAMES_MAX 256 /* per SNI route */
#define CONFIG_HEALTH_HEADERS_MAX 32 /* per health check */
#define CONFIG_HEALTH_HEADER_MAX 1024 /* bytes, "Name: value" */

/* A list's limit and the words its message uses. */
typedef struct ConfigCount {
        const char *items; /* "nodes" */
        const char *per;   /* "upstream" */
        size_t max;
} ConfigCount;

extern const ConfigCount config_count_nodes;
extern const ConfigCount config_count_route_upstreams;
extern const ConfigCount config_count_route_paths;
extern const ConfigCount config_count_route_hosts;
extern const ConfigCount config_count_route_methods;
extern const ConfigCount config_count_server_names;
extern const ConfigCount config_count_health_headers;
extern const ConfigCount config_count_health_statuses;

/* Enough for "too many server names (18446744073709551615; at most 18446744073709551615 per
 * SNI route)". */
#define CONFIG_COUNT_STR_MAX 112

/* NULL when `n` items fit `count`, else why not, in `buf`: "too many nodes (5000; at most 4096
 * per upstream)". Callers put the field's name before it. */
const char *config_check_count(const ConfigCount *count, size_t n,
                               char buf[static CONFIG_COUNT_STR_MAX]);

/* Listener defaults and ranges. Session tickets live at most 7 days (RFC 8446 4.6.1). */
#define CONFIG_TICKET_ROTATE_DEFAULT (UINT64_C(12) * 3600 * USEC_PER_SEC)
#define CONFIG_TICKET_ROTATE_MIN USEC_PER_SEC
#define CONFIG_TICKET_ROTATE_MAX (UINT64_C(7) * 24 * 3600 * USEC_PER_SEC)
#define CONFIG_IDLE_TIMEOUT_DEFAULT (UINT64_C(5) * 60 * USEC_PER_SEC)

typedef struct ConfigError {
        size_t file_index; /* position in Config.files, for sorting */
        unsigned line, column;
        size_t seq; /* report order, to keep the sort stable */
        ConfigProblem problem;
} ConfigError;

/* The state of one load: the Config under construction, where we are, what went wrong so far
 * and the name indexes that span every file. */
typedef struct ConfigContext {
        Config *config;

        /* The files read in this load, in order (references): problems are sorted by them, and a
         * Config that owns its listeners keeps them (Config.files) for their marks. */
        char **files;
        /* The file being read; `file` points into `files`. NULL for a document built in
         * memory (config-tree.h), whose problems carry key paths only. */
        const char *file;
        size_t file_index;
        yaml_document_t *document;

        ConfigError *errors;
        size_t n_errors;  /* stored */
        char **warnings;  /* config_warning(), NULL-terminated; handed to the Config */
        size_t n_warnings;
        size_t n_dropped; /* beyond CONFIG_ERRORS_MAX */
        bool oom;         /* an error could not even be recorded */

        /* Listener names and addresses seen so far, across files (ConfigName by key), so
         * duplicates are reported with the path they have in their own document. */
        Hashmap *listener_names;
        Hashmap *listener_addresses;

        /* Where each upstream and route of `config` was read in this load ("upstreams[3]",
         * "ApisixRoute/r: spec.http[0]", "" for an edit's document), same index; NULL (or
         * beyond n_*_paths) for one taken over from an earlier Config, whose problems name it
         * instead ("route 'r': ..."). Listeners keep theirs (ConfigListener.path). */
        char **upstream_paths;
        size_t n_upstream_paths;
        char **route_paths;
        size_t n_route_paths;

        /* An edit (config_edit_apply()): the upstream or route read from its document, whose
         * problems are the caller's (ConfigProblem.in_document); -1 for none. */
        ConfigObjectKind edited_kind;
        ssize_t edited_index;
        bool walking_edit;
        /* A document is being read as one object (not as items of a file's lists). */
        bool walking_object;

        /* The last `listeners:` key seen, where "at least one listener" is reported. */
        ConfigMark listeners_mark;
        bool listeners_invalid; /* a `listeners:` that was not a sequence */
        /* The last `dns:` block seen, where ttl_min > ttl_max is reported. */
        ConfigMark dns_mark;

        /* libyaml gave up on some file: its later documents were not read. */
        bool syntax_error;

        /* config_load_with_state(): the runtime state file is being read (only its upstreams
         * and routes are), and, once read, where its upstreams are: a file's listener whose
         * upstream the state lacks is reported there. */
        bool reading_state;
        ConfigMark state_mark;

        /* Alias-expansion guard for the document being walked. */
        size_t visits, max_visits;
        bool too_complex;
} ConfigContext;

/* A per-document hook looks at a document before the native schema does. It returns 0 when the
 * document is not its kind (the next hook, then the native schema, get it), 1 when it consumed
 * the document (having applied it to ctx->config or reported errors through config_error()),
 * or a negative errno on a fatal failure (-ENOMEM). `root` is a mapping. */
typedef int (*ConfigDocumentHook)(ConfigContext *ctx, yaml_document_t *doc, yaml_node_t *root);

/* Appends "file:line:column: path: message" (the location when `mark` is non-NULL and has a
 * file, the path when non-empty). Never fails: out of memory is remembered in ctx->oom. The
 * problem's code is -EINVAL; config_error_code() gives another (-EEXIST, -ENOENT). */
void config_error(ConfigContext *ctx, const ConfigMark *mark, const char *path, const char *fmt,
                  ...) _printf_(4, 5);
void config_error_code(ConfigContext *ctx, int code, bool in_document, const ConfigMark *mark,
                       const char *path, const char *fmt, ...) _printf_(6, 7);

/* Something read and taken that deserves a word (a spelling accepted for compatibility): a
 * line "file:line:column: path: message" in the Config's warnings, which does not fail the
 * load. Out of memory is remembered in ctx->oom. */
void config_warning(ConfigContext *ctx, const ConfigMark *mark, const char *path,
                    const char *fmt, ...) _printf_(4, 5);

ConfigMark config_mark(const ConfigContext *ctx, const yaml_node_t *node);

/* Quotes a user string for a message: printable ASCII as is, the rest escaped, long strings
 * cut, so that one error stays one line. Returns buf. */
const char *config_escape(const char *s, size_t len, char buf[static CONFIG_ESCAPE_MAX]);

/* Remembers `key` in `*map` at `mark`; if it was already there, reports "path: duplicate <what>
 * 'key' (first defined at file:line:column)" at `mark`. Returns 0 or -ENOMEM. */
int config_register_name(ConfigContext *ctx, Hashmap **map, const char *what, const char *key,
                         const ConfigMark *mark, const char *path);

/* Says where the upstream or route just appended to ctx->config was read (its path in the
 * document: "upstreams[3]"), for the problems found once everything is read; or where object
 * `index` was. 0 or -ENOMEM. */
int config_note_object(ConfigContext *ctx, ConfigObjectKind kind, const char *path);
int config_set_object_path(ConfigContext *ctx, ConfigObjectKind kind, size_t index,
                           const char *path);
/* Object `index` was removed: the paths after it move up. */
void config_forget_object_path(ConfigContext *ctx, ConfigObjectKind kind, size_t index);

/* config-build.c: a load from start to end. config_context_new() starts from `config` (taken
 * over), or from the defaults when it is NULL. config_context_drop_objects() forgets the
 * upstreams and routes read so far (the state replaces the files'). config_context_conclude()
 * runs the checks over the whole, hands the Config over on success, the problems (and/or their
 * text) on failure, and ends the load. */
int config_context_new(ConfigContext *ctx, Config *config);
void config_context_drop_objects(ConfigContext *ctx);
int config_context_conclude(ConfigContext *ctx, int r, ConfigProblems *ret_problems,
                            char **ret_errors, Config **ret);

/* The value of `key` in a mapping node, or NULL. */
yaml_node_t *config_mapping_get(yaml_document_t *doc, yaml_node_t *mapping, const char *key);

/* A plain `~`, `null` or empty scalar: the same as the key being absent. */
bool config_node_is_null(const yaml_node_t *node);

/* "a scalar", "a sequence", "a mapping" or "null", for "expected X, got Y". */
const char *config_node_kind(const yaml_node_t *node);

/* config-schema.c: the defaults of a fresh Config, and the native document walker. */
void config_schema_init(Config *c);
/* A YAML boolean word ("true", "no", ...): true with *ret set, false for anything else. */
bool config_boolean_word(const char *v, bool *ret);
/* The retries of an upstream that does not say: every other node once. */
unsigned config_upstream_default_retries(size_t n_nodes);
/* The defaults of an upstream, before any of its keys are read. tls.verify stays -1 and
 * tls.ca_file NULL, to be inherited from the top-level tls: block; balancer stays NULL, which
 * means config_balancer_names[0]. */
void config_upstream_init(ConfigUpstream *u);
int config_schema_apply(ConfigContext *ctx, yaml_document_t *doc, yaml_node_t *root);
/* Reports a node an upstream lists twice (`path` is the list's: "upstreams[0].nodes"). 0 or
 * -ENOMEM. */
int config_check_nodes(ConfigContext *ctx, const ConfigUpstream *u, const char *path);
/* Whether a problem was reported at `path` or below it ("" is everything). */
bool config_has_errors_under(const ConfigContext *ctx, const char *path);
/* Reads `root` (a mapping of ctx->document) as one upstream or route, as an item of a file's
 * upstreams: or routes: would be read, its paths starting at `path` ("" gives "nodes[1].port").
 * Returns 0 and the object, or -ENOMEM. */
int config_schema_walk_object(ConfigContext *ctx, ConfigObjectKind kind, yaml_node_t *root,
                              const char *path, void **ret);

/* config-tree.c, for the loader and the dumper: a tree's document, and nodes with the
 * style the dumper wants them written in. Emitting consumes the tree. */
yaml_document_t *config_tree_document(ConfigTree *t);
/* A tree whose root is a block sequence (config_tree_root() names it). */
int config_tree_new_sequence(ConfigTree **ret);
int config_tree_add_scalar_styled(ConfigTree *t, const char *s, yaml_scalar_style_t style);
int config_tree_add_mapping_styled(ConfigTree *t, bool flow);
int config_tree_add_sequence_styled(ConfigTree *t, bool flow);
int config_tree_emit(ConfigTree *t, yaml_emitter_t *e);

/* config-dump.c: an upstream or route as the keys of `mapping`, as config_dump() writes it. */
int config_dump_upstream(ConfigTree *t, int mapping, const ConfigUpstream *u);
int config_dump_route(ConfigTree *t, int mapping, const ConfigRoute *r);
/* The defaults of a listener before its keys are read (protocol http, ticket_rotate 12h,
 * idle_timeout 5m); and what a listener owns, freed (config.c). */
void config_listener_init(ConfigListener *l);
void config_listener_done(ConfigListener *l);

/* config-values.c. Each check returns NULL when `s` is fine, else why it is not; those taking
 * a non-const string may normalize it in place. */
const char *config_check_name(char *s);       /* [A-Za-z0-9_.-]{1,255} */
const char *config_check_node_host(char *s);  /* host name or IP; strips [] off IPv6 */
const char *config_check_route_host(char *s); /* lower-cases; "*.example.com", "[::1]" */
const char *config_check_host_port(char *s);  /* a Host header: host, IPv4, [IPv6], :port */
const char *config_check_sni(char *s);        /* a host name, not an IP */
const char *config_check_path(char *s);       /* "/..." with '*' only last */
const char *config_check_method(char *s);     /* an HTTP token; upper-cases */
const char *config_check_probe_path(char *s);  /* "/..." with a query, no fragment */
const char *config_check_probe_header(char *s); /* "Name: value", no CR/LF */
const char *config_check_dns_server(char *s); /* "ip", "ip:port", "[ipv6]:port", "ipv6" */
/* "http://ip:port", "http://[ipv6]:port" (numeric: etcd is spoken to from the control loop,
 * which resolves nothing). */
const char *config_check_etcd_endpoint(char *s);
/* A key prefix: begins and ends with '/', no control characters. */
const char *config_check_etcd_prefix(char *s);
/* A file lbproxy can read now (store.etcd.tls's files). */
const char *config_check_readable_file(char *s);
/* How a node is told from another: "::1" and "0::1" are one address, "Example.com" and
 * "example.com" one name. `host` as stored (normalized by config_check_node_host()). */
#define CONFIG_NODE_KEY_MAX 270
const char *config_node_key(const char *host, uint16_t port, char buf[static CONFIG_NODE_KEY_MAX]);
const char *config_check_absolute_path(char *s); /* "/..." */
/* A key file: absolute, or the name of a credential (LoadCredential=), which has no '/'. */
const char *config_check_key_path(char *s);
/* A TLS server name (SNI) to match: a host name, or "*." and one, lower-cased; no IP. */
const char *config_check_server_name(char *s);

/* "ip:port", "[ipv6]:port", "*:port" / ":port" (with allow_wildcard; gives [::]), or, when
 * default_port is not 0, "ip" and a bare "ipv6". Numeric only, no resolver. */
const char *config_parse_address(const char *s, uint16_t default_port, bool allow_wildcard,
                                 struct sockaddr_storage *ret, socklen_t *ret_len);

/* "500ms", "1.5s", "2m", "1h30m", "100us", "1d", or a plain number of seconds. -EINVAL when
 * malformed (negative included), -ERANGE above CONFIG_DURATION_MAX. */
int config_parse_duration(const char *s, uint64_t *ret_usec);
/* The same with another syntax: config_duration_go is Go's time.ParseDuration (Kubernetes'
 * metav1.Duration, in APISIX manifests): "5s", "1.5s", "2h45m", "300ms", ns and µs too, a
 * bare number only as "0", rounded up to whole microseconds. The hint says what it expects, for
 * messages. */
typedef struct ConfigDurationSyntax ConfigDurationSyntax;
extern const ConfigDurationSyntax config_duration_native;
extern const ConfigDurationSyntax config_duration_go;
int config_parse_duration_as(const char *s, const ConfigDurationSyntax *syntax,
                             uint64_t *ret_usec);
const char *config_duration_hint(const ConfigDurationSyntax *syntax);
/* The shortest exact form config_parse_duration() reads back: "90s", "1500ms", "2h". */
const char *config_format_duration(uint64_t usec, char buf[static CONFIG_DURATION_STR_MAX]);

extern const char *const config_scheme_names[_SCHEME_MAX];
extern const char *const config_pass_host_names[_PASS_HOST_MAX];
extern const char *const config_listener_protocol_names[_LISTENER_PROTOCOL_MAX];
extern const char *const config_hash_on_names[_HASH_ON_MAX];
extern const char *const config_node_admin_state_names[_NODE_ADMIN_MAX];
extern const char *const config_health_check_type_names[_HEALTH_CHECK_TYPE_MAX];

/* config.c: an upstream's health_check. _init() gives what an upstream without one has: active
 * off (its fields at APISIX's defaults, http_path NULL) and passive the built-in check
 * (connection failures and timeouts only). _passive_init() gives APISIX's passive defaults,
 * for a `passive:` that is written. _done() frees what the check owns. */
void config_health_check_init(ConfigHealthCheck *hc);
void config_health_passive_init(ConfigHealthPassive *p);
void config_health_check_done(ConfigHealthCheck *hc);
/* A value a choice knows but refuses, and why; a list ends with name NULL. */
typedef struct ConfigChoiceRefusal {
        const char *name;
        const char *why;
} ConfigChoiceRefusal;
/* The balancers balancer.h knows; the first is the default. The one table the loader, D-Bus
 * (whose options are the loader's keys) and the APISIX translator read. */
#define CONFIG_BALANCER_MAX 4
extern const char *const config_balancer_names[CONFIG_BALANCER_MAX];
/* chash's hash_on values refused by name, and why (APISIX has them). */
extern const ConfigChoiceRefusal config_hash_on_refusals[];
/* hash_balance_factor: 0 (off), or a percentage of the average load above 100. */
#define CONFIG_HASH_BALANCE_FACTOR_MAX 10000
/* Checks the chash keys of `u` (hash_key against hash_on; each only with balancer chash).
 * nodes[] are where each key's value was (NULL: absent), keys[] their names in this document
 * ({"hash_on", "hash_key", "hash_balance_factor", "balancer"}, or APISIX's), `at` and `path`
 * the mapping holding them. Reports through config_node_error(). */
void config_check_hash(ConfigContext *ctx, const ConfigUpstream *u, yaml_node_t *const nodes[3],
                       const char *const keys[4], yaml_node_t *at, const char *path);
