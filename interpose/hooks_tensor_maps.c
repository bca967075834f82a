/*
 * hooks_tensor_maps.c — the tensor-map encoders and cuTensorMapReplaceAddress.
 *
 * A CUtensorMap's 128 bytes are opaque: only the call that writes them says which global
 * address they describe. Each hook forwards the unchanged call and, when the driver
 * succeeded, remembers the bytes it wrote with that address (runtime/launch/tensor_maps.h),
 * so a launch passing the map (alone or inside a Params struct) makes the address's
 * allocation resident like any pointer. Encoding touches no device memory: nothing is
 * bracketed.
 */
#include "interpose/hook.h"
#include "runtime/launch/tensor_maps.h"

static CUresult remembered(CUresult rc, const CUtensorMap *map, const void *global) {
    if (rc == CUDA_SUCCESS && map)
        tensor_maps_remember(map, (CUdeviceptr)(uintptr_t)global);
    return rc;
}

OFFLOAD_EXPORT CUresult cuTensorMapEncodeTiled(
    CUtensorMap *tensorMap, CUtensorMapDataType tensorDataType, cuuint32_t tensorRank,
    void *globalAddress, const cuuint64_t *globalDim, const cuuint64_t *globalStrides,
    const cuuint32_t *boxDim, const cuuint32_t *elementStrides, CUtensorMapInterleave interleave,
    CUtensorMapSwizzle swizzle, CUtensorMapL2promotion l2Promotion,
    CUtensorMapFloatOOBfill oobFill) {
    return remembered(
        HOOK_FORWARD(cuTensorMapEncodeTiled, (tensorMap, tensorDataType, tensorRank, globalAddress,
                                              globalDim, globalStrides, boxDim, elementStrides,
                                              interleave, swizzle, l2Promotion, oobFill)),
        tensorMap, globalAddress);
}

OFFLOAD_EXPORT CUresult cuTensorMapEncodeIm2col(
    CUtensorMap *tensorMap, CUtensorMapDataType tensorDataType, cuuint32_t tensorRank,
    void *globalAddress, const cuuint64_t *globalDim, const cuuint64_t *globalStrides,
    const int *pixelBoxLowerCorner, const int *pixelBoxUpperCorner, cuuint32_t channelsPerPixel,
    cuuint32_t pixelsPerColumn, const cuuint32_t *elementStrides, CUtensorMapInterleave interleave,
    CUtensorMapSwizzle swizzle, CUtensorMapL2promotion l2Promotion,
    CUtensorMapFloatOOBfill oobFill) {
    return remembered(
        HOOK_FORWARD(cuTensorMapEncodeIm2col,
                     (tensorMap, tensorDataType, tensorRank, globalAddress, globalDim,
                      globalStrides, pixelBoxLowerCorner, pixelBoxUpperCorner, channelsPerPixel,
                      pixelsPerColumn, elementStrides, interleave, swizzle, l2Promotion, oobFill)),
        tensorMap, globalAddress);
}

OFFLOAD_EXPORT CUresult cuTensorMapEncodeIm2colWide(
    CUtensorMap *tensorMap, CUtensorMapDataType tensorDataType, cuuint32_t tensorRank,
    void *globalAddress, const cuuint64_t *globalDim, const cuuint64_t *globalStrides,
    int pixelBoxLowerCornerWidth, int pixelBoxUpperCornerWidth, cuuint32_t channelsPerPixel,
    cuuint32_t pixelsPerColumn, const cuuint32_t *elementStrides, CUtensorMapInterleave interleave,
    CUtensorMapIm2ColWideMode mode, CUtensorMapSwizzle swizzle, CUtensorMapL2promotion l2Promotion,
    CUtensorMapFloatOOBfill oobFill) {
    return remembered(
        HOOK_FORWARD(cuTensorMapEncodeIm2colWide,
                     (tensorMap, tensorDataType, tensorRank, globalAddress, globalDim,
                      globalStrides, pixelBoxLowerCornerWidth, pixelBoxUpperCornerWidth,
                      channelsPerPixel, pixelsPerColumn, elementStrides, interleave, mode, swizzle,
                      l2Promotion, oobFill)),
        tensorMap, globalAddress);
}

/* The map's bytes change: the new bytes are remembered with the new address. The old
 * bytes stay remembered too, for copies of the map the program made before. */
OFFLOAD_EXPORT CUresult cuTensorMapReplaceAddress(CUtensorMap *tensorMap, void *globalAddress) {
    return remembered(HOOK_FORWARD(cuTensorMapReplaceAddress, (tensorMap, globalAddress)),
                      tensorMap, globalAddress);
}
