/*
 * work.c — the entry points for work that touches memory (runtime.h): launches, copies and
 * memsets, graph launches, host waits, synchronous reads that an evicted allocation's
 * backup can serve, stream destruction.
 */
#include "runtime/runtime.h"

#include "base/log.h"
#include "driver/driver.h"
#include "runtime/call.h"
#include "runtime/components/components.h"
#include "runtime/launch/stored_pointers.h"
#include "runtime/launch/tensor_maps.h"
#include "runtime/memory/residency.h"
#include "runtime/plan.h"
#include "runtime/record/record.h"
#include "runtime/report/trace.h"
#include "runtime/setup.h"
#include "runtime/state.h"
#include "runtime/vmm.h"

#include <stdlib.h>

#define rt (&offload_runtime)

/* --- launches ----------------------------------------------------------------------- */

/* True when a launch on stream may use a with nothing more than marking the use: mapped,
 * no eviction queued, this stream already ordered after any restore, no prefetch to
 * count, no buffer across it and other program mappings. */
static inline bool ready_for(struct allocation *a, CUstream stream) {
    if (!allocation_evictable_state(a) || a->prefetched || a->spanned ||
        stream == CU_STREAM_PER_THREAD)
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

/* One value of the fast path: a ready allocation's use marked at once, anything else
 * collected for call_use_collected (a spanned mapping too, with the mappings a buffer at
 * v may go on into: never ready, so it is collected even when protected already). */
static inline __attribute__((always_inline)) uint64_t fast_use(struct registry *reg, uint64_t epoch,
                                                               uint64_t clock, struct collect *c,
                                                               uint64_t v, CUstream stream) {
    struct allocation *a = registry_find(reg, v);
    if (!a || (a->protect_epoch == epoch && !a->spanned))
        return clock;
    if (ready_for(a, stream)) {
        a->protect_epoch = epoch;
        a->last_use = ++clock;
        if (a->backup_valid && !a->readonly)
            a->backup_valid = false;
    } else {
        rt->clock = clock;
        call_collect_value(c, v);
    }
    return clock;
}

/* Adds the allocations that the collected ones hold uploaded pointers to, and theirs in
 * turn (each once: the call's epoch): the launch may dereference them. */
static void collect_stored_pointers(struct collect *c) {
    for (size_t i = 0; i < c->count; i++) {
        const struct allocation *a = rt->scratch[i]; /* scratch may move as it grows */
        for (size_t k = 0; k < a->stored_count; k++)
            call_collect_value(c, a->stored[k].value);
    }
}

/* A launch's value: its tracked allocation, or the tracked addresses of a pointer table
 * uploaded into untracked memory that it points into. */
static void collect_value_or_table(void *collect, CUdeviceptr value) {
    call_collect_value(collect, value);
    if (registry_find(&rt->registry, value))
        return;
    const struct upload_table *t = stored_pointers_find_untracked(&rt->uploads, value);
    for (size_t k = 0; t && k < t->count; k++)
        call_collect_value(collect, t->values[k]);
}

/* The common launch: kernelParams with a known layout, no components, no recording, no
 * uploaded pointers to follow, every referenced allocation ready. One pass, no callbacks;
 * anything else (a restore, a new stream) is collected for call_use_collected. Returns false when
 * the launch needs the general path (components or recording look at every reference). */
static bool launch_fast(const struct func_layout *layout, void **params, CUstream stream,
                        size_t *slow_count) {
    if (rt->components || rt->record || !params || !layout || !layout->known ||
        stored_pointers_any(&rt->uploads))
        return false;
    struct registry *reg = &rt->registry;
    const uint64_t epoch = rt->epoch;
    uint64_t clock = rt->clock;
    struct collect c = {0, false};
    /* locals: the stores to each allocation below could alias the layout as far as the
     * compiler knows, and it would reload these every iteration */
    const unsigned count = layout->word_count;
    const struct param_word *const words = layout->words;
    for (unsigned k = 0; k < count; k++)
        clock = fast_use(reg, epoch, clock, &c, launch_word(params, words[k]), stream);
    CUdeviceptr global; /* tensor maps: one atomic load each while none was encoded */
    for (unsigned k = 0; k < layout->map_count; k++) {
        if (tensor_maps_lookup(launch_param_at(params, layout->maps[k]), &global))
            clock = fast_use(reg, epoch, clock, &c, global, stream);
    }
    rt->clock = clock;
    *slow_count = c.count;
    return true;
}

static int by_recent_use(const void *x, const void *y) {
    const struct allocation *a = *(struct allocation *const *)x;
    const struct allocation *b = *(struct allocation *const *)y;
    return a->last_use < b->last_use ? 1 : a->last_use > b->last_use ? -1 : 0;
}

/* Collects the members of component `comp` (every tracked allocation when comp < 0), most
 * recently used first, as many as the budget holds beside what cannot make way (untracked
 * memory, kept allocations) and what the call already collected: the rest stays where it
 * is (this launch must not fail for memory it may not even use). */
static void collect_component(struct collect *c, int comp) {
    size_t first = c->count;
    for (size_t i = 0; i < rt->registry.count; i++) {
        struct allocation *a = rt->registry.list[i];
        if (comp < 0 || a->component == comp)
            call_collect_value(c, a->base);
    }
    qsort(rt->scratch + first, c->count - first, sizeof *rt->scratch, by_recent_use);
    /* room: the budget less what cannot make way (untracked memory, other components'
     * kept allocations; the call's own are counted in `taken`) */
    uint64_t fixed = rt->budget.untracked;
    for (size_t i = 0; i < rt->registry.count; i++) {
        const struct allocation *a = rt->registry.list[i];
        if (a->keep && allocation_mapped(a) && a->protect_epoch != rt->epoch)
            fixed += a->mapped;
    }
    uint64_t room = rt->budget.limit > fixed ? rt->budget.limit - fixed : 0;
    uint64_t taken = 0;
    for (size_t i = 0; i < c->count; i++)
        taken += rt->scratch[i]->mapped;
    while (c->count > first && taken > room) {
        struct allocation *a = rt->scratch[--c->count];
        taken -= a->mapped;
        a->protect_epoch = 0; /* not this call's after all */
    }
}

/* A launch whose parameters cannot be read may use any memory. It most likely uses its
 * kernel's component (by `kernels`), else the active component's, else any tracked
 * allocation: those are made resident. And whatever is mapped may be what it uses, so
 * every later eviction of it waits for this launch's stream. */
static void collect_unreadable(struct collect *c, struct func_layout *layout, CUstream stream) {
    for (size_t i = 0; i < rt->registry.count; i++)
        if (allocation_mapped(rt->registry.list[i]))
            residency_note_user(rt->registry.list[i], stream);
    int comp = components_of_kernel(rt, layout);
    collect_component(c, comp >= 0 ? comp : components_active(rt));
}

/* The general launch: every reference collected, then ownership, switches and recording. */
static size_t launch_general(struct func_layout *layout, void **params, void **extra,
                             CUstream stream) {
    struct collect c = {0, false};
    bool uploads = stored_pointers_any(&rt->uploads);
    if (!launch_scan(layout, params, extra, uploads ? collect_value_or_table : call_collect_value,
                     &c))
        collect_unreadable(&c, layout, stream);
    if (uploads)
        collect_stored_pointers(&c);
    struct switch_plan plan;
    if (components_on_launch(rt, layout, rt->scratch, c.count, &plan))
        plan_carry_out(rt, &plan);
    record_launch(rt, layout, rt->scratch, c.count);
    return c.count;
}

/* The component whose memory this launch may reach through pointers stored in device
 * memory, which no launch passes (a batched GEMM's pointer array): the one its kernel is
 * declared `indirect` for, or the one it just made active (a component becomes resident
 * as a whole when it becomes active). -1: none. */
static int reached_component(struct func_layout *layout, int active_before) {
    int indirect = components_indirect_of_kernel(rt, layout);
    if (indirect >= 0)
        return indirect;
    int active = components_active(rt);
    return active != active_before ? active : -1;
}

CUresult runtime_begin_launch(CUfunction f, CUstream stream, void **params, void **extra) {
    if (call_nothing_to_do())
        return CUDA_SUCCESS;
    bool nested = call_prepare_lock();
    if (!rt->cuda_ready)
        return call_prepare_unlock(CUDA_SUCCESS, false, nested);
    rt->stats.launches++;
    call_prepare_epoch(nested);
    struct func_layout *layout = launch_layout(&rt->layouts, f);
    if (!layout && rt->layouts.query_failed != CUDA_SUCCESS) {
        CUresult failed = rt->layouts.query_failed;
        rt->layouts.query_failed = CUDA_SUCCESS;
        return call_prepare_unlock(failed, false, nested);
    }
    size_t n = 0;
    int active_before = rt->components ? components_active(rt) : -1;
    bool fast = launch_fast(layout, params, stream, &n);
    /* past the fast path, what follows is liboffload's own work: a switch plan carried
     * out, restores, evictions (call.h) */
    bool relaxed = !fast || n || rt->evicting_count || plan_pending(rt);
    if (relaxed)
        call_relax_begin();
    if (!fast)
        n = launch_general(layout, params, extra, stream);
    if (__builtin_expect(atomic_load_explicit(&trace_active, memory_order_relaxed), 0))
        trace_launch_slow(components_active(rt)); /* trace_launch, without the call when off */
    CUresult r = CUDA_SUCCESS;
    if (n || rt->evicting_count || plan_pending(rt))
        r = call_use_collected(n, stream);
    int reached = rt->components ? reached_component(layout, active_before) : -1;
    if (r == CUDA_SUCCESS && reached >= 0)
        plan_fill_component(rt, (size_t)reached, stream);
    if (r == CUDA_SUCCESS && rt->components && !copy_stream_capturing(stream))
        plan_stream(rt);
    if (relaxed)
        call_relax_end();
    return call_prepare_unlock(r, true, nested);
}

/* --- copies, memsets, graphs --------------------------------------------------------- */

CUresult runtime_begin_access(CUdeviceptr ptr, size_t bytes, CUdeviceptr ptr2, size_t bytes2,
                              CUstream stream) {
    if (call_nothing_to_do() || (bytes == 0 && bytes2 == 0))
        return CUDA_SUCCESS;
    bool nested = call_prepare_lock();
    if (!rt->cuda_ready)
        return call_prepare_unlock(CUDA_SUCCESS, false, nested);
    call_prepare_epoch(nested);
    struct collect c = {0, false};
    if (bytes)
        call_collect_range(&c, ptr, bytes);
    if (bytes2)
        call_collect_range(&c, ptr2, bytes2);
    vmm_learn_access(rt, ptr, bytes); /* a range across program mappings: one buffer */
    vmm_learn_access(rt, ptr2, bytes2);
    CUresult r = call_use_collected(c.count, stream);
    residency_note_written(rt->scratch, c.count);
    return call_prepare_unlock(r, true, nested);
}

/* Whether the host may read src: pinned or pageable host memory, not device memory (a
 * program passing a device address as the source would have the driver's error, not a
 * fault in liboffload). */
static bool host_readable(const void *src) {
    CUmemorytype type = 0;
    CUresult r = driver()->cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE,
                                                 (CUdeviceptr)(uintptr_t)src);
    return r == CUDA_ERROR_INVALID_VALUE || (r == CUDA_SUCCESS && type == CU_MEMORYTYPE_HOST);
}

