/*
 * alloc.h — internal to runtime/: the start and the end of a tracked allocation's life as
 * the entry points see them, shared by cuMemAlloc (alloc.c), stream-ordered (stream_alloc.c)
 * and program-mapped (vmm.c) memory, so that components, record mode and the counters
 * treat every kind alike.
 */
#ifndef OFFLOAD_RUNTIME_ALLOC_H
#define OFFLOAD_RUNTIME_ALLOC_H

#include "runtime/state.h"

/* a was just created (RESERVED): components claim it (by ordinal), it is mapped (room made
 * first), counted and recorded. On failure it is discarded and the error returned. */
CUresult alloc_start_tracking(struct runtime *rt, struct allocation *a);

/* a, freed in stream order and taken back resident for a new allocation (memory/pools.h):
 * tracked again as a new allocation (components claim it, counted, recorded). */
void alloc_resume_tracking(struct runtime *rt, struct allocation *a);

/* Before a is destroyed or detached: recorded as freed, forgotten by its owners. */
void alloc_stop_tracking(struct runtime *rt, struct allocation *a);

/* Makes room in liboffload's context for `bytes` the driver is about to allocate untracked
 * under `limit`, the room real (the pool drained) before it does. */
CUresult alloc_room_for_untracked(struct runtime *rt, uint64_t bytes, uint64_t limit);

#endif /* OFFLOAD_RUNTIME_ALLOC_H */
