/*
 * pools.c — queued frees of tracked stream-ordered memory; the driver pools' reserved
 * bytes in the budget, and trimming them.
 */
#include "runtime/memory/pools.h"

#include "base/log.h"
#include "base/units.h"
#include "base/vec.h"
#include "driver/cuerr.h"
#include "driver/driver.h"
#include "runtime/memory/residency.h"

#include <string.h>

CUresult pools_queue_free(struct runtime *rt, struct allocation *a, CUstream stream) {
    struct pools *p = &rt->pools;
    const struct driver_table *d = driver();
    CUevent ev = NULL;
    CUresult r = VEC_RESERVE(p->frees, p->free_capacity, p->free_count + 1) == 0
                     ? d->cuEventCreate(&ev, CU_EVENT_DISABLE_TIMING)
                     : CUDA_ERROR_OUT_OF_MEMORY;
    if (r == CUDA_SUCCESS)
        r = d->cuEventRecord(ev, stream);
    if (r != CUDA_SUCCESS) {
        /* no event: the free waits on the host, as a synchronous free would */
        if (ev)
            d->cuEventDestroy_v2(ev);
        r = copy_sync_stream(&rt->copy, stream);
        if (r == CUDA_SUCCESS)
            residency_destroy(rt, a);
        return r;
    }
    a->stream_freed = true;
    a->keep = true; /* freed: never moved again */
    p->frees[p->free_count++] = (struct pending_free){a, ev, stream, copy_thread_id(stream), false};
    p->pending_bytes += a->mapped;
    return CUDA_SUCCESS;
}

static void drop_pending(struct pools *p, size_t i) {
    p->pending_bytes -= p->frees[i].alloc->mapped;
    memmove(&p->frees[i], &p->frees[i + 1], (p->free_count - i - 1) * sizeof *p->frees);
    p->free_count--;
}

static void destroy_oldest(struct runtime *rt) {
    struct pools *p = &rt->pools;
    struct pending_free f = p->frees[0];
    drop_pending(p, 0);
    driver()->cuEventDestroy_v2(f.done);
    residency_destroy(rt, f.alloc);
    atomic_store(&rt->tracked_count, rt->registry.count);
}

struct allocation *pools_reuse_freed(struct runtime *rt, size_t bytes, CUstream stream) {
    struct pools *p = &rt->pools;
    size_t mapped = (bytes + rt->granularity - 1) & ~(rt->granularity - 1);
    uint64_t thread = copy_thread_id(stream);
    for (size_t i = 0; i < p->free_count; i++) {
        struct pending_free *f = &p->frees[i];
        struct allocation *a = f->alloc;
        /* only memory still on the device: an evicted one would be restored for nothing */
        if (a->mapped != mapped || a->state != ALLOC_RESIDENT || a->protect_epoch == rt->epoch)
            continue;
        /* on its freeing stream the new user comes after the free; elsewhere only once the
         * free has run (what the driver's pools allow by default) */
        bool ordered = !f->stream_gone && f->stream == stream && f->thread == thread;
        if (!ordered && driver()->cuEventQuery(f->done) != CUDA_SUCCESS)
            continue;
        driver()->cuEventDestroy_v2(f->done);
        drop_pending(p, i);
        if (a->size != bytes) { /* the backup was sized for the old contents */
            backup_free(&rt->backups, a->backup, a->size, a->backup_pinned);
            a->backup = NULL;
        }
        a->size = bytes;
        a->stream_freed = false;
        /* a new allocation: nothing its earlier life's owners said of it holds (a stale
         * readonly would keep a backup "valid" across the new contents' writes) */
        a->keep = false;
        a->readonly = false;
        a->used = false;
        a->prefetched = false;
        a->backup_valid = false;
        a->fingerprint_known = false;
        a->written = true;
        a->protect_epoch = rt->epoch;
        registry_renumber(&rt->registry, a);
        return a;
    }
    return NULL;
}

void pools_forget_stream(struct runtime *rt, CUstream stream) {
    for (size_t i = 0; i < rt->pools.free_count; i++)
        if (rt->pools.frees[i].stream == stream)
            rt->pools.frees[i].stream_gone = true;
}

