/*
 * test_sim_fingerprint.c — the clean-eviction fingerprint (runtime/devcode/): its
 * properties on the host, and the simulator's built-in implementation of the embedded
 * PTX (tests/sim/builtin.c): same sums as the host for any grid, the exact parameter
 * layout, other PTX refused as a driver would, its reads seen by the race detector.
 */
#include "runtime/devcode/fingerprint_hash.h"
#include "runtime/devcode/fingerprint_ptx.h"
#include "tests/sim/testutil.h"
#include "tests/unit/check.h"

#include <stdint.h>

#define BYTES ((1u << 20) + 5) /* a tail of 5 bytes */

static unsigned char *pattern(size_t n) {
    unsigned char *p = malloc(n + 8);
    uint64_t x = 0x123456789abcdefull;
    for (size_t i = 0; i < n; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        p[i] = (unsigned char)(x >> 56);
    }
    return p;
}

static void host_fp(const void *p, size_t n, uint64_t out[2]) {
    uint64_t sums[2] = {0, 0};
    fingerprint_add_host(p, n, sums);
    fingerprint_finish(sums, n, out);
}

static int same(const uint64_t a[2], const uint64_t b[2]) {
    return a[0] == b[0] && a[1] == b[1];
}

TEST(equal_bytes_equal_fingerprints_any_change_differs) {
    unsigned char *a = pattern(BYTES), *b = pattern(BYTES);
    uint64_t fa[2], fb[2];
    host_fp(a, BYTES, fa);
    host_fp(b, BYTES, fb);
    CHECK(same(fa, fb));
    /* one bit at the start, the middle, in the last full word, in the tail */
    size_t at[] = {0, BYTES / 2, BYTES - 6, BYTES - 1};
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        for (int bit = 0; bit < 8; bit += 7) {
            b[at[i]] ^= (unsigned char)(1u << bit);
            host_fp(b, BYTES, fb);
            CHECK(!same(fa, fb));
            CHECK(fa[0] != fb[0] && fa[1] != fb[1]); /* both halves: one word changed */
            b[at[i]] ^= (unsigned char)(1u << bit);
        }
    }
    host_fp(b, BYTES, fb);
    CHECK(same(fa, fb));
    /* two words swapped (distinct values), near and far */
    uint64_t w[4];
    memcpy(w, b, 16);
    memcpy(b, w + 1, 8);
    memcpy(b + 8, w, 8);
    host_fp(b, BYTES, fb);
    CHECK(w[0] != w[1] && !same(fa, fb));
    memcpy(b, w, 16);
    memcpy(&w[2], b + 8 * 1000, 8);
    memcpy(&w[3], b + 8 * 9000, 8);
    memcpy(b + 8 * 1000, &w[3], 8);
    memcpy(b + 8 * 9000, &w[2], 8);
    host_fp(b, BYTES, fb);
    CHECK(w[2] != w[3] && !same(fa, fb));
    /* a zero byte more is another buffer */
    a[BYTES] = 0;
    uint64_t longer[2];
    host_fp(a, BYTES + 1, longer);
    CHECK(!same(fa, longer));
    free(a);
    free(b);
}

static CUfunction load_fingerprint(void) {
    CUmodule mod;
    CUfunction f = NULL;
    CHECK(cuModuleLoadData(&mod, fingerprint_ptx) == CUDA_SUCCESS);
    CHECK(cuModuleGetFunction(&f, mod, "offload_fingerprint") == CUDA_SUCCESS);
    return f;
}

/* The sums of [d, d+n) by the kernel on stream s with grid x 256 threads. */
static CUresult launch(CUfunction f, CUdeviceptr d, unsigned long long n, CUdeviceptr sums,
                       unsigned grid, CUstream s) {
    void *args[] = {&d, &n, &sums};
    return cuLaunchKernel(f, grid, 1, 1, 256, 1, 1, 0, s, args, NULL);
}

TEST(builtin_kernel_gives_the_host_sums_for_any_grid) {
    CUfunction f = load_fingerprint();
    unsigned char *h = pattern(BYTES);
    CUdeviceptr d, sums;
    CHECK(cuMemAlloc(&d, BYTES) == CUDA_SUCCESS && cuMemAlloc(&sums, 16) == CUDA_SUCCESS);
    CHECK(cuMemcpyHtoD(d, h, BYTES) == CUDA_SUCCESS);
    uint64_t want[2] = {0, 0};
    fingerprint_add_host(h, BYTES, want);
    unsigned grids[] = {1, 7, 1024};
    for (size_t i = 0; i < 3; i++) {
        uint64_t got[2];
        CHECK(cuMemsetD32(sums, 0, 4) == CUDA_SUCCESS);
        CHECK(launch(f, d, BYTES, sums, grids[i], NULL) == CUDA_SUCCESS);
        CHECK(cuMemcpyDtoH(got, sums, 16) == CUDA_SUCCESS);
        CHECK(got[0] == want[0] && got[1] == want[1]);
    }
    /* it adds to the sums (the atomics), it does not zero them */
    uint64_t twice[2];
    CHECK(launch(f, d, BYTES, sums, 3, NULL) == CUDA_SUCCESS);
    CHECK(cuMemcpyDtoH(twice, sums, 16) == CUDA_SUCCESS);
    CHECK(twice[0] == 2 * want[0] && twice[1] == 2 * want[1]);
    cuMemFree(d);
    cuMemFree(sums);
    free(h);
}

