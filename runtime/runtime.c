/*
 * runtime.c — the entry points interpose/ calls (runtime.h): each takes the lock, brings
 * the runtime up if needed, and hands the work to the module that does it.
 */
#include "runtime/runtime.h"

#include "base/log.h"
#include "driver/cuerr.h"
#include "driver/driver.h"
#include "runtime/components/components.h"
#include "runtime/memory/residency.h"
#include "runtime/memory/untracked.h"
#include "runtime/record.h"
#include "runtime/setup.h"
#include "runtime/state.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

#define rt (&offload_runtime)

void runtime_early_init(void) {
    setup_early(rt);
}

/* --- the current call's allocations ------------------------------------------------- */

struct collect {
    size_t count;
    bool oom;
};

/* Adds the tracked allocation containing value (once per call) to rt->scratch. */
static void collect_value(void *ctx, CUdeviceptr value) {
    struct collect *c = ctx;
    struct allocation *a = registry_find(&rt->registry, value);
    if (!a || a->protect_epoch == rt->epoch)
        return;
    if (c->count == rt->scratch_capacity) {
        size_t cap = rt->scratch_capacity ? rt->scratch_capacity * 2 : 64;
        struct allocation **s = realloc(rt->scratch, cap * sizeof *s);
        if (!s) {
            c->oom = true;
            return;
        }
        rt->scratch = s;
        rt->scratch_capacity = cap;
    }
    a->protect_epoch = rt->epoch;
    rt->scratch[c->count++] = a;
}

/* Makes every collected allocation usable on stream. */
static CUresult use_collected(size_t n, CUstream stream) {
    bool slow = rt->evicting_count > 0 || components_pending(rt);
    for (size_t i = 0; i < n && !slow; i++)
        slow = rt->scratch[i]->state != RESIDENT;
    bool pushed = slow && setup_context_enter(rt);
    CUresult r = CUDA_SUCCESS;
    for (size_t i = 0; i < n && r == CUDA_SUCCESS; i++)
        r = residency_use(rt, rt->scratch[i], stream);
    if (rt->evicting_count)
        residency_reap(rt);
    components_poll(rt);
    residency_drain_pool(rt);
    setup_context_leave(pushed);
    return r;
}

/* Fast out without the lock: nothing tracked, nothing recorded. */
static bool nothing_to_do(void) {
    return atomic_load_explicit(&rt->tracked_count, memory_order_relaxed) == 0;
}

/* --- allocation --------------------------------------------------------------------- */

