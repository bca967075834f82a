/*
 * residency.c — create, evict, restore, use, destroy; physical memory and the EVICTING
 * list. Making room is in room.c.
 */
#include "runtime/memory/residency_internal.h"

#include "base/log.h"
#include "base/units.h"
#include "base/vec.h"
#include "driver/cuerr.h"
#include "driver/driver.h"
#include "runtime/memory/fingerprint.h"
#include "runtime/memory/room.h"
#include "runtime/report/trace.h"

#include <stdlib.h>
#include <time.h>

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

const char *residency_failed_call(const struct runtime *rt) {
    return rt->copy.failed_call ? rt->copy.failed_call : "?";
}

void residency_count_move(struct runtime *rt, const struct allocation *a, bool to_host,
                          uint64_t bytes) {
    struct move_stats *m[2] = {&rt->stats.total, a->moves};
    for (int i = 0; i < 2; i++) {
        if (!m[i])
            continue;
        if (to_host) {
            m[i]->evictions++;
            m[i]->bytes_to_host += bytes;
        } else {
            m[i]->restores++;
            m[i]->bytes_to_device += bytes;
        }
    }
}

void residency_count_bytes_to_host(struct runtime *rt, const struct allocation *a, uint64_t bytes) {
    rt->stats.total.bytes_to_host += bytes;
    if (a->moves)
        a->moves->bytes_to_host += bytes;
}

/* stall_ns: host time a call spent on an allocation that was not ready for it (making
 * room, mapping, queueing its restore, or waiting when the stream is capturing). */
static void count_stall(struct runtime *rt, const struct allocation *a, uint64_t since) {
    uint64_t waited = now_ns() - since;
    if (a->moves)
        a->moves->stall_ns += waited;
    rt->stats.total.stall_ns += waited;
}

/* --- the timeline (runtime/report/trace.h) ------------------------------------------ */

/* The component's state for the timeline: EVICTING while one of its allocations is,
 * else RESTORING, else RESIDENT while one is mapped, else EVICTED. A registry scan: only
 * when a timeline or the status line is on. */
void residency_trace_component(struct runtime *rt, int component) {
    if (component < 0 || !atomic_load_explicit(&trace_active, memory_order_relaxed))
        return;
    bool evicting = false, restoring = false, mapped = false;
    uint64_t resident = 0;
    for (size_t i = 0; i < rt->registry.count; i++) {
        const struct allocation *a = rt->registry.list[i];
        if (a->component != component || !allocation_mapped(a))
            continue;
        evicting |= a->state == ALLOC_EVICTING;
        restoring |= a->state == ALLOC_RESTORING;
        mapped = true;
        resident += a->mapped;
    }
    enum trace_state st = evicting    ? TRACE_EVICTING
                          : restoring ? TRACE_RESTORING
                          : mapped    ? TRACE_RESIDENT
                                      : TRACE_EVICTED;
    trace_component_state(component, st, resident);
}

/* --- physical memory ---------------------------------------------------------------- */

static void unmap_release(struct runtime *rt, struct allocation *a) {
    CUresult r = driver()->cuMemUnmap(a->base, a->mapped);
    if (r != CUDA_SUCCESS)
        log_error("cuMemUnmap of %.1f MiB at 0x%llx failed: %s", mib(a->mapped),
                  (unsigned long long)a->base, cuerr_name(r));
    r = driver()->cuMemRelease(a->handle);
    if (r != CUDA_SUCCESS)
        log_error("cuMemRelease failed: %s", cuerr_name(r));
    a->handle = 0;
    budget_sub_resident(&rt->budget, a->mapped);
}

void residency_drain_pool(struct runtime *rt) {
    struct pooled_handle ph;
    while (handle_pool_pop(&rt->pool, &ph)) {
        CUresult r = driver()->cuMemRelease(ph.handle);
        if (r != CUDA_SUCCESS)
            log_error("cuMemRelease failed: %s", cuerr_name(r));
        budget_sub_resident(&rt->budget, ph.size);
    }
}

/* Physical memory for a: a plain device allocation, or with the properties the program
 * asked for in its cuMemCreate (exportable, compressible, ...). */
static CUresult create_physical(struct runtime *rt, const struct allocation *a,
                                CUmemGenericAllocationHandle *h) {
    CUmemAllocationProp prop;
    memset(&prop, 0, sizeof prop);
    prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    prop.location.id = rt->device;
    if (a->physical_prop)
        prop = *a->physical_prop;
    return cuerr_note(&rt->copy.failed_call, "cuMemCreate",
                      driver()->cuMemCreate(h, a->mapped, &prop, 0));
}

