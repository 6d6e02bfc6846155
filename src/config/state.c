/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <sys/stat.h>

#include "base/hashmap.h"
#include "config/config-source.h"
#include "config/state.h"

int state_path(const char *dir, char **ret)
{
        return asprintf(ret, "%s/" STATE_FILE, dir) < 0 ? -ENOMEM : 0;
}

/* Like `mkdir -p`: parents as StateDirectory= makes them (0755), the directory itself 0700. An
 * existing directory is left as it is. */
static int mkdir_parents(const char *dir)
{
        _cleanup_free_ char *p = strdup(dir);
        if (!p)
                return -ENOMEM;
        for (char *s = strchr(p + 1, '/'); s; s = strchr(s + 1, '/')) {
                *s = 0;
                if (mkdir(p, 0755) < 0 && errno != EEXIST)
                        return -errno;
                *s = '/';
        }
        if (mkdir(p, 0700) < 0 && errno != EEXIST)
                return -errno;
        struct stat st;
        if (stat(p, &st) < 0)
                return -errno;
        return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

/* The temporary file a state is written to before the rename: named by the process, so two
 * lbproxy never share one, and opened with open(2), not mkostemp(3): ThreadSanitizer sees a
 * descriptor open(2) creates, and would take the state writer's use of a descriptor number a
 * worker closed before for a race. A file left by a crash is truncated and reused. */
static int open_temporary(const char *dir, char **ret_path)
{
        _cleanup_free_ char *tmp = NULL;
        if (asprintf(&tmp, "%s/.#" STATE_FILE ".%d", dir, (int)getpid()) < 0)
                return -ENOMEM;
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return -errno;
        *ret_path = TAKE_PTR(tmp);
        return fd;
}

int state_dir_prepare(const char *dir)
{
        int r = mkdir_parents(dir);
        if (r < 0)
                return r;

        /* What state_save() will do, once, now: a directory it cannot write to must stop the
         * start, not fail the first D-Bus change. */
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = open_temporary(dir, &tmp);
        if (fd < 0)
                return fd;
        if (unlink(tmp) < 0)
                return -errno;
        return 0;
}

int state_load(const Config *files, const char *dir, Config **ret, char **ret_errors)
{
        _cleanup_free_ char *path = NULL;
        *ret_errors = NULL;
        if (!dir)
                return 0;
        if (state_path(dir, &path) < 0)
                return -ENOMEM;
        if (access(path, F_OK) < 0)
                return errno == ENOENT ? 0 : -errno;
        /* The files as they were read, not again: the state's upstreams and routes in place of
         * theirs, checked with their listeners. */
        ConfigSource sources[] = { config_source_loaded(files), config_source_state(path) };
        int r = config_build(sources, ELEMENTSOF(sources), ret, NULL, ret_errors);
        return r < 0 ? r : 1;
}

struct StateFile {
        char *dir;
        Config *last; /* the Config written last: its objects are the keys of `texts` */
        Hashmap *texts; /* object pointer (its bytes, in last's lists) → StateText */
};

typedef struct StateText {
        char *text;
        size_t len;
} StateText;

static int free_text(const char *key, size_t key_len, void *value, void *userdata)
{
        StateText *t = value;

        free(t->text);
        free(t);
        return 0;
}

static Hashmap *texts_free(Hashmap *texts)
{
        if (texts)
                hashmap_foreach(texts, free_text, NULL);
        return hashmap_free(texts);
}

int state_file_new(const char *dir, StateFile **ret)
{
        StateFile *s = calloc(1, sizeof(*s));

        if (!s)
                return -ENOMEM;
        s->dir = strdup(dir);
        if (!s->dir) {
                free(s);
                return -ENOMEM;
        }
        *ret = s;
        return 0;
}

StateFile *state_file_free(StateFile *s)
{
        if (!s)
                return NULL;
        texts_free(s->texts);
        config_unref(s->last);
        free(s->dir);
        free(s);
        return NULL;
}

/* The text of `o`: from the last state when it was in it (moved from `old`), else made now. */
static int object_text(Hashmap *old, Hashmap *new, ConfigObjectKind kind, void *const *place,
                       const StateText **ret)
{
        const void *o = *place;
        StateText *t = old ? hashmap_remove(old, (const char *)&o, sizeof(o)) : NULL;
        int r;

        if (!t) {
                t = calloc(1, sizeof(*t));
                if (!t)
                        return -ENOMEM;
                r = config_dump_item(kind, o, &t->text, &t->len);
                if (r < 0) {
                        free(t);
                        return r;
                }
        }
        /* The key is the object's place in the Config's list, which s->last keeps. */
        r = hashmap_put(new, (const char *)place, sizeof(o), t);
        if (r < 0) {
                free(t->text);
                free(t);
                return r;
        }
        *ret = t;
        return 0;
}

static int write_objects(FILE *f, Hashmap *old, Hashmap *new, const char *key,
                         ConfigObjectKind kind, void *const *objects, size_t n)
{
        fprintf(f, "%s:%s\n", key, n ? "" : " []");
        for (size_t i = 0; i < n; i++) {
                const StateText *t;
                int r = object_text(old, new, kind, &objects[i], &t);

                if (r < 0)
                        return r;
                fwrite(t->text, 1, t->len, f);
        }
        return 0;
}

static int fsync_dir(const char *dir)
{
        _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || fsync(fd) < 0)
                return -errno;
        return 0;
}

