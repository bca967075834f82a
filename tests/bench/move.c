/*
 * move — liboffload's eviction and restore throughput against the bare driver's
 * pinned copy throughput for the same bytes, in the same process.
 *
 *   move MODULE [--mib M] [--cycles C]
 *
 * Run it under LD_PRELOAD=liboffload.so with tests/bench/move.conf: two buffers A and
 * B of M MiB are components `a` and `b`, the kernel `idle` belongs to a component of
 * its own, policy = sequence, prefetch = 0. So
 *   launch touch(A)  -> A is restored (nothing else to move: everything was evicted),
 *   launch idle()    -> A is evicted,
 * one direction at a time, each timed from the launch to cuCtxSynchronize (which also
 * waits for liboffload's own stream). Between those, the bare driver's figure:
 * cuMemcpyHtoD/DtoH of the same M MiB between a cuMemAllocHost buffer and device
 * memory this program maps itself with the VMM API (liboffload tracks cuMemAlloc, not
 * cuMemCreate, so these copies reach the driver untouched). Measurements alternate so
 * that a noisy machine slows both sides alike.
 *
 * Then C swaps, the way a pipeline switches components: with A resident, launch touch(B)
 * (B restored, A evicted, in one call), then touch(A), ...
 *
 * Prints one JSON object: every sample, the medians, and
 *   evict_ratio   = median bare DtoH time / median eviction time
 *   restore_ratio = median bare HtoD time / median restore time
 *   swap_ratio    = (median bare DtoH + median bare HtoD) / median swap time
 * (equal bytes, so a ratio of times is the ratio of throughputs; 1.0 = as fast as a
 * plain pinned copy). Finally it reads A and B back and checks every word:
 * "verified": true, or exit status 1.
 */
#include "tests/bench/bench.h"

#define PATTERN_A 0xA5A5A5A5u
#define PATTERN_B 0x5B5B5B5Bu

static long arg_long(int argc, char **argv, const char *name, long fallback) {
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return strtol(argv[i + 1], NULL, 10);
    return fallback;
}

/* Device memory the program maps itself: invisible to liboffload's allocation hooks. */
static CUdeviceptr map_untracked(size_t bytes) {
    CUmemAllocationProp prop = {0};
    prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    prop.location.id = 0;
    size_t gran;
    BENCH_CHECK(cuMemGetAllocationGranularity(&gran, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM));
    size_t size = (bytes + gran - 1) / gran * gran;
    CUdeviceptr ptr;
    CUmemGenericAllocationHandle handle;
    BENCH_CHECK(cuMemAddressReserve(&ptr, size, 0, 0, 0));
    BENCH_CHECK(cuMemCreate(&handle, size, &prop, 0));
    BENCH_CHECK(cuMemMap(ptr, size, 0, handle, 0));
    BENCH_CHECK(cuMemRelease(handle)); /* the mapping keeps it alive */
    CUmemAccessDesc access = {.location = prop.location,
                              .flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE};
    BENCH_CHECK(cuMemSetAccess(ptr, size, &access, 1));
    return ptr;
}

static double time_launch(CUfunction f, CUstream stream, void **params) {
    uint64_t t0 = bench_now_ns();
    BENCH_CHECK(cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, stream, params, NULL));
    BENCH_CHECK(cuCtxSynchronize());
    return (double)(bench_now_ns() - t0);
}

static bool holds(const uint32_t *words, size_t count, uint32_t pattern) {
    for (size_t i = 0; i < count; i++)
        if (words[i] != pattern)
            return false;
    return true;
}

