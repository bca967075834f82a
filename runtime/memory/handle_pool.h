/*
 * handle_pool.h — physical memory handles released by evictions within one runtime call,
 * offered to the restores of that same call before the driver is asked for new memory.
 *
 * Creating physical memory is the slow part of a restore (the driver must find, clear and
 * map fresh pages); an eviction that makes room for a restore of the same size frees
 * exactly the handle the restore needs. The runtime drains the pool at the end of every
 * call, so it never holds memory nobody uses. Pure container, caller holds the lock.
 */
#ifndef OFFLOAD_HANDLE_POOL_H
#define OFFLOAD_HANDLE_POOL_H

#include <cuda.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pooled_handle {
    CUmemGenericAllocationHandle handle;
    size_t size;
};

struct handle_pool {
    struct pooled_handle *items;
    size_t count, capacity;
    uint64_t bytes;
};

/* Returns false when it cannot hold one more (the caller releases the handle itself). */
bool handle_pool_put(struct handle_pool *p, CUmemGenericAllocationHandle h, size_t size);

/* A handle of exactly `size`, removed from the pool; false when none. */
bool handle_pool_take(struct handle_pool *p, size_t size, CUmemGenericAllocationHandle *h);

/* Any handle (the most recently put), removed; false when empty. */
bool handle_pool_pop(struct handle_pool *p, struct pooled_handle *out);

#endif /* OFFLOAD_HANDLE_POOL_H */
