/*
 * stream_alloc.c — the entry points of stream-ordered memory (runtime.h): cuMemAllocAsync,
 * cuMemAllocFromPoolAsync, cuMemFreeAsync, cuMemPoolCreate/Destroy.
 *
 * The design: liboffload serves a stream-ordered allocation of min_size or more in its
 * context from its own VMM range, a tracked allocation like cuMemAlloc's
 * (ALLOC_FROM_STREAM), with a pool the program may draw plain device memory from (the
 * device's default or current pool, or one it created for plain memory). Why: such memory
 * then moves like any other (evict, restore at the same address, components by ordinal
 * and kernels), while the driver's pools hand out addresses that liboffload could neither
 * unmap nor keep stable. Stream order is kept with events: the memory is mapped before the
 * call returns, so it is valid for the stream at once (and for any stream ordered after
 * it); cuMemFreeAsync records an event on the freeing stream and the allocation is
 * destroyed only once that event has completed (memory/pools.h). Until it is, a new
 * allocation of the same mapped size takes it back, resident and whole, on the freeing
 * stream (stream order puts the new user after the free) or anywhere once the free has
 * run: the reuse the driver's pools allow by default, and no new memory to map. Otherwise a
 * new allocation waits for a pending free on the host when the budget needs its bytes,
 * before evicting live data.
 *
 * Everything else goes to the driver unchanged: small allocations, allocations on a
 * capturing stream (they become graph nodes), pools with handle types or a size limit,
 * other devices' pools. What those pools reserve counts against the budget, and their
 * unused reserve is trimmed before live data is evicted (memory/pools.h).
 */
#include "runtime/runtime.h"

#include "base/log.h"
#include "driver/driver.h"
#include "runtime/alloc.h"
#include "runtime/call.h"
#include "runtime/memory/copy.h"
#include "runtime/memory/pools.h"
#include "runtime/memory/residency.h"
#include "runtime/setup.h"
#include "runtime/state.h"

#include <string.h>

#define rt (&offload_runtime)

/* Set up, and not a forked child (whose CUDA is unusable): liboffload's tables apply. */
static bool usable(void) {
    return rt->cuda_ready && !atomic_load(&rt->cuda_unusable);
}

/* The pool cuMemAllocAsync draws from now: the device's current pool. */
static CUmemoryPool current_pool(void) {
    CUmemoryPool pool = NULL;
    if (driver()->cuDeviceGetMemPool(&pool, rt->device) != CUDA_SUCCESS)
        return NULL;
    return pool;
}

/* Whether allocations from `pool` are plain device memory of liboffload's device. */
static bool plain_pool(CUmemoryPool pool) {
    CUmemoryPool def = NULL;
    if (!pool)
        return false;
    if (driver()->cuDeviceGetDefaultMemPool(&def, rt->device) == CUDA_SUCCESS && def == pool)
        return true;
    return pools_is_plain(rt, pool);
}

static CUresult alloc_tracked(CUdeviceptr *dptr, size_t bytes, CUmemoryPool pool, CUstream stream) {
    struct allocation *a = pools_reuse_freed(rt, bytes, stream);
    if (a) {
        a->pool = pool;
        alloc_resume_tracking(rt, a);
    } else {
        CUresult r = residency_create(rt, bytes, &a);
        if (r != CUDA_SUCCESS)
            return r;
        a->origin = ALLOC_FROM_STREAM;
        a->pool = pool;
        r = alloc_start_tracking(rt, a);
        if (r != CUDA_SUCCESS)
            return r;
    }
    pools_serve(rt, pool, a->mapped);
    residency_note_user(a, stream);
    *dptr = a->base;
    return CUDA_SUCCESS;
}

