/*
 * pools.h — stream-ordered memory: frees of tracked stream-ordered allocations waiting for
 * their stream, and the driver's pools that hold memory for the program.
 *
 * A tracked stream-ordered allocation (ALLOC_FROM_STREAM) freed with cuMemFreeAsync stays
 * mapped, and its range reserved, until an event recorded on the freeing stream at the
 * free has completed: work queued before the free may still use it. Then it is destroyed
 * (residency_destroy). While waiting it is never moved (keep).
 *
 * What goes to a driver pool (small or captured allocations) stays the driver's; the
 * pool's reserved memory counts against the budget as untracked bytes, re-read from the
 * driver (CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT) when the budget is consulted. Freed memory
 * a pool keeps is never moved: when room is needed it is trimmed (cuMemPoolTrimTo) before
 * any live data is evicted.
 *
 * Callers hold the runtime lock and have the runtime's context current.
 */
#ifndef OFFLOAD_POOLS_H
#define OFFLOAD_POOLS_H

#include <cuda.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct runtime;
struct allocation;

struct pending_free {
    struct allocation *alloc;
    CUevent done;     /* recorded on the freeing stream at the free */
    CUstream stream;  /* the freeing stream */
    uint64_t thread;  /* whose, for CU_STREAM_PER_THREAD (copy_thread_id) */
    bool stream_gone; /* destroyed: a new stream may have its handle */
};

struct known_pool {
    CUmemoryPool pool;
    uint64_t counted; /* its reserved bytes, as counted in the budget's untracked bytes */
};

struct pools {
    struct pending_free *frees; /* oldest first */
    size_t free_count, free_capacity;
    uint64_t pending_bytes; /* mapped bytes of the frees waiting */
    struct known_pool *known;
    size_t known_count, known_capacity;
    CUmemoryPool *plain; /* created by the program for plain memory of liboffload's device */
    size_t plain_count, plain_capacity;
    struct served_pool *served; /* what liboffload serves in each pool's name */
    size_t served_count, served_capacity;
};

/* Tracked bytes drawn from a pool, live in API order, and their high-water mark: a pool's
 * usage attributes include them, as they would without liboffload. */
struct served_pool {
    CUmemoryPool pool;
    uint64_t used, used_high;
};

/* Queues the destruction of a (its owners forgot it) after the work queued so far on
 * `stream`. Host-waits for the stream instead when no event can be recorded (a capturing
 * stream cannot be waited for: the caller does not free tracked memory there). */
CUresult pools_queue_free(struct runtime *rt, struct allocation *a, CUstream stream);

/* A freed allocation of `bytes` (same mapped size), still on the device, taken back for a
 * new allocation on `stream`: one freed on that stream (work queued on it next runs after
 * the free) or one whose free has run, as the driver's pools reuse memory. The caller
 * tracks it again as new (it has a new ordinal). NULL when none fits. */
struct allocation *pools_reuse_freed(struct runtime *rt, size_t bytes, CUstream stream);

/* `stream` is being destroyed: the driver may give its handle to a new stream, which is
 * not ordered after the frees queued on this one (pools_reuse_freed). */
void pools_forget_stream(struct runtime *rt, CUstream stream);

/* Destroys the allocations whose free has run. */
void pools_reap_frees(struct runtime *rt);

/* Remembers a driver pool that holds memory for the program (idempotent). */
void pools_note(struct runtime *rt, CUmemoryPool pool);

/* Re-reads the known pools' reserved bytes into the budget; forgets pools that are gone. */
void pools_refresh(struct runtime *rt);

/* Before live data is evicted to fit `bytes` under `limit`: reaps finished frees, trims
 * the pools' unused reserved memory, waits for frees still queued. */
void pools_make_room(struct runtime *rt, uint64_t bytes, uint64_t limit);

/* Pools whose allocations liboffload may serve from its own memory: the program created
 * them for plain device memory of liboffload's device (no handle types, no size limit). */
void pools_note_plain(struct runtime *rt, CUmemoryPool pool);
void pools_forget_plain(struct runtime *rt, CUmemoryPool pool);
bool pools_is_plain(const struct runtime *rt, CUmemoryPool pool);

/* A tracked allocation drawn from `pool` starts or stops (API order). */
void pools_serve(struct runtime *rt, CUmemoryPool pool, uint64_t bytes);
void pools_unserve(struct runtime *rt, CUmemoryPool pool, uint64_t bytes);

/* cuMemPoolGetAttribute after the driver answered `value`: the usage attributes gain what
 * liboffload serves for the pool. */
void pools_adjust_attribute(const struct runtime *rt, CUmemoryPool pool, CUmemPool_attribute attr,
                            void *value);

/* cuMemPoolSetAttribute succeeded: a reset of a high-water mark resets ours too. */
void pools_attribute_set(struct runtime *rt, CUmemoryPool pool, CUmemPool_attribute attr);

/* Every queued free completed and destroyed, up to the first whose wait fails. */
void pools_finish_frees(struct runtime *rt);

#endif /* OFFLOAD_POOLS_H */
