/*
 * tensormap.c — cuTensorMapEncodeTiled, cuTensorMapEncodeIm2col,
 * cuTensorMapEncodeIm2colWide and cuTensorMapReplaceAddress.
 *
 * Each checks its arguments against the requirements cuda.h documents for a compute
 * capability 9.0 device and writes the simulator's opaque encoding (simkernel.h): the
 * address appears nowhere in plain, so a program (or liboffload) can learn it only from
 * the call that encoded it. Sub-byte packed data types (16U4/16U6, for later devices) and
 * the wide im2col mode are refused as a 9.0 device would refuse them.
 */
#include "tests/sim/sim.h"

#include <string.h>

static unsigned element_size(CUtensorMapDataType t) {
    switch (t) {
    case CU_TENSOR_MAP_DATA_TYPE_UINT8:
        return 1;
    case CU_TENSOR_MAP_DATA_TYPE_UINT16:
    case CU_TENSOR_MAP_DATA_TYPE_FLOAT16:
    case CU_TENSOR_MAP_DATA_TYPE_BFLOAT16:
        return 2;
    case CU_TENSOR_MAP_DATA_TYPE_UINT32:
    case CU_TENSOR_MAP_DATA_TYPE_INT32:
    case CU_TENSOR_MAP_DATA_TYPE_FLOAT32:
    case CU_TENSOR_MAP_DATA_TYPE_FLOAT32_FTZ:
    case CU_TENSOR_MAP_DATA_TYPE_TFLOAT32:
    case CU_TENSOR_MAP_DATA_TYPE_TFLOAT32_FTZ:
        return 4;
    case CU_TENSOR_MAP_DATA_TYPE_UINT64:
    case CU_TENSOR_MAP_DATA_TYPE_INT64:
    case CU_TENSOR_MAP_DATA_TYPE_FLOAT64:
        return 8;
    default:
        return 0; /* invalid, or a packed type this device has not */
    }
}

static int is_float(CUtensorMapDataType t) {
    return t == CU_TENSOR_MAP_DATA_TYPE_FLOAT16 || t == CU_TENSOR_MAP_DATA_TYPE_FLOAT32 ||
           t == CU_TENSOR_MAP_DATA_TYPE_FLOAT64 || t == CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 ||
           t == CU_TENSOR_MAP_DATA_TYPE_FLOAT32_FTZ || t == CU_TENSOR_MAP_DATA_TYPE_TFLOAT32 ||
           t == CU_TENSOR_MAP_DATA_TYPE_TFLOAT32_FTZ;
}

static unsigned swizzle_span(CUtensorMapSwizzle s) {
    switch (s) {
    case CU_TENSOR_MAP_SWIZZLE_32B:
        return 32;
    case CU_TENSOR_MAP_SWIZZLE_64B:
        return 64;
    default:
        return 128;
    }
}

/* What the encoders share: the map's alignment, data type, rank, address, dimensions,
 * strides, element strides and the enums; fills the common part of *t. `inner_bytes` is
 * the bounding box's inner dimension in bytes (boxDim[0] or channelsPerPixel). */
struct common_args {
    CUtensorMap *map;
    CUtensorMapDataType type;
    cuuint32_t rank, min_rank;
    void *address;
    const cuuint64_t *dim, *stride;
    const cuuint32_t *element_strides;
    CUtensorMapInterleave interleave;
    CUtensorMapSwizzle swizzle;
    CUtensorMapL2promotion l2;
    CUtensorMapFloatOOBfill oob;
};

static int address_valid(uintptr_t a, CUtensorMapInterleave interleave) {
    return a && a % (interleave == CU_TENSOR_MAP_INTERLEAVE_32B ? 32 : 16) == 0;
}

