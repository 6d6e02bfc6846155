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

int state_dir_prepare(const char *dir)
{
        int r = mkdir_parents(dir);
        if (r < 0)
                return r;

        /* What state_save() will do, once, now: a directory it cannot write to must stop the
         * start, not fail the first D-Bus change. */
        _cleanup_free_ char *tmp = NULL;
        if (asprintf(&tmp, "%s/.#" STATE_FILE ".XXXXXX", dir) < 0)
                return -ENOMEM;
        _cleanup_close_ int fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return -errno;
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
