/*
 * driver.h — the real driver's entry points. liboffload calls the driver through this
 * table and nothing else: hooks forward to the real symbol of the same name, the
 * runtime uses it for its own work (VMM, copies, events).
 *
 * DRIVER_ENTRIES lists (symbol, prototype): the exact versioned symbol the real
 * library exports, and the declaration in cuda.h whose type it has. Per-thread
 * variants (_ptds/_ptsz) share their base's prototype. Add an entry here to call a
 * new entry point; keep the list sorted by area.
 *
 * Older ABIs whose plain name cuda.h turns into a macro for the newer one (cuGetProcAddress
 * is #defined to cuGetProcAddress_v2, ...) are spelled NAME_v1 in the table: the field
 * cuGetProcAddress_v1 holds the driver's exported symbol "cuGetProcAddress". The driver
 * itself never exports a *_v1 name, so the spelling is unambiguous. Their prototypes are
 * the driver_abi_* declarations below (cuda.h declares them only for the driver's own
 * build).
 *
 * A driver that cannot be loaded leaves every entry NULL: callers check the entry (hooks
 * answer CUDA_ERROR_NOT_INITIALIZED, see driver_missing()).
 */
#ifndef OFFLOAD_DRIVER_H
#define OFFLOAD_DRIVER_H

#include <cuda.h>
#include <stdbool.h>

/* Prototypes of older ABIs (declarations only, for __typeof__; never defined). */
CUresult driver_abi_cuGetProcAddress_v1(const char *symbol, void **pfn, int cudaVersion,
                                        cuuint64_t flags);
CUresult driver_abi_cuGraphInstantiate_v1(CUgraphExec *phGraphExec, CUgraph hGraph,
                                          CUgraphNode *phErrorNode, char *logBuffer,
                                          size_t bufferSize);
CUresult driver_abi_cuStreamBeginCapture_v1(CUstream hStream);
CUresult driver_abi_cuGraphExecUpdate_v1(CUgraphExec hGraphExec, CUgraph hGraph,
                                         CUgraphNode *hErrorNode_out,
                                         CUgraphExecUpdateResult *updateResult_out);
CUresult driver_abi_cuMemcpyBatchAsync_v1(CUdeviceptr *dsts, CUdeviceptr *srcs, size_t *sizes,
                                          size_t count, CUmemcpyAttributes *attrs,
                                          size_t *attrsIdxs, size_t numAttrs, size_t *failIdx,
                                          CUstream hStream);
CUresult driver_abi_cuMemcpy3DBatchAsync_v1(size_t numOps, CUDA_MEMCPY3D_BATCH_OP *opList,
                                            size_t *failIdx, unsigned long long flags,
                                            CUstream hStream);

