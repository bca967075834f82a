/*
 * caching_alloc.h — PyTorch's CUDA caching allocator, its rules reproduced for --like torch
 * (c10/cuda/CUDACachingAllocator.cpp, as of PyTorch 2.x):
 *
 *  - a request is rounded up to a multiple of 512 bytes (at least 512);
 *  - requests up to 1 MiB come from the small pool, whose segments are 2 MiB; larger ones
 *    from the large pool: under 10 MiB from 20 MiB segments, 10 MiB and more from a segment
 *    of their own, rounded up to 2 MiB;
 *  - the best fitting free block of the request's pool is used (smallest, then lowest
 *    address); a block is split when what is left is at least 512 bytes (small pool) or
 *    more than 1 MiB (large pool); a freed block is cached and merged with free neighbours
 *    of its segment, never returned to the driver while the program runs;
 *  - when the driver cannot give a new segment, every segment with nothing allocated in it
 *    is returned, and the allocation is tried once more; a second failure is out of memory.
 *
 * Segments come from one of two sources:
 *  - CACHING_SEGMENTS: one cuMemAlloc per segment (PyTorch's default);
 *  - EXPANDABLE_SEGMENTS: PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True. Each pool has
 *    one segment: a virtual range reserved with cuMemAddressReserve (1.125 times the
 *    device's size, cuDeviceTotalMem, as PyTorch reserves from totalGlobalMem),
 *    of which a prefix is backed by pages (2 MiB for the small pool, 20 MiB for the large),
 *    each its own cuMemCreate handle, cuMemMap'ed and made accessible with cuMemSetAccess.
 *    A request that no free block holds grows the prefix; releasing unmaps and releases
 *    the free pages at its end. (PyTorch also unmaps free pages inside the prefix; only the
 *    end is released here, which keeps a segment one contiguous run of blocks.)
 *
 * All work is on one stream, so a freed block may be reused at once: stream order keeps
 * the old user's kernels before the new user's, as in PyTorch. Not thread-safe (the
 * pipeline has one thread).
 */
#ifndef PIPELINE_CACHING_ALLOC_H
#define PIPELINE_CACHING_ALLOC_H

#include <cuda.h>
#include <stdbool.h>
#include <stddef.h>

#define CACHING_ROUND 512u
#define CACHING_SMALL_SIZE ((size_t)1 << 20)       /* largest request of the small pool */
#define CACHING_SMALL_SEGMENT ((size_t)2 << 20)    /* a small pool segment */
#define CACHING_LARGE_SEGMENT ((size_t)20 << 20)   /* a large pool segment for < 10 MiB */
#define CACHING_MIN_LARGE_ALLOC ((size_t)10 << 20) /* from here a segment of its own */
#define CACHING_ROUND_LARGE ((size_t)2 << 20)      /* rounding of a segment of its own */

enum segment_source { CACHING_SEGMENTS, EXPANDABLE_SEGMENTS };

struct caching_alloc;

/* A new allocator on `device`; no memory is taken yet. NULL if host memory ran out. */
struct caching_alloc *caching_alloc_create(enum segment_source source, CUdevice device);

/* A block of at least `bytes` bytes. On failure returns 0 and sets *error to the driver's
 * error of the last attempt (CUDA_ERROR_OUT_OF_MEMORY when the device is full) and *call
 * to the entry point that gave it. */
CUdeviceptr caching_alloc_malloc(struct caching_alloc *a, size_t bytes, CUresult *error,
                                 const char **call);

/* Returns the block at p to its pool. An address not allocated here returns
 * CUDA_ERROR_INVALID_VALUE; 0 is ignored. */
CUresult caching_alloc_free(struct caching_alloc *a, CUdeviceptr p);

/* Returns every segment (and page) with nothing allocated in it to the driver:
 * torch.cuda.empty_cache(). On a driver error returns it and names the call. */
CUresult caching_alloc_release_cached(struct caching_alloc *a, const char **call);

/* Bytes in segments (reserved) and in allocated blocks; segments held. */
struct caching_stats {
    size_t reserved, allocated, segments, segment_allocs;
};
void caching_alloc_stats(const struct caching_alloc *a, struct caching_stats *s);

/* Releases every segment, allocated or not, and the allocator itself. */
CUresult caching_alloc_destroy(struct caching_alloc *a, const char **call);

/* The rules alone, for tests: the rounded request and the segment size it would get. */
size_t caching_round_size(size_t bytes);
size_t caching_segment_size(size_t rounded);

#endif /* PIPELINE_CACHING_ALLOC_H */
