/* The simulated driver's pitched, 3D, peer and batched copies, 2D memsets, pitched
 * allocation and pointer queries. */
#include "tests/sim/testutil.h"
#include "tests/unit/check.h"

#include <stdlib.h>

TEST(pitched_2d) {
    CUdeviceptr d;
    size_t pitch = 0;
    CHECK_CU(cuMemAllocPitch(&d, &pitch, 100, 8, 4));
    CHECK_EQ_U64(pitch, 512);
    unsigned char host[8][128], back[8][100];
    for (int y = 0; y < 8; y++)
        for (int x = 0; x < 128; x++)
            host[y][x] = (unsigned char)(y * 16 + x);
    CHECK_CU(sim_test_landed(cuMemsetD2D8(d, pitch, 0xee, pitch, 8)));
    CUDA_MEMCPY2D c = {0};
    c.srcMemoryType = CU_MEMORYTYPE_HOST;
    c.srcHost = host;
    c.srcPitch = 128;
    c.srcXInBytes = 4;
    c.dstMemoryType = CU_MEMORYTYPE_DEVICE;
    c.dstDevice = d;
    c.dstPitch = pitch;
    c.WidthInBytes = 100;
    c.Height = 8;
    CHECK_CU(sim_test_landed(cuMemcpy2D(&c)));
    CUDA_MEMCPY2D b = {0};
    b.srcMemoryType = CU_MEMORYTYPE_UNIFIED;
    b.srcDevice = d;
    b.srcPitch = pitch;
    b.dstMemoryType = CU_MEMORYTYPE_HOST;
    b.dstHost = back;
    b.dstPitch = 100;
    b.WidthInBytes = 100;
    b.Height = 8;
    CHECK_CU(cuMemcpy2DUnaligned(&b));
    int ok = 1;
    for (int y = 0; y < 8; y++)
        for (int x = 0; x < 100; x++)
            ok &= back[y][x] == host[y][x + 4];
    CHECK(ok);
    unsigned char gap = 0;
    CHECK_CU(cuMemcpyDtoH(&gap, d + 100, 1)); /* between rows: the memset's value */
    CHECK_EQ_U64(gap, 0xee);
    /* a pitch past the allocation fails, nothing copied */
    c.dstPitch = pitch * 2;
    CHECK_EQ_U64(cuMemcpy2D(&c), CUDA_ERROR_INVALID_VALUE);
    CHECK_CU(cuMemsetD2D32Async(d, pitch, 7, 25, 8, NULL));
    unsigned w = 0;
    CHECK_CU(cuMemcpyDtoH(&w, d + 7 * pitch + 96, 4));
    CHECK_EQ_U64(w, 7);
    CHECK_CU(cuMemFree(d));
}

