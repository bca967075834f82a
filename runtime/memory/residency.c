/*
 * residency.c — create, evict, restore, use, destroy; physical memory and the EVICTING
 * list. Making room is in room.c.
 */
#include "runtime/memory/residency.h"

#include "base/log.h"
#include "base/units.h"
#include "base/vec.h"
#include "driver/cuerr.h"
#include "driver/driver.h"
#include "runtime/memory/room.h"
#include "runtime/report/trace.h"

#include <stdlib.h>
#include <time.h>

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static const char *failed_call(const struct runtime *rt) {
    return rt->copy.failed_call ? rt->copy.failed_call : "?";
}

static void count_move(struct runtime *rt, const struct allocation *a, bool to_host,
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
static void trace_component(struct runtime *rt, int component) {
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

/* --- the EVICTING list ------------------------------------------------------------- */

static int evicting_push(struct runtime *rt, struct allocation *a) {
    if (VEC_RESERVE(rt->evicting, rt->evicting_capacity, rt->evicting_count + 1) != 0)
        return -1;
    rt->evicting[rt->evicting_count++] = a;
    rt->evicting_bytes += a->mapped;
    return 0;
}

static void evicting_drop(struct runtime *rt, const struct allocation *a) {
    for (size_t i = 0; i < rt->evicting_count; i++) {
        if (rt->evicting[i] == a) {
            memmove(&rt->evicting[i], &rt->evicting[i + 1],
                    (rt->evicting_count - i - 1) * sizeof *rt->evicting);
            rt->evicting_count--;
            rt->evicting_bytes -= a->mapped;
            return;
        }
    }
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

/* An eviction that cannot complete: the bytes are still on the device, and stay there. */
static void eviction_failed(struct runtime *rt, struct allocation *a) {
    evicting_drop(rt, a);
    allocation_set_state(a, ALLOC_RESIDENT);
    a->backup_valid = false;
    a->protect_epoch = rt->epoch; /* not again in this call */
    rt->stats.failed_evictions++;
    trace_evict_end(a->ordinal, false);
    trace_component(rt, a->component);
}

/* EVICTING -> EVICTED, its copy known complete. The physical memory goes to the pool: a
 * restore in the same call may take it over; the call's end releases the rest. */
static void finish_eviction(struct runtime *rt, struct allocation *a) {
    CUresult r = driver()->cuMemUnmap(a->base, a->mapped);
    if (r != CUDA_SUCCESS) {
        /* Still mapped, bytes intact: it stays resident. Pooling or releasing a handle
         * that is still mapped would break every later restore of this range. */
        log_error("cuMemUnmap of %.1f MiB at 0x%llx failed: %s; it stays on the device",
                  mib(a->mapped), (unsigned long long)a->base, cuerr_name(r));
        eviction_failed(rt, a);
        return;
    }
    evicting_drop(rt, a);
    if (a->physical_prop || !handle_pool_put(&rt->pool, a->handle, a->mapped)) {
        driver()->cuMemRelease(a->handle);
        budget_sub_resident(&rt->budget, a->mapped);
    }
    a->handle = 0;
    allocation_set_state(a, ALLOC_EVICTED);
    a->backup_valid = true;
    a->stream_count = 0;
    a->streams_overflow = false;
    trace_evict_end(a->ordinal, true);
    trace_component(rt, a->component);
    log_debug("evicted allocation #%llu (%.1f MiB at 0x%llx)", (unsigned long long)a->ordinal,
              mib(a->mapped), (unsigned long long)a->base);
}

void residency_reap(struct runtime *rt) {
    while (rt->evicting_count) {
        struct allocation *a = rt->evicting[0];
        if (driver()->cuEventQuery(a->ready) != CUDA_SUCCESS)
            return; /* later ones were queued after it on the same stream */
        finish_eviction(rt, a);
    }
}

CUresult residency_reap_oldest(struct runtime *rt) {
    struct allocation *a = rt->evicting[0];
    CUresult r = copy_sync_event(&rt->copy, a->ready);
    if (r != CUDA_SUCCESS) {
        /* The copy failed: the bytes in the backup cannot be trusted. Keep the data. */
        log_error("copy to host of allocation #%llu failed (%s: %s); it stays on the device",
                  (unsigned long long)a->ordinal, failed_call(rt), cuerr_name(r));
        eviction_failed(rt, a);
        return r;
    }
    finish_eviction(rt, a);
    return CUDA_SUCCESS;
}

void residency_finish_evictions(struct runtime *rt) {
    while (rt->evicting_count)
        residency_reap_oldest(rt);
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
            log_error("allocating %.1f MiB failed (%s: %s)", mib(a->size), failed_call(rt),
                      cuerr_name(r));
    }
    if (r == CUDA_SUCCESS) {
        allocation_set_state(a, ALLOC_RESIDENT);
        a->last_use = ++rt->clock;
        trace_component(rt, a->component);
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
                  (unsigned long long)a->ordinal, failed_call(rt), cuerr_name(r));
    return r;
}

void residency_destroy(struct runtime *rt, struct allocation *a) {
    if (a->ready && allocation_mapped(a))
        copy_sync_event(&rt->copy, a->ready);
    if (a->state == ALLOC_RESTORING)
        trace_restore_end(a->ordinal, true);
    if (a->state == ALLOC_EVICTING)
        evicting_drop(rt, a);
    if (allocation_mapped(a))
        unmap_release(rt, a);
    if (a->origin != ALLOC_FROM_MAPPING)
        driver()->cuMemAddressFree(a->base, a->mapped);
    if (a->ready)
        driver()->cuEventDestroy_v2(a->ready);
    backup_free(&rt->backups, a->backup, a->size, a->backup_pinned);
    registry_remove(&rt->registry, a);
    rt->stats.tracked_bytes -= a->mapped;
    trace_component(rt, a->component);
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
                  (unsigned long long)a->ordinal, failed_call(rt), cuerr_name(r));
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

static CUresult queue_copy_out(struct runtime *rt, struct allocation *a, uint64_t copied) {
    CUresult r = copy_after_users(&rt->copy, a);
    /* Restored (or prefetched) and not yet used: no user stream waited for its restore,
     * and restores run on the other stream. The copy out must not overtake it. */
    if (r == CUDA_SUCCESS && a->state == ALLOC_RESTORING)
        r = copy_after_event(&rt->copy, COPY_TO_HOST, a->ready);
    if (r == CUDA_SUCCESS && copied)
        r = copy_to_host(&rt->copy, a->backup, a->base, a->size);
    if (r == CUDA_SUCCESS)
        r = copy_record(&rt->copy, COPY_TO_HOST, &a->ready);
    return r;
}

CUresult residency_evict(struct runtime *rt, struct allocation *a) {
    if (!allocation_evictable_state(a))
        return CUDA_SUCCESS;
    if (!a->backup) {
        a->backup = backup_alloc(&rt->backups, a->size, &a->backup_pinned);
        if (!a->backup) {
            rt->stats.failed_evictions++;
            return CUDA_ERROR_OUT_OF_MEMORY;
        }
        a->backup_valid = false;
    }
    uint64_t copied = a->backup_valid ? 0 : a->size;
    bool was_restoring = a->state == ALLOC_RESTORING;
    CUresult r = queue_copy_out(rt, a, copied);
    if (r == CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED) {
        log_debug("allocation #%llu cannot be evicted while a capture is open (%s): not "
                  "evicted now",
                  (unsigned long long)a->ordinal, failed_call(rt));
        return r;
    }
    if (r == CUDA_SUCCESS && evicting_push(rt, a) != 0)
        r = CUDA_ERROR_OUT_OF_MEMORY;
    if (r != CUDA_SUCCESS) {
        log_error("evicting allocation #%llu (%.1f MiB) failed (%s: %s); it stays on the device",
                  (unsigned long long)a->ordinal, mib(a->size), failed_call(rt), cuerr_name(r));
        a->backup_valid = false;
        rt->stats.failed_evictions++;
        return r;
    }
    if (was_restoring) /* its copy out is ordered after the restore */
        trace_restore_end(a->ordinal, true);
    allocation_set_state(a, ALLOC_EVICTING);
    a->prefetched = false;
    count_move(rt, a, true, copied);
    trace_evict_begin(a->ordinal, a->component, copied, rt->copy.to_host);
    trace_component(rt, a->component);
    return CUDA_SUCCESS;
}

/* EVICTING -> RESTORING: still mapped, take it back. Its copy out may still be reading it:
 * as after a restore, every stream that uses it next waits for `ready` (that copy), so the
 * program's writes never race with it. The backup is only trusted again for read-only
 * data. */
static void take_back(struct runtime *rt, struct allocation *a) {
    evicting_drop(rt, a);
    trace_evict_end(a->ordinal, false); /* the data never left the device */
    allocation_set_state(a, ALLOC_RESTORING);
    if (!a->readonly)
        a->backup_valid = false;
    a->stream_count = 0;
    a->streams_overflow = false;
}

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
        take_back(rt, a);
        trace_component(rt, a->component);
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
                      (unsigned long long)a->ordinal, failed_call(rt), cuerr_name(r));
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
                  failed_call(rt), cuerr_name(r));
        return r;
    }
    allocation_set_state(a, ALLOC_RESTORING);
    a->prefetched = prefetch;
    a->stream_count = 0;
    a->streams_overflow = false;
    count_move(rt, a, false, a->size);
    trace_restore_begin(a->ordinal, a->component, a->size, rt->copy.to_device);
    trace_component(rt, a->component);
    log_debug("%s allocation #%llu (%.1f MiB at 0x%llx)", prefetch ? "prefetching" : "restoring",
              (unsigned long long)a->ordinal, mib(a->mapped), (unsigned long long)a->base);
    return CUDA_SUCCESS;
}

static bool add_user(struct allocation *a, CUstream stream, uint64_t thread) {
    copy_note_use(stream);
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
        trace_component(rt, a->component);
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
                  (unsigned long long)a->ordinal, failed_call(rt), cuerr_name(r));
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
        if (a->state == ALLOC_EVICTED)
            rt->stats.demand_restores++;
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
