/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <sys/stat.h>

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

typedef struct StateText {
        char *text;
        size_t len;
} StateText;

/* The texts of one list of the Config last written, in its order. */
typedef struct StateTexts {
        StateText *texts;
        size_t n;
} StateTexts;

#define STATE_WRITE_BUFFER (256 * 1024)

struct StateFile {
        char *dir;
        Config *last; /* the Config written last: its objects are what the texts say */
        StateTexts upstreams, routes;
};

static void texts_done(StateTexts *t)
{
        for (size_t i = 0; i < t->n; i++)
                free(t->texts[i].text);
        t->texts = mfree(t->texts);
        t->n = 0;
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
        texts_done(&s->upstreams);
        texts_done(&s->routes);
        config_unref(s->last);
        free(s->dir);
        free(s);
        return NULL;
}

/* Writes the texts of `objects`, in order, into `f`, and keeps them in `out` (n of them) for the
 * next write. A text comes from the last write when its object was in it (objects are immutable
 * and shared between Configs: the same pointer is the same text), else it is made now. A change
 * edits, adds or removes an object and leaves the order of the rest, so the last write's list is
 * walked alongside: its next object, or the one after (one was removed), is this one, or this
 * one is new. Sequential, no lookup: 10,000 routes cost a walk. A list reordered (a reload)
 * makes its texts again. */
static int write_objects(FILE *f, StateTexts *old, void *const *old_objects,
                         ConfigObjectKind kind, const char *key, void *const *objects, size_t n,
                         StateTexts *out)
{
        fprintf(f, "%s:%s\n", key, n ? "" : " []");
        out->texts = n ? calloc(n, sizeof(StateText)) : NULL;
        if (n && !out->texts)
                return -ENOMEM;
        out->n = n;
        size_t j = 0; /* in old */
        for (size_t i = 0; i < n; i++) {
                StateText *t = &out->texts[i];
                size_t k = SIZE_MAX;
                if (j < old->n && old_objects[j] == objects[i])
                        k = j;
                else if (j + 1 < old->n && old_objects[j + 1] == objects[i])
                        k = j + 1;
                if (k != SIZE_MAX) {
                        *t = old->texts[k];
                        old->texts[k] = (StateText){};
                        j = k + 1;
                } else {
                        int r = config_dump_item(kind, objects[i], &t->text, &t->len);
                        if (r < 0) {
                                out->n = i; /* the texts made so far, of objects [0, i) */
                                return r;
                        }
                }
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
        _cleanup_free_ char *path = NULL, *tmp = NULL, *buffer = NULL;
        StateTexts upstreams = {}, routes = {};
        int r;

        if (state_path(s->dir, &path) < 0)
                return -ENOMEM;

        _cleanup_close_ int fd = open_temporary(s->dir, &tmp);
        if (fd < 0)
                return fd;
        FILE *f = fdopen(fd, "w");
        if (!f) {
                r = -errno;
                unlink(tmp);
                return r;
        }
        fd = -EBADF; /* the FILE owns it now */
        /* A few large writes rather than one per 4 KiB (10,000 routes are about 1 MB: 234
         * write() calls, each a trip into the kernel on the core a worker may share). glibc
         * takes the size only with a buffer given: freed after fclose(), at the return. */
        buffer = malloc(STATE_WRITE_BUFFER);
        if (buffer)
                (void)setvbuf(f, buffer, _IOFBF, STATE_WRITE_BUFFER);

        fputs("# lbproxy runtime state: the configuration as changed over D-Bus.\n"
              "# Written by lbproxy; Reload() makes the configuration files current again.\n",
              f);
        r = config_dump_settings(c, f);
        /* With no last write its lists of texts are empty, and its objects never looked at. */
        if (r >= 0)
                r = write_objects(f, &s->upstreams,
                                  s->last ? (void *const *)s->last->upstreams : NULL,
                                  CONFIG_OBJECT_UPSTREAM, "upstreams",
                                  (void *const *)c->upstreams, c->n_upstreams, &upstreams);
        if (r >= 0)
                r = write_objects(f, &s->routes, s->last ? (void *const *)s->last->routes : NULL,
                                  CONFIG_OBJECT_ROUTE, "routes", (void *const *)c->routes,
                                  c->n_routes, &routes);
        if (r >= 0 && (fflush(f) != 0 || fsync(fileno(f)) < 0))
                r = -errno;
        if (fclose(f) != 0 && r >= 0)
                r = -errno;
        if (r >= 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0)
                unlink(tmp);

        /* The texts made are right whatever became of the file: kept for the next one, with
         * the Config whose objects they describe. A list cut short by an error keeps what it
         * has (the rest are made again next time: their objects no longer line up). */
        texts_done(&s->upstreams);
        texts_done(&s->routes);
        s->upstreams = upstreams;
        s->routes = routes;
        config_unref(s->last);
        s->last = config_ref((Config *)c);
        if (r < 0)
                return r;
        return fsync_dir(s->dir);
}

int state_file_remove(StateFile *s)
{
        texts_done(&s->upstreams);
        texts_done(&s->routes);
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
