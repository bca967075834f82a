/* The simulated driver's tensor maps (tests/sim/tensormap.c) and the kernel-side reads
 * through them (cuda_host.h). */
#include "tests/sim/testutil.h"
#include "tests/unit/check.h"

#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>

#define W 8
#define H 4

static CUdeviceptr a_buf, b_buf, out_buf;

/* A 2D map of W x H 32-bit elements at base, rows of 64 bytes (W*4 = 32 + 32 padding). */
static CUresult encode_2d(CUtensorMap *m, CUdeviceptr base, unsigned box_w, unsigned box_h) {
    cuuint64_t dim[2] = {W, H}, stride[1] = {64};
    cuuint32_t box[2] = {box_w, box_h}, estride[2] = {1, 1};
    return cuTensorMapEncodeTiled(m, CU_TENSOR_MAP_DATA_TYPE_UINT32, 2, (void *)base, dim, stride,
                                  box, estride, CU_TENSOR_MAP_INTERLEAVE_NONE,
                                  CU_TENSOR_MAP_SWIZZLE_NONE, CU_TENSOR_MAP_L2_PROMOTION_NONE,
                                  CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
}

/* buf[y][x] = seed + y * 100 + x, rows of 16 words. */
static void fill(CUdeviceptr buf, unsigned seed) {
    unsigned host[16 * H];
    for (unsigned y = 0; y < H; y++)
        for (unsigned x = 0; x < 16; x++)
            host[y * 16 + x] = seed + y * 100 + x;
    cuMemcpyHtoD(buf, host, sizeof host);
}

static CUresult gather(const CUtensorMap *m, unsigned *out) {
    unsigned w = W, h = H;
    CUdeviceptr o = out_buf;
    void *args[] = {(void *)m, &o, &w, &h};
    CUresult r =
        cuLaunchKernel(sim_test_kernel("tmap_gather"), 1, 1, 1, W * H, 1, 1, 0, NULL, args, NULL);
    if (r == CUDA_SUCCESS)
        r = cuMemcpyDtoH(out, out_buf, W * H * 4);
    return r;
}

/* The address is in no plain word, nor at any byte offset, of the 128 bytes. */
TEST(address_not_stored_plainly) {
    CUtensorMap m;
    CHECK_CU(encode_2d(&m, a_buf, 8, 2));
    uint64_t addr = a_buf;
    const unsigned char *b = (const unsigned char *)&m;
    for (size_t off = 0; off + 8 <= sizeof m; off++) {
        uint64_t v;
        memcpy(&v, b + off, 8);
        CHECK(v != addr);
    }
    /* deterministic: the same arguments give the same bytes (what liboffload compares) */
    CUtensorMap again;
    CHECK_CU(encode_2d(&again, a_buf, 8, 2));
    CHECK(memcmp(&m, &again, sizeof m) == 0);
    CUtensorMap other;
    CHECK_CU(encode_2d(&other, b_buf, 8, 2));
    CHECK(memcmp(&m, &other, sizeof m) != 0);
}

TEST(kernel_reads_through_map) {
    fill(a_buf, 1000);
    fill(b_buf, 5000);
    CUtensorMap m;
    CHECK_CU(encode_2d(&m, a_buf, 8, 2));
    unsigned out[W * H];
    CHECK_CU(gather(&m, out));
    for (unsigned y = 0; y < H; y++)
        for (unsigned x = 0; x < W; x++)
            CHECK_EQ_U64(out[y * W + x], 1000 + y * 100 + x);
    /* cuTensorMapReplaceAddress: the same map now reads b */
    CHECK_CU(cuTensorMapReplaceAddress(&m, (void *)b_buf));
    CHECK_CU(gather(&m, out));
    CHECK_EQ_U64(out[0], 5000);
    CHECK_EQ_U64(out[W * H - 1], 5000 + (H - 1) * 100 + W - 1);
    CHECK_EQ_U64(cuTensorMapReplaceAddress(&m, (void *)(b_buf + 8)), CUDA_ERROR_INVALID_VALUE);
}

/* A box load at (x, y) = (-4, 3): the left half and the row below the tensor read zero. */
TEST(box_load_fills_outside_with_zero) {
    fill(a_buf, 1000);
    CUtensorMap m;
    CHECK_CU(encode_2d(&m, a_buf, 8, 2));
    int x = -4, y = 3;
    CUdeviceptr o = out_buf;
    void *args[] = {&m, &x, &y, &o};
    CHECK_CU(cuLaunchKernel(sim_test_kernel("tmap_box"), 1, 1, 1, 1, 1, 1, 0, NULL, args, NULL));
    unsigned out[16];
    CHECK_CU(cuMemcpyDtoH(out, out_buf, sizeof out));
    for (int i = 0; i < 8; i++) {
        CHECK_EQ_U64(out[i], i < 4 ? 0 : 1000 + 300 + (i - 4)); /* row 3 */
        CHECK_EQ_U64(out[8 + i], 0);                            /* row 4: outside */
    }
}

/* A map whose bytes were changed after encoding faults the kernel that reads it. */
TEST(corrupted_map_faults_the_kernel) {
    pid_t pid = fork();
    if (pid == 0) {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        CUtensorMap m;
        if (encode_2d(&m, a_buf, 8, 2) != CUDA_SUCCESS)
            _exit(3);
        ((unsigned char *)&m)[40] ^= 1;
        unsigned out[W * H];
        gather(&m, out);
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFSIGNALED(status));
    CHECK_EQ_U64(WTERMSIG(status), SIGILL);
}

TEST(tiled_arguments_checked) {
    CUtensorMap m;
    cuuint64_t dim[2] = {W, H}, stride[1] = {64}, bad_stride[1] = {40};
    cuuint32_t box[2] = {8, 2}, estride[2] = {1, 1}, box_odd[2] = {3, 2}, box_big[2] = {257, 1};
#define TILED(map, type, rank, addr, st, bx, il, sw, oob)                                          \
    cuTensorMapEncodeTiled(map, type, rank, (void *)(addr), dim, st, bx, estride, il, sw,          \
                           CU_TENSOR_MAP_L2_PROMOTION_NONE, oob)
    const CUtensorMapDataType u32 = CU_TENSOR_MAP_DATA_TYPE_UINT32;
    const CUtensorMapInterleave none = CU_TENSOR_MAP_INTERLEAVE_NONE;
    const CUtensorMapSwizzle nosw = CU_TENSOR_MAP_SWIZZLE_NONE;
    const CUtensorMapFloatOOBfill nofill = CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE;
    static _Alignas(64) unsigned char raw[192];
    CHECK_EQ_U64(TILED((CUtensorMap *)(raw + 32), u32, 2, a_buf, stride, box, none, nosw, nofill),
                 CUDA_ERROR_INVALID_VALUE); /* map not 64-byte aligned */
    CHECK_CU(TILED((CUtensorMap *)(raw + 64), u32, 2, a_buf, stride, box, none, nosw, nofill));
    CHECK_EQ_U64(TILED(&m, u32, 0, a_buf, stride, box, none, nosw, nofill),
                 CUDA_ERROR_INVALID_VALUE);
    CHECK_EQ_U64(TILED(&m, u32, 6, a_buf, stride, box, none, nosw, nofill),
                 CUDA_ERROR_INVALID_VALUE);
    CHECK_EQ_U64(TILED(&m, u32, 2, a_buf + 4, stride, box, none, nosw, nofill),
                 CUDA_ERROR_INVALID_VALUE); /* address not 16-byte aligned */
    CHECK_EQ_U64(TILED(&m, u32, 2, a_buf, bad_stride, box, none, nosw, nofill),
                 CUDA_ERROR_INVALID_VALUE); /* stride not a multiple of 16 */
    CHECK_EQ_U64(TILED(&m, u32, 2, a_buf, stride, box_odd, none, nosw, nofill),
                 CUDA_ERROR_INVALID_VALUE); /* inner box 12 bytes */
    CHECK_EQ_U64(TILED(&m, u32, 2, a_buf, stride, box_big, none, nosw, nofill),
                 CUDA_ERROR_INVALID_VALUE);
    CHECK_EQ_U64(TILED(&m, u32, 2, a_buf, stride, box, CU_TENSOR_MAP_INTERLEAVE_16B, nosw, nofill),
                 CUDA_ERROR_INVALID_VALUE); /* interleave needs rank >= 3 */
    CHECK_EQ_U64(TILED(&m, u32, 2, a_buf, stride, box, none, nosw,
                       CU_TENSOR_MAP_FLOAT_OOB_FILL_NAN_REQUEST_ZERO_FMA),
                 CUDA_ERROR_INVALID_VALUE); /* NaN fill of an integer type */
    CHECK_CU(TILED(&m, CU_TENSOR_MAP_DATA_TYPE_FLOAT32, 2, a_buf, stride, box, none, nosw,
                   CU_TENSOR_MAP_FLOAT_OOB_FILL_NAN_REQUEST_ZERO_FMA));
    CHECK_CU(TILED(&m, u32, 2, a_buf, stride, box, none, CU_TENSOR_MAP_SWIZZLE_32B, nofill));
    cuuint32_t box_wide[2] = {16, 2}; /* 64 bytes: more than the 32-byte swizzle span */
    CHECK_EQ_U64(
        TILED(&m, u32, 2, a_buf, stride, box_wide, none, CU_TENSOR_MAP_SWIZZLE_32B, nofill),
        CUDA_ERROR_INVALID_VALUE);
    CHECK_EQ_U64(
        TILED(&m, CU_TENSOR_MAP_DATA_TYPE_16U4_ALIGN8B, 2, a_buf, stride, box, none, nosw, nofill),
        CUDA_ERROR_INVALID_VALUE); /* packed types: not on a 9.0 device */
#undef TILED
    CUcontext ctx;
    CHECK_CU(cuCtxGetCurrent(&ctx));
    CHECK_CU(cuCtxSetCurrent(NULL));
    CHECK_EQ_U64(encode_2d(&m, a_buf, 8, 2), CUDA_ERROR_INVALID_CONTEXT);
    CHECK_CU(cuCtxSetCurrent(ctx));
    memset(&m, 0, sizeof m);
    CHECK_EQ_U64(cuTensorMapReplaceAddress(&m, (void *)a_buf), CUDA_ERROR_INVALID_VALUE);
}

/* An NHWC tensor of 16-bit elements: C = 8, W = 4, H = 2, N = 1. */
TEST(im2col) {
    CUtensorMap m, wide;
    cuuint64_t dim[4] = {8, 4, 2, 1}, stride[3] = {16, 64, 128};
    cuuint32_t estride[4] = {1, 1, 1, 1};
    int lower[2] = {-1, -1}, upper[2] = {1, 1}, too_far[2] = {-200, 0};
#define IM2COL(rank, lo, up, cpp)                                                                  \
    cuTensorMapEncodeIm2col(&m, CU_TENSOR_MAP_DATA_TYPE_FLOAT16, rank, (void *)a_buf, dim, stride, \
                            lo, up, cpp, 4, estride, CU_TENSOR_MAP_INTERLEAVE_NONE,                \
                            CU_TENSOR_MAP_SWIZZLE_NONE, CU_TENSOR_MAP_L2_PROMOTION_NONE,           \
                            CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE)
    CHECK_CU(IM2COL(4, lower, upper, 8));
    uint64_t addr = a_buf;
    for (size_t off = 0; off + 8 <= sizeof m; off += 8)
        CHECK(memcmp((const unsigned char *)&m + off, &addr, 8) != 0);
    CHECK_EQ_U64(IM2COL(2, lower, upper, 8), CUDA_ERROR_INVALID_VALUE); /* rank 3..5 */
    CHECK_EQ_U64(IM2COL(4, too_far, upper, 8), CUDA_ERROR_INVALID_VALUE);
    CHECK_EQ_U64(IM2COL(4, lower, upper, 0), CUDA_ERROR_INVALID_VALUE);
    CHECK_CU(cuTensorMapReplaceAddress(&m, (void *)b_buf));
#undef IM2COL
    /* wide im2col is for compute capability 10.0 */
    CHECK_EQ_U64(cuTensorMapEncodeIm2colWide(
                     &wide, CU_TENSOR_MAP_DATA_TYPE_FLOAT16, 4, (void *)a_buf, dim, stride, -1, 1,
                     8, 4, estride, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_IM2COL_WIDE_MODE_W,
                     CU_TENSOR_MAP_SWIZZLE_64B, CU_TENSOR_MAP_L2_PROMOTION_NONE,
                     CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE),
                 CUDA_ERROR_INVALID_VALUE);
}

int main(void) {
    if (!sim_test_setup() || cuMemAlloc(&a_buf, 4096) != CUDA_SUCCESS ||
        cuMemAlloc(&b_buf, 4096) != CUDA_SUCCESS || cuMemAlloc(&out_buf, 4096) != CUDA_SUCCESS)
        return 1;
    RUN(address_not_stored_plainly);
    RUN(kernel_reads_through_map);
    RUN(box_load_fills_outside_with_zero);
    RUN(corrupted_map_faults_the_kernel);
    RUN(tiled_arguments_checked);
    RUN(im2col);
    return check_summary();
}
