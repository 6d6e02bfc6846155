/* SPDX-License-Identifier: MIT */
/* An upstream's health_check: its defaults (APISIX's), its tables for the native schema, the
 * status lists both forms read ("200-208" ranges), and its comparison. The APISIX translator
 * (apisix.c) reads its CRD names into the same struct with the same value parsers. */

#include "config/config-health.h"

/* ---- defaults and comparison ---- */

static void status_set_add_range(HealthStatusSet *s, unsigned first, unsigned last)
{
        for (unsigned i = first; i <= last; i++)
                health_status_set_add(s, i);
}

/* APISIX's defaults (apisix/schema_def.lua, health_checker), but for the counters, which
 * APISIX has from 1 and lbproxy from 0 (0: that event never changes the state). */
void config_health_check_init(ConfigHealthCheck *hc)
{
        ConfigHealthActive *a = &hc->active;

        *hc = (ConfigHealthCheck){};
        a->type = HEALTH_CHECK_HTTP;
        a->timeout_usec = USEC_PER_SEC;
        a->concurrency = 10;
        a->verify = 1;
        a->healthy.interval_usec = USEC_PER_SEC;
        a->healthy.successes = 2;
        health_status_set_add(&a->healthy.http_statuses, 200);
        health_status_set_add(&a->healthy.http_statuses, 302);
        a->unhealthy.interval_usec = USEC_PER_SEC;
        a->unhealthy.http_failures = 5;
        a->unhealthy.tcp_failures = 2;
        a->unhealthy.timeouts = 3;
        health_status_set_add(&a->unhealthy.http_statuses, 429);
        health_status_set_add(&a->unhealthy.http_statuses, 404);
        status_set_add_range(&a->unhealthy.http_statuses, 500, 505);

        /* The built-in check: a node that answers is healthy, whatever its status; two
         * connection failures or three timeouts in a row put it down, and a trial request
         * now and then (lb/health.c) finds out when it is back. */
        hc->passive.healthy.successes = 1;
        status_set_add_range(&hc->passive.healthy.http_statuses, HEALTH_STATUS_MIN,
                             HEALTH_STATUS_MAX);
        hc->passive.unhealthy.tcp_failures = 2;
        hc->passive.unhealthy.timeouts = 3;
}

void config_health_passive_init(ConfigHealthPassive *p)
{
        *p = (ConfigHealthPassive){.enabled = true};
        p->healthy.successes = 5;
        status_set_add_range(&p->healthy.http_statuses, 200, 208);
        health_status_set_add(&p->healthy.http_statuses, 226);
        status_set_add_range(&p->healthy.http_statuses, 300, 308);
        p->unhealthy.http_failures = 5;
        p->unhealthy.tcp_failures = 2;
        p->unhealthy.timeouts = 7;
        health_status_set_add(&p->unhealthy.http_statuses, 429);
        health_status_set_add(&p->unhealthy.http_statuses, 500);
        health_status_set_add(&p->unhealthy.http_statuses, 503);
}

void config_health_check_done(ConfigHealthCheck *hc)
{
        free(hc->active.http_path);
        free(hc->active.host);
        strv_free(hc->active.headers);
}

static bool health_healthy_equal(const ConfigHealthHealthy *a, const ConfigHealthHealthy *b)
{
        return a->interval_usec == b->interval_usec && a->successes == b->successes &&
               memcmp(&a->http_statuses, &b->http_statuses, sizeof(HealthStatusSet)) == 0;
}

static bool health_unhealthy_equal(const ConfigHealthUnhealthy *a, const ConfigHealthUnhealthy *b)
{
        return a->interval_usec == b->interval_usec && a->http_failures == b->http_failures &&
               a->tcp_failures == b->tcp_failures && a->timeouts == b->timeouts &&
               memcmp(&a->http_statuses, &b->http_statuses, sizeof(HealthStatusSet)) == 0;
}

bool config_health_check_equal(const ConfigHealthCheck *a, const ConfigHealthCheck *b)
{
        const ConfigHealthActive *x = &a->active, *y = &b->active;

        return x->enabled == y->enabled && x->type == y->type &&
               streq_ptr(x->http_path, y->http_path) && streq_ptr(x->host, y->host) &&
               x->port == y->port && x->timeout_usec == y->timeout_usec &&
               x->concurrency == y->concurrency && strv_equal(x->headers, y->headers) &&
               x->verify == y->verify && health_healthy_equal(&x->healthy, &y->healthy) &&
               health_unhealthy_equal(&x->unhealthy, &y->unhealthy) &&
               a->passive.enabled == b->passive.enabled &&
               health_healthy_equal(&a->passive.healthy, &b->passive.healthy) &&
               health_unhealthy_equal(&a->passive.unhealthy, &b->passive.unhealthy);
}

