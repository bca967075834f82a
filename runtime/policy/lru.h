/*
 * lru.h — the least recently used allocation that may be evicted now.
 *
 * Pure function of the registry: candidates are RESIDENT, not needed by the current call
 * (protect_epoch != epoch) and not in a keep component. Oldest last_use first; ties: the
 * larger mapped size, then the earlier position in the registry.
 */
#ifndef OFFLOAD_LRU_H
#define OFFLOAD_LRU_H

#include "runtime/memory/registry.h"

/* is_kept(ctx, component): true for components that are never evicted (may be NULL). */
struct allocation *lru_choose(const struct registry *reg, uint64_t epoch,
                              bool (*is_kept)(const void *ctx, int component), const void *ctx);

#endif /* OFFLOAD_LRU_H */
