/* SPDX-License-Identifier: MIT */
/* One load, whatever it reads (files, the state, an edit's document): the problems it finds and
 * the checks over the whole once everything is read. Names must be unique and references must
 * name an upstream there is; those checks look at every upstream and route of the result, in
 * one pass each with a hash map, whether an object was read in this load or taken over from an
 * earlier Config, so a change over D-Bus is held to exactly what a file is. */

#include <assert.h>
#include <stdarg.h>
#include <stdint.h>

#include "config/config-internal.h"
#include "config/config-source.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(Hashmap *, hashmap_free);

/* ---- problems ---- */

static size_t config_file_index(const ConfigContext *ctx, const char *file)
{
        size_t n = 0;

        for (; ctx->files && ctx->files[n]; n++)
                if (ctx->files[n] == file)
                        return n;
        return n;
}

static void problem_done(ConfigProblem *p)
{
        free(p->where);
        free(p->path);
        free(p->message);
}

static void report(ConfigContext *ctx, int code, bool in_document, const ConfigMark *mark,
                   const char *path, const char *fmt, va_list ap)
{
        bool has_mark = mark && mark->file;
        ConfigProblem p = {.code = code, .in_document = in_document};
        ConfigError *e;

        if (ctx->n_errors >= CONFIG_ERRORS_MAX) {
                ctx->n_dropped++;
                return;
        }
        if (vasprintf(&p.message, fmt, ap) < 0) {
                ctx->oom = true;
                return;
        }
        p.path = strdup(path ? path : "");
        if (has_mark && asprintf(&p.where, "%s:%u:%u", mark->file, mark->line, mark->column) < 0)
                p.where = NULL;
        e = reallocarray(ctx->errors, ctx->n_errors + 1, sizeof(ConfigError));
        if (!p.path || (has_mark && !p.where) || !e) {
                problem_done(&p);
                if (e)
                        ctx->errors = e;
                ctx->oom = true;
                return;
        }
        ctx->errors = e;
        ctx->errors[ctx->n_errors] = (ConfigError){
                .file_index = config_file_index(ctx, has_mark ? mark->file : NULL),
                .line = has_mark ? mark->line : 0,
                .column = has_mark ? mark->column : 0,
                .seq = ctx->n_errors,
                .problem = p,
        };
        ctx->n_errors++;
}

void config_warning(ConfigContext *ctx, const ConfigMark *mark, const char *path,
                    const char *fmt, ...)
{
        _cleanup_free_ char *message = NULL;
        char *line = NULL, **w;
        va_list ap;
        int r;

        if (ctx->n_warnings >= CONFIG_ERRORS_MAX)
                return;
        va_start(ap, fmt);
        r = vasprintf(&message, fmt, ap);
        va_end(ap);
        if (r >= 0 && mark && mark->file)
                r = asprintf(&line, "%s:%u:%u: %s%s%s", mark->file, mark->line, mark->column,
                             path ? path : "", path && *path ? ": " : "", message);
        else if (r >= 0)
                r = asprintf(&line, "%s%s%s", path ? path : "", path && *path ? ": " : "",
                             message);
        w = r >= 0 ? reallocarray(ctx->warnings, ctx->n_warnings + 2, sizeof(char *)) : NULL;
        if (!w) {
                if (r >= 0)
                        free(line);
                ctx->oom = true;
                return;
        }
        ctx->warnings = w;
        w[ctx->n_warnings++] = line;
        w[ctx->n_warnings] = NULL;
}

void config_error(ConfigContext *ctx, const ConfigMark *mark, const char *path, const char *fmt,
                  ...)
{
        va_list ap;

        va_start(ap, fmt);
        report(ctx, -EINVAL, ctx->walking_edit, mark, path, fmt, ap);
        va_end(ap);
}

void config_error_code(ConfigContext *ctx, int code, bool in_document, const ConfigMark *mark,
                       const char *path, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        report(ctx, code, in_document, mark, path, fmt, ap);
        va_end(ap);
}

ConfigMark config_mark(const ConfigContext *ctx, const yaml_node_t *node)
{
        if (!node)
                return (ConfigMark){.file = ctx->file, .line = 1, .column = 1};
        return (ConfigMark){
                .file = ctx->file,
                .line = (unsigned)node->start_mark.line + 1,
                .column = (unsigned)node->start_mark.column + 1,
        };
}

