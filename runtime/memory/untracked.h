/*
 * untracked.h — pass-through allocations (under min_size): their sizes, so that freeing
 * one gives its bytes back to the budget. Pure table, caller holds the runtime lock.
 */
#ifndef OFFLOAD_UNTRACKED_H
#define OFFLOAD_UNTRACKED_H

#include <cuda.h>
#include <stdbool.h>
#include <stddef.h>

struct untracked_alloc;

/* Returns 0, or -1 out of memory (the allocation is then not counted). */
int untracked_add(struct untracked_alloc **table, CUdeviceptr ptr, size_t bytes);

/* Removes ptr; true and *bytes set when it was there. */
bool untracked_remove(struct untracked_alloc **table, CUdeviceptr ptr, size_t *bytes);

void untracked_clear(struct untracked_alloc **table);

#endif /* OFFLOAD_UNTRACKED_H */