#define DRIVER_ENTRIES(X)                                                                          \
    /* init, device, context */                                                                    \
    X(cuInit, cuInit)                                                                              \
    X(cuGetErrorName, cuGetErrorName)                                                              \
    X(cuDeviceGetAttribute, cuDeviceGetAttribute)                                                  \
    X(cuDeviceGetCount, cuDeviceGetCount)                                                          \
    X(cuDeviceTotalMem_v2, cuDeviceTotalMem_v2)                                                    \
    X(cuCtxGetCurrent, cuCtxGetCurrent)                                                            \
    X(cuCtxSetCurrent, cuCtxSetCurrent)                                                            \
    X(cuCtxGetDevice, cuCtxGetDevice)                                                              \
    X(cuCtxSynchronize, cuCtxSynchronize)                                                          \
    X(cuCtxSynchronize_v2, cuCtxSynchronize_v2)                                                    \
    /* memory */                                                                                   \
    X(cuMemAlloc_v2, cuMemAlloc_v2)                                                                \
    X(cuMemFree_v2, cuMemFree_v2)                                                                  \
    X(cuMemGetInfo_v2, cuMemGetInfo_v2)                                                            \
    X(cuMemAllocHost_v2, cuMemAllocHost_v2)                                                        \
    X(cuMemHostAlloc, cuMemHostAlloc)                                                              \
    X(cuMemFreeHost, cuMemFreeHost)                                                                \
    X(cuMemcpyHtoDAsync_v2, cuMemcpyHtoDAsync_v2)                                                  \
    X(cuMemcpyDtoHAsync_v2, cuMemcpyDtoHAsync_v2)                                                  \
    /* virtual memory management */                                                                \
    X(cuMemAddressReserve, cuMemAddressReserve)                                                    \
    X(cuMemAddressFree, cuMemAddressFree)                                                          \
    X(cuMemCreate, cuMemCreate)                                                                    \
    X(cuMemRelease, cuMemRelease)                                                                  \
    X(cuMemMap, cuMemMap)                                                                          \
    X(cuMemUnmap, cuMemUnmap)                                                                      \
    X(cuMemSetAccess, cuMemSetAccess)                                                              \
    X(cuMemGetAllocationGranularity, cuMemGetAllocationGranularity)                                \
    X(cuMemGetAccess, cuMemGetAccess)                                                              \
    X(cuMemRetainAllocationHandle, cuMemRetainAllocationHandle)                                    \
    X(cuMemGetAllocationPropertiesFromHandle, cuMemGetAllocationPropertiesFromHandle)              \
    X(cuMemExportToShareableHandle, cuMemExportToShareableHandle)                                  \
    /* stream-ordered allocation and pools */                                                      \
    X(cuMemAllocAsync, cuMemAllocAsync)                                                            \
    X(cuMemAllocAsync_ptsz, cuMemAllocAsync)                                                       \
    X(cuMemAllocFromPoolAsync, cuMemAllocFromPoolAsync)                                            \
    X(cuMemAllocFromPoolAsync_ptsz, cuMemAllocFromPoolAsync)                                       \
    X(cuMemFreeAsync, cuMemFreeAsync)                                                              \
    X(cuMemFreeAsync_ptsz, cuMemFreeAsync)                                                         \
    X(cuMemPoolCreate, cuMemPoolCreate)                                                            \
    X(cuMemPoolDestroy, cuMemPoolDestroy)                                                          \
    X(cuMemPoolTrimTo, cuMemPoolTrimTo)                                                            \
    X(cuMemPoolGetAttribute, cuMemPoolGetAttribute)                                                \
    X(cuMemPoolSetAttribute, cuMemPoolSetAttribute)                                                \
    X(cuDeviceGetMemPool, cuDeviceGetMemPool)                                                      \
    X(cuDeviceGetDefaultMemPool, cuDeviceGetDefaultMemPool)                                        \
    /* streams and events */                                                                       \
    X(cuStreamCreate, cuStreamCreate)                                                              \
    X(cuStreamDestroy_v2, cuStreamDestroy_v2)                                                      \
    X(cuStreamSynchronize, cuStreamSynchronize)                                                    \
    X(cuStreamSynchronize_ptsz, cuStreamSynchronize)                                               \
    X(cuStreamWaitEvent, cuStreamWaitEvent)                                                        \
    X(cuStreamWaitEvent_ptsz, cuStreamWaitEvent)                                                   \
    X(cuStreamIsCapturing, cuStreamIsCapturing)                                                    \
    X(cuStreamGetCaptureInfo_v3, cuStreamGetCaptureInfo)                                           \
    X(cuThreadExchangeStreamCaptureMode, cuThreadExchangeStreamCaptureMode)                        \
    X(cuStreamBeginCapture_v1, driver_abi_cuStreamBeginCapture_v1)                                 \
    X(cuStreamBeginCapture_ptsz, driver_abi_cuStreamBeginCapture_v1)                               \
    X(cuStreamBeginCapture_v2, cuStreamBeginCapture_v2)                                            \
    X(cuStreamBeginCapture_v2_ptsz, cuStreamBeginCapture_v2)                                       \
    X(cuStreamBeginCaptureToGraph, cuStreamBeginCaptureToGraph)                                    \
    X(cuStreamBeginCaptureToGraph_ptsz, cuStreamBeginCaptureToGraph)                               \
    X(cuStreamEndCapture, cuStreamEndCapture)                                                      \
    X(cuStreamEndCapture_ptsz, cuStreamEndCapture)                                                 \
    X(cuEventCreate, cuEventCreate)                                                                \
    X(cuEventDestroy_v2, cuEventDestroy_v2)                                                        \
    X(cuEventRecord, cuEventRecord)                                                                \
    X(cuEventQuery, cuEventQuery)                                                                  \
    X(cuEventSynchronize, cuEventSynchronize)                                                      \
    /* kernels */                                                                                  \
    X(cuFuncGetParamInfo, cuFuncGetParamInfo)                                                      \
    X(cuFuncGetName, cuFuncGetName)                                                                \
    X(cuKernelGetParamInfo, cuKernelGetParamInfo)                                                  \
    X(cuKernelGetName, cuKernelGetName)                                                            \
    X(cuLaunchKernel, cuLaunchKernel)                                                              \
    X(cuLaunchKernel_ptsz, cuLaunchKernel)                                                         \
    /* liboffload's own device code (runtime/devcode/) */                                          \
    X(cuModuleLoadData, cuModuleLoadData)                                                          \
    X(cuModuleGetFunction, cuModuleGetFunction)                                                    \
    /* runtime: context guard, graph walking */                                                    \
    X(cuCtxPushCurrent_v2, cuCtxPushCurrent_v2)                                                    \
    X(cuCtxPopCurrent_v2, cuCtxPopCurrent_v2)                                                      \
    X(cuGraphGetNodes, cuGraphGetNodes)                                                            \
    X(cuGraphNodeGetType, cuGraphNodeGetType)                                                      \
    X(cuGraphKernelNodeGetParams_v2, cuGraphKernelNodeGetParams_v2)                                \
    X(cuGraphChildGraphNodeGetGraph, cuGraphChildGraphNodeGetGraph)                                \
    X(cuGraphMemsetNodeGetParams, cuGraphMemsetNodeGetParams)                                      \
    X(cuGraphMemcpyNodeGetParams, cuGraphMemcpyNodeGetParams)                                      \
    /* hooks: memory queries */                                                                    \
    X(cuMemAllocPitch_v2, cuMemAllocPitch_v2)                                                      \
    X(cuMemGetAddressRange_v2, cuMemGetAddressRange_v2)                                            \
    X(cuPointerGetAttribute, cuPointerGetAttribute)                                                \
    X(cuPointerGetAttributes, cuPointerGetAttributes)                                              \
    /* hooks: copies (sync _ptds, async _ptsz) */                                                  \
    X(cuMemcpy, cuMemcpy)                                                                          \
    X(cuMemcpy_ptds, cuMemcpy)                                                                     \
    X(cuMemcpyPeer, cuMemcpyPeer)                                                                  \
    X(cuMemcpyPeer_ptds, cuMemcpyPeer)                                                             \
    X(cuMemcpyHtoD_v2, cuMemcpyHtoD_v2)                                                            \
    X(cuMemcpyHtoD_v2_ptds, cuMemcpyHtoD_v2)                                                       \
    X(cuMemcpyDtoH_v2, cuMemcpyDtoH_v2)                                                            \
    X(cuMemcpyDtoH_v2_ptds, cuMemcpyDtoH_v2)                                                       \
    X(cuMemcpyDtoD_v2, cuMemcpyDtoD_v2)                                                            \
    X(cuMemcpyDtoD_v2_ptds, cuMemcpyDtoD_v2)                                                       \
    X(cuMemcpyDtoA_v2, cuMemcpyDtoA_v2)                                                            \
    X(cuMemcpyDtoA_v2_ptds, cuMemcpyDtoA_v2)                                                       \
    X(cuMemcpyAtoD_v2, cuMemcpyAtoD_v2)                                                            \
    X(cuMemcpyAtoD_v2_ptds, cuMemcpyAtoD_v2)                                                       \
    X(cuMemcpy2D_v2, cuMemcpy2D_v2)                                                                \
    X(cuMemcpy2D_v2_ptds, cuMemcpy2D_v2)                                                           \
    X(cuMemcpy2DUnaligned_v2, cuMemcpy2DUnaligned_v2)                                              \
    X(cuMemcpy2DUnaligned_v2_ptds, cuMemcpy2DUnaligned_v2)                                         \
    X(cuMemcpy3D_v2, cuMemcpy3D_v2)                                                                \
    X(cuMemcpy3D_v2_ptds, cuMemcpy3D_v2)                                                           \
    X(cuMemcpy3DPeer, cuMemcpy3DPeer)                                                              \
    X(cuMemcpy3DPeer_ptds, cuMemcpy3DPeer)                                                         \
    X(cuMemcpyAsync, cuMemcpyAsync)                                                                \
    X(cuMemcpyAsync_ptsz, cuMemcpyAsync)                                                           \
    X(cuMemcpyPeerAsync, cuMemcpyPeerAsync)                                                        \
    X(cuMemcpyPeerAsync_ptsz, cuMemcpyPeerAsync)                                                   \
    X(cuMemcpyDtoDAsync_v2, cuMemcpyDtoDAsync_v2)                                                  \
    X(cuMemcpyDtoDAsync_v2_ptsz, cuMemcpyDtoDAsync_v2)                                             \
    X(cuMemcpy2DAsync_v2, cuMemcpy2DAsync_v2)                                                      \
    X(cuMemcpy2DAsync_v2_ptsz, cuMemcpy2DAsync_v2)                                                 \
    X(cuMemcpy3DAsync_v2, cuMemcpy3DAsync_v2)                                                      \
    X(cuMemcpy3DAsync_v2_ptsz, cuMemcpy3DAsync_v2)                                                 \
    X(cuMemcpy3DPeerAsync, cuMemcpy3DPeerAsync)                                                    \
    X(cuMemcpy3DPeerAsync_ptsz, cuMemcpy3DPeerAsync)                                               \
    X(cuMemcpyBatchAsync_v2, cuMemcpyBatchAsync_v2)                                                \
    X(cuMemcpyBatchAsync_v2_ptsz, cuMemcpyBatchAsync_v2)                                           \
    X(cuMemcpy3DBatchAsync_v2, cuMemcpy3DBatchAsync_v2)                                            \
    X(cuMemcpy3DBatchAsync_v2_ptsz, cuMemcpy3DBatchAsync_v2)                                       \
    X(cuMemcpyHtoDAsync_v2_ptsz, cuMemcpyHtoDAsync_v2)                                             \
    X(cuMemcpyDtoHAsync_v2_ptsz, cuMemcpyDtoHAsync_v2)                                             \
    X(cuMemcpyBatchAsync_v1, driver_abi_cuMemcpyBatchAsync_v1)                                     \
    X(cuMemcpyBatchAsync_ptsz, driver_abi_cuMemcpyBatchAsync_v1)                                   \
    X(cuMemcpy3DBatchAsync_v1, driver_abi_cuMemcpy3DBatchAsync_v1)                                 \
    X(cuMemcpy3DBatchAsync_ptsz, driver_abi_cuMemcpy3DBatchAsync_v1)                               \
    /* hooks: memset */                                                                            \
    X(cuMemsetD8_v2, cuMemsetD8_v2)                                                                \
    X(cuMemsetD8_v2_ptds, cuMemsetD8_v2)                                                           \
    X(cuMemsetD2D8_v2, cuMemsetD2D8_v2)                                                            \
    X(cuMemsetD2D8_v2_ptds, cuMemsetD2D8_v2)                                                       \
    X(cuMemsetD8Async, cuMemsetD8Async)                                                            \
    X(cuMemsetD8Async_ptsz, cuMemsetD8Async)                                                       \
    X(cuMemsetD2D8Async, cuMemsetD2D8Async)                                                        \
    X(cuMemsetD2D8Async_ptsz, cuMemsetD2D8Async)                                                   \
    X(cuMemsetD16_v2, cuMemsetD16_v2)                                                              \
    X(cuMemsetD16_v2_ptds, cuMemsetD16_v2)                                                         \
    X(cuMemsetD2D16_v2, cuMemsetD2D16_v2)                                                          \
    X(cuMemsetD2D16_v2_ptds, cuMemsetD2D16_v2)                                                     \
    X(cuMemsetD16Async, cuMemsetD16Async)                                                          \
    X(cuMemsetD16Async_ptsz, cuMemsetD16Async)                                                     \
    X(cuMemsetD2D16Async, cuMemsetD2D16Async)                                                      \
    X(cuMemsetD2D16Async_ptsz, cuMemsetD2D16Async)                                                 \
    X(cuMemsetD32_v2, cuMemsetD32_v2)                                                              \
    X(cuMemsetD32_v2_ptds, cuMemsetD32_v2)                                                         \
    X(cuMemsetD2D32_v2, cuMemsetD2D32_v2)                                                          \
    X(cuMemsetD2D32_v2_ptds, cuMemsetD2D32_v2)                                                     \
    X(cuMemsetD32Async, cuMemsetD32Async)                                                          \
    X(cuMemsetD32Async_ptsz, cuMemsetD32Async)                                                     \
    X(cuMemsetD2D32Async, cuMemsetD2D32Async)                                                      \
    X(cuMemsetD2D32Async_ptsz, cuMemsetD2D32Async)                                                 \
    /* hooks: launches and graphs */                                                               \
    X(cuLaunchKernelEx, cuLaunchKernelEx)                                                          \
    X(cuLaunchKernelEx_ptsz, cuLaunchKernelEx)                                                     \
    X(cuLaunchCooperativeKernel, cuLaunchCooperativeKernel)                                        \
    X(cuLaunchCooperativeKernel_ptsz, cuLaunchCooperativeKernel)                                   \
    X(cuGraphInstantiate_v1, driver_abi_cuGraphInstantiate_v1)                                     \
    X(cuGraphInstantiate_v2, driver_abi_cuGraphInstantiate_v1)                                     \
    X(cuGraphInstantiateWithFlags, cuGraphInstantiateWithFlags)                                    \
    X(cuGraphInstantiateWithParams, cuGraphInstantiateWithParams)                                  \
    X(cuGraphInstantiateWithParams_ptsz, cuGraphInstantiateWithParams)                             \
    X(cuGraphLaunch, cuGraphLaunch)                                                                \
    X(cuGraphLaunch_ptsz, cuGraphLaunch)                                                           \
    X(cuGraphExecDestroy, cuGraphExecDestroy)                                                      \
    X(cuGraphExecUpdate_v1, driver_abi_cuGraphExecUpdate_v1)                                       \
    X(cuGraphExecUpdate_v2, cuGraphExecUpdate_v2)                                                  \
    /* hooks: tensor maps */                                                                       \
    X(cuTensorMapEncodeTiled, cuTensorMapEncodeTiled)                                              \
    X(cuTensorMapEncodeIm2col, cuTensorMapEncodeIm2col)                                            \
    X(cuTensorMapEncodeIm2colWide, cuTensorMapEncodeIm2colWide)                                    \
    X(cuTensorMapReplaceAddress, cuTensorMapReplaceAddress)                                        \
    /* the resolver */                                                                             \
    X(cuGetProcAddress_v1, driver_abi_cuGetProcAddress_v1)                                         \
    X(cuGetProcAddress_v2, cuGetProcAddress_v2)