void pools_reap_frees(struct runtime *rt) {
    /* frees on different streams complete in any order: look at each */
    size_t i = 0;
    while (i < rt->pools.free_count) {
        /* one the current call holds (a launch passing freed memory) waits for a later call */
        if (rt->pools.frees[i].alloc->protect_epoch == rt->epoch ||
            driver()->cuEventQuery(rt->pools.frees[i].done) != CUDA_SUCCESS) {
            i++;
            continue;
        }
        struct pending_free f = rt->pools.frees[i];
        rt->pools.frees[i] = rt->pools.frees[0];
        rt->pools.frees[0] = f;
        destroy_oldest(rt);
    }
}

/* False when the wait failed: the free stays queued, its memory mapped, since the work
 * queued before the free may still use it (unmapping it would fault that work); a later
 * reap destroys it once its event says the free ran. */
static bool wait_oldest(struct runtime *rt) {
    CUresult r = copy_sync_event(&rt->copy, rt->pools.frees[0].done);
    if (r != CUDA_SUCCESS) {
        log_warn("waiting for a stream-ordered free failed (%s); it stays queued", cuerr_name(r));
        return false;
    }
    destroy_oldest(rt);
    return true;
}

void pools_finish_frees(struct runtime *rt) {
    while (rt->pools.free_count && wait_oldest(rt))
        ;
}

void pools_note(struct runtime *rt, CUmemoryPool pool) {
    struct pools *p = &rt->pools;
    for (size_t i = 0; i < p->known_count; i++)
        if (p->known[i].pool == pool)
            return;
    if (VEC_RESERVE(p->known, p->known_capacity, p->known_count + 1) == 0)
        p->known[p->known_count++] = (struct known_pool){pool, 0};
}

static bool pool_attribute(CUmemoryPool pool, CUmemPool_attribute attr, uint64_t *value) {
    cuuint64_t v = 0;
    if (driver()->cuMemPoolGetAttribute(pool, attr, &v) != CUDA_SUCCESS)
        return false;
    *value = v;
    return true;
}

void pools_refresh(struct runtime *rt) {
    struct pools *p = &rt->pools;
    size_t i = 0;
    while (i < p->known_count) {
        struct known_pool *k = &p->known[i];
        uint64_t reserved = 0;
        bool alive = pool_attribute(k->pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT, &reserved);
        budget_sub_untracked(&rt->budget, k->counted);
        k->counted = alive ? reserved : 0;
        budget_add_untracked(&rt->budget, k->counted);
        if (alive) {
            i++;
        } else { /* destroyed: its memory went back */
            p->known[i] = p->known[--p->known_count];
        }
    }
}

/* Releases up to `shortfall` bytes of memory the pools reserved and do not use. */
static void trim_pools(struct runtime *rt, uint64_t shortfall) {
    for (size_t i = 0; i < rt->pools.known_count && shortfall; i++) {
        CUmemoryPool pool = rt->pools.known[i].pool;
        uint64_t reserved = 0, used = 0;
        if (!pool_attribute(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT, &reserved) ||
            !pool_attribute(pool, CU_MEMPOOL_ATTR_USED_MEM_CURRENT, &used) || reserved <= used)
            continue;
        uint64_t unused = reserved - used;
        /* a pool gives memory back in whole chunks and keeps at least what it is asked
         * to: asked to keep all but a few KiB, it releases nothing */
        uint64_t release = (shortfall + rt->granularity - 1) / rt->granularity * rt->granularity;
        uint64_t keep = used + (unused > release ? unused - release : 0);
        CUresult r = driver()->cuMemPoolTrimTo(pool, (size_t)keep);
        if (r != CUDA_SUCCESS) {
            static bool said; /* guarded by the runtime lock; once: the cause of an OOM */
            if (!said)
                log_warn("cannot trim a memory pool (cuMemPoolTrimTo: %s): its unused %.1f MiB "
                         "stay reserved",
                         cuerr_name(r), mib(unused));
            said = true;
            continue;
        }
        uint64_t after = reserved;
        pool_attribute(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT, &after);
        uint64_t released = reserved > after ? reserved - after : 0;
        shortfall = released > shortfall ? 0 : shortfall - released;
        if (released == 0)
            continue; /* nothing it could give back: not a trim worth counting or saying */
        rt->stats.pool_trims++;
        log_debug("trimmed a memory pool: %.1f MiB released", mib(released));
    }
    pools_refresh(rt);
}

