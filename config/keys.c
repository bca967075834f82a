/*
 * keys.c — the [offload] keys and their OFFLOAD_* environment twins: one table, so a
 * key cannot exist in the file without its override. Also the state shared by the
 * file and the environment (defaults, failures, the final sequence resolution).
 */
#include "config/state.h"

#include "config/suggest.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void state_init(struct config_state *st, struct config *cfg, struct config_error *err) {
    memset(st, 0, sizeof *st);
    memset(cfg, 0, sizeof *cfg);
    st->cfg = cfg;
    st->err = err;
    err->text[0] = '\0';
    cfg->policy = CONFIG_POLICY_LRU;
    cfg->min_size = (struct config_size){.set = true, .bytes = 1u << 20};
    cfg->prefetch = 1;
    cfg->log_level = LOG_WARN;
    cfg->mode = CONFIG_MODE_RUN;
    cfg->summary = true;
    cfg->fingerprint = true;
    strcpy(cfg->record_path, "offload.recorded.conf");
    strcpy(cfg->driver_path, "libcuda.so.1");
}

int state_fail(struct config_state *st, const char *origin, int line, const char *fmt, ...) {
    if (st->failed)
        return -1;
    st->failed = true;
    st->fail_line = line;
    char *text = st->err->text;
    size_t size = sizeof st->err->text;
    int n = !origin    ? 0
            : line > 0 ? snprintf(text, size, "%s:%d: ", origin, line)
                       : snprintf(text, size, "%s: ", origin);
    if (n < 0 || (size_t)n >= size)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text + n, size - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

static int find_component(const struct config *cfg, const char *name) {
    for (size_t i = 0; i < cfg->component_count; i++)
        if (strcmp(cfg->components[i].name, name) == 0)
            return (int)i;
    return -1;
}

static int resolve_sequence(struct config_state *st) {
    struct config *cfg = st->cfg;
    if (st->sequence_count == 0)
        return 0;
    cfg->sequence = calloc(st->sequence_count, sizeof *cfg->sequence);
    if (!cfg->sequence)
        return state_fail(st, st->sequence_origin, 0, "out of memory");
    for (size_t i = 0; i < st->sequence_count; i++) {
        const char *name = st->sequence_names[i];
        int index = find_component(cfg, name);
        if (index >= 0) {
            cfg->sequence[i] = (size_t)index;
            continue;
        }
        const char **names = calloc(cfg->component_count + 1, sizeof *names);
        const char *close = NULL;
        if (names) {
            for (size_t c = 0; c < cfg->component_count; c++)
                names[c] = cfg->components[c].name;
            close = suggest_closest(name, names, cfg->component_count);
            free(names);
        }
        if (close)
            return state_fail(st, st->sequence_origin, 0,
                              "sequence names undeclared component '%s' (did you mean '%s'?)", name,
                              close);
        return state_fail(st, st->sequence_origin, 0,
                          "sequence names undeclared component '%s' (declare it with "
                          "[component %s])",
                          name, name);
    }
    cfg->sequence_length = st->sequence_count;
    return 0;
}

int state_finish(struct config_state *st) {
    if (st->failed || resolve_sequence(st) < 0)
        return -1;
    struct config *cfg = st->cfg;
    if (!st->policy_set) {
        /* budget, not sequence: with everything fitting nothing moves (issue 16) */
        cfg->policy = cfg->sequence_length ? CONFIG_POLICY_BUDGET : CONFIG_POLICY_LRU;
    } else if (cfg->policy != CONFIG_POLICY_LRU && cfg->sequence_length == 0) {
        return state_fail(st, st->policy_origin, 0, "policy '%s' needs a sequence",
                          cfg->policy == CONFIG_POLICY_SEQUENCE ? "sequence" : "budget");
    }
    return 0;
}

void state_done(struct config_state *st) {
    value_free_strings(st->sequence_names, st->sequence_count);
    st->sequence_names = NULL;
    st->sequence_count = 0;
    if (st->failed) {
        config_free(st->cfg);
        memset(st->cfg, 0, sizeof *st->cfg);
    }
}

/* --- the keys ------------------------------------------------------------------------- */

static int apply_sequence(struct config_state *st, const char *value, const char *origin,
                          struct value_msg *msg) {
    char **names;
    size_t count;
    if (value_parse_sequence(value, &names, &count, msg) < 0)
        return -1;
    value_free_strings(st->sequence_names, st->sequence_count);
    st->sequence_names = names;
    st->sequence_count = count;
    snprintf(st->sequence_origin, sizeof st->sequence_origin, "%s", origin);
    return 0;
}

static int apply_policy(struct config_state *st, const char *value, const char *origin,
                        struct value_msg *msg) {
    int policy;
    if (value_parse_enum(value, &value_enum_policy, &policy, msg) < 0)
        return -1;
    st->cfg->policy = (enum config_policy)policy;
    st->policy_set = true;
    snprintf(st->policy_origin, sizeof st->policy_origin, "%s", origin);
    return 0;
}

static int apply_budget(struct config_state *st, const char *value, const char *origin,
                        struct value_msg *msg) {
    (void)origin;
    struct config_size size;
    if (value_parse_size(value, &size, msg) < 0)
        return -1;
    if (!size.is_percent && size.bytes == 0) {
        snprintf(msg->text, sizeof msg->text, "budget '%s' must be greater than 0", value);
        return -1;
    }
    st->cfg->budget = size;
    return 0;
}

static int apply_min_size(struct config_state *st, const char *value, const char *origin,
                          struct value_msg *msg) {
    (void)origin;
    return value_parse_size(value, &st->cfg->min_size, msg);
}

static int apply_prefetch(struct config_state *st, const char *value, const char *origin,
                          struct value_msg *msg) {
    (void)origin;
    return value_parse_count(value, &st->cfg->prefetch, msg);
}

static int apply_log(struct config_state *st, const char *value, const char *origin,
                     struct value_msg *msg) {
    (void)origin;
    int level;
    if (value_parse_enum(value, &value_enum_log, &level, msg) < 0)
        return -1;
    st->cfg->log_level = (enum log_level)level;
    return 0;
}

static int apply_mode(struct config_state *st, const char *value, const char *origin,
                      struct value_msg *msg) {
    (void)origin;
    int mode;
    if (value_parse_enum(value, &value_enum_mode, &mode, msg) < 0)
        return -1;
    st->cfg->mode = (enum config_mode)mode;
    return 0;
}

static int apply_stats(struct config_state *st, const char *value, const char *origin,
                       struct value_msg *msg) {
    (void)origin;
    return value_parse_path(value, st->cfg->stats_path, msg);
}

static int apply_trace(struct config_state *st, const char *value, const char *origin,
                       struct value_msg *msg) {
    (void)origin;
    return value_parse_path(value, st->cfg->trace_path, msg);
}

static int apply_summary(struct config_state *st, const char *value, const char *origin,
                         struct value_msg *msg) {
    (void)origin;
    int yes;
    if (value_parse_enum(value, &value_enum_bool, &yes, msg) < 0)
        return -1;
    st->cfg->summary = yes;
    return 0;
}

static int apply_fingerprint(struct config_state *st, const char *value, const char *origin,
                             struct value_msg *msg) {
    (void)origin;
    int yes;
    if (value_parse_enum(value, &value_enum_bool, &yes, msg) < 0)
        return -1;
    st->cfg->fingerprint = yes;
    return 0;
}

static int apply_record(struct config_state *st, const char *value, const char *origin,
                        struct value_msg *msg) {
    (void)origin;
    return value_parse_path(value, st->cfg->record_path, msg);
}

static int apply_driver(struct config_state *st, const char *value, const char *origin,
                        struct value_msg *msg) {
    (void)origin;
    return value_parse_path(value, st->cfg->driver_path, msg);
}

/* `driver` has no key: which library gets loaded into the process must not come from
 * an ./offload.conf that merely happens to lie in the working directory. OFFLOAD_SUMMARY
 * has none either: it is how `offload run`, which prints the table itself, turns off the
 * library's own. */
const struct offload_key offload_keys[] = {
    {"sequence", "OFFLOAD_SEQUENCE", apply_sequence},
    {"policy", "OFFLOAD_POLICY", apply_policy},
    {"budget", "OFFLOAD_BUDGET", apply_budget},
    {"prefetch", "OFFLOAD_PREFETCH", apply_prefetch},
    {"min_size", "OFFLOAD_MIN_SIZE", apply_min_size},
    {"log", "OFFLOAD_LOG", apply_log},
    {"stats", "OFFLOAD_STATS", apply_stats},
    {"trace", "OFFLOAD_TRACE", apply_trace},
    {"record", "OFFLOAD_RECORD", apply_record},
    {"mode", "OFFLOAD_MODE", apply_mode},
    {"fingerprint", "OFFLOAD_FINGERPRINT", apply_fingerprint},
    {NULL, "OFFLOAD_DRIVER", apply_driver},
    {NULL, "OFFLOAD_SUMMARY", apply_summary},
};
const size_t offload_key_count = sizeof offload_keys / sizeof offload_keys[0];
