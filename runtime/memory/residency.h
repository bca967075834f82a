/*
 * residency.h — moving tracked allocations between device and host.
 *
 * Evict: the eviction stream waits (events) for the streams that used the allocation (and
 *   for its restore, when no user has waited for that yet), copies it to its host backup
 *   in chunks (or copies nothing when the backup is still valid) and records `ready`; the
 * allocation is then EVICTING. Its physical memory is unmapped and released only once `ready` has
 * completed (residency_reap, or a host wait when the budget needs the bytes now): never before a
 * complete host copy exists. Restore: new physical memory mapped at the same address, chunked copy
 * back on the restore stream, `ready` recorded; consumers' streams wait on `ready` (never the host,
 * except for a stream that is capturing). Budget: anything that maps memory first makes room
 * (evicting least recently used allocations, or components through components.h), and retries once
 * after evicting when the driver itself is out of memory.
 *
 * Callers hold the runtime lock and have the runtime's context current.
 */
#ifndef OFFLOAD_RESIDENCY_H
#define OFFLOAD_RESIDENCY_H

#include "runtime/state.h"

/* Starts evicting a (RESIDENT -> EVICTING). On failure a stays RESIDENT, the failure is
 * counted and logged, the error returned. */
CUresult residency_evict(struct runtime *rt, struct allocation *a);

/* Starts restoring a (EVICTED -> RESIDENT with a copy in flight), or takes back an
 * eviction still in flight (EVICTING -> RESIDENT). `prefetch`: ahead of use. */
CUresult residency_restore(struct runtime *rt, struct allocation *a, bool prefetch);

/* Makes a usable by work queued next on `stream`: restored if needed, the stream ordered
 * after the restore, marked used (LRU clock, users). */
CUresult residency_use(struct runtime *rt, struct allocation *a, CUstream stream);

/* Frees room for `bytes` more within the budget, evicting what is not protected by the
 * current epoch. CUDA_ERROR_OUT_OF_MEMORY (logged) when nothing more can go. */
CUresult residency_make_room(struct runtime *rt, uint64_t bytes);

/* Maps fresh physical memory behind a's range (a new allocation), making room first. */
CUresult residency_map_new(struct runtime *rt, struct allocation *a);

/* Finishes evictions whose copies have completed (cheap: one event query when none has). */
void residency_reap(struct runtime *rt);

/* Releases the physical memory this call's evictions left in the pool. Every runtime entry
 * point calls it before returning. */
void residency_drain_pool(struct runtime *rt);

/* Host waits until every eviction in flight has landed (or failed and stayed resident). */
void residency_finish_evictions(struct runtime *rt);

/* Waits for a's users and copies, releases its memory, backup and range. a is then
 * unregistered and freed. */
CUresult residency_destroy(struct runtime *rt, struct allocation *a);

#endif /* OFFLOAD_RESIDENCY_H */
