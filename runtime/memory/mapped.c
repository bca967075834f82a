/*
 * mapped.c — the handle table and the mapping table of program-mapped memory.
 */
#include "runtime/memory/mapped.h"

#include "base/vec.h"

#include <stdlib.h>
#include <string.h>

struct vmm_handle *vmm_handle_new(struct vmm_table *t, size_t size, const CUmemAllocationProp *prop,
                                  bool plain) {
    struct vmm_handle *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->id = VMM_HANDLE_TAG | ++t->next_id;
    h->size = size;
    h->prop = *prop;
    h->plain = plain;
    h->refs = 1;
    HASH_ADD(hh, t->handles, id, sizeof h->id, h);
    return h;
}

struct vmm_handle *vmm_handle_find(struct vmm_table *t, CUmemGenericAllocationHandle id) {
    if (!(id & VMM_HANDLE_TAG))
        return NULL;
    struct vmm_handle *h = NULL;
    HASH_FIND(hh, t->handles, &id, sizeof id, h);
    return h;
}

bool vmm_handle_forget_if_unused(struct vmm_table *t, struct vmm_handle *h) {
    if (h->refs || h->maps)
        return false;
    HASH_DEL(t->handles, h);
    free(h);
    return true;
}

/* The index of the first mapping whose end lies above addr (t->count: none). */
static size_t first_ending_above(const struct vmm_table *t, CUdeviceptr addr) {
    size_t lo = 0, hi = t->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->maps[mid].base + t->maps[mid].size <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int vmm_mapping_add(struct vmm_table *t, CUdeviceptr base, size_t size, struct vmm_handle *h,
                    struct allocation *tracked) {
    if (VEC_RESERVE(t->maps, t->capacity, t->count + 1) != 0)
        return -1;
    size_t i = first_ending_above(t, base);
    memmove(&t->maps[i + 1], &t->maps[i], (t->count - i) * sizeof *t->maps);
    t->maps[i] = (struct vmm_mapping){base, size, h, tracked};
    t->count++;
    if (h)
        h->maps++;
    return 0;
}

long vmm_mapping_at(const struct vmm_table *t, CUdeviceptr addr) {
    size_t i = first_ending_above(t, addr);
    return i < t->count && t->maps[i].base <= addr ? (long)i : -1;
}

bool vmm_mapping_overlaps(const struct vmm_table *t, CUdeviceptr base, size_t size) {
    size_t i = first_ending_above(t, base);
    return i < t->count && t->maps[i].base < base + size;
}

bool vmm_mapping_run(const struct vmm_table *t, CUdeviceptr base, size_t size, size_t *first,
                     size_t *n) {
    long i = vmm_mapping_at(t, base);
    if (i < 0 || t->maps[i].base != base)
        return false;
    CUdeviceptr at = base;
    size_t j = (size_t)i;
    while (j < t->count && at < base + size && t->maps[j].base == at) {
        at += t->maps[j].size;
        j++;
    }
    if (at != base + size)
        return false;
    *first = (size_t)i;
    *n = j - (size_t)i;
    return true;
}

void vmm_mapping_remove(struct vmm_table *t, size_t i) {
    if (t->maps[i].handle)
        t->maps[i].handle->maps--;
    memmove(&t->maps[i], &t->maps[i + 1], (t->count - i - 1) * sizeof *t->maps);
    t->count--;
}