static int error_compare(const void *a, const void *b)
{
        const ConfigError *x = a, *y = b;

        if (x->file_index != y->file_index)
                return x->file_index < y->file_index ? -1 : 1;
        if (x->line != y->line)
                return x->line < y->line ? -1 : 1;
        if (x->column != y->column)
                return x->column < y->column ? -1 : 1;
        return x->seq < y->seq ? -1 : x->seq > y->seq;
}

void config_problems_done(ConfigProblems *p)
{
        if (!p)
                return;
        for (size_t i = 0; i < p->n; i++)
                problem_done(p->items + i);
        free(p->items);
        *p = (ConfigProblems){};
}

char *config_problems_join(const ConfigProblems *p)
{
        char tail[64] = "";
        size_t size = 1, o = 0;
        char *s;

        if (p->n_dropped > 0)
                snprintf(tail, sizeof(tail), "(%zu more errors not shown)", p->n_dropped);
        for (size_t i = 0; i < p->n; i++)
                size += (p->items[i].where ? strlen(p->items[i].where) + 2 : 0) +
                        strlen(p->items[i].path) + 2 + strlen(p->items[i].message) + 1;
        size += strlen(tail);

        s = malloc(size);
        if (!s)
                return NULL;
        for (size_t i = 0; i < p->n; i++) {
                const ConfigProblem *q = p->items + i;

                o += (size_t)snprintf(s + o, size - o, "%s%s%s%s%s%s", o > 0 ? "\n" : "",
                                      q->where ? q->where : "", q->where ? ": " : "", q->path,
                                      *q->path ? ": " : "", q->message);
        }
        if (*tail)
                snprintf(s + o, size - o, "%s%s", o > 0 ? "\n" : "", tail);
        else
                s[o] = 0;
        return s;
}

/* Errors come out in the order of the files and positions they point at, whatever order the
 * checks ran in: cross-file checks run last but their errors belong beside the others. */
static int take_problems(ConfigContext *ctx, ConfigProblems *ret)
{
        ConfigProblem *items = NULL;

        qsort(ctx->errors, ctx->n_errors, sizeof(ConfigError), error_compare);
        if (ctx->n_errors > 0) {
                items = calloc(ctx->n_errors, sizeof(ConfigProblem));
                if (!items)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < ctx->n_errors; i++) {
                items[i] = ctx->errors[i].problem;
                ctx->errors[i].problem = (ConfigProblem){};
        }
        *ret = (ConfigProblems){.items = items, .n = ctx->n_errors, .n_dropped = ctx->n_dropped};
        return 0;
}

bool config_has_errors_under(const ConfigContext *ctx, const char *path)
{
        size_t l = strlen(path);

        for (size_t i = 0; i < ctx->n_errors; i++) {
                const char *p = ctx->errors[i].problem.path;

                if (strncmp(p, path, l) == 0 && (p[l] == 0 || p[l] == '.' || p[l] == '[' || l == 0))
                        return true;
        }
        return ctx->n_dropped > 0;
}

/* ---- names ---- */

int config_register_name(ConfigContext *ctx, Hashmap **map, const char *what, const char *key,
                         const ConfigMark *mark, const char *path)
{
        char esc[CONFIG_ESCAPE_MAX];
        ConfigMark *first, *m;

        if (!*map) {
                *map = hashmap_new();
                if (!*map)
                        return -ENOMEM;
        }
        first = hashmap_get(*map, key, strlen(key));
        if (first) {
                config_error_code(ctx, -EEXIST, ctx->walking_edit, mark, path,
                                  "duplicate %s '%s' (first defined at %s:%u:%u)", what,
                                  config_escape(key, strlen(key), esc), first->file, first->line,
                                  first->column);
                return 0;
        }
        m = memdup(mark, sizeof(*mark));
        if (!m)
                return -ENOMEM;
        if (hashmap_put(*map, key, strlen(key), m) < 0) {
                free(m);
                return -ENOMEM;
        }
        return 0;
}

static int free_value(const char *key, size_t key_len, void *value, void *userdata)
{
        free(value);
        return 0;
}

static Hashmap *names_free(Hashmap *map)
{
        if (map)
                hashmap_foreach(map, free_value, NULL);
        return hashmap_free(map);
}