/* Physical memory for a: a handle this call's evictions released (its bytes are already
 * counted as resident), else a new one. */
static CUresult take_physical(struct runtime *rt, struct allocation *a,
                              CUmemGenericAllocationHandle *h) {
    /* the pool's handles are plain device memory: only for plain allocations */
    if (!a->physical_prop && handle_pool_take(&rt->pool, a->mapped, h)) {
        budget_sub_resident(&rt->budget, a->mapped); /* counted again once mapped */
        return CUDA_SUCCESS;
    }
    /* Release what the pool holds before asking for new memory: the device never holds
     * more than before the evictions. */
    residency_drain_pool(rt);
    CUresult r = create_physical(rt, a, h);
    if (r == CUDA_ERROR_OUT_OF_MEMORY) {
        /* Under budget, yet the device is full: someone else took memory. Make room for
         * this much below what we hold now, and try once more. */
        log_info("device out of memory under budget: evicting to retry");
        residency_make_room(rt, a->mapped, budget_used(&rt->budget), rt->victims);
        residency_drain_pool(rt);
        r = create_physical(rt, a, h);
    }
    return r;
}

static CUresult map_physical(struct runtime *rt, struct allocation *a) {
    const struct driver_table *d = driver();
    CUmemGenericAllocationHandle h = 0;
    CUresult r = take_physical(rt, a, &h);
    if (r != CUDA_SUCCESS)
        return r;
    r = cuerr_note(&rt->copy.failed_call, "cuMemMap", d->cuMemMap(a->base, a->mapped, 0, h, 0));
    if (r != CUDA_SUCCESS) {
        d->cuMemRelease(h);
        return r;
    }
    CUmemAccessDesc access;
    memset(&access, 0, sizeof access);
    access.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    access.location.id = rt->device;
    access.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
    r = cuerr_note(&rt->copy.failed_call, "cuMemSetAccess",
                   d->cuMemSetAccess(a->base, a->mapped, &access, 1));
    if (r != CUDA_SUCCESS) {
        d->cuMemUnmap(a->base, a->mapped);
        d->cuMemRelease(h);
        return r;
    }
    a->handle = h;
    budget_add_resident(&rt->budget, a->mapped);
    return CUDA_SUCCESS;
}

/* --- create / destroy --------------------------------------------------------------- */

