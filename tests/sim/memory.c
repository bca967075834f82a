/*
 * memory.c — device memory of the simulated driver.
 *
 * Every device address lies in one arena reserved PROT_NONE at start-up; addresses are
 * handed out by a bump pointer and never reused, so a stale device pointer can never
 * alias newer memory, and "is this a device pointer" is a range test. Inside the arena:
 *  - cuMemAlloc: an anonymous read/write mapping of its own (2 MiB aligned and eligible
 *    for transparent huge pages from 2 MiB up), followed by a guard page; freed, it goes
 *    back to PROT_NONE;
 *  - cuMemAddressReserve: a granule-aligned PROT_NONE range (followed by a guard granule);
 *    cuMemCreate takes an extent of the physical pool (below), cuMemMap moves its pages
 *    there with no access, cuMemSetAccess mprotects and prefaults, cuMemUnmap moves them
 *    back and puts PROT_NONE back.
 * Physical memory behaves like a GPU's: mapping it is a page-table update, and it never
 * page-faults once it has been touched. The pool is one window of private anonymous
 * memory (2 MiB aligned, MADV_HUGEPAGE) where every extent keeps its pages at its home
 * offset while it is not mapped. cuMemMap mremaps the pages from home to the address and
 * cuMemUnmap mremaps them home again: the page-table entries (2 MiB ones when the kernel
 * gave huge pages) move with them, so the first copy into a fresh mapping runs at the
 * speed of the second. (On this kind of VM every new 4 KiB page-table entry costs
 * microseconds on its first access, whatever was prefaulted: a memfd mapped afresh paid
 * that at every cuMemMap.) Home is always PROT_NONE: an extent's pages reach the address
 * with no access, and a hole left at home stays reserved, so nothing else lands there.
 * Released extents stay in the pool with their pages, and the next cuMemCreate reuses
 * them (first fit). Every extent, fresh or reused, is poisoned over its whole length
 * when it is handed out (poison.c), as is every cuMemAlloc, so a restore that forgot to
 * copy reads poison, not zeros or an old allocation's bytes.
 * Pages can be in one place only: a handle range mapped a second time while it is mapped
 * (aliasing) turns the handle into a memfd of its own (bytes copied in, its mappings
 * re-made MAP_SHARED from it), mapped and unmapped the old way from then on.
 * The memory map (regions, mappings) is what copies are validated against: a copy never
 * touches device memory the map does not show as accessible. Physical bytes (cuMemCreate
 * until released and unmapped, cuMemAlloc until freed) count against SIMCUDA_MEMORY.
 */
#include "tests/sim/rangevec.h"
#include "tests/sim/sim.h"
#include "tests/sim/strict.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <uthash.h>

#define PAGE 4096u
#define PHYS_MAGIC 0x50485953u

/* REGION_POOL: a chunk of a stream-ordered pool; what lies inside is pool.c's to say. */
enum region_kind { REGION_ALLOC = 1, REGION_RESERVED = 2, REGION_POOL = 3 };
enum host_kind { HOST_ALLOCATED = 1, HOST_REGISTERED = 2 };

/* Entries of a sorted vector start with [start, end). */
struct region {
    uintptr_t start, end; /* end: start + requested size */
    enum region_kind kind;
    uint64_t id;
};

struct pool;

/* Physical memory. Anonymous (fd < 0): its pages live at home (pool->window + home) and
 * move to wherever a piece of it is mapped. Shared (fd >= 0): a memfd of its own, mapped
 * MAP_SHARED; that is a handle that was aliased, or one the pool had no room for (then it
 * has no home: pool == NULL). */
struct phys {
    uint64_t handle;
    size_t size;
    int fd;
    struct pool *pool; /* the pool holding its home extent, or NULL */
    size_t home;       /* offset of the extent in pool->window */
    int maps;          /* mapping pieces showing it */
    int refs;          /* the program's: 1 from cuMemCreate, +1 a retain, -1 a release */
    CUmemAllocationHandleType handle_types; /* requested at cuMemCreate */
    UT_hash_handle hh;
};

struct mapping {
    uintptr_t start, end;
    int prot;
    struct phys *ph;
    size_t offset;                /* of this piece's first byte in ph */
    uintptr_t map_start, map_end; /* the cuMemMap call this piece belongs to */
};

struct hostrange {
    uintptr_t start, end;
    enum host_kind kind;
    size_t mapped; /* bytes mmapped for HOST_ALLOCATED */
    unsigned flags;
};

/* Free extents of the pool: [start, end) offsets in its window. */
struct extent {
    uintptr_t start, end;
};

/* The physical memory pool: a window of `size` bytes of private anonymous memory, always
 * PROT_NONE, reserved without commitment (pages exist only once touched). Offsets below
 * `bump` have been handed out at least once; `free` holds those released since (sorted,
 * coalesced). Guarded by mem.lock. */
struct pool {
    unsigned char *window;
    size_t size, bump;
    struct vec free;
};

/* The map's lock starts here; a forked child switches to a lock of its own (below). */
static pthread_rwlock_t mem_first_lock = PTHREAD_RWLOCK_INITIALIZER;

static struct {
    pthread_rwlock_t *lock;
    uintptr_t arena, arena_end, bump;
    size_t capacity, used, peak;
    uint64_t next_id;
    struct vec regions, maps, host;
    struct phys *phys; /* by handle */
    struct pool *pool; /* created by the first cuMemCreate */
    int no_dontunmap;  /* mremap refused MREMAP_DONTUNMAP once: move without it */
} mem = {
    .lock = &mem_first_lock,
    .regions = {.elem = sizeof(struct region)},
    .maps = {.elem = sizeof(struct mapping)},
    .host = {.elem = sizeof(struct hostrange)},
};

/* ---- arena and capacity ---------------------------------------------------------- */

/* fork() (sim.h): the map is taken for writing, so no copy is mid-way and the child's
 * vectors are consistent; the child, whose thread glibc does not take for the recorded
 * writer, starts with a fresh lock instead of unlocking. */
void sim_memory_atfork(enum sim_fork_phase phase) {
    if (phase == SIM_FORK_PREPARE)
        pthread_rwlock_wrlock(mem.lock);
    else if (phase == SIM_FORK_PARENT)
        pthread_rwlock_unlock(mem.lock);
    else {
        /* glibc cannot unlock a write lock taken by the parent's thread (the child's tid
         * differs), and re-initialising a locked rwlock in place is what ThreadSanitizer
         * (rightly) cannot follow: the child gets a lock object of its own. If it cannot
         * be had, re-initialise in place as a last resort. */
        pthread_rwlock_t *fresh = malloc(sizeof *fresh);
        if (fresh)
            mem.lock = fresh;
        pthread_rwlock_init(mem.lock, NULL);
        /* The pool is private memory: the child's copy is copy-on-write, so whatever it
         * maps, moves or poisons is its own and never the parent's. (A handle that became
         * a memfd by aliasing stays shared with the parent, as any MAP_SHARED memory.) */
    }
}

