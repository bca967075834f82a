/*
 * vec.h — the growable array: one helper for the doubling realloc.
 *
 * An array is three plain fields its owner declares, with any names:
 *
 *     struct item *items;   (NULL while empty)
 *     size_t count, cap;    (0, 0 while empty)
 *
 *     if (VEC_RESERVE(items, cap, count + n))   room for n more; -1 when out of memory
 *         return -1;
 *     if (VEC_PUSH(items, count, cap, x))       append x (count grows by one)
 *         return -1;
 *     free(items);                              release
 *
 * The capacity starts at VEC_MIN_CAP and doubles, so appending is amortised O(1). On
 * failure (out of memory, or a size that would overflow size_t) the array, its count and
 * its capacity are left as they were. `items` and `cap` are evaluated more than once: pass
 * plain lvalues (`t->refs`, `t->ref_cap`), not expressions with side effects.
 *
 * Why a macro over a function: it takes the element size from the pointer (no
 * `sizeof` to get wrong) and the pointer's address without the `(void **)&p` cast, which
 * C does not allow for a `struct item **`; vec_reserve_ copies the pointer in and out
 * with memcpy instead (object pointers share one representation on every platform
 * liboffload builds for).
 */
#ifndef OFFLOAD_VEC_H
#define OFFLOAD_VEC_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define VEC_MIN_CAP 16

/* Grows the array whose pointer lives at items_address to hold `need` elements of
 * `elem_size` bytes. 0, or -1 with nothing changed. Use VEC_RESERVE. */
static inline int vec_reserve_(void *items_address, size_t *cap, size_t need, size_t elem_size) {
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : VEC_MIN_CAP;
    while (n < need) {
        if (n > SIZE_MAX / 2)
            return -1;
        n *= 2;
    }
    if (n > SIZE_MAX / elem_size)
        return -1;
    void *items;
    memcpy(&items, items_address, sizeof items);
    void *grown = realloc(items, n * elem_size);
    if (!grown)
        return -1;
    memcpy(items_address, &grown, sizeof grown);
    *cap = n;
    return 0;
}

#define VEC_RESERVE(items, cap, need) vec_reserve_(&(items), &(cap), (need), sizeof *(items))

#define VEC_PUSH(items, count, cap, value)                                                         \
    (VEC_RESERVE(items, cap, (count) + 1) ? -1 : ((items)[(count)++] = (value), 0))

#endif /* OFFLOAD_VEC_H */
