/*
 * rangevec.h — a vector of entries kept sorted by address, each beginning with its range
 * [start, end) as two uintptr_t: the memory map (memory.c) and the pools' pieces (pool.c)
 * both find an address with a binary search in one.
 *
 *     struct vec v = {.elem = sizeof(struct entry)};   (struct entry { uintptr_t start, end; ... })
 */
#ifndef SIM_RANGEVEC_H
#define SIM_RANGEVEC_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct vec {
    char *data;
    size_t n, cap, elem;
};

static inline void *vat(const struct vec *v, size_t i) {
    return v->data + i * v->elem;
}

static inline uintptr_t vstart(const struct vec *v, size_t i) {
    return ((const uintptr_t *)vat(v, i))[0];
}

static inline uintptr_t vend(const struct vec *v, size_t i) {
    return ((const uintptr_t *)vat(v, i))[1];
}

/* Index of the last entry whose start <= p, or -1. */
static inline long vfloor(const struct vec *v, uintptr_t p) {
    size_t lo = 0, hi = v->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (vstart(v, mid) <= p)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (long)lo - 1;
}

/* Index of the entry containing p, or -1. */
static inline long vfind(const struct vec *v, uintptr_t p) {
    long i = vfloor(v, p);
    return i >= 0 && p < vend(v, (size_t)i) ? i : -1;
}

/* Inserts a copy of e (v->elem bytes) in address order. 0, or -1 without memory. */
static inline int vinsert(struct vec *v, const void *e) {
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 16;
        char *d = realloc(v->data, cap * v->elem);
        if (!d)
            return -1;
        v->data = d;
        v->cap = cap;
    }
    size_t at = (size_t)(vfloor(v, *(const uintptr_t *)e) + 1);
    memmove(v->data + (at + 1) * v->elem, v->data + at * v->elem, (v->n - at) * v->elem);
    memcpy(v->data + at * v->elem, e, v->elem);
    v->n++;
    return 0;
}

static inline void vremove(struct vec *v, size_t i) {
    memmove(v->data + i * v->elem, v->data + (i + 1) * v->elem, (v->n - i - 1) * v->elem);
    v->n--;
}

#endif /* SIM_RANGEVEC_H */
