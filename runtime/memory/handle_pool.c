/*
 * handle_pool.c — a small array; a call evicts a handful of allocations at most.
 */
#include "runtime/memory/handle_pool.h"

#include <stdlib.h>

bool handle_pool_put(struct handle_pool *p, CUmemGenericAllocationHandle h, size_t size) {
    if (p->count == p->capacity) {
        size_t cap = p->capacity ? p->capacity * 2 : 16;
        struct pooled_handle *items = realloc(p->items, cap * sizeof *items);
        if (!items)
            return false;
        p->items = items;
        p->capacity = cap;
    }
    p->items[p->count++] = (struct pooled_handle){h, size};
    p->bytes += size;
    return true;
}

bool handle_pool_take(struct handle_pool *p, size_t size, CUmemGenericAllocationHandle *h) {
    for (size_t i = p->count; i-- > 0;) {
        if (p->items[i].size == size) {
            *h = p->items[i].handle;
            p->items[i] = p->items[--p->count];
            p->bytes -= size;
            return true;
        }
    }
    return false;
}

bool handle_pool_pop(struct handle_pool *p, struct pooled_handle *out) {
    if (!p->count)
        return false;
    *out = p->items[--p->count];
    p->bytes -= out->size;
    return true;
}
