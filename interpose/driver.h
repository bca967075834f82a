/*
 * driver.h — the real driver's entry points. liboffload calls the driver through this
 * table and nothing else: hooks forward to the real symbol of the same name, the
 * runtime uses it for its own work (VMM, copies, events).
 *
 * DRIVER_ENTRIES lists (symbol, prototype): the exact versioned symbol the real
 * library exports, and the declaration in cuda.h whose type it has. Per-thread
 * variants (_ptds/_ptsz) share their base's prototype. Add an entry here to call a
 * new entry point; keep the list sorted by area.
 */
#ifndef OFFLOAD_DRIVER_H
#define OFFLOAD_DRIVER_H

#include <cuda.h>

#define DRIVER_ENTRIES(X)                                                                          \
    /* init, device, context */                                                                    \
    X(cuInit, cuInit)                                                                              \
    X(cuGetErrorName, cuGetErrorName)                                                              \
    X(cuDeviceGetAttribute, cuDeviceGetAttribute)                                                  \
    X(cuDeviceTotalMem_v2, cuDeviceTotalMem_v2)                                                    \
    X(cuCtxGetCurrent, cuCtxGetCurrent)                                                            \
    X(cuCtxSetCurrent, cuCtxSetCurrent)                                                            \
    X(cuCtxGetDevice, cuCtxGetDevice)                                                              \
    X(cuCtxSynchronize, cuCtxSynchronize)                                                          \
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
    /* streams and events */                                                                       \
    X(cuStreamCreate, cuStreamCreate)                                                              \
    X(cuStreamDestroy_v2, cuStreamDestroy_v2)                                                      \
    X(cuStreamSynchronize, cuStreamSynchronize)                                                    \
    X(cuStreamWaitEvent, cuStreamWaitEvent)                                                        \
    X(cuStreamIsCapturing, cuStreamIsCapturing)                                                    \
    X(cuEventCreate, cuEventCreate)                                                                \
    X(cuEventDestroy_v2, cuEventDestroy_v2)                                                        \
    X(cuEventRecord, cuEventRecord)                                                                \
    X(cuEventQuery, cuEventQuery)                                                                  \
    X(cuEventSynchronize, cuEventSynchronize)                                                      \
    /* kernels */                                                                                  \
    X(cuFuncGetParamInfo, cuFuncGetParamInfo)                                                      \
    X(cuFuncGetName, cuFuncGetName)                                                                \
    X(cuLaunchKernel, cuLaunchKernel)                                                              \
    X(cuLaunchKernel_ptsz, cuLaunchKernel)                                                         \
    /* runtime: context guard, graph walking */                                                   \
    X(cuCtxPushCurrent_v2, cuCtxPushCurrent_v2)                                                    \
    X(cuCtxPopCurrent_v2, cuCtxPopCurrent_v2)                                                      \
    X(cuGraphGetNodes, cuGraphGetNodes)                                                            \
    X(cuGraphNodeGetType, cuGraphNodeGetType)                                                      \
    X(cuGraphKernelNodeGetParams_v2, cuGraphKernelNodeGetParams_v2)                                \
    X(cuGraphChildGraphNodeGetGraph, cuGraphChildGraphNodeGetGraph)                                \
    X(cuGraphMemsetNodeGetParams, cuGraphMemsetNodeGetParams)                                      \
    X(cuGraphMemcpyNodeGetParams, cuGraphMemcpyNodeGetParams)                                      \
    /* the resolver */                                                                             \
    X(cuGetProcAddress_v2, cuGetProcAddress_v2)

struct driver_table {
#define DRIVER_FIELD(symbol, prototype) __typeof__(&prototype) symbol;
    DRIVER_ENTRIES(DRIVER_FIELD)
#undef DRIVER_FIELD
};

/* The table, the real driver loaded on first use (OFFLOAD_DRIVER or libcuda.so.1).
 * Never NULL; an entry the driver lacks is NULL. Safe from any thread. */
const struct driver_table *driver(void);

#endif /* OFFLOAD_DRIVER_H */
