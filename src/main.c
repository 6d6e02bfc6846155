/* SPDX-License-Identifier: MIT */
#include <getopt.h>
#include <inttypes.h>

#include "base/event-alloc.h"
#include "base/log.h"
#include "bus/bus.h"
#include "config/config.h"
#include "config/state.h"
#include "control/manager.h"
#include "control/store-sync.h"

#define DEFAULT_CONFIG_PATH "/etc/lbproxy"

typedef struct Arguments {
        char **config_paths; /* NULL-terminated */
        char *state_dir;
        bool check;
        bool dump;
} Arguments;

static void help(void)
{
        printf("Usage: lbproxy [OPTION]...\n"
               "A load-balancing HTTP/1.1 proxy, configured in YAML, run by systemd.\n\n"
               "  -c, --config PATH   a YAML file, or a directory whose *.yaml files are read\n"
               "                      in name order; may repeat (default: %s)\n"
               "  -t, --check         check the configuration, print what is wrong, exit 0 or 1\n"
               "      --dump          with --check: print the configuration as native YAML\n"
               "      --state-dir DIR where changes made over D-Bus are kept\n"
               "                      (default: $STATE_DIRECTORY)\n"
               "  -V, --version       print the version and exit\n"
               "  -h, --help          print this help and exit\n",
               DEFAULT_CONFIG_PATH);
}

static int strv_push(char ***l, const char *s)
{
        size_t n = strv_length(*l);
        char **nl = realloc(*l, (n + 2) * sizeof(char *));
        if (!nl)
                return -ENOMEM;
        *l = nl;
        nl[n] = strdup(s);
        nl[n + 1] = NULL;
        return nl[n] ? 0 : -ENOMEM;
}