/* Grows `*paths` to `n` entries (new ones NULL) and sets entry `index` to a copy of `path`. */
static int set_path(char ***paths, size_t *have, size_t n, size_t index, const char *path)
{
        char *s;

        assert(index < n);
        if (*have < n) {
                char **p = reallocarray(*paths, n, sizeof(char *));

                if (!p)
                        return -ENOMEM;
                memset(p + *have, 0, (n - *have) * sizeof(char *));
                *paths = p;
                *have = n;
        }
        s = strdup(path);
        if (!s)
                return -ENOMEM;
        free((*paths)[index]);
        (*paths)[index] = s;
        return 0;
}

int config_note_object(ConfigContext *ctx, ConfigObjectKind kind, const char *path)
{
        Config *c = ctx->config;

        /* A document read as one object is placed, and noted, by whoever reads it. */
        if (ctx->walking_object)
                return 0;
        if (kind == CONFIG_OBJECT_UPSTREAM) {
                assert(c->n_upstreams > 0);
                return config_set_object_path(ctx, kind, c->n_upstreams - 1, path);
        }
        assert(c->n_routes > 0);
        return config_set_object_path(ctx, kind, c->n_routes - 1, path);
}

int config_set_object_path(ConfigContext *ctx, ConfigObjectKind kind, size_t index,
                           const char *path)
{
        if (kind == CONFIG_OBJECT_UPSTREAM)
                return set_path(&ctx->upstream_paths, &ctx->n_upstream_paths,
                                ctx->config->n_upstreams, index, path);
        return set_path(&ctx->route_paths, &ctx->n_route_paths, ctx->config->n_routes, index, path);
}

void config_forget_object_path(ConfigContext *ctx, ConfigObjectKind kind, size_t index)
{
        bool up = kind == CONFIG_OBJECT_UPSTREAM;
        char **paths = up ? ctx->upstream_paths : ctx->route_paths;
        size_t *n = up ? &ctx->n_upstream_paths : &ctx->n_route_paths;

        if (index >= *n)
                return;
        free(paths[index]);
        memmove(paths + index, paths + index + 1, (*n - index - 1) * sizeof(char *));
        (*n)--;
}

static void paths_free(char **paths, size_t n)
{
        for (size_t i = 0; i < n; i++)
                free(paths[i]);
        free(paths);
}

/* ---- checks over the whole ---- */

/* "upstreams[3].name" for an object read in this load; "upstream 'x': name" for one taken over,
 * which is then reported without its old location. */
static const char *object_path(const ConfigContext *ctx, ConfigObjectKind kind, size_t i,
                               const char *sub, char buf[static CONFIG_PATH_MAX])
{
        bool up = kind == CONFIG_OBJECT_UPSTREAM;
        char **paths = up ? ctx->upstream_paths : ctx->route_paths;
        size_t n = up ? ctx->n_upstream_paths : ctx->n_route_paths;
        const char *name = up ? ctx->config->upstreams[i]->name : ctx->config->routes[i]->name;
        char esc[CONFIG_ESCAPE_MAX];

        if (i < n && paths[i])
                snprintf(buf, CONFIG_PATH_MAX, "%s%s%s", paths[i], *paths[i] ? "." : "", sub);
        else
                snprintf(buf, CONFIG_PATH_MAX, "%s '%s': %s", up ? "upstream" : "route",
                         config_escape(name, strlen(name), esc), sub);
        return buf;
}

static bool object_is_read(const ConfigContext *ctx, ConfigObjectKind kind, size_t i)
{
        bool up = kind == CONFIG_OBJECT_UPSTREAM;

        return i < (up ? ctx->n_upstream_paths : ctx->n_route_paths) &&
               (up ? ctx->upstream_paths : ctx->route_paths)[i];
}

static bool object_is_edited(const ConfigContext *ctx, ConfigObjectKind kind, size_t i)
{
        return ctx->edited_index >= 0 && ctx->edited_kind == kind && (size_t)ctx->edited_index == i;
}

/* Reports a problem about object i: at its mark when read in this load. */
static void object_error(ConfigContext *ctx, int code, ConfigObjectKind kind, size_t i,
                         const ConfigMark *mark, const char *sub, const char *fmt, ...)
        _printf_(7, 8);