static CUresult alloc_tracked(CUdeviceptr *dptr, size_t bytes) {
    const struct driver_table *d = driver();
    struct allocation *a = calloc(1, sizeof *a);
    if (!a)
        return CUDA_ERROR_OUT_OF_MEMORY;
    a->size = bytes;
    a->mapped = (bytes + rt->granularity - 1) & ~(uint64_t)(rt->granularity - 1);
    a->state = EVICTED; /* no memory yet, nothing to evict */
    a->component = -1;
    a->protect_epoch = rt->epoch;
    CUresult r = d->cuMemAddressReserve(&a->base, a->mapped, rt->granularity, 0, 0);
    if (r != CUDA_SUCCESS) {
        log_error("allocating %zu bytes failed (cuMemAddressReserve: %s)", bytes, cuerr_name(r));
        free(a);
        return r;
    }
    if (registry_add(&rt->registry, a) != 0) {
        d->cuMemAddressFree(a->base, a->mapped);
        free(a);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    components_on_alloc(rt, a);
    a->readonly = components_readonly(rt, a->component);
    r = residency_map_new(rt, a);
    if (r != CUDA_SUCCESS) {
        registry_remove(&rt->registry, a);
        registry_unnumber_last(&rt->registry, a);
        components_forget(rt, a);
        d->cuMemAddressFree(a->base, a->mapped);
        free(a);
        return r;
    }
    rt->stats.tracked_allocations++;
    rt->stats.tracked_bytes += a->mapped;
    if (rt->stats.tracked_bytes > rt->stats.peak_tracked_bytes)
        rt->stats.peak_tracked_bytes = rt->stats.tracked_bytes;
    atomic_store(&rt->tracked_count, rt->registry.count);
    record_alloc(rt, a);
    log_debug("tracked allocation #%llu: %zu bytes at 0x%llx", (unsigned long long)a->ordinal,
              bytes, (unsigned long long)a->base);
    *dptr = a->base;
    return CUDA_SUCCESS;
}

/* Makes room in liboffload's context for `bytes` the driver is about to allocate
 * untracked (the caller may be in another context of the same device). */
static CUresult room_for_untracked(uint64_t bytes) {
    bool pushed = setup_context_enter(rt);
    CUresult r = residency_make_room(rt, bytes);
    residency_drain_pool(rt); /* the room must be real before the driver allocates */
    setup_context_leave(pushed);
    return r;
}

/* Under budget, yet the device is full: evict this much more. */
static void room_beyond_budget(uint64_t bytes) {
    uint64_t saved = rt->budget.limit;
    rt->budget.limit = budget_used(&rt->budget);
    room_for_untracked(bytes);
    rt->budget.limit = saved;
}

/* In the caller's context, which may not be liboffload's: the device memory is the same,
 * so it counts against the budget all the same. */
static CUresult alloc_untracked(CUdeviceptr *dptr, size_t bytes) {
    const struct driver_table *d = driver();
    CUresult r = room_for_untracked(bytes);
    if (r != CUDA_SUCCESS)
        return r;
    r = d->cuMemAlloc_v2(dptr, bytes);
    if (r == CUDA_ERROR_OUT_OF_MEMORY) {
        room_beyond_budget(bytes);
        r = d->cuMemAlloc_v2(dptr, bytes);
    }
    if (r != CUDA_SUCCESS)
        return r;
    if (untracked_add(&rt->untracked, *dptr, bytes) == 0)
        budget_add_untracked(&rt->budget, bytes);
    return CUDA_SUCCESS;
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
    if ((place == PLACE_OTHER_CONTEXT || place == PLACE_OTHER_DEVICE) && !rt->other_place_logged) {
        rt->other_place_logged = true;
        log_info("allocations made in %s pass through untracked: liboffload manages "
                 "device %d's context %p",
                 place == PLACE_OTHER_CONTEXT ? "another context" : "another device's context",
                 (int)rt->device, (void *)rt->ctx);
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

CUresult runtime_mem_free(CUdeviceptr dptr) {
    runtime_lock();
    if (!rt->cuda_ready || atomic_load(&rt->cuda_unusable)) {
        runtime_unlock();
        return driver()->cuMemFree_v2(dptr);
    }
    struct allocation *a = registry_find(&rt->registry, dptr);
    if (a && a->base == dptr) {
        bool pushed = setup_context_enter(rt);
        record_free(rt, a);
        CUresult r = residency_destroy(rt, a);
        atomic_store(&rt->tracked_count, rt->registry.count);
        setup_context_leave(pushed);
        runtime_unlock();
        return r == CUDA_SUCCESS ? CUDA_SUCCESS : r;
    }
    size_t bytes = 0;
    bool known = !a && untracked_remove(&rt->untracked, dptr, &bytes);
    CUresult r = driver()->cuMemFree_v2(dptr);
    if (known) {
        if (r == CUDA_SUCCESS)
            budget_sub_untracked(&rt->budget, bytes);
        else
            untracked_add(&rt->untracked, dptr, bytes);
    }
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
    *free_bytes = budget_free(&rt->budget);
    *total_bytes = rt->budget.limit;
    runtime_unlock();
    return CUDA_SUCCESS;
}

bool runtime_address_range(CUdeviceptr dptr, CUdeviceptr *base, size_t *size) {
    if (nothing_to_do())
        return false;
    runtime_lock();
    const struct allocation *a = registry_find(&rt->registry, dptr);
    if (a && dptr < a->base + a->size) {
        if (base)
            *base = a->base;
        if (size)
            *size = a->size;
    }
    runtime_unlock();
    return a != NULL && dptr < a->base + a->size;
}

/* --- work that touches memory ------------------------------------------------------- */

/* True when a launch on stream may use a with nothing more than marking the use: resident,
 * no restore it still has to wait for (this stream already waited), no prefetch to count. */
static inline bool ready_for(struct allocation *a, CUstream stream) {
    if (a->state != RESIDENT || a->prefetched || stream == CU_STREAM_PER_THREAD)
        return false;
    if (a->stream_count && a->streams[0].stream == stream)
        return true;
    for (unsigned i = 1; i < a->stream_count; i++) {
        if (a->streams[i].stream == stream) {
            /* move to front: the next launch on this stream matches at once */
            struct stream_use u = a->streams[i];
            a->streams[i] = a->streams[0];
            a->streams[0] = u;
            return true;
        }
    }
    return false;
}

/* The common launch: kernelParams with a known layout, no components, no recording, every
 * referenced allocation ready. One pass, no callbacks; anything else (a restore, a new
 * stream) is collected for use_collected. Returns false when the launch needs the general
 * path (components or recording look at every reference). */
static bool launch_fast(const struct func_layout *layout, void **params, CUstream stream,
                        size_t *slow_count) {
    if (rt->components || rt->record || !params || !layout || !layout->known)
        return false;
    struct registry *reg = &rt->registry;
    const uint64_t epoch = rt->epoch;
    uint64_t clock = rt->clock;
    struct collect c = {0, false};
    /* locals: the stores to each allocation below could alias the layout as far as the
     * compiler knows, and it would reload these every iteration */
    const unsigned count = layout->pointer_count;
    const uint16_t *const index = layout->pointer_index;
    for (unsigned k = 0; k < count; k++) {
        uint64_t v;
        memcpy(&v, params[index[k]], 8);
        struct allocation *a = registry_find(reg, v);
        if (!a || a->protect_epoch == epoch)
            continue;
        if (ready_for(a, stream)) {
            a->protect_epoch = epoch;
            a->last_use = ++clock;
            if (a->backup_valid && !a->readonly)
                a->backup_valid = false;
        } else {
            rt->clock = clock;
            collect_value(&c, v);
        }
    }
    rt->clock = clock;
    *slow_count = c.count;
    return true;
}

/* Whether the calling thread holds the lock between a runtime_begin_* and its
 * runtime_end_call (per-thread, so a thread's end never releases another's call).
 * initial-exec: read up to three times per launch, and the default model for a shared
 * object calls __tls_get_addr each time (~11 instructions). One byte of static TLS, which
 * glibc's surplus covers even when liboffload is dlopen'd rather than preloaded. */
static _Thread_local bool call_holds_lock __attribute__((tls_model("initial-exec")));

/* The start of a prepare: takes the lock unless this thread's begun call holds it already
 * (a hook preparing several ranges for one driver call); returns whether it was held. */
static bool prepare_lock(void) {
    if (call_holds_lock)
        return true;
    runtime_lock();
    return false;
}

/* The end of a prepare: keep the lock for the driver call when it may go on, else release
 * it. A nested prepare leaves the lock to its outer call. */
static CUresult prepare_unlock(CUresult r, bool keep, bool nested) {
    if (nested)
        return r;
    if (keep && r == CUDA_SUCCESS)
        call_holds_lock = true;
    else
        runtime_unlock();
    return r;
}

/* A new call's epoch; a nested prepare shares its outer call's (its allocations stay
 * protected from the nested one's evictions). */
static void prepare_epoch(bool nested) {
    if (!nested)
        rt->epoch++;
}

void runtime_end_call(void) {
    if (call_holds_lock) {
        call_holds_lock = false;
        runtime_unlock();
    }
}

CUresult runtime_begin_launch(CUfunction f, CUstream stream, void **params, void **extra) {
    if (nothing_to_do())
        return CUDA_SUCCESS;
    bool nested = prepare_lock();
    if (!rt->cuda_ready)
        return prepare_unlock(CUDA_SUCCESS, false, nested);
    rt->stats.launches++;
    prepare_epoch(nested);
    struct func_layout *layout = launch_layout(&rt->layouts, f);
    if (!layout && rt->layouts.query_failed != CUDA_SUCCESS) {
        CUresult failed = rt->layouts.query_failed;
        rt->layouts.query_failed = CUDA_SUCCESS;
        return prepare_unlock(failed, false, nested);
    }
    size_t n = 0;
    if (!launch_fast(layout, params, stream, &n)) {
        struct collect c = {0, false};
        launch_scan(layout, params, extra, collect_value, &c);
        components_on_launch(rt, layout, rt->scratch, c.count);
        record_launch(rt, layout, rt->scratch, c.count);
        n = c.count;
    }
    CUresult r = CUDA_SUCCESS;
    if (n || rt->evicting_count || (rt->components && components_pending(rt)))
        r = use_collected(n, stream);
    return prepare_unlock(r, true, nested);
}

/* Collects the tracked allocations [ptr, ptr+bytes) touches, allocation by allocation (a
 * copy may span adjacent ranges). */
static void collect_range(struct collect *c, CUdeviceptr ptr, size_t bytes) {
    CUdeviceptr end = ptr + bytes < ptr ? UINT64_MAX : ptr + bytes;
    CUdeviceptr addr = ptr < rt->registry.low ? rt->registry.low : ptr;
    if (end > rt->registry.high)
        end = rt->registry.high;
    uint64_t gran = rt->granularity;
    while (addr < end) {
        const struct allocation *a = registry_find(&rt->registry, addr);
        collect_value(c, addr);
        addr = a ? a->base + a->mapped : (addr & ~(gran - 1)) + gran;
    }
}

CUresult runtime_begin_access(CUdeviceptr ptr, size_t bytes, CUdeviceptr ptr2, size_t bytes2,
                              CUstream stream) {
    if (nothing_to_do() || (bytes == 0 && bytes2 == 0))
        return CUDA_SUCCESS;
    bool nested = prepare_lock();
    if (!rt->cuda_ready)
        return prepare_unlock(CUDA_SUCCESS, false, nested);
    prepare_epoch(nested);
    struct collect c = {0, false};
    if (bytes)
        collect_range(&c, ptr, bytes);
    if (bytes2)
        collect_range(&c, ptr2, bytes2);
    return prepare_unlock(use_collected(c.count, stream), true, nested);
}

void runtime_before_host_wait(void) {
    if (nothing_to_do())
        return;
    runtime_lock();
    if (rt->cuda_ready && components_pending(rt)) {
        bool pushed = setup_context_enter(rt);
        components_poll(rt); /* reaps, never waits: see runtime.h */
        residency_drain_pool(rt);
        setup_context_leave(pushed);
    }
    runtime_unlock();
}

/* Whether a synchronous read of [src, src+bytes) can come from a's host backup: evicted
 * (its copy to the host completed), the backup current, the range inside it, and the
 * caller in liboffload's context (the wait's event is one of ours). */
static bool readable_from_backup(const struct allocation *a, CUdeviceptr src, size_t bytes,
                                 CUstream stream) {
    if (!a || a->state != EVICTED || !a->backup_valid || !a->backup)
        return false;
    if (src + bytes < src || src + bytes > a->base + a->size)
        return false;
    return setup_current_place(rt) == PLACE_MANAGED && !copy_stream_capturing(stream);
}

CUresult runtime_read_evicted(void *dst, CUdeviceptr src, size_t bytes, CUstream stream,
                              bool *served) {
    *served = false;
    if (nothing_to_do() || bytes == 0 || !dst)
        return CUDA_SUCCESS;
    runtime_lock();
    const struct allocation *a = rt->cuda_ready ? registry_find(&rt->registry, src) : NULL;
    CUresult r = CUDA_SUCCESS;
    if (readable_from_backup(a, src, bytes, stream)) {
        r = copy_sync_stream(&rt->copy, stream);
        if (r == CUDA_SUCCESS) {
            memcpy(dst, (const char *)a->backup + (src - a->base), bytes);
            rt->stats.backup_reads++;
            *served = true;
        }
    }
    runtime_unlock();
    return r;
}

void runtime_graph_instantiated(CUgraphExec exec, CUgraph graph) {
    runtime_lock();
    if (rt->cuda_ready && graphs_remember(&rt->graphs, &rt->layouts, &rt->registry, exec, graph))
        log_warn("out of memory remembering a graph: its launches are not prepared");
    runtime_unlock();
}

CUresult runtime_begin_graph_launch(CUgraphExec exec, CUstream stream) {
    if (nothing_to_do())
        return CUDA_SUCCESS;
    bool nested = prepare_lock();
    const struct graph_record *g = rt->cuda_ready ? graphs_find(&rt->graphs, exec) : NULL;
    if (!g)
        return prepare_unlock(CUDA_SUCCESS, false, nested);
    prepare_epoch(nested);
    struct collect c = {0, false};
    for (size_t i = 0; i < g->count; i++)
        collect_value(&c, g->bases[i]);
    return prepare_unlock(use_collected(c.count, stream), true, nested);
}

void runtime_graph_exec_destroyed(CUgraphExec exec) {
    runtime_lock();
    graphs_forget(&rt->graphs, exec);
    runtime_unlock();
}

void runtime_stream_destroyed(CUstream stream) {
    runtime_lock();
    if (!rt->cuda_ready || atomic_load(&rt->cuda_unusable)) {
        runtime_unlock();
        return;
    }
    /* Evictions after this must still wait for the work queued on it: order the offload
     * stream after it now, while the handle is valid, then forget it everywhere. */
    bool used = false;
    for (size_t i = 0; i < rt->registry.count; i++) {
        struct allocation *a = rt->registry.list[i];
        for (unsigned k = 0; k < a->stream_count; k++) {
            if (a->streams[k].stream == stream) {
                a->streams[k] = a->streams[--a->stream_count];
                used = true;
                break;
            }
        }
    }
    if (used && !copy_stream_capturing(stream)) {
        struct allocation probe;
        memset(&probe, 0, sizeof probe);
        probe.stream_count = 1;
        probe.streams[0] = (struct stream_use){stream, copy_thread_id(stream)};
        bool pushed = setup_context_enter(rt);
        copy_after_users(&rt->copy, &probe);
        setup_context_leave(pushed);
    }
    copy_forget_stream(&rt->copy, stream);
    runtime_unlock();
}

/* --- exit --------------------------------------------------------------------------- */

/* At exit another thread may hold the lock for one call (a sync copy, an eviction wait:
 * seconds under a sanitizer), or this thread may (exit from a signal handler that
 * interrupted one of its calls), and then nobody ever releases it. So: never wait for
 * ourselves, wait up to 2 s for another thread, then report from what is there (a read
 * that may race with that thread, the lesser harm than no report or a hang). */
static bool lock_for_exit(void) {
    if (call_holds_lock)
        return false;
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += 2;
    return offload_lock_acquire_until(&rt->lock, &deadline);
}

/* No driver call here: at exit the driver may already be finalised, and copies may still
 * be in flight. The process is going away; its memory goes with it. */
void runtime_shutdown(void) {
    if (!rt->config_loaded || atomic_load(&rt->forked_child))
        return;
    bool locked = lock_for_exit();
    if (rt->cuda_ready) {
        record_finish(rt);
        struct stats_component *comps = NULL;
        uint64_t unowned = 0;
        size_t ncomp = components_report(rt, &comps, &unowned);
        struct stats_report report = {
            .stats = &rt->stats,
            .budget_bytes = rt->budget.limit,
            .peak_resident_bytes = rt->budget.peak_resident,
            .peak_used_bytes = rt->budget.peak_used,
            .wait_ns = rt->copy.wait_ns,
            .unowned_bytes = unowned,
            .components = comps,
            .component_count = ncomp,
        };
        stats_log_summary(&report);
        if (rt->cfg.stats_path[0])
            stats_write_file(&report, rt->cfg.stats_path);
        free(comps);
    }
    if (locked)
        runtime_unlock();
}