/* After a copy's begin: a small copy into tracked memory from host memory is read for the
 * pointers it stores. */
static CUresult note_upload(CUresult begun, CUdeviceptr dst, const void *src, size_t bytes) {
    if (begun != CUDA_SUCCESS || !call_in_progress() || !stored_pointers_worth_reading(bytes) ||
        registry_find(&rt->registry, (uintptr_t)src) || !host_readable(src))
        return begun;
    stored_pointers_note_upload(&rt->uploads, &rt->registry, dst, src, bytes);
    return begun;
}

CUresult runtime_begin_upload(CUdeviceptr dst, const void *host, size_t bytes, CUstream stream) {
    return note_upload(runtime_begin_access(dst, bytes, 0, 0, stream), dst, host, bytes);
}

CUresult runtime_begin_copy(CUdeviceptr dst, CUdeviceptr src, size_t bytes, CUstream stream) {
    return note_upload(runtime_begin_access(src, bytes, dst, bytes, stream), dst,
                       (const void *)(uintptr_t)src, bytes);
}

void runtime_graph_instantiated(CUgraphExec exec, CUgraph graph) {
    static bool opaque_logged; /* guarded by the runtime lock */
    runtime_lock();
    if (!rt->cuda_ready) {
        runtime_unlock();
        return;
    }
    const struct graph_record *g =
        graphs_remember(&rt->graphs, &rt->layouts, &rt->registry, exec, graph);
    if (!g)
        log_warn("out of memory remembering a graph: its launches make the active component "
                 "resident");
    else if (g->opaque && !opaque_logged) {
        opaque_logged = true;
        log_warn("cannot see all the memory a graph uses (%s): before each launch of such a "
                 "graph, liboffload makes the active component resident (as much of it as "
                 "the budget holds)",
                 g->opaque);
    }
    runtime_unlock();
}