static CUresult check_common(const struct common_args *a, struct simkernel_tensor_map *t) {
    if (!sim_ctx_current())
        return CUDA_ERROR_INVALID_CONTEXT;
    unsigned es = element_size(a->type);
    if (!a->map || (uintptr_t)a->map % 64 || !es || a->rank < a->min_rank ||
        a->rank > SIMKERNEL_TMAP_MAX_RANK || !a->dim || (a->rank > 1 && !a->stride) ||
        !a->element_strides || (unsigned)a->interleave > CU_TENSOR_MAP_INTERLEAVE_32B ||
        (unsigned)a->swizzle > CU_TENSOR_MAP_SWIZZLE_128B_ATOM_64B ||
        (unsigned)a->l2 > CU_TENSOR_MAP_L2_PROMOTION_L2_256B ||
        (unsigned)a->oob > CU_TENSOR_MAP_FLOAT_OOB_FILL_NAN_REQUEST_ZERO_FMA)
        return CUDA_ERROR_INVALID_VALUE;
    if ((a->interleave != CU_TENSOR_MAP_INTERLEAVE_NONE && a->rank < 3) ||
        (a->interleave == CU_TENSOR_MAP_INTERLEAVE_32B &&
         a->swizzle != CU_TENSOR_MAP_SWIZZLE_32B) ||
        (a->oob == CU_TENSOR_MAP_FLOAT_OOB_FILL_NAN_REQUEST_ZERO_FMA && !is_float(a->type)) ||
        !address_valid((uintptr_t)a->address, a->interleave))
        return CUDA_ERROR_INVALID_VALUE;
    unsigned stride_align = a->interleave == CU_TENSOR_MAP_INTERLEAVE_32B ? 32 : 16;
    memset(t, 0, sizeof *t);
    for (unsigned i = 0; i < a->rank; i++) {
        if (a->dim[i] == 0 || a->dim[i] > (1ull << 32) || a->element_strides[i] == 0 ||
            a->element_strides[i] > 8)
            return CUDA_ERROR_INVALID_VALUE;
        if (i > 0 && (a->stride[i - 1] % stride_align || a->stride[i - 1] >= (1ull << 40)))
            return CUDA_ERROR_INVALID_VALUE;
        t->global_dim[i] = a->dim[i];
        t->global_stride[i] = i == 0 ? es : a->stride[i - 1];
        t->element_stride[i] = a->element_strides[i];
    }
    t->data_type = a->type;
    t->elem_size = es;
    t->rank = a->rank;
    t->global_address = (uintptr_t)a->address;
    t->interleave = a->interleave;
    t->swizzle = a->swizzle;
    t->l2_promotion = a->l2;
    t->oob_fill = a->oob;
    return CUDA_SUCCESS;
}

/* With no interleave, the box's inner dimension is a multiple of 16 bytes and fits the
 * swizzle span. */
static int inner_box_valid(const struct common_args *a, uint64_t inner_bytes) {
    if (a->interleave != CU_TENSOR_MAP_INTERLEAVE_NONE)
        return 1;
    if (a->swizzle != CU_TENSOR_MAP_SWIZZLE_NONE && inner_bytes > swizzle_span(a->swizzle))
        return 0;
    return 1;
}

SIM_API CUresult cuTensorMapEncodeTiled(
    CUtensorMap *tensorMap, CUtensorMapDataType tensorDataType, cuuint32_t tensorRank,
    void *globalAddress, const cuuint64_t *globalDim, const cuuint64_t *globalStrides,
    const cuuint32_t *boxDim, const cuuint32_t *elementStrides, CUtensorMapInterleave interleave,
    CUtensorMapSwizzle swizzle, CUtensorMapL2promotion l2Promotion,
    CUtensorMapFloatOOBfill oobFill) {
    SIM_ENTER("cuTensorMapEncodeTiled");
    struct common_args a = {tensorMap,     tensorDataType, tensorRank,    1,
                            globalAddress, globalDim,      globalStrides, elementStrides,
                            interleave,    swizzle,        l2Promotion,   oobFill};
    struct simkernel_tensor_map t;
    CUresult r = check_common(&a, &t);
    if (r != CUDA_SUCCESS)
        return r;
    if (!boxDim)
        return CUDA_ERROR_INVALID_VALUE;
    for (unsigned i = 0; i < tensorRank; i++) {
        if (boxDim[i] == 0 || boxDim[i] > 256)
            return CUDA_ERROR_INVALID_VALUE;
        t.box_dim[i] = boxDim[i];
    }
    uint64_t inner = (uint64_t)boxDim[0] * t.elem_size;
    if ((interleave == CU_TENSOR_MAP_INTERLEAVE_NONE && inner % 16) || !inner_box_valid(&a, inner))
        return CUDA_ERROR_INVALID_VALUE;
    t.kind = SIMKERNEL_TMAP_TILED;
    simkernel_tensor_map_encode(tensorMap, &t);
    return CUDA_SUCCESS;
}

/* The range of each pixel-box corner offset for a tensor of `rank` (3, 4 or 5). */
static int corner_valid(int v, cuuint32_t rank) {
    int lim = rank == 3 ? 32768 : rank == 4 ? 128 : 16;
    return v >= -lim && v < lim;
}

