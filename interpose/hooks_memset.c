/*
 * hooks_memset.c — the cuMemset family (the 64-bit ABIs: *_v2 for the sync entry
 * points, the plain names for the async ones, and their _ptds/_ptsz variants). The range
 * written is reported to the runtime (runtime_begin_access), which holds it resident until
 * the driver has the memset.
 */
#include "interpose/hook.h"
#include "interpose/ranges.h"

#include <stdint.h>

static CUresult begin_1d(CUdeviceptr dst, size_t count, size_t element, CUstream runs_on) {
    size_t bytes;
    if (count == 0)
        return CUDA_SUCCESS;
    if (__builtin_mul_overflow(count, element, &bytes))
        bytes = SIZE_MAX; /* the driver rejects it; cover everything from dst meanwhile */
    return runtime_begin_access(dst, bytes, 0, 0, runs_on);
}

static CUresult begin_2d(CUdeviceptr dst, size_t pitch, size_t width, size_t height, size_t element,
                         CUstream runs_on) {
    struct device_range r;
    if (!range_memset2d(dst, pitch, width, height, element, &r))
        return CUDA_SUCCESS;
    return runtime_begin_access(r.ptr, r.bytes, 0, 0, runs_on);
}

/* Sync 1D: name(dst, value, N) */
#define HOOK_MEMSET(name, value_type, element, runs_on)                                            \
    OFFLOAD_EXPORT CUresult name(CUdeviceptr dstDevice, value_type value, size_t N) {              \
        if (!driver()->name)                                                                       \
            return driver_missing();                                                               \
        return HOOK_BRACKETED(begin_1d(dstDevice, N, element, runs_on),                            \
                              driver()->name(dstDevice, value, N));                                \
    }

/* Async 1D: name(dst, value, N, stream) */
#define HOOK_MEMSET_ASYNC(name, value_type, element, normalise)                                    \
    OFFLOAD_EXPORT CUresult name(CUdeviceptr dstDevice, value_type value, size_t N,                \
                                 CUstream hStream) {                                               \
        if (!driver()->name)                                                                       \
            return driver_missing();                                                               \
        return HOOK_BRACKETED(begin_1d(dstDevice, N, element, normalise(hStream)),                 \
                              driver()->name(dstDevice, value, N, hStream));                       \
    }

/* Sync 2D: name(dst, pitch, value, width, height) */
#define HOOK_MEMSET_2D(name, value_type, element, runs_on)                                         \
    OFFLOAD_EXPORT CUresult name(CUdeviceptr dstDevice, size_t dstPitch, value_type value,         \
                                 size_t Width, size_t Height) {                                    \
        if (!driver()->name)                                                                       \
            return driver_missing();                                                               \
        return HOOK_BRACKETED(begin_2d(dstDevice, dstPitch, Width, Height, element, runs_on),      \
                              driver()->name(dstDevice, dstPitch, value, Width, Height));          \
    }

/* Async 2D: name(dst, pitch, value, width, height, stream) */
#define HOOK_MEMSET_2D_ASYNC(name, value_type, element, normalise)                                 \
    OFFLOAD_EXPORT CUresult name(CUdeviceptr dstDevice, size_t dstPitch, value_type value,         \
                                 size_t Width, size_t Height, CUstream hStream) {                  \
        if (!driver()->name)                                                                       \
            return driver_missing();                                                               \
        return HOOK_BRACKETED(                                                                     \
            begin_2d(dstDevice, dstPitch, Width, Height, element, normalise(hStream)),             \
            driver()->name(dstDevice, dstPitch, value, Width, Height, hStream));                   \
    }

HOOK_MEMSET(cuMemsetD8_v2, unsigned char, 1, CU_STREAM_LEGACY)
HOOK_MEMSET(cuMemsetD8_v2_ptds, unsigned char, 1, CU_STREAM_PER_THREAD)
HOOK_MEMSET(cuMemsetD16_v2, unsigned short, 2, CU_STREAM_LEGACY)
HOOK_MEMSET(cuMemsetD16_v2_ptds, unsigned short, 2, CU_STREAM_PER_THREAD)
HOOK_MEMSET(cuMemsetD32_v2, unsigned int, 4, CU_STREAM_LEGACY)
HOOK_MEMSET(cuMemsetD32_v2_ptds, unsigned int, 4, CU_STREAM_PER_THREAD)

HOOK_MEMSET_ASYNC(cuMemsetD8Async, unsigned char, 1, hook_legacy_stream)
HOOK_MEMSET_ASYNC(cuMemsetD8Async_ptsz, unsigned char, 1, hook_per_thread_stream)
HOOK_MEMSET_ASYNC(cuMemsetD16Async, unsigned short, 2, hook_legacy_stream)
HOOK_MEMSET_ASYNC(cuMemsetD16Async_ptsz, unsigned short, 2, hook_per_thread_stream)
HOOK_MEMSET_ASYNC(cuMemsetD32Async, unsigned int, 4, hook_legacy_stream)
HOOK_MEMSET_ASYNC(cuMemsetD32Async_ptsz, unsigned int, 4, hook_per_thread_stream)

HOOK_MEMSET_2D(cuMemsetD2D8_v2, unsigned char, 1, CU_STREAM_LEGACY)
HOOK_MEMSET_2D(cuMemsetD2D8_v2_ptds, unsigned char, 1, CU_STREAM_PER_THREAD)
HOOK_MEMSET_2D(cuMemsetD2D16_v2, unsigned short, 2, CU_STREAM_LEGACY)
HOOK_MEMSET_2D(cuMemsetD2D16_v2_ptds, unsigned short, 2, CU_STREAM_PER_THREAD)
HOOK_MEMSET_2D(cuMemsetD2D32_v2, unsigned int, 4, CU_STREAM_LEGACY)
HOOK_MEMSET_2D(cuMemsetD2D32_v2_ptds, unsigned int, 4, CU_STREAM_PER_THREAD)

HOOK_MEMSET_2D_ASYNC(cuMemsetD2D8Async, unsigned char, 1, hook_legacy_stream)
HOOK_MEMSET_2D_ASYNC(cuMemsetD2D8Async_ptsz, unsigned char, 1, hook_per_thread_stream)
HOOK_MEMSET_2D_ASYNC(cuMemsetD2D16Async, unsigned short, 2, hook_legacy_stream)
HOOK_MEMSET_2D_ASYNC(cuMemsetD2D16Async_ptsz, unsigned short, 2, hook_per_thread_stream)
HOOK_MEMSET_2D_ASYNC(cuMemsetD2D32Async, unsigned int, 4, hook_legacy_stream)
HOOK_MEMSET_2D_ASYNC(cuMemsetD2D32Async_ptsz, unsigned int, 4, hook_per_thread_stream)
