/*
 * pool.c — stream-ordered allocation: memory pools, cuMemAllocAsync,
 * cuMemAllocFromPoolAsync, cuMemFreeAsync, pool attributes, trimming, access.
 *
 * A pool reserves chunks of device memory from memory.c (own arena addresses, counted
 * against SIMCUDA_MEMORY and in peak_device_bytes like any device memory) and hands out
 * page-aligned pieces of them. Every allocation has two lives:
 *  - in API order, from its cuMemAllocAsync call to its cuMemFreeAsync call: what calls
 *    are validated against (a copy queued right after the allocation is legal);
 *  - in stream order, from the point its allocating stream reaches the allocation to the
 *    point the freeing stream reaches the free: what running work is validated against.
 *    Both points are ops queued on the stream (host functions of this file): the first
 *    opens the pages (mprotect read/write, poisoned over the whole piece, fresh or
 *    reused), the second closes them (PROT_NONE). So a copy that runs before the
 *    allocation or after the free fails as one on unmapped memory does (the context is
 *    sticky-broken), and a kernel touching it faults, whichever stream it runs on. For
 *    the race detector both points write the piece, so such a use races with them
 *    whatever the timing.
 * Freed pieces go back to the pool's free list with the free's place in stream order,
 * and a later allocation reuses a piece only as the driver's reuse policies allow:
 *  - freed on the allocating stream, or freed where the host has since synchronized
 *    (stream, event or context synchronize), or never used: always;
 *  - REUSE_FOLLOW_EVENT_DEPENDENCIES: the allocating stream is ordered after the free,
 *    by a cuStreamWaitEvent of an event recorded at or after it, or by the legacy
 *    stream's implicit synchronization with blocking streams of its context;
 *  - REUSE_ALLOW_OPPORTUNISTIC: the free has already run;
 *  - REUSE_ALLOW_INTERNAL_DEPENDENCIES: only when the pool cannot grow (capacity,
 *    maxSize), the allocation is made to wait for the free.
 * Otherwise the pool grows by a chunk (the request rounded up to 2 MiB). Chunks whose
 * pieces are all free, with no alloc or free op still queued, go back to the device on
 * cuMemPoolTrimTo and, above the pool's release threshold, on the next synchronize.
 * Everything here is guarded by the memory map's lock (memory.c), so a copy validated
 * under the read lock never sees an allocation open or close under it, and fork() finds
 * the pools consistent. The record of event waits has a lock of its own, a leaf.
 */
#include "tests/sim/rangevec.h"
#include "tests/sim/sim.h"
#include "tests/sim/strict.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <uthash.h>

#define PAGE 4096u
#define POOL_MAGIC 0x4d504f4cu

struct sim_pool;

/* A chunk of device memory a pool holds. */
struct chunk {
    uintptr_t start;
    size_t size;
    struct sim_pool *pool;
    struct chunk *next; /* the pool's chunks */
    size_t live_bytes;  /* of allocations live in API order */
    unsigned pending;   /* alloc/free ops queued; frees not yet back in the free list */
};

/* Entries of sorted vectors start with [start, end). */
struct freed {
    uintptr_t start, end;
    struct chunk *chunk;
    struct sim_stream *stream; /* of the free; NULL: any stream may reuse it now */
    uint64_t seq;              /* the free's op on that stream */
};

struct alloc {
    uintptr_t start, end; /* end: start + the rounded size */
    struct chunk *chunk;
    uint64_t id;
};

struct span {
    uintptr_t start, end;
    struct chunk *chunk;
};

struct sim_pool {
    unsigned magic;
    int alive, is_default;
    CUmemPoolProps props;
    int follow_events, opportunistic, internal_deps;
    uint64_t threshold, reserved, reserved_high, used, used_high;
    struct chunk *chunks;
    struct vec freed; /* struct freed, by address */
    struct sim_pool *next_pool;
};

static struct sim_pool default_pool = {
    .magic = POOL_MAGIC,
    .alive = 1,
    .is_default = 1,
    .props = {.allocType = CU_MEM_ALLOCATION_TYPE_PINNED,
              .location = {.type = CU_MEM_LOCATION_TYPE_DEVICE, .id = 0}},
    .follow_events = 1,
    .opportunistic = 1,
    .internal_deps = 1,
    .freed = {.elem = sizeof(struct freed)},
};

/* Guarded by the memory map's lock, except `reserved_total` (read without it). */
static struct {
    struct sim_pool *current; /* the device's current pool (NULL: the default one) */
    struct sim_pool *pools;   /* every pool, the default one first */
    struct vec allocs;        /* struct alloc: live in API order */
    struct vec live;          /* struct span: live in stream order */
    uint64_t next_id;
    _Atomic size_t reserved_total; /* 0: no pool holds memory, a synchronize has no work */
} po = {
    .pools = &default_pool,
    .allocs = {.elem = sizeof(struct alloc)},
    .live = {.elem = sizeof(struct span)},
};