void pools_make_room(struct runtime *rt, uint64_t bytes, uint64_t limit) {
    pools_reap_frees(rt);
    if (!rt->pools.known_count && !rt->pools.free_count)
        return;
    pools_refresh(rt);
    uint64_t shortfall = budget_shortfall_under(&rt->budget, bytes, limit);
    if (shortfall && rt->pools.known_count)
        trim_pools(rt, shortfall);
    /* memory already freed in stream order: cheaper to wait for than live data to move */
    while (rt->pools.free_count && rt->pools.frees[0].alloc->protect_epoch != rt->epoch &&
           budget_shortfall_under(&rt->budget, bytes, limit) > rt->evicting_bytes + rt->pool.bytes)
        if (!wait_oldest(rt))
            break; /* live data moves instead */
}

void pools_note_plain(struct runtime *rt, CUmemoryPool pool) {
    struct pools *p = &rt->pools;
    if (!pools_is_plain(rt, pool) &&
        VEC_RESERVE(p->plain, p->plain_capacity, p->plain_count + 1) == 0)
        p->plain[p->plain_count++] = pool;
}

void pools_forget_plain(struct runtime *rt, CUmemoryPool pool) {
    struct pools *p = &rt->pools;
    for (size_t i = 0; i < p->plain_count; i++)
        if (p->plain[i] == pool)
            p->plain[i--] = p->plain[--p->plain_count];
}

bool pools_is_plain(const struct runtime *rt, CUmemoryPool pool) {
    for (size_t i = 0; i < rt->pools.plain_count; i++)
        if (rt->pools.plain[i] == pool)
            return true;
    return false;
}

static struct served_pool *served_of(const struct runtime *rt, CUmemoryPool pool) {
    for (size_t i = 0; i < rt->pools.served_count; i++)
        if (rt->pools.served[i].pool == pool)
            return &rt->pools.served[i];
    return NULL;
}

void pools_serve(struct runtime *rt, CUmemoryPool pool, uint64_t bytes) {
    struct pools *p = &rt->pools;
    struct served_pool *s = served_of(rt, pool);
    if (!s && VEC_RESERVE(p->served, p->served_capacity, p->served_count + 1) == 0) {
        s = &p->served[p->served_count++];
        *s = (struct served_pool){pool, 0, 0};
    }
    if (!s)
        return;
    s->used += bytes;
    if (s->used > s->used_high)
        s->used_high = s->used;
}

void pools_unserve(struct runtime *rt, CUmemoryPool pool, uint64_t bytes) {
    struct served_pool *s = served_of(rt, pool);
    if (s)
        s->used = bytes > s->used ? 0 : s->used - bytes;
}

void pools_adjust_attribute(const struct runtime *rt, CUmemoryPool pool, CUmemPool_attribute attr,
                            void *value) {
    const struct served_pool *s = served_of(rt, pool);
    if (!s || !value)
        return;
    cuuint64_t *v = value;
    switch (attr) {
    case CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT:
    case CU_MEMPOOL_ATTR_USED_MEM_CURRENT:
        *v += s->used;
        break;
    case CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH:
    case CU_MEMPOOL_ATTR_USED_MEM_HIGH:
        *v += s->used_high; /* an upper bound: the two peaks need not coincide */
        break;
    default:
        break;
    }
}

void pools_attribute_set(struct runtime *rt, CUmemoryPool pool, CUmemPool_attribute attr) {
    struct served_pool *s = served_of(rt, pool);
    if (s && (attr == CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH || attr == CU_MEMPOOL_ATTR_USED_MEM_HIGH))
        s->used_high = s->used;
}
