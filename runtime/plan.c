/*
 * plan.c — switch plans carried out through residency.h.
 */
#include "runtime/plan.h"

#include "base/vec.h"
#include "runtime/memory/residency.h"
#include "runtime/setup.h"

uint64_t plan_evict_component(struct runtime *rt, size_t c) {
    size_t n;
    struct allocation *const *members = components_members(rt, c, &n);
    uint64_t started = 0;
    for (size_t i = 0; i < n; i++) {
        struct allocation *a = members[i];
        if (allocation_evictable_state(a) && a->protect_epoch != rt->epoch &&
            residency_evict(rt, a) == CUDA_SUCCESS)
            started += a->mapped;
    }
    return started;
}

static void prefetch_component(struct runtime *rt, size_t c) {
    size_t n;
    struct allocation *const *members = components_members(rt, c, &n);
    for (size_t i = 0; i < n; i++) {
        struct allocation *a = members[i];
        bool away = a->state == ALLOC_EVICTED || a->state == ALLOC_EVICTING;
        if (away && residency_restore(rt, a, true) != CUDA_SUCCESS)
            break; /* no room now: the launch that needs it restores on demand */
    }
}

void plan_carry_out(struct runtime *rt, const struct switch_plan *plan) {
    struct prefetch_queue *q = &rt->prefetches;
    bool pushed = setup_context_enter(rt);
    for (size_t i = 0; i < plan->evict_count; i++)
        plan_evict_component(rt, plan->evict[i]);
    q->count = 0;
    if (plan->prefetch_count &&
        VEC_RESERVE(q->components, q->capacity, plan->prefetch_count) == 0) {
        memcpy(q->components, plan->prefetch, plan->prefetch_count * sizeof *q->components);
        q->count = plan->prefetch_count;
    } /* else no prefetch: each launch restores on demand */
    plan_poll(rt);
    setup_context_leave(pushed);
}

bool plan_pending(const struct runtime *rt) {
    return rt->prefetches.count > 0;
}

void plan_poll(struct runtime *rt) {
    struct prefetch_queue *q = &rt->prefetches;
    if (q->count == 0)
        return;
    residency_reap(rt);
    if (rt->evicting_count)
        return;
    size_t n = q->count;
    q->count = 0;
    for (size_t i = 0; i < n; i++)
        prefetch_component(rt, q->components[i]);
}

void plan_stream(struct runtime *rt) {
    if (!rt->components || rt->cfg.prefetch == 0) /* prefetch = 0: restores on demand only */
        return;
    bool pushed = setup_context_enter(rt);
    residency_reap(rt); /* evictions that landed are room */
    struct stream_plan sp;
    if (components_stream_plan(rt, &sp)) {
        for (size_t i = 0; i < sp.evict_count; i++)
            residency_evict(rt, sp.evict[i]);
        for (size_t i = 0; i < sp.prefetch_count; i++)
            if (residency_restore(rt, sp.prefetch[i], true) != CUDA_SUCCESS)
                break;
        residency_drain_pool(rt);
    }
    setup_context_leave(pushed);
}

void plan_fill_component(struct runtime *rt, size_t c, CUstream stream) {
    size_t n;
    struct allocation *const *members = components_members(rt, c, &n);
    bool pushed = setup_context_enter(rt);
    residency_reap(rt);
    bool room = true;
    for (size_t i = 0; i < n; i++) {
        struct allocation *a = members[i];
        if (room && (a->state == ALLOC_EVICTED || a->state == ALLOC_EVICTING)) {
            room = residency_restore(rt, a, true) == CUDA_SUCCESS;
            a->prefetched = false; /* the switch needs it now: not a prefetch */
        }
        if (allocation_mapped(a) && a->state != ALLOC_EVICTING)
            residency_use(rt, a, stream); /* ordered after its restore, if any */
    }
    residency_drain_pool(rt);
    setup_context_leave(pushed);
}
