/*
 * pressure.c — the victim source: components.h and lru.h choose, plan.c and residency.h
 * evict.
 */
#include "runtime/pressure.h"

#include "runtime/components/components.h"
#include "runtime/plan.h"
#include "runtime/policy/lru.h"

static uint64_t evict_components(struct runtime *rt, uint64_t need, bool window_too) {
    size_t n;
    const size_t *victims = components_victims(rt, need, window_too, &n);
    uint64_t started = 0;
    for (size_t i = 0; i < n; i++)
        started += plan_evict_component(rt, victims[i]);
    return started;
}

static bool evict_lru(struct runtime *rt, enum lru_candidates which) {
    struct allocation *victim = lru_choose(&rt->registry, rt->epoch, which);
    if (!victim)
        return false;
    if (residency_evict(rt, victim) != CUDA_SUCCESS)
        victim->protect_epoch = rt->epoch; /* cannot go now; do not pick it again */
    return true;
}

/* Another component's member whose next use is farthest (components.h). */
static bool evict_far_member(struct runtime *rt) {
    if (rt->cfg.policy == CONFIG_POLICY_LRU)
        return false;
    struct allocation *victim = components_far_member(rt);
    if (!victim)
        return false;
    if (residency_evict(rt, victim) != CUDA_SUCCESS)
        victim->protect_epoch = rt->epoch;
    return true;
}

/* Inside the active component, Belady on its learnt order (components/stream.c). */
static bool evict_farthest_active(struct runtime *rt) {
    struct allocation *victim = components_stream_victim(rt);
    if (!victim)
        return false;
    if (residency_evict(rt, victim) != CUDA_SUCCESS)
        victim->protect_epoch = rt->epoch;
    return true;
}

static bool evict_some(struct runtime *rt, uint64_t need) {
    return evict_far_member(rt) || evict_components(rt, need, false) > 0 ||
           evict_lru(rt, LRU_UNOWNED_USED) || evict_farthest_active(rt) ||
           evict_components(rt, need, true) > 0 || evict_lru(rt, LRU_NOT_KEPT);
}

const struct victim_source pressure_victims = {
    .evict_some = evict_some,
    .log_holders = components_log_holders,
};