/* At the first cuInit, so a program (or test) may still set SIMCUDA_MEMORY in main. */
void sim_memory_configure(void) {
    size_t cap = (size_t)4 << 30;
    const char *v = getenv("SIMCUDA_MEMORY");
    if (v && *v && sim_parse_size(v, &cap) != 0) {
        fprintf(stderr, "simcuda: SIMCUDA_MEMORY='%s' is not a size; using 4GiB\n", v);
        cap = (size_t)4 << 30;
    }
    pthread_rwlock_wrlock(mem.lock);
    mem.capacity = cap;
    pthread_rwlock_unlock(mem.lock);
}

void sim_memory_init(void) {
    mem.capacity = (size_t)4 << 30;
    /* As large as the address space allows (sanitizers restrict it). */
    for (size_t size = (size_t)1 << 42; size >= ((size_t)16 << 30); size >>= 1) {
        void *p = mmap(NULL, size + SIM_GRANULARITY, PROT_NONE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED)
            continue;
        uintptr_t a = ((uintptr_t)p + SIM_GRANULARITY - 1) & ~(uintptr_t)(SIM_GRANULARITY - 1);
        mem.arena = a;
        mem.arena_end = a + size;
        mem.bump = a + SIM_GRANULARITY; /* never hand out the arena's first granule */
        return;
    }
    fprintf(stderr, "simcuda: cannot reserve a device address arena\n");
}

size_t sim_memory_capacity(void) {
    return mem.capacity;
}

size_t sim_memory_peak(void) {
    pthread_rwlock_rdlock(mem.lock);
    size_t p = mem.peak;
    pthread_rwlock_unlock(mem.lock);
    return p;
}

/* With the write lock held. */
static CUresult charge(size_t n) {
    if (n > mem.capacity - mem.used)
        return CUDA_ERROR_OUT_OF_MEMORY;
    mem.used += n;
    if (mem.used > mem.peak)
        mem.peak = mem.used;
    return CUDA_SUCCESS;
}

static void uncharge(size_t n) {
    mem.used -= n;
}

/* With the write lock held: `size` bytes of arena at `align`, plus `guard` after. */
static uintptr_t arena_take(size_t size, size_t align, size_t guard) {
    uintptr_t a = (mem.bump + align - 1) & ~(uintptr_t)(align - 1);
    if (!mem.arena || a + size + guard > mem.arena_end || a + size + guard < a)
        return 0;
    mem.bump = a + size + guard;
    return a;
}

static void reserve_fixed(uintptr_t p, size_t n);

static void arena_protect_none(uintptr_t start, size_t len) {
    /* A fresh PROT_NONE mapping drops the pages and any memfd behind them. */
    mmap((void *)start, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1,
         0);
}

int sim_is_device(uintptr_t p) {
    return p >= mem.arena && p < mem.arena_end;
}

void sim_mem_read_lock(void) {
    pthread_rwlock_rdlock(mem.lock);
}
void sim_mem_read_unlock(void) {
    pthread_rwlock_unlock(mem.lock);
}

/* at_call: validating a call (a stream-ordered allocation is valid from its
 * cuMemAllocAsync call to its cuMemFreeAsync call), else running an op (from when the
 * allocation reaches its place in stream order until the free does). */
static CUresult check_range_locked(uintptr_t p, size_t n, int write, int at_call) {
    if (n == 0)
        return CUDA_SUCCESS;
    if (p + n < p)
        return CUDA_ERROR_INVALID_VALUE;
    if (!sim_is_device(p)) {
        if (!p)
            return CUDA_ERROR_INVALID_VALUE;
        /* host memory; a range running into the arena is not */
        return sim_is_device(p + n - 1) ? CUDA_ERROR_INVALID_VALUE : CUDA_SUCCESS;
    }
    long r = vfind(&mem.regions, p);
    if (r < 0)
        return CUDA_ERROR_INVALID_VALUE;
    const struct region *reg = vat(&mem.regions, (size_t)r);
    if (p + n > reg->end)
        return CUDA_ERROR_INVALID_VALUE;
    if (reg->kind == REGION_ALLOC)
        return CUDA_SUCCESS;
    if (reg->kind == REGION_POOL)
        return sim_pool_check_locked(p, n, at_call);
    /* reserved: contiguous accessible mappings must cover [p, p+n) */
    long m = vfind(&mem.maps, p);
    uintptr_t at = p;
    while (m >= 0 && (size_t)m < mem.maps.n) {
        const struct mapping *mp = vat(&mem.maps, (size_t)m);
        if (mp->start > at || !(mp->prot & PROT_READ) || (write && !(mp->prot & PROT_WRITE)))
            return CUDA_ERROR_INVALID_VALUE;
        at = mp->end;
        if (at >= p + n)
            return CUDA_SUCCESS;
        m++;
    }
    return CUDA_ERROR_INVALID_VALUE;
}

CUresult sim_mem_check_locked(uintptr_t p, size_t n, int write) {
    return check_range_locked(p, n, write, 0);
}

CUresult sim_mem_check(uintptr_t p, size_t n, int write) {
    sim_mem_read_lock();
    CUresult r = check_range_locked(p, n, write, 1);
    sim_mem_read_unlock();
    return r;
}

int sim_is_pinned(uintptr_t p, size_t n) {
    pthread_rwlock_rdlock(mem.lock);
    long i = vfind(&mem.host, p);
    int pinned = i >= 0 && p + n <= vend(&mem.host, (size_t)i);
    pthread_rwlock_unlock(mem.lock);
    return pinned;
}

#define NEED_CTX()                                                                                 \
    do {                                                                                           \
        if (!sim_ctx_current())                                                                    \
            return CUDA_ERROR_INVALID_CONTEXT;                                                     \
    } while (0)

/* ---- cuMemAlloc ------------------------------------------------------------------ */