static void object_error(ConfigContext *ctx, int code, ConfigObjectKind kind, size_t i,
                         const ConfigMark *mark, const char *sub, const char *fmt, ...)
{
        char path[CONFIG_PATH_MAX];
        va_list ap;

        object_path(ctx, kind, i, sub, path);
        va_start(ap, fmt);
        report(ctx, code, object_is_edited(ctx, kind, i),
               object_is_read(ctx, kind, i) ? mark : NULL, path, fmt, ap);
        va_end(ap);
}

/* Every name once: a map of name → index + 1. The later one of a pair is the duplicate. */
static int check_names(ConfigContext *ctx, ConfigObjectKind kind, Hashmap **ret)
{
        bool up = kind == CONFIG_OBJECT_UPSTREAM;
        size_t n = up ? ctx->config->n_upstreams : ctx->config->n_routes;
        /* The names are the objects', which outlive the check. */
        Hashmap *map = hashmap_new_borrowing(n);
        char esc[CONFIG_ESCAPE_MAX];

        if (!map)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                const char *name =
                        up ? ctx->config->upstreams[i]->name : ctx->config->routes[i]->name;
                const ConfigMark *mark =
                        up ? &ctx->config->upstreams[i]->mark : &ctx->config->routes[i]->mark;
                void *existing = NULL;
                const ConfigMark *fm;

                /* A name that did not load was reported already. */
                if (!name)
                        continue;
                size_t len = strlen(name);
                int r = hashmap_put_new(map, name, len, (void *)(uintptr_t)(i + 1), &existing);
                if (r == 0)
                        continue;
                if (r != -EEXIST) {
                        hashmap_free(map);
                        return r;
                }
                uintptr_t first = (uintptr_t)existing;
                fm = up ? &ctx->config->upstreams[first - 1]->mark
                        : &ctx->config->routes[first - 1]->mark;
                config_escape(name, len, esc);
                if (fm->file)
                        object_error(ctx, -EEXIST, kind, i, mark, "name",
                                     "duplicate %s name '%s' (first defined at %s:%u:%u)",
                                     up ? "upstream" : "route", esc, fm->file, fm->line,
                                     fm->column);
                else
                        object_error(ctx, -EEXIST, kind, i, mark, "name", "duplicate %s name '%s'",
                                     up ? "upstream" : "route", esc);
        }
        *ret = map;
        return 0;
}

static bool has_upstream(Hashmap *upstreams, const char *name)
{
        return hashmap_get(upstreams, name, strlen(name)) != NULL;
}

static void check_listener_reference(ConfigContext *ctx, Hashmap *upstreams, size_t i,
                                     const char *sub, const char *name, const ConfigMark *mark)
{
        const ConfigListener *l = ctx->config->listeners + i;
        char esc[CONFIG_ESCAPE_MAX], path[CONFIG_PATH_MAX];

        if (!name || has_upstream(upstreams, name))
                return;
        config_escape(name, strlen(name), esc);
        /* Every listener was read by some load, which noted where. */
        assert(l->path);
        snprintf(path, sizeof(path), "%s.%s", l->path, sub);
        /* A file's listener, beside the runtime state's upstreams: the state is what is out of
         * date, and what the operator must see. */
        if (ctx->state_mark.file && mark->file != ctx->state_mark.file)
                config_error_code(ctx, -ENOENT, false, &ctx->state_mark, "upstreams",
                                  "no upstream named '%s', which %s uses (%s:%u:%u)", esc, path,
                                  mark->file, mark->line, mark->column);
        else
                config_error_code(ctx, -ENOENT, false, mark, path, "no upstream named '%s'", esc);
}

static void check_references(ConfigContext *ctx, Hashmap *upstreams)
{
        const Config *c = ctx->config;
        char esc[CONFIG_ESCAPE_MAX], sub[64];

        for (size_t i = 0; i < c->n_listeners; i++) {
                const ConfigListener *l = c->listeners + i;

                if (l->protocol == LISTENER_TCP)
                        check_listener_reference(ctx, upstreams, i, "upstream", l->upstream,
                                                 &l->upstream_mark);
                for (size_t k = 0; k < l->n_sni_routes; k++) {
                        snprintf(sub, sizeof(sub), "sni_routes[%zu].upstream", k);
                        check_listener_reference(ctx, upstreams, i, sub, l->sni_routes[k].upstream,
                                                 &l->sni_routes[k].upstream_mark);
                }
        }
        for (size_t i = 0; i < c->n_routes; i++) {
                const ConfigRoute *rt = c->routes[i];

                for (size_t j = 0; j < rt->n_upstreams; j++) {
                        const char *name = rt->upstreams[j].name;

                        if (!name || has_upstream(upstreams, name))
                                continue;
                        snprintf(sub, sizeof(sub), "upstreams[%zu].name", j);
                        object_error(ctx, -ENOENT, CONFIG_OBJECT_ROUTE, i, &rt->upstreams[j].mark,
                                     sub, "no upstream named '%s'",
                                     config_escape(name, strlen(name), esc));
                }
        }
}

