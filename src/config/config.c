/* SPDX-License-Identifier: MIT */
/* Loading: paths → files → YAML documents → (hooks | native schema), and the Config's lifetime.
 * The schema lives in config-schema.c, the walker in config-walk.c, a load's problems and the
 * checks over the whole in config-build.c. */

#include <assert.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "config/apisix.h"
#include "config/config-internal.h"
#include "config/config-source.h"

const char *const config_scheme_names[_SCHEME_MAX] = {
        [SCHEME_HTTP] = "http",
        [SCHEME_HTTPS] = "https",
};

const char *const config_pass_host_names[_PASS_HOST_MAX] = {
        [PASS_HOST_PASS] = "pass",
        [PASS_HOST_NODE] = "node",
        [PASS_HOST_REWRITE] = "rewrite",
};

const char *const config_hash_on_names[_HASH_ON_MAX] = {
        [HASH_ON_VARS] = "vars",
        [HASH_ON_HEADER] = "header",
        [HASH_ON_COOKIE] = "cookie",
};

const char *const config_node_admin_state_names[_NODE_ADMIN_MAX] = {
        [NODE_ADMIN_READY] = "ready",
        [NODE_ADMIN_DRAIN] = "drain",
        [NODE_ADMIN_MAINT] = "maint",
};

const char *const config_health_check_type_names[_HEALTH_CHECK_TYPE_MAX] = {
        [HEALTH_CHECK_HTTP] = "http",
        [HEALTH_CHECK_HTTPS] = "https",
        [HEALTH_CHECK_TCP] = "tcp",
};

const char *const config_listener_protocol_names[_LISTENER_PROTOCOL_MAX] = {
        [LISTENER_HTTP] = "http",
        [LISTENER_HTTPS] = "https",
        [LISTENER_TCP] = "tcp",
        [LISTENER_TLS_PASSTHROUGH] = "tls-passthrough",
        [LISTENER_METRICS] = "metrics",
};

static int string_table_lookup(const char *const *table, size_t n, const char *s)
{
        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                if (table[i] && streq(table[i], s))
                        return (int)i;
        return -EINVAL;
}

const char *scheme_to_string(Scheme s)
{
        if (s < 0 || s >= _SCHEME_MAX)
                return NULL;
        return config_scheme_names[s];
}

Scheme scheme_from_string(const char *s)
{
        return (Scheme)string_table_lookup(config_scheme_names, _SCHEME_MAX, s);
}

uint16_t scheme_default_port(Scheme s)
{
        switch (s) {
        case SCHEME_HTTP:
                return 80;
        case SCHEME_HTTPS:
                return 443;
        default:
                return 0;
        }
}

const char *pass_host_to_string(PassHost p)
{
        if (p < 0 || p >= _PASS_HOST_MAX)
                return NULL;
        return config_pass_host_names[p];
}

PassHost pass_host_from_string(const char *s)
{
        return (PassHost)string_table_lookup(config_pass_host_names, _PASS_HOST_MAX, s);
}

const char *hash_on_to_string(HashOn h)
{
        if (h < 0 || h >= _HASH_ON_MAX)
                return NULL;
        return config_hash_on_names[h];
}

const char *listener_protocol_to_string(ListenerProtocol p)
{
        if (p < 0 || p >= _LISTENER_PROTOCOL_MAX)
                return NULL;
        return config_listener_protocol_names[p];
}

ListenerProtocol listener_protocol_from_string(const char *s)
{
        return (ListenerProtocol)string_table_lookup(config_listener_protocol_names,
                                                     _LISTENER_PROTOCOL_MAX, s);
}

const char *node_admin_state_to_string(NodeAdminState s)
{
        if (s < 0 || s >= _NODE_ADMIN_MAX)
                return NULL;
        return config_node_admin_state_names[s];
}

NodeAdminState node_admin_state_from_string(const char *s)
{
        return (NodeAdminState)string_table_lookup(config_node_admin_state_names, _NODE_ADMIN_MAX,
                                                   s);
}

const char *health_check_type_to_string(HealthCheckType t)
{
        if (t < 0 || t >= _HEALTH_CHECK_TYPE_MAX)
                return NULL;
        return config_health_check_type_names[t];
}

HealthCheckType health_check_type_from_string(const char *s)
{
        return (HealthCheckType)string_table_lookup(config_health_check_type_names,
                                                    _HEALTH_CHECK_TYPE_MAX, s);
}

