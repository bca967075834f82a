/*
 * registry.h — every tracked allocation, found in O(1) from any address inside it.
 *
 * Tracked ranges are reserved with granularity alignment and a size rounded up to the
 * granularity, so each granule (address >> shift) belongs to at most one allocation: a hash
 * from granule number to allocation answers interior pointers with one lookup. The registry
 * also keeps a flat list of allocations for the rare paths that must look at all of them
 * (choosing what to evict, forgetting a stream), never used on the launch path.
 *
 * Pure data structure: no driver call, no lock (the caller holds the runtime lock).
 */
#ifndef OFFLOAD_REGISTRY_H
#define OFFLOAD_REGISTRY_H

#include "runtime/memory/allocation.h"

#include <cuda.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REGISTRY_RECENT_SLOTS 256

/* A direct-mapped cache of recent hits in front of the hash: a launch looks up the same
 * few allocations again and again, and a slot check is a handful of instructions. */
struct registry_slot {
    uint64_t granule;
    struct allocation *alloc; /* NULL: empty */
};

struct registry {
    unsigned shift; /* log2 of the granularity */
    struct registry_slot recent[REGISTRY_RECENT_SLOTS];
    struct granule_entry *by_granule; /* uthash head */
    struct allocation **list;
    size_t count, capacity;
    uint64_t next_ordinal;
    CUdeviceptr low, high; /* every tracked range lies in [low, high): a cheap first test */
};

void registry_init(struct registry *reg, unsigned granularity_shift);

/* Adds a (its base, size, mapped set; mapped a multiple of the granularity, base aligned).
 * Assigns a->ordinal. Returns 0, or -1 when memory for the index cannot be had. */
int registry_add(struct registry *reg, struct allocation *a);

/* Takes back the ordinal of the allocation registered last (its set-up failed after
 * registry_add), so the next allocation gets it and config `allocs` keep their meaning. */
void registry_unnumber_last(struct registry *reg, const struct allocation *a);

/* Gives a (registered) the next ordinal: reused for a new allocation of the program, it
 * counts as one (config `allocs`). */
void registry_renumber(struct registry *reg, struct allocation *a);

/* Removes a; does not free it. */
void registry_remove(struct registry *reg, struct allocation *a);

/* The hash lookup behind registry_find (fills the cache). */
struct allocation *registry_find_slow(struct registry *reg, CUdeviceptr addr);

/* The allocation whose mapped range contains addr, or NULL. */
static inline struct allocation *registry_find(struct registry *reg, CUdeviceptr addr) {
    if (addr < reg->low || addr >= reg->high)
        return NULL;
    uint64_t granule = addr >> reg->shift;
    const struct registry_slot *slot = &reg->recent[granule % REGISTRY_RECENT_SLOTS];
    if (slot->granule == granule && slot->alloc)
        return slot->alloc;
    return registry_find_slow(reg, addr);
}

/* Frees the index (not the allocations). */
void registry_destroy(struct registry *reg);

#endif /* OFFLOAD_REGISTRY_H */
