/*
 * lru.c — one pass over the registry's list; only on the eviction path.
 */
#include "runtime/policy/lru.h"

static bool candidate(const struct allocation *a, uint64_t epoch, enum lru_candidates which) {
    if (!allocation_evictable_state(a) || a->protect_epoch == epoch || a->keep)
        return false;
    return which == LRU_NOT_KEPT || (a->component < 0 && a->used);
}

struct allocation *lru_choose(const struct registry *reg, uint64_t epoch,
                              enum lru_candidates which) {
    struct allocation *best = NULL;
    for (size_t i = 0; i < reg->count; i++) {
        struct allocation *a = reg->list[i];
        if (!candidate(a, epoch, which))
            continue;
        if (!best || a->last_use < best->last_use ||
            (a->last_use == best->last_use && a->mapped > best->mapped))
            best = a;
    }
    return best;
}