/* Returns 1 to go on, 0 to exit successfully (help, version), or a negative errno. */
static int parse_arguments(int argc, char **argv, Arguments *a)
{
        enum { ARG_DUMP = 0x100, ARG_STATE_DIR };
        static const struct option options[] = {
                { "config", required_argument, NULL, 'c' },
                { "check", no_argument, NULL, 't' },
                { "dump", no_argument, NULL, ARG_DUMP },
                { "state-dir", required_argument, NULL, ARG_STATE_DIR },
                { "version", no_argument, NULL, 'V' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int c;

        while ((c = getopt_long(argc, argv, "c:tVh", options, NULL)) >= 0) {
                switch (c) {
                case 'c':
                        if (strv_push(&a->config_paths, optarg) < 0)
                                return -ENOMEM;
                        break;
                case 't':
                        a->check = true;
                        break;
                case ARG_DUMP:
                        a->dump = true;
                        break;
                case ARG_STATE_DIR:
                        free(a->state_dir);
                        a->state_dir = strdup(optarg);
                        if (!a->state_dir)
                                return -ENOMEM;
                        break;
                case 'V':
                        printf("lbproxy %s\n", LBPROXY_VERSION);
                        return 0;
                case 'h':
                        help();
                        return 0;
                default:
                        return -EINVAL;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "lbproxy: unexpected argument '%s' (see --help)\n", argv[optind]);
                return -EINVAL;
        }
        if (a->dump && !a->check) {
                fprintf(stderr, "lbproxy: --dump goes with --check\n");
                return -EINVAL;
        }
        if (!a->config_paths && strv_push(&a->config_paths, DEFAULT_CONFIG_PATH) < 0)
                return -ENOMEM;
        /* systemd's StateDirectory= sets $STATE_DIRECTORY, colon-separated: the first is ours. */
        const char *e = getenv("STATE_DIRECTORY");
        if (!a->state_dir && e && *e) {
                a->state_dir = strndup(e, strcspn(e, ":"));
                if (!a->state_dir)
                        return -ENOMEM;
        }
        return 1;
}

/* Moves the runtime state aside and says why: one journal entry with every reason, and the
 * first (a file:line:column) as the STATUS= note returned. */
static int reject_state(const char *dir, const char *why, char **ret_note)
{
        int r = state_reject(dir);
        if (r < 0)
                log_warning_errno(r, "Cannot move the runtime state in %s aside: %m", dir);
        log_event(LOG_ERR, LBPROXY_MESSAGE_STATE_REJECTED, NULL, NULL, NULL,
                  "Runtime state %s/" STATE_FILE " rejected, started from the configuration "
                  "files alone%s:\n%s",
                  dir, r < 0 ? "" : " (moved to " STATE_REJECTED_FILE ")", why);
        if (asprintf(ret_note, "runtime state rejected%s: %.*s",
                     r < 0 ? "" : " (moved to " STATE_REJECTED_FILE ")",
                     (int)strcspn(why, "\n"), why) < 0)
                return log_error_errno(-ENOMEM, "Cannot load the runtime state: %m");
        return 0;
}

/* The files' upstreams and routes, or the runtime state's: changes made over D-Bus outlive a
 * restart, and win over the files until a Reload(). A state that does not parse, or does not
 * fit the files (checked as one configuration, as the files are), is moved aside. Returns 1
 * when the state is used, 0 when not (*ret_note then says why, when there was one). */
static int use_state(const char *dir, Config **config, char **ret_note)
{
        _cleanup_(config_unrefp) Config *merged = NULL;
        _cleanup_free_ char *errors = NULL;

        int r = state_load(*config, dir, &merged, &errors);
        if (r == -ENOMEM)
                return log_error_errno(-ENOMEM, "Cannot load the runtime state: %m");
        if (r == 0)
                return 0;
        if (r < 0)
                return reject_state(dir, errors ? errors : strerror(-r), ret_note);
        log_info("Using the upstreams and routes of the runtime state in %s/" STATE_FILE
                 " (changes made over D-Bus); Reload() goes back to the files", dir);
        config_unref(*config);
        *config = TAKE_PTR(merged);
        return 1;
}

/* The store's upstreams and routes in place of the files' when it answers: 1, with what it
 * held in *ret_start. 0 when it does not (*ret_why says why) or what it holds does not fit the
 * files (said here; *ret_why NULL: it is not away); the files and the state serve meanwhile. */
static int use_store(const Config *files, Config **config, EtcdRange *ret_start, char **ret_why)
{
        Config *from_store = NULL;
        int r = store_read_initial(files, &from_store, ret_start, ret_why);

        if (r == -ENOMEM)
                return log_error_errno(r, "Cannot read the store: %m");
        if (r > 0) {
                log_info("Using the upstreams and routes of etcd at revision %" PRId64,
                         ret_start->revision);
                config_unref(*config);
                *config = from_store;
                return 1;
        }
        if (r < 0) {
                log_event(LOG_ERR, LBPROXY_MESSAGE_STORE, NULL, NULL, NULL,
                          "The store's upstreams and routes do not fit the files, starting "
                          "without them: %s", *ret_why ? *ret_why : strerror(-r));
                *ret_why = mfree(*ret_why);
        }
        return 0;
}

int main(int argc, char **argv)
{
        Arguments args = {};
        _cleanup_(config_unrefp) Config *config = NULL, *files = NULL;
        _cleanup_free_ char *errors = NULL;

        log_setup();
        event_alloc_setup();
        int r = parse_arguments(argc, argv, &args);
        if (r <= 0) {
                strv_free(args.config_paths);
                free(args.state_dir);
                return r < 0 ? 2 : 0;
        }
        _cleanup_strv_free_ char **paths = args.config_paths;
        _cleanup_free_ char *state_dir = args.state_dir;

        r = config_load(paths, &errors, &config);
        if (r < 0) {
                if (errors && *errors)
                        fprintf(stderr, "%s\n", errors);
                else
                        fprintf(stderr, "lbproxy: cannot load the configuration: %s\n",
                                strerror(-r));
                return 1;
        }
        for (char **w = config->warnings; w && *w; w++)
                if (args.check)
                        fprintf(stderr, "warning: %s\n", *w);
                else
                        log_warning("%s", *w);
        /* Read once: the state's upstreams and routes are put in place of theirs without
         * reading them again, and should the result not build, the files alone serve. */
        files = config_ref(config);

        /* With a store, its upstreams and routes in place of the files' (state.yaml is then the
         * cache of the last good ones, for a start while etcd cannot be reached). */
        bool with_store = !args.check && config->store.etcd.endpoints;
        _cleanup_(etcd_range_done) EtcdRange store_start = {};
        _cleanup_free_ char *store_why = NULL;
        /* What a whole read of the store starts from, kept whatever serves at start. */
        _cleanup_(config_unrefp) Config *store_files = with_store ? config_ref(files) : NULL;
        if (with_store && use_store(files, &config, &store_start, &store_why) < 0)
                return 1;
        int64_t store_revision = store_start.revision;

        _cleanup_free_ char *note = NULL;
        bool from_state = false;
        if (!args.check && state_dir) {
                /* A daemon that cannot keep its changes must say so now, not at the first
                 * D-Bus call. */
                r = state_dir_prepare(state_dir);
                if (r < 0) {
                        log_error_errno(r, "Cannot use the state directory %s: %m (changes made "
                                        "over D-Bus are kept there)", state_dir);
                        return 1;
                }
                if (store_revision > 0) {
                        r = state_save(state_dir, config);
                        if (r < 0)
                                log_warning_errno(r, "Cannot keep the store's configuration in "
                                                  "%s: %m", state_dir);
                } else {
                        r = use_state(state_dir, &config, &note);
                        if (r < 0)
                                return 1;
                        from_state = r > 0;
                }
        } else if (!args.check)
                log_notice("No state directory (--state-dir or $STATE_DIRECTORY): changes made "
                           "over D-Bus last until lbproxy stops");

        if (args.check) {
                size_t n_listeners = config->n_listeners, n_upstreams = config->n_upstreams,
                       n_routes = config->n_routes;
                if (args.dump)
                        config_dump(config, stdout);
                /* Building the model checks what the files alone cannot (a CA file that does
                 * not load); names are not resolved. */
                _cleanup_(registry_freep) Registry *registry = NULL;
                Model *model = NULL;
                _cleanup_free_ char *error = NULL;
                r = registry_new(&registry);
                if (r >= 0)
                        r = model_new(TAKE_PTR(config), &(ModelContext){ .registry = registry },
                                      &model, &error);
                if (r < 0) {
                        fprintf(stderr, "%s\n", error ? error : strerror(-r));
                        return 1;
                }
                model_unref(model);
                if (!args.dump)
                        fprintf(stderr, "lbproxy: configuration is valid: %zu listeners, %zu "
                                "upstreams, %zu routes\n", n_listeners, n_upstreams, n_routes);
                return 0;
        }

        _cleanup_(manager_freep) Manager *m = NULL;
        _cleanup_free_ char *error = NULL;
        r = manager_new(paths, state_dir, TAKE_PTR(config), &m, &error);
        /* The state's upstreams may be what does not build (a CA file gone since): then the
         * files alone, which a start without the state would have built. */
        if (r < 0 && r != -ENOMEM && from_state) {
                _cleanup_free_ char *why = TAKE_PTR(error);
                int k = manager_new(paths, state_dir, TAKE_PTR(files), &m, &error);
                if (k >= 0) {
                        r = reject_state(state_dir, why ? why : strerror(-r), &note);
                } else if (!error)
                        error = TAKE_PTR(why);
        }
        if (r >= 0 && note)
                r = manager_set_status_note(m, note);
        if (r < 0) {
                if (error)
                        log_error("Failed to set up: %s", error);
                else
                        log_error_errno(r, "Failed to set up: %m");
                return 1;
        }
        r = manager_start(m, &bus_frontend);
        if (r < 0)
                return 1;
        /* Freed before the Manager, whose loop its calls run on. */
        _cleanup_(store_sync_freep) StoreSync *store = NULL;
        if (with_store) {
                r = store_sync_new(m, store_files, store_revision > 0 ? &store_start : NULL,
                                   store_why, &store);
                if (r < 0) {
                        log_error_errno(r, "Cannot follow the store: %m");
                        return 1;
                }
        }
        return manager_run(m);
}