/* ---- status lists ---- */

static bool status_range(const char *s, int64_t *ret_first, int64_t *ret_last)
{
        size_t a = strspn(s, "0123456789"), b;

        if (a == 0 || a > 3 || s[a] != '-')
                return false;
        b = strspn(s + a + 1, "0123456789");
        if (b == 0 || b > 3 || s[a + 1 + b] != 0)
                return false;
        *ret_first = strtol(s, NULL, 10);
        *ret_last = strtol(s + a + 1, NULL, 10);
        return true;
}

int config_parse_statuses(ConfigContext *ctx, const ConfigField *f, yaml_node_t *node, void *base,
                          const char *path)
{
        HealthStatusSet set = {};
        char p[CONFIG_PATH_MAX], esc[CONFIG_ESCAPE_MAX];
        bool ok = true;
        size_t n;

        n = config_value_sequence(ctx, node, path, NULL, &config_count_health_statuses);
        if (node->type != YAML_SEQUENCE_NODE || config_has_errors_under(ctx, path))
                return 0;
        for (size_t i = 0; i < n; i++) {
                yaml_node_t *item = config_sequence_item(ctx, node, i);
                int64_t first, last;
                const char *v;

                if (!item)
                        return 0;
                config_path_index(p, path, i);
                v = item->type == YAML_SCALAR_NODE ? (const char *)item->data.scalar.value : NULL;
                if (v && status_range(v, &first, &last)) {
                        if (first < HEALTH_STATUS_MIN || last > HEALTH_STATUS_MAX ||
                            first > last) {
                                config_node_error(ctx, item, p,
                                                  "invalid status range '%s' (expected FIRST-LAST "
                                                  "within %d..%d)",
                                                  config_node_escape(item, esc),
                                                  HEALTH_STATUS_MIN, HEALTH_STATUS_MAX);
                                ok = false;
                                continue;
                        }
                } else if (!config_value_integer(ctx, item, p, HEALTH_STATUS_MIN,
                                                 HEALTH_STATUS_MAX, &first)) {
                        ok = false;
                        continue;
                } else
                        last = first;
                for (int64_t s = first; s <= last; s++)
                        health_status_set_add(&set, (unsigned)s);
        }
        if (ok)
                *(HealthStatusSet *)((char *)base + f->offset) = set;
        return 0;
}

/* ---- checks across keys ---- */

void config_health_check_statuses(ConfigContext *ctx, const ConfigHealthHealthy *h,
                                  const ConfigHealthUnhealthy *u, yaml_node_t *healthy,
                                  yaml_node_t *unhealthy, const char *const keys[3],
                                  const char *path)
{
        yaml_node_t *hl = healthy ? config_mapping_get(ctx->document, healthy, keys[2]) : NULL;
        yaml_node_t *ul = unhealthy ? config_mapping_get(ctx->document, unhealthy, keys[2]) : NULL;
        char p[CONFIG_PATH_MAX], q[CONFIG_PATH_MAX];
        bool in_unhealthy = ul != NULL;

        if (!hl && !ul)
                return;
        config_path_join(q, path, keys[in_unhealthy ? 1 : 0]);
        config_path_join(p, q, keys[2]);
        /* A list that did not load was reported already. */
        if (config_has_errors_under(ctx, p))
                return;
        for (unsigned s = HEALTH_STATUS_MIN; s <= HEALTH_STATUS_MAX; s++)
                if (health_status_set_has(&h->http_statuses, s) &&
                    health_status_set_has(&u->http_statuses, s)) {
                        config_node_error(ctx, in_unhealthy ? ul : hl, p,
                                          "status %u is in %s.%s too%s", s,
                                          keys[in_unhealthy ? 0 : 1], keys[2],
                                          (in_unhealthy ? hl : ul) ? "" : " (by default)");
                        return;
                }
}

/* ---- the native tables ---- */

