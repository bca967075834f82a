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

static void mark_spanned(struct vmm_table *t, CUdeviceptr lo, CUdeviceptr hi);

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
    if (tracked) /* an extent learnt over a range not yet mapped then */
        mark_spanned(t, base, base + size);
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

/* --- extents ---------------------------------------------------------------------- */

/* The index of the first extent whose end lies above addr (extent_count: none). */
static size_t first_extent_ending_above(const struct vmm_table *t, CUdeviceptr addr) {
    size_t lo = 0, hi = t->extent_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->extents[mid].end <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* How many tracked mappings overlap [lo, hi). */
static size_t tracked_overlapping(const struct vmm_table *t, CUdeviceptr lo, CUdeviceptr hi) {
    size_t n = 0;
    for (size_t i = first_ending_above(t, lo); i < t->count && t->maps[i].base < hi; i++)
        n += t->maps[i].tracked != NULL;
    return n;
}

/* Whether an extent overlaps [lo, hi). */
static bool extent_overlaps(const struct vmm_table *t, CUdeviceptr lo, CUdeviceptr hi) {
    size_t i = first_extent_ending_above(t, lo);
    return i < t->extent_count && t->extents[i].start < hi;
}

/* Sets `spanned` on every tracked mapping overlapping [lo, hi) from the extents. */
static void mark_spanned(struct vmm_table *t, CUdeviceptr lo, CUdeviceptr hi) {
    for (size_t i = first_ending_above(t, lo); i < t->count && t->maps[i].base < hi; i++) {
        struct vmm_mapping *m = &t->maps[i];
        if (m->tracked)
            m->tracked->spanned = extent_overlaps(t, m->base, m->base + m->size);
    }
}

int vmm_extent_learn(struct vmm_table *t, CUdeviceptr base, size_t size) {
    CUdeviceptr end = base + size < base ? UINT64_MAX : base + size;
    if (size == 0 || tracked_overlapping(t, base, end) < 2)
        return 0;
    size_t first = first_extent_ending_above(t, base), last = first;
    while (last < t->extent_count && t->extents[last].start < end)
        last++; /* [first, last): the extents it overlaps, merged into one */
    struct vmm_extent merged = {base, end};
    if (last > first) {
        if (t->extents[first].start <= base && t->extents[last - 1].end >= end && last - first == 1)
            return 0; /* known already */
        if (t->extents[first].start < merged.start)
            merged.start = t->extents[first].start;
        if (t->extents[last - 1].end > merged.end)
            merged.end = t->extents[last - 1].end;
    }
    if (last == first && VEC_RESERVE(t->extents, t->extent_capacity, t->extent_count + 1) != 0)
        return -1;
    size_t removed = last - first;
    if (removed == 0) {
        memmove(&t->extents[first + 1], &t->extents[first],
                (t->extent_count - first) * sizeof *t->extents);
        t->extent_count++;
    } else if (removed > 1) {
        memmove(&t->extents[first + 1], &t->extents[last],
                (t->extent_count - last) * sizeof *t->extents);
        t->extent_count -= removed - 1;
    }
    t->extents[first] = merged;
    mark_spanned(t, merged.start, merged.end);
    return 1;
}

void vmm_extent_forget(struct vmm_table *t, CUdeviceptr base, size_t size) {
    CUdeviceptr end = base + size < base ? UINT64_MAX : base + size;
    size_t first = first_extent_ending_above(t, base), last = first;
    while (last < t->extent_count && t->extents[last].start < end)
        last++;
    if (last == first)
        return;
    CUdeviceptr lo = t->extents[first].start, hi = t->extents[last - 1].end;
    memmove(&t->extents[first], &t->extents[last], (t->extent_count - last) * sizeof *t->extents);
    t->extent_count -= last - first;
    mark_spanned(t, lo, hi);
}

void vmm_extent_members(const struct vmm_table *t, CUdeviceptr lo, CUdeviceptr hi,
                        void (*fn)(void *arg, struct allocation *a), void *arg) {
    for (size_t e = first_extent_ending_above(t, lo);
         e < t->extent_count && t->extents[e].start < hi; e++) {
        const struct vmm_extent *x = &t->extents[e];
        for (size_t i = first_ending_above(t, x->start); i < t->count && t->maps[i].base < x->end;
             i++)
            if (t->maps[i].tracked)
                fn(arg, t->maps[i].tracked);
    }
}
