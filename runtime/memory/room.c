/*
 * room.c — making room under a limit: start the evictions a victim source chooses, wait
 * for as many as the bytes need, explain an out-of-memory.
 */
#include "runtime/memory/room.h"

#include "base/log.h"
#include "base/units.h"
#include "runtime/memory/fingerprint.h"
#include "runtime/memory/pools.h"
#include "runtime/memory/residency.h"
#include "runtime/report/trace.h"

/* Rounds of "start evictions, wait for them". A round repeats only when a copy out failed
 * (that allocation stays resident and protected, so the next round chooses others); the
 * bound keeps a driver that fails every copy from looping for long. */
#define MAKE_ROOM_MAX_ROUNDS 8

static void log_holders(struct runtime *rt, uint64_t bytes, uint64_t limit,
                        const struct victim_source *victims) {
    uint64_t in_use = 0, kept = 0, evictable = 0;
    for (size_t i = 0; i < rt->registry.count; i++) {
        const struct allocation *a = rt->registry.list[i];
        if (!allocation_mapped(a))
            continue;
        if (a->protect_epoch == rt->epoch)
            in_use += a->mapped;
        else if (a->keep)
            kept += a->mapped;
        else
            evictable += a->mapped;
    }
    log_error("out of memory: %.1f MiB more do not fit in the budget of %.1f MiB; held: "
              "%.1f MiB tracked (%.1f MiB needed by this call, %.1f MiB keep, %.1f MiB "
              "other), %.1f MiB untracked",
              mib(bytes), mib(limit), mib(rt->budget.resident), mib(in_use), mib(kept),
              mib(evictable), mib(rt->budget.untracked));
    if (victims && victims->log_holders)
        victims->log_holders(rt);
}

/* Starts evictions until, once they land, `bytes` fit under limit (or nothing more may
 * go). */
static void start_evictions(struct runtime *rt, uint64_t bytes, uint64_t limit,
                            const struct victim_source *victims) {
    for (;;) {
        uint64_t shortfall = budget_shortfall_under(&rt->budget, bytes, limit);
        uint64_t coming = rt->evicting_bytes + rt->pool.bytes;
        if (shortfall <= coming)
            return;
        if (!victims || !victims->evict_some(rt, shortfall - coming))
            return;
    }
}

CUresult residency_make_room(struct runtime *rt, uint64_t bytes, uint64_t limit,
                             const struct victim_source *victims) {
    if (budget_shortfall_under(&rt->budget, bytes, limit) == 0)
        return CUDA_SUCCESS;
    if (bytes > limit) {
        /* Can never fit: do not throw everything out first. */
        log_holders(rt, bytes, limit, victims);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    residency_reap(rt);
    pools_make_room(rt, bytes, limit); /* freed and unused memory before live data */
    for (int round = 0; round < MAKE_ROOM_MAX_ROUNDS; round++) {
        start_evictions(rt, bytes, limit, victims);
        bool failed = false;
        while (budget_shortfall_under(&rt->budget, bytes, limit) > rt->pool.bytes &&
               rt->evicting_count) {
            const struct allocation *oldest = rt->evicting[0];
            trace_stall_begin(-1, oldest->component, oldest->ordinal);
            failed |= residency_reap_oldest(rt) != CUDA_SUCCESS;
            trace_stall_end();
        }
        if (!failed || budget_shortfall_under(&rt->budget, bytes, limit) <= rt->pool.bytes)
            break;
    }
    if (budget_shortfall_under(&rt->budget, bytes, limit) > rt->pool.bytes &&
        budget_shortfall_under(&rt->budget, bytes, limit) <=
            rt->pool.bytes + FINGERPRINT_RESULT_BYTES &&
        fingerprint_give_back_results(rt))
        log_debug("room for %.1f MiB: the fingerprint results made way", mib(bytes));
    if (budget_shortfall_under(&rt->budget, bytes, limit) > rt->pool.bytes) {
        log_holders(rt, bytes, limit, victims);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    return CUDA_SUCCESS;
}