/* ---- file names ---- */

typedef struct ConfigFileName {
        atomic_uint n_ref;
        char name[];
} ConfigFileName;

static ConfigFileName *file_name_header(const char *name)
{
        return (ConfigFileName *)(name - offsetof(ConfigFileName, name));
}

const char *config_file_name_new(const char *name)
{
        size_t l = strlen(name);
        ConfigFileName *f = malloc(sizeof(ConfigFileName) + l + 1);

        if (!f)
                return NULL;
        atomic_init(&f->n_ref, 1);
        memcpy(f->name, name, l + 1);
        return f->name;
}

const char *config_file_name_ref(const char *name)
{
        if (name)
                atomic_fetch_add_explicit(&file_name_header(name)->n_ref, 1,
                                          memory_order_relaxed);
        return name;
}

void config_file_name_unref(const char *name)
{
        ConfigFileName *f;

        if (!name)
                return;
        f = file_name_header(name);
        if (atomic_fetch_sub_explicit(&f->n_ref, 1, memory_order_acq_rel) == 1)
                free(f);
}

static void file_names_free(char **names)
{
        for (char **n = names; n && *n; n++)
                config_file_name_unref(*n);
        free(names);
}

/* ---- objects ---- */

static void config_tls_done(ConfigTls *t)
{
        free(t->ca_file);
        free(t->sni);
}

void config_listener_done(ConfigListener *l)
{
        free(l->path);
        free(l->name);
        free(l->listen);
        for (size_t i = 0; i < l->n_certificates; i++) {
                free(l->certificates[i].cert_file);
                free(l->certificates[i].key_file);
                free(l->certificates[i].ocsp_file);
        }
        free(l->certificates);
        free(l->upstream);
        for (size_t i = 0; i < l->n_sni_routes; i++) {
                strv_free(l->sni_routes[i].server_names);
                free(l->sni_routes[i].upstream);
        }
        free(l->sni_routes);
}

static void object_init(ConfigObject *o, const char *file)
{
        atomic_init(&o->n_ref, 1);
        o->file = config_file_name_ref(file);
}

static void object_ref(ConfigObject *o)
{
        atomic_fetch_add_explicit(&o->n_ref, 1, memory_order_relaxed);
}

/* True when that was the last reference: the caller frees the object. */
static bool object_unref(ConfigObject *o)
{
        if (atomic_fetch_sub_explicit(&o->n_ref, 1, memory_order_acq_rel) != 1)
                return false;
        config_file_name_unref(o->file);
        return true;
}

ConfigUpstream *config_upstream_new(const char *file)
{
        ConfigUpstream *u = calloc(1, sizeof(*u));

        if (u)
                object_init(&u->object, file);
        return u;
}

ConfigUpstream *config_upstream_ref(ConfigUpstream *u)
{
        if (u)
                object_ref(&u->object);
        return u;
}

ConfigUpstream *config_upstream_unref(ConfigUpstream *u)
{
        if (!u || !object_unref(&u->object))
                return NULL;
        free(u->name);
        free(u->upstream_host);
        free(u->balancer);
        free(u->hash_key);
        for (size_t j = 0; j < u->n_nodes; j++)
                free(u->nodes[j].host);
        free(u->nodes);
        config_tls_done(&u->tls);
        config_health_check_done(&u->health_check);
        free(u);
        return NULL;
}

ConfigRoute *config_route_new(const char *file)
{
        ConfigRoute *r = calloc(1, sizeof(*r));

        if (r)
                object_init(&r->object, file);
        return r;
}

ConfigRoute *config_route_ref(ConfigRoute *r)
{
        if (r)
                object_ref(&r->object);
        return r;
}

ConfigRoute *config_route_unref(ConfigRoute *r)
{
        if (!r || !object_unref(&r->object))
                return NULL;
        free(r->name);
        strv_free(r->paths);
        strv_free(r->hosts);
        strv_free(r->methods);
        for (size_t j = 0; j < r->n_upstreams; j++)
                free(r->upstreams[j].name);
        free(r->upstreams);
        free(r);
        return NULL;
}

static void config_upstreams_free(Config *c)
{
        for (size_t i = 0; i < c->n_upstreams; i++)
                config_upstream_unref(c->upstreams[i]);
        free(c->upstreams);
        c->upstreams = NULL;
        c->n_upstreams = 0;
}

