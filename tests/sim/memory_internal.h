/*
 * memory_internal.h — the contract between the device-memory files (not a public contract):
 *
 *   memory.c   the device address arena and capacity, the memory map's lock and its fork
 *              handling, the range checks copies are validated against, pool.c's chunks
 *   alloc.c    cuMemAlloc, cuMemAllocPitch, cuMemFree, cuMemGetInfo
 *   physmem.c  physical memory: the pool where handles keep their pages, moving pages,
 *              aliasing, the handles (cuMemCreate, cuMemRelease, cuMemRetainAllocationHandle,
 *              cuMemGetAllocationPropertiesFromHandle)
 *   vmm.c      reservations and what is mapped in them: cuMemAddressReserve/Free, cuMemMap,
 *              cuMemSetAccess, cuMemUnmap, cuMemGetAccess, the granularity
 *   hostmem.c  pinned host memory: cuMemAllocHost, cuMemHostAlloc, cuMemHostRegister, ...
 *   pointer.c  address queries: cuMemGetAddressRange, cuPointerGetAttribute(s)
 *
 * They share one memory map, `mem` (defined in memory.c), guarded by one rwlock, *mem.lock:
 * held for writing by whatever changes the map (allocations, frees, maps, unmaps, access
 * changes; pool.c through sim_mem_write_lock) and for reading by what only looks (a copy
 * while it touches device memory, so nothing is unmapped under it; the queries). It guards
 * every field of mem and everything mem points to: the sorted vectors regions, maps and
 * host, the handles (phys, by number), the physical pool (its window's pages and its free
 * extents). Two exceptions: arena and arena_end are set once at load and read without the
 * lock (sim_is_device), and capacity, set at load and (with the lock) at the first cuInit,
 * is read without it by sim_memory_capacity. mem.lock itself changes only in a forked
 * child (sim_memory_atfork). Functions below that say "with the write lock held" expect
 * the caller to hold it.
 */
#ifndef SIM_MEMORY_INTERNAL_H
#define SIM_MEMORY_INTERNAL_H

#include "tests/sim/rangevec.h"
#include "tests/sim/sim.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <uthash.h>

#define PAGE 4096u

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

/* The physical memory pool: a window of `size` bytes of private anonymous memory, always
 * PROT_NONE, reserved without commitment (pages exist only once touched). Offsets below
 * `bump` have been handed out at least once; `free` holds those released since (sorted,
 * coalesced). Guarded by mem.lock. */
struct pool {
    unsigned char *window;
    size_t size, bump;
    struct vec free;
};

/* The memory map: see the top of this file for its lock. */
struct mem_state {
    pthread_rwlock_t *lock;
    uintptr_t arena, arena_end, bump;
    size_t capacity, used, peak;
    uint64_t next_id;
    struct vec regions, maps, host;
    struct phys *phys; /* by handle */
    struct pool *pool; /* created by the first cuMemCreate */
    int no_dontunmap;  /* mremap refused MREMAP_DONTUNMAP once: move without it */
};
extern struct mem_state mem;

#define NEED_CTX()                                                                                 \
    do {                                                                                           \
        if (!sim_ctx_current())                                                                    \
            return CUDA_ERROR_INVALID_CONTEXT;                                                     \
    } while (0)

/* memory.c, with the write lock held (check_range_locked: either lock): bytes charged to
 * capacity and given back; `size` bytes of arena taken; a range made PROT_NONE afresh (its
 * pages and any memfd behind them dropped) or reserved PROT_NONE for huge pages; whether
 * [p, p+n) may be accessed (at_call: validating a call, else running an op). */
CUresult charge(size_t n);
void uncharge(size_t n);
uintptr_t arena_take(size_t size, size_t align, size_t guard);
void arena_protect_none(uintptr_t start, size_t len);
void reserve_fixed(uintptr_t p, size_t n);
CUresult check_range_locked(uintptr_t p, size_t n, int write, int at_call);

/* physmem.c, with the write lock held (phys_find: either lock): a handle's memory by its
 * number; freed once the program holds no reference and nothing maps it; whether part of
 * it is mapped; an anonymous handle made a memfd of its own (aliasing); part of it made to
 * appear at a reserved address; pages moved with their page tables. */
struct phys *phys_find(uint64_t handle);
void phys_maybe_free(struct phys *ph);
int phys_mapped(const struct phys *ph, size_t off, size_t n);
int phys_make_shared(struct phys *ph);
int phys_map(struct phys *ph, uintptr_t to, size_t offset, size_t n);
int move_pages(uintptr_t from, uintptr_t to, size_t n);

#endif /* SIM_MEMORY_INTERNAL_H */
