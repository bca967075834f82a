/*
 * hooks_stream_alloc.c — stream-ordered allocation: cuMemAllocAsync,
 * cuMemAllocFromPoolAsync, cuMemFreeAsync (each also _ptsz), and pool creation and
 * destruction. The runtime serves large allocations from its own memory
 * (runtime/stream_alloc.c); the rest is the driver's call, made here unchanged.
 */
#include "interpose/hook.h"

/* One allocation: liboffload's, or the driver's `real` call with the caller's arguments. */
#define STREAM_ALLOC(entry, dptr, bytes, pool, stream, args)                                       \
    __extension__({                                                                                \
        bool forward_;                                                                             \
        CUresult r_ = driver()->entry ? runtime_stream_alloc(dptr, bytes, pool, stream, &forward_) \
                                      : driver_missing();                                          \
        if (driver()->entry && forward_ && r_ == CUDA_SUCCESS) {                                   \
            r_ = driver()->entry args;                                                             \
            runtime_stream_alloc_forwarded();                                                      \
        }                                                                                          \
        r_;                                                                                        \
    })

#define STREAM_FREE(entry, dptr, stream, args)                                                     \
    __extension__({                                                                                \
        bool forward_;                                                                             \
        CUresult r_ =                                                                              \
            driver()->entry ? runtime_stream_free(dptr, stream, &forward_) : driver_missing();     \
        if (driver()->entry && forward_ && r_ == CUDA_SUCCESS)                                     \
            r_ = driver()->entry args;                                                             \
        r_;                                                                                        \
    })

OFFLOAD_EXPORT CUresult cuMemAllocAsync(CUdeviceptr *dptr, size_t bytesize, CUstream hStream) {
    return STREAM_ALLOC(cuMemAllocAsync, dptr, bytesize, NULL, hook_legacy_stream(hStream),
                        (dptr, bytesize, hStream));
}

OFFLOAD_EXPORT CUresult cuMemAllocAsync_ptsz(CUdeviceptr *dptr, size_t bytesize, CUstream hStream) {
    return STREAM_ALLOC(cuMemAllocAsync_ptsz, dptr, bytesize, NULL, hook_per_thread_stream(hStream),
                        (dptr, bytesize, hStream));
}

OFFLOAD_EXPORT CUresult cuMemAllocFromPoolAsync(CUdeviceptr *dptr, size_t bytesize,
                                                CUmemoryPool pool, CUstream hStream) {
    if (!pool) /* the driver's error for no pool */
        return HOOK_FORWARD(cuMemAllocFromPoolAsync, (dptr, bytesize, pool, hStream));
    return STREAM_ALLOC(cuMemAllocFromPoolAsync, dptr, bytesize, pool, hook_legacy_stream(hStream),
                        (dptr, bytesize, pool, hStream));
}

OFFLOAD_EXPORT CUresult cuMemAllocFromPoolAsync_ptsz(CUdeviceptr *dptr, size_t bytesize,
                                                     CUmemoryPool pool, CUstream hStream) {
    if (!pool)
        return HOOK_FORWARD(cuMemAllocFromPoolAsync_ptsz, (dptr, bytesize, pool, hStream));
    return STREAM_ALLOC(cuMemAllocFromPoolAsync_ptsz, dptr, bytesize, pool,
                        hook_per_thread_stream(hStream), (dptr, bytesize, pool, hStream));
}

OFFLOAD_EXPORT CUresult cuMemFreeAsync(CUdeviceptr dptr, CUstream hStream) {
    return STREAM_FREE(cuMemFreeAsync, dptr, hook_legacy_stream(hStream), (dptr, hStream));
}

OFFLOAD_EXPORT CUresult cuMemFreeAsync_ptsz(CUdeviceptr dptr, CUstream hStream) {
    return STREAM_FREE(cuMemFreeAsync_ptsz, dptr, hook_per_thread_stream(hStream), (dptr, hStream));
}

OFFLOAD_EXPORT CUresult cuMemPoolCreate(CUmemoryPool *pool, const CUmemPoolProps *poolProps) {
    CUresult r = HOOK_FORWARD(cuMemPoolCreate, (pool, poolProps));
    if (r == CUDA_SUCCESS)
        runtime_mem_pool_created(*pool, poolProps);
    return r;
}

/* Told before the driver frees the handle, which a new pool could otherwise get first. */
OFFLOAD_EXPORT CUresult cuMemPoolDestroy(CUmemoryPool pool) {
    if (!driver()->cuMemPoolDestroy)
        return driver_missing();
    runtime_mem_pool_destroyed(pool);
    return driver()->cuMemPoolDestroy(pool);
}

/* The usage attributes count what liboffload serves in the pool's name, as they would
 * count it without liboffload. */
OFFLOAD_EXPORT CUresult cuMemPoolGetAttribute(CUmemoryPool pool, CUmemPool_attribute attr,
                                              void *value) {
    CUresult r = HOOK_FORWARD(cuMemPoolGetAttribute, (pool, attr, value));
    if (r == CUDA_SUCCESS)
        runtime_mem_pool_attribute(pool, attr, value);
    return r;
}

OFFLOAD_EXPORT CUresult cuMemPoolSetAttribute(CUmemoryPool pool, CUmemPool_attribute attr,
                                              void *value) {
    CUresult r = HOOK_FORWARD(cuMemPoolSetAttribute, (pool, attr, value));
    if (r == CUDA_SUCCESS)
        runtime_mem_pool_attribute_set(pool, attr);
    return r;
}