CUresult runtime_begin_graph_launch(CUgraphExec exec, CUstream stream) {
    if (call_nothing_to_do())
        return CUDA_SUCCESS;
    bool nested = call_prepare_lock();
    if (!rt->cuda_ready)
        return call_prepare_unlock(CUDA_SUCCESS, false, nested);
    /* no record: remembering it ran out of memory; it may use anything, as an opaque one */
    const struct graph_record *g = graphs_find(&rt->graphs, exec);
    call_prepare_epoch(nested);
    struct collect c = {0, false};
    for (size_t i = 0; g && i < g->count; i++)
        call_collect_value(&c, g->bases[i]);
    if (!g || g->opaque)
        collect_unreadable(&c, g ? g->opaque_kernel : NULL, stream);
    if (stored_pointers_any(&rt->uploads))
        collect_stored_pointers(&c);
    return call_prepare_unlock(call_use_collected(c.count, stream), true, nested);
}

void runtime_graph_exec_destroyed(CUgraphExec exec) {
    runtime_lock();
    graphs_forget(&rt->graphs, exec);
    runtime_unlock();
}

/* --- host waits and reads ----------------------------------------------------------- */

void runtime_before_host_wait(void) {
    if (call_nothing_to_do())
        return;
    runtime_lock();
    if (rt->cuda_ready && plan_pending(rt)) {
        call_relax_begin(); /* liboffload's own work (call.h) */
        bool pushed = setup_context_enter(rt);
        plan_poll(rt); /* reaps, never waits: see runtime.h */
        residency_drain_pool(rt);
        setup_context_leave(pushed);
        call_relax_end();
    }
    runtime_unlock();
}

