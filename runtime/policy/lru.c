/*
 * lru.c — one pass over the registry's list; only on the eviction path.
 */
#include "runtime/policy/lru.h"

struct allocation *lru_choose(const struct registry *reg, uint64_t epoch,
                              bool (*is_kept)(const void *ctx, int component), const void *ctx) {
    struct allocation *best = NULL;
    for (size_t i = 0; i < reg->count; i++) {
        struct allocation *a = reg->list[i];
        if (a->state != RESIDENT || a->protect_epoch == epoch)
            continue;
        if (a->component >= 0 && is_kept && is_kept(ctx, a->component))
            continue;
        if (!best || a->last_use < best->last_use ||
            (a->last_use == best->last_use && a->mapped > best->mapped))
            best = a;
    }
    return best;
}