SIM_API CUresult cuTensorMapEncodeIm2col(
    CUtensorMap *tensorMap, CUtensorMapDataType tensorDataType, cuuint32_t tensorRank,
    void *globalAddress, const cuuint64_t *globalDim, const cuuint64_t *globalStrides,
    const int *pixelBoxLowerCorner, const int *pixelBoxUpperCorner, cuuint32_t channelsPerPixel,
    cuuint32_t pixelsPerColumn, const cuuint32_t *elementStrides, CUtensorMapInterleave interleave,
    CUtensorMapSwizzle swizzle, CUtensorMapL2promotion l2Promotion,
    CUtensorMapFloatOOBfill oobFill) {
    SIM_ENTER("cuTensorMapEncodeIm2col");
    struct common_args a = {tensorMap,     tensorDataType, tensorRank,    3,
                            globalAddress, globalDim,      globalStrides, elementStrides,
                            interleave,    swizzle,        l2Promotion,   oobFill};
    struct simkernel_tensor_map t;
    CUresult r = check_common(&a, &t);
    if (r != CUDA_SUCCESS)
        return r;
    if (!pixelBoxLowerCorner || !pixelBoxUpperCorner || channelsPerPixel == 0 ||
        channelsPerPixel > 256 || pixelsPerColumn == 0 || pixelsPerColumn > 1024 ||
        !inner_box_valid(&a, (uint64_t)channelsPerPixel * t.elem_size))
        return CUDA_ERROR_INVALID_VALUE;
    for (unsigned i = 0; i + 2 < tensorRank; i++) {
        if (!corner_valid(pixelBoxLowerCorner[i], tensorRank) ||
            !corner_valid(pixelBoxUpperCorner[i], tensorRank))
            return CUDA_ERROR_INVALID_VALUE;
        t.lower_corner[i] = pixelBoxLowerCorner[i];
        t.upper_corner[i] = pixelBoxUpperCorner[i];
    }
    t.kind = SIMKERNEL_TMAP_IM2COL;
    t.channels_per_pixel = channelsPerPixel;
    t.pixels_per_column = pixelsPerColumn;
    simkernel_tensor_map_encode(tensorMap, &t);
    return CUDA_SUCCESS;
}

/* Wide im2col needs a compute capability 10.0 device: checked like the others, then
 * refused (INVALID_VALUE, as the real driver on a 9.0 device), so a program's fallback
 * path is what runs. */
SIM_API CUresult cuTensorMapEncodeIm2colWide(
    CUtensorMap *tensorMap, CUtensorMapDataType tensorDataType, cuuint32_t tensorRank,
    void *globalAddress, const cuuint64_t *globalDim, const cuuint64_t *globalStrides,
    int pixelBoxLowerCornerWidth, int pixelBoxUpperCornerWidth, cuuint32_t channelsPerPixel,
    cuuint32_t pixelsPerColumn, const cuuint32_t *elementStrides, CUtensorMapInterleave interleave,
    CUtensorMapIm2ColWideMode mode, CUtensorMapSwizzle swizzle, CUtensorMapL2promotion l2Promotion,
    CUtensorMapFloatOOBfill oobFill) {
    SIM_ENTER("cuTensorMapEncodeIm2colWide");
    struct common_args a = {tensorMap,     tensorDataType, tensorRank,    3,
                            globalAddress, globalDim,      globalStrides, elementStrides,
                            interleave,    swizzle,        l2Promotion,   oobFill};
    struct simkernel_tensor_map t;
    CUresult r = check_common(&a, &t);
    if (r != CUDA_SUCCESS)
        return r;
    (void)pixelBoxLowerCornerWidth;
    (void)pixelBoxUpperCornerWidth;
    (void)channelsPerPixel;
    (void)pixelsPerColumn;
    (void)mode;
    return CUDA_ERROR_INVALID_VALUE;
}

/* The map must be one the simulator encoded; the new address must meet the alignment
 * the map's interleave asks for. */
SIM_API CUresult cuTensorMapReplaceAddress(CUtensorMap *tensorMap, void *globalAddress) {
    SIM_ENTER("cuTensorMapReplaceAddress");
    if (!sim_ctx_current())
        return CUDA_ERROR_INVALID_CONTEXT;
    struct simkernel_tensor_map t;
    if (!tensorMap || (uintptr_t)tensorMap % 64 ||
        simkernel_tensor_map_decode(tensorMap, &t) != 0 ||
        !address_valid((uintptr_t)globalAddress, (CUtensorMapInterleave)t.interleave))
        return CUDA_ERROR_INVALID_VALUE;
    t.global_address = (uintptr_t)globalAddress;
    simkernel_tensor_map_encode(tensorMap, &t);
    return CUDA_SUCCESS;
}
