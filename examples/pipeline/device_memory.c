/* device_memory.c — see device_memory.h. */
#include "examples/pipeline/device_memory.h"

#include "examples/pipeline/caching_alloc.h"
#include "examples/pipeline/cuda_check.h"
#include "examples/pipeline/engine.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

void device_memory_open(struct engine *e, enum allocator_kind kind) {
    e->allocator = kind;
    if (kind == ALLOCATOR_CACHING || kind == ALLOCATOR_EXPANDABLE) {
        e->cache = caching_alloc_create(
            kind == ALLOCATOR_CACHING ? CACHING_SEGMENTS : EXPANDABLE_SEGMENTS, e->device);
        if (!e->cache) {
            fprintf(stderr, "pipeline: out of host memory for the caching allocator\n");
            exit(1);
        }
    } else if (kind == ALLOCATOR_ASYNC) {
        CU_CALL(cuDeviceGetDefaultMemPool, (&e->pool, e->device),
                "getting the device's default memory pool", "none");
        /* PyTorch keeps everything the pool reserved: freed memory is reused, not unmapped
         * at each synchronisation. */
        cuuint64_t keep_all = UINT64_MAX;
        CU_CALL(cuMemPoolSetAttribute, (e->pool, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &keep_all),
                "setting the pool's release threshold", "none");
    }
}

static CUdeviceptr async_alloc(struct engine *e, size_t bytes, const char *component,
                               const char *tensor) {
    CUdeviceptr p = 0;
    CUresult r = cuMemAllocAsync(&p, bytes, e->stream);
    if (r == CUDA_ERROR_OUT_OF_MEMORY) {
        CU_CALL(cuStreamSynchronize, (e->stream), "waiting before trimming the pool", component);
        CU_CALL(cuMemPoolTrimTo, (e->pool, 0), "trimming the pool", component);
        r = cuMemAllocAsync(&p, bytes, e->stream);
    }
    if (r == CUDA_ERROR_OUT_OF_MEMORY)
        cuda_out_of_memory(bytes, component, tensor, "cuMemAllocAsync", r);
    char what[128];
    snprintf(what, sizeof what, "allocating %zu bytes for %s/%s", bytes, component, tensor);
    cuda_check(r, "cuMemAllocAsync", what, component);
    return p;
}

static CUdeviceptr cached_alloc(struct engine *e, size_t bytes, const char *component,
                                const char *tensor) {
    CUresult r = CUDA_SUCCESS;
    const char *call = "cuMemAlloc";
    CUdeviceptr p = caching_alloc_malloc(e->cache, bytes, &r, &call);
    if (p)
        return p;
    if (r == CUDA_ERROR_OUT_OF_MEMORY)
        cuda_out_of_memory(bytes, component, tensor, call, r);
    char what[128];
    snprintf(what, sizeof what, "allocating %zu bytes for %s/%s", bytes, component, tensor);
    cuda_check(r, call, what, component);
    return 0;
}

CUdeviceptr engine_alloc(struct engine *e, size_t bytes, const char *component,
                         const char *tensor) {
    switch (e->allocator) {
    case ALLOCATOR_CACHING:
    case ALLOCATOR_EXPANDABLE:
        return cached_alloc(e, bytes, component, tensor);
    case ALLOCATOR_ASYNC:
        return async_alloc(e, bytes, component, tensor);
    case ALLOCATOR_PLAIN:
        break;
    }
    return cuda_alloc(bytes, component, tensor);
}

void engine_free(struct engine *e, CUdeviceptr p, const char *component, const char *tensor) {
    if (!p)
        return;
    char what[128];
    snprintf(what, sizeof what, "freeing %s/%s", component, tensor);
    switch (e->allocator) {
    case ALLOCATOR_CACHING:
    case ALLOCATOR_EXPANDABLE:
        cuda_check(caching_alloc_free(e->cache, p), "caching_alloc_free", what, component);
        return;
    case ALLOCATOR_ASYNC:
        CU_CALL(cuMemFreeAsync, (p, e->stream), what, component);
        return;
    case ALLOCATOR_PLAIN:
        break;
    }
    cuda_free(p, component, tensor);
}

void device_memory_close(struct engine *e) {
    if (e->cache) {
        const char *call = "cuMemFree";
        cuda_check(caching_alloc_destroy(e->cache, &call), call,
                   "returning the caching allocator's segments", "none");
        e->cache = NULL;
    }
    if (e->allocator == ALLOCATOR_ASYNC) {
        CU_CALL(cuStreamSynchronize, (e->stream), "waiting for the last frees", "none");
        CU_CALL(cuMemPoolTrimTo, (e->pool, 0), "trimming the pool", "none");
    }
}