int main(int argc, char **argv) {
    if (argc < 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: %s MODULE [--mib M] [--cycles C]\n", argv[0]);
        return 2;
    }
    long mib = arg_long(argc, argv, "--mib", 256);
    long cycles = arg_long(argc, argv, "--cycles", 4);
    if (mib < 2 || cycles < 1) {
        fprintf(stderr, "%s: need --mib >= 2 and --cycles >= 1\n", argv[0]);
        return 2;
    }
    size_t bytes = (size_t)mib << 20;

    bench_context();
    CUmodule module;
    BENCH_CHECK(cuModuleLoad(&module, argv[1]));
    CUfunction touch = bench_kernel(module, "touch");
    CUfunction idle = bench_kernel(module, "idle");
    CUstream stream;
    BENCH_CHECK(cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING));

    void *host;
    BENCH_CHECK(cuMemAllocHost(&host, bytes));
    memset(host, 0x3c, bytes);
    CUdeviceptr bare = map_untracked(bytes);

    /* Allocation order fixes the ordinals move.conf uses: A is 0, B is 1. */
    CUdeviceptr buf[2];
    uint32_t pattern[2] = {PATTERN_A, PATTERN_B};
    for (int i = 0; i < 2; i++) {
        BENCH_CHECK(cuMemAlloc(&buf[i], bytes));
        BENCH_CHECK(cuMemsetD32(buf[i], pattern[i], bytes / 4));
    }
    BENCH_CHECK(cuCtxSynchronize());

    int zero = 0;
    void *idle_params[] = {&zero};
    double first_evict = time_launch(idle, stream, idle_params); /* pays any first-time set-up */

    size_t samples = (size_t)cycles * 2;
    double *restore = calloc(samples, sizeof(double)), *evict = calloc(samples, sizeof(double));
    double *htod = calloc(samples, sizeof(double)), *dtoh = calloc(samples, sizeof(double));
    if (!restore || !evict || !htod || !dtoh)
        return 1;
    for (size_t s = 0; s < samples; s++) {
        void *touch_params[] = {&buf[s % 2]};
        restore[s] = time_launch(touch, stream, touch_params);
        evict[s] = time_launch(idle, stream, idle_params);

        uint64_t t0 = bench_now_ns();
        BENCH_CHECK(cuMemcpyHtoD(bare, host, bytes));
        uint64_t t1 = bench_now_ns();
        BENCH_CHECK(cuMemcpyDtoH(host, bare, bytes));
        uint64_t t2 = bench_now_ns();
        htod[s] = (double)(t1 - t0);
        dtoh[s] = (double)(t2 - t1);
    }

    /* Swaps: one launch evicts one buffer and restores the other. */
    size_t swaps = (size_t)cycles;
    double *swap = calloc(swaps, sizeof(double));
    if (!swap)
        return 1;
    void *first_params[] = {&buf[0]};
    time_launch(touch, stream, first_params);
    for (size_t s = 0; s < swaps; s++) {
        void *touch_params[] = {&buf[(s + 1) % 2]};
        swap[s] = time_launch(touch, stream, touch_params);
    }

    /* The data survived every round trip. */
    bool verified = true;
    for (int i = 0; i < 2; i++) {
        BENCH_CHECK(cuMemcpyDtoH(host, buf[i], bytes));
        verified = verified && holds(host, bytes / 4, pattern[i]);
    }

    double m_restore = bench_median(restore, samples), m_evict = bench_median(evict, samples);
    double m_htod = bench_median(htod, samples), m_dtoh = bench_median(dtoh, samples);
    double m_swap = bench_median(swap, swaps);
    printf("{\"mib\": %ld, \"cycles\": %ld, \"first_evict_ns\": %.0f, ", mib, cycles, first_evict);
    bench_print_array(stdout, "restore_ns", restore, samples);
    printf(", ");
    bench_print_array(stdout, "evict_ns", evict, samples);
    printf(", ");
    bench_print_array(stdout, "bare_htod_ns", htod, samples);
    printf(", ");
    bench_print_array(stdout, "bare_dtoh_ns", dtoh, samples);
    printf(", ");
    bench_print_array(stdout, "swap_ns", swap, swaps);
    printf(",\n \"median_restore_ns\": %.0f, \"median_evict_ns\": %.0f, "
           "\"median_bare_htod_ns\": %.0f, \"median_bare_dtoh_ns\": %.0f,\n",
           m_restore, m_evict, m_htod, m_dtoh);
    printf(" \"bare_htod_gbps\": %.3f, \"bare_dtoh_gbps\": %.3f, \"restore_gbps\": %.3f, "
           "\"evict_gbps\": %.3f,\n",
           bytes / m_htod, bytes / m_dtoh, bytes / m_restore, bytes / m_evict);
    printf(" \"restore_ratio\": %.3f, \"evict_ratio\": %.3f, \"swap_ratio\": %.3f, "
           "\"verified\": %s}\n",
           m_htod / m_restore, m_dtoh / m_evict, (m_htod + m_dtoh) / m_swap,
           verified ? "true" : "false");

    free(restore), free(evict), free(htod), free(dtoh), free(swap);
    BENCH_CHECK(cuMemFree(buf[0]));
    BENCH_CHECK(cuMemFree(buf[1]));
    BENCH_CHECK(cuMemFreeHost(host));
    BENCH_CHECK(cuStreamDestroy(stream));
    if (!verified)
        fprintf(stderr, "move: data changed across evict/restore\n");
    return verified ? 0 : 1;
}
