/*
 * json.c — the reader of json.h: recursive descent over the text, depth-limited.
 */
#include "cli/json.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_DEPTH_MAX 64

struct reader {
    const char *p;
    const char *start;
    char *err;
    size_t err_len;
    bool failed;
};

__attribute__((format(printf, 2, 3))) static bool fail(struct reader *r, const char *fmt, ...) {
    if (r->failed)
        return false;
    r->failed = true;
    int line = 1;
    for (const char *q = r->start; q < r->p; q++)
        line += *q == '\n';
    int n = snprintf(r->err, r->err_len, "line %d: ", line);
    if (n >= 0 && (size_t)n < r->err_len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->err + n, r->err_len - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return false;
}

static void skip_blanks(struct reader *r) {
    while (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r')
        r->p++;
}

static bool parse_value(struct reader *r, struct json *out, int depth);

static void put_utf8(char **w, unsigned cp) {
    char *o = *w;
    if (cp < 0x80) {
        *o++ = (char)cp;
    } else if (cp < 0x800) {
        *o++ = (char)(0xc0 | (cp >> 6));
        *o++ = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xe0 | (cp >> 12));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
        *o++ = (char)(0x80 | (cp & 0x3f));
    } else {
        *o++ = (char)(0xf0 | (cp >> 18));
        *o++ = (char)(0x80 | ((cp >> 12) & 0x3f));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
        *o++ = (char)(0x80 | (cp & 0x3f));
    }
    *w = o;
}

static bool hex4(struct reader *r, unsigned *out) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = r->p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return fail(r, "bad \\u escape");
    }
    r->p += 4;
    *out = v;
    return true;
}