CUresult residency_create(struct runtime *rt, size_t bytes, struct allocation **out) {
    struct allocation *a = allocation_new(bytes, rt->granularity);
    if (!a)
        return CUDA_ERROR_OUT_OF_MEMORY;
    a->protect_epoch = rt->epoch;
    CUresult r = driver()->cuMemAddressReserve(&a->base, a->mapped, rt->granularity, 0, 0);
    if (r != CUDA_SUCCESS) {
        log_error("allocating %zu bytes failed (cuMemAddressReserve: %s)", bytes, cuerr_name(r));
        allocation_free(a);
        return r;
    }
    if (registry_add(&rt->registry, a) != 0) {
        driver()->cuMemAddressFree(a->base, a->mapped);
        allocation_free(a);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    *out = a;
    return CUDA_SUCCESS;
}

CUresult residency_create_mapped(struct runtime *rt, CUdeviceptr base, size_t bytes,
                                 const CUmemAllocationProp *prop, struct allocation **out) {
    struct allocation *a = allocation_new(bytes, rt->granularity);
    if (!a)
        return CUDA_ERROR_OUT_OF_MEMORY;
    a->protect_epoch = rt->epoch;
    a->base = base;
    a->origin = ALLOC_FROM_MAPPING;
    a->physical_prop = prop;
    if (registry_add(&rt->registry, a) != 0) {
        allocation_free(a);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    *out = a;
    return CUDA_SUCCESS;
}

CUresult residency_map_new(struct runtime *rt, struct allocation *a) {
    CUresult r = residency_make_room(rt, a->mapped, rt->budget.limit, rt->victims);
    if (r == CUDA_SUCCESS) {
        r = map_physical(rt, a);
        if (r != CUDA_SUCCESS)
            log_error("allocating %.1f MiB failed (%s: %s)", mib(a->size),
                      residency_failed_call(rt), cuerr_name(r));
    }
    if (r == CUDA_SUCCESS) {
        allocation_set_state(a, ALLOC_RESIDENT);
        a->last_use = ++rt->clock;
        residency_trace_component(rt, a->component);
    }
    return r;
}

void residency_discard(struct runtime *rt, struct allocation *a) {
    registry_remove(&rt->registry, a);
    registry_unnumber_last(&rt->registry, a);
    if (a->origin != ALLOC_FROM_MAPPING)
        driver()->cuMemAddressFree(a->base, a->mapped);
    allocation_free(a);
}

CUresult residency_quiesce(struct runtime *rt, struct allocation *a) {
    CUresult r = copy_sync_users(&rt->copy, a);
    if (r != CUDA_SUCCESS && r != CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED) /* (not during one) */
        r = copy_sync_context(&rt->copy);
    if (r != CUDA_SUCCESS)
        log_error("freeing allocation #%llu: cannot wait for its users (%s: %s)",
                  (unsigned long long)a->ordinal, residency_failed_call(rt), cuerr_name(r));
    return r;
}

void residency_destroy(struct runtime *rt, struct allocation *a) {
    if (a->ready && allocation_mapped(a))
        copy_sync_event(&rt->copy, a->ready);
    if (a->state == ALLOC_RESTORING)
        trace_restore_end(a->ordinal, true);
    if (a->state == ALLOC_EVICTING)
        evict_drop(rt, a);
    fingerprint_release(rt, a);
    if (allocation_mapped(a))
        unmap_release(rt, a);
    if (a->origin != ALLOC_FROM_MAPPING)
        driver()->cuMemAddressFree(a->base, a->mapped);
    if (a->ready)
        driver()->cuEventDestroy_v2(a->ready);
    backup_free(&rt->backups, a->backup, a->size, a->backup_pinned);
    registry_remove(&rt->registry, a);
    rt->stats.tracked_bytes -= a->mapped;
    residency_trace_component(rt, a->component);
    allocation_free(a);
}

CUresult residency_detach(struct runtime *rt, struct allocation *a,
                          CUmemGenericAllocationHandle *handle) {
    CUresult r = CUDA_SUCCESS;
    if (a->state == ALLOC_EVICTING || a->state == ALLOC_EVICTED)
        r = residency_restore(rt, a, false);
    if (r == CUDA_SUCCESS && a->ready)
        r = copy_sync_event(&rt->copy, a->ready);
    if (r != CUDA_SUCCESS) {
        log_error("handing allocation #%llu back to the program failed (%s: %s)",
                  (unsigned long long)a->ordinal, residency_failed_call(rt), cuerr_name(r));
        return r;
    }
    if (a->state == ALLOC_RESTORING)
        allocation_set_state(a, ALLOC_RESIDENT);
    *handle = a->handle;
    a->handle = 0;
    budget_sub_resident(&rt->budget, a->mapped);
    if (a->ready)
        driver()->cuEventDestroy_v2(a->ready);
    backup_free(&rt->backups, a->backup, a->size, a->backup_pinned);
    registry_remove(&rt->registry, a);
    rt->stats.tracked_bytes -= a->mapped;
    allocation_free(a);
    return CUDA_SUCCESS;
}

/* --- evict / restore / use ---------------------------------------------------------- */

/* A prefetch only uses room that is free or already being freed: it never evicts on its
 * own (the plan decided what goes). The pool's handles (evictions of this call that have
 * landed) are room too: a switch waits for the outgoing component and then prefetches
 * into its memory. */
static bool room_for_prefetch(struct runtime *rt, const struct allocation *a) {
    residency_reap(rt);
    return budget_shortfall(&rt->budget, a->mapped) <= rt->evicting_bytes + rt->pool.bytes;
}

CUresult residency_restore(struct runtime *rt, struct allocation *a, bool prefetch) {
    if (a->state == ALLOC_EVICTING) {
        evict_take_back(rt, a);
        residency_trace_component(rt, a->component);
        return CUDA_SUCCESS;
    }
    if (a->state != ALLOC_EVICTED)
        return CUDA_SUCCESS;
    if (prefetch && !room_for_prefetch(rt, a))
        return CUDA_ERROR_OUT_OF_MEMORY;
    CUresult r = residency_make_room(rt, a->mapped, rt->budget.limit, rt->victims);
    if (r == CUDA_SUCCESS) {
        r = map_physical(rt, a);
        if (r != CUDA_SUCCESS)
            log_error("restoring allocation #%llu failed (%s: %s); its data stays on the host",
                      (unsigned long long)a->ordinal, residency_failed_call(rt), cuerr_name(r));
    }
    if (r != CUDA_SUCCESS)
        return r;
    r = copy_to_device(&rt->copy, a->base, a->backup, a->size);
    if (r == CUDA_SUCCESS)
        r = copy_record(&rt->copy, COPY_TO_DEVICE, &a->ready);
    if (r != CUDA_SUCCESS) {
        /* Nothing may read half-restored memory: give it back, the data stays on the host.
         * Wait for the partial copy first, it still reads the backup and writes the range. */
        copy_drain(&rt->copy, COPY_TO_DEVICE);
        unmap_release(rt, a);
        log_error("restoring allocation #%llu failed (%s: %s)", (unsigned long long)a->ordinal,
                  residency_failed_call(rt), cuerr_name(r));
        return r;
    }
    allocation_set_state(a, ALLOC_RESTORING);
    a->prefetched = prefetch;
    a->stream_count = 0;
    a->streams_overflow = false;
    residency_count_move(rt, a, false, a->size);
    trace_restore_begin(a->ordinal, a->component, a->size, rt->copy.to_device);
    residency_trace_component(rt, a->component);
    log_debug("%s allocation #%llu (%.1f MiB at 0x%llx)", prefetch ? "prefetching" : "restoring",
              (unsigned long long)a->ordinal, mib(a->mapped), (unsigned long long)a->base);
    return CUDA_SUCCESS;
}

static bool add_user(struct allocation *a, CUstream stream, uint64_t thread) {
    copy_note_use(stream); /* before the check: every use counts (legacy fence, tails) */
    for (unsigned i = 0; i < a->stream_count; i++)
        if (a->streams[i].stream == stream && a->streams[i].thread == thread)
            return false;
    if (a->stream_count < ALLOCATION_MAX_STREAMS)
        a->streams[a->stream_count++] = (struct stream_use){stream, thread};
    else
        a->streams_overflow = true;
    return true;
}

void residency_note_user(struct allocation *a, CUstream stream) {
    add_user(a, stream, copy_thread_id(stream));
}

/* A new user of a RESTORING allocation: RESIDENT if its copy has landed, else the stream
 * waits for it (on the device). */
static CUresult order_after_restore(struct runtime *rt, struct allocation *a, CUstream stream) {
    if (driver()->cuEventQuery(a->ready) == CUDA_SUCCESS) {
        allocation_set_state(a, ALLOC_RESIDENT);
        trace_restore_end(a->ordinal, true);
        residency_trace_component(rt, a->component);
        return CUDA_SUCCESS;
    }
    uint64_t t0 = now_ns();
    trace_stall_begin(-1, a->component, a->ordinal);
    CUresult r = copy_order_stream(&rt->copy, stream, a->ready);
    trace_stall_end();
    count_stall(rt, a, t0);
    if (r == CUDA_SUCCESS) /* from here the GPU waits; the host never looks again */
        trace_restore_end(a->ordinal, true);
    if (r != CUDA_SUCCESS) {
        a->stream_count--; /* the stream is not ordered: do not count it as a user */
        log_error("ordering a stream after the restore of allocation #%llu failed (%s: %s)",
                  (unsigned long long)a->ordinal, residency_failed_call(rt), cuerr_name(r));
    }
    return r;
}

static void count_prefetch_hit(struct runtime *rt, struct allocation *a) {
    a->prefetched = false;
    if (a->state == ALLOC_RESIDENT || driver()->cuEventQuery(a->ready) == CUDA_SUCCESS) {
        if (a->moves)
            a->moves->prefetch_hits++;
        rt->stats.total.prefetch_hits++;
    }
}

CUresult residency_use(struct runtime *rt, struct allocation *a, CUstream stream) {
    if (a->state == ALLOC_EVICTING || a->state == ALLOC_EVICTED) {
        uint64_t t0 = now_ns();
        if (a->state == ALLOC_EVICTED) {
            rt->stats.total.demand_restores++;
            if (a->moves)
                a->moves->demand_restores++;
        }
        trace_stall_begin(-1, a->component, a->ordinal);
        CUresult r = residency_restore(rt, a, false);
        trace_stall_end();
        count_stall(rt, a, t0);
        if (r != CUDA_SUCCESS)
            return r;
    }
    bool new_user = add_user(a, stream, copy_thread_id(stream));
    if (a->state == ALLOC_RESTORING && new_user) {
        CUresult r = order_after_restore(rt, a, stream);
        if (r != CUDA_SUCCESS)
            return r;
    }
    if (a->prefetched)
        count_prefetch_hit(rt, a);
    a->last_use = ++rt->clock;
    if (!a->readonly)
        a->backup_valid = false;
    return CUDA_SUCCESS;
}
