/*
 * grow.h — the one way arrays grow: doubling, from a first capacity.
 *
 *     if (grow(&list, &capacity, count + 1, sizeof *list, 16) != 0)
 *         return -1;            // list, capacity unchanged
 *     list[count++] = item;
 */
#ifndef OFFLOAD_GROW_H
#define OFFLOAD_GROW_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Makes *array (of *capacity elements of elem_size bytes) hold at least `need` elements:
 * doubles the capacity (starting at `first`) until it does. 0, or -1 when memory cannot be
 * had (the array and its capacity are then unchanged). */
static inline int grow(void *array, size_t *capacity, size_t need, size_t elem_size, size_t first) {
    if (need <= *capacity)
        return 0;
    size_t cap = *capacity ? *capacity : first;
    while (cap < need) {
        if (cap > SIZE_MAX / 2)
            return -1;
        cap *= 2;
    }
    if (cap > SIZE_MAX / elem_size)
        return -1;
    void *old; /* memcpy: `array` points to a T*, not to a void* */
    memcpy(&old, array, sizeof old);
    void *p = realloc(old, cap * elem_size);
    if (!p)
        return -1;
    memcpy(array, &p, sizeof p);
    *capacity = cap;
    return 0;
}

#endif /* OFFLOAD_GROW_H */
