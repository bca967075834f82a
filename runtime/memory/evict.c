/*
 * evict.c — evictions: queueing the copy out (or the clean-eviction check), the EVICTING
 * list, finishing what landed, taking an eviction back. residency.c holds the rest of an
 * allocation's life.
 */
#include "runtime/memory/fingerprint.h"
#include "runtime/memory/residency_internal.h"

#include "base/log.h"
#include "base/units.h"
#include "base/vec.h"
#include "driver/cuerr.h"
#include "driver/driver.h"
#include "runtime/memory/room.h"
#include "runtime/report/trace.h"

#include <string.h>

/* --- the EVICTING list ------------------------------------------------------------- */

/* The list is in the order of the evictions' `ready` on the eviction stream: a push is
 * always of an eviction whose `ready` was just recorded (a check that became a copy goes
 * to the end again). */
static int evicting_push(struct runtime *rt, struct allocation *a) {
    if (VEC_RESERVE(rt->evicting, rt->evicting_capacity, rt->evicting_count + 1) != 0)
        return -1;
    rt->evicting[rt->evicting_count++] = a;
    rt->evicting_bytes += a->mapped;
    return 0;
}

void evict_drop(struct runtime *rt, struct allocation *a) {
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

/* --- finishing ---------------------------------------------------------------------- */

/* An eviction that cannot complete: the bytes are still on the device, and stay there.
 * A copy out may have written part of the backup: its fingerprint is unknown. */
static void eviction_failed(struct runtime *rt, struct allocation *a) {
    evict_drop(rt, a);
    fingerprint_release(rt, a);
    allocation_set_state(a, ALLOC_RESIDENT);
    a->backup_valid = false;
    a->fingerprint_known = false;
    a->protect_epoch = rt->epoch; /* not again in this call */
    rt->stats.failed_evictions++;
    trace_evict_end(a->ordinal, false);
    residency_trace_component(rt, a->component);
}

/* The backup now equals the device bytes: its fingerprint is the one taken beside the
 * copy, if any (a copy without one leaves it unknown; no copy leaves it as it was). */
static void note_backup_taken(struct runtime *rt, struct allocation *a, bool copied) {
    if (a->fp_slot >= 0) {
        fingerprint_result(rt, a, a->fingerprint);
        a->fingerprint_known = true;
        fingerprint_release(rt, a);
    } else if (copied) {
        a->fingerprint_known = false;
    }
    a->backup_valid = true;
    a->written = false;
}

/* EVICTING -> EVICTED, its copy (or its clean check) known complete. The physical memory
 * goes to the pool: a restore in the same call may take it over; the call's end releases
 * the rest. */
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
    evict_drop(rt, a);
    if (a->physical_prop || !handle_pool_put(&rt->pool, a->handle, a->mapped)) {
        driver()->cuMemRelease(a->handle);
        budget_sub_resident(&rt->budget, a->mapped);
    }
    a->handle = 0;
    note_backup_taken(rt, a, !a->backup_valid);
    allocation_set_state(a, ALLOC_EVICTED);
    a->stream_count = 0;
    a->streams_overflow = false;
    trace_evict_end(a->ordinal, true);
    residency_trace_component(rt, a->component);
    log_debug("evicted allocation #%llu (%.1f MiB at 0x%llx)", (unsigned long long)a->ordinal,
              mib(a->mapped), (unsigned long long)a->base);
}

/* A check landed: equal, the device bytes are the backup's and the memory goes with no
 * copy; else the copy out is queued now, behind everything on the eviction stream (which
 * is where a's users were waited for, and nothing has written a since: a use would have
 * taken the eviction back), and a goes to the end of the list. */
static void decide(struct runtime *rt, struct allocation *a) {
    uint64_t now[2];
    fingerprint_result(rt, a, now);
    bool unchanged = now[0] == a->fingerprint[0] && now[1] == a->fingerprint[1];
    fingerprint_checked(rt, a, unchanged);
    if (unchanged) {
        fingerprint_release(rt, a);
        a->backup_valid = true; /* nothing to copy: finish_eviction keeps the fingerprint */
        rt->stats.clean_evictions++;
        rt->stats.clean_bytes += a->size;
        log_debug("allocation #%llu unchanged since its backup: released with no copy",
                  (unsigned long long)a->ordinal);
        finish_eviction(rt, a);
        return;
    }
    CUresult r = copy_to_host(&rt->copy, a->backup, a->base, a->size);
    if (r == CUDA_SUCCESS)
        r = copy_record(&rt->copy, COPY_TO_HOST, &a->ready);
    if (r != CUDA_SUCCESS) {
        /* part of the copy may be queued and reading the range: let it finish before the
         * range is the program's again */
        log_error("copy to host of allocation #%llu failed (%s: %s); it stays on the device",
                  (unsigned long long)a->ordinal, residency_failed_call(rt), cuerr_name(r));
        copy_drain(&rt->copy, COPY_TO_HOST);
        eviction_failed(rt, a);
        return;
    }
    evict_drop(rt, a);
    evicting_push(rt, a); /* cannot fail: into the room it just left */
    allocation_set_evict_step(a, EVICT_COPYING);
    residency_count_bytes_to_host(rt, a, a->size);
    trace_evict_copies(a->ordinal, a->size);
}

/* The head of the list, its `ready` complete: finished, or (a check) decided. */
static void landed(struct runtime *rt, struct allocation *a) {
    if (a->evict_step == EVICT_CHECKING)
        decide(rt, a);
    else
        finish_eviction(rt, a);
}

