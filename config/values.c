/*
 * values.c — the value grammar of offload.conf. See values.h and config/README.md.
 */
#include "config/values.h"

#include "config/suggest.h"

#include <ctype.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

__attribute__((format(printf, 2, 3))) static int fail(struct value_msg *msg, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg->text, sizeof msg->text, fmt, ap);
    va_end(ap);
    return -1;
}

static bool is_blank(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/* A trimmed copy of [begin, end). Returns NULL only when out of memory. */
static char *trimmed_copy(const char *begin, const char *end) {
    while (begin < end && is_blank(*begin))
        begin++;
    while (end > begin && is_blank(end[-1]))
        end--;
    return strndup(begin, (size_t)(end - begin));
}

void value_free_strings(char **strings, size_t count) {
    for (size_t i = 0; i < count; i++)
        free(strings[i]);
    free(strings);
}

/* Splits text at every `sep` into trimmed, malloc'ed items (an empty text gives one
 * empty item). Returns 0, or -1 when out of memory. */
static int split(const char *text, const char *sep, char ***out, size_t *count) {
    size_t n = 0, cap = 4, seplen = strlen(sep);
    char **items = malloc(cap * sizeof *items);
    if (!items)
        return -1;
    for (const char *p = text;;) {
        const char *end = strstr(p, sep);
        if (!end)
            end = p + strlen(p);
        if (n == cap) {
            char **grown = realloc(items, 2 * cap * sizeof *items);
            if (!grown)
                goto oom;
            items = grown;
            cap *= 2;
        }
        if (!(items[n] = trimmed_copy(p, end)))
            goto oom;
        n++;
        if (!*end)
            break;
        p = end + seplen;
    }
    *out = items;
    *count = n;
    return 0;
oom:
    value_free_strings(items, n);
    return -1;
}

/* --- sizes ---------------------------------------------------------------------------- */

struct size_unit {
    const char *name;
    unsigned shift;
};

static const struct size_unit size_units[] = {
    {"b", 0},  {"k", 10},  {"kb", 10},  {"kib", 10}, {"m", 20},  {"mb", 20},  {"mib", 20},
    {"g", 30}, {"gb", 30}, {"gib", 30}, {"t", 40},   {"tb", 40}, {"tib", 40},
};

int value_parse_size(const char *text, struct config_size *out, struct value_msg *msg) {
    static const unsigned __int128 max_scale = 1000000000000000000ULL; /* 18 digits */
    const char *p = text;
    unsigned __int128 whole = 0, frac = 0, scale = 1;
    if (!isdigit((unsigned char)*p))
        goto malformed;
    for (; isdigit((unsigned char)*p); p++) {
        whole = whole * 10 + (unsigned)(*p - '0');
        if (whole > UINT64_MAX)
            return fail(msg, "size '%s' is too large", text);
    }
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p))
            goto malformed;
        for (; isdigit((unsigned char)*p); p++) {
            if (scale == max_scale)
                goto malformed;
            frac = frac * 10 + (unsigned)(*p - '0');
            scale *= 10;
        }
    }
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == '%') {
        if (p[1])
            goto malformed;
        double percent = (double)whole + (double)frac / (double)scale;
        if (!(percent > 0 && percent <= 100))
            return fail(msg, "size '%s' out of range (expected 0 < N%% <= 100)", text);
        *out = (struct config_size){.set = true, .is_percent = true, .percent = percent};
        return 0;
    }
    unsigned shift = 0;
    if (*p) {
        size_t i = 0, n = sizeof size_units / sizeof size_units[0];
        while (i < n && strcasecmp(p, size_units[i].name) != 0)
            i++;
        if (i == n)
            goto malformed;
        shift = size_units[i].shift;
    }
    unsigned __int128 bytes = (whole << shift) + ((frac << shift) / scale);
    if (bytes > UINT64_MAX)
        return fail(msg, "size '%s' is too large", text);
    *out = (struct config_size){.set = true, .bytes = (uint64_t)bytes};
    return 0;
