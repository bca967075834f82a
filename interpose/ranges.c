/*
 * ranges.c — the device bytes a copy or memset touches (see ranges.h).
 */
#include "interpose/ranges.h"

#include <stdint.h>

/* a*b + c, saturating at SIZE_MAX: an overflowing descriptor still gets a range that
 * covers everything after its start. */
static size_t mul_add(size_t a, size_t b, size_t c) {
    size_t product, sum;
    if (__builtin_mul_overflow(a, b, &product) || __builtin_add_overflow(product, c, &sum))
        return SIZE_MAX;
    return sum;
}

static size_t add(size_t a, size_t b) {
    size_t sum;
    return __builtin_add_overflow(a, b, &sum) ? SIZE_MAX : sum;
}

static bool make_range(CUdeviceptr base, size_t offset, size_t bytes, struct device_range *out) {
    CUdeviceptr start;
    if (offset == SIZE_MAX || __builtin_add_overflow(base, (CUdeviceptr)offset, &start)) {
        out->ptr = base;
        out->bytes = (size_t)(UINT64_MAX - base);
        return true;
    }
    out->ptr = start;
    uint64_t room = UINT64_MAX - start;
    out->bytes = (uint64_t)bytes > room ? (size_t)room : bytes;
    return true;
}

bool range_2d(CUdeviceptr base, size_t x, size_t y, size_t pitch, size_t width_bytes, size_t height,
              struct device_range *out) {
    return range_3d(base, x, y, 0, pitch, 0, width_bytes, height, 1, out);
}

bool range_3d(CUdeviceptr base, size_t x, size_t y, size_t z, size_t pitch, size_t layer_rows,
              size_t width_bytes, size_t height, size_t depth, struct device_range *out) {
    if (width_bytes == 0 || height == 0 || depth == 0)
        return false;
    size_t layer_bytes = mul_add(layer_rows, pitch, 0);
    /* first byte: z layers, y rows and x bytes in */
    size_t offset = add(mul_add(z, layer_bytes, 0), mul_add(y, pitch, x));
    /* last row starts (depth-1) layers and (height-1) rows further on */
    size_t span = add(mul_add(depth - 1, layer_bytes, 0), mul_add(height - 1, pitch, width_bytes));
    return make_range(base, offset, span, out);
}

static bool is_device(CUmemorytype type) {
    return type == CU_MEMORYTYPE_DEVICE || type == CU_MEMORYTYPE_UNIFIED;
}

bool range_memcpy2d_src(const CUDA_MEMCPY2D *c, struct device_range *out) {
    return is_device(c->srcMemoryType) && range_2d(c->srcDevice, c->srcXInBytes, c->srcY,
                                                   c->srcPitch, c->WidthInBytes, c->Height, out);
}

bool range_memcpy2d_dst(const CUDA_MEMCPY2D *c, struct device_range *out) {
    return is_device(c->dstMemoryType) && range_2d(c->dstDevice, c->dstXInBytes, c->dstY,
                                                   c->dstPitch, c->WidthInBytes, c->Height, out);
}

/* srcHeight/dstHeight may be 0 when Depth == 1 (cuda.h): the layer size is then unused. */
bool range_memcpy3d_src(const CUDA_MEMCPY3D *c, struct device_range *out) {
    return is_device(c->srcMemoryType) &&
           range_3d(c->srcDevice, c->srcXInBytes, c->srcY, c->srcZ, c->srcPitch, c->srcHeight,
                    c->WidthInBytes, c->Height, c->Depth, out);
}

bool range_memcpy3d_dst(const CUDA_MEMCPY3D *c, struct device_range *out) {
    return is_device(c->dstMemoryType) &&
           range_3d(c->dstDevice, c->dstXInBytes, c->dstY, c->dstZ, c->dstPitch, c->dstHeight,
                    c->WidthInBytes, c->Height, c->Depth, out);
}

bool range_memcpy3d_peer_src(const CUDA_MEMCPY3D_PEER *c, struct device_range *out) {
    return is_device(c->srcMemoryType) &&
           range_3d(c->srcDevice, c->srcXInBytes, c->srcY, c->srcZ, c->srcPitch, c->srcHeight,
                    c->WidthInBytes, c->Height, c->Depth, out);
}

bool range_memcpy3d_peer_dst(const CUDA_MEMCPY3D_PEER *c, struct device_range *out) {
    return is_device(c->dstMemoryType) &&
           range_3d(c->dstDevice, c->dstXInBytes, c->dstY, c->dstZ, c->dstPitch, c->dstHeight,
                    c->WidthInBytes, c->Height, c->Depth, out);
}

bool range_memset2d(CUdeviceptr dst, size_t pitch, size_t width, size_t height, size_t element_size,
                    struct device_range *out) {
    return range_2d(dst, 0, 0, pitch, mul_add(width, element_size, 0), height, out);
}

static bool batch_operand(const CUmemcpy3DOperand *operand, const CUmemcpy3DOperand *other,
                          const CUextent3D *extent, struct device_range *out) {
    if (operand->type != CU_MEMCPY_OPERAND_TYPE_POINTER)
        return false;
    size_t element = other->type == CU_MEMCPY_OPERAND_TYPE_POINTER ? 1 : RANGE_MAX_ARRAY_ELEMENT;
    /* rowLength/layerHeight 0 mean "tightly packed": the extent's own width/height */
    size_t row = operand->op.ptr.rowLength ? operand->op.ptr.rowLength : extent->width;
    size_t rows = operand->op.ptr.layerHeight ? operand->op.ptr.layerHeight : extent->height;
    return range_3d(operand->op.ptr.ptr, 0, 0, 0, mul_add(row, element, 0), rows,
                    mul_add(extent->width, element, 0), extent->height, extent->depth, out);
}

bool range_batch3d_src(const CUDA_MEMCPY3D_BATCH_OP *op, struct device_range *out) {
    return batch_operand(&op->src, &op->dst, &op->extent, out);
}

bool range_batch3d_dst(const CUDA_MEMCPY3D_BATCH_OP *op, struct device_range *out) {
    return batch_operand(&op->dst, &op->src, &op->extent, out);
}