/* A route names each upstream once (over D-Bus its weights are set by that name). The first
 * repetition is reported. */
static void check_route_upstreams(ConfigContext *ctx, size_t i)
{
        const ConfigRoute *rt = ctx->config->routes[i];
        char sub[64], esc[CONFIG_ESCAPE_MAX];

        for (size_t j = 1; j < rt->n_upstreams; j++)
                for (size_t k = 0; k < j && rt->upstreams[j].name; k++)
                        if (streq_ptr(rt->upstreams[k].name, rt->upstreams[j].name)) {
                                snprintf(sub, sizeof(sub), "upstreams[%zu].name", j);
                                object_error(ctx, -EEXIST, CONFIG_OBJECT_ROUTE, i,
                                             &rt->upstreams[j].mark, sub,
                                             "'%s' is listed already (as upstreams[%zu])",
                                             config_escape(rt->upstreams[j].name,
                                                           strlen(rt->upstreams[j].name), esc),
                                             k);
                                return;
                        }
}

static int tls_inherit(ConfigTls *t, const ConfigTls *defaults)
{
        if (!t->ca_file && defaults->ca_file) {
                t->ca_file = strdup(defaults->ca_file);
                if (!t->ca_file)
                        return -ENOMEM;
        }
        if (t->verify < 0)
                t->verify = defaults->verify;
        return 0;
}