malformed:
    return fail(msg, "malformed size '%s' (expected bytes, KiB/MiB/GiB or N%%)", text);
}

/* --- ordinal ranges ------------------------------------------------------------------- */

/* Reads a decimal number at *p (advancing it). 0, -1 when there is none, -2 on overflow. */
static int read_u64(const char **p, uint64_t *out) {
    const char *s = *p;
    if (!isdigit((unsigned char)*s))
        return -1;
    uint64_t v = 0;
    for (; isdigit((unsigned char)*s); s++) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -2;
        v = v * 10 + d;
    }
    *p = s;
    *out = v;
    return 0;
}

static int parse_range(const char *item, struct config_range *r, struct value_msg *msg) {
    const char *p = item;
    int rc = read_u64(&p, &r->first);
    if (rc == -2)
        return fail(msg, "number too large in range '%s'", item);
    if (rc < 0)
        goto malformed;
    r->last = r->first;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == '-') {
        p++;
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p) {
            r->last = UINT64_MAX;
        } else {
            rc = read_u64(&p, &r->last);
            if (rc == -2)
                return fail(msg, "number too large in range '%s'", item);
            if (rc < 0)
                goto malformed;
            if (r->last < r->first)
                return fail(msg, "descending range '%s' (write %" PRIu64 "-%" PRIu64 ")", item,
                            r->last, r->first);
        }
    }
    if (*p)
        goto malformed;
    return 0;
malformed:
    return fail(msg, "malformed range '%s' (expected N, N-M or N-)", item);
}

int value_parse_ranges(const char *text, struct config_range **out, size_t *count,
                       struct value_msg *msg) {
    char **items;
    size_t n;
    if (split(text, ",", &items, &n) < 0)
        return fail(msg, "out of memory");
    struct config_range *ranges = calloc(n, sizeof *ranges);
    int rc = ranges ? 0 : fail(msg, "out of memory");
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = parse_range(items[i], &ranges[i], msg);
    value_free_strings(items, n);
    if (rc < 0) {
        free(ranges);
        return -1;
    }
    *out = ranges;
    *count = n;
    return 0;
}

void value_format_range(const struct config_range *r, char *buf, size_t size) {
    if (r->last == UINT64_MAX)
        snprintf(buf, size, "%" PRIu64 "-", r->first);
    else if (r->last == r->first)
        snprintf(buf, size, "%" PRIu64, r->first);
    else
        snprintf(buf, size, "%" PRIu64 "-%" PRIu64, r->first, r->last);
}

/* --- order ---------------------------------------------------------------------------- */

/* One item of `order`: N, or N-M in either direction. */
static int parse_order_item(const char *item, uint64_t *first, uint64_t *last,
                            struct value_msg *msg) {
    const char *p = item;
    int rc = read_u64(&p, first);
    if (rc == 0) {
        *last = *first;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '-') {
            p++;
            while (*p == ' ' || *p == '\t')
                p++;
            if (!*p)
                return fail(msg, "open range '%s' in order (expected N or N-M)", item);
            rc = read_u64(&p, last);
        }
    }
    if (rc == -2)
        return fail(msg, "number too large in order item '%s'", item);
    if (rc < 0 || *p)
        return fail(msg, "malformed order item '%s' (expected N or N-M)", item);
    return 0;
}

/* Appends first .. last (either direction) to *out, within CONFIG_ORDER_MAX. */
static int append_run(uint64_t first, uint64_t last, uint64_t *out, size_t *count,
                      struct value_msg *msg) {
    uint64_t span = first <= last ? last - first : first - last;
    if (span >= CONFIG_ORDER_MAX || *count + span + 1 > CONFIG_ORDER_MAX)
        return fail(msg, "order lists more than %d allocations", CONFIG_ORDER_MAX);
    for (uint64_t i = 0; i <= span; i++)
        out[(*count)++] = first <= last ? first + i : first - i;
    return 0;
}