TEST(parameter_layout_is_the_kernels) {
    CUfunction f = load_fingerprint();
    for (size_t i = 0; i < 3; i++) {
        size_t off = 99, size = 99;
        CHECK(cuFuncGetParamInfo(f, i, &off, &size) == CUDA_SUCCESS);
        CHECK(off == 8 * i && size == 8);
    }
    CHECK(cuFuncGetParamInfo(f, 3, NULL, NULL) == CUDA_ERROR_INVALID_VALUE);
    const char *name = NULL;
    CHECK(cuFuncGetName(&name, f) == CUDA_SUCCESS && name && !strcmp(name, "offload_fingerprint"));
    CUmodule mod;
    CHECK(cuModuleLoadData(&mod, fingerprint_ptx) == CUDA_SUCCESS);
    CHECK(cuModuleGetFunction(&f, mod, "other") == CUDA_ERROR_NOT_FOUND);
}

/* fingerprint_ptx with `from` replaced by `to` (one occurrence). */
static char *edited(const char *from, const char *to) {
    const char *at = strstr(fingerprint_ptx, from);
    CHECK(at != NULL);
    size_t n = strlen(fingerprint_ptx) + strlen(to) + 1;
    char *s = malloc(n);
    snprintf(s, n, "%.*s%s%s", (int)(at - fingerprint_ptx), fingerprint_ptx, to, at + strlen(from));
    return s;
}

TEST(other_ptx_is_refused_as_the_driver_would) {
    struct {
        const char *from, *to;
        CUresult want;
    } cases[] = {
        {".entry offload_fingerprint", ".entry other_kernel", CUDA_ERROR_INVALID_PTX},
        {".param .u64 offload_fingerprint_param_1", ".param .u32 offload_fingerprint_param_1",
         CUDA_ERROR_INVALID_PTX},
        {",\n\t.param .u64 offload_fingerprint_param_2", "", CUDA_ERROR_INVALID_PTX},
        {".version 7.0", ".version 10.0", CUDA_ERROR_UNSUPPORTED_PTX_VERSION},
        {".target sm_52", ".target sm_100", CUDA_ERROR_INVALID_PTX},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *ptx = edited(cases[i].from, cases[i].to);
        CUmodule mod = NULL;
        CUresult r = cuModuleLoadData(&mod, ptx);
        CHECK(r == cases[i].want);
        if (r != cases[i].want)
            fprintf(stderr, "case %zu: %d\n", i, (int)r);
        free(ptx);
    }
    CUmodule mod;
    CHECK(cuModuleLoadData(&mod, "not a module") == CUDA_ERROR_INVALID_IMAGE);
}

/* 0: a memset on stream a and the fingerprint of the same bytes on stream b, unordered:
 * a race (exit 0 when a stream reports the sticky error). 1: b waits for a by an event:
 * none (exit 0 when both finish cleanly). */
static int race_child(int scenario) {
    if (!sim_test_setup())
        return 2;
    CUfunction f = load_fingerprint();
    CUstream a, b;
    CUdeviceptr d, sums;
    CUevent ev;
    if (!f || cuStreamCreate(&a, CU_STREAM_NON_BLOCKING) ||
        cuStreamCreate(&b, CU_STREAM_NON_BLOCKING) || cuMemAlloc(&d, 8 << 20) ||
        cuMemAlloc(&sums, 16) || cuEventCreate(&ev, CU_EVENT_DISABLE_TIMING) ||
        cuMemsetD32(sums, 0, 4) || cuCtxSynchronize())
        return 3;
    if (cuMemsetD8Async(d, 1, 8 << 20, a) || cuEventRecord(ev, a))
        return 4;
    if (scenario == 1 && cuStreamWaitEvent(b, ev, 0))
        return 5;
    if (launch(f, d, 8 << 20, sums, 4, b))
        return 6;
    CUresult ra = cuStreamSynchronize(a), rb = cuStreamSynchronize(b);
    if (scenario == 1)
        return ra == CUDA_SUCCESS && rb == CUDA_SUCCESS ? 0 : 7;
    return ra == CUDA_ERROR_ILLEGAL_ADDRESS || rb == CUDA_ERROR_ILLEGAL_ADDRESS ? 0 : 8;
}

TEST(its_reads_are_seen_by_the_race_detector) {
    int status = 0;
    const char *err = sim_test_race_child("test_sim_fingerprint", 0, &status);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    const char *line = strstr(err, "simcuda: race: ");
    CHECK(line && strstr(line, "cuLaunchKernel") && strstr(line, "cuMemsetD8Async"));
    if (check_current_failed)
        fprintf(stderr, "unordered (status %d): %s\n", status, err);
    err = sim_test_race_child("test_sim_fingerprint", 1, &status);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(strstr(err, "simcuda: race") == NULL);
    if (check_current_failed)
        fprintf(stderr, "ordered (status %d): %s\n", status, err);
}

int main(int argc, char **argv) {
    if (argc > 2 && strcmp(argv[1], "race-child") == 0)
        return race_child(atoi(argv[2]));
    RUN(equal_bytes_equal_fingerprints_any_change_differs);
    if (!sim_test_setup())
        return 1;
    RUN(builtin_kernel_gives_the_host_sums_for_any_grid);
    RUN(parameter_layout_is_the_kernels);
    RUN(other_ptx_is_refused_as_the_driver_would);
    RUN(its_reads_are_seen_by_the_race_detector);
    return check_summary();
}