CUresult runtime_stream_alloc(CUdeviceptr *dptr, size_t bytes, CUmemoryPool pool, CUstream stream,
                              bool *forward) {
    *forward = true;
    runtime_lock();
    if (!dptr || bytes == 0 || !setup_cuda(rt) || setup_current_place(rt) != PLACE_MANAGED) {
        runtime_unlock();
        return CUDA_SUCCESS;
    }
    call_relax_begin(); /* cuMemAllocAsync may be captured: liboffload's work is its own */
    bool pushed = setup_context_enter(rt);
    rt->epoch++; /* a new call: nothing an earlier call held is protected */
    CUmemoryPool from = pool ? pool : current_pool();
    CUresult r = CUDA_SUCCESS;
    if (bytes >= rt->min_size && plain_pool(from) && !copy_stream_capturing(stream)) {
        *forward = false;
        r = alloc_tracked(dptr, bytes, from, stream);
        pools_reap_frees(rt); /* after: a free that has run is reused rather than redone */
    } else if (from) {
        pools_reap_frees(rt);
        /* the driver's pool may grow by this much: room first, counted once it has */
        pools_note(rt, from);
        pools_refresh(rt);
        r = residency_make_room(rt, bytes, rt->budget.limit, rt->victims);
        if (r != CUDA_SUCCESS)
            *forward = false;
    }
    residency_drain_pool(rt);
    setup_context_leave(pushed);
    call_relax_end();
    runtime_unlock();
    return r;
}

void runtime_stream_alloc_forwarded(void) {
    runtime_lock();
    if (usable() && rt->pools.known_count) {
        call_relax_begin();
        bool pushed = setup_context_enter(rt);
        pools_refresh(rt);
        setup_context_leave(pushed);
        call_relax_end();
    }
    runtime_unlock();
}

CUresult runtime_stream_free(CUdeviceptr dptr, CUstream stream, bool *forward) {
    *forward = true;
    if (call_nothing_to_do())
        return CUDA_SUCCESS;
    runtime_lock();
    struct allocation *a = usable() ? registry_find(&rt->registry, dptr) : NULL;
    CUresult r = CUDA_SUCCESS;
    if (a) {
        *forward = false;
        if (a->origin != ALLOC_FROM_STREAM || a->base != dptr || a->stream_freed) {
            r = CUDA_ERROR_INVALID_VALUE; /* not a live stream-ordered allocation */
        } else if (copy_stream_capturing(stream)) {
            /* a free node in a graph would free it at each launch: not liboffload's */
            r = CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
        } else {
            call_relax_begin();
            bool pushed = setup_context_enter(rt);
            alloc_stop_tracking(rt, a);
            r = pools_queue_free(rt, a, stream);
            atomic_store(&rt->tracked_count, rt->registry.count);
            setup_context_leave(pushed);
            call_relax_end();
        }
    }
    runtime_unlock();
    return r;
}

void runtime_mem_pool_created(CUmemoryPool pool, const CUmemPoolProps *props) {
    runtime_lock();
    static const unsigned char zero[sizeof props->reserved];
    if (setup_cuda(rt) && props && props->allocType == CU_MEM_ALLOCATION_TYPE_PINNED &&
        props->location.type == CU_MEM_LOCATION_TYPE_DEVICE && props->location.id == rt->device &&
        props->handleTypes == CU_MEM_HANDLE_TYPE_NONE && props->maxSize == 0 && props->usage == 0 &&
        memcmp(props->reserved, zero, sizeof zero) == 0)
        pools_note_plain(rt, pool);
    runtime_unlock();
}

void runtime_mem_pool_destroyed(CUmemoryPool pool) {
    runtime_lock();
    pools_forget_plain(rt, pool);
    runtime_unlock();
}

void runtime_mem_pool_attribute(CUmemoryPool pool, CUmemPool_attribute attr, void *value) {
    runtime_lock();
    pools_adjust_attribute(rt, pool, attr, value);
    runtime_unlock();
}

void runtime_mem_pool_attribute_set(CUmemoryPool pool, CUmemPool_attribute attr) {
    runtime_lock();
    pools_attribute_set(rt, pool, attr);
    runtime_unlock();
}
