/*
 * struct_params.c — pointers passed inside structs by value, under memory pressure.
 *
 *   struct_params MiB [separate | maps]
 *
 * Four buffers A, B, C, D of MiB each, filled with 1, 2, 3, 4 in that order (on a device
 * that holds three of them, A is evicted to make room for D). Then add_pair({A, B})
 * makes A = 3, combine256 (a 256-byte Params struct with pointers at offsets 40, 120 and
 * 248) computes C = A * 5 + D = 19, and add_pair({D, A}) makes D = 7. Prints
 * "sum A B C D = ..." and exits 0 when every word is right, else names the first wrong one
 * and exits 1. A liboffload that does not see the pointers inside the structs lets the
 * kernels touch evicted memory.
 *
 * `separate`: after the fills, three rounds of add_pair({A, B}) and double_pair({C, D}):
 * each kernel uses only its own pair of buffers, which a config can declare as components
 * (A, B by add_pair; C, D by double_pair). Expects A = 1 + 3 * 2 = 7, B = 2,
 * D = C * 2 = 6 each round: A 7, B 2, C 3, D 6.
 *
 * `maps`: A is read only through a tensor map encoded over it (a 2D tensor of 32-bit
 * words, 1024 per row): map_copy(map, B) takes the map alone, map_copy_params({C, map})
 * embedded at offset 128 of a Params struct, after A was evicted each time (D, then B
 * written). Expects B = 1 and C = 2 everywhere, A 1, D 4.
 */
#include "tests/progs/prog_check.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

struct pair {
    CUdeviceptr a, b;
};

struct params256 {
    unsigned long long n;
    int m, k, lda, ldb;
    float alpha, beta;
    unsigned long long pad0[1];
    CUdeviceptr x;
    unsigned long long pad1[9];
    CUdeviceptr y;
    unsigned long long pad2[15];
    CUdeviceptr out;
};
_Static_assert(sizeof(struct params256) == 256, "params256 is 256 bytes");

#define THREADS 256

static CUmodule module;

static CUfunction kernel(const char *name) {
    CUfunction f;
    PROG_CHECK_CU(cuModuleGetFunction(&f, module, name));
    return f;
}

static void launch(CUfunction f, unsigned long long n, void **params) {
    unsigned blocks = (unsigned)((n + THREADS - 1) / THREADS);
    PROG_CHECK_CU(cuLaunchKernel(f, blocks, 1, 1, THREADS, 1, 1, 0, NULL, params, NULL));
}

static void fill(CUdeviceptr p, unsigned long long n, unsigned v) {
    launch(kernel("fill_words"), n, (void *[]){&p, &n, &v});
}

static void add_pair(CUdeviceptr a, CUdeviceptr b, unsigned long long n) {
    struct pair p = {a, b};
    launch(kernel("add_pair"), n, (void *[]){&p, &n});
}

#define MAP_ROW 1024 /* words per row of the 2D tensor over A */

static void encode_map(CUtensorMap *map, CUdeviceptr base, unsigned long long n) {
    cuuint64_t dim[2] = {MAP_ROW, n / MAP_ROW}, stride[1] = {MAP_ROW * 4};
    cuuint32_t box[2] = {32, 8}, estride[2] = {1, 1};
    PROG_CHECK_CU(cuTensorMapEncodeTiled(
        map, CU_TENSOR_MAP_DATA_TYPE_UINT32, 2, (void *)base, dim, stride, box, estride,
        CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_NONE, CU_TENSOR_MAP_L2_PROMOTION_NONE,
        CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE));
}

struct map_params {
    CUdeviceptr out;
    unsigned w, h;
    char pad[112];
    CUtensorMap map;
};
_Static_assert(offsetof(struct map_params, map) == 128, "the map at offset 128");

static int run_maps(CUdeviceptr *buf, unsigned long long n) {
    CUdeviceptr a = buf[0], b = buf[1], c = buf[2], d = buf[3];
    struct map_params p = {.out = b, .w = MAP_ROW, .h = (unsigned)(n / MAP_ROW)};
    encode_map(&p.map, a, n);
    launch(kernel("map_copy"), n, (void *[]){&p.map, &b, &p.w, &p.h}); /* B = A */
    fill(d, n, 4); /* A (least recently used) evicted again */
    fill(b, n, 1);
    p.out = c;
    launch(kernel("map_copy_params"), n, (void *[]){&p}); /* C = A + 1 */
    PROG_CHECK_CU(cuCtxSynchronize());
    uint64_t sum = prog_check_words(a, n, 1, "A") + prog_check_words(b, n, 1, "B") +
                   prog_check_words(c, n, 2, "C") + prog_check_words(d, n, 4, "D");
    printf("sum A B C D = %llu\n", (unsigned long long)sum);
    return 0;
}

int main(int argc, char **argv) {
    size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 32;
    unsigned long long n = mib * (1 << 20) / 4;
    CUdevice dev;
    prog_primary_context(&dev);
    PROG_CHECK_CU(cuModuleLoad(&module, prog_beside_exe("struct_kernels.so")));
    CUdeviceptr buf[4];
    for (unsigned i = 0; i < 4; i++) {
        PROG_CHECK_CU(cuMemAlloc(&buf[i], n * 4));
        fill(buf[i], n, i + 1);
    }
    CUdeviceptr a = buf[0], b = buf[1], c = buf[2], d = buf[3];
    if (argc > 2 && strcmp(argv[2], "maps") == 0)
        return run_maps(buf, n);
    if (argc > 2 && strcmp(argv[2], "separate") == 0) {
        for (int round = 0; round < 3; round++) {
            add_pair(a, b, n);
            struct pair cd = {d, c};
            launch(kernel("double_pair"), n, (void *[]){&cd, &n});
        }
        PROG_CHECK_CU(cuCtxSynchronize());
        uint64_t sum = prog_check_words(a, n, 7, "A") + prog_check_words(b, n, 2, "B") +
                       prog_check_words(c, n, 3, "C") + prog_check_words(d, n, 6, "D");
        printf("sum A B C D = %llu\n", (unsigned long long)sum);
        return 0;
    }
    add_pair(a, b, n); /* A = 1 + 2 */
    struct params256 p;
    memset(&p, 0, sizeof p);
    p.n = n, p.m = 5, p.k = 7, p.lda = 64, p.ldb = 64, p.alpha = 1.0f, p.beta = 0.5f;
    p.x = a, p.y = d, p.out = c;
    launch(kernel("combine256"), n, (void *[]){&p}); /* C = 3 * 5 + 4 */
    add_pair(d, a, n);                               /* D = 4 + 3 */
    PROG_CHECK_CU(cuCtxSynchronize());
    uint64_t sum = prog_check_words(a, n, 3, "A") + prog_check_words(b, n, 2, "B") +
                   prog_check_words(c, n, 19, "C") + prog_check_words(d, n, 7, "D");
    printf("sum A B C D = %llu\n", (unsigned long long)sum);
    for (unsigned i = 0; i < 4; i++)
        PROG_CHECK_CU(cuMemFree(buf[i]));
    return 0;
}