/* ---- the record of event waits --------------------------------------------------- */

struct waited {
    struct sim_stream *on;
    uint64_t seq; /* the highest op of `on` the waiter has waited for */
};

struct waits {
    struct sim_stream *waiter;
    struct waited *w;
    size_t n, cap;
    UT_hash_handle hh;
};

/* A leaf lock, never held with another (so its fork() handlers may run in any order
 * relative to core.c's): snapshots are taken before the memory map's lock. */
static pthread_mutex_t waits_lock = PTHREAD_MUTEX_INITIALIZER;
static struct waits *waits_by_stream;

static void waits_prepare(void) {
    pthread_mutex_lock(&waits_lock);
}
static void waits_parent(void) {
    pthread_mutex_unlock(&waits_lock);
}
static void waits_child(void) {
    pthread_mutex_init(&waits_lock, NULL);
}

__attribute__((constructor)) static void pool_init(void) {
    pthread_atfork(waits_prepare, waits_parent, waits_child);
}

void sim_pool_note_wait(struct sim_stream *waiter, struct sim_stream *on, uint64_t seq) {
    pthread_mutex_lock(&waits_lock);
    struct waits *ws = NULL;
    HASH_FIND_PTR(waits_by_stream, &waiter, ws);
    if (!ws && (ws = calloc(1, sizeof *ws)) != NULL) {
        ws->waiter = waiter;
        HASH_ADD_PTR(waits_by_stream, waiter, ws);
    }
    size_t i = 0;
    while (ws && i < ws->n && ws->w[i].on != on)
        i++;
    if (ws && i == ws->n && ws->n == ws->cap) {
        size_t cap = ws->cap ? ws->cap * 2 : 4;
        struct waited *w = realloc(ws->w, cap * sizeof *w);
        if (w) {
            ws->w = w;
            ws->cap = cap;
        }
    }
    if (ws && i < ws->cap) {
        if (i == ws->n)
            ws->w[ws->n++] = (struct waited){on, 0};
        if (seq > ws->w[i].seq)
            ws->w[i].seq = seq;
    }
    pthread_mutex_unlock(&waits_lock);
}

/* A copy of what `waiter` has waited for (freed by the caller), taken before the map's
 * lock so that the waits lock stays a leaf. */
static struct waited *waits_snapshot(struct sim_stream *waiter, size_t *n) {
    struct waited *copy = NULL;
    *n = 0;
    pthread_mutex_lock(&waits_lock);
    struct waits *ws = NULL;
    HASH_FIND_PTR(waits_by_stream, &waiter, ws);
    if (ws && ws->n && (copy = malloc(ws->n * sizeof *copy)) != NULL) {
        memcpy(copy, ws->w, ws->n * sizeof *copy);
        *n = ws->n;
    }
    pthread_mutex_unlock(&waits_lock);
    return copy;
}

/* ---- chunks ---------------------------------------------------------------------- */

static int blocking(const struct sim_stream *s) {
    return !(s->flags & CU_STREAM_NON_BLOCKING);
}

/* Whether work queued on `a` from now on is ordered after op `seq` of `s`: an event
 * wait, or the legacy stream's implicit synchronization with blocking streams. */
static int ordered_after(const struct sim_stream *a, const struct sim_stream *s, uint64_t seq,
                         const struct waited *w, size_t nw) {
    if (a->ctx == s->ctx) {
        if (a->kind == SIM_STREAM_LEGACY && s->kind != SIM_STREAM_LEGACY && blocking(s))
            return 1;
        if (s->kind == SIM_STREAM_LEGACY && a->kind != SIM_STREAM_LEGACY && blocking(a))
            return 1;
    }
    for (size_t i = 0; i < nw; i++)
        if (w[i].on == s && w[i].seq >= seq)
            return 1;
    return 0;
}

enum reuse { REUSE_NO, REUSE_NOW, REUSE_AFTER_FREE };

/* How an allocation on `a` may reuse the free piece `f` of `pool`. */
static enum reuse reuse_of(const struct sim_pool *pool, const struct freed *f,
                           const struct sim_stream *a, const struct waited *w, size_t nw) {
    if (!f->stream || f->stream == a)
        return REUSE_NOW;
    if (pool->follow_events && ordered_after(a, f->stream, f->seq, w, nw))
        return REUSE_NOW;
    if (pool->opportunistic && atomic_load(&f->stream->completed) >= f->seq)
        return REUSE_NOW;
    return pool->internal_deps ? REUSE_AFTER_FREE : REUSE_NO;
}

