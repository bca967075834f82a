/*
 * hook_table.c — every exported hook, by the driver symbol it stands for (see hook.h).
 * Sorted by symbol (strcmp order): hook_find searches it with bsearch, and
 * tests/unit/test_interpose_resolver.c checks the order and that every hook has a
 * driver entry to forward to.
 */
#include "interpose/hook.h"

#include <stdlib.h>
#include <string.h>

static const struct hook_entry hooks[] = {
    {"cuCtxSynchronize", (void *)cuCtxSynchronize},
    {"cuCtxSynchronize_v2", (void *)cuCtxSynchronize_v2},
    {"cuEventSynchronize", (void *)cuEventSynchronize},
    {"cuGetProcAddress", (void *)hook_cuGetProcAddress_v1},
    {"cuGetProcAddress_v2", (void *)cuGetProcAddress_v2},
    {"cuGraphExecDestroy", (void *)cuGraphExecDestroy},
    {"cuGraphExecUpdate", (void *)hook_cuGraphExecUpdate_v1},
    {"cuGraphExecUpdate_v2", (void *)cuGraphExecUpdate_v2},
    {"cuGraphInstantiate", (void *)hook_cuGraphInstantiate_v1},
    {"cuGraphInstantiateWithFlags", (void *)cuGraphInstantiateWithFlags},
    {"cuGraphInstantiateWithParams", (void *)cuGraphInstantiateWithParams},
    {"cuGraphInstantiateWithParams_ptsz", (void *)cuGraphInstantiateWithParams_ptsz},
    {"cuGraphInstantiate_v2", (void *)cuGraphInstantiate_v2},
    {"cuGraphLaunch", (void *)cuGraphLaunch},
    {"cuGraphLaunch_ptsz", (void *)cuGraphLaunch_ptsz},
    {"cuLaunchCooperativeKernel", (void *)cuLaunchCooperativeKernel},
    {"cuLaunchCooperativeKernel_ptsz", (void *)cuLaunchCooperativeKernel_ptsz},
    {"cuLaunchKernel", (void *)cuLaunchKernel},
    {"cuLaunchKernelEx", (void *)cuLaunchKernelEx},
    {"cuLaunchKernelEx_ptsz", (void *)cuLaunchKernelEx_ptsz},
    {"cuLaunchKernel_ptsz", (void *)cuLaunchKernel_ptsz},
    {"cuMemAllocPitch_v2", (void *)cuMemAllocPitch_v2},
    {"cuMemAlloc_v2", (void *)cuMemAlloc_v2},
    {"cuMemFree_v2", (void *)cuMemFree_v2},
    {"cuMemGetAddressRange_v2", (void *)cuMemGetAddressRange_v2},
    {"cuMemGetInfo_v2", (void *)cuMemGetInfo_v2},
    {"cuMemcpy", (void *)cuMemcpy},
    {"cuMemcpy2DAsync_v2", (void *)cuMemcpy2DAsync_v2},
    {"cuMemcpy2DAsync_v2_ptsz", (void *)cuMemcpy2DAsync_v2_ptsz},
    {"cuMemcpy2DUnaligned_v2", (void *)cuMemcpy2DUnaligned_v2},
    {"cuMemcpy2DUnaligned_v2_ptds", (void *)cuMemcpy2DUnaligned_v2_ptds},
    {"cuMemcpy2D_v2", (void *)cuMemcpy2D_v2},
    {"cuMemcpy2D_v2_ptds", (void *)cuMemcpy2D_v2_ptds},
    {"cuMemcpy3DAsync_v2", (void *)cuMemcpy3DAsync_v2},
    {"cuMemcpy3DAsync_v2_ptsz", (void *)cuMemcpy3DAsync_v2_ptsz},
    {"cuMemcpy3DBatchAsync", (void *)hook_cuMemcpy3DBatchAsync_v1},
    {"cuMemcpy3DBatchAsync_ptsz", (void *)cuMemcpy3DBatchAsync_ptsz},
    {"cuMemcpy3DBatchAsync_v2", (void *)cuMemcpy3DBatchAsync_v2},
    {"cuMemcpy3DBatchAsync_v2_ptsz", (void *)cuMemcpy3DBatchAsync_v2_ptsz},
    {"cuMemcpy3DPeer", (void *)cuMemcpy3DPeer},
    {"cuMemcpy3DPeerAsync", (void *)cuMemcpy3DPeerAsync},
    {"cuMemcpy3DPeerAsync_ptsz", (void *)cuMemcpy3DPeerAsync_ptsz},
    {"cuMemcpy3DPeer_ptds", (void *)cuMemcpy3DPeer_ptds},
    {"cuMemcpy3D_v2", (void *)cuMemcpy3D_v2},
    {"cuMemcpy3D_v2_ptds", (void *)cuMemcpy3D_v2_ptds},
    {"cuMemcpyAsync", (void *)cuMemcpyAsync},
    {"cuMemcpyAsync_ptsz", (void *)cuMemcpyAsync_ptsz},
    {"cuMemcpyAtoD_v2", (void *)cuMemcpyAtoD_v2},
    {"cuMemcpyAtoD_v2_ptds", (void *)cuMemcpyAtoD_v2_ptds},
    {"cuMemcpyBatchAsync", (void *)hook_cuMemcpyBatchAsync_v1},
    {"cuMemcpyBatchAsync_ptsz", (void *)cuMemcpyBatchAsync_ptsz},
    {"cuMemcpyBatchAsync_v2", (void *)cuMemcpyBatchAsync_v2},
    {"cuMemcpyBatchAsync_v2_ptsz", (void *)cuMemcpyBatchAsync_v2_ptsz},
    {"cuMemcpyDtoA_v2", (void *)cuMemcpyDtoA_v2},
    {"cuMemcpyDtoA_v2_ptds", (void *)cuMemcpyDtoA_v2_ptds},
    {"cuMemcpyDtoDAsync_v2", (void *)cuMemcpyDtoDAsync_v2},
    {"cuMemcpyDtoDAsync_v2_ptsz", (void *)cuMemcpyDtoDAsync_v2_ptsz},
    {"cuMemcpyDtoD_v2", (void *)cuMemcpyDtoD_v2},
    {"cuMemcpyDtoD_v2_ptds", (void *)cuMemcpyDtoD_v2_ptds},
    {"cuMemcpyDtoHAsync_v2", (void *)cuMemcpyDtoHAsync_v2},
    {"cuMemcpyDtoHAsync_v2_ptsz", (void *)cuMemcpyDtoHAsync_v2_ptsz},
    {"cuMemcpyDtoH_v2", (void *)cuMemcpyDtoH_v2},
    {"cuMemcpyDtoH_v2_ptds", (void *)cuMemcpyDtoH_v2_ptds},
    {"cuMemcpyHtoDAsync_v2", (void *)cuMemcpyHtoDAsync_v2},
    {"cuMemcpyHtoDAsync_v2_ptsz", (void *)cuMemcpyHtoDAsync_v2_ptsz},
    {"cuMemcpyHtoD_v2", (void *)cuMemcpyHtoD_v2},
    {"cuMemcpyHtoD_v2_ptds", (void *)cuMemcpyHtoD_v2_ptds},
    {"cuMemcpyPeer", (void *)cuMemcpyPeer},
    {"cuMemcpyPeerAsync", (void *)cuMemcpyPeerAsync},
    {"cuMemcpyPeerAsync_ptsz", (void *)cuMemcpyPeerAsync_ptsz},
    {"cuMemcpyPeer_ptds", (void *)cuMemcpyPeer_ptds},
    {"cuMemcpy_ptds", (void *)cuMemcpy_ptds},
    {"cuMemsetD16Async", (void *)cuMemsetD16Async},
    {"cuMemsetD16Async_ptsz", (void *)cuMemsetD16Async_ptsz},
    {"cuMemsetD16_v2", (void *)cuMemsetD16_v2},
    {"cuMemsetD16_v2_ptds", (void *)cuMemsetD16_v2_ptds},
    {"cuMemsetD2D16Async", (void *)cuMemsetD2D16Async},
    {"cuMemsetD2D16Async_ptsz", (void *)cuMemsetD2D16Async_ptsz},
    {"cuMemsetD2D16_v2", (void *)cuMemsetD2D16_v2},
    {"cuMemsetD2D16_v2_ptds", (void *)cuMemsetD2D16_v2_ptds},
    {"cuMemsetD2D32Async", (void *)cuMemsetD2D32Async},
    {"cuMemsetD2D32Async_ptsz", (void *)cuMemsetD2D32Async_ptsz},
    {"cuMemsetD2D32_v2", (void *)cuMemsetD2D32_v2},
    {"cuMemsetD2D32_v2_ptds", (void *)cuMemsetD2D32_v2_ptds},
    {"cuMemsetD2D8Async", (void *)cuMemsetD2D8Async},
    {"cuMemsetD2D8Async_ptsz", (void *)cuMemsetD2D8Async_ptsz},
    {"cuMemsetD2D8_v2", (void *)cuMemsetD2D8_v2},
    {"cuMemsetD2D8_v2_ptds", (void *)cuMemsetD2D8_v2_ptds},
    {"cuMemsetD32Async", (void *)cuMemsetD32Async},
    {"cuMemsetD32Async_ptsz", (void *)cuMemsetD32Async_ptsz},
    {"cuMemsetD32_v2", (void *)cuMemsetD32_v2},
    {"cuMemsetD32_v2_ptds", (void *)cuMemsetD32_v2_ptds},
    {"cuMemsetD8Async", (void *)cuMemsetD8Async},
    {"cuMemsetD8Async_ptsz", (void *)cuMemsetD8Async_ptsz},
    {"cuMemsetD8_v2", (void *)cuMemsetD8_v2},
    {"cuMemsetD8_v2_ptds", (void *)cuMemsetD8_v2_ptds},
    {"cuPointerGetAttribute", (void *)cuPointerGetAttribute},
    {"cuPointerGetAttributes", (void *)cuPointerGetAttributes},
    {"cuStreamDestroy_v2", (void *)cuStreamDestroy_v2},
    {"cuStreamSynchronize", (void *)cuStreamSynchronize},
    {"cuStreamSynchronize_ptsz", (void *)cuStreamSynchronize_ptsz},
    {"cuTensorMapEncodeIm2col", (void *)cuTensorMapEncodeIm2col},
    {"cuTensorMapEncodeIm2colWide", (void *)cuTensorMapEncodeIm2colWide},
    {"cuTensorMapEncodeTiled", (void *)cuTensorMapEncodeTiled},
    {"cuTensorMapReplaceAddress", (void *)cuTensorMapReplaceAddress},
};

const struct hook_entry *hook_table(size_t *count) {
    *count = sizeof hooks / sizeof hooks[0];
    return hooks;
}

static int by_symbol(const void *key, const void *entry) {
    return strcmp(key, ((const struct hook_entry *)entry)->symbol);
}

const struct hook_entry *hook_find(const char *symbol) {
    if (!symbol)
        return NULL;
    return bsearch(symbol, hooks, sizeof hooks / sizeof hooks[0], sizeof hooks[0], by_symbol);
}
