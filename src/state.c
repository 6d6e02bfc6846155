/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <sys/stat.h>

#include "state.h"

int state_path(const char *dir, char **ret)
{
        return asprintf(ret, "%s/" STATE_FILE, dir) < 0 ? -ENOMEM : 0;
}

bool state_exists(const char *dir)
{
        _cleanup_free_ char *path = NULL;
        return dir && state_path(dir, &path) >= 0 && access(path, F_OK) == 0;
}

static int fsync_dir(const char *dir)
{
        _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || fsync(fd) < 0)
                return -errno;
        return 0;
}

int state_save(const char *dir, const Config *c)
{
        _cleanup_free_ char *path = NULL, *tmp = NULL;
        if (state_path(dir, &path) < 0 || asprintf(&tmp, "%s/.#" STATE_FILE ".XXXXXX", dir) < 0)
                return -ENOMEM;

        _cleanup_close_ int fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return -errno;
        FILE *f = fdopen(fd, "w");
        if (!f) {
                int r = -errno;
                unlink(tmp);
                return r;
        }
        fd = -EBADF; /* the FILE owns it now */

        int r = 0;
        fputs("# lbproxy runtime state: the configuration as changed over D-Bus.\n"
              "# Written by lbproxy; Reload() makes the configuration files current again.\n",
              f);
        if (config_dump(c, f) < 0)
                r = -EIO;
        if (fflush(f) != 0 || fsync(fileno(f)) < 0)
                r = r < 0 ? r : -errno;
        if (fclose(f) != 0 && r == 0)
                r = -errno;
        if (r == 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0) {
                unlink(tmp);
                return r;
        }
        return fsync_dir(dir);
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

int state_merge(Config *files, Config *state)
{
        size_t n_files = strv_length(files->files), n_state = strv_length(state->files);

        /* Marks of the moved objects point into state->files: those strings move along. */
        char **l = realloc(files->files, (n_files + n_state + 1) * sizeof(char *));
        if (!l)
                return -ENOMEM;
        files->files = l;
        for (size_t i = 0; i < n_state; i++) {
                l[n_files + i] = state->files[i];
                state->files[i] = NULL;
        }
        l[n_files + n_state] = NULL;

#define SWAP(a, b)                                                                                         do {                                                                                                       __typeof__(a) _t = (a);                                                                            (a) = (b);                                                                                         (b) = _t;                                                                                  } while (0)
        SWAP(files->upstreams, state->upstreams);
        SWAP(files->n_upstreams, state->n_upstreams);
        SWAP(files->routes, state->routes);
        SWAP(files->n_routes, state->n_routes);
#undef SWAP
        return 0;
}
