/*
 * alloc.c — the allocation entry points (runtime.h): cuMemAlloc, cuMemFree, cuMemGetInfo,
 * cuMemGetAddressRange. Large allocations in liboffload's context are tracked (their life
 * is residency.h's); the rest pass through, counted against the budget.
 */
#include "runtime/runtime.h"

#include "base/log.h"
#include "driver/driver.h"
#include "runtime/alloc.h"
#include "runtime/call.h"
#include "runtime/components/components.h"
#include "runtime/launch/stored_pointers.h"
#include "runtime/memory/residency.h"
#include "runtime/memory/untracked.h"
#include "runtime/plan.h"
#include "runtime/record/record.h"
#include "runtime/setup.h"
#include "runtime/state.h"

#define rt (&offload_runtime)

static void count_tracked(const struct allocation *a) {
    rt->stats.tracked_allocations++;
    rt->stats.tracked_bytes += a->mapped;
    if (rt->stats.tracked_bytes > rt->stats.peak_tracked_bytes)
        rt->stats.peak_tracked_bytes = rt->stats.tracked_bytes;
    atomic_store(&rt->tracked_count, rt->registry.count);
}

CUresult alloc_start_tracking(struct runtime *state, struct allocation *a) {
    struct switch_plan plan;
    if (components_on_alloc(state, a, &plan))
        plan_carry_out(state, &plan);
    CUresult r = residency_map_new(state, a);
    if (r != CUDA_SUCCESS) {
        components_forget(state, a);
        residency_discard(state, a);
        return r;
    }
    count_tracked(a);
    record_alloc(state, a);
    log_debug("tracked allocation #%llu: %zu bytes at 0x%llx", (unsigned long long)a->ordinal,
              a->size, (unsigned long long)a->base);
    return CUDA_SUCCESS;
}

void alloc_resume_tracking(struct runtime *state, struct allocation *a) {
    struct switch_plan plan;
    if (components_on_alloc(state, a, &plan))
        plan_carry_out(state, &plan);
    a->last_use = ++state->clock;
    state->stats.tracked_allocations++;
    record_alloc(state, a);
    log_debug("tracked allocation #%llu: %zu bytes at 0x%llx, reused in stream order",
              (unsigned long long)a->ordinal, a->size, (unsigned long long)a->base);
}

void alloc_stop_tracking(struct runtime *state, struct allocation *a) {
    if (a->origin == ALLOC_FROM_STREAM)
        pools_unserve(state, a->pool, a->mapped);
    record_free(state, a);
    components_forget(state, a);
    stored_pointers_forget(&state->uploads, a); /* its bytes mean nothing now */
}

static CUresult alloc_tracked(CUdeviceptr *dptr, size_t bytes) {
    struct allocation *a;
    CUresult r = residency_create(rt, bytes, &a);
    if (r == CUDA_SUCCESS)
        r = alloc_start_tracking(rt, a);
    if (r == CUDA_SUCCESS)
        *dptr = a->base;
    return r;
}

/* The caller may be in another context of the same device. */
CUresult alloc_room_for_untracked(struct runtime *state, uint64_t bytes, uint64_t limit) {
    bool pushed = setup_context_enter(state);
    CUresult r = residency_make_room(state, bytes, limit, state->victims);
    residency_drain_pool(state); /* the room must be real before the driver allocates */
    setup_context_leave(pushed);
    return r;
}

static CUresult room_for_untracked(uint64_t bytes, uint64_t limit) {
    return alloc_room_for_untracked(rt, bytes, limit);
}

/* In the caller's context, which may not be liboffload's: the device memory is the same,
 * so it counts against the budget all the same. */
static CUresult alloc_untracked(CUdeviceptr *dptr, size_t bytes) {
    const struct driver_table *d = driver();
    CUresult r = room_for_untracked(bytes, rt->budget.limit);
    if (r != CUDA_SUCCESS)
        return r;
    r = d->cuMemAlloc_v2(dptr, bytes);
    if (r == CUDA_ERROR_OUT_OF_MEMORY) {
        /* Under budget, yet the device is full: evict this much below what we hold. */
        room_for_untracked(bytes, budget_used(&rt->budget));
        r = d->cuMemAlloc_v2(dptr, bytes);
    }
    if (r != CUDA_SUCCESS)
        return r;
    if (untracked_add(&rt->untracked, *dptr, bytes) == 0)
        budget_add_untracked(&rt->budget, bytes);
    return CUDA_SUCCESS;
}

static void log_other_place_once(enum setup_place place) {
    if (rt->other_place_logged)
        return;
    rt->other_place_logged = true;
    log_info("allocations made in %s pass through untracked: liboffload manages "
             "device %d's context %p",
             place == PLACE_OTHER_CONTEXT ? "another context" : "another device's context",
             (int)rt->device, (void *)rt->ctx);
}

