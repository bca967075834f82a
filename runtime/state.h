/*
 * state.h — THE runtime: the one struct holding all of liboffload's mutable state, and
 * the one lock guarding it (log.c's level is the only other mutable global).
 *
 * Every runtime_* entry point takes the lock for its whole duration, including the driver
 * calls it makes: the driver never calls back into liboffload, and simulated or real
 * streams never wait for the host, so holding it while waiting on an event cannot
 * deadlock. Fields marked (atomic) are also read without the lock on fast paths.
 */
#ifndef OFFLOAD_STATE_H
#define OFFLOAD_STATE_H

#include "base/lock.h"
#include "config/config.h"
#include "runtime/launch/graphs.h"
#include "runtime/launch/launch.h"
#include "runtime/launch/stored_pointers.h"
#include "runtime/memory/backup.h"
#include "runtime/memory/budget.h"
#include "runtime/memory/copy.h"
#include "runtime/memory/fingerprint.h"
#include "runtime/memory/handle_pool.h"
#include "runtime/memory/mapped.h"
#include "runtime/memory/pools.h"
#include "runtime/memory/registry.h"
#include "runtime/report/stats.h"

#include <cuda.h>
#include <stdatomic.h>
#include <stdbool.h>

struct untracked_alloc;
struct components;
struct record_trace;
struct victim_source;

/* Components a switch plan prefetches once its evictions have landed (runtime/plan.c). */
struct prefetch_queue {
    size_t *components;
    size_t count, capacity;
};

struct runtime {
    struct offload_lock lock;

    struct config cfg;
    bool config_loaded;

    /* set up lazily at the first hooked call that has a current context */
    bool cuda_ready;
    atomic_bool cuda_unusable; /* (atomic) a forked child or a failed set-up: pass through */
    atomic_bool forked_child;  /* (atomic) the report belongs to the parent, not to us */
    bool setup_failed_logged;
    bool other_place_logged; /* an allocation outside ctx was passed through and said so */
    CUcontext ctx;
    CUdevice device;
    uint64_t device_total;
    size_t granularity;
    uint64_t min_size;

    struct registry registry;
    atomic_size_t tracked_count;       /* (atomic) registry.count, for the launch fast path */
    struct untracked_alloc *untracked; /* pass-through allocations: address -> size */
    struct budget budget;
    /* allocations in EVICTING state, oldest first (their copies complete in this order,
     * all being on the eviction stream) */
    struct allocation **evicting;
    size_t evicting_count, evicting_capacity;
    uint64_t evicting_bytes;
    struct handle_pool pool; /* released by this call's evictions (counted in resident) */
    struct copy_engine copy;
    struct backup_state backups;
    struct fingerprints fingerprints; /* the clean-eviction check's code and results */
    struct launch_cache layouts;
    struct graph_table graphs;
    /* pointers the program uploaded into device memory (stored_pointers.h) */
    struct stored_pointers uploads;
    struct stats stats;
    struct components *components; /* NULL without components in the config */
    struct prefetch_queue prefetches;
    struct vmm_table vmm; /* program-mapped memory: its handles and mappings (mapped.h) */
    struct pools pools;   /* stream-ordered frees waiting, driver pools (pools.h) */
    bool export_logged;   /* "an exported handle is never evicted" said once */
    const struct victim_source *victims; /* what goes when room is needed (pressure.h) */
    struct record_trace *record;         /* OFFLOAD_MODE=record only */
    struct allocation **scratch;         /* the current call's allocations (reused buffer) */
    size_t scratch_capacity;

    uint64_t clock; /* LRU clock: bumped on every use */
    uint64_t epoch; /* bumped per call: allocations needed by the call carry it */
};

/* The one instance. */
extern struct runtime offload_runtime;

static inline void runtime_lock(void) {
    offload_lock_acquire(&offload_runtime.lock);
}

static inline void runtime_unlock(void) {
    offload_lock_release(&offload_runtime.lock);
}

#endif /* OFFLOAD_STATE_H */