/* Whether a chunk could go back to the device: nothing allocated, nothing queued. */
static int chunk_idle(const struct chunk *c) {
    return c->live_bytes == 0 && c->pending == 0;
}

static void chunk_release(struct chunk *c) {
    struct sim_pool *pool = c->pool;
    for (size_t i = 0; i < pool->freed.n;) {
        if (((struct freed *)vat(&pool->freed, i))->chunk == c)
            vremove(&pool->freed, i);
        else
            i++;
    }
    for (struct chunk **p = &pool->chunks; *p; p = &(*p)->next) {
        if (*p == c) {
            *p = c->next;
            break;
        }
    }
    sim_mem_chunk_give(c->start, c->size);
    pool->reserved -= c->size;
    atomic_fetch_sub(&po.reserved_total, c->size);
    free(c);
}

/* Gives idle chunks back while the pool keeps at least `keep` bytes reserved. */
static void pool_trim(struct sim_pool *pool, uint64_t keep) {
    struct chunk *c = pool->chunks;
    while (c) {
        struct chunk *next = c->next;
        if (chunk_idle(c) && pool->reserved - c->size >= keep)
            chunk_release(c);
        c = next;
    }
}

/* After an op or a free settled in a chunk: a destroyed pool lets its memory go. */
static void chunk_settled(struct chunk *c) {
    if (!c->pool->alive && chunk_idle(c))
        chunk_release(c);
}

/* A new chunk for at least `need` bytes, its whole extent free; NULL past capacity or the
 * pool's maxSize. */
static struct chunk *pool_grow(struct sim_pool *pool, size_t need) {
    size_t size = (need + SIM_GRANULARITY - 1) & ~(SIM_GRANULARITY - 1);
    if (size < need || (pool->props.maxSize && pool->reserved + size > pool->props.maxSize))
        return NULL;
    struct chunk *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    struct freed f = {0};
    if (sim_mem_chunk_take(size, &c->start) != CUDA_SUCCESS) {
        free(c);
        return NULL;
    }
    c->size = size;
    c->pool = pool;
    f.start = c->start;
    f.end = c->start + size;
    f.chunk = c;
    if (vinsert(&pool->freed, &f) != 0) {
        sim_mem_chunk_give(c->start, size);
        free(c);
        return NULL;
    }
    c->next = pool->chunks;
    pool->chunks = c;
    pool->reserved += size;
    if (pool->reserved > pool->reserved_high)
        pool->reserved_high = pool->reserved;
    atomic_fetch_add(&po.reserved_total, size);
    return c;
}

/* Merges neighbouring free pieces of one chunk that any stream may reuse alike. */
static void coalesce(struct sim_pool *pool) {
    for (size_t i = 0; i + 1 < pool->freed.n;) {
        struct freed *a = vat(&pool->freed, i), *b = vat(&pool->freed, i + 1);
        if (a->chunk == b->chunk && a->end == b->start && a->stream == b->stream) {
            a->end = b->end;
            if (b->seq > a->seq)
                a->seq = b->seq; /* one stream: the later free is the later point */
            vremove(&pool->freed, i + 1);
        } else {
            i++;
        }
    }
}

/* Index of the first free piece of at least `need` bytes reusable as `want`, or -1. */
static long find_piece(const struct sim_pool *pool, size_t need, enum reuse want,
                       const struct sim_stream *a, const struct waited *w, size_t nw) {
    for (size_t i = 0; i < pool->freed.n; i++) {
        const struct freed *f = vat(&pool->freed, i);
        if (f->end - f->start >= need && reuse_of(pool, f, a, w, nw) == want)
            return (long)i;
    }
    return -1;
}

/* ---- ops in stream order --------------------------------------------------------- */

struct pool_op {
    int is_free;
    uintptr_t start;
    size_t bytes;
    struct chunk *chunk;
};

/* Runs on the stream's worker when the stream reaches the allocation or the free. */
static void pool_op_run(void *data) {
    struct pool_op *o = data;
    /* both points write the whole piece for the race detector: work on another stream
     * not ordered after the allocation, or not ordered before the free, races with it */
    (void)sim_race_running_write(o->start, o->bytes);
    sim_mem_write_lock();
    if (!o->is_free) {
        struct span sp = {o->start, o->start + o->bytes, o->chunk};
        mprotect((void *)o->start, o->bytes, PROT_READ | PROT_WRITE);
        /* fresh or reused: poison over the whole piece, nothing written yet */
        sim_poison_fill((void *)o->start, o->bytes);
        sim_shadow_fresh(o->start, o->bytes);
        vinsert(&po.live, &sp);
    } else {
        long i = vfind(&po.live, o->start);
        if (i >= 0)
            vremove(&po.live, (size_t)i);
        mprotect((void *)o->start, o->bytes, PROT_NONE);
    }
    o->chunk->pending--;
    chunk_settled(o->chunk);
    sim_mem_write_unlock();
    free(o);
}