SIM_API CUresult cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytesize) {
    SIM_ENTER("cuMemAlloc_v2");
    SIM_UNSAFE_CALL();
    if (!dptr || bytesize == 0)
        return CUDA_ERROR_INVALID_VALUE;
    NEED_CTX();
    size_t len = (bytesize + PAGE - 1) & ~(size_t)(PAGE - 1);
    pthread_rwlock_wrlock(mem.lock);
    CUresult r = charge(bytesize);
    /* From 2 MiB up, 2 MiB aligned and marked for huge pages, as a GPU's large
     * allocations: fewer page-table entries to fault in (best effort). */
    int huge = bytesize >= SIM_GRANULARITY;
    uintptr_t a = r == CUDA_SUCCESS ? arena_take(len, huge ? SIM_GRANULARITY : PAGE, PAGE) : 0;
    if (r == CUDA_SUCCESS && !a) {
        uncharge(bytesize);
        r = CUDA_ERROR_OUT_OF_MEMORY;
    }
    if (r == CUDA_SUCCESS) {
        void *p = mmap((void *)a, len, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
        if (p != MAP_FAILED && huge)
            madvise(p, len, MADV_HUGEPAGE);
        if (p != MAP_FAILED) {
            sim_poison_fill(p, bytesize); /* a GPU gives whatever was there */
            sim_shadow_fresh(a, bytesize);
        }
        struct region reg = {a, a + bytesize, REGION_ALLOC, ++mem.next_id};
        if (p == MAP_FAILED || vinsert(&mem.regions, &reg) != 0) {
            arena_protect_none(a, len);
            uncharge(bytesize);
            r = CUDA_ERROR_OUT_OF_MEMORY;
        }
    }
    pthread_rwlock_unlock(mem.lock);
    if (r == CUDA_SUCCESS)
        *dptr = (CUdeviceptr)a;
    return r;
}

SIM_API CUresult cuMemAllocPitch_v2(CUdeviceptr *dptr, size_t *pPitch, size_t WidthInBytes,
                                    size_t Height, unsigned int ElementSizeBytes) {
    SIM_ENTER("cuMemAllocPitch_v2");
    if (!dptr || !pPitch || WidthInBytes == 0 || Height == 0 ||
        (ElementSizeBytes != 4 && ElementSizeBytes != 8 && ElementSizeBytes != 16))
        return CUDA_ERROR_INVALID_VALUE;
    size_t pitch = (WidthInBytes + 511) & ~(size_t)511; /* the texture pitch alignment */
    CUresult r = cuMemAlloc_v2(dptr, pitch * Height);
    if (r == CUDA_SUCCESS)
        *pPitch = pitch;
    return r;
}

SIM_API CUresult cuMemFree_v2(CUdeviceptr dptr) {
    SIM_ENTER("cuMemFree_v2");
    SIM_UNSAFE_CALL();
    NEED_CTX();
    if (!dptr)
        return CUDA_SUCCESS;
    /* Like the real driver (and cudaFree), freeing waits for the device to be idle, so
     * work queued before the free never sees the memory vanish. */
    sim_sync_all(NULL);
    CUresult r = CUDA_ERROR_INVALID_VALUE;
    pthread_rwlock_wrlock(mem.lock);
    long i = vfind(&mem.regions, dptr);
    if (i >= 0) {
        struct region *reg = vat(&mem.regions, (size_t)i);
        if (reg->kind == REGION_ALLOC && reg->start == dptr) {
            size_t n = reg->end - reg->start;
            sim_race_host_write("cuMemFree_v2", reg->start, n); /* after the sync: none */
            arena_protect_none(reg->start, (n + PAGE - 1) & ~(size_t)(PAGE - 1));
            sim_shadow_fresh(reg->start, n);
            uncharge(n);
            vremove(&mem.regions, (size_t)i);
            r = CUDA_SUCCESS;
        } else if (reg->kind == REGION_POOL) {
            r = sim_pool_free_now_locked(dptr); /* a stream-ordered allocation */
        }
    }
    pthread_rwlock_unlock(mem.lock);
    return r;
}

SIM_API CUresult cuMemGetInfo_v2(size_t *free_bytes, size_t *total) {
    SIM_ENTER("cuMemGetInfo_v2");
    NEED_CTX();
    if (!free_bytes || !total)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_rwlock_rdlock(mem.lock);
    *free_bytes = mem.capacity - mem.used;
    *total = mem.capacity;
    pthread_rwlock_unlock(mem.lock);
    return CUDA_SUCCESS;
}

/* ---- chunks of stream-ordered pools (pool.c) ------------------------------------- */

void sim_mem_write_lock(void) {
    pthread_rwlock_wrlock(mem.lock);
}
void sim_mem_write_unlock(void) {
    pthread_rwlock_unlock(mem.lock);
}

/* With the write lock held: like cuMemAlloc's memory (own addresses, a guard page after,
 * counted against capacity), but PROT_NONE: pool.c opens each allocation in it when the
 * allocation reaches its place in stream order. */
CUresult sim_mem_chunk_take(size_t size, uintptr_t *addr) {
    if (charge(size) != CUDA_SUCCESS)
        return CUDA_ERROR_OUT_OF_MEMORY;
    uintptr_t a = arena_take(size, SIM_GRANULARITY, PAGE);
    struct region reg = {a, a + size, REGION_POOL, ++mem.next_id};
    if (!a || vinsert(&mem.regions, &reg) != 0) {
        uncharge(size);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    reserve_fixed(a, size);
    *addr = a;
    return CUDA_SUCCESS;
}

/* With the write lock held: the chunk's pages go, and its bytes leave the count. */
void sim_mem_chunk_give(uintptr_t addr, size_t size) {
    long i = vfind(&mem.regions, addr);
    if (i >= 0)
        vremove(&mem.regions, (size_t)i);
    arena_protect_none(addr, size);
    uncharge(size);
}

/* ---- virtual memory management --------------------------------------------------- */

SIM_API CUresult cuMemGetAllocationGranularity(size_t *granularity, const CUmemAllocationProp *prop,
                                               CUmemAllocationGranularity_flags option) {
    SIM_ENTER("cuMemGetAllocationGranularity");
    (void)option;
    if (!granularity || !prop)
        return CUDA_ERROR_INVALID_VALUE;
    *granularity = SIM_GRANULARITY;
    return CUDA_SUCCESS;
}

SIM_API CUresult cuMemAddressReserve(CUdeviceptr *ptr, size_t size, size_t alignment,
                                     CUdeviceptr addr, unsigned long long flags) {
    SIM_ENTER("cuMemAddressReserve");
    SIM_UNSAFE_CALL();
    (void)addr; /* a hint; the arena decides */
    if (!ptr || size == 0 || size % SIM_GRANULARITY || flags != 0 || (alignment & (alignment - 1)))
        return CUDA_ERROR_INVALID_VALUE;
    if (alignment < SIM_GRANULARITY)
        alignment = SIM_GRANULARITY;
    CUresult r = CUDA_ERROR_OUT_OF_MEMORY;
    pthread_rwlock_wrlock(mem.lock);
    uintptr_t a = arena_take(size, alignment, SIM_GRANULARITY);
    if (a) {
        struct region reg = {a, a + size, REGION_RESERVED, ++mem.next_id};
        if (vinsert(&mem.regions, &reg) == 0)
            r = CUDA_SUCCESS;
    }
    pthread_rwlock_unlock(mem.lock);
    if (r == CUDA_SUCCESS)
        *ptr = (CUdeviceptr)a;
    return r;
}

SIM_API CUresult cuMemAddressFree(CUdeviceptr ptr, size_t size) {
    SIM_ENTER("cuMemAddressFree");
    SIM_UNSAFE_CALL();
    CUresult r = CUDA_ERROR_INVALID_VALUE;
    pthread_rwlock_wrlock(mem.lock);
    long i = vfind(&mem.regions, ptr);
    if (i >= 0) {
        struct region *reg = vat(&mem.regions, (size_t)i);
        long m = vfloor(&mem.maps, reg->end - 1);
        int mapped = m >= 0 && vend(&mem.maps, (size_t)m) > reg->start;
        if (reg->kind == REGION_RESERVED && reg->start == ptr && reg->end - reg->start == size &&
            !mapped) {
            vremove(&mem.regions, (size_t)i);
            r = CUDA_SUCCESS;
        }
    }
    pthread_rwlock_unlock(mem.lock);
    return r;
}

/* ---- physical memory pool -------------------------------------------------------- */

#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif

/* [p, p+n) reserved PROT_NONE over whatever was there, committing nothing, marked for
 * huge pages (best effort: without transparent huge pages everything works, slower). */
static void reserve_fixed(uintptr_t p, size_t n) {
    if (mmap((void *)p, n, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1,
             0) != MAP_FAILED)
        madvise((void *)p, n, MADV_HUGEPAGE);
}

/* With the write lock held. Twice the capacity leaves room for fragmentation; an
 * allocation that finds no room gets a memfd of its own. The window is 2 MiB aligned:
 * huge pages move as such only between 2 MiB-aligned addresses. */
static struct pool *pool_get(void) {
    if (mem.pool)
        return mem.pool;
    struct pool *pl = calloc(1, sizeof *pl);
    if (!pl)
        return NULL;
    pl->free.elem = sizeof(struct extent);
    pl->size = (mem.capacity / SIM_GRANULARITY + 1) * SIM_GRANULARITY * 2;
    size_t span = pl->size + SIM_GRANULARITY;
    unsigned char *w =
        mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (w == MAP_FAILED) {
        free(pl);
        return NULL;
    }
    uintptr_t a = ((uintptr_t)w + SIM_GRANULARITY - 1) & ~(uintptr_t)(SIM_GRANULARITY - 1);
    if (a > (uintptr_t)w)
        munmap(w, a - (uintptr_t)w);
    if ((uintptr_t)w + span > a + pl->size)
        munmap((void *)(a + pl->size), (uintptr_t)w + span - (a + pl->size));
    pl->window = (unsigned char *)a;
    madvise(pl->window, pl->size, MADV_HUGEPAGE);
    mem.pool = pl;
    return pl;
}

/* With the write lock held: one mremap of [from, from+n) to `to`, replacing what is
 * there. `from` is left reserved PROT_NONE without pages: MREMAP_DONTUNMAP keeps its
 * (PROT_NONE) mapping, so the hole is never unreserved; where the kernel (or valgrind)
 * refuses that flag, the hole is reserved again at once. 0, or -1 with errno. */
static int move_once(uintptr_t from, uintptr_t to, size_t n) {
    if (!mem.no_dontunmap) {
        if (mremap((void *)from, n, n, MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP,
                   (void *)to) != MAP_FAILED)
            return 0;
        if (errno != EINVAL)
            return -1;
        mem.no_dontunmap = 1;
    }
    if (mremap((void *)from, n, n, MREMAP_MAYMOVE | MREMAP_FIXED, (void *)to) == MAP_FAILED)
        return -1;
    reserve_fixed(from, n);
    return 0;
}

/* With the write lock held: moves the pages of [from, from+n) to `to`, with their page
 * tables (2 MiB entries move as such) and their protection, which must be PROT_NONE:
 * work still touching `from` faults, and nothing arrives accessible. A range spanning
 * several kernel mappings (access set on part of a piece, an extent moved home in parts)
 * is moved a granule at a time where the kernel cannot move it in one call: every
 * boundary the simulator makes is granule aligned. 0, or -1 with nothing moved. */
static int move_pages(uintptr_t from, uintptr_t to, size_t n) {
    if (move_once(from, to, n) == 0)
        return 0;
    if (errno != EFAULT)
        return -1;
    for (size_t at = 0; at < n; at += SIM_GRANULARITY) {
        if (move_once(from + at, to + at, SIM_GRANULARITY) != 0) {
            while (at > 0) {
                at -= SIM_GRANULARITY;
                move_once(to + at, from + at, SIM_GRANULARITY);
            }
            return -1;
        }
    }
    return 0;
}

/* Fills an extent with poison (poison.c) over its whole length. Home is PROT_NONE:
 * opened for the writes, closed after. 0 or -1. */
static int poison(unsigned char *p, size_t n) {
    if (mprotect(p, n, PROT_READ | PROT_WRITE) != 0)
        return -1;
    sim_poison_fill(p, n);
    mprotect(p, n, PROT_NONE);
    return 0;
}

static void pool_give(struct pool *pl, size_t at, size_t n);

/* With the write lock held: an extent of n bytes at *at (first fit among released ones,
 * whose pages are already there), poisoned, or -1. */
static int pool_take(struct pool *pl, size_t n, size_t *at) {
    for (size_t i = 0; i < pl->free.n; i++) {
        struct extent *e = vat(&pl->free, i);
        if (e->end - e->start < n)
            continue;
        *at = e->start;
        e->start += n;
        if (e->start == e->end)
            vremove(&pl->free, i);
        if (poison(pl->window + *at, n) != 0) {
            pool_give(pl, *at, n);
            return -1;
        }
        return 0;
    }
    if (pl->size - pl->bump < n || poison(pl->window + pl->bump, n) != 0)
        return -1;
    *at = pl->bump;
    pl->bump += n;
    return 0;
}

/* With the write lock held: [at, at+n) back to the pool, merged with its neighbours.
 * Its pages stay (that is the point). */
static void pool_give(struct pool *pl, size_t at, size_t n) {
    struct extent e = {at, at + n};
    long i = vfloor(&pl->free, e.start);
    struct extent *prev = i >= 0 ? vat(&pl->free, (size_t)i) : NULL;
    struct extent *next = (size_t)(i + 1) < pl->free.n ? vat(&pl->free, (size_t)(i + 1)) : NULL;
    if (prev && prev->end == e.start) {
        prev->end = e.end;
        if (next && next->start == prev->end) {
            prev->end = next->end;
            vremove(&pl->free, (size_t)(i + 1));
        }
    } else if (next && next->start == e.end) {
        next->start = e.start;
    } else if (vinsert(&pl->free, &e) != 0) {
        /* no memory for the list: the extent is lost to the pool, not to capacity */
    }
}

static struct phys *phys_find(uint64_t handle) {
    struct phys *ph = NULL;
    HASH_FIND(hh, mem.phys, &handle, sizeof handle, ph);
    return ph;
}

/* With the write lock held: frees physical memory nobody holds any more. Every page of
 * an anonymous handle is home by now. */
static void phys_maybe_free(struct phys *ph) {
    if (ph->refs > 0 || ph->maps > 0)
        return;
    HASH_DELETE(hh, mem.phys, ph);
    if (ph->pool)
        pool_give(ph->pool, ph->home, ph->size);
    if (ph->fd >= 0)
        close(ph->fd);
    uncharge(ph->size);
    free(ph);
}

/* With the write lock held: whether a piece of anonymous `ph` overlapping its bytes
 * [off, off+n) is mapped (its pages are away from home). */
static int phys_mapped(const struct phys *ph, size_t off, size_t n) {
    for (size_t i = 0; ph->maps > 0 && i < mem.maps.n; i++) {
        const struct mapping *mp = vat(&mem.maps, i);
        if (mp->ph == ph && mp->offset < off + n && off < mp->offset + (mp->end - mp->start))
            return 1;
    }
    return 0;
}

/* With the write lock held: anonymous `ph` becomes a memfd of its own, because one
 * range of it must show at two addresses and moved pages are in one place only. Its
 * bytes are copied in (from home, then from every piece mapped elsewhere), each piece
 * is re-mapped MAP_SHARED from the memfd with its protection, and the home extent goes
 * back to the pool. Slow, and rare (liboffload never aliases). Work running on a piece
 * meanwhile races with the copy as it would with any remapping. 0, or -1 with nothing
 * changed. */
static int phys_make_shared(struct phys *ph) {
    int fd = memfd_create("simcuda-device", MFD_CLOEXEC);
    if (fd < 0)
        return -1;
    unsigned char *bytes = MAP_FAILED, *home = ph->pool->window + ph->home;
    if (ftruncate(fd, (off_t)ph->size) == 0)
        bytes = mmap(NULL, ph->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (bytes == MAP_FAILED || mprotect(home, ph->size, PROT_READ) != 0) {
        if (bytes != MAP_FAILED)
            munmap(bytes, ph->size);
        close(fd);
        return -1;
    }
    memcpy(bytes, home, ph->size); /* the parts mapped elsewhere read zeros here */
    mprotect(home, ph->size, PROT_NONE);
    for (size_t i = 0; i < mem.maps.n; i++) {
        const struct mapping *mp = vat(&mem.maps, i);
        size_t len = mp->end - mp->start;
        if (mp->ph != ph)
            continue;
        if (!(mp->prot & PROT_READ) && mprotect((void *)mp->start, len, PROT_READ) != 0) {
            munmap(bytes, ph->size);
            close(fd);
            return -1;
        }
        memcpy(bytes + mp->offset, (void *)mp->start, len);
        mprotect((void *)mp->start, len, mp->prot);
    }
    munmap(bytes, ph->size);
    /* Past here nothing can be undone: a piece left anonymous would silently stop
     * aliasing, so a failure (the kernel out of mappings) ends the program. */
    for (size_t i = 0; i < mem.maps.n; i++) {
        const struct mapping *mp = vat(&mem.maps, i);
        if (mp->ph == ph && mmap((void *)mp->start, mp->end - mp->start, mp->prot,
                                 MAP_SHARED | MAP_FIXED, fd, (off_t)mp->offset) == MAP_FAILED) {
            fprintf(stderr, "simcuda: cannot re-map an aliased allocation: %s\n", strerror(errno));
            abort();
        }
    }
    pool_give(ph->pool, ph->home, ph->size);
    ph->pool = NULL;
    ph->fd = fd;
    return 0;
}

SIM_API CUresult cuMemCreate(CUmemGenericAllocationHandle *handle, size_t size,
                             const CUmemAllocationProp *prop, unsigned long long flags) {
    SIM_ENTER("cuMemCreate");
    SIM_UNSAFE_CALL();
    if (!handle || !prop || size == 0 || size % SIM_GRANULARITY || flags != 0 ||
        prop->type != CU_MEM_ALLOCATION_TYPE_PINNED)
        return CUDA_ERROR_INVALID_VALUE;
    if (prop->location.type != CU_MEM_LOCATION_TYPE_DEVICE || prop->location.id != 0)
        return CUDA_ERROR_INVALID_DEVICE;
    NEED_CTX();
    struct phys *ph = calloc(1, sizeof *ph);
    if (!ph)
        return CUDA_ERROR_OUT_OF_MEMORY;
    ph->fd = -1;
    pthread_rwlock_wrlock(mem.lock);
    CUresult r = charge(size);
    struct pool *pl = r == CUDA_SUCCESS ? pool_get() : NULL;
    if (pl && pool_take(pl, size, &ph->home) == 0) {
        ph->pool = pl;
    } else if (r == CUDA_SUCCESS) {
        ph->fd = memfd_create("simcuda-device", MFD_CLOEXEC);
        void *bytes = MAP_FAILED;
        if (ph->fd >= 0 && ftruncate(ph->fd, (off_t)size) == 0)
            bytes = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, ph->fd, 0);
        if (bytes == MAP_FAILED) {
            if (ph->fd >= 0)
                close(ph->fd);
            uncharge(size);
            r = CUDA_ERROR_OUT_OF_MEMORY;
        } else {
            sim_poison_fill(bytes, size);
            munmap(bytes, size);
        }
    }
    if (r == CUDA_SUCCESS) {
        ph->size = size;
        ph->refs = 1;
        ph->handle_types = prop->requestedHandleTypes;
        ph->handle = ++mem.next_id;
        HASH_ADD(hh, mem.phys, handle, sizeof ph->handle, ph);
        *handle = ph->handle;
    } else {
        free(ph);
    }
    pthread_rwlock_unlock(mem.lock);
    return r;
}

SIM_API CUresult cuMemRelease(CUmemGenericAllocationHandle handle) {
    SIM_ENTER("cuMemRelease");
    SIM_UNSAFE_CALL();
    CUresult r = CUDA_ERROR_INVALID_VALUE;
    pthread_rwlock_wrlock(mem.lock);
    struct phys *ph = phys_find(handle);
    if (ph && ph->refs > 0) {
        ph->refs--;
        phys_maybe_free(ph);
        r = CUDA_SUCCESS;
    }
    pthread_rwlock_unlock(mem.lock);
    return r;
}

/* The handle mapped at addr (anywhere in a cuMemMap range), with one more reference the
 * program must release. */
SIM_API CUresult cuMemRetainAllocationHandle(CUmemGenericAllocationHandle *handle, void *addr) {
    SIM_ENTER("cuMemRetainAllocationHandle");
    if (!handle)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult r = CUDA_ERROR_INVALID_VALUE;
    pthread_rwlock_wrlock(mem.lock);
    long m = vfind(&mem.maps, (uintptr_t)addr);
    if (m >= 0) {
        struct phys *ph = ((struct mapping *)vat(&mem.maps, (size_t)m))->ph;
        ph->refs++;
        *handle = ph->handle;
        r = CUDA_SUCCESS;
    }
    pthread_rwlock_unlock(mem.lock);
    return r;
}

SIM_API CUresult cuMemGetAllocationPropertiesFromHandle(CUmemAllocationProp *prop,
                                                        CUmemGenericAllocationHandle handle) {
    SIM_ENTER("cuMemGetAllocationPropertiesFromHandle");
    if (!prop)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult r = CUDA_ERROR_INVALID_VALUE;
    pthread_rwlock_rdlock(mem.lock);
    const struct phys *ph = phys_find(handle);
    if (ph && ph->refs > 0) {
        memset(prop, 0, sizeof *prop);
        prop->type = CU_MEM_ALLOCATION_TYPE_PINNED;
        prop->location.type = CU_MEM_LOCATION_TYPE_DEVICE;
        prop->location.id = 0;
        prop->requestedHandleTypes = ph->handle_types;
        r = CUDA_SUCCESS;
    }
    pthread_rwlock_unlock(mem.lock);
    return r;
}

/* With the write lock held: the reservation holding [p, p+n), or NULL. */
static struct region *reservation_of(uintptr_t p, size_t n) {
    long i = vfind(&mem.regions, p);
    if (i < 0)
        return NULL;
    struct region *reg = vat(&mem.regions, (size_t)i);
    return reg->kind == REGION_RESERVED && p + n <= reg->end && p + n > p ? reg : NULL;
}

/* With the write lock held: bytes [offset, offset+n) of `ph` appear at `to` (reserved),
 * with no access. 0 or -1 (`to` still reserved). */
static int phys_map(struct phys *ph, uintptr_t to, size_t offset, size_t n) {
    if (ph->fd < 0)
        return move_pages((uintptr_t)ph->pool->window + ph->home + offset, to, n);
    if (mmap((void *)to, n, PROT_NONE, MAP_SHARED | MAP_FIXED, ph->fd, (off_t)offset) != MAP_FAILED)
        return 0;
    arena_protect_none(to, n); /* a failed MAP_FIXED may have unmapped it */
    return -1;
}

SIM_API CUresult cuMemMap(CUdeviceptr ptr, size_t size, size_t offset,
                          CUmemGenericAllocationHandle handle, unsigned long long flags) {
    SIM_ENTER("cuMemMap");
    SIM_UNSAFE_CALL();
    if (flags != 0 || size == 0 || ptr % SIM_GRANULARITY || size % SIM_GRANULARITY ||
        offset % SIM_GRANULARITY)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult r = CUDA_ERROR_INVALID_VALUE;
    pthread_rwlock_wrlock(mem.lock);
    struct phys *ph = phys_find(handle);
    long m = vfloor(&mem.maps, ptr + size - 1);
    int overlaps = m >= 0 && vend(&mem.maps, (size_t)m) > ptr;
    if (ph && ph->refs > 0 && offset + size <= ph->size && offset + size > offset &&
        reservation_of(ptr, size) && !overlaps) {
        struct mapping mp = {ptr, ptr + size, PROT_NONE, ph, offset, ptr, ptr + size};
        r = CUDA_ERROR_OUT_OF_MEMORY;
        if (ph->fd < 0 && phys_mapped(ph, offset, size) && phys_make_shared(ph) != 0) {
            /* could not share: r stays OUT_OF_MEMORY */
        } else if (vinsert(&mem.maps, &mp) != 0) {
            /* r stays OUT_OF_MEMORY */
        } else if (phys_map(ph, ptr, offset, size) != 0) {
            vremove(&mem.maps, (size_t)vfind(&mem.maps, ptr));
        } else {
            ph->maps++;
            sim_shadow_fresh(ptr, size); /* nothing written at this address yet */
            r = CUDA_SUCCESS;
        }
    }
    pthread_rwlock_unlock(mem.lock);
    return r;
}

/* With the write lock held: makes `at` a boundary between mapping pieces. */
static int split_at(uintptr_t at) {
    long m = vfind(&mem.maps, at);
    if (m < 0)
        return 0;
    struct mapping *mp = vat(&mem.maps, (size_t)m);
    if (mp->start == at)
        return 0;
    struct mapping tail = *mp;
    tail.start = at;
    tail.offset += at - mp->start;
    mp->end = at;
    if (vinsert(&mem.maps, &tail) != 0) {
        ((struct mapping *)vat(&mem.maps, (size_t)m))->end = tail.end;
        return -1;
    }
    tail.ph->maps++;
    return 0;
}

/* With the write lock held: index of the first piece of a run of contiguous mappings
 * covering exactly [p, p+n) after splitting at its ends, or -1. */
static long covered_run(uintptr_t p, size_t n, int split) {
    if (split && (split_at(p) != 0 || split_at(p + n) != 0))
        return -1;
    long first = vfind(&mem.maps, p);
    if (first < 0 || vstart(&mem.maps, (size_t)first) != p)
        return -1;
    uintptr_t at = p;
    for (size_t i = (size_t)first; i < mem.maps.n && at < p + n; i++) {
        if (vstart(&mem.maps, i) != at)
            return -1;
        at = vend(&mem.maps, i);
    }
    return at == p + n ? first : -1;
}

SIM_API CUresult cuMemSetAccess(CUdeviceptr ptr, size_t size, const CUmemAccessDesc *desc,
                                size_t count) {
    SIM_ENTER("cuMemSetAccess");
    SIM_UNSAFE_CALL();
    if (!desc || count == 0 || size == 0 || ptr % SIM_GRANULARITY || size % SIM_GRANULARITY)
        return CUDA_ERROR_INVALID_VALUE;
    int prot = -1;
    for (size_t i = 0; i < count; i++) {
        if (desc[i].location.type != CU_MEM_LOCATION_TYPE_DEVICE || desc[i].location.id != 0)
            return CUDA_ERROR_INVALID_DEVICE;
        switch (desc[i].flags) {
        case CU_MEM_ACCESS_FLAGS_PROT_NONE:
            prot = PROT_NONE;
            break;
        case CU_MEM_ACCESS_FLAGS_PROT_READ:
            prot = PROT_READ;
            break;
        case CU_MEM_ACCESS_FLAGS_PROT_READWRITE:
            prot = PROT_READ | PROT_WRITE;
            break;
        default:
            return CUDA_ERROR_INVALID_VALUE;
        }
    }
    CUresult r = CUDA_ERROR_INVALID_VALUE;
    pthread_rwlock_wrlock(mem.lock);
    long first = covered_run(ptr, size, 1);
    if (first >= 0 && mprotect((void *)ptr, size, prot) == 0) {
        for (size_t i = (size_t)first; i < mem.maps.n && vstart(&mem.maps, i) < ptr + size; i++)
            ((struct mapping *)vat(&mem.maps, i))->prot = prot;
        /* Device memory never page-faults: fill the page tables now, in one call, rather
         * than one fault per 4 KiB at the first copy (best effort). */
        if (prot != PROT_NONE)
            madvise((void *)ptr, size,
                    (prot & PROT_WRITE) ? MADV_POPULATE_WRITE : MADV_POPULATE_READ);
        r = CUDA_SUCCESS;
    }
    pthread_rwlock_unlock(mem.lock);
    return r;
}

SIM_API CUresult cuMemUnmap(CUdeviceptr ptr, size_t size) {
    SIM_ENTER("cuMemUnmap");
    SIM_UNSAFE_CALL();
    if (size == 0 || ptr % SIM_GRANULARITY || size % SIM_GRANULARITY)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult r = CUDA_ERROR_INVALID_VALUE;
    pthread_rwlock_wrlock(mem.lock);
    long first = covered_run(ptr, size, 0);
    /* the real driver unmaps whole cuMemMap ranges only */
    if (first >= 0) {
        const struct mapping *a = vat(&mem.maps, (size_t)first);
        long lastm = vfind(&mem.maps, ptr + size - 1);
        const struct mapping *b = vat(&mem.maps, (size_t)lastm);
        if (a->map_start != ptr || b->map_end != ptr + size)
            first = -1;
    }
    if (first >= 0 && sim_race_host_write("cuMemUnmap", ptr, size) != 0) {
        r = CUDA_ERROR_ILLEGAL_ADDRESS; /* queued work still uses it */
        first = -1;
    }
    if (first >= 0) {
        /* No access first: work still touching the range faults from now on, and the
         * pages arrive home PROT_NONE. Anonymous pages go home; shared ones are dropped
         * from the address. A move that fails (the kernel out of mappings) drops the
         * pages too: the extent gets fresh ones when it is next touched. */
        mprotect((void *)ptr, size, PROT_NONE);
        for (size_t i = (size_t)first; i < mem.maps.n && vstart(&mem.maps, i) < ptr + size; i++) {
            const struct mapping *mp = vat(&mem.maps, i);
            if (mp->ph->fd < 0)
                move_pages(mp->start, (uintptr_t)mp->ph->pool->window + mp->ph->home + mp->offset,
                           mp->end - mp->start);
        }
        arena_protect_none(ptr, size);
        sim_shadow_fresh(ptr, size);
        while ((size_t)first < mem.maps.n && vstart(&mem.maps, (size_t)first) < ptr + size) {
            struct phys *ph = ((struct mapping *)vat(&mem.maps, (size_t)first))->ph;
            vremove(&mem.maps, (size_t)first);
            ph->maps--;
            phys_maybe_free(ph);
        }
        r = CUDA_SUCCESS;
    }
    pthread_rwlock_unlock(mem.lock);
    return r;
}

SIM_API CUresult cuMemGetAccess(unsigned long long *flags, const CUmemLocation *location,
                                CUdeviceptr ptr) {
    SIM_ENTER("cuMemGetAccess");
    if (!flags || !location)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult r = CUDA_ERROR_INVALID_VALUE;
    pthread_rwlock_rdlock(mem.lock);
    long m = vfind(&mem.maps, ptr);
    if (m >= 0) {
        int prot = ((struct mapping *)vat(&mem.maps, (size_t)m))->prot;
        *flags = (prot & PROT_WRITE)  ? CU_MEM_ACCESS_FLAGS_PROT_READWRITE
                 : (prot & PROT_READ) ? CU_MEM_ACCESS_FLAGS_PROT_READ
                                      : CU_MEM_ACCESS_FLAGS_PROT_NONE;
        r = CUDA_SUCCESS;
    }
    pthread_rwlock_unlock(mem.lock);
    return r;
}

/* ---- pinned host memory ---------------------------------------------------------- */

static CUresult host_alloc(void **pp, size_t bytesize, unsigned flags) {
    if (!pp || bytesize == 0)
        return CUDA_ERROR_INVALID_VALUE;
    NEED_CTX();
    size_t len = (bytesize + PAGE - 1) & ~(size_t)(PAGE - 1);
    /* From 2 MiB up, 2 MiB aligned and marked for huge pages: its first touch (which
     * the real driver pays when it pins) faults once per 2 MiB instead of per 4 KiB. */
    int huge = len >= SIM_GRANULARITY;
    size_t span = huge ? len + SIM_GRANULARITY : len;
    unsigned char *m = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return CUDA_ERROR_OUT_OF_MEMORY;
    unsigned char *p = m;
    if (huge) {
        p = (unsigned char *)(((uintptr_t)m + SIM_GRANULARITY - 1) &
                              ~(uintptr_t)(SIM_GRANULARITY - 1));
        if (p > m)
            munmap(m, (size_t)(p - m));
        if (m + span > p + len)
            munmap(p + len, (size_t)(m + span - (p + len)));
        madvise(p, len, MADV_HUGEPAGE);
    }
    struct hostrange h = {(uintptr_t)p, (uintptr_t)p + bytesize, HOST_ALLOCATED, len, flags};
    pthread_rwlock_wrlock(mem.lock);
    int bad = vinsert(&mem.host, &h);
    pthread_rwlock_unlock(mem.lock);
    if (bad) {
        munmap(p, len);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    *pp = p;
    return CUDA_SUCCESS;
}

SIM_API CUresult cuMemAllocHost_v2(void **pp, size_t bytesize) {
    SIM_ENTER("cuMemAllocHost_v2");
    SIM_UNSAFE_CALL();
    return host_alloc(pp, bytesize, 0);
}

SIM_API CUresult cuMemHostAlloc(void **pp, size_t bytesize, unsigned int flags) {
    SIM_ENTER("cuMemHostAlloc");
    SIM_UNSAFE_CALL();
    return host_alloc(pp, bytesize, flags);
}

SIM_API CUresult cuMemFreeHost(void *p) {
    SIM_ENTER("cuMemFreeHost");
    SIM_UNSAFE_CALL();
    CUresult r = CUDA_ERROR_INVALID_VALUE;
    pthread_rwlock_wrlock(mem.lock);
    long i = vfind(&mem.host, (uintptr_t)p);
    struct hostrange h = {0};
    if (i >= 0) {
        h = *(struct hostrange *)vat(&mem.host, (size_t)i);
        if (h.kind == HOST_ALLOCATED && h.start == (uintptr_t)p) {
            vremove(&mem.host, (size_t)i);
            r = CUDA_SUCCESS;
        }
    }
    pthread_rwlock_unlock(mem.lock);
    if (r == CUDA_SUCCESS)
        munmap(p, h.mapped);
    return r;
}

SIM_API CUresult cuMemHostRegister_v2(void *p, size_t bytesize, unsigned int flags) {
    SIM_ENTER("cuMemHostRegister_v2");
    SIM_UNSAFE_CALL();
    if (!p || bytesize == 0 || sim_is_device((uintptr_t)p))
        return CUDA_ERROR_INVALID_VALUE;
    NEED_CTX();
    uintptr_t a = (uintptr_t)p;
    CUresult r = CUDA_SUCCESS;
    pthread_rwlock_wrlock(mem.lock);
    long i = vfloor(&mem.host, a + bytesize - 1);
    if (i >= 0 && vend(&mem.host, (size_t)i) > a)
        r = CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED;
    else {
        struct hostrange h = {a, a + bytesize, HOST_REGISTERED, 0, flags};
        if (vinsert(&mem.host, &h) != 0)
            r = CUDA_ERROR_OUT_OF_MEMORY;
    }
    pthread_rwlock_unlock(mem.lock);
    return r;
}

SIM_API CUresult cuMemHostUnregister(void *p) {
    SIM_ENTER("cuMemHostUnregister");
    SIM_UNSAFE_CALL();
    CUresult r = CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED;
    pthread_rwlock_wrlock(mem.lock);
    long i = vfind(&mem.host, (uintptr_t)p);
    if (i >= 0) {
        struct hostrange *h = vat(&mem.host, (size_t)i);
        if (h->kind == HOST_REGISTERED && h->start == (uintptr_t)p) {
            vremove(&mem.host, (size_t)i);
            r = CUDA_SUCCESS;
        }
    }
    pthread_rwlock_unlock(mem.lock);
    return r;
}

SIM_API CUresult cuMemHostGetDevicePointer_v2(CUdeviceptr *pdptr, void *p, unsigned int flags) {
    SIM_ENTER("cuMemHostGetDevicePointer_v2");
    if (!pdptr || flags != 0)
        return CUDA_ERROR_INVALID_VALUE;
    if (!sim_is_pinned((uintptr_t)p, 1))
        return CUDA_ERROR_INVALID_VALUE;
    *pdptr = (CUdeviceptr)p;
    return CUDA_SUCCESS;
}

SIM_API CUresult cuMemHostGetFlags(unsigned int *pFlags, void *p) {
    SIM_ENTER("cuMemHostGetFlags");
    if (!pFlags)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult r = CUDA_ERROR_INVALID_VALUE;
    pthread_rwlock_rdlock(mem.lock);
    long i = vfind(&mem.host, (uintptr_t)p);
    if (i >= 0) {
        *pFlags = ((struct hostrange *)vat(&mem.host, (size_t)i))->flags;
        r = CUDA_SUCCESS;
    }
    pthread_rwlock_unlock(mem.lock);
    return r;
}

/* ---- address queries ------------------------------------------------------------- */

/* With a lock held: the allocation-like range holding p (an allocation, or the cuMemMap
 * range inside a reservation). */
static int range_of(uintptr_t p, uintptr_t *base, size_t *size, uint64_t *id, int *device) {
    long i = vfind(&mem.regions, p);
    if (i >= 0) {
        const struct region *reg = vat(&mem.regions, (size_t)i);
        *device = 1;
        *id = reg->id;
        if (reg->kind == REGION_ALLOC) {
            *base = reg->start;
            *size = reg->end - reg->start;
            return 0;
        }
        if (reg->kind == REGION_POOL)
            return sim_pool_range_locked(p, base, size, id);
        long m = vfind(&mem.maps, p);
        if (m < 0)
            return -1;
        const struct mapping *mp = vat(&mem.maps, (size_t)m);
        *base = mp->map_start;
        *size = mp->map_end - mp->map_start;
        *id = mp->ph->handle;
        return 0;
    }
    long h = vfind(&mem.host, p);
    if (h >= 0) {
        const struct hostrange *hr = vat(&mem.host, (size_t)h);
        *device = 0;
        *base = hr->start;
        *size = hr->end - hr->start;
        *id = hr->start;
        return 0;
    }
    return -1;
}

int sim_mem_extent_locked(uintptr_t p, uintptr_t *start, uintptr_t *end) {
    uintptr_t base;
    size_t size;
    uint64_t id;
    int device;
    /* Running work sees stream order: a stream-ordered piece freed and reused in API order
     * (cuMemAllocAsync of a larger piece at its start, merged with a neighbour freed
     * elsewhere) is still the old allocation for a kernel queued before the free. */
    if (sim_pool_live_extent_locked(p, start, end) == 0)
        return 0;
    if (range_of(p, &base, &size, &id, &device) != 0 || !device)
        return -1;
    *start = base;
    *end = base + size;
    return 0;
}

SIM_API CUresult cuMemGetAddressRange_v2(CUdeviceptr *pbase, size_t *psize, CUdeviceptr dptr) {
    SIM_ENTER("cuMemGetAddressRange_v2");
    uintptr_t base;
    size_t size;
    uint64_t id;
    int device;
    pthread_rwlock_rdlock(mem.lock);
    int bad = range_of(dptr, &base, &size, &id, &device) != 0 || !device;
    pthread_rwlock_unlock(mem.lock);
    if (bad)
        return CUDA_ERROR_NOT_FOUND;
    if (pbase)
        *pbase = base;
    if (psize)
        *psize = size;
    return CUDA_SUCCESS;
}

static CUresult pointer_attribute(void *data, CUpointer_attribute attr, CUdeviceptr ptr) {
    uintptr_t base;
    size_t size;
    uint64_t id;
    int device;
    pthread_rwlock_rdlock(mem.lock);
    int known = range_of(ptr, &base, &size, &id, &device) == 0;
    int mapped = known && check_range_locked(ptr, 1, 0, 1) == CUDA_SUCCESS;
    CUmemoryPool pool = known && device ? sim_pool_of_locked(ptr) : NULL;
    pthread_rwlock_unlock(mem.lock);
    switch (attr) {
    case CU_POINTER_ATTRIBUTE_CONTEXT:
        if (!known)
            return CUDA_ERROR_INVALID_VALUE;
        *(CUcontext *)data = (CUcontext)sim_ctx_current();
        return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_MEMORY_TYPE:
        if (!known)
            return CUDA_ERROR_INVALID_VALUE;
        *(unsigned *)data = device ? CU_MEMORYTYPE_DEVICE : CU_MEMORYTYPE_HOST;
        return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_DEVICE_POINTER:
        if (!known)
            return CUDA_ERROR_INVALID_VALUE;
        *(CUdeviceptr *)data = ptr;
        return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_HOST_POINTER:
        if (!known || device)
            return CUDA_ERROR_INVALID_VALUE;
        *(void **)data = (void *)ptr;
        return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_SYNC_MEMOPS:
    case CU_POINTER_ATTRIBUTE_IS_LEGACY_CUDA_IPC_CAPABLE:
        *(int *)data = known;
        return known ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
    case CU_POINTER_ATTRIBUTE_BUFFER_ID:
        if (!known)
            return CUDA_ERROR_INVALID_VALUE;
        *(unsigned long long *)data = id;
        return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_IS_MANAGED:
        *(int *)data = 0;
        return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL:
        if (!known)
            return CUDA_ERROR_INVALID_VALUE;
        *(int *)data = 0;
        return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR:
        if (!known)
            return CUDA_ERROR_INVALID_VALUE;
        *(CUdeviceptr *)data = base;
        return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_RANGE_SIZE:
        if (!known)
            return CUDA_ERROR_INVALID_VALUE;
        *(size_t *)data = size;
        return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_MAPPED:
        *(int *)data = mapped;
        return known ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
    case CU_POINTER_ATTRIBUTE_ALLOWED_HANDLE_TYPES:
        *(unsigned long long *)data =
            known && device ? CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR : CU_MEM_HANDLE_TYPE_NONE;
        return known ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
    case CU_POINTER_ATTRIBUTE_ACCESS_FLAGS:
        *(unsigned *)data = CU_POINTER_ATTRIBUTE_ACCESS_FLAG_READWRITE;
        return known ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
    case CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE:
        *(CUmemoryPool *)data = pool;
        return known ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
    default:
        return CUDA_ERROR_INVALID_VALUE;
    }
}

SIM_API CUresult cuPointerGetAttribute(void *data, CUpointer_attribute attribute, CUdeviceptr ptr) {
    SIM_ENTER("cuPointerGetAttribute");
    if (!data)
        return CUDA_ERROR_INVALID_VALUE;
    return pointer_attribute(data, attribute, ptr);
}

SIM_API CUresult cuPointerGetAttributes(unsigned int numAttributes, CUpointer_attribute *attributes,
                                        void **data, CUdeviceptr ptr) {
    SIM_ENTER("cuPointerGetAttributes");
    if (!attributes || !data)
        return CUDA_ERROR_INVALID_VALUE;
    for (unsigned i = 0; i < numAttributes; i++) {
        if (!data[i])
            continue;
        /* like the driver: unknown pointers give zeroed answers, not an error */
        if (pointer_attribute(data[i], attributes[i], ptr) != CUDA_SUCCESS) {
            switch (attributes[i]) {
            case CU_POINTER_ATTRIBUTE_CONTEXT:
            case CU_POINTER_ATTRIBUTE_HOST_POINTER:
            case CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE:
                *(void **)data[i] = NULL;
                break;
            case CU_POINTER_ATTRIBUTE_DEVICE_POINTER:
            case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR:
            case CU_POINTER_ATTRIBUTE_BUFFER_ID:
            case CU_POINTER_ATTRIBUTE_ALLOWED_HANDLE_TYPES:
                *(unsigned long long *)data[i] = 0;
                break;
            case CU_POINTER_ATTRIBUTE_RANGE_SIZE:
                *(size_t *)data[i] = 0;
                break;
            case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL:
                *(int *)data[i] = -2;
                break;
            default:
                *(unsigned *)data[i] = 0;
                break;
            }
        }
    }
    return CUDA_SUCCESS;
}
