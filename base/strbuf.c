/*
 * strbuf.c — the growing string (strbuf.h).
 */
#include "base/strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void strbuf_init(struct strbuf *b, size_t initial) {
    b->data = malloc(initial);
    b->len = 0;
    b->cap = b->data ? initial : 0;
    b->failed = !b->data;
}

void strbuf_put(struct strbuf *b, const char *fmt, ...) {
    while (!b->failed) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = true;
        } else if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        } else {
            size_t cap = (b->cap + (size_t)n + 1) * 2;
            char *data = realloc(b->data, cap);
            if (!data)
                b->failed = true;
            else
                b->data = data, b->cap = cap;
        }
    }
}

void strbuf_put_json_string(struct strbuf *b, const char *s) {
    strbuf_put(b, "\"");
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            strbuf_put(b, "\\%c", c);
        else if (c < 0x20)
            strbuf_put(b, "\\u%04x", c);
        else
            strbuf_put(b, "%c", c);
    }
    strbuf_put(b, "\"");
}