static void config_routes_free(Config *c)
{
        for (size_t i = 0; i < c->n_routes; i++)
                config_route_unref(c->routes[i]);
        free(c->routes);
        c->routes = NULL;
        c->n_routes = 0;
}

Config *config_ref(Config *c)
{
        if (c)
                atomic_fetch_add_explicit(&c->n_ref, 1, memory_order_relaxed);
        return c;
}

Config *config_unref(Config *c)
{
        if (!c || atomic_fetch_sub_explicit(&c->n_ref, 1, memory_order_acq_rel) != 1)
                return NULL;

        config_upstreams_free(c);
        config_routes_free(c);
        if (c->base) {
                config_unref(c->base);
                free(c);
                return NULL;
        }
        for (size_t i = 0; i < c->n_listeners; i++)
                config_listener_done(c->listeners + i);
        free(c->listeners);
        strv_free(c->dns.servers);
        strv_free(c->store.etcd.endpoints);
        free(c->store.etcd.prefix);
        free(c->store.etcd.username);
        free(c->store.etcd.password);
        free(c->store.etcd.tls.ca_file);
        free(c->store.etcd.tls.cert);
        free(c->store.etcd.tls.key);
        config_tls_done(&c->tls);
        strv_free(c->warnings);
        /* Last: the listeners' marks point into these. */
        file_names_free(c->files);
        free(c);
        return NULL;
}

_Static_assert(offsetof(Config, n_ref) == 0 && offsetof(Config, base) >= sizeof(atomic_uint),
               "config_derive() copies all of a Config after its reference count");

int config_derive(const Config *c, Config **ret)
{
        _cleanup_(config_unrefp) Config *n = calloc(1, sizeof(Config));

        if (!n)
                return -ENOMEM;
        /* The settings at once, the parts that own memory borrowed from the base, which is
         * referenced; the arrays of upstreams and routes are the new one's. All but the
         * reference count, first in the struct, which another thread may be changing (the state
         * writer's reference). */
        memcpy((char *)n + offsetof(Config, base), (const char *)c + offsetof(Config, base),
               sizeof(Config) - offsetof(Config, base));
        atomic_init(&n->n_ref, 1);
        n->base = config_ref(c->base ? c->base : (Config *)c);
        n->upstreams = calloc(c->n_upstreams + 1, sizeof(ConfigUpstream *));
        n->routes = calloc(c->n_routes + 1, sizeof(ConfigRoute *));
        n->n_upstreams = n->n_routes = 0;
        if (!n->upstreams || !n->routes)
                return -ENOMEM;
        for (size_t i = 0; i < c->n_upstreams; i++)
                n->upstreams[n->n_upstreams++] = config_upstream_ref(c->upstreams[i]);
        for (size_t i = 0; i < c->n_routes; i++)
                n->routes[n->n_routes++] = config_route_ref(c->routes[i]);
        *ret = TAKE_PTR(n);
        return 0;
}

const char *config_etcd_prefix(const Config *c)
{
        if (!c->store.etcd.endpoints)
                return NULL;
        return c->store.etcd.prefix ? c->store.etcd.prefix : "/lbproxy/";
}

const ConfigUpstream *config_find_upstream(const Config *c, const char *name)
{
        if (!c || !name)
                return NULL;
        for (size_t i = 0; i < c->n_upstreams; i++)
                if (streq_ptr(c->upstreams[i]->name, name))
                        return c->upstreams[i];
        return NULL;
}

const ConfigRoute *config_find_route(const Config *c, const char *name)
{
        if (!c || !name)
                return NULL;
        for (size_t i = 0; i < c->n_routes; i++)
                if (streq_ptr(c->routes[i]->name, name))
                        return c->routes[i];
        return NULL;
}

/* ---- errors ---- */

