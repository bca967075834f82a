/*
 * values.h — the value grammar of offload.conf (sizes, ordinal ranges, glob lists,
 * names, the sequence, enumerations). Internal to config/ and its unit tests.
 *
 * Every parser returns 0, or -1 with msg->text set to a message that names the
 * offending text but no location: the caller prefixes "PATH:LINE: " or "OFFLOAD_X: ".
 */
#ifndef OFFLOAD_CONFIG_VALUES_H
#define OFFLOAD_CONFIG_VALUES_H

#include "config/config.h"

struct value_msg {
    char text[1024];
};

/* SIZE: "1048576", "512 KiB", "1.5GiB", "8g", "25%". Units are binary whatever
 * their spelling (K = KB = KiB = 1024), case-insensitive; fractions round down. */
int value_parse_size(const char *text, struct config_size *out, struct value_msg *msg);

/* "0-11, 14, 20-" -> {0,11} {14,14} {20,UINT64_MAX}. *out is malloc'ed. */
int value_parse_ranges(const char *text, struct config_range **out, size_t *count,
                       struct value_msg *msg);

/* `order`: "13-20, 5, 21-28, 40-37" -> 13 .. 20, 5, 21 .. 28, 40, 39, 38, 37 (a range
 * N-M with M < N runs downwards). No open range, no ordinal twice, at most
 * CONFIG_ORDER_MAX ordinals. *out is malloc'ed. */
int value_parse_order(const char *text, uint64_t **out, size_t *count, struct value_msg *msg);

/* "a*, *_unet_*" -> {"a*", "*_unet_*"}, each checked by value_check_glob. */
int value_parse_globs(const char *text, char ***out, size_t *count, struct value_msg *msg);

/* A glob fnmatch(3) reads as the user meant: no unbalanced '[', no trailing '\'. */
int value_check_glob(const char *glob, struct value_msg *msg);

/* "a -> b -> c" -> {"a", "b", "c"}: valid names, none twice in a row. */
int value_parse_sequence(const char *text, char ***out, size_t *count, struct value_msg *msg);

/* A decimal integer 0..INT_MAX. */
int value_parse_count(const char *text, int *out, struct value_msg *msg);

/* A non-empty path shorter than CONFIG_PATH_MAX, copied into out. */
int value_parse_path(const char *text, char *out, struct value_msg *msg);

/* One of `names` (exact match); *out = values[i]. `what` names the value in the
 * message ("unknown policy 'x' (did you mean 'budget'?)"), `expected` lists the
 * accepted spellings for when no suggestion is close. */
struct value_enum {
    const char *what;
    const char *expected;
    const char *const *names;
    const int *values;
    size_t count;
};
int value_parse_enum(const char *text, const struct value_enum *e, int *out, struct value_msg *msg);

extern const struct value_enum value_enum_policy, value_enum_log, value_enum_mode, value_enum_bool,
    value_enum_readonly;

/* [A-Za-z0-9_.-]+, at most CONFIG_NAME_MAX - 1 characters. */
int value_check_name(const char *name, struct value_msg *msg);

/* "14", "0-11", "20-". */
void value_format_range(const struct config_range *r, char *buf, size_t size);

void value_free_strings(char **strings, size_t count);

#endif /* OFFLOAD_CONFIG_VALUES_H */
