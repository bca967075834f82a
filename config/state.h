/*
 * state.h — what the file parser (parse.c), the environment (load.c) and the key
 * table (keys.c) share while they build one struct config. Internal to config/.
 *
 * Every diagnostic is "ORIGIN: message" where ORIGIN is "PATH:LINE" for the file and
 * the variable's name for the environment. Only the first failure is kept: parsing
 * stops there.
 */
#ifndef OFFLOAD_CONFIG_STATE_H
#define OFFLOAD_CONFIG_STATE_H

#include "config/config.h"
#include "config/values.h"

#define CONFIG_ORIGIN_MAX (CONFIG_PATH_MAX + 32)

struct config_state {
    struct config *cfg;
    struct config_error *err;
    bool failed;
    int fail_line; /* the file line of the failure, 0 when not in the file */

    /* `sequence` names the components before they are all declared: kept as names
     * until state_finish resolves them. */
    char **sequence_names;
    size_t sequence_count;
    char sequence_origin[CONFIG_ORIGIN_MAX];

    bool policy_set; /* else the policy follows from whether a sequence is given */
    char policy_origin[CONFIG_ORIGIN_MAX];
};

/* Defaults into *cfg (see config/README.md) and an empty state. */
void state_init(struct config_state *st, struct config *cfg, struct config_error *err);

/* Records "ORIGIN:LINE: message" (line > 0), "ORIGIN: message" or, with no origin,
 * "message", unless a failure is already recorded. Returns -1. */
__attribute__((format(printf, 4, 5))) int state_fail(struct config_state *st, const char *origin,
                                                     int line, const char *fmt, ...);

/* Resolves the sequence and the default policy. 0 or -1 (failure recorded). */
int state_finish(struct config_state *st);

/* Frees what the state holds; on failure also empties *cfg (no config_free needed). */
void state_done(struct config_state *st);

/* The [offload] keys, each also read from the environment. */
struct offload_key {
    const char *name; /* key in [offload]; NULL: environment only */
    const char *env;  /* OFFLOAD_... */
    int (*apply)(struct config_state *st, const char *value, const char *origin,
                 struct value_msg *msg);
};
extern const struct offload_key offload_keys[];
extern const size_t offload_key_count;

/* Parses one config file's text into st->cfg (after state_init, before the environment
 * is applied). 0 or -1 (failure recorded). */
int parse_text(struct config_state *st, const char *text, const char *path);

#endif /* OFFLOAD_CONFIG_STATE_H */
