/*
 * residency.c — evict, restore, make room.
 */
#include "runtime/memory/residency.h"

#include "base/log.h"
#include "driver/cuerr.h"
#include "driver/driver.h"
#include "runtime/components/components.h"
#include "runtime/policy/lru.h"

#include <stdlib.h>
#include <time.h>

static double mib(uint64_t bytes) {
    return (double)bytes / (1024.0 * 1024.0);
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void count_move(struct runtime *rt, const struct allocation *a, bool to_host,
                       uint64_t bytes) {
    struct move_stats *m[2] = {&rt->stats.total, components_moves(rt, a->component)};
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

/* --- the EVICTING list ------------------------------------------------------------- */

static int evicting_push(struct runtime *rt, struct allocation *a) {
    if (rt->evicting_count == rt->evicting_capacity) {
        size_t cap = rt->evicting_capacity ? rt->evicting_capacity * 2 : 16;
        struct allocation **list = realloc(rt->evicting, cap * sizeof *list);
        if (!list)
            return -1;
        rt->evicting = list;
        rt->evicting_capacity = cap;
    }
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

/* EVICTING -> EVICTED, its copy known complete. The physical memory goes to the pool: a
 * restore in the same call may take it over; the call's end releases the rest. */
static void finish_eviction(struct runtime *rt, struct allocation *a) {
    evicting_drop(rt, a);
    CUresult r = driver()->cuMemUnmap(a->base, a->mapped);
    if (r != CUDA_SUCCESS) {
        /* Still mapped, bytes intact: it stays resident. Pooling or releasing a handle
         * that is still mapped would break every later restore of this range. */
        log_error("cuMemUnmap of %.1f MiB at 0x%llx failed: %s; it stays on the device",
                  mib(a->mapped), (unsigned long long)a->base, cuerr_name(r));
        a->state = RESIDENT;
        a->backup_valid = false;
        a->protect_epoch = rt->epoch; /* not again in this call */
        rt->stats.failed_evictions++;
        return;
    }
    if (!handle_pool_put(&rt->pool, a->handle, a->mapped)) {
        driver()->cuMemRelease(a->handle);
        budget_sub_resident(&rt->budget, a->mapped);
    }
    a->handle = 0;
    a->state = EVICTED;
    a->backup_valid = true;
    a->stream_count = 0;
    a->streams_overflow = false;
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

/* Host wait for the oldest eviction in flight, then finish it. */
static CUresult reap_oldest(struct runtime *rt) {
    struct allocation *a = rt->evicting[0];
    CUresult r = copy_sync_event(&rt->copy, a->ready);
    if (r != CUDA_SUCCESS) {
        /* The copy failed: the bytes in the backup cannot be trusted. Keep the data. */
        log_error("copy to host of allocation #%llu failed (%s: %s); it stays on the device",
                  (unsigned long long)a->ordinal, rt->copy.failed_call ? rt->copy.failed_call : "?",
                  cuerr_name(r));
        evicting_drop(rt, a);
        a->state = RESIDENT;
        a->backup_valid = false;
        a->protect_epoch = rt->epoch; /* not again in this call */
        rt->stats.failed_evictions++;
        return r;
    }
    finish_eviction(rt, a);
    return CUDA_SUCCESS;
}

void residency_finish_evictions(struct runtime *rt) {
    while (rt->evicting_count)
        reap_oldest(rt);
}

static CUresult map_physical(struct runtime *rt, struct allocation *a) {
    const struct driver_table *d = driver();
    CUmemAllocationProp prop;
    memset(&prop, 0, sizeof prop);
    prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    prop.location.id = rt->device;
    CUmemGenericAllocationHandle h = 0;
    bool reused = handle_pool_take(&rt->pool, a->mapped, &h);
    CUresult r = CUDA_SUCCESS;
    if (reused) {
        /* its bytes are already counted as resident */
        budget_sub_resident(&rt->budget, a->mapped);
    } else {
        /* Release what the pool holds before asking for new memory: the device never
         * holds more than before the evictions. */
        residency_drain_pool(rt);
        r = cuerr_note(&rt->copy.failed_call, "cuMemCreate",
                       d->cuMemCreate(&h, a->mapped, &prop, 0));
    }
    if (r == CUDA_ERROR_OUT_OF_MEMORY) {
        /* Under budget, yet the device is full: someone else took memory. Make room for
         * this much below what we hold now, and try once more. */
        uint64_t saved = rt->budget.limit;
        rt->budget.limit = budget_used(&rt->budget);
        log_info("device out of memory under budget: evicting to retry");
        residency_make_room(rt, a->mapped);
        rt->budget.limit = saved;
        r = cuerr_note(&rt->copy.failed_call, "cuMemCreate",
                       d->cuMemCreate(&h, a->mapped, &prop, 0));
    }
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

/* --- choosing victims --------------------------------------------------------------- */

static bool component_kept(const void *ctx, int component) {
    return components_keep(ctx, component);
}

static bool any_component(const void *ctx, int component) {
    (void)ctx, (void)component;
    return true;
}

/* Starts evicting something worth up to `need` bytes; false when nothing may go. Order:
 * components outside the plan's window (policy order), unowned allocations (least
 * recently used first), the window's components, then any allocation not needed by the
 * current call: correctness before the plan. */
static bool evict_something(struct runtime *rt, uint64_t need) {
    if (components_relieve(rt, need, false) > 0)
        return true;
    for (int pass = 0; pass < 2; pass++) {
        struct allocation *victim =
            lru_choose(&rt->registry, rt->epoch, pass ? component_kept : any_component, rt);
        if (!victim) {
            if (pass == 0 && components_relieve(rt, need, true) > 0)
                return true;
            continue;
        }
        if (residency_evict(rt, victim) != CUDA_SUCCESS)
            victim->protect_epoch = rt->epoch; /* cannot go now; do not pick it again */
        return true;
    }
    return false;
}

static void log_holders(struct runtime *rt, uint64_t bytes) {
    uint64_t in_use = 0, kept = 0, evictable = 0;
    for (size_t i = 0; i < rt->registry.count; i++) {
        const struct allocation *a = rt->registry.list[i];
        if (a->state == EVICTED)
            continue;
        if (a->protect_epoch == rt->epoch)
            in_use += a->mapped;
        else if (components_keep(rt, a->component))
            kept += a->mapped;
        else
            evictable += a->mapped;
    }
    log_error("out of memory: %.1f MiB more do not fit in the budget of %.1f MiB; held: "
              "%.1f MiB tracked (%.1f MiB needed by this call, %.1f MiB keep, %.1f MiB "
              "other), %.1f MiB untracked",
              mib(bytes), mib(rt->budget.limit), mib(rt->budget.resident), mib(in_use), mib(kept),
              mib(evictable), mib(rt->budget.untracked));
    components_log_holders(rt);
}

CUresult residency_make_room(struct runtime *rt, uint64_t bytes) {
    if (budget_shortfall(&rt->budget, bytes) == 0)
        return CUDA_SUCCESS;
    if (bytes > rt->budget.limit) {
        /* Can never fit: do not throw everything out first. */
        log_holders(rt, bytes);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    residency_reap(rt);
    /* Start enough evictions that, once they land, the bytes fit; wait for as many as the
     * bytes need. An eviction whose copy fails stays resident and is not picked again
     * (reap_oldest protects it), so the next round chooses others. */
    for (int round = 0; round < 8; round++) {
        for (;;) {
            uint64_t shortfall = budget_shortfall(&rt->budget, bytes);
            uint64_t coming = rt->evicting_bytes + rt->pool.bytes;
            if (shortfall <= coming)
                break;
            if (!evict_something(rt, shortfall - coming))
                break;
        }
        bool failed = false;
        while (budget_shortfall(&rt->budget, bytes) > rt->pool.bytes && rt->evicting_count)
            failed |= reap_oldest(rt) != CUDA_SUCCESS;
        if (!failed || budget_shortfall(&rt->budget, bytes) <= rt->pool.bytes)
            break;
    }
    if (budget_shortfall(&rt->budget, bytes) > rt->pool.bytes) {
        log_holders(rt, bytes);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    return CUDA_SUCCESS;
}

/* --- evict / restore / use ---------------------------------------------------------- */

CUresult residency_evict(struct runtime *rt, struct allocation *a) {
    if (a->state != RESIDENT)
        return CUDA_SUCCESS;
    if (!a->backup) {
        a->backup = backup_alloc(&rt->backups, a->size, &a->backup_pinned);
        if (!a->backup) {
            rt->stats.failed_evictions++;
            return CUDA_ERROR_OUT_OF_MEMORY;
        }
        a->backup_valid = false;
    }
    CUresult r = copy_after_users(&rt->copy, a);
    /* Restored (or prefetched) and not yet used: no user stream waited for its restore,
     * and restores run on the other stream. The copy out must not overtake it. */
    if (r == CUDA_SUCCESS && a->restore_pending)
        r = copy_after_event(&rt->copy, COPY_TO_HOST, a->ready);
    if (r == CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED) {
        log_debug("allocation #%llu is used by a capturing stream: not evicted now",
                  (unsigned long long)a->ordinal);
        return r;
    }
    uint64_t copied = a->backup_valid ? 0 : a->size;
    if (r == CUDA_SUCCESS && copied)
        r = copy_to_host(&rt->copy, a->backup, a->base, a->size);
    if (r == CUDA_SUCCESS)
        r = copy_record(&rt->copy, COPY_TO_HOST, &a->ready);
    if (r == CUDA_SUCCESS && evicting_push(rt, a) != 0)
        r = CUDA_ERROR_OUT_OF_MEMORY;
    if (r != CUDA_SUCCESS) {
        log_error("evicting allocation #%llu (%.1f MiB) failed (%s: %s); it stays on the device",
                  (unsigned long long)a->ordinal, mib(a->size),
                  rt->copy.failed_call ? rt->copy.failed_call : "?", cuerr_name(r));
        a->backup_valid = false;
        rt->stats.failed_evictions++;
        return r;
    }
    a->state = EVICTING;
    a->restore_pending = false;
    a->prefetched = false;
    count_move(rt, a, true, copied);
    return CUDA_SUCCESS;
}

CUresult residency_restore(struct runtime *rt, struct allocation *a, bool prefetch) {
    if (a->state == EVICTING) {
        /* Still mapped: take it back. Its copy out may still be reading it: like a
         * restore, every stream that uses it next waits for `ready` (that copy), so the
         * program's writes never race with it. The backup is only trusted again for
         * read-only data. */
        evicting_drop(rt, a);
        a->state = RESIDENT;
        if (!a->readonly)
            a->backup_valid = false;
        a->restore_pending = true;
        a->stream_count = 0;
        a->streams_overflow = false;
        return CUDA_SUCCESS;
    }
    if (a->state != EVICTED)
        return CUDA_SUCCESS;
    if (prefetch) {
        /* A prefetch only uses room that is free or already being freed: it never
         * evicts on its own (the plan decided what goes). */
        residency_reap(rt);
        /* The pool's handles (evictions of this call that have landed) are room too: a
         * switch waits for the outgoing component and then prefetches into its memory. */
        if (budget_shortfall(&rt->budget, a->mapped) > rt->evicting_bytes + rt->pool.bytes)
            return CUDA_ERROR_OUT_OF_MEMORY;
    }
    CUresult r = residency_make_room(rt, a->mapped);
    if (r == CUDA_SUCCESS) {
        r = map_physical(rt, a);
        if (r != CUDA_SUCCESS)
            log_error("restoring allocation #%llu failed (%s: %s); its data stays on the host",
                      (unsigned long long)a->ordinal,
                      rt->copy.failed_call ? rt->copy.failed_call : "?", cuerr_name(r));
    }
    if (r != CUDA_SUCCESS)
        return r;
    if (a->backup) /* never evicted (mapped for the first time): nothing to copy */
        r = copy_to_device(&rt->copy, a->base, a->backup, a->size);
    if (r == CUDA_SUCCESS)
        r = copy_record(&rt->copy, COPY_TO_DEVICE, &a->ready);
    if (r != CUDA_SUCCESS) {
        /* Nothing may read half-restored memory: give it back, the data stays on the host.
         * Wait for the partial copy first, it still reads the backup and writes the range. */
        copy_drain(&rt->copy, COPY_TO_DEVICE);
        unmap_release(rt, a);
        log_error("restoring allocation #%llu failed (%s: %s)", (unsigned long long)a->ordinal,
                  rt->copy.failed_call ? rt->copy.failed_call : "?", cuerr_name(r));
        return r;
    }
    a->state = RESIDENT;
    a->restore_pending = true;
    a->prefetched = prefetch;
    a->stream_count = 0;
    a->streams_overflow = false;
    count_move(rt, a, false, a->size);
    log_debug("%s allocation #%llu (%.1f MiB at 0x%llx)", prefetch ? "prefetching" : "restoring",
              (unsigned long long)a->ordinal, mib(a->mapped), (unsigned long long)a->base);
    return CUDA_SUCCESS;
}

static bool add_user(struct allocation *a, CUstream stream, uint64_t thread) {
    for (unsigned i = 0; i < a->stream_count; i++)
        if (a->streams[i].stream == stream && a->streams[i].thread == thread)
            return false;
    if (a->stream_count < ALLOCATION_MAX_STREAMS)
        a->streams[a->stream_count++] = (struct stream_use){stream, thread};
    else
        a->streams_overflow = true;
    return true;
}

/* stall_ns: host time a call spent on an allocation that was not ready for it (making
 * room, mapping, queueing its restore, or waiting when the stream is capturing). */
static void count_stall(struct runtime *rt, const struct allocation *a, uint64_t since) {
    uint64_t waited = now_ns() - since;
    struct move_stats *m = components_moves(rt, a->component);
    if (m)
        m->stall_ns += waited;
    rt->stats.total.stall_ns += waited;
}

CUresult residency_use(struct runtime *rt, struct allocation *a, CUstream stream) {
    if (a->state != RESIDENT) {
        uint64_t t0 = now_ns();
        if (a->state == EVICTED)
            rt->stats.demand_restores++;
        CUresult r = residency_restore(rt, a, false);
        count_stall(rt, a, t0);
        if (r != CUDA_SUCCESS)
            return r;
    }
    uint64_t thread = copy_thread_id(stream);
    bool new_user = add_user(a, stream, thread);
    if (a->restore_pending && new_user) {
        if (driver()->cuEventQuery(a->ready) == CUDA_SUCCESS) {
            a->restore_pending = false;
        } else {
            uint64_t t0 = now_ns();
            CUresult r = copy_order_stream(&rt->copy, stream, a->ready);
            count_stall(rt, a, t0);
            if (r != CUDA_SUCCESS) {
                a->stream_count--; /* the stream is not ordered: do not count it as a user */
                log_error("ordering a stream after the restore of allocation #%llu failed "
                          "(%s: %s)",
                          (unsigned long long)a->ordinal,
                          rt->copy.failed_call ? rt->copy.failed_call : "?", cuerr_name(r));
                return r;
            }
        }
    }
    if (a->prefetched) {
        a->prefetched = false;
        if (!a->restore_pending || driver()->cuEventQuery(a->ready) == CUDA_SUCCESS) {
            struct move_stats *m = components_moves(rt, a->component);
            if (m)
                m->prefetch_hits++;
            rt->stats.total.prefetch_hits++;
        }
    }
    a->last_use = ++rt->clock;
    if (!a->readonly)
        a->backup_valid = false;
    return CUDA_SUCCESS;
}

CUresult residency_map_new(struct runtime *rt, struct allocation *a) {
    CUresult r = residency_make_room(rt, a->mapped);
    if (r == CUDA_SUCCESS) {
        r = map_physical(rt, a);
        if (r != CUDA_SUCCESS)
            log_error("allocating %.1f MiB failed (%s: %s)", mib(a->size),
                      rt->copy.failed_call ? rt->copy.failed_call : "?", cuerr_name(r));
    }
    if (r == CUDA_SUCCESS) {
        a->state = RESIDENT;
        a->last_use = ++rt->clock;
    }
    return r;
}

CUresult residency_destroy(struct runtime *rt, struct allocation *a) {
    CUresult r = copy_sync_users(&rt->copy, a);
    if (r != CUDA_SUCCESS)
        r = cuerr_note(&rt->copy.failed_call, "cuCtxSynchronize", driver()->cuCtxSynchronize());
    if (r != CUDA_SUCCESS) {
        /* Work may still use it: keep everything, the program sees the error. */
        log_error("freeing allocation #%llu: cannot wait for its users (%s: %s)",
                  (unsigned long long)a->ordinal, rt->copy.failed_call, cuerr_name(r));
        return r;
    }
    if (a->ready && (a->state != EVICTED || a->restore_pending))
        copy_sync_event(&rt->copy, a->ready);
    if (a->state == EVICTING)
        evicting_drop(rt, a);
    if (a->state != EVICTED)
        unmap_release(rt, a);
    driver()->cuMemAddressFree(a->base, a->mapped);
    if (a->ready)
        driver()->cuEventDestroy_v2(a->ready);
    backup_free(&rt->backups, a->backup, a->size, a->backup_pinned);
    registry_remove(&rt->registry, a);
    components_forget(rt, a);
    rt->stats.tracked_bytes -= a->mapped;
    free(a);
    return r;
}
