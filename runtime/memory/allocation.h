/*
 * allocation.h — one tracked allocation and the states of its life.
 *
 * A tracked allocation is a reserved virtual range that never moves; what moves is the
 * physical memory behind it and where its bytes are. Its residency is exactly one state:
 *
 *   state       mapped  where the bytes are                 `ready` (event)
 *   RESERVED    no      nowhere yet (just reserved)          -
 *   RESIDENT    yes     on the device                        complete or unused
 *   RESTORING   yes     on the device once `ready` completes the copy in (or the copy out
 *                                                            of an eviction taken back)
 *   EVICTING    yes     on the device; a copy out is queued  the copy out
 *   EVICTED     no      only in the host backup              complete
 *
 * Transitions (the only legal ones; allocation_set_state checks every change):
 *
 *   RESERVED  -> RESIDENT   first mapping (residency_map_new)
 *   RESIDENT  -> EVICTING   eviction queued (residency_evict)
 *   RESTORING -> EVICTING   eviction queued behind the restore's copy
 *   EVICTING  -> EVICTED    the copy out landed; memory unmapped (residency_reap)
 *   EVICTING  -> RESIDENT   the copy out or the unmap failed: the bytes stay on the device
 *   EVICTING  -> RESTORING  taken back before it landed (residency_restore)
 *   EVICTED   -> RESTORING  memory mapped again, copy in queued (residency_restore)
 *   RESTORING -> RESIDENT   `ready` observed complete (residency_use)
 *
 * EVICTING has two steps (`evict_step`, a sub-state: the clean-eviction check of
 * memory/fingerprint.h). COPYING: the copy out is queued, `ready` after it. CHECKING:
 * only the device's fingerprint of the bytes is queued, `ready` after its result reached
 * the host; the copy may not be needed at all. Entering EVICTING is entering one of them:
 *
 *   RESIDENT/RESTORING -> EVICTING.COPYING    copy out queued (residency_evict)
 *   RESIDENT/RESTORING -> EVICTING.CHECKING   fingerprint queued instead (residency_evict)
 *   EVICTING.CHECKING  -> EVICTED             the fingerprint landed equal to the backup's:
 *                                             unmapped with no copy (residency_reap)
 *   EVICTING.CHECKING  -> EVICTING.COPYING    it differs: the copy out queued then
 *                                             (residency_reap; to the end of the list)
 *   EVICTING.*         -> RESIDENT, RESTORING as EVICTING above
 *
 * An illegal transition is a liboffload bug: with OFFLOAD_DEBUG (make DEBUG=1) it aborts;
 * otherwise it is logged as an error and applied, because the caller has already done to
 * the memory what the new state says.
 *
 * The flags beside the state are not residency: `backup_valid` (the host copy equals the
 * device bytes, so re-evicting copies nothing), `fingerprint_known` and `written` (the
 * clean-eviction check, memory/fingerprint.h), `prefetched` (restored ahead of use, not
 * yet used: counts a prefetch hit), `readonly`, `keep` and `used` (set by components),
 * `spanned` (set by memory/mapped.c).
 *
 * The memory module (residency.h) is the only writer of `state`, `evict_step`, `handle`,
 * `ready`, `backup*`, `fingerprint*`, `fp_slot`, `written`; components write `component`, `moves`,
 * `readonly`, `keep`, `used`.
 */
#ifndef OFFLOAD_ALLOCATION_H
#define OFFLOAD_ALLOCATION_H

#include "runtime/report/stats.h"

#include <cuda.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum alloc_state {
    ALLOC_RESERVED,
    ALLOC_RESIDENT,
    ALLOC_RESTORING,
    ALLOC_EVICTING,
    ALLOC_EVICTED,
};
#define ALLOC_STATE_COUNT 5

/* The step of an eviction, while EVICTING (the table above). */
enum evict_step {
    EVICT_COPYING,  /* the copy out is queued */
    EVICT_CHECKING, /* the fingerprint is queued; the copy is decided when it lands */
};

/* A stream that used an allocation since it was last restored. CU_STREAM_PER_THREAD names a
 * different stream in every thread, so for it `thread` says whose (0 for other streams). */
struct stream_use {
    CUstream stream;
    uint64_t thread;
};

#define ALLOCATION_MAX_STREAMS 8

struct granule_entry;

/* A pointer the program stored in an allocation by uploading it from the host: the word at
 * `offset` held `value`, an address liboffload tracked then (runtime/launch/stored_pointers.h
 * fills these; memory/ only frees them). */
struct stored_pointer {
    uint64_t offset;
    CUdeviceptr value;
};