static int compare_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The smallest ordinal listed twice, if any. */
static int check_no_repeat(const uint64_t *order, size_t count, struct value_msg *msg) {
    uint64_t *sorted = malloc((count + 1) * sizeof *sorted);
    if (!sorted)
        return fail(msg, "out of memory");
    memcpy(sorted, order, count * sizeof *sorted);
    qsort(sorted, count, sizeof *sorted, compare_u64);
    int rc = 0;
    for (size_t i = 1; i < count && rc == 0; i++)
        if (sorted[i] == sorted[i - 1])
            rc = fail(msg, "allocation %" PRIu64 " twice in order", sorted[i]);
    free(sorted);
    return rc;
}

int value_parse_order(const char *text, uint64_t **out, size_t *count, struct value_msg *msg) {
    const char *t = text;
    while (is_blank(*t))
        t++;
    if (!*t)
        return fail(msg, "empty order");
    char **items;
    size_t n, listed = 0;
    if (split(text, ",", &items, &n) < 0)
        return fail(msg, "out of memory");
    uint64_t *order = malloc(CONFIG_ORDER_MAX * sizeof *order);
    int rc = order ? 0 : fail(msg, "out of memory");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        uint64_t first, last;
        rc = parse_order_item(items[i], &first, &last, msg);
        if (rc == 0)
            rc = append_run(first, last, order, &listed, msg);
    }
    value_free_strings(items, n);
    if (rc == 0)
        rc = check_no_repeat(order, listed, msg);
    if (rc < 0) {
        free(order);
        return -1;
    }
    uint64_t *fitted = realloc(order, (listed + 1) * sizeof *order);
    *out = fitted ? fitted : order;
    *count = listed;
    return 0;
}

/* --- globs ---------------------------------------------------------------------------- */

/* fnmatch(3) silently reads an unclosed '[' as a literal, which is never what a user
 * writing a bracket expression meant: reject it. Mirrors POSIX bracket syntax: a leading
 * '!' or '^', a ']' right after them is literal, and [:class:], [.coll.], [=equiv=]. */
int value_check_glob(const char *glob, struct value_msg *msg) {
    if (!*glob)
        return fail(msg, "empty glob");
    for (const char *p = glob; *p; p++) {
        if (is_blank(*p))
            return fail(msg, "malformed glob '%s' (blank inside; separate globs with ',')", glob);
        if (*p == '\\') {
            if (!p[1])
                return fail(msg, "malformed glob '%s' (trailing '\\')", glob);
            p++;
            continue;
        }
        if (*p != '[')
            continue;
        const char *q = p + 1;
        if (*q == '!' || *q == '^')
            q++;
        if (*q == ']')
            q++;
        while (*q && *q != ']') {
            if (q[0] == '[' && (q[1] == ':' || q[1] == '.' || q[1] == '=')) {
                char delim = q[1];
                const char *close = q + 2;
                while (*close && !(close[0] == delim && close[1] == ']'))
                    close++;
                if (!*close)
                    break;
                q = close + 2;
            } else if (q[0] == '\\' && q[1]) {
                q += 2;
            } else {
                q++;
            }
        }
        if (*q != ']')
            return fail(msg, "malformed glob '%s' (unbalanced '[')", glob);
        p = q;
    }
    return 0;
}

int value_parse_globs(const char *text, char ***out, size_t *count, struct value_msg *msg) {
    char **items;
    size_t n;
    if (split(text, ",", &items, &n) < 0)
        return fail(msg, "out of memory");
    for (size_t i = 0; i < n; i++) {
        if (!*items[i]) {
            value_free_strings(items, n);
            return fail(msg, "empty glob in '%s'", text);
        }
        if (value_check_glob(items[i], msg) < 0) {
            value_free_strings(items, n);
            return -1;
        }
    }
    *out = items;
    *count = n;
    return 0;
}

/* --- names and the sequence ----------------------------------------------------------- */