static struct sim_op *pool_op_new(int is_free) {
    struct pool_op *o = calloc(1, sizeof *o);
    struct sim_op *op = o ? sim_op_new(SIM_OP_HOSTFN) : NULL;
    if (!op) {
        free(o);
        return NULL;
    }
    o->is_free = is_free;
    op->u.hostfn.fn = pool_op_run;
    op->u.hostfn.data = o;
    return op;
}

static void pool_op_drop(struct sim_op *op) {
    free(op->u.hostfn.data);
    sim_op_free(op);
}

/* ---- allocation and free --------------------------------------------------------- */

static struct sim_pool *pool_of(CUmemoryPool h) {
    struct sim_pool *p = (struct sim_pool *)h;
    return p && p->magic == POOL_MAGIC && p->alive ? p : NULL;
}

/* With the write lock held: takes `need` bytes for an allocation on `a` (which has
 * waited for `w`) from `pool`, in the driver's order of preference; fills the op (and
 * its dependency). *after: the stream of the free the piece is reused after (NULL: none),
 * whose clock the caller joins to op once the lock is released (streams come before the
 * memory map in the lock order: a synchronous copy holds its stream while it copies). */
static CUresult pool_take(struct sim_pool *pool, size_t need, struct sim_stream *a,
                          const struct waited *w, size_t nw, struct sim_op *op, uintptr_t *out,
                          struct sim_stream **after) {
    coalesce(pool);
    long i = find_piece(pool, need, REUSE_NOW, a, w, nw);
    if (i < 0 && pool_grow(pool, need))
        i = find_piece(pool, need, REUSE_NOW, a, w, nw);
    if (i < 0) {
        pool_trim(pool, 0); /* memory nobody may reuse yet is better given back */
        if (pool_grow(pool, need))
            i = find_piece(pool, need, REUSE_NOW, a, w, nw);
    }
    if (i < 0 && (i = find_piece(pool, need, REUSE_AFTER_FREE, a, w, nw)) >= 0) {
        const struct freed *f = vat(&pool->freed, (size_t)i);
        if (sim_op_add_dep(op, f->stream, f->seq) != 0)
            i = -1;
    }
    if (i < 0)
        return CUDA_ERROR_OUT_OF_MEMORY;
    struct freed *f = vat(&pool->freed, (size_t)i);
    /* Reuse is ordered after the free: on its stream, through an event wait, because the
     * free has run, or by the dependency just added. The race detector learns it (the
     * freeing stream's clock, at least as late as the free; the caller joins it). */
    struct alloc al = {f->start, f->start + need, f->chunk, ++po.next_id};
    if (vinsert(&po.allocs, &al) != 0)
        return CUDA_ERROR_OUT_OF_MEMORY;
    struct pool_op *o = op->u.hostfn.data;
    o->start = f->start;
    o->bytes = need;
    o->chunk = f->chunk;
    *after = f->stream;
    f->start += need;
    if (f->start == f->end)
        vremove(&pool->freed, (size_t)i);
    al.chunk->live_bytes += need;
    al.chunk->pending++;
    pool->used += need;
    if (pool->used > pool->used_high)
        pool->used_high = pool->used;
    *out = al.start;
    return CUDA_SUCCESS;
}

