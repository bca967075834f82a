/*
 * ranges.h — the device bytes a copy or memset touches, from its descriptor.
 *
 * Pure arithmetic (no driver, no state) so unit tests can drive it. Every answer is
 * conservative: it covers at least the bytes the driver will touch (more only where the
 * exact figure needs a driver query, as noted), so the runtime never lets a copy reach
 * evicted memory. A result that would run past the end of the address space is clamped
 * to it: the driver rejects such a copy itself.
 */
#ifndef OFFLOAD_RANGES_H
#define OFFLOAD_RANGES_H

#include <cuda.h>
#include <stdbool.h>
#include <stddef.h>

struct device_range {
    CUdeviceptr ptr;
    size_t bytes;
};

/* A pitched 2D region: rows of width_bytes, `pitch` apart, starting at (x bytes, y rows)
 * from base. False (and nothing to check) when width or height is 0. */
bool range_2d(CUdeviceptr base, size_t x, size_t y, size_t pitch, size_t width_bytes, size_t height,
              struct device_range *out);

/* A pitched 3D region: layers of `layer_rows` rows of `pitch` bytes. */
bool range_3d(CUdeviceptr base, size_t x, size_t y, size_t z, size_t pitch, size_t layer_rows,
              size_t width_bytes, size_t height, size_t depth, struct device_range *out);

/* The device side(s) of the copy descriptors: true and *out filled when that side is
 * device memory (CU_MEMORYTYPE_DEVICE or CU_MEMORYTYPE_UNIFIED, which may be device
 * memory); false for host memory and arrays (never tracked). */
bool range_memcpy2d_src(const CUDA_MEMCPY2D *c, struct device_range *out);
bool range_memcpy2d_dst(const CUDA_MEMCPY2D *c, struct device_range *out);
bool range_memcpy3d_src(const CUDA_MEMCPY3D *c, struct device_range *out);
bool range_memcpy3d_dst(const CUDA_MEMCPY3D *c, struct device_range *out);
bool range_memcpy3d_peer_src(const CUDA_MEMCPY3D_PEER *c, struct device_range *out);
bool range_memcpy3d_peer_dst(const CUDA_MEMCPY3D_PEER *c, struct device_range *out);

/* cuMemsetD2D{8,16,32}: `height` rows of width elements of element_size bytes. */
bool range_memset2d(CUdeviceptr dst, size_t pitch, size_t width, size_t height, size_t element_size,
                    struct device_range *out);

/* One operand of a cuMemcpy3DBatchAsync operation when it is a pointer. The extent is in
 * elements; between two pointers an element is 1 byte, between a pointer and an array it
 * is the array's element size, which would need a driver query: the largest element any
 * array format has (16 bytes) is assumed instead. */
bool range_batch3d_src(const CUDA_MEMCPY3D_BATCH_OP *op, struct device_range *out);
bool range_batch3d_dst(const CUDA_MEMCPY3D_BATCH_OP *op, struct device_range *out);

/* The largest element a CUDA array can have (4 channels of 32 bits; block-compressed
 * formats use 16-byte blocks). */
#define RANGE_MAX_ARRAY_ELEMENT 16

#endif /* OFFLOAD_RANGES_H */
