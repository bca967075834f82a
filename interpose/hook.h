/*
 * hook.h — what every hook file shares, and the list of exported hooks.
 *
 * A hook is a thin exported function under the driver's exact versioned name: it
 * normalises its arguments (a NULL stream is CU_STREAM_LEGACY from a legacy entry point,
 * CU_STREAM_PER_THREAD from a _ptds/_ptsz one), tells the runtime (runtime/runtime.h),
 * then forwards the unchanged arguments to the real entry point of the same name.
 */
#ifndef OFFLOAD_HOOK_H
#define OFFLOAD_HOOK_H

#include "driver/driver.h"
#include "interpose/export.h"
#include "runtime/runtime.h"

#include <stddef.h>

static inline CUstream hook_legacy_stream(CUstream stream) {
    return stream ? stream : CU_STREAM_LEGACY;
}

static inline CUstream hook_per_thread_stream(CUstream stream) {
    return stream ? stream : CU_STREAM_PER_THREAD;
}

/* The real entry `entry` called with `args`, or the missing-driver error. */
#define HOOK_FORWARD(entry, args) (driver()->entry ? driver()->entry args : driver_missing())

/*
 * A call that uses device memory: `begin` (a runtime_begin_* call, or a helper that makes
 * several nested ones) prepares it; when that succeeds `call` (the driver call) runs while
 * the runtime is held, so no other thread can evict what it uses in between. The runtime
 * is released afterwards on every path, whatever `begin` or `call` answered, so no hook
 * can forget runtime_end_call(). Evaluates to the first error, or the driver's result.
 */
#define HOOK_BRACKETED(begin, call)                                                                \
    __extension__({                                                                                \
        CUresult hook_rc_ = (begin);                                                               \
        if (hook_rc_ == CUDA_SUCCESS)                                                              \
            hook_rc_ = (call);                                                                     \
        runtime_end_call();                                                                        \
        hook_rc_;                                                                                  \
    })

/* Declarations of the hooks cuda.h does not declare: the per-thread variants (declared
 * by cuda.h only under CUDA_API_PER_THREAD_DEFAULT_STREAM, as macros) and the older ABIs,
 * whose plain names cuda.h turns into macros; those are defined under another C name and
 * exported under the driver's name with an asm label. */
