/*
 * json.h — just enough JSON for the files liboffload writes (the stats and the trace):
 * a complete RFC 8259 reader into a tree, no writer. Numbers are doubles, plus the exact
 * value when they are non-negative integers (byte counts above 2^53 stay exact).
 */
#ifndef OFFLOAD_CLI_JSON_H
#define OFFLOAD_CLI_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum json_type { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT };

struct json {
    enum json_type type;
    bool boolean;
    double number;
    uint64_t integer;   /* JSON_NUMBER written as a non-negative integer; else 0 */
    char *string;       /* JSON_STRING, NUL-terminated (an embedded \u0000 ends it) */
    struct json *items; /* JSON_ARRAY and JSON_OBJECT: count values */
    char **keys;        /* JSON_OBJECT: count keys */
    size_t count;
};

/* The tree (free with json_free), or NULL with "line N: what" in err. */
struct json *json_parse(const char *text, char *err, size_t err_len);

/* The member `key` of an object, or NULL (also when v is NULL or not an object). */
const struct json *json_get(const struct json *v, const char *key);

/* A number member as uint64 / double, or `fallback` when missing or not a number. */
uint64_t json_u64(const struct json *obj, const char *key, uint64_t fallback);
double json_double(const struct json *obj, const char *key, double fallback);

/* A string member, or `fallback`. */
const char *json_str(const struct json *obj, const char *key, const char *fallback);

void json_free(struct json *v);

/* The whole file, NUL-terminated (malloc'd), or NULL with errno set. */
char *json_read_file(const char *path);

#endif /* OFFLOAD_CLI_JSON_H */
