/* SPDX-License-Identifier: MIT */

/* org.lbproxy1.Manager. A change is an edit of one upstream's or route's document: the method
 * turns its arguments into that document (a{sv} → mapping, arrays → sequences, strings,
 * numbers and booleans → scalars of their type; option names are the YAML keys), the loader
 * reads it with the tables a file is read with and checks the result whole, and the Manager
 * builds, persists and swaps it in. This file validates nothing itself: whatever it refuses,
 * the loader refused, and its message names the argument ("options.timeout.connect: ..."). A
 * failed call changes nothing. */

#include <linux/capability.h>
#include <stdarg.h>

#include "base/log.h"
#include "bus/bus.h"
#include "config/config-overlay.h"
#include "lb/model.h"

/* Where the problems of a method's document point, in the method's arguments: keys given as
 * arguments of their own keep their path ("nodes[1].port"); an item added from arguments
 * (AddNode's node) gives its keys their argument's name ("port"); the rest are options
 * ("options.timeout.connect"), or keys of the object changed ("upstream 'a': nodes"). */
typedef struct ArgumentMap {
        const char *const *arguments; /* NULL-terminated top-level keys */
        const char *item;             /* "nodes[3]" */
        bool options;
        const char *object; /* "upstream 'a'" */
} ArgumentMap;

static bool is_argument(const ArgumentMap *map, const char *path)
{
        size_t l = strcspn(path, ".[");

        for (const char *const *a = map->arguments; a && *a; a++)
                if (strlen(*a) == l && strncmp(*a, path, l) == 0)
                        return true;
        return false;
}

/* Appends one problem's line to `s` as the caller knows it. */
static int append_problem(char **s, const ConfigProblem *p, const ArgumentMap *map)
{
        _cleanup_free_ char *path = NULL;
        size_t il = map->item ? strlen(map->item) : 0;
        char *n;
        int r;

        if (!p->in_document)
                r = asprintf(&path, "%s%s%s", p->where ? p->where : "",
                             p->where && *p->path ? ": " : "", p->path);
        else if (map->item && strncmp(p->path, map->item, il) == 0 && p->path[il] == '.')
                r = asprintf(&path, "%s", p->path + il + 1);
        else if (is_argument(map, p->path))
                r = asprintf(&path, "%s", p->path);
        else if (map->options)
                r = asprintf(&path, "options%s%s", *p->path ? "." : "", p->path);
        else
                r = asprintf(&path, "%s%s%s", map->object ? map->object : "",
                             map->object && *p->path ? ": " : "", p->path);
        if (r < 0)
                return -ENOMEM;
        r = asprintf(&n, "%s%s%s%s%s", *s ? *s : "", *s ? "\n" : "", path, *path ? ": " : "",
                     p->message);
        if (r < 0)
                return -ENOMEM;
        free(*s);
        *s = n;
        return 0;
}

/* Refuses the call with the loader's problems: the error name from the first one's kind (a
 * reference to no upstream is NotFound when the caller's document makes it, InUse when a
 * removal leaves another object's dangling). */
static int reply_problems(sd_bus_error *error, const ConfigProblems *problems,
                          const ArgumentMap *map)
{
        _cleanup_free_ char *text = NULL;
        const char *name = SD_BUS_ERROR_INVALID_ARGS;

        for (size_t i = 0; i < problems->n; i++)
                if (append_problem(&text, problems->items + i, map) < 0)
                        return -ENOMEM;
        if (problems->n_dropped > 0 && asprintf(&text, "%s\n(%zu more errors not shown)",
                                                text ? text : "", problems->n_dropped) < 0)
                return -ENOMEM;
        if (problems->n > 0) {
                const ConfigProblem *p = problems->items;

                if (p->code == -EEXIST)
                        name = BUS_ERROR_EXISTS;
                else if (p->code == -ENOENT)
                        name = p->in_document ? BUS_ERROR_NOT_FOUND : BUS_ERROR_IN_USE;
        }
        return sd_bus_error_set(error, name, text ? text : "invalid");
}

static int not_found(sd_bus_error *error, const char *fmt, ...) _printf_(2, 3);

static int not_found(sd_bus_error *error, const char *fmt, ...)
{
        _cleanup_free_ char *text = NULL;
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&text, fmt, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        return sd_bus_error_set(error, BUS_ERROR_NOT_FOUND, text);
}

/* ---- arguments into documents ---- */

static int unsupported(sd_bus_error *error, const char *path, const char *type)
{
        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                 "%s: a value of D-Bus type '%s' has no YAML form here", path,
                                 type);
}