static void check_positive(ConfigContext *ctx, const ConfigTable *t, yaml_node_t *const *values,
                           const char *key, uint64_t usec, const char *path)
{
        yaml_node_t *v = config_field_value(t, values, key);
        char p[CONFIG_PATH_MAX];

        config_path_join(p, path, key);
        if (v && usec == 0 && !config_has_errors_under(ctx, p))
                config_node_error(ctx, v, p, "must be longer than 0");
}

static int healthy_finish(ConfigContext *ctx, const ConfigTable *t, yaml_node_t *node,
                          yaml_node_t *const *values, void *item, const char *path)
{
        check_positive(ctx, t, values, "interval", ((ConfigHealthHealthy *)item)->interval_usec,
                       path);
        return 0;
}

static int unhealthy_finish(ConfigContext *ctx, const ConfigTable *t, yaml_node_t *node,
                            yaml_node_t *const *values, void *item, const char *path)
{
        check_positive(ctx, t, values, "interval",
                       ((ConfigHealthUnhealthy *)item)->interval_usec, path);
        return 0;
}

#define COUNTER RANGE(0, HEALTH_COUNTER_MAX, unsigned, false)

static const ConfigField active_healthy_fields[] = {
        FIELD("interval", config_parse_duration_field,
              offsetof(ConfigHealthHealthy, interval_usec), NULL),
        FIELD("successes", config_parse_integer, offsetof(ConfigHealthHealthy, successes),
              COUNTER),
        FIELD("http_statuses", config_parse_statuses,
              offsetof(ConfigHealthHealthy, http_statuses), NULL),
};

static const ConfigField active_unhealthy_fields[] = {
        FIELD("interval", config_parse_duration_field,
              offsetof(ConfigHealthUnhealthy, interval_usec), NULL),
        FIELD("http_failures", config_parse_integer,
              offsetof(ConfigHealthUnhealthy, http_failures), COUNTER),
        FIELD("tcp_failures", config_parse_integer, offsetof(ConfigHealthUnhealthy, tcp_failures),
              COUNTER),
        FIELD("timeouts", config_parse_integer, offsetof(ConfigHealthUnhealthy, timeouts),
              COUNTER),
        FIELD("http_statuses", config_parse_statuses,
              offsetof(ConfigHealthUnhealthy, http_statuses), NULL),
};

static const ConfigTable active_healthy_table =
        TABLE(active_healthy_fields, NULL, healthy_finish);
static const ConfigTable active_unhealthy_table =
        TABLE(active_unhealthy_fields, NULL, unhealthy_finish);
/* Passive checks watch requests: the active tables' fields but the first, the interval. */
static const ConfigTable passive_healthy_table = {
        .fields = active_healthy_fields + 1, .n_fields = ELEMENTSOF(active_healthy_fields) - 1
};
static const ConfigTable passive_unhealthy_table = {
        .fields = active_unhealthy_fields + 1,
        .n_fields = ELEMENTSOF(active_unhealthy_fields) - 1
};

static const ConfigChoice choice_type = {.what = "type", .names = config_health_check_type_names,
                                         .n_names = _HEALTH_CHECK_TYPE_MAX};
static const ConfigValidator validate_probe_path = {"path", config_check_probe_path};
static const ConfigValidator validate_host_port = {"host", config_check_host_port};
static const ConfigStrv strv_headers = {
        &(const ConfigValidator){"header", config_check_probe_header},
        "must not be empty (leave headers: out to send none)",
        &config_count_health_headers,
};

static const char *const native_keys[3] = {"healthy", "unhealthy", "http_statuses"};

static void active_init(void *item)
{
        ((ConfigHealthActive *)item)->enabled = true;
}

