/*
 * lru.h — the least recently used allocation that may be evicted now.
 *
 * Pure function of the registry: candidates have their bytes on the device with no
 * eviction queued (RESIDENT or RESTORING), are not needed by the current call
 * (protect_epoch != epoch) and not in a keep component. Oldest last_use first; ties: the
 * larger mapped size, then the earlier position in the registry.
 */
#ifndef OFFLOAD_LRU_H
#define OFFLOAD_LRU_H

#include "runtime/memory/registry.h"

enum lru_candidates {
    LRU_UNOWNED_USED, /* allocations outside every component that a launch has used: a
                         fresh one (allocated, no launch yet) is about to be, and
                         evicting it costs a restore of bytes nobody wrote */
    LRU_NOT_KEPT,     /* any allocation not in a keep component */
};

struct allocation *lru_choose(const struct registry *reg, uint64_t epoch,
                              enum lru_candidates which);

#endif /* OFFLOAD_LRU_H */