static int read_value(sd_bus_message *msg, ConfigTree *t, const char *path, int *ret,
                      sd_bus_error *error);

/* "a{s...}": a dictionary with string keys, a mapping in YAML. */
static bool startswith_dictionary(const char *signature)
{
        return signature[0] == 'a' && signature[1] == '{' && signature[2] == 's';
}

/* An a{sv} (or any dictionary of strings) into `mapping`: a key that is a mapping already, given
 * a dictionary, is merged key by key (SetUpstreamOptions's timeout: {connect: 2s} leaves send
 * and read as they were); any other value replaces the key's. `forbidden` keys are refused. */
static int read_dictionary(sd_bus_message *msg, ConfigTree *t, int mapping, const char *path,
                           const char *contents, const char *const *forbidden,
                           const char *forbidden_why, sd_bus_error *error)
{
        char entry[64];
        size_t l = strlen(contents);
        int r;

        /* "{sv}" → "sv" */
        if (l < 4 || l - 2 >= sizeof(entry))
                return -EINVAL;
        memcpy(entry, contents + 1, l - 2);
        entry[l - 2] = 0;
        r = sd_bus_message_enter_container(msg, 'a', contents);
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(msg, 'e', entry)) > 0) {
                _cleanup_free_ char *sub = NULL;
                const char *key, *inner;
                char type;
                int value, existing;

                r = sd_bus_message_read_basic(msg, 's', &key);
                if (r < 0)
                        return r;
                if (asprintf(&sub, "%s%s%s", path, *path ? "." : "", key) < 0)
                        return -ENOMEM;
                for (const char *const *f = forbidden; f && *f; f++)
                        if (streq(*f, key))
                                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "%s: %s",
                                                         sub, forbidden_why);
                r = sd_bus_message_peek_type(msg, &type, &inner);
                if (r < 0)
                        return r;
                existing = config_tree_get(t, mapping, key);
                if (type == 'v' && inner && startswith_dictionary(inner) &&
                    config_tree_is_mapping(t, existing)) {
                        r = sd_bus_message_enter_container(msg, 'v', inner);
                        if (r >= 0)
                                r = read_dictionary(msg, t, existing, sub, inner + 1, NULL, NULL,
                                                    error);
                        if (r >= 0)
                                r = sd_bus_message_exit_container(msg);
                } else {
                        r = read_value(msg, t, sub, &value, error);
                        if (r >= 0)
                                r = config_tree_set(t, mapping, key, value);
                }
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(msg);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(msg);
}

static int read_value(sd_bus_message *msg, ConfigTree *t, const char *path, int *ret,
                      sd_bus_error *error)
{
        const char *contents;
        char type;
        int r, node;

        r = sd_bus_message_peek_type(msg, &type, &contents);
        if (r <= 0)
                return r < 0 ? r : -EBADMSG;

        switch (type) {
        case 's':
        case 'o':
        case 'g':
        case 'b':
        case 'y':
        case 'n':
        case 'q':
        case 'i':
        case 'u':
        case 'x':
        case 't':
        case 'd': {
                union {
                        const char *s;
                        int b;
                        uint8_t y;
                        int16_t n;
                        uint16_t q;
                        int32_t i;
                        uint32_t u;
                        int64_t x;
                        uint64_t t;
                        double d;
                } v;

                r = sd_bus_message_read_basic(msg, type, &v);
                if (r < 0)
                        return r;
                node = type == 'b'   ? config_tree_add_boolean(t, v.b)
                       : type == 'y' ? config_tree_add_unsigned(t, v.y)
                       : type == 'n' ? config_tree_add_integer(t, v.n)
                       : type == 'q' ? config_tree_add_unsigned(t, v.q)
                       : type == 'i' ? config_tree_add_integer(t, v.i)
                       : type == 'u' ? config_tree_add_unsigned(t, v.u)
                       : type == 'x' ? config_tree_add_integer(t, v.x)
                       : type == 't' ? config_tree_add_unsigned(t, v.t)
                       : type == 'd' ? config_tree_add_number(t, v.d)
                                     : config_tree_add_string(t, v.s);
                break;
        }
        case 'v':
                r = sd_bus_message_enter_container(msg, 'v', contents);
                if (r >= 0)
                        r = read_value(msg, t, path, &node, error);
                if (r >= 0)
                        r = sd_bus_message_exit_container(msg);
                if (r < 0)
                        return r;
                break;
        case 'a':
                if (contents[0] == '{' && contents[1] == 's') {
                        node = config_tree_add_mapping(t);
                        if (node < 0)
                                return node;
                        r = read_dictionary(msg, t, node, path, contents, NULL, NULL, error);
                        if (r < 0)
                                return r;
                        break;
                }
                if (contents[0] == '{')
                        return unsupported(error, path, "a{...}");
                node = config_tree_add_sequence(t);
                if (node < 0)
                        return node;
                r = sd_bus_message_enter_container(msg, 'a', contents);
                for (size_t i = 0; r >= 0; i++) {
                        _cleanup_free_ char *sub = NULL;
                        int item;

                        r = sd_bus_message_at_end(msg, false);
                        if (r != 0)
                                break;
                        if (asprintf(&sub, "%s[%zu]", path, i) < 0)
                                return -ENOMEM;
                        r = read_value(msg, t, sub, &item, error);
                        if (r >= 0)
                                r = config_tree_append(t, node, item);
                }
                if (r >= 0)
                        r = sd_bus_message_exit_container(msg);
                if (r < 0)
                        return r;
                break;
        default: {
                char s[2] = {type, 0};

                return unsupported(error, path, s);
        }
        }
        if (node < 0)
                return node;
        *ret = node;
        return 0;
}

