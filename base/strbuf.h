/*
 * strbuf.h — a growing string for documents built in memory (the stats and trace JSON,
 * offload plot's SVG): printf-style appends that never fail loudly. After the first
 * failure (out of memory, a bad format) every append is a no-op and `failed` stays set;
 * the owner checks it once at the end and frees `data`.
 */
#ifndef OFFLOAD_STRBUF_H
#define OFFLOAD_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

struct strbuf {
    char *data; /* NUL-terminated while !failed and len > 0; NULL if the first malloc failed */
    size_t len, cap;
    bool failed;
};

/* An empty buffer with room for `initial` bytes (data NULL and failed set without memory). */
void strbuf_init(struct strbuf *b, size_t initial);

__attribute__((format(printf, 2, 3))) void strbuf_put(struct strbuf *b, const char *fmt, ...);

/* s as a JSON string, quotes included; NULL as "". */
void strbuf_put_json_string(struct strbuf *b, const char *s);

#endif /* OFFLOAD_STRBUF_H */