TEST(copy_3d) {
    enum { W = 16, H = 4, Z = 3 };
    unsigned char host[Z][H][W], back[Z][H][W];
    for (int z = 0; z < Z; z++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                host[z][y][x] = (unsigned char)(z * 64 + y * 16 + x);
    CUdeviceptr d;
    size_t dpitch = 32, dheight = 5;
    CHECK_CU(cuMemAlloc(&d, dpitch * dheight * Z));
    CUDA_MEMCPY3D c = {0};
    c.srcMemoryType = CU_MEMORYTYPE_HOST;
    c.srcHost = host;
    c.srcPitch = W;
    c.srcHeight = H;
    c.dstMemoryType = CU_MEMORYTYPE_DEVICE;
    c.dstDevice = d;
    c.dstPitch = dpitch;
    c.dstHeight = dheight;
    c.WidthInBytes = W;
    c.Height = H;
    c.Depth = Z;
    CHECK_CU(sim_test_landed(cuMemcpy3D(&c)));
    CUDA_MEMCPY3D r = {0};
    r.srcMemoryType = CU_MEMORYTYPE_DEVICE;
    r.srcDevice = d;
    r.srcPitch = dpitch;
    r.srcHeight = dheight;
    r.dstMemoryType = CU_MEMORYTYPE_HOST;
    r.dstHost = back;
    r.dstPitch = W;
    r.dstHeight = H;
    r.WidthInBytes = W;
    r.Height = H;
    r.Depth = Z;
    memset(back, 0, sizeof back);
    CHECK_CU(cuMemcpy3DAsync(&r, NULL));
    CHECK(memcmp(host, back, sizeof host) == 0);
    unsigned char probe = 0;
    CHECK_CU(cuMemcpyDtoH(&probe, d + 2 * dpitch * dheight + 3 * dpitch + 5, 1));
    CHECK_EQ_U64(probe, host[2][3][5]);
    CHECK_CU(cuMemFree(d));
}

TEST(peer_and_batches) {
    CUcontext ctx;
    CHECK_CU(cuCtxGetCurrent(&ctx));
    CUdeviceptr a, b;
    CHECK_CU(cuMemAlloc(&a, 4096));
    CHECK_CU(cuMemAlloc(&b, 4096));
    unsigned char src[4096], back[4096];
    for (int i = 0; i < 4096; i++)
        src[i] = (unsigned char)(i * 3);
    CHECK_CU(sim_test_landed(cuMemcpyHtoD(a, src, 4096)));
    CHECK_CU(cuMemcpyPeer(b, ctx, a, ctx, 4096));
    CHECK_CU(cuMemcpyDtoH(back, b, 4096));
    CHECK(memcmp(src, back, 4096) == 0);
    CHECK_EQ_U64(cuMemcpyPeer(b, NULL, a, ctx, 16), CUDA_ERROR_INVALID_CONTEXT);

    CHECK_CU(sim_test_landed(cuMemsetD8(b, 0, 4096)));
    CUdeviceptr dsts[2] = {b, b + 2048}, srcs[2] = {a + 100, (CUdeviceptr)src};
    size_t sizes[2] = {100, 50};
    CUmemcpyAttributes attr = {0};
    attr.srcAccessOrder = CU_MEMCPY_SRC_ACCESS_ORDER_STREAM;
    size_t idx = 0;
    CHECK_CU(cuMemcpyBatchAsync(dsts, srcs, sizes, 2, &attr, &idx, 1, NULL));
    CHECK_CU(cuCtxSynchronize());
    CHECK_CU(cuMemcpyDtoH(back, b, 4096));
    CHECK(memcmp(back, src + 100, 100) == 0 && back[100] == 0);
    CHECK(memcmp(back + 2048, src, 50) == 0 && back[2098] == 0);

    CUDA_MEMCPY3D_BATCH_OP op = {0};
    op.src.type = op.dst.type = CU_MEMCPY_OPERAND_TYPE_POINTER;
    op.src.op.ptr.ptr = a;
    op.src.op.ptr.rowLength = 64;
    op.dst.op.ptr.ptr = b;
    op.extent.width = 16;
    op.extent.height = 4;
    op.extent.depth = 1;
    op.srcAccessOrder = CU_MEMCPY_SRC_ACCESS_ORDER_STREAM;
    CHECK_CU(cuMemcpy3DBatchAsync(1, &op, 0, NULL));
    CHECK_CU(cuCtxSynchronize());
    CHECK_CU(cuMemcpyDtoH(back, b, 64));
    int ok = 1;
    for (int y = 0; y < 4; y++)
        ok &= memcmp(back + 16 * y, src + 64 * y, 16) == 0;
    CHECK(ok);
    CHECK_CU(cuMemFree(a));
    CHECK_CU(cuMemFree(b));
}

TEST(pointer_queries) {
    CUdeviceptr d;
    CHECK_CU(cuMemAlloc(&d, 1000));
    unsigned type = 0;
    CHECK_CU(cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, d + 10));
    CHECK_EQ_U64(type, CU_MEMORYTYPE_DEVICE);
    CUdeviceptr start = 0;
    size_t size = 0;
    CHECK_CU(cuPointerGetAttribute(&start, CU_POINTER_ATTRIBUTE_RANGE_START_ADDR, d + 10));
    CHECK_CU(cuPointerGetAttribute(&size, CU_POINTER_ATTRIBUTE_RANGE_SIZE, d + 10));
    CHECK(start == d && size == 1000);
    int local = 0;
    CHECK_EQ_U64(
        cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, (CUdeviceptr)&local),
        CUDA_ERROR_INVALID_VALUE);
    CUpointer_attribute attrs[2] = {CU_POINTER_ATTRIBUTE_MEMORY_TYPE,
                                    CU_POINTER_ATTRIBUTE_RANGE_SIZE};
    void *data[2] = {&type, &size};
    CHECK_CU(cuPointerGetAttributes(2, attrs, data, (CUdeviceptr)&local));
    CHECK(type == 0 && size == 0);
    CHECK_EQ_U64(cuMemGetAddressRange(&start, &size, (CUdeviceptr)&local), CUDA_ERROR_NOT_FOUND);

    /* a VMM range: its mapping is the range */
    CUmemAllocationProp p = {0};
    p.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    p.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    CUmemAccessDesc a = {{CU_MEM_LOCATION_TYPE_DEVICE, 0}, CU_MEM_ACCESS_FLAGS_PROT_READWRITE};
    CUdeviceptr va;
    CUmemGenericAllocationHandle h;
    CHECK_CU(cuMemAddressReserve(&va, 8 << 20, 0, 0, 0));
    CHECK_CU(cuMemCreate(&h, 4 << 20, &p, 0));
    CHECK_CU(cuMemMap(va + (2 << 20), 4 << 20, 0, h, 0));
    CHECK_CU(cuMemSetAccess(va + (2 << 20), 4 << 20, &a, 1));
    CHECK_CU(cuMemGetAddressRange(&start, &size, va + (3 << 20)));
    CHECK(start == va + (2 << 20) && size == (4 << 20));
    CHECK_EQ_U64(cuMemGetAddressRange(&start, &size, va), CUDA_ERROR_NOT_FOUND);
    int mapped = 0;
    CHECK_CU(cuPointerGetAttribute(&mapped, CU_POINTER_ATTRIBUTE_MAPPED, va + (3 << 20)));
    CHECK(mapped);
    CHECK_CU(cuMemUnmap(va + (2 << 20), 4 << 20));
    CHECK_CU(cuMemRelease(h));
    CHECK_CU(cuMemAddressFree(va, 8 << 20));
    CHECK_CU(cuMemFree(d));
}

int main(void) {
    if (!sim_test_setup())
        return 1;
    RUN(pitched_2d);
    RUN(copy_3d);
    RUN(peer_and_batches);
    RUN(pointer_queries);
    return check_summary();
}