/* At the opening quote. The decoded text is never longer than the encoded one. */
static bool parse_string(struct reader *r, char **out) {
    const char *end = ++r->p;
    while (*end && *end != '"')
        end += (*end == '\\' && end[1]) ? 2 : 1;
    if (*end != '"')
        return fail(r, "unterminated string");
    char *s = malloc((size_t)(end - r->p) + 1), *w = s;
    if (!s)
        return fail(r, "out of memory");
    while (r->p < end) {
        unsigned char c = (unsigned char)*r->p++;
        if (c < 0x20) {
            free(s);
            return fail(r, "control character in a string");
        }
        if (c != '\\') {
            *w++ = (char)c;
            continue;
        }
        char e = *r->p++;
        unsigned cp;
        switch (e) {
        case '"':
        case '\\':
        case '/':
            *w++ = e;
            break;
        case 'b':
            *w++ = '\b';
            break;
        case 'f':
            *w++ = '\f';
            break;
        case 'n':
            *w++ = '\n';
            break;
        case 'r':
            *w++ = '\r';
            break;
        case 't':
            *w++ = '\t';
            break;
        case 'u':
            if (!hex4(r, &cp)) {
                free(s);
                return false;
            }
            if (cp >= 0xd800 && cp < 0xdc00 && r->p[0] == '\\' && r->p[1] == 'u') {
                unsigned lo;
                r->p += 2;
                if (!hex4(r, &lo)) {
                    free(s);
                    return false;
                }
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            put_utf8(&w, cp);
            break;
        default:
            free(s);
            return fail(r, "bad escape '\\%c'", e);
        }
    }
    *w = '\0';
    r->p = end + 1;
    *out = s;
    return true;
}

static bool parse_number(struct reader *r, struct json *out) {
    const char *s = r->p;
    char *end;
    errno = 0;
    out->type = JSON_NUMBER;
    out->number = strtod(s, &end);
    if (end == s || errno == ERANGE)
        return fail(r, "bad number");
    bool integer = *s != '-';
    for (const char *q = s; q < end; q++)
        integer = integer && *q >= '0' && *q <= '9';
    if (integer) {
        errno = 0;
        unsigned long long v = strtoull(s, NULL, 10);
        out->integer = errno ? (uint64_t)out->number : (uint64_t)v;
    }
    r->p = end;
    return true;
}

static bool grow(struct reader *r, struct json *v, size_t *cap, bool keys) {
    if (v->count < *cap)
        return true;
    size_t n = *cap ? *cap * 2 : 8;
    struct json *items = realloc(v->items, n * sizeof *items);
    if (!items)
        return fail(r, "out of memory");
    v->items = items;
    if (keys) {
        char **k = realloc(v->keys, n * sizeof *k);
        if (!k)
            return fail(r, "out of memory");
        v->keys = k;
    }
    *cap = n;
    return true;
}

static bool parse_container(struct reader *r, struct json *out, int depth, bool object) {
    out->type = object ? JSON_OBJECT : JSON_ARRAY;
    char close = object ? '}' : ']';
    size_t cap = 0;
    r->p++;
    skip_blanks(r);
    if (*r->p == close) {
        r->p++;
        return true;
    }
    for (;;) {
        if (!grow(r, out, &cap, object))
            return false;
        skip_blanks(r);
        if (object) {
            if (*r->p != '"')
                return fail(r, "expected a key");
            char *key;
            if (!parse_string(r, &key))
                return false;
            out->keys[out->count] = key;
            skip_blanks(r);
            if (*r->p++ != ':') {
                memset(&out->items[out->count++], 0, sizeof *out->items);
                return fail(r, "expected ':'");
            }
        }
        struct json *item = &out->items[out->count++];
        memset(item, 0, sizeof *item);
        if (!parse_value(r, item, depth + 1))
            return false;
        skip_blanks(r);
        if (*r->p == ',') {
            r->p++;
            continue;
        }
        if (*r->p == close) {
            r->p++;
            return true;
        }
        return fail(r, "expected ',' or '%c'", close);
    }
}

static bool parse_word(struct reader *r, const char *word) {
    size_t n = strlen(word);
    if (strncmp(r->p, word, n) != 0)
        return fail(r, "unexpected '%.10s'", r->p);
    r->p += n;
    return true;
}

static bool parse_value(struct reader *r, struct json *out, int depth) {
    if (depth > JSON_DEPTH_MAX)
        return fail(r, "nested too deep");
    skip_blanks(r);
    switch (*r->p) {
    case '{':
        return parse_container(r, out, depth, true);
    case '[':
        return parse_container(r, out, depth, false);
    case '"':
        out->type = JSON_STRING;
        return parse_string(r, &out->string);
    case 't':
        out->type = JSON_BOOL;
        out->boolean = true;
        return parse_word(r, "true");
    case 'f':
        out->type = JSON_BOOL;
        return parse_word(r, "false");
    case 'n':
        out->type = JSON_NULL;
        return parse_word(r, "null");
    case '\0':
        return fail(r, "unexpected end of file");
    default:
        if (*r->p == '-' || (*r->p >= '0' && *r->p <= '9'))
            return parse_number(r, out);
        return fail(r, "unexpected '%c'", *r->p);
    }
}

static void free_inside(struct json *v) {
    for (size_t i = 0; i < v->count; i++) {
        free_inside(&v->items[i]);
        if (v->keys)
            free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->string);
}

void json_free(struct json *v) {
    if (!v)
        return;
    free_inside(v);
    free(v);
}

struct json *json_parse(const char *text, char *err, size_t err_len) {
    struct reader r = {text, text, err, err_len, false};
    struct json *v = calloc(1, sizeof *v);
    if (!v) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    if (parse_value(&r, v, 0)) {
        skip_blanks(&r);
        if (*r.p)
            fail(&r, "text after the value");
    }
    if (r.failed) {
        json_free(v);
        return NULL;
    }
    return v;
}

const struct json *json_get(const struct json *v, const char *key) {
    if (!v || v->type != JSON_OBJECT)
        return NULL;
    for (size_t i = 0; i < v->count; i++)
        if (strcmp(v->keys[i], key) == 0)
            return &v->items[i];
    return NULL;
}

uint64_t json_u64(const struct json *obj, const char *key, uint64_t fallback) {
    const struct json *v = json_get(obj, key);
    if (!v || v->type != JSON_NUMBER)
        return fallback;
    return v->integer ? v->integer : v->number > 0 ? (uint64_t)v->number : 0;
}

double json_double(const struct json *obj, const char *key, double fallback) {
    const struct json *v = json_get(obj, key);
    return v && v->type == JSON_NUMBER ? v->number : fallback;
}

const char *json_str(const struct json *obj, const char *key, const char *fallback) {
    const struct json *v = json_get(obj, key);
    return v && v->type == JSON_STRING ? v->string : fallback;
}

char *json_read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, len = 0;
    char *s = malloc(cap);
    while (s) {
        len += fread(s + len, 1, cap - len - 1, f);
        if (ferror(f)) {
            free(s);
            s = NULL;
            errno = EIO;
            break;
        }
        if (feof(f))
            break;
        char *t = realloc(s, cap * 2);
        if (!t) {
            free(s);
            s = NULL;
            errno = ENOMEM;
        }
        s = t;
        cap *= 2;
    }
    fclose(f);
    if (s)
        s[len] = '\0';
    return s;
}
