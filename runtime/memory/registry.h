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

#include <cuda.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A stream that used an allocation since it was last restored. CU_STREAM_PER_THREAD names a
 * different stream in every thread, so for it `thread` says whose (0 for other streams). */
struct stream_use {
    CUstream stream;
    uint64_t thread;
};

#define ALLOCATION_MAX_STREAMS 8

enum residency {
    RESIDENT, /* physical memory mapped; data on the device */
    EVICTING, /* copy to host queued, physical memory still mapped until `ready` completes */
    EVICTED,  /* physical memory released; data only in the host backup */
};

struct granule_entry;

struct allocation {
    CUdeviceptr base;
    size_t size;      /* as the program asked */
    size_t mapped;    /* reserved and mapped size: size rounded up to the granularity */
    uint64_t ordinal; /* order of creation among tracked allocations, from 0 */
    enum residency state;
    CUmemGenericAllocationHandle handle; /* the physical memory, while RESIDENT */

    void *backup;       /* host copy, allocated at the first eviction and kept */
    bool backup_pinned; /* page-locked (fast, async) or pageable fallback */
    bool backup_valid;  /* the backup equals the device bytes: re-evicting copies nothing */

    CUevent ready;        /* recorded after the last copy, on that direction's offload stream */
    bool restore_pending; /* `ready` may not have completed yet */
    bool prefetched;      /* restored ahead of use; cleared at first use */
    bool readonly;        /* the program never writes it: a backup stays valid after use */
    bool used;            /* referenced by a launch at least once (ownership at first use) */

    uint64_t last_use;      /* LRU clock */
    uint64_t protect_epoch; /* equal to the runtime's epoch: needed by the current call */
    int component;          /* index into the config's components, -1: unowned */

    unsigned stream_count;
    bool streams_overflow; /* more users than fit: eviction falls back to a context sync */
    struct stream_use streams[ALLOCATION_MAX_STREAMS];

    struct granule_entry *granules; /* this allocation's entries in the granule hash */
    size_t list_index;              /* position in registry.list */
};

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

/* Removes a; does not free it. */
/* Takes back the ordinal of the allocation registered last (its set-up failed after
 * registry_add), so the next allocation gets it and config `allocs` keep their meaning. */
void registry_unnumber_last(struct registry *reg, const struct allocation *a);

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