CUresult runtime_mem_alloc(CUdeviceptr *dptr, size_t bytes) {
    runtime_lock();
    if (!setup_cuda(rt) || !dptr || bytes == 0) {
        runtime_unlock();
        return driver()->cuMemAlloc_v2(dptr, bytes);
    }
    rt->epoch++;
    CUresult r;
    /* liboffload's ranges live in its own context: tracking an allocation made in another
     * would put it somewhere the program did not ask for (on GPU 0 for a GPU 1 context). */
    enum setup_place place = setup_current_place(rt);
    if (place == PLACE_OTHER_CONTEXT || place == PLACE_OTHER_DEVICE)
        log_other_place_once(place);
    /* a potentially unsafe call under stream capture (call.h): refused before any room
     * is made, as the driver refuses it */
    if ((place == PLACE_MANAGED || place == PLACE_OTHER_CONTEXT) &&
        (r = call_unsafe_allowed()) != CUDA_SUCCESS) {
        runtime_unlock();
        return r;
    }
    switch (place) {
    case PLACE_MANAGED:
        r = bytes >= rt->min_size ? alloc_tracked(dptr, bytes) : alloc_untracked(dptr, bytes);
        residency_drain_pool(rt);
        break;
    case PLACE_OTHER_CONTEXT:
        r = alloc_untracked(dptr, bytes);
        break;
    default: /* another device, or no context: the driver's own answer */
        r = driver()->cuMemAlloc_v2(dptr, bytes);
    }
    runtime_unlock();
    return r;
}

static CUresult free_tracked(struct allocation *a) {
    /* potentially unsafe under stream capture (call.h): fails whole, or frees */
    CUresult r = call_unsafe_allowed();
    if (r != CUDA_SUCCESS)
        return r;
    bool pushed = setup_context_enter(rt);
    r = residency_quiesce(rt, a);
    if (r == CUDA_SUCCESS) {
        alloc_stop_tracking(rt, a);
        residency_destroy(rt, a);
        atomic_store(&rt->tracked_count, rt->registry.count);
    }
    setup_context_leave(pushed);
    return r;
}

static CUresult free_untracked(CUdeviceptr dptr, bool known_here) {
    size_t bytes = 0;
    bool known = known_here && untracked_remove(&rt->untracked, dptr, &bytes);
    CUresult r = driver()->cuMemFree_v2(dptr);
    if (known) {
        if (r == CUDA_SUCCESS) {
            budget_sub_untracked(&rt->budget, bytes);
            stored_pointers_forget_untracked(&rt->uploads, dptr, bytes);
        } else {
            untracked_add(&rt->untracked, dptr, bytes);
        }
    }
    return r;
}

CUresult runtime_mem_free(CUdeviceptr dptr) {
    runtime_lock();
    if (!rt->cuda_ready || atomic_load(&rt->cuda_unusable)) {
        runtime_unlock();
        return driver()->cuMemFree_v2(dptr);
    }
    struct allocation *a = registry_find(&rt->registry, dptr);
    CUresult r;
    if (a && a->origin == ALLOC_FROM_MAPPING)
        r = driver()->cuMemFree_v2(dptr); /* the program's VMM range: the driver says */
    else if (a && a->stream_freed)
        r = CUDA_ERROR_INVALID_VALUE; /* already freed with cuMemFreeAsync */
    else if (a && a->base == dptr)
        r = free_tracked(a);
    else /* an interior pointer of a tracked range is not an allocation: the driver says so */
        r = free_untracked(dptr, !a);
    runtime_unlock();
    return r;
}

CUresult runtime_mem_get_info(size_t *free_bytes, size_t *total_bytes) {
    runtime_lock();
    /* The budget is the managed device's: another device's memory is the driver's to tell. */
    enum setup_place place = setup_cuda(rt) ? setup_current_place(rt) : PLACE_NONE;
    if (place == PLACE_OTHER_DEVICE || place == PLACE_NONE) {
        runtime_unlock();
        return driver()->cuMemGetInfo_v2(free_bytes, total_bytes);
    }
    if (!free_bytes || !total_bytes) {
        runtime_unlock();
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (rt->pools.known_count) {
        bool pushed = setup_context_enter(rt);
        pools_refresh(rt); /* what the driver's pools reserve counts too */
        setup_context_leave(pushed);
    }
    *free_bytes = budget_free(&rt->budget);
    *total_bytes = rt->budget.limit;
    runtime_unlock();
    return CUDA_SUCCESS;
}

bool runtime_address_range(CUdeviceptr dptr, CUdeviceptr *base, size_t *size) {
    if (call_nothing_to_do())
        return false;
    runtime_lock();
    const struct allocation *a = registry_find(&rt->registry, dptr);
    bool inside = a && dptr < a->base + a->size;
    if (inside) {
        if (base)
            *base = a->base;
        if (size)
            *size = a->size;
    }
    runtime_unlock();
    return inside;
}
