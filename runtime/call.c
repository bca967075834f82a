/*
 * call.c — the call bracket and the call's allocations.
 */
#include "runtime/call.h"

#include "base/log.h"
#include "base/vec.h"
#include "driver/cuerr.h"
#include "driver/driver.h"
#include "runtime/memory/residency.h"
#include "runtime/plan.h"
#include "runtime/report/trace.h"
#include "runtime/runtime.h"
#include "runtime/setup.h"

#define rt (&offload_runtime)

/* Adds a to the call's set, once. */
static void collect_one(struct collect *c, struct allocation *a) {
    if (a->protect_epoch == rt->epoch)
        return;
    if (VEC_RESERVE(rt->scratch, rt->scratch_capacity, c->count + 1) != 0) {
        c->oom = true;
        return;
    }
    a->protect_epoch = rt->epoch;
    rt->scratch[c->count++] = a;
}

static void collect_member(void *collect, struct allocation *a) {
    collect_one(collect, a);
}

void call_collect_value(void *collect, CUdeviceptr value) {
    struct collect *c = collect;
    struct allocation *a = registry_find(&rt->registry, value);
    if (!a)
        return;
    collect_one(c, a);
    /* a buffer at value may go on into the next mappings: those of its extents (even when
     * a was collected already: for another pointer, whose buffer may end in a) */
    if (a->spanned)
        vmm_extent_members(&rt->vmm, value, a->base + a->mapped, collect_member, c);
}

void call_collect_range(struct collect *c, CUdeviceptr ptr, size_t bytes) {
    CUdeviceptr end = ptr + bytes < ptr ? UINT64_MAX : ptr + bytes;
    CUdeviceptr addr = ptr < rt->registry.low ? rt->registry.low : ptr;
    if (end > rt->registry.high)
        end = rt->registry.high;
    uint64_t gran = rt->granularity;
    while (addr < end) {
        struct allocation *a = registry_find(&rt->registry, addr);
        if (a)
            collect_one(c, a); /* the range is all it touches: no extent needed */
        addr = a ? a->base + a->mapped : (addr & ~(gran - 1)) + gran;
    }
}

static _Thread_local unsigned relax_depth;
static _Thread_local CUstreamCaptureMode relax_saved;
static _Thread_local bool relax_exchanged;

void call_relax_begin(void) {
    if (relax_depth++)
        return;
    relax_saved = CU_STREAM_CAPTURE_MODE_RELAXED;
    relax_exchanged = driver()->cuThreadExchangeStreamCaptureMode &&
                      driver()->cuThreadExchangeStreamCaptureMode(&relax_saved) == CUDA_SUCCESS;
}

void call_relax_end(void) {
    if (--relax_depth || !relax_exchanged)
        return;
    driver()->cuThreadExchangeStreamCaptureMode(&relax_saved);
    relax_exchanged = false;
}

void runtime_capture_prepare(CUstream stream) {
    runtime_lock(); /* until runtime_capture_begun */
    if (!rt->cuda_ready || atomic_load(&rt->cuda_unusable))
        return;
    bool pushed = setup_context_enter(rt);
    CUresult r = copy_mark_before_capture(&rt->copy, stream);
    if (r != CUDA_SUCCESS) /* then what the stream uses is not evicted while it captures */
        log_warn("marking a stream before its capture failed (%s: %s)", rt->copy.failed_call,
                 cuerr_name(r));
    copy_fence_legacy(&rt->copy); /* while a blocking stream captures, nothing may touch it */
    setup_context_leave(pushed);
}

void runtime_capture_begun(CUstream stream, CUresult r) {
    if (r == CUDA_SUCCESS) {
        atomic_fetch_add_explicit(&copy_captures, 1, memory_order_acq_rel);
        if (rt->cuda_ready && !atomic_load(&rt->cuda_unusable))
            copy_capture_begun(&rt->copy, stream);
    }
    runtime_unlock();
}

bool runtime_captures_in_progress(void) {
    return atomic_load_explicit(&copy_captures, memory_order_acquire) > 0;
}

void runtime_capture_joined(CUstream stream, CUresult r) {
    if (r == CUDA_SUCCESS && rt->cuda_ready && !atomic_load(&rt->cuda_unusable))
        copy_capture_begun(&rt->copy, stream); /* not capturing: the mark stays invalid */
    runtime_unlock();
}

void runtime_capture_ended(CUresult r) {
    /* UNJOINED ends the capture too: no graph, its streams out of capture mode */
    if ((r == CUDA_SUCCESS || r == CUDA_ERROR_STREAM_CAPTURE_INVALIDATED ||
         r == CUDA_ERROR_STREAM_CAPTURE_UNJOINED) &&
        atomic_fetch_sub_explicit(&copy_captures, 1, memory_order_acq_rel) <= 0)
        atomic_fetch_add_explicit(&copy_captures, 1, memory_order_acq_rel); /* unmatched */
}

CUresult call_unsafe_allowed(void) {
    static CUevent probe; /* never recorded: querying it changes nothing */
    if (!probe) {
        bool pushed = setup_context_enter(rt);
        if (driver()->cuEventCreate(&probe, CU_EVENT_DISABLE_TIMING) != CUDA_SUCCESS)
            probe = NULL;
        setup_context_leave(pushed);
    }
    CUresult r = probe ? driver()->cuEventQuery(probe) : CUDA_SUCCESS;
    return r == CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED ? r : CUDA_SUCCESS;
}

CUresult call_use_collected(size_t n, CUstream stream) {
    /* the pool: handles an earlier call's evictions left, released below */
    bool slow = rt->evicting_count > 0 || plan_pending(rt) || rt->pool.count > 0;
    for (size_t i = 0; i < n && !slow; i++)
        slow = rt->scratch[i]->state != ALLOC_RESIDENT;
    if (slow)
        call_relax_begin(); /* restores, evictions, their waits: liboffload's own work */
    bool pushed = slow && setup_context_enter(rt);
    for (size_t i = 0; i < n; i++) /* the per-use record (report/trace.h), when recording */
        trace_use(rt->scratch[i]->ordinal, rt->scratch[i]->component, rt->scratch[i]->size,
                  rt->scratch[i]->mapped, i == 0);
    CUresult r = CUDA_SUCCESS;
    for (size_t i = 0; i < n && r == CUDA_SUCCESS; i++)
        r = residency_use(rt, rt->scratch[i], stream);
    if (rt->evicting_count)
        residency_reap(rt);
    plan_poll(rt);
    residency_drain_pool(rt);
    setup_context_leave(pushed);
    if (slow)
        call_relax_end();
    return r;
}

_Thread_local bool call_holds_lock __attribute__((tls_model("initial-exec")));

bool call_in_progress(void) {
    return call_holds_lock;
}

void runtime_end_call(void) {
    if (call_holds_lock) {
        /* the call is queued: another thread's eviction may now wait for it (copy.h) */
        if (__builtin_expect(copy_per_thread_pending(), 0))
            copy_note_per_thread_work(&rt->copy, setup_current_place(rt) == PLACE_MANAGED);
        call_holds_lock = false;
        runtime_unlock();
    }
}