const char *config_escape(const char *s, size_t len, char buf[static CONFIG_ESCAPE_MAX])
{
        /* Leave room for "..." and the NUL. */
        const size_t limit = CONFIG_ESCAPE_MAX - 4;
        size_t o = 0;

        for (size_t i = 0; i < len; i++) {
                unsigned char ch = (unsigned char)s[i];
                size_t need;

                if (ch == '\\' || ch == '\n' || ch == '\t' || ch == '\r')
                        need = 2;
                else if (ch < 0x20 || ch == 0x7f)
                        need = 4;
                else if (ch >= 0xf0)
                        need = 4; /* keep a UTF-8 sequence whole */
                else if (ch >= 0xe0)
                        need = 3;
                else if (ch >= 0xc0)
                        need = 2;
                else
                        need = 1;

                if (o + need > limit) {
                        memcpy(buf + o, "...", 3);
                        o += 3;
                        break;
                }

                switch (ch) {
                case '\\':
                        buf[o++] = '\\';
                        buf[o++] = '\\';
                        break;
                case '\n':
                        buf[o++] = '\\';
                        buf[o++] = 'n';
                        break;
                case '\t':
                        buf[o++] = '\\';
                        buf[o++] = 't';
                        break;
                case '\r':
                        buf[o++] = '\\';
                        buf[o++] = 'r';
                        break;
                default:
                        if (ch < 0x20 || ch == 0x7f) {
                                snprintf(buf + o, 5, "\\x%02x", ch);
                                o += 4;
                        } else if (ch >= 0x80 && ch < 0xc0) {
                                /* A continuation byte whose lead byte already made room. */
                                buf[o++] = (char)ch;
                        } else {
                                buf[o++] = (char)ch;
                        }
                }
        }
        buf[o] = 0;
        return buf;
}

/* ---- YAML helpers ---- */

bool config_node_is_null(const yaml_node_t *node)
{
        const char *v;

        if (!node || node->type != YAML_SCALAR_NODE ||
            node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
                return false;
        v = (const char *)node->data.scalar.value;
        return node->data.scalar.length == 0 || streq(v, "~") || streq(v, "null") ||
               streq(v, "Null") || streq(v, "NULL");
}

yaml_node_t *config_mapping_get(yaml_document_t *doc, yaml_node_t *mapping, const char *key)
{
        size_t l = strlen(key);

        if (!mapping || mapping->type != YAML_MAPPING_NODE)
                return NULL;
        for (yaml_node_pair_t *p = mapping->data.mapping.pairs.start;
             p < mapping->data.mapping.pairs.top; p++) {
                yaml_node_t *k = yaml_document_get_node(doc, p->key);

                if (k && k->type == YAML_SCALAR_NODE && k->data.scalar.length == l &&
                    memcmp(k->data.scalar.value, key, l) == 0)
                        return yaml_document_get_node(doc, p->value);
        }
        return NULL;
}

/* ---- documents ---- */

/* Manifests (apiVersion/kind) go to apisix.c, which translates the APISIX ones. */
static const ConfigDocumentHook document_hooks[] = {
        apisix_document_hook,
};

static int apply_document(ConfigContext *ctx, yaml_document_t *doc)
{
        yaml_node_t *root = yaml_document_get_root_node(doc);
        ConfigMark m;
        int r;

        /* An empty document ("---" alone, or a file of comments) says nothing. */
        if (!root || config_node_is_null(root))
                return 0;

        if (root->type != YAML_MAPPING_NODE) {
                m = config_mark(ctx, root);
                config_error(ctx, &m, NULL, "expected a mapping at the top level, got %s",
                             config_node_kind(root));
                return 0;
        }

        ctx->document = doc;
        ctx->visits = 0;
        ctx->max_visits = (size_t)(doc->nodes.top - doc->nodes.start) * CONFIG_VISITS_FACTOR +
                          CONFIG_VISITS_FLOOR;
        ctx->too_complex = false;

        /* The runtime state is native YAML, as config_dump() writes it. */
        for (size_t i = 0; i < ELEMENTSOF(document_hooks) && !ctx->reading_state; i++) {
                r = document_hooks[i](ctx, doc, root);
                if (r != 0)
                        return r < 0 ? r : 0;
        }

        return config_schema_apply(ctx, doc, root);
}

/* libyaml reports reader errors (bad UTF-8, control characters) as a byte offset only. */
static ConfigMark offset_to_mark(const ConfigContext *ctx, const char *data, size_t len,
                                 size_t offset)
{
        ConfigMark m = {.file = ctx->file, .line = 1, .column = 1};

        for (size_t i = 0; i < offset && i < len; i++) {
                unsigned char ch = (unsigned char)data[i];

                if (ch == '\n') {
                        m.line++;
                        m.column = 1;
                } else if ((ch & 0xc0) != 0x80) {
                        m.column++;
                }
        }
        return m;
}

static int report_parser_error(ConfigContext *ctx, const yaml_parser_t *p, const char *data,
                               size_t len)
{
        const char *problem = p->problem ? p->problem : "invalid YAML";
        ConfigMark m;

        ctx->syntax_error = true;

        switch (p->error) {
        case YAML_MEMORY_ERROR:
                return -ENOMEM;

        case YAML_READER_ERROR:
                m = offset_to_mark(ctx, data, len, p->problem_offset);
                if (p->problem_value >= 0)
                        config_error(ctx, &m, NULL, "%s (0x%02X)", problem, p->problem_value);
                else
                        config_error(ctx, &m, NULL, "%s", problem);
                return 0;

        default:
                m = (ConfigMark){
                        .file = ctx->file,
                        .line = (unsigned)p->problem_mark.line + 1,
                        .column = (unsigned)p->problem_mark.column + 1,
                };
                if (p->context)
                        config_error(ctx, &m, NULL, "%s (%s at %u:%u)", problem, p->context,
                                     (unsigned)p->context_mark.line + 1,
                                     (unsigned)p->context_mark.column + 1);
                else
                        config_error(ctx, &m, NULL, "%s", problem);
                return 0;
        }
}

static int strv_push(char ***l, char *s)
{
        size_t n = strv_length(*l);
        char **t;

        t = reallocarray(*l, n + 2, sizeof(char *));
        if (!t)
                return -ENOMEM;
        t[n] = s;
        t[n + 1] = NULL;
        *l = t;
        return 0;
}

/* Takes the file's name into the load's files, where marks will point, then applies each of its
 * documents in turn. A syntax error ends the file: libyaml cannot resume after one. */
static int load_buffer(ConfigContext *ctx, const char *name, const char *data, size_t len)
{
        yaml_parser_t parser;
        const char *copy;
        int r = 0;

        copy = config_file_name_new(name);
        if (!copy)
                return -ENOMEM;
        if (strv_push(&ctx->files, (char *)copy) < 0) {
                config_file_name_unref(copy);
                return -ENOMEM;
        }
        ctx->file = copy;
        ctx->file_index = strv_length(ctx->files) - 1;

        if (!yaml_parser_initialize(&parser))
                return -ENOMEM;
        yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);

        for (;;) {
                yaml_document_t doc;

                if (!yaml_parser_load(&parser, &doc)) {
                        r = report_parser_error(ctx, &parser, data, len);
                        break;
                }
                if (!yaml_document_get_root_node(&doc)) {
                        /* The end of the stream. */
                        yaml_document_delete(&doc);
                        break;
                }

                r = apply_document(ctx, &doc);
                ctx->document = NULL;
                yaml_document_delete(&doc);
                if (r < 0)
                        break;
        }

        yaml_parser_delete(&parser);
        return r;
}