/* How the program got the allocation: which calls free it, and whose range it is. */
enum alloc_origin {
    ALLOC_FROM_MEM_ALLOC, /* cuMemAlloc/cuMemAllocPitch: liboffload reserved the range */
    ALLOC_FROM_STREAM,    /* cuMemAllocAsync/cuMemAllocFromPoolAsync: liboffload's range too */
    ALLOC_FROM_MAPPING,   /* the program's cuMemMap of a liboffload handle: the range (and its
                           * reservation) is the program's; liboffload neither reserves it nor
                           * frees it, only maps and unmaps physical memory in it */
};

struct allocation {
    CUdeviceptr base;
    size_t size;      /* as the program asked */
    size_t mapped;    /* reserved and mapped size: size rounded up to the granularity */
    uint64_t ordinal; /* order of creation among tracked allocations, from 0 */
    enum alloc_state state;
    CUmemGenericAllocationHandle handle; /* the physical memory, while mapped */

    void *backup;       /* host copy, allocated at the first eviction and kept */
    bool backup_pinned; /* page-locked (fast, async) or pageable fallback */
    bool backup_valid;  /* the backup equals the device bytes: re-evicting copies nothing */

    /* the clean-eviction check (memory/fingerprint.h) */
    enum evict_step evict_step; /* while EVICTING */
    int fp_slot;                /* result slot of the fingerprint this eviction queued; -1 */
    bool fingerprint_known;     /* `fingerprint` is the device's of the backup's bytes */
    bool written;               /* a copy or memset reached it since the backup was taken */
    uint8_t check_misses;       /* checks in a row that found it changed (at most 4) */
    uint8_t check_skips;        /* evictions left that copy without checking first */
    uint64_t fingerprint[2];

    CUevent ready;   /* recorded after the last copy, on that direction's offload stream */
    bool prefetched; /* restored ahead of use; cleared at first use */
    bool readonly;   /* the program never writes it: a backup stays valid after use */
    bool keep;       /* its component is never evicted */
    bool used;       /* referenced by a launch at least once (ownership at first use) */
    /* a program mapping that a buffer spanning several mappings covers (an extent,
     * memory/mapped.h): a pointer into it brings the extent's other mappings along */
    bool spanned;

    uint64_t last_use;        /* LRU clock */
    uint64_t protect_epoch;   /* equal to the runtime's epoch: needed by the current call */
    int component;            /* index into the config's components, -1: unowned */
    struct move_stats *moves; /* its component's counters, NULL: unowned */

    unsigned stream_count;
    bool streams_overflow; /* more users than fit: eviction falls back to a context sync */
    struct stream_use streams[ALLOCATION_MAX_STREAMS];

    enum alloc_origin origin;
    bool stream_freed; /* ALLOC_FROM_STREAM: cuMemFreeAsync queued, destroyed once it ran */
    CUmemoryPool pool; /* ALLOC_FROM_STREAM: the pool the program drew it from */
    /* the properties of its physical memory (the program's cuMemCreate), NULL: a plain
     * device allocation */
    const CUmemAllocationProp *physical_prop;

    /* pointers uploaded into it (a batched GEMM's pointer table), sorted by offset: a
     * launch that passes it may dereference them */
    struct stored_pointer *stored;
    size_t stored_count, stored_cap;

    struct granule_entry *granules; /* this allocation's entries in the granule hash */
    size_t list_index;              /* position in registry.list */
};

/* A new RESERVED allocation of `size` bytes (mapped: size rounded up to granularity, a
 * power of two), unowned, or NULL without memory. */
struct allocation *allocation_new(size_t size, size_t granularity);

void allocation_free(struct allocation *a);

/* Whether the table above allows from -> to. */
bool allocation_transition_allowed(enum alloc_state from, enum alloc_state to);

/* Moves a to state `to`; false (after the abort or log described above) when illegal.
 * Into EVICTING: step COPYING. */
bool allocation_set_state(struct allocation *a, enum alloc_state to);

/* Into EVICTING at `step` (from RESIDENT or RESTORING), or EVICTING.CHECKING ->
 * EVICTING.COPYING; anything else is illegal, as in allocation_set_state. */
bool allocation_set_evict_step(struct allocation *a, enum evict_step step);

/* Physical memory is mapped behind the range (RESIDENT, RESTORING, EVICTING). */
static inline bool allocation_mapped(const struct allocation *a) {
    return a->state == ALLOC_RESIDENT || a->state == ALLOC_RESTORING || a->state == ALLOC_EVICTING;
}

/* Its bytes can move to the host now: mapped and no eviction queued yet. */
static inline bool allocation_evictable_state(const struct allocation *a) {
    return a->state == ALLOC_RESIDENT || a->state == ALLOC_RESTORING;
}

/* "resident", "evicting", ...: for messages. */
const char *allocation_state_name(enum alloc_state s);

#endif /* OFFLOAD_ALLOCATION_H */
