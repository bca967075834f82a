/*
 * residency.h — the life of a tracked allocation: created, mapped, evicted, restored,
 * destroyed. The only module that changes an allocation's state (allocation.h's table).
 *
 * Evict: the eviction stream waits (events) for the streams that used the allocation (and
 *   for its restore, when it is still RESTORING), copies it to its host backup in chunks
 *   (or copies nothing when the backup is still valid) and records `ready`: EVICTING. Its
 *   physical memory is unmapped and released only once `ready` has completed
 *   (residency_reap, or a host wait when the budget needs the bytes now): never before a
 *   complete host copy exists.
 * Restore: new physical memory mapped at the same address, chunked copy back on the
 *   restore stream, `ready` recorded: RESTORING. Consumers' streams wait on `ready` (never
 *   the host, except for a stream that is capturing); the first use that finds it complete
 *   makes it RESIDENT.
 * Room: anything that maps memory first makes room under a limit, asking a victim source
 *   (below) what to evict, and retries once after evicting when the driver itself is out
 *   of memory. This module never decides *what* goes; it only carries evictions out.
 *
 * Callers hold the runtime lock and have the runtime's context current.
 */
#ifndef OFFLOAD_RESIDENCY_H
#define OFFLOAD_RESIDENCY_H

#include "runtime/state.h"

/* Who decides what to evict when room is needed (runtime/pressure.h provides the one the
 * runtime uses; tests provide their own). */
struct victim_source {
    /* Starts evicting (residency_evict) something worth up to `need` bytes, nothing that
     * the current call needs; false when nothing more may go. */
    bool (*evict_some)(struct runtime *rt, uint64_t need);
    /* For the out-of-memory message: logs what holds the memory (may be NULL). */
    void (*log_holders)(struct runtime *rt);
};

/* A new RESERVED allocation of `bytes`: its range reserved (granularity aligned), it
 * registered (ordinal assigned), protected by the current epoch, no memory behind it. */
CUresult residency_create(struct runtime *rt, size_t bytes, struct allocation **out);

/* A new RESERVED allocation in the program's own reserved range [base, base+bytes) (its
 * cuMemMap of a liboffload handle): registered (ordinal assigned), protected by the current
 * epoch; liboffload never reserves or frees that range. `prop`: the properties of the
 * physical memory to create for it (NULL: plain device memory; kept by the caller for
 * the allocation's life). */
CUresult residency_create_mapped(struct runtime *rt, CUdeviceptr base, size_t bytes,
                                 const CUmemAllocationProp *prop, struct allocation **out);

/* RESERVED -> RESIDENT: maps fresh physical memory behind a's range, making room first. */
CUresult residency_map_new(struct runtime *rt, struct allocation *a);

/* Undoes residency_create of an allocation the program never saw (its mapping failed):
 * unregistered with its ordinal taken back, range freed, a freed. */
void residency_discard(struct runtime *rt, struct allocation *a);

/* Starts evicting a (RESIDENT or RESTORING -> EVICTING); anything else is left alone. On
 * failure a keeps its state, the failure is counted and logged, the error returned. */
CUresult residency_evict(struct runtime *rt, struct allocation *a);

/* EVICTED -> RESTORING (memory mapped, copy in queued), or takes back an eviction still in
 * flight (EVICTING -> RESTORING); anything else is left alone. `prefetch`: ahead of use,
 * only into room that is free or already being freed (never evicts). */
CUresult residency_restore(struct runtime *rt, struct allocation *a, bool prefetch);

/* Makes a usable by work queued next on `stream`: restored if needed, the stream ordered
 * after `ready`, marked used (LRU clock, users). */
CUresult residency_use(struct runtime *rt, struct allocation *a, CUstream stream);

/* The n allocations a copy or memset reaches (its call's, residency_use'd): their backups
 * are stale for a known reason, so their next evictions copy without a clean check first
 * (memory/fingerprint.h). Sources count too: the hooks do not say which range is which. */
static inline void residency_note_written(struct allocation *const *a, size_t n) {
    for (size_t i = 0; i < n; i++)
        a[i]->written = true;
}

/* Records that work queued on `stream` may use a (mapped): its eviction waits for it. For
 * work liboffload cannot see into (a launch whose parameters it cannot read). */
void residency_note_user(struct allocation *a, CUstream stream);

/* Frees room for `bytes` more under `limit` (normally the budget's), evicting what
 * `victims` chooses. CUDA_ERROR_OUT_OF_MEMORY (logged) when nothing more can go. */
CUresult residency_make_room(struct runtime *rt, uint64_t bytes, uint64_t limit,
                             const struct victim_source *victims);

/* Finishes evictions whose copies have completed (cheap: one event query when none has). */
void residency_reap(struct runtime *rt);

/* Releases the physical memory this call's evictions left in the pool. Every runtime entry
 * point calls it before returning. */
void residency_drain_pool(struct runtime *rt);

/* Stops tracking a, leaving its memory mapped with its bytes in place: restored first when
 * evicted (making room), the host waits for its copies; *handle gets the physical memory,
 * no longer counted as resident (the caller accounts for it). a is unregistered and freed;
 * its owners must have forgotten it. On failure a is unchanged. */
CUresult residency_detach(struct runtime *rt, struct allocation *a,
                          CUmemGenericAllocationHandle *handle);

/* Host waits until every eviction in flight has landed (or failed and stayed resident). */
void residency_finish_evictions(struct runtime *rt);

/* The first half of freeing a: waits for its users. On failure work may still use it and
 * nothing is changed; the program sees the error. */
CUresult residency_quiesce(struct runtime *rt, struct allocation *a);

/* The second half, after residency_quiesce and after its owners forgot it: waits for its
 * copies, releases its memory, backup and range; a is unregistered and freed. */
void residency_destroy(struct runtime *rt, struct allocation *a);

#endif /* OFFLOAD_RESIDENCY_H */