struct driver_table {
#define DRIVER_FIELD(symbol, prototype) __typeof__(&prototype) symbol;
    DRIVER_ENTRIES(DRIVER_FIELD)
#undef DRIVER_FIELD
};

/* The table, the real driver loaded on first use (OFFLOAD_DRIVER or libcuda.so.1).
 * Never NULL; an entry the driver lacks is NULL. Safe from any thread. */
const struct driver_table *driver(void);

/* The dlopen handle of the real driver (loading it on first use), or NULL when it could
 * not be loaded. */
void *driver_handle(void);

/* True when `handle` (from someone's dlopen) is the driver this table forwards to. Never
 * loads anything and never waits for a load in progress, so it is safe inside dlsym and
 * inside the loader's callbacks. */
bool driver_is_handle(void *handle);

/* What a hook returns when the entry it forwards to is missing: CUDA_ERROR_NOT_INITIALIZED
 * (no driver could be loaded; said once on stderr) or CUDA_ERROR_NOT_SUPPORTED (the
 * driver lacks that entry point). */
CUresult driver_missing(void);

/* A lookup in one loaded object by handle, through the real dlsym (never liboffload's
 * routing). liboffload's own code uses this instead of dlsym. */
void *driver_lookup(void *handle, const char *symbol);

#endif /* OFFLOAD_DRIVER_H */