static int read_file(const char *path, char **ret_data, size_t *ret_len)
{
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *data = NULL;
        size_t len = 0, size = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;

        for (;;) {
                ssize_t n;

                if (len == size) {
                        size_t nsize = size ? size * 2 : 16384;
                        char *t;

                        if (nsize < size)
                                return -EFBIG;
                        t = realloc(data, nsize);
                        if (!t)
                                return -ENOMEM;
                        data = t;
                        size = nsize;
                }
                n = read(fd, data + len, size - len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                len += (size_t)n;
        }

        *ret_data = TAKE_PTR(data);
        *ret_len = len;
        return 0;
}

static int load_file(ConfigContext *ctx, const char *path)
{
        _cleanup_free_ char *data = NULL;
        size_t len = 0;
        int r;

        r = read_file(path, &data, &len);
        if (r < 0) {
                config_error(ctx, NULL, NULL, "%s: %s", path, strerror(-r));
                return r;
        }
        return load_buffer(ctx, path, data, len);
}

static int compare_strings(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool endswith_slash(const char *s)
{
        size_t l = strlen(s);

        return l > 0 && s[l - 1] == '/';
}

static bool is_yaml_name(const char *n)
{
        size_t l = strlen(n);

        /* Hidden files are editors' and tools' business, not ours. */
        return n[0] != '.' && l > 5 && streq(n + l - 5, ".yaml");
}

/* The directory's *.yaml regular files (or links to them), in byte order of their names so
 * that "10-base.yaml" < "20-site.yaml" whatever the locale. */
static int load_directory(ConfigContext *ctx, const char *path)
{
        _cleanup_strv_free_ char **names = NULL;
        DIR *d;
        int r = 0;

        d = opendir(path);
        if (!d) {
                r = -errno;
                config_error(ctx, NULL, NULL, "%s: %s", path, strerror(-r));
                return r;
        }

        for (;;) {
                struct dirent *de;
                struct stat st;
                char *full;

                errno = 0;
                de = readdir(d);
                if (!de) {
                        if (errno != 0) {
                                r = -errno;
                                config_error(ctx, NULL, NULL, "%s: %s", path, strerror(-r));
                        }
                        break;
                }
                if (!is_yaml_name(de->d_name))
                        continue;

                if (asprintf(&full, "%s%s%s", path, endswith_slash(path) ? "" : "/", de->d_name) <
                    0) {
                        r = -ENOMEM;
                        break;
                }
                if (stat(full, &st) < 0 || !S_ISREG(st.st_mode)) {
                        /* A dangling link or a directory named *.yaml: not a config file. */
                        free(full);
                        continue;
                }
                r = strv_push(&names, full);
                if (r < 0) {
                        free(full);
                        break;
                }
        }
        closedir(d);
        if (r < 0)
                return r;

        if (!names)
                return 0;
        qsort(names, strv_length(names), sizeof(char *), compare_strings);
        for (char **n = names; *n; n++) {
                r = load_file(ctx, *n);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int load_path(ConfigContext *ctx, const char *path)
{
        struct stat st;

        if (stat(path, &st) < 0) {
                int r = -errno;

                config_error(ctx, NULL, NULL, "%s: %s", path, strerror(-r));
                return r;
        }
        if (S_ISDIR(st.st_mode))
                return load_directory(ctx, path);
        return load_file(ctx, path);
}

static int load_paths(ConfigContext *ctx, char *const *paths)
{
        int r = 0;

        if (!paths || !paths[0]) {
                config_error(ctx, NULL, NULL, "no configuration files given");
                return -EINVAL;
        }
        for (char *const *p = paths; r >= 0 && *p; p++)
                r = load_path(ctx, *p);
        return r;
}

/* ---- sources that read files ---- */

int config_build_read_paths(ConfigBuild *b, char *const *paths)
{
        return load_paths(b, paths);
}

int config_build_read_objects(ConfigBuild *b, const char *path)
{
        int r;

        b->reading_state = true;
        r = load_file(b, path);
        b->reading_state = false;
        /* A state without upstreams: (an empty file) is still what lacks them. */
        if (r >= 0 && !b->state_mark.file)
                b->state_mark = (ConfigMark){.file = b->file, .line = 1, .column = 1};
        return r;
}

static int contribute_files(const ConfigSource *s, ConfigBuild *b)
{
        return config_build_read_paths(b, s->data);
}

ConfigSource config_source_files(char *const *paths)
{
        return (ConfigSource){.name = "files", .contribute = contribute_files, .data = paths};
}

/* The state: its upstreams and routes in place of those given so far; the listeners' references
 * are checked against them. */
static int contribute_state(const ConfigSource *s, ConfigBuild *b)
{
        config_build_replace_objects(b);
        return config_build_read_objects(b, s->data);
}

ConfigSource config_source_state(const char *path)
{
        return (ConfigSource){.name = "state", .contribute = contribute_state, .data = path};
}

int config_load(char *const *paths, char **errors, Config **ret)
{
        ConfigSource s = config_source_files(paths);

        return config_build(&s, 1, ret, NULL, errors);
}

int config_load_with_state(char *const *paths, const char *state, char **errors, Config **ret)
{
        ConfigSource s[] = {config_source_files(paths), config_source_state(state)};

        assert(state);
        return config_build(s, ELEMENTSOF(s), ret, NULL, errors);
}

int config_load_string(const char *name, const char *yaml, size_t len, char **errors, Config **ret)
{
        ConfigContext ctx;
        int r;

        assert(ret);

        r = config_context_new(&ctx, NULL);
        if (r < 0) {
                if (errors)
                        *errors = NULL;
                return r;
        }

        r = load_buffer(&ctx, name ? name : "<string>", yaml ? yaml : "", yaml ? len : 0);
        return config_context_conclude(&ctx, r, NULL, errors, ret);
}
