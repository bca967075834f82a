/*
 * device_memory.h — where the pipeline's device memory comes from. Every weight and
 * activation is asked for here, by component and tensor name (for messages):
 *
 *   plain       one cuMemAlloc per tensor, cuMemFree when it dies (the default mode);
 *   caching     PyTorch's caching allocator over cuMemAlloc segments (caching_alloc.h);
 *   expandable  the same rules over expandable segments (cuMemAddressReserve, cuMemCreate,
 *               cuMemMap, cuMemSetAccess), as with expandable_segments:True;
 *   async       cuMemAllocAsync / cuMemFreeAsync on the compute stream, from the device's
 *               default pool with its release threshold at the maximum, as PyTorch's
 *               backend:cudaMallocAsync does; out of memory synchronises, trims the pool
 *               to 0 and tries once more.
 *
 * Running out of memory ends the program with the usual "out of memory allocating ..."
 * line, naming the driver call that failed last.
 */
#ifndef PIPELINE_DEVICE_MEMORY_H
#define PIPELINE_DEVICE_MEMORY_H

#include "examples/pipeline/args.h"

#include <cuda.h>
#include <stddef.h>

struct engine;

/* Chooses the allocator; call after the engine has its device and stream. */
void device_memory_open(struct engine *e, enum allocator_kind kind);

CUdeviceptr engine_alloc(struct engine *e, size_t bytes, const char *component, const char *tensor);

/* 0 is ignored. */
void engine_free(struct engine *e, CUdeviceptr p, const char *component, const char *tensor);

/* Gives everything the allocator still holds back to the driver. */
void device_memory_close(struct engine *e);

#endif /* PIPELINE_DEVICE_MEMORY_H */