/* Whether a synchronous read of [src, src+bytes) can come from a's host backup: evicted
 * (its copy to the host completed), the backup current, the range inside it, and the
 * caller in liboffload's context (the wait's event is one of ours). */
static bool readable_from_backup(const struct allocation *a, CUdeviceptr src, size_t bytes,
                                 CUstream stream) {
    if (!a || a->state != ALLOC_EVICTED || !a->backup_valid || !a->backup)
        return false;
    if (src + bytes < src || src + bytes > a->base + a->size)
        return false;
    return setup_current_place(rt) == PLACE_MANAGED && !copy_stream_capturing(stream);
}

CUresult runtime_read_evicted(void *dst, CUdeviceptr src, size_t bytes, CUstream stream,
                              bool *served) {
    *served = false;
    if (call_nothing_to_do() || bytes == 0 || !dst)
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

/* --- streams ------------------------------------------------------------------------ */

/* Forgets stream in every allocation's users; true when some allocation had it. */
static bool forget_stream_users(CUstream stream) {
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
    return used;
}

void runtime_stream_destroyed(CUstream stream) {
    runtime_lock();
    if (!rt->cuda_ready || atomic_load(&rt->cuda_unusable)) {
        runtime_unlock();
        return;
    }
    /* Evictions after this must still wait for the work queued on it: order the offload
     * stream after it now, while the handle is valid, then forget it everywhere. */
    if (forget_stream_users(stream) && !copy_stream_capturing(stream)) {
        struct allocation probe;
        memset(&probe, 0, sizeof probe);
        probe.stream_count = 1;
        probe.streams[0] = (struct stream_use){stream, copy_thread_id(stream)};
        bool pushed = setup_context_enter(rt);
        copy_after_users(&rt->copy, &probe);
        setup_context_leave(pushed);
    }
    copy_forget_stream(&rt->copy, stream);
    pools_forget_stream(rt, stream);
    runtime_unlock();
}
