/*
 * registry.c — granule hash + flat list of tracked allocations.
 */
#include "runtime/memory/registry.h"

#include "base/hash.h"
#include "base/vec.h"

#include <stdlib.h>

struct granule_entry {
    uint64_t granule;
    struct allocation *alloc;
    UT_hash_handle hh;
};

void registry_init(struct registry *reg, unsigned granularity_shift) {
    memset(reg, 0, sizeof *reg);
    reg->shift = granularity_shift;
    reg->low = UINT64_MAX;
}

static int list_append(struct registry *reg, struct allocation *a) {
    if (VEC_RESERVE(reg->list, reg->capacity, reg->count + 1) != 0)
        return -1;
    a->list_index = reg->count;
    reg->list[reg->count++] = a;
    return 0;
}

int registry_add(struct registry *reg, struct allocation *a) {
    size_t n = a->mapped >> reg->shift;
    struct granule_entry *entries = calloc(n ? n : 1, sizeof *entries);
    if (!entries || list_append(reg, a) != 0) {
        free(entries);
        return -1;
    }
    bool hash_oom = false;
    uint64_t first = a->base >> reg->shift;
    size_t added = 0;
    for (; added < n && !hash_oom; added++) {
        entries[added].granule = first + added;
        entries[added].alloc = a;
        HASH_ADD(hh, reg->by_granule, granule, sizeof(uint64_t), &entries[added]);
    }
    if (hash_oom) {
        /* The last add failed and is not in the table; take the others out again. */
        for (size_t i = 0; i + 1 < added; i++)
            HASH_DELETE(hh, reg->by_granule, &entries[i]);
        reg->list[--reg->count] = NULL;
        free(entries);
        return -1;
    }
    a->granules = entries;
    a->ordinal = reg->next_ordinal++;
    if (a->base < reg->low)
        reg->low = a->base;
    if (a->base + a->mapped > reg->high)
        reg->high = a->base + a->mapped;
    return 0;
}

void registry_renumber(struct registry *reg, struct allocation *a) {
    a->ordinal = reg->next_ordinal++;
}

void registry_unnumber_last(struct registry *reg, const struct allocation *a) {
    if (a->ordinal + 1 == reg->next_ordinal)
        reg->next_ordinal--;
}

void registry_remove(struct registry *reg, struct allocation *a) {
    for (size_t i = 0; i < REGISTRY_RECENT_SLOTS; i++)
        if (reg->recent[i].alloc == a)
            reg->recent[i] = (struct registry_slot){0, NULL};
    size_t n = a->mapped >> reg->shift;
    for (size_t i = 0; i < n; i++)
        HASH_DELETE(hh, reg->by_granule, &a->granules[i]);
    free(a->granules);
    a->granules = NULL;
    struct allocation *last = reg->list[--reg->count];
    reg->list[a->list_index] = last;
    last->list_index = a->list_index;
    reg->list[reg->count] = NULL;
}

struct allocation *registry_find_slow(struct registry *reg, CUdeviceptr addr) {
    uint64_t granule = addr >> reg->shift;
    struct granule_entry *e;
    HASH_FIND(hh, reg->by_granule, &granule, sizeof granule, e);
    if (!e)
        return NULL;
    reg->recent[granule % REGISTRY_RECENT_SLOTS] = (struct registry_slot){granule, e->alloc};
    return e->alloc;
}

void registry_destroy(struct registry *reg) {
    HASH_CLEAR(hh, reg->by_granule);
    for (size_t i = 0; i < reg->count; i++) {
        free(reg->list[i]->granules);
        reg->list[i]->granules = NULL;
    }
    free(reg->list);
    memset(reg, 0, sizeof *reg);
}