static int active_finish(ConfigContext *ctx, const ConfigTable *t, yaml_node_t *node,
                         yaml_node_t *const *values, void *item, const char *path)
{
        /* Keys a probe of the wrong type would not use: a mistake to point at. */
        static const struct {
                const char *key;
                unsigned types;
        } typed[] = {
                {"http_path", 1u << HEALTH_CHECK_HTTP | 1u << HEALTH_CHECK_HTTPS},
                {"host", 1u << HEALTH_CHECK_HTTP | 1u << HEALTH_CHECK_HTTPS},
                {"headers", 1u << HEALTH_CHECK_HTTP | 1u << HEALTH_CHECK_HTTPS},
                {"verify", 1u << HEALTH_CHECK_HTTPS},
        };
        ConfigHealthActive *a = item;
        char p[CONFIG_PATH_MAX];

        config_path_join(p, path, "type");
        if (!config_has_errors_under(ctx, p))
                for (size_t i = 0; i < ELEMENTSOF(typed); i++) {
                        yaml_node_t *v = config_field_value(t, values, typed[i].key);

                        if (!v || (typed[i].types & (1u << a->type)))
                                continue;
                        config_path_join(p, path, typed[i].key);
                        config_node_error(ctx, v, p, "only used with type %s (this check's type "
                                                     "is %s)",
                                          typed[i].types & (1u << HEALTH_CHECK_HTTP)
                                                  ? "http or https"
                                                  : "https",
                                          health_check_type_to_string(a->type));
                }
        check_positive(ctx, t, values, "timeout", a->timeout_usec, path);
        config_health_check_statuses(ctx, &a->healthy, &a->unhealthy,
                                     config_field_value(t, values, "healthy"),
                                     config_field_value(t, values, "unhealthy"), native_keys,
                                     path);
        if (!a->http_path) {
                a->http_path = strdup("/");
                if (!a->http_path)
                        return -ENOMEM;
        }
        return 0;
}

static const ConfigField active_fields[] = {
        FIELD("type", config_parse_choice, offsetof(ConfigHealthActive, type), &choice_type),
        FIELD("http_path", config_parse_string, offsetof(ConfigHealthActive, http_path),
              &validate_probe_path),
        FIELD("host", config_parse_string, offsetof(ConfigHealthActive, host),
              &validate_host_port),
        FIELD("port", config_parse_integer, offsetof(ConfigHealthActive, port),
              RANGE(1, CONFIG_PORT_MAX, uint16_t, false)),
        FIELD("timeout", config_parse_duration_field, offsetof(ConfigHealthActive, timeout_usec),
              NULL),
        FIELD("concurrency", config_parse_integer, offsetof(ConfigHealthActive, concurrency),
              RANGE(1, CONFIG_HEALTH_CONCURRENCY_MAX, unsigned, false)),
        FIELD("headers", config_parse_strv, offsetof(ConfigHealthActive, headers),
              &strv_headers),
        FIELD("verify", config_parse_tristate, offsetof(ConfigHealthActive, verify), NULL),
        FIELD("healthy", config_parse_block, offsetof(ConfigHealthActive, healthy),
              &active_healthy_table),
        FIELD("unhealthy", config_parse_block, offsetof(ConfigHealthActive, unhealthy),
              &active_unhealthy_table),
};

static const ConfigTable active_table = TABLE(active_fields, active_init, active_finish);

static void passive_init(void *item)
{
        config_health_passive_init(item);
}

static int passive_finish(ConfigContext *ctx, const ConfigTable *t, yaml_node_t *node,
                          yaml_node_t *const *values, void *item, const char *path)
{
        ConfigHealthPassive *p = item;

        config_health_check_statuses(ctx, &p->healthy, &p->unhealthy,
                                     config_field_value(t, values, "healthy"),
                                     config_field_value(t, values, "unhealthy"), native_keys,
                                     path);
        return 0;
}

static const ConfigField passive_fields[] = {
        FIELD("healthy", config_parse_block, offsetof(ConfigHealthPassive, healthy),
              &passive_healthy_table),
        FIELD("unhealthy", config_parse_block, offsetof(ConfigHealthPassive, unhealthy),
              &passive_unhealthy_table),
};

static const ConfigTable passive_table = TABLE(passive_fields, passive_init, passive_finish);

static int health_check_finish(ConfigContext *ctx, const ConfigTable *t, yaml_node_t *node,
                               yaml_node_t *const *values, void *item, const char *path)
{
        if (!config_field_value(t, values, "active") && !config_field_value(t, values, "passive"))
                config_node_error(ctx, node, path,
                                  "expected active:, passive: or both (leave health_check: out "
                                  "for the built-in check)");
        return 0;
}

static const ConfigField health_check_fields[] = {
        FIELD("active", config_parse_block_init, offsetof(ConfigHealthCheck, active),
              &active_table),
        FIELD("passive", config_parse_block_init, offsetof(ConfigHealthCheck, passive),
              &passive_table),
};

const ConfigTable config_health_check_table =
        TABLE(health_check_fields, NULL, health_check_finish);