int value_check_name(const char *name, struct value_msg *msg) {
    if (!*name)
        return fail(msg, "empty component name");
    for (const char *p = name; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '.' && *p != '-')
            return fail(
                msg, "invalid component name '%s' (expected letters, digits, '_', '.', '-')", name);
    if (strlen(name) >= CONFIG_NAME_MAX)
        return fail(msg, "component name '%s' is longer than %d characters", name,
                    CONFIG_NAME_MAX - 1);
    return 0;
}

int value_parse_sequence(const char *text, char ***out, size_t *count, struct value_msg *msg) {
    char **items;
    size_t n;
    if (split(text, "->", &items, &n) < 0)
        return fail(msg, "out of memory");
    int rc = 0;
    if (n == 1 && !*items[0])
        rc = fail(msg, "empty sequence");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (!*items[i])
            rc = fail(msg, "empty name in sequence '%s'", text);
        else if (value_check_name(items[i], msg) < 0)
            rc = -1;
        else if (i > 0 && strcmp(items[i], items[i - 1]) == 0)
            rc = fail(msg, "component '%s' twice in a row in sequence '%s'", items[i], text);
    }
    if (rc < 0) {
        value_free_strings(items, n);
        return -1;
    }
    *out = items;
    *count = n;
    return 0;
}

/* --- numbers, paths, enumerations ----------------------------------------------------- */

int value_parse_count(const char *text, int *out, struct value_msg *msg) {
    const char *p = text;
    uint64_t v;
    int rc = read_u64(&p, &v);
    if (rc == -1 || *p)
        return fail(msg, "malformed number '%s' (expected an integer >= 0)", text);
    if (rc == -2 || v > INT_MAX)
        return fail(msg, "number '%s' is too large", text);
    *out = (int)v;
    return 0;
}

int value_parse_path(const char *text, char *out, struct value_msg *msg) {
    if (!*text)
        return fail(msg, "empty path");
    if (strlen(text) >= CONFIG_PATH_MAX)
        return fail(msg, "path longer than %d characters", CONFIG_PATH_MAX - 1);
    strcpy(out, text);
    return 0;
}

int value_parse_enum(const char *text, const struct value_enum *e, int *out,
                     struct value_msg *msg) {
    for (size_t i = 0; i < e->count; i++) {
        if (strcmp(text, e->names[i]) == 0) {
            *out = e->values[i];
            return 0;
        }
    }
    const char *close = suggest_closest(text, e->names, e->count);
    if (close)
        return fail(msg, "unknown %s '%s' (did you mean '%s'?)", e->what, text, close);
    return fail(msg, "unknown %s '%s' (expected %s)", e->what, text, e->expected);
}

#define ENUM(var, what, expected, names, values)                                                   \
    const struct value_enum var = {what, expected, names, values, sizeof(names) / sizeof(names)[0]}

static const char *const policy_names[] = {"sequence", "budget", "lru"};
static const int policy_values[] = {CONFIG_POLICY_SEQUENCE, CONFIG_POLICY_BUDGET,
                                    CONFIG_POLICY_LRU};
ENUM(value_enum_policy, "policy", "sequence, budget or lru", policy_names, policy_values);

static const char *const log_names[] = {"error", "warn", "info", "debug"};
static const int log_values[] = {LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG};
ENUM(value_enum_log, "log level", "error, warn, info or debug", log_names, log_values);

static const char *const mode_names[] = {"run", "record"};
static const int mode_values[] = {CONFIG_MODE_RUN, CONFIG_MODE_RECORD};
ENUM(value_enum_mode, "mode", "run or record", mode_names, mode_values);

static const char *const bool_names[] = {"yes", "no", "true", "false"};
static const int bool_values[] = {1, 0, 1, 0};
ENUM(value_enum_bool, "boolean", "yes or no", bool_names, bool_values);

static const char *const readonly_names[] = {"yes", "no", "auto"};
static const int readonly_values[] = {CONFIG_READONLY_YES, CONFIG_READONLY_NO,
                                      CONFIG_READONLY_AUTO};
ENUM(value_enum_readonly, "readonly value", "yes, no or auto", readonly_names, readonly_values);