void residency_reap(struct runtime *rt) {
    while (rt->evicting_count) {
        struct allocation *a = rt->evicting[0];
        if (driver()->cuEventQuery(a->ready) != CUDA_SUCCESS)
            return; /* later ones were queued after it on the same stream */
        landed(rt, a);
    }
}

CUresult residency_reap_oldest(struct runtime *rt) {
    struct allocation *a = rt->evicting[0];
    CUresult r = copy_sync_event(&rt->copy, a->ready);
    if (r != CUDA_SUCCESS) {
        /* The copy failed: the bytes in the backup cannot be trusted. Keep the data. */
        log_error("copy to host of allocation #%llu failed (%s: %s); it stays on the device",
                  (unsigned long long)a->ordinal, residency_failed_call(rt), cuerr_name(r));
        eviction_failed(rt, a);
        return r;
    }
    landed(rt, a); /* a check that became a copy is waited for by a later call */
    return CUDA_SUCCESS;
}

void residency_finish_evictions(struct runtime *rt) {
    while (rt->evicting_count)
        residency_reap_oldest(rt);
}

/* --- starting ----------------------------------------------------------------------- */

/* Orders the eviction stream after a's users (and its restore's copy), then queues what
 * this eviction does: the clean check alone (*step CHECKING), or the copy out (when
 * `copied`) with the fingerprint beside it. `ready` is recorded after it. *reads: some
 * of that, reading a, was queued (a failure after it must wait for it). */
static CUresult queue_eviction(struct runtime *rt, struct allocation *a, uint64_t copied,
                               enum evict_step *step, bool *reads) {
    *reads = false;
    CUresult r = copy_after_users(&rt->copy, a);
    /* Restored (or prefetched) and not yet used: no user stream waited for its restore,
     * and restores run on the other stream. The copy out must not overtake it. */
    if (r == CUDA_SUCCESS && a->state == ALLOC_RESTORING)
        r = copy_after_event(&rt->copy, COPY_TO_HOST, a->ready);
    *step = EVICT_COPYING;
    a->fp_slot = -1;
    if (r == CUDA_SUCCESS && copied) {
        bool check = fingerprint_choose_check(rt, a);
        *reads = fingerprint_queue(rt, a);
        if (*reads && check) {
            *step = EVICT_CHECKING;
        } else {
            *reads = true; /* even a copy that fails may have queued chunks */
            r = copy_to_host(&rt->copy, a->backup, a->base, a->size);
        }
    }
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
        a->fingerprint_known = false;
    }
    uint64_t copied = a->backup_valid ? 0 : a->size;
    bool was_restoring = a->state == ALLOC_RESTORING;
    enum evict_step step;
    bool reads;
    CUresult r = queue_eviction(rt, a, copied, &step, &reads);
    if (r == CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED) {
        log_debug("allocation #%llu cannot be evicted while a capture is open (%s): not "
                  "evicted now",
                  (unsigned long long)a->ordinal, residency_failed_call(rt));
        return r;
    }
    if (r == CUDA_SUCCESS && evicting_push(rt, a) != 0)
        r = CUDA_ERROR_OUT_OF_MEMORY;
    if (r != CUDA_SUCCESS) {
        log_error("evicting allocation #%llu (%.1f MiB) failed (%s: %s); it stays on the device",
                  (unsigned long long)a->ordinal, mib(a->size), residency_failed_call(rt),
                  cuerr_name(r));
        /* a is the program's again at once: its next write would race with what of this
         * eviction was queued and still reads it (fuzz seed 280401280608) */
        if (reads && copy_drain(&rt->copy, COPY_TO_HOST) != CUDA_SUCCESS)
            log_error("waiting for the eviction stream after that failure failed too (%s)",
                      residency_failed_call(rt));
        fingerprint_release(rt, a);
        a->backup_valid = false;
        a->fingerprint_known = false; /* part of a copy may have reached the backup */
        rt->stats.failed_evictions++;
        return r;
    }
    if (was_restoring) /* its copy out is ordered after the restore */
        trace_restore_end(a->ordinal, true);
    allocation_set_evict_step(a, step);
    a->prefetched = false;
    if (step == EVICT_CHECKING)
        copied = 0; /* counted when the check says a copy is needed */
    residency_count_move(rt, a, true, copied);
    trace_evict_begin(a->ordinal, a->component, copied, rt->copy.to_host);
    residency_trace_component(rt, a->component);
    return CUDA_SUCCESS;
}

/* EVICTING -> RESTORING: still mapped, take it back. Its copy out (or check) may still be
 * reading it: as after a restore, every stream that uses it next waits for `ready`, so
 * the program's writes never race with it. The backup is only trusted again for
 * read-only data; a copy that was under way leaves it partly rewritten, so its
 * fingerprint is unknown (a check changes nothing in it). */
void evict_take_back(struct runtime *rt, struct allocation *a) {
    evict_drop(rt, a);
    trace_evict_end(a->ordinal, false); /* the data never left the device */
    if (a->evict_step == EVICT_COPYING && !a->backup_valid)
        a->fingerprint_known = false;
    fingerprint_release(rt, a);
    allocation_set_state(a, ALLOC_RESTORING);
    if (!a->readonly)
        a->backup_valid = false;
    a->stream_count = 0;
    a->streams_overflow = false;
}