#define HOOK_DECLARE_AS(name, prototype) extern __typeof__(prototype) name;
#define HOOK_PER_THREAD(X)                                                                         \
    X(cuMemcpy_ptds, cuMemcpy)                                                                     \
    X(cuMemcpyAsync_ptsz, cuMemcpyAsync)                                                           \
    X(cuMemcpyPeer_ptds, cuMemcpyPeer)                                                             \
    X(cuMemcpyPeerAsync_ptsz, cuMemcpyPeerAsync)                                                   \
    X(cuMemcpyHtoD_v2_ptds, cuMemcpyHtoD_v2)                                                       \
    X(cuMemcpyDtoH_v2_ptds, cuMemcpyDtoH_v2)                                                       \
    X(cuMemcpyDtoD_v2_ptds, cuMemcpyDtoD_v2)                                                       \
    X(cuMemcpyDtoA_v2_ptds, cuMemcpyDtoA_v2)                                                       \
    X(cuMemcpyAtoD_v2_ptds, cuMemcpyAtoD_v2)                                                       \
    X(cuMemcpyHtoDAsync_v2_ptsz, cuMemcpyHtoDAsync_v2)                                             \
    X(cuMemcpyDtoHAsync_v2_ptsz, cuMemcpyDtoHAsync_v2)                                             \
    X(cuMemcpyDtoDAsync_v2_ptsz, cuMemcpyDtoDAsync_v2)                                             \
    X(cuMemcpy2D_v2_ptds, cuMemcpy2D_v2)                                                           \
    X(cuMemcpy2DUnaligned_v2_ptds, cuMemcpy2DUnaligned_v2)                                         \
    X(cuMemcpy2DAsync_v2_ptsz, cuMemcpy2DAsync_v2)                                                 \
    X(cuMemcpy3D_v2_ptds, cuMemcpy3D_v2)                                                           \
    X(cuMemcpy3DAsync_v2_ptsz, cuMemcpy3DAsync_v2)                                                 \
    X(cuMemcpy3DPeer_ptds, cuMemcpy3DPeer)                                                         \
    X(cuMemcpy3DPeerAsync_ptsz, cuMemcpy3DPeerAsync)                                               \
    X(cuMemcpyBatchAsync_v2_ptsz, cuMemcpyBatchAsync_v2)                                           \
    X(cuMemcpy3DBatchAsync_v2_ptsz, cuMemcpy3DBatchAsync_v2)                                       \
    X(cuMemcpyBatchAsync_ptsz, driver_abi_cuMemcpyBatchAsync_v1)                                   \
    X(cuMemcpy3DBatchAsync_ptsz, driver_abi_cuMemcpy3DBatchAsync_v1)                               \
    X(cuMemsetD8_v2_ptds, cuMemsetD8_v2)                                                           \
    X(cuMemsetD16_v2_ptds, cuMemsetD16_v2)                                                         \
    X(cuMemsetD32_v2_ptds, cuMemsetD32_v2)                                                         \
    X(cuMemsetD2D8_v2_ptds, cuMemsetD2D8_v2)                                                       \
    X(cuMemsetD2D16_v2_ptds, cuMemsetD2D16_v2)                                                     \
    X(cuMemsetD2D32_v2_ptds, cuMemsetD2D32_v2)                                                     \
    X(cuMemsetD8Async_ptsz, cuMemsetD8Async)                                                       \
    X(cuMemsetD16Async_ptsz, cuMemsetD16Async)                                                     \
    X(cuMemsetD32Async_ptsz, cuMemsetD32Async)                                                     \
    X(cuMemsetD2D8Async_ptsz, cuMemsetD2D8Async)                                                   \
    X(cuMemsetD2D16Async_ptsz, cuMemsetD2D16Async)                                                 \
    X(cuMemsetD2D32Async_ptsz, cuMemsetD2D32Async)                                                 \
    X(cuLaunchKernel_ptsz, cuLaunchKernel)                                                         \
    X(cuLaunchKernelEx_ptsz, cuLaunchKernelEx)                                                     \
    X(cuLaunchCooperativeKernel_ptsz, cuLaunchCooperativeKernel)                                   \
    X(cuGraphInstantiateWithParams_ptsz, cuGraphInstantiateWithParams)                             \
    X(cuGraphLaunch_ptsz, cuGraphLaunch)                                                           \
    X(cuStreamSynchronize_ptsz, cuStreamSynchronize)                                               \
    X(cuStreamWaitEvent_ptsz, cuStreamWaitEvent)                                                   \
    X(cuStreamBeginCapture_ptsz, driver_abi_cuStreamBeginCapture_v1)                               \
    X(cuStreamBeginCapture_v2_ptsz, cuStreamBeginCapture_v2)                                       \
    X(cuStreamBeginCaptureToGraph_ptsz, cuStreamBeginCaptureToGraph)                               \
    X(cuStreamEndCapture_ptsz, cuStreamEndCapture)                                                 \
    X(cuMemAllocAsync_ptsz, cuMemAllocAsync)                                                       \
    X(cuMemAllocFromPoolAsync_ptsz, cuMemAllocFromPoolAsync)                                       \
    X(cuMemFreeAsync_ptsz, cuMemFreeAsync)
HOOK_PER_THREAD(HOOK_DECLARE_AS)

extern __typeof__(driver_abi_cuGetProcAddress_v1)
    hook_cuGetProcAddress_v1 __asm__("cuGetProcAddress");
extern __typeof__(driver_abi_cuGraphInstantiate_v1)
    hook_cuGraphInstantiate_v1 __asm__("cuGraphInstantiate");
extern __typeof__(driver_abi_cuGraphInstantiate_v1) cuGraphInstantiate_v2;
extern __typeof__(driver_abi_cuGraphExecUpdate_v1)
    hook_cuGraphExecUpdate_v1 __asm__("cuGraphExecUpdate");
extern __typeof__(driver_abi_cuStreamBeginCapture_v1)
    hook_cuStreamBeginCapture_v1 __asm__("cuStreamBeginCapture");
extern __typeof__(driver_abi_cuMemcpyBatchAsync_v1)
    hook_cuMemcpyBatchAsync_v1 __asm__("cuMemcpyBatchAsync");
extern __typeof__(driver_abi_cuMemcpy3DBatchAsync_v1)
    hook_cuMemcpy3DBatchAsync_v1 __asm__("cuMemcpy3DBatchAsync");

/* One exported hook: the driver symbol it stands for and its address. */
struct hook_entry {
    const char *symbol;
    void *fn;
};

/* The hook exported under exactly `symbol`, or NULL. O(log n), no allocation. */
const struct hook_entry *hook_find(const char *symbol);

/* The whole table, sorted by symbol (strcmp), for tests. */
const struct hook_entry *hook_table(size_t *count);

#endif /* OFFLOAD_HOOK_H */