int state_file_save(StateFile *s, const Config *c)
{
        _cleanup_free_ char *path = NULL, *tmp = NULL;
        Hashmap *texts;
        int r;

        if (state_path(s->dir, &path) < 0)
                return -ENOMEM;
        texts = hashmap_new_borrowing(c->n_upstreams + c->n_routes);
        if (!texts)
                return -ENOMEM;

        _cleanup_close_ int fd = open_temporary(s->dir, &tmp);
        if (fd < 0) {
                hashmap_free(texts);
                return fd;
        }
        FILE *f = fdopen(fd, "w");
        if (!f) {
                r = -errno;
                unlink(tmp);
                hashmap_free(texts);
                return r;
        }
        fd = -EBADF; /* the FILE owns it now */
        /* A few large writes rather than one per 4 KiB (10,000 routes are about 1 MB). */
        (void)setvbuf(f, NULL, _IOFBF, 256 * 1024);

        fputs("# lbproxy runtime state: the configuration as changed over D-Bus.\n"
              "# Written by lbproxy; Reload() makes the configuration files current again.\n",
              f);
        r = config_dump_settings(c, f);
        if (r >= 0)
                r = write_objects(f, s->texts, texts, "upstreams", CONFIG_OBJECT_UPSTREAM,
                                  (void *const *)c->upstreams, c->n_upstreams);
        if (r >= 0)
                r = write_objects(f, s->texts, texts, "routes", CONFIG_OBJECT_ROUTE,
                                  (void *const *)c->routes, c->n_routes);
        if (r >= 0 && (fflush(f) != 0 || fsync(fileno(f)) < 0))
                r = -errno;
        if (fclose(f) != 0 && r >= 0)
                r = -errno;
        if (r >= 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0)
                unlink(tmp);

        /* The texts made are right whatever became of the file: kept for the next one, with
         * the Config whose objects they describe. */
        texts_free(s->texts);
        s->texts = texts;
        config_unref(s->last);
        s->last = config_ref((Config *)c);
        if (r < 0)
                return r;
        return fsync_dir(s->dir);
}

int state_file_remove(StateFile *s)
{
        texts_free(s->texts);
        s->texts = NULL;
        s->last = config_unref(s->last);
        return state_remove(s->dir);
}

int state_save(const char *dir, const Config *c)
{
        StateFile *s;
        int r = state_file_new(dir, &s);

        if (r < 0)
                return r;
        r = state_file_save(s, c);
        state_file_free(s);
        return r;
}

int state_remove(const char *dir)
{
        _cleanup_free_ char *path = NULL;
        if (state_path(dir, &path) < 0)
                return -ENOMEM;
        if (unlink(path) < 0 && errno != ENOENT)
                return -errno;
        return fsync_dir(dir);
}

int state_reject(const char *dir)
{
        _cleanup_free_ char *path = NULL, *rejected = NULL;
        if (state_path(dir, &path) < 0 ||
            asprintf(&rejected, "%s/" STATE_REJECTED_FILE, dir) < 0)
                return -ENOMEM;
        if (rename(path, rejected) < 0)
                return -errno;
        return fsync_dir(dir);
}