static int config_finish(ConfigContext *ctx)
{
        _cleanup_(hashmap_freep) Hashmap *upstreams = NULL, *routes = NULL;
        Config *c = ctx->config;
        int r;

        /* A syntax error loses the rest of its file: whatever a cross-file check would say then
         * is noise. */
        if (ctx->syntax_error)
                return 0;

        if (c->n_listeners == 0 && !ctx->listeners_invalid) {
                /* At the last `listeners:` seen, else at the top of the first file. */
                ConfigMark m = ctx->listeners_mark;

                if (!m.file && ctx->files && ctx->files[0])
                        m = (ConfigMark){.file = ctx->files[0], .line = 1, .column = 1};
                config_error(ctx, &m, "listeners", "at least one listener is required");
        }

        if (c->dns.ttl_min_usec > c->dns.ttl_max_usec) {
                char a[CONFIG_DURATION_STR_MAX], b[CONFIG_DURATION_STR_MAX];

                config_error(ctx, ctx->dns_mark.file ? &ctx->dns_mark : NULL, "dns",
                             "ttl_min (%s) is greater than ttl_max (%s)",
                             config_format_duration(c->dns.ttl_min_usec, a),
                             config_format_duration(c->dns.ttl_max_usec, b));
        }

        r = check_names(ctx, CONFIG_OBJECT_UPSTREAM, &upstreams);
        if (r >= 0)
                r = check_names(ctx, CONFIG_OBJECT_ROUTE, &routes);
        if (r < 0)
                return r;
        check_references(ctx, upstreams);
        for (size_t i = 0; i < c->n_routes; i++)
                if (object_is_read(ctx, CONFIG_OBJECT_ROUTE, i))
                        check_route_upstreams(ctx, i);

        /* Only now: a later file may have changed the top-level tls: block. Objects taken over
         * from an earlier Config inherited when they were read, and are not changed. */
        for (size_t i = 0; i < c->n_upstreams; i++) {
                if (!object_is_read(ctx, CONFIG_OBJECT_UPSTREAM, i))
                        continue;
                r = tls_inherit(&c->upstreams[i]->tls, &c->tls);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---- a load ---- */

int config_context_new(ConfigContext *ctx, Config *config)
{
        *ctx = (ConfigContext){.edited_index = -1};
        if (config) {
                ctx->config = config;
                return 0;
        }
        ctx->config = calloc(1, sizeof(Config));
        if (!ctx->config)
                return -ENOMEM;
        atomic_init(&ctx->config->n_ref, 1);
        config_schema_init(ctx->config);
        return 0;
}

void config_context_drop_objects(ConfigContext *ctx)
{
        Config *c = ctx->config;

        for (size_t i = 0; i < c->n_upstreams; i++)
                config_upstream_unref(c->upstreams[i]);
        for (size_t i = 0; i < c->n_routes; i++)
                config_route_unref(c->routes[i]);
        c->n_upstreams = c->n_routes = 0;
        paths_free(ctx->upstream_paths, ctx->n_upstream_paths);
        paths_free(ctx->route_paths, ctx->n_route_paths);
        ctx->upstream_paths = ctx->route_paths = NULL;
        ctx->n_upstream_paths = ctx->n_route_paths = 0;
}

static void context_done(ConfigContext *ctx)
{
        for (size_t i = 0; i < ctx->n_errors; i++)
                problem_done(&ctx->errors[i].problem);
        free(ctx->errors);
        names_free(ctx->listener_names);
        names_free(ctx->listener_addresses);
        paths_free(ctx->upstream_paths, ctx->n_upstream_paths);
        paths_free(ctx->route_paths, ctx->n_route_paths);
        for (char **f = ctx->files; f && *f; f++)
                config_file_name_unref(*f);
        free(ctx->files);
        strv_free(ctx->warnings);
        config_unref(ctx->config);
        *ctx = (ConfigContext){};
}

int config_context_conclude(ConfigContext *ctx, int r, ConfigProblems *ret_problems,
                            char **ret_errors, Config **ret)
{
        ConfigProblems problems = {};

        if (r >= 0)
                r = config_finish(ctx);
        if (r >= 0 && ctx->oom)
                r = -ENOMEM;
        if (r >= 0 && ctx->n_errors + ctx->n_dropped > 0)
                r = -EINVAL;

        if (ret_problems)
                *ret_problems = (ConfigProblems){};
        if (ret_errors)
                *ret_errors = NULL;
        if (r < 0 && ctx->n_errors > 0 && (ret_problems || ret_errors) &&
            take_problems(ctx, &problems) >= 0) {
                if (ret_errors)
                        *ret_errors = config_problems_join(&problems);
                if (ret_problems)
                        *ret_problems = problems;
                else
                        config_problems_done(&problems);
        }
        if (r >= 0) {
                /* Its listeners' marks point into the files it read. */
                if (!ctx->config->base) {
                        ctx->config->files = TAKE_PTR(ctx->files);
                        ctx->config->warnings = TAKE_PTR(ctx->warnings);
                }
                *ret = TAKE_PTR(ctx->config);
        }

        context_done(ctx);
        return r < 0 ? r : 0;
}

/* ---- sources ---- */

int config_build(const ConfigSource *sources, size_t n, Config **ret, ConfigProblems *ret_problems,
                 char **ret_errors)
{
        ConfigContext ctx;
        int r;

        assert(ret);
        r = config_context_new(&ctx, NULL);
        if (r < 0) {
                if (ret_problems)
                        *ret_problems = (ConfigProblems){};
                if (ret_errors)
                        *ret_errors = NULL;
                return r;
        }
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = sources[i].contribute(sources + i, &ctx);
        return config_context_conclude(&ctx, r, ret_problems, ret_errors, ret);
}

int config_build_start_from(ConfigBuild *b, const Config *c)
{
        Config *n;
        int r;

        /* Only as the first source: nothing was read into the fresh Config yet. */
        assert(!b->files && b->config->n_listeners == 0 && b->config->n_upstreams == 0 &&
               b->config->n_routes == 0);
        r = config_derive(c, &n);
        if (r < 0)
                return r;
        config_unref(b->config);
        b->config = n;
        return 0;
}

void config_build_replace_objects(ConfigBuild *b)
{
        config_context_drop_objects(b);
}

static int contribute_loaded(const ConfigSource *s, ConfigBuild *b)
{
        return config_build_start_from(b, s->data);
}

ConfigSource config_source_loaded(const Config *c)
{
        return (ConfigSource){.name = "loaded", .contribute = contribute_loaded, .data = c};
}