/* An array of structs (AddUpstream's a(squ) nodes, AddRoute's a(su) upstreams) into a
 * sequence: each struct a mapping of `keys`, in the struct's order. */
static int read_records(sd_bus_message *msg, ConfigTree *t, const char *fields,
                        const char *const *keys, const char *path, int *ret, sd_bus_error *error)
{
        char contents[16];
        int r, sequence = config_tree_add_sequence(t);

        if (sequence < 0)
                return sequence;
        snprintf(contents, sizeof(contents), "(%s)", fields);
        r = sd_bus_message_enter_container(msg, 'a', contents);
        for (size_t i = 0; r >= 0; i++) {
                int record, value;

                r = sd_bus_message_enter_container(msg, 'r', fields);
                if (r <= 0)
                        break;
                record = config_tree_add_mapping(t);
                r = record;
                for (const char *const *k = keys; r >= 0 && *k; k++) {
                        _cleanup_free_ char *sub = NULL;

                        if (asprintf(&sub, "%s[%zu].%s", path, i, *k) < 0)
                                return -ENOMEM;
                        r = read_value(msg, t, sub, &value, error);
                        if (r >= 0)
                                r = config_tree_set(t, record, *k, value);
                }
                if (r >= 0)
                        r = sd_bus_message_exit_container(msg);
                if (r >= 0)
                        r = config_tree_append(t, sequence, record);
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(msg);
        if (r < 0)
                return r;
        *ret = sequence;
        return 0;
}

/* The `as` of SetUpstreamOptions/SetRouteOptions: keys ("upstream_host", "tls.sni") removed from
 * the document, back to their default. */
static int read_reset(sd_bus_message *msg, ConfigTree *t, ConfigObjectKind kind,
                      sd_bus_error *error)
{
        _cleanup_strv_free_ char **keys = NULL;
        int r = sd_bus_message_read_strv(msg, &keys);

        if (r < 0)
                return r;
        for (char **k = keys; k && *k; k++) {
                _cleanup_free_ char *path = strdup(*k);
                int mapping = config_tree_root(t);
                char *p, *dot;

                if (!path)
                        return -ENOMEM;
                if (streq(*k, "name") || !config_schema_has_key(kind, *k))
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "reset: %s '%s'",
                                                 streq(*k, "name") ? "cannot reset" : "unknown key",
                                                 *k);
                for (p = path; (dot = strchr(p, '.')); p = dot + 1) {
                        *dot = 0;
                        mapping = config_tree_get(t, mapping, p);
                }
                if (mapping > 0) {
                        r = config_tree_unset(t, mapping, p);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

/* ---- applying ---- */

/* A call whose answer waits for its change to be durable (the state written, off the loop). */
typedef struct Reply {
        Bus *bus;
        sd_bus_message *msg;
        char *path; /* the object path answered, or NULL */
        const char *what;
} Reply;

static Reply *reply_free(Reply *r)
{
        if (!r)
                return NULL;
        sd_bus_message_unref(r->msg);
        free(r->path);
        free(r);
        return NULL;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(Reply *, reply_free);

/* The Manager says how the change ended: serving, or not at all. */
static void on_change_done(void *userdata, int r, const char *message)
{
        Reply *reply = userdata;

        if (r >= 0) {
                log_event(LOG_NOTICE, LBPROXY_MESSAGE_CONFIG_CHANGE, NULL, NULL, NULL,
                          "Configuration changed over D-Bus: %s", reply->what);
                r = reply->path ? sd_bus_reply_method_return(reply->msg, "o", reply->path)
                                : sd_bus_reply_method_return(reply->msg, NULL);
        } else if (r == -EBUSY)
                r = sd_bus_reply_method_errorf(reply->msg, BUS_ERROR_CONFLICT, "%s",
                                               message ? message : "conflict");
        else
                r = sd_bus_reply_method_errnof(reply->msg, -r, "%s",
                                               message ? message : strerror(-r));
        if (r < 0)
                log_debug("D-Bus: cannot answer a change: %s", strerror(-r));
        bus_kick(reply->bus);
        reply_free(reply);
}

static void on_reload_done(void *userdata, int r, const char *message)
{
        Reply *reply = userdata;

        r = r >= 0 ? sd_bus_reply_method_return(reply->msg, NULL)
                   : sd_bus_reply_method_errnof(reply->msg, -r, "%s",
                                                message ? message : strerror(-r));
        if (r < 0)
                log_debug("D-Bus: cannot answer a reload: %s", strerror(-r));
        bus_kick(reply->bus);
        reply_free(reply);
}

static int new_reply(Bus *b, sd_bus_message *msg, const char *what,
                     int (*path_of)(const char *, char **), const char *name, Reply **ret)
{
        _cleanup_(reply_freep) Reply *reply = calloc(1, sizeof(Reply));
        int r;

        if (!reply)
                return -ENOMEM;
        reply->bus = b;
        reply->msg = sd_bus_message_ref(msg);
        reply->what = what;
        if (path_of) {
                r = path_of(name, &reply->path);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(reply);
        return 0;
}

/* Applies `edit`, answering the call once it serves (and is durable), or refuses it saying why.
 * The answer carries the object path `path_of(name)`, when given. */
static int apply(sd_bus_message *msg, Bus *b, const ConfigEdit *edit, const ArgumentMap *map,
                 const char *what, int (*path_of)(const char *, char **), const char *name,
                 sd_bus_error *error)
{
        _cleanup_(config_problems_done) ConfigProblems problems = {};
        _cleanup_(reply_freep) Reply *reply = NULL;
        _cleanup_free_ char *message = NULL;
        Manager *m = bus_manager(b);
        Config *config = NULL;
        int r;

        r = config_edit_apply(manager_config(m), edit, &config, &problems);
        if (r == -ENOENT || r == -EINVAL)
                manager_change_refused(m);
        if (r == -ENOENT)
                return not_found(error, "name: no %s named '%s'",
                                 edit->kind == CONFIG_OBJECT_UPSTREAM ? "upstream" : "route",
                                 edit->name);
        if (r == -EINVAL)
                return reply_problems(error, &problems, map);
        if (r < 0)
                return r;
        r = new_reply(b, msg, what, path_of, name, &reply);
        if (r < 0) {
                config_unref(config);
                return r;
        }
        /* With a store, written there and applied from its watch, as on every instance. */
        r = manager_store_change(m, config, edit->kind, edit->name ? edit->name : name,
                                 on_change_done, reply, &message);
        if (r == -EOPNOTSUPP)
                r = manager_apply_config(m, config, on_change_done, reply, &message);
        if (r < 0)
                return sd_bus_error_set_errnof(error, -r, "%s", message ? message : strerror(-r));
        if (r > 0)
                on_change_done(reply, 0, NULL);
        TAKE_PTR(reply); /* answered, or to be */
        return 1;
}

static int method_add_upstream(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        static const char *const arguments[] = {"name", "scheme", "nodes", NULL};
        _cleanup_(config_tree_freep) ConfigTree *t = NULL;
        const char *name, *scheme;
        int r, root, nodes;

        r = sd_bus_message_read(msg, "ss", &name, &scheme);
        if (r < 0)
                return r;
        r = config_tree_new(&t);
        if (r < 0)
                return r;
        root = config_tree_root(t);
        r = config_tree_set(t, root, "name", config_tree_add_string(t, name));
        /* D-Bus has no optional positional arguments: "" is how a caller leaves it out. */
        if (r >= 0 && *scheme)
                r = config_tree_set(t, root, "scheme", config_tree_add_string(t, scheme));
        if (r >= 0)
                r = read_records(msg, t, "squ",
                                 (const char *const[]){"host", "port", "weight", NULL}, "nodes",
                                 &nodes, error);
        if (r >= 0)
                r = config_tree_set(t, root, "nodes", nodes);
        if (r >= 0)
                r = read_dictionary(msg, t, root, "options", "{sv}", arguments,
                                    "given as an argument of its own", error);
        if (r < 0)
                return r;

        ConfigEdit edit = {.kind = CONFIG_OBJECT_UPSTREAM, .document = t};
        ArgumentMap map = {.arguments = arguments, .options = true};
        return apply(msg, userdata, &edit, &map, "upstream added", bus_upstream_path, name, error);
}

static int method_add_route(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        static const char *const arguments[] = {"name", "paths", "upstreams", NULL};
        _cleanup_(config_tree_freep) ConfigTree *t = NULL;
        const char *name;
        int r, root, paths, ups;

        r = sd_bus_message_read(msg, "s", &name);
        if (r < 0)
                return r;
        r = config_tree_new(&t);
        if (r < 0)
                return r;
        root = config_tree_root(t);
        r = config_tree_set(t, root, "name", config_tree_add_string(t, name));
        if (r >= 0)
                r = read_value(msg, t, "paths", &paths, error);
        if (r >= 0)
                r = config_tree_set(t, root, "paths", paths);
        if (r >= 0)
                r = read_records(msg, t, "su", (const char *const[]){"name", "weight", NULL},
                                 "upstreams", &ups, error);
        if (r >= 0)
                r = config_tree_set(t, root, "upstreams", ups);
        if (r >= 0)
                r = read_dictionary(msg, t, root, "options", "{sv}", arguments,
                                    "given as an argument of its own", error);
        if (r < 0)
                return r;

        ConfigEdit edit = {.kind = CONFIG_OBJECT_ROUTE, .document = t};
        ArgumentMap map = {.arguments = arguments, .options = true};
        return apply(msg, userdata, &edit, &map, "route added", bus_route_path, name, error);
}

static int method_remove(sd_bus_message *msg, Bus *b, ConfigObjectKind kind, sd_bus_error *error)
{
        const char *name;
        int r = sd_bus_message_read(msg, "s", &name);

        if (r < 0)
                return r;
        ConfigEdit edit = {.kind = kind, .name = name};
        ArgumentMap map = {};
        return apply(msg, b, &edit, &map,
                     kind == CONFIG_OBJECT_UPSTREAM ? "upstream removed" : "route removed", NULL,
                     NULL, error);
}

static int method_remove_upstream(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        return method_remove(msg, userdata, CONFIG_OBJECT_UPSTREAM, error);
}

static int method_remove_route(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        return method_remove(msg, userdata, CONFIG_OBJECT_ROUTE, error);
}

/* The document of the upstream or route a method changes, or NotFound. */
static int object_document(const Manager *m, ConfigObjectKind kind, const char *arg,
                           const char *name, ConfigTree **ret, sd_bus_error *error)
{
        int r = config_object_document(manager_config(m), kind, name, ret);

        if (r == -ENOENT)
                return not_found(error, "%s: no %s named '%s'", arg,
                                 kind == CONFIG_OBJECT_UPSTREAM ? "upstream" : "route", name);
        return r;
}

typedef enum NodeChange {
        NODE_ADD,
        NODE_REMOVE,
        NODE_SET_WEIGHT,
        NODE_SET_STATE,
} NodeChange;

static int node_change(sd_bus_message *msg, Bus *b, NodeChange change, sd_bus_error *error)
{
        Manager *m = bus_manager(b);
        _cleanup_(config_tree_freep) ConfigTree *t = NULL;
        _cleanup_free_ char *item = NULL, *object = NULL;
        const char *upstream, *host;
        uint16_t port;
        uint32_t weight = 0;
        const char *state = NULL;
        ssize_t k;
        int r, nodes, node;

        if (change == NODE_REMOVE)
                r = sd_bus_message_read(msg, "ssq", &upstream, &host, &port);
        else if (change == NODE_SET_STATE)
                r = sd_bus_message_read(msg, "ssqs", &upstream, &host, &port, &state);
        else
                r = sd_bus_message_read(msg, "ssqu", &upstream, &host, &port, &weight);
        if (r < 0)
                return r;
        r = object_document(m, CONFIG_OBJECT_UPSTREAM, "upstream", upstream, &t, error);
        if (r < 0)
                return r;
        nodes = config_tree_get(t, config_tree_root(t), "nodes");
        k = config_upstream_find_node(config_find_upstream(manager_config(m), upstream), host,
                                      port);
        if (k == -ENOMEM)
                return -ENOMEM;
        if (change == NODE_ADD) {
                /* A node there already is the loader's to refuse, as in a file. */
                k = (ssize_t)config_tree_length(t, nodes);
                node = config_tree_add_mapping(t);
                r = node < 0 ? node
                             : config_tree_set(t, node, "host", config_tree_add_string(t, host));
                if (r >= 0)
                        r = config_tree_set(t, node, "port", config_tree_add_unsigned(t, port));
                if (r >= 0)
                        r = config_tree_set(t, node, "weight", config_tree_add_unsigned(t, weight));
                if (r >= 0)
                        r = config_tree_append(t, nodes, node);
        } else if (k < 0) {
                return not_found(error,
                                 strchr(host, ':') && host[0] != '['
                                         ? "upstream '%s' has no node [%s]:%u"
                                         : "upstream '%s' has no node %s:%u",
                                 upstream, host, port);
        } else if (change == NODE_REMOVE)
                r = config_tree_remove_item(t, nodes, (size_t)k);
        else if (change == NODE_SET_STATE)
                /* The loader checks the word, as it would in a file. */
                r = config_tree_set(t, config_tree_item(t, nodes, (size_t)k), "state",
                                    config_tree_add_string(t, state));
        else
                r = config_tree_set(t, config_tree_item(t, nodes, (size_t)k), "weight",
                                    config_tree_add_unsigned(t, weight));
        if (r < 0)
                return r;

        if ((change != NODE_REMOVE && asprintf(&item, "nodes[%zd]", k) < 0) ||
            asprintf(&object, "upstream '%s'", upstream) < 0)
                return -ENOMEM;
        ConfigEdit edit = {.kind = CONFIG_OBJECT_UPSTREAM, .name = upstream, .document = t};
        ArgumentMap map = {.item = item, .object = object};
        return apply(msg, b, &edit, &map,
                     change == NODE_ADD         ? "node added"
                     : change == NODE_REMOVE    ? "node removed"
                     : change == NODE_SET_STATE ? "node state set"
                                                : "node weight set",
                     NULL, NULL, error);
}

static int method_add_node(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        return node_change(msg, userdata, NODE_ADD, error);
}

static int method_remove_node(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        return node_change(msg, userdata, NODE_REMOVE, error);
}

static int method_set_node_weight(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        return node_change(msg, userdata, NODE_SET_WEIGHT, error);
}

static int method_set_node_state(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        return node_change(msg, userdata, NODE_SET_STATE, error);
}

static int method_set_route_upstream_weight(sd_bus_message *msg, void *userdata,
                                            sd_bus_error *error)
{
        Bus *b = userdata;
        Manager *m = bus_manager(b);
        _cleanup_(config_tree_freep) ConfigTree *t = NULL;
        _cleanup_free_ char *item = NULL, *object = NULL;
        const ConfigRoute *rt;
        const char *route, *upstream;
        uint32_t weight;
        size_t k;
        int r;

        r = sd_bus_message_read(msg, "ssu", &route, &upstream, &weight);
        if (r < 0)
                return r;
        r = object_document(m, CONFIG_OBJECT_ROUTE, "route", route, &t, error);
        if (r < 0)
                return r;
        rt = config_find_route(manager_config(m), route);
        for (k = 0; k < rt->n_upstreams; k++)
                if (streq(rt->upstreams[k].name, upstream))
                        break;
        if (k == rt->n_upstreams)
                return not_found(error, "route '%s' has no upstream '%s'", route, upstream);
        r = config_tree_set(
                t, config_tree_item(t, config_tree_get(t, config_tree_root(t), "upstreams"), k),
                "weight", config_tree_add_unsigned(t, weight));
        if (r < 0)
                return r;

        if (asprintf(&item, "upstreams[%zu]", k) < 0 || asprintf(&object, "route '%s'", route) < 0)
                return -ENOMEM;
        ConfigEdit edit = {.kind = CONFIG_OBJECT_ROUTE, .name = route, .document = t};
        ArgumentMap map = {.item = item, .object = object};
        return apply(msg, b, &edit, &map, "route upstream weight set", NULL, NULL, error);
}

/* SetUpstreamOptions / SetRouteOptions: the keys given replace the object's (a block given as
 * a dictionary is merged key by key), the keys in `reset` go back to their default. */
static int set_options(sd_bus_message *msg, Bus *b, ConfigObjectKind kind, sd_bus_error *error)
{
        Manager *m = bus_manager(b);
        static const char *const forbidden[] = {"name", NULL};
        _cleanup_(config_tree_freep) ConfigTree *t = NULL;
        bool up = kind == CONFIG_OBJECT_UPSTREAM;
        const char *name;
        int r;

        r = sd_bus_message_read(msg, "s", &name);
        if (r < 0)
                return r;
        r = object_document(m, kind, "name", name, &t, error);
        if (r < 0)
                return r;
        /* The reset comes last in the message but applies first, so that a key both reset and
         * given is set: the options are skipped, the reset read, and the message rewound. */
        r = sd_bus_message_skip(msg, "a{sv}");
        if (r >= 0)
                r = read_reset(msg, t, kind, error);
        if (r >= 0)
                r = sd_bus_message_rewind(msg, true);
        if (r >= 0)
                r = sd_bus_message_skip(msg, "s");
        if (r >= 0)
                r = read_dictionary(msg, t, config_tree_root(t), "options", "{sv}", forbidden,
                                    up ? "an upstream is renamed by removing it and adding it"
                                       : "a route is renamed by removing it and adding it",
                                    error);
        if (r < 0)
                return r;

        ConfigEdit edit = {.kind = kind, .name = name, .document = t};
        ArgumentMap map = {.options = true};
        return apply(msg, b, &edit, &map, up ? "upstream options set" : "route options set", NULL,
                     NULL, error);
}

static int method_set_upstream_options(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        return set_options(msg, userdata, CONFIG_OBJECT_UPSTREAM, error);
}

static int method_set_route_options(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        return set_options(msg, userdata, CONFIG_OBJECT_ROUTE, error);
}

/* org.freedesktop.DBus.Properties.Set of an Upstream's Balancer: an edit of its document, as
 * SetUpstreamOptions {balancer} (with chash's keys dropped when it is another), answered once
 * it serves like every change. sd-bus answers a property's setter at once, before a change
 * could be durable or serving, so the call is taken here, ahead of the object dispatch: a
 * filter, which sees every message first. Returns 0 for every other message. */
int bus_filter_property_set(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        static const char *const arguments[] = {"balancer", NULL};
        static const char *const chash_keys[] = {"hash_on", "hash_key", "hash_balance_factor"};
        Bus *b = userdata;
        _cleanup_(config_tree_freep) ConfigTree *t = NULL;
        _cleanup_free_ char *name = NULL;
        const char *interface, *property, *value;
        int r;

        if (!sd_bus_message_is_method_call(msg, "org.freedesktop.DBus.Properties", "Set") ||
            sd_bus_path_decode(sd_bus_message_get_path(msg), BUS_PATH_UPSTREAM, &name) <= 0 ||
            !name[0])
                return 0;
        r = sd_bus_message_read(msg, "ss", &interface, &property);
        if (r < 0 || !streq(interface, BUS_INTERFACE_UPSTREAM) || !streq(property, "Balancer"))
                return sd_bus_message_rewind(msg, true) < 0 ? -EBADMSG : 0;

        /* As sd-bus checks a writable property: CAP_SYS_ADMIN, or the service's user. */
        r = sd_bus_query_sender_privilege(msg, CAP_SYS_ADMIN);
        if (r < 0)
                return r;
        if (r == 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "Access to %s.%s() not permitted.", interface, property);
        r = sd_bus_message_enter_container(msg, 'v', "s");
        if (r < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Balancer: expected a value of type 's'");
        r = sd_bus_message_read(msg, "s", &value);
        if (r < 0)
                return r;

        Manager *m = bus_manager(b);
        r = object_document(m, CONFIG_OBJECT_UPSTREAM, "name", name, &t, error);
        if (r < 0)
                return r;
        int root = config_tree_root(t);
        r = config_tree_set(t, root, "balancer", config_tree_add_string(t, value));
        for (size_t i = 0; r >= 0 && !streq(value, "chash") && i < ELEMENTSOF(chash_keys); i++)
                r = config_tree_unset(t, root, chash_keys[i]);
        if (r < 0)
                return r;

        ConfigEdit edit = {.kind = CONFIG_OBJECT_UPSTREAM, .name = name, .document = t};
        ArgumentMap map = {.arguments = arguments};
        return apply(msg, b, &edit, &map, "upstream balancer set", NULL, NULL, error);
}

static int list(sd_bus_message *msg, const Manager *m, bool upstreams)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const Model *model = manager_model(m);
        int r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(so)");
        size_t n = upstreams ? model->n_upstreams : model->n_routes;
        for (size_t i = 0; r >= 0 && i < n; i++) {
                const char *name = upstreams ? model->upstreams[i]->config->name
                                             : model->routes[i]->config->name;
                _cleanup_free_ char *path = NULL;
                r = upstreams ? bus_upstream_path(name, &path) : bus_route_path(name, &path);
                if (r >= 0)
                        r = sd_bus_message_append(reply, "(so)", name, path);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_list_upstreams(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        return list(msg, bus_manager(userdata), true);
}

static int method_list_routes(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        return list(msg, bus_manager(userdata), false);
}

static int method_reload(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        Bus *b = userdata;
        _cleanup_(reply_freep) Reply *reply = NULL;
        _cleanup_free_ char *errors = NULL;
        int r;

        r = new_reply(b, msg, "reloaded", NULL, NULL, &reply);
        if (r < 0)
                return r;
        /* Answered once the state is removed: a caller then finds the files serving, alone. */
        r = manager_reload(bus_manager(b), on_reload_done, reply, &errors);
        if (r < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "%s",
                                         errors ? errors : strerror(-r));
        if (r > 0)
                on_reload_done(reply, 0, NULL);
        TAKE_PTR(reply);
        return 1;
}

/* Read when asked, never signalled: the count changes with every connection. */
static int property_connections(sd_bus *bus, const char *path, const char *interface,
                                const char *property, sd_bus_message *reply, void *userdata,
                                sd_bus_error *error)
{
        const Manager *m = bus_manager(userdata);
        size_t n = streq(property, "ActiveConnections") ? manager_connections(m)
                                                        : manager_max_connections(m);
        return sd_bus_message_append(reply, "u", (uint32_t)(n > UINT32_MAX ? UINT32_MAX : n));
}

const sd_bus_vtable bus_manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_ARGS(
                "AddUpstream",
                SD_BUS_ARGS("s", name, "s", scheme, "a(squ)", nodes, "a{sv}", options),
                SD_BUS_RESULT("o", path), method_add_upstream, 0),
        SD_BUS_METHOD_WITH_ARGS("RemoveUpstream", SD_BUS_ARGS("s", name), SD_BUS_NO_RESULT,
                                method_remove_upstream, 0),
        SD_BUS_METHOD_WITH_ARGS("SetUpstreamOptions",
                                SD_BUS_ARGS("s", name, "a{sv}", options, "as", reset),
                                SD_BUS_NO_RESULT, method_set_upstream_options, 0),
        SD_BUS_METHOD_WITH_ARGS("AddNode",
                                SD_BUS_ARGS("s", upstream, "s", host, "q", port, "u", weight),
                                SD_BUS_NO_RESULT, method_add_node, 0),
        SD_BUS_METHOD_WITH_ARGS("RemoveNode", SD_BUS_ARGS("s", upstream, "s", host, "q", port),
                                SD_BUS_NO_RESULT, method_remove_node, 0),
        SD_BUS_METHOD_WITH_ARGS("SetNodeWeight",
                                SD_BUS_ARGS("s", upstream, "s", host, "q", port, "u", weight),
                                SD_BUS_NO_RESULT, method_set_node_weight, 0),
        SD_BUS_METHOD_WITH_ARGS("SetNodeState",
                                SD_BUS_ARGS("s", upstream, "s", host, "q", port, "s", state),
                                SD_BUS_NO_RESULT, method_set_node_state, 0),
        SD_BUS_METHOD_WITH_ARGS(
                "AddRoute",
                SD_BUS_ARGS("s", name, "as", paths, "a(su)", upstreams, "a{sv}", options),
                SD_BUS_RESULT("o", path), method_add_route, 0),
        SD_BUS_METHOD_WITH_ARGS("RemoveRoute", SD_BUS_ARGS("s", name), SD_BUS_NO_RESULT,
                                method_remove_route, 0),
        SD_BUS_METHOD_WITH_ARGS("SetRouteOptions",
                                SD_BUS_ARGS("s", name, "a{sv}", options, "as", reset),
                                SD_BUS_NO_RESULT, method_set_route_options, 0),
        SD_BUS_METHOD_WITH_ARGS("SetRouteUpstreamWeight",
                                SD_BUS_ARGS("s", route, "s", upstream, "u", weight),
                                SD_BUS_NO_RESULT, method_set_route_upstream_weight, 0),
        SD_BUS_METHOD_WITH_ARGS("ListUpstreams", SD_BUS_NO_ARGS, SD_BUS_RESULT("a(so)", upstreams),
                                method_list_upstreams, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListRoutes", SD_BUS_NO_ARGS, SD_BUS_RESULT("a(so)", routes),
                                method_list_routes, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("Reload", NULL, NULL, method_reload, 0),
        SD_BUS_PROPERTY("ActiveConnections", "u", property_connections, 0, 0),
        SD_BUS_PROPERTY("MaxConnections", "u", property_connections, 0, 0),
        SD_BUS_SIGNAL_WITH_ARGS("NodeDrained", SD_BUS_ARGS("s", upstream, "s", host, "q", port),
                                0),
        SD_BUS_VTABLE_END,
};