static CUresult alloc_async(CUdeviceptr *dptr, size_t bytesize, struct sim_pool *pool, CUstream h,
                            int per_thread) {
    if (!dptr || bytesize == 0)
        return CUDA_ERROR_INVALID_VALUE;
    struct sim_stream *s;
    CUresult r = sim_stream_resolve(h, per_thread, &s);
    if (r != CUDA_SUCCESS)
        return r;
    if (sim_stream_is_capturing(s)) {
        sim_log("simcuda: stream-ordered allocation during capture is not simulated");
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    size_t need = (bytesize + PAGE - 1) & ~(size_t)(PAGE - 1);
    if (need < bytesize)
        return CUDA_ERROR_OUT_OF_MEMORY;
    struct sim_op *op = pool_op_new(0);
    if (!op)
        return CUDA_ERROR_OUT_OF_MEMORY;
    uintptr_t at = 0;
    size_t nw;
    struct sim_stream *after = NULL;
    struct waited *w = waits_snapshot(s, &nw); /* before the map's lock: a leaf */
    sim_mem_write_lock();
    if (!pool)
        pool = po.current ? po.current : &default_pool;
    r = pool->alive ? pool_take(pool, need, s, w, nw, op, &at, &after) : CUDA_ERROR_INVALID_VALUE;
    sim_mem_write_unlock();
    free(w);
    if (r != CUDA_SUCCESS) {
        pool_op_drop(op);
        return r;
    }
    if (after)
        sim_race_op_join_stream(op, after);
    sim_submit(s, op);
    *dptr = (CUdeviceptr)at;
    return CUDA_SUCCESS;
}

/* With the write lock held: the allocation starting exactly at p leaves API order. */
static struct chunk *alloc_remove(uintptr_t p, size_t *bytes) {
    long i = vfind(&po.allocs, p);
    if (i < 0)
        return NULL;
    struct alloc *al = vat(&po.allocs, (size_t)i);
    if (al->start != p)
        return NULL;
    struct chunk *c = al->chunk;
    *bytes = al->end - al->start;
    vremove(&po.allocs, (size_t)i);
    c->live_bytes -= *bytes;
    c->pool->used -= *bytes;
    return c;
}

static CUresult free_async(CUdeviceptr dptr, CUstream h, int per_thread) {
    struct sim_stream *s;
    CUresult r = sim_stream_resolve(h, per_thread, &s);
    if (r != CUDA_SUCCESS)
        return r;
    if (sim_stream_is_capturing(s))
        return CUDA_ERROR_NOT_SUPPORTED;
    struct sim_op *op = pool_op_new(1);
    if (!op)
        return CUDA_ERROR_OUT_OF_MEMORY;
    size_t bytes = 0;
    sim_mem_write_lock();
    struct chunk *c = dptr ? alloc_remove(dptr, &bytes) : NULL;
    if (c)
        c->pending += 2; /* the op, and the piece until it is back in the free list */
    sim_mem_write_unlock();
    if (!c) {
        pool_op_drop(op);
        return CUDA_ERROR_INVALID_VALUE;
    }
    struct pool_op *o = op->u.hostfn.data;
    o->start = dptr;
    o->bytes = bytes;
    o->chunk = c;
    struct freed f = {dptr, dptr + bytes, c, s, 0};
    f.seq = sim_submit(s, op);
    sim_mem_write_lock();
    if (vinsert(&c->pool->freed, &f) != 0) {
        /* no memory for the list: the piece is lost to the pool until it is destroyed */
    }
    c->pending--;
    chunk_settled(c);
    sim_mem_write_unlock();
    return CUDA_SUCCESS;
}

CUresult sim_pool_free_now_locked(uintptr_t p) {
    size_t bytes = 0;
    struct chunk *c = alloc_remove(p, &bytes);
    if (!c)
        return CUDA_ERROR_INVALID_VALUE;
    long i = vfind(&po.live, p);
    if (i >= 0)
        vremove(&po.live, (size_t)i);
    mprotect((void *)p, bytes, PROT_NONE);
    struct freed f = {p, p + bytes, c, NULL, 0};
    vinsert(&c->pool->freed, &f);
    chunk_settled(c);
    return CUDA_SUCCESS;
}

/* ---- queries from memory.c and pointer.c ----------------------------------------- */

CUresult sim_pool_check_locked(uintptr_t p, size_t n, int at_call) {
    const struct vec *v = at_call ? &po.allocs : &po.live;
    long i = vfind(v, p);
    return i >= 0 && p + n <= ((const uintptr_t *)vat(v, (size_t)i))[1] ? CUDA_SUCCESS
                                                                        : CUDA_ERROR_INVALID_VALUE;
}

int sim_pool_range_locked(uintptr_t p, uintptr_t *base, size_t *size, uint64_t *id) {
    long i = vfind(&po.allocs, p);
    if (i < 0)
        return -1;
    const struct alloc *al = vat(&po.allocs, (size_t)i);
    *base = al->start;
    *size = al->end - al->start;
    *id = al->id;
    return 0;
}

int sim_pool_live_extent_locked(uintptr_t p, uintptr_t *start, uintptr_t *end) {
    long i = vfind(&po.live, p);
    if (i < 0)
        return -1;
    const struct span *sp = vat(&po.live, (size_t)i);
    *start = sp->start;
    *end = sp->end;
    return 0;
}

CUmemoryPool sim_pool_of_locked(uintptr_t p) {
    long i = vfind(&po.allocs, p);
    return i >= 0 ? (CUmemoryPool)((struct alloc *)vat(&po.allocs, (size_t)i))->chunk->pool : NULL;
}

void sim_pool_synced(struct sim_stream *s, uint64_t seq) {
    if (atomic_load(&po.reserved_total) == 0)
        return; /* no pool holds memory: nothing to release or to make reusable */
    sim_mem_write_lock();
    for (struct sim_pool *pool = po.pools; pool; pool = pool->next_pool) {
        for (size_t i = 0; i < pool->freed.n; i++) {
            struct freed *f = vat(&pool->freed, i);
            if (f->stream && (s ? f->stream == s && f->seq <= seq
                                : atomic_load(&f->stream->completed) >= f->seq))
                f->stream = NULL; /* the host has seen the free: anyone may reuse it */
        }
        if (pool->reserved > pool->threshold)
            pool_trim(pool, pool->threshold);
    }
    sim_mem_write_unlock();
}

/* ---- entry points: allocation ---------------------------------------------------- */

SIM_API CUresult cuMemAllocAsync(CUdeviceptr *dptr, size_t bytesize, CUstream hStream) {
    SIM_ENTER("cuMemAllocAsync");
    return alloc_async(dptr, bytesize, NULL, hStream, 0);
}
SIM_API CUresult cuMemAllocAsync_ptsz(CUdeviceptr *dptr, size_t bytesize, CUstream hStream) {
    SIM_ENTER("cuMemAllocAsync_ptsz");
    return alloc_async(dptr, bytesize, NULL, hStream, 1);
}

SIM_API CUresult cuMemAllocFromPoolAsync(CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool,
                                         CUstream hStream) {
    SIM_ENTER("cuMemAllocFromPoolAsync");
    struct sim_pool *p = pool_of(pool);
    return p ? alloc_async(dptr, bytesize, p, hStream, 0) : CUDA_ERROR_INVALID_VALUE;
}
SIM_API CUresult cuMemAllocFromPoolAsync_ptsz(CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool,
                                              CUstream hStream) {
    SIM_ENTER("cuMemAllocFromPoolAsync_ptsz");
    struct sim_pool *p = pool_of(pool);
    return p ? alloc_async(dptr, bytesize, p, hStream, 1) : CUDA_ERROR_INVALID_VALUE;
}

SIM_API CUresult cuMemFreeAsync(CUdeviceptr dptr, CUstream hStream) {
    SIM_ENTER("cuMemFreeAsync");
    return free_async(dptr, hStream, 0);
}
SIM_API CUresult cuMemFreeAsync_ptsz(CUdeviceptr dptr, CUstream hStream) {
    SIM_ENTER("cuMemFreeAsync_ptsz");
    return free_async(dptr, hStream, 1);
}

/* ---- entry points: pools --------------------------------------------------------- */

static int props_zero(const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

SIM_API CUresult cuMemPoolCreate(CUmemoryPool *pool, const CUmemPoolProps *props) {
    SIM_ENTER("cuMemPoolCreate");
    if (!pool || !props || props->allocType != CU_MEM_ALLOCATION_TYPE_PINNED ||
        props->win32SecurityAttributes || !props_zero(props->reserved, sizeof props->reserved))
        return CUDA_ERROR_INVALID_VALUE;
    if (props->location.type == CU_MEM_LOCATION_TYPE_HOST ||
        props->location.type == CU_MEM_LOCATION_TYPE_HOST_NUMA)
        return CUDA_ERROR_NOT_SUPPORTED; /* host pools are not simulated */
    if (props->location.type != CU_MEM_LOCATION_TYPE_DEVICE)
        return CUDA_ERROR_INVALID_VALUE;
    if (props->location.id != 0)
        return CUDA_ERROR_INVALID_DEVICE;
    if (props->handleTypes != CU_MEM_HANDLE_TYPE_NONE || props->usage)
        return CUDA_ERROR_NOT_SUPPORTED; /* no IPC, no decompression in the simulator */
    struct sim_pool *p = calloc(1, sizeof *p);
    if (!p)
        return CUDA_ERROR_OUT_OF_MEMORY;
    p->magic = POOL_MAGIC;
    p->alive = 1;
    p->props = *props;
    p->follow_events = p->opportunistic = p->internal_deps = 1;
    p->freed.elem = sizeof(struct freed);
    sim_mem_write_lock();
    p->next_pool = default_pool.next_pool; /* pool structs are never freed */
    default_pool.next_pool = p;
    sim_mem_write_unlock();
    *pool = (CUmemoryPool)p;
    return CUDA_SUCCESS;
}

SIM_API CUresult cuMemPoolDestroy(CUmemoryPool pool) {
    SIM_ENTER("cuMemPoolDestroy");
    CUresult r = CUDA_ERROR_INVALID_VALUE;
    sim_mem_write_lock();
    struct sim_pool *p = pool_of(pool);
    if (p && !p->is_default) {
        /* outstanding allocations stay valid; their chunks go when they are freed */
        p->alive = 0;
        if (po.current == p)
            po.current = NULL;
        pool_trim(p, 0);
        r = CUDA_SUCCESS;
    }
    sim_mem_write_unlock();
    return r;
}

SIM_API CUresult cuMemPoolTrimTo(CUmemoryPool pool, size_t minBytesToKeep) {
    SIM_ENTER("cuMemPoolTrimTo");
    CUresult r = CUDA_ERROR_INVALID_VALUE;
    sim_mem_write_lock();
    struct sim_pool *p = pool_of(pool);
    if (p) {
        pool_trim(p, minBytesToKeep);
        r = CUDA_SUCCESS;
    }
    sim_mem_write_unlock();
    return r;
}

SIM_API CUresult cuMemPoolSetAttribute(CUmemoryPool pool, CUmemPool_attribute attr, void *value) {
    SIM_ENTER("cuMemPoolSetAttribute");
    if (!value)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult r = CUDA_SUCCESS;
    sim_mem_write_lock();
    struct sim_pool *p = pool_of(pool);
    int flag = *(const int *)value != 0;
    cuuint64_t v64 = attr >= CU_MEMPOOL_ATTR_RELEASE_THRESHOLD ? *(const cuuint64_t *)value : 0;
    if (!p)
        r = CUDA_ERROR_INVALID_VALUE;
    else if (attr == CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES)
        p->follow_events = flag;
    else if (attr == CU_MEMPOOL_ATTR_REUSE_ALLOW_OPPORTUNISTIC)
        p->opportunistic = flag;
    else if (attr == CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES)
        p->internal_deps = flag;
    else if (attr == CU_MEMPOOL_ATTR_RELEASE_THRESHOLD)
        p->threshold = v64;
    else if (attr == CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH && v64 == 0)
        p->reserved_high = p->reserved; /* only a reset to zero is legal */
    else if (attr == CU_MEMPOOL_ATTR_USED_MEM_HIGH && v64 == 0)
        p->used_high = p->used;
    else
        r = CUDA_ERROR_INVALID_VALUE; /* the current figures are read-only */
    sim_mem_write_unlock();
    return r;
}

SIM_API CUresult cuMemPoolGetAttribute(CUmemoryPool pool, CUmemPool_attribute attr, void *value) {
    SIM_ENTER("cuMemPoolGetAttribute");
    if (!value)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult r = CUDA_SUCCESS;
    sim_mem_read_lock();
    struct sim_pool *p = pool_of(pool);
    if (!p)
        r = CUDA_ERROR_INVALID_VALUE;
    else if (attr == CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES)
        *(int *)value = p->follow_events;
    else if (attr == CU_MEMPOOL_ATTR_REUSE_ALLOW_OPPORTUNISTIC)
        *(int *)value = p->opportunistic;
    else if (attr == CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES)
        *(int *)value = p->internal_deps;
    else if (attr == CU_MEMPOOL_ATTR_RELEASE_THRESHOLD)
        *(cuuint64_t *)value = p->threshold;
    else if (attr == CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT)
        *(cuuint64_t *)value = p->reserved;
    else if (attr == CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH)
        *(cuuint64_t *)value = p->reserved_high;
    else if (attr == CU_MEMPOOL_ATTR_USED_MEM_CURRENT)
        *(cuuint64_t *)value = p->used;
    else if (attr == CU_MEMPOOL_ATTR_USED_MEM_HIGH)
        *(cuuint64_t *)value = p->used_high;
    else
        r = CUDA_ERROR_INVALID_VALUE;
    sim_mem_read_unlock();
    return r;
}

/* The one device always has read/write access to its pools' memory; there is no other
 * device to grant access to. */
static CUresult access_location(const CUmemLocation *loc) {
    if (loc->type != CU_MEM_LOCATION_TYPE_DEVICE)
        return CUDA_ERROR_INVALID_VALUE;
    return loc->id == 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_DEVICE;
}

SIM_API CUresult cuMemPoolSetAccess(CUmemoryPool pool, const CUmemAccessDesc *map, size_t count) {
    SIM_ENTER("cuMemPoolSetAccess");
    if (!map || count == 0)
        return CUDA_ERROR_INVALID_VALUE;
    sim_mem_read_lock();
    int valid = pool_of(pool) != NULL;
    sim_mem_read_unlock();
    if (!valid)
        return CUDA_ERROR_INVALID_VALUE;
    for (size_t i = 0; i < count; i++) {
        CUresult r = access_location(&map[i].location);
        if (r != CUDA_SUCCESS)
            return r;
        /* the owning device's access cannot be taken away */
        if (map[i].flags != CU_MEM_ACCESS_FLAGS_PROT_READWRITE)
            return CUDA_ERROR_INVALID_VALUE;
    }
    return CUDA_SUCCESS;
}

SIM_API CUresult cuMemPoolGetAccess(CUmemAccess_flags *flags, CUmemoryPool memPool,
                                    CUmemLocation *location) {
    SIM_ENTER("cuMemPoolGetAccess");
    if (!flags || !location)
        return CUDA_ERROR_INVALID_VALUE;
    sim_mem_read_lock();
    int valid = pool_of(memPool) != NULL;
    sim_mem_read_unlock();
    if (!valid)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult r = access_location(location);
    if (r == CUDA_SUCCESS)
        *flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
    return r;
}

/* ---- entry points: the device's pools -------------------------------------------- */

static CUresult default_pool_get(CUmemoryPool *pool_out, CUdevice dev) {
    if (!pool_out)
        return CUDA_ERROR_INVALID_VALUE;
    if (dev != 0)
        return CUDA_ERROR_INVALID_DEVICE;
    *pool_out = (CUmemoryPool)&default_pool;
    return CUDA_SUCCESS;
}

static CUresult current_pool_get(CUmemoryPool *pool, CUdevice dev) {
    if (!pool)
        return CUDA_ERROR_INVALID_VALUE;
    if (dev != 0)
        return CUDA_ERROR_INVALID_DEVICE;
    sim_mem_read_lock();
    *pool = (CUmemoryPool)(po.current ? po.current : &default_pool);
    sim_mem_read_unlock();
    return CUDA_SUCCESS;
}

static CUresult current_pool_set(CUdevice dev, CUmemoryPool pool) {
    if (dev != 0)
        return CUDA_ERROR_INVALID_DEVICE;
    CUresult r = CUDA_ERROR_INVALID_VALUE;
    sim_mem_write_lock();
    struct sim_pool *p = pool_of(pool);
    if (p) {
        po.current = p->is_default ? NULL : p;
        r = CUDA_SUCCESS;
    }
    sim_mem_write_unlock();
    return r;
}

SIM_API CUresult cuDeviceGetDefaultMemPool(CUmemoryPool *pool_out, CUdevice dev) {
    SIM_ENTER("cuDeviceGetDefaultMemPool");
    return default_pool_get(pool_out, dev);
}

SIM_API CUresult cuDeviceGetMemPool(CUmemoryPool *pool, CUdevice dev) {
    SIM_ENTER("cuDeviceGetMemPool");
    return current_pool_get(pool, dev);
}

SIM_API CUresult cuDeviceSetMemPool(CUdevice dev, CUmemoryPool pool) {
    SIM_ENTER("cuDeviceSetMemPool");
    return current_pool_set(dev, pool);
}

/* The CUDA 13 forms, by location and allocation type: device 0's pinned pools only. */
static CUresult location_pinned_device(const CUmemLocation *loc, CUmemAllocationType type) {
    if (!loc)
        return CUDA_ERROR_INVALID_VALUE;
    if (type == CU_MEM_ALLOCATION_TYPE_MANAGED || loc->type == CU_MEM_LOCATION_TYPE_HOST ||
        loc->type == CU_MEM_LOCATION_TYPE_HOST_NUMA)
        return CUDA_ERROR_NOT_SUPPORTED; /* managed and host pools are not simulated */
    if (type != CU_MEM_ALLOCATION_TYPE_PINNED || loc->type != CU_MEM_LOCATION_TYPE_DEVICE)
        return CUDA_ERROR_INVALID_VALUE;
    return loc->id == 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_DEVICE;
}

SIM_API CUresult cuMemGetDefaultMemPool(CUmemoryPool *pool_out, CUmemLocation *location,
                                        CUmemAllocationType type) {
    SIM_ENTER("cuMemGetDefaultMemPool");
    CUresult r = location_pinned_device(location, type);
    return r != CUDA_SUCCESS ? r : default_pool_get(pool_out, 0);
}

SIM_API CUresult cuMemGetMemPool(CUmemoryPool *pool, CUmemLocation *location,
                                 CUmemAllocationType type) {
    SIM_ENTER("cuMemGetMemPool");
    CUresult r = location_pinned_device(location, type);
    return r != CUDA_SUCCESS ? r : current_pool_get(pool, 0);
}

SIM_API CUresult cuMemSetMemPool(CUmemLocation *location, CUmemAllocationType type,
                                 CUmemoryPool pool) {
    SIM_ENTER("cuMemSetMemPool");
    CUresult r = location_pinned_device(location, type);
    return r != CUDA_SUCCESS ? r : current_pool_set(0, pool);
}
