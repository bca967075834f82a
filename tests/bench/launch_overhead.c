/*
 * launch_overhead — time per cuLaunchKernel of an empty kernel with eight parameters
 * (four device pointers into tracked allocations, four scalars), on one stream.
 *
 *   launch_overhead MODULE [--batches B] [--launches N] [--sync-every K] [--params256]
 *
 * --params256: the kernel takes one 256-byte Params struct by value instead (the same
 * four pointers at its start, then sizes, strides and scalars), as GEMMs do.
 *
 * Runs one warm-up batch, then B batches of N launches, synchronising the stream
 * every K launches. Only the launch calls are timed, not the synchronisations: the
 * figure is the host-side cost of a launch, which is what liboffload's hook adds to,
 * not the rate at which the device drains the queue. Prints one JSON object with the
 * per-batch nanoseconds per launch and their median.
 *
 * tests/bench/run.sh runs it with and without LD_PRELOAD=liboffload.so, alternating
 * processes, and takes the difference of the medians; under callgrind it runs with
 * --toggle-collect=launch_loop (the launches alone, below), N and 2N launches.
 */
#include "tests/bench/bench.h"

#define BUFFER_BYTES (2u << 20) /* at or above liboffload's default min_size: tracked */

struct launch_args {
    CUdeviceptr ptr[4];
    int n, m;
    float s;
    double t;
    void *params[8]; /* what cuLaunchKernel gets */
};

/* bench_kernels.cu's params256 */
struct params256 {
    CUdeviceptr ptr[4];
    long long m, n, k, lda, ldb, ldc, ldd, batch;
    float alpha, beta;
    int flags[38];
};
_Static_assert(sizeof(struct params256) == 256, "params256 is 256 bytes");

/* `count` launches, nothing else: kept out of line and exported so callgrind can toggle
 * collection on it by name (the synchronisations, whose cost depends on how far the
 * simulator's worker got, stay outside it). */
__attribute__((noinline)) void launch_loop(CUfunction f, CUstream stream, void **params,
                                           long count);

void launch_loop(CUfunction f, CUstream stream, void **params, long count) {
    for (long i = 0; i < count; i++)
        BENCH_CHECK(cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, stream, params, NULL));
}

/* `launches` launches, the stream synchronised every sync_every; returns the nanoseconds
 * spent launching. */
static uint64_t launch_batch(CUfunction f, CUstream stream, struct launch_args *a, long launches,
                             long sync_every) {
    uint64_t launching_ns = 0;
    for (long done = 0; done < launches;) {
        long chunk = launches - done < sync_every ? launches - done : sync_every;
        uint64_t t0 = bench_now_ns();
        launch_loop(f, stream, a->params, chunk);
        launching_ns += bench_now_ns() - t0;
        BENCH_CHECK(cuStreamSynchronize(stream));
        done += chunk;
    }
    return launching_ns;
}

static bool arg_flag(int argc, char **argv, const char *name) {
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return true;
    return false;
}

static long arg_long(int argc, char **argv, const char *name, long fallback) {
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return strtol(argv[i + 1], NULL, 10);
    return fallback;
}

int main(int argc, char **argv) {
    if (argc < 2 || argv[1][0] == '-') {
        fprintf(stderr,
                "usage: %s MODULE [--batches B] [--launches N] [--sync-every K] [--params256]\n",
                argv[0]);
        return 2;
    }
    long batches = arg_long(argc, argv, "--batches", 10);
    long launches = arg_long(argc, argv, "--launches", 20000);
    long sync_every = arg_long(argc, argv, "--sync-every", 200);
    if (batches < 1 || launches < 1 || sync_every < 1) {
        fprintf(stderr, "%s: counts must be positive\n", argv[0]);
        return 2;
    }

    bench_context();
    CUmodule module;
    BENCH_CHECK(cuModuleLoad(&module, argv[1]));
    bool params256 = arg_flag(argc, argv, "--params256");
    CUfunction f = bench_kernel(module, params256 ? "params256_kernel" : "empty8");
    CUstream stream;
    BENCH_CHECK(cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING));

    /* Interior pointers: the lookup has to find the allocation a pointer lies in, not
     * just match a base address. */
    CUdeviceptr base[4];
    struct launch_args a = {.n = 1, .m = 2, .s = 3.0f, .t = 4.0};
    for (int i = 0; i < 4; i++) {
        BENCH_CHECK(cuMemAlloc(&base[i], BUFFER_BYTES));
        BENCH_CHECK(cuMemsetD8(base[i], 0, BUFFER_BYTES));
        a.ptr[i] = base[i] + 4096 * (CUdeviceptr)(i + 1);
    }
    struct params256 p = {.m = 512,
                          .n = 512,
                          .k = 64,
                          .lda = 64,
                          .ldb = 512,
                          .ldc = 512,
                          .ldd = 512,
                          .batch = 1,
                          .alpha = 1.0f,
                          .beta = 0.0f};
    memcpy(p.ptr, a.ptr, sizeof p.ptr);
    void *eight[8] = {&a.ptr[0], &a.ptr[1], &a.ptr[2], &a.ptr[3], &a.n, &a.m, &a.s, &a.t};
    if (params256)
        a.params[0] = &p;
    else
        memcpy(a.params, eight, sizeof eight);
    BENCH_CHECK(cuCtxSynchronize()); /* the memsets return before they are done */

    launch_batch(f, stream, &a, launches < 1000 ? launches : 1000, sync_every); /* warm-up */
    double *ns = malloc((size_t)batches * sizeof *ns);
    if (!ns)
        return 1;
    for (long b = 0; b < batches; b++)
        ns[b] = (double)launch_batch(f, stream, &a, launches, sync_every) / (double)launches;

    BENCH_CHECK(cuCtxSynchronize());
    for (int i = 0; i < 4; i++)
        BENCH_CHECK(cuMemFree(base[i]));
    BENCH_CHECK(cuStreamDestroy(stream));
    BENCH_CHECK(cuModuleUnload(module));

    printf("{\"batches\": %ld, \"launches_per_batch\": %ld, \"sync_every\": %ld, ", batches,
           launches, sync_every);
    bench_print_array(stdout, "ns_per_launch", ns, (size_t)batches);
    printf(", \"median_ns\": %.1f}\n", bench_median(ns, (size_t)batches));
    free(ns);
    return 0;
}
