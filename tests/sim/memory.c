/*
 * memory.c — the device address arena and the memory map (memory_internal.h is the
 * contract between the memory files).
 *
 * Every device address lies in one arena reserved PROT_NONE at start-up; addresses are
 * handed out by a bump pointer and never reused, so a stale device pointer can never
 * alias newer memory, and "is this a device pointer" is a range test. Inside the arena lie
 * cuMemAlloc's allocations (alloc.c), cuMemAddressReserve's reservations (vmm.c) and the
 * chunks of stream-ordered pools (pool.c, below).
 * The memory map (regions, mappings) is what copies are validated against: a copy never
 * touches device memory the map does not show as accessible. Physical bytes (cuMemCreate
 * until released and unmapped, cuMemAlloc until freed) count against SIMCUDA_MEMORY.
 */
#include "tests/sim/memory_internal.h"
#include "tests/sim/rangevec.h"
#include "tests/sim/sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

/* The map's lock starts here; a forked child switches to a lock of its own (below). */
static pthread_rwlock_t mem_first_lock = PTHREAD_RWLOCK_INITIALIZER;

struct mem_state mem = {
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
CUresult charge(size_t n) {
    if (n > mem.capacity - mem.used)
        return CUDA_ERROR_OUT_OF_MEMORY;
    mem.used += n;
    if (mem.used > mem.peak)
        mem.peak = mem.used;
    return CUDA_SUCCESS;
}

void uncharge(size_t n) {
    mem.used -= n;
}

/* With the write lock held: `size` bytes of arena at `align`, plus `guard` after. */
uintptr_t arena_take(size_t size, size_t align, size_t guard) {
    uintptr_t a = (mem.bump + align - 1) & ~(uintptr_t)(align - 1);
    if (!mem.arena || a + size + guard > mem.arena_end || a + size + guard < a)
        return 0;
    mem.bump = a + size + guard;
    return a;
}

void arena_protect_none(uintptr_t start, size_t len) {
    /* A fresh PROT_NONE mapping drops the pages and any memfd behind them. */
    mmap((void *)start, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1,
         0);
}

/* [p, p+n) reserved PROT_NONE over whatever was there, committing nothing, marked for
 * huge pages (best effort: without transparent huge pages everything works, slower). */
void reserve_fixed(uintptr_t p, size_t n) {
    if (mmap((void *)p, n, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1,
             0) != MAP_FAILED)
        madvise((void *)p, n, MADV_HUGEPAGE);
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
CUresult check_range_locked(uintptr_t p, size_t n, int write, int at_call) {
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
