/*
 * test_interpose_ranges.c — the device bytes 2D/3D copies, 2D memsets and 3D batch
 * operations touch (interpose/ranges.c): exact where the descriptor says everything,
 * never smaller than what the driver touches, clamped instead of wrapping.
 */
#include "interpose/ranges.h"
#include "tests/unit/check.h"

#include <stdint.h>

TEST(two_d_region) {
    struct device_range r;
    /* 3 rows of 100 bytes, pitch 512, starting 10 bytes and 2 rows in */
    CHECK(range_2d(0x10000, 10, 2, 512, 100, 3, &r));
    CHECK_EQ_U64(r.ptr, 0x10000 + 2 * 512 + 10);
    CHECK_EQ_U64(r.bytes, 2 * 512 + 100);
    CHECK(!range_2d(0x10000, 0, 0, 512, 0, 3, &r));
    CHECK(!range_2d(0x10000, 0, 0, 512, 100, 0, &r));
}

TEST(three_d_region) {
    struct device_range r;
    /* layers of 8 rows of 256 bytes; 4 layers of 5 rows of 64 bytes from (16, 1, 2) */
    CHECK(range_3d(0x100000, 16, 1, 2, 256, 8, 64, 5, 4, &r));
    CHECK_EQ_U64(r.ptr, 0x100000 + 2 * 8 * 256 + 1 * 256 + 16);
    CHECK_EQ_U64(r.bytes, 3 * 8 * 256 + 4 * 256 + 64);
    /* Depth 1: the layer height may be 0 */
    CHECK(range_3d(0x100000, 0, 0, 0, 256, 0, 64, 5, 1, &r));
    CHECK_EQ_U64(r.bytes, 4 * 256 + 64);
}

TEST(memcpy2d_sides) {
    CUDA_MEMCPY2D c = {0};
    c.srcMemoryType = CU_MEMORYTYPE_HOST;
    c.dstMemoryType = CU_MEMORYTYPE_DEVICE;
    c.dstDevice = 0x200000;
    c.dstPitch = 1024;
    c.dstXInBytes = 4;
    c.dstY = 1;
    c.WidthInBytes = 1000;
    c.Height = 10;
    struct device_range r;
    CHECK(!range_memcpy2d_src(&c, &r));
    CHECK(range_memcpy2d_dst(&c, &r));
    CHECK_EQ_U64(r.ptr, 0x200000 + 1024 + 4);
    CHECK_EQ_U64(r.bytes, 9 * 1024 + 1000);
    c.srcMemoryType = CU_MEMORYTYPE_UNIFIED; /* may be device memory: checked */
    c.srcDevice = 0x300000;
    c.srcPitch = 1000;
    CHECK(range_memcpy2d_src(&c, &r));
    CHECK_EQ_U64(r.ptr, 0x300000);
    CHECK_EQ_U64(r.bytes, 9 * 1000 + 1000);
    c.srcMemoryType = CU_MEMORYTYPE_ARRAY;
    CHECK(!range_memcpy2d_src(&c, &r));
}

TEST(memcpy3d_and_peer_sides) {
    CUDA_MEMCPY3D c = {0};
    c.srcMemoryType = CU_MEMORYTYPE_DEVICE;
    c.srcDevice = 0x400000;
    c.srcPitch = 128;
    c.srcHeight = 4;
    c.srcZ = 1;
    c.dstMemoryType = CU_MEMORYTYPE_HOST;
    c.WidthInBytes = 100;
    c.Height = 4;
    c.Depth = 2;
    struct device_range r;
    CHECK(range_memcpy3d_src(&c, &r));
    CHECK_EQ_U64(r.ptr, 0x400000 + 4 * 128);
    CHECK_EQ_U64(r.bytes, 4 * 128 + 3 * 128 + 100);
    CHECK(!range_memcpy3d_dst(&c, &r));

    CUDA_MEMCPY3D_PEER p = {0};
    p.dstMemoryType = CU_MEMORYTYPE_DEVICE;
    p.dstDevice = 0x500000;
    p.dstPitch = 64;
    p.dstHeight = 2;
    p.WidthInBytes = 64;
    p.Height = 2;
    p.Depth = 3;
    CHECK(range_memcpy3d_peer_dst(&p, &r));
    CHECK_EQ_U64(r.ptr, 0x500000);
    CHECK_EQ_U64(r.bytes, 3 * 2 * 64);
    CHECK(!range_memcpy3d_peer_src(&p, &r)); /* type 0: not device memory */
}

TEST(memset2d) {
    struct device_range r;
    CHECK(range_memset2d(0x600000, 512, 100, 3, 4, &r)); /* 100 32-bit values per row */
    CHECK_EQ_U64(r.ptr, 0x600000);
    CHECK_EQ_U64(r.bytes, 2 * 512 + 400);
    CHECK(!range_memset2d(0x600000, 512, 0, 3, 4, &r));
}

TEST(batch3d_operands) {
    CUDA_MEMCPY3D_BATCH_OP op = {0};
    op.src.type = CU_MEMCPY_OPERAND_TYPE_POINTER;
    op.src.op.ptr.ptr = 0x700000;
    op.src.op.ptr.rowLength = 256; /* elements */
    op.src.op.ptr.layerHeight = 0; /* packed: the extent's height */
    op.dst.type = CU_MEMCPY_OPERAND_TYPE_POINTER;
    op.dst.op.ptr.ptr = 0x800000;
    op.extent.width = 100;
    op.extent.height = 3;
    op.extent.depth = 2;
    struct device_range r;
    /* pointer to pointer: 1-byte elements */
    CHECK(range_batch3d_src(&op, &r));
    CHECK_EQ_U64(r.ptr, 0x700000);
    CHECK_EQ_U64(r.bytes, 1 * 3 * 256 + 2 * 256 + 100);
    CHECK(range_batch3d_dst(&op, &r)); /* packed rows of the extent's width */
    CHECK_EQ_U64(r.bytes, 1 * 3 * 100 + 2 * 100 + 100);
    /* pointer to array: the largest element size is assumed, never less */
    op.dst.type = CU_MEMCPY_OPERAND_TYPE_ARRAY;
    CHECK(!range_batch3d_dst(&op, &r));
    CHECK(range_batch3d_src(&op, &r));
    CHECK_EQ_U64(r.bytes, (1 * 3 * 256 + 2 * 256 + 100) * RANGE_MAX_ARRAY_ELEMENT);
}

TEST(overflow_is_clamped_not_wrapped) {
    struct device_range r;
    CHECK(range_2d(0x1000, 0, 0, SIZE_MAX / 2, 16, 4, &r));
    CHECK_EQ_U64(r.ptr, 0x1000);
    CHECK_EQ_U64(r.bytes, UINT64_MAX - 0x1000);
    CHECK(range_2d(UINT64_MAX - 10, 0, 0, 100, 100, 1, &r));
    CHECK_EQ_U64(r.ptr, UINT64_MAX - 10);
    CHECK_EQ_U64(r.bytes, 10);
}

int main(void) {
    RUN(two_d_region);
    RUN(three_d_region);
    RUN(memcpy2d_sides);
    RUN(memcpy3d_and_peer_sides);
    RUN(memset2d);
    RUN(batch3d_operands);
    RUN(overflow_is_clamped_not_wrapped);
    return check_summary();
}
