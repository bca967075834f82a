/*
 * bench.h — the few helpers every benchmark program shares: a checked driver call,
 * a monotonic clock, a median, a context. Header-only: each program is one .c file.
 */
#ifndef BENCH_H
#define BENCH_H

#include <cuda.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Any driver error ends the benchmark: a figure measured after a failure means nothing. */
#define BENCH_CHECK(call)                                                                          \
    do {                                                                                           \
        CUresult bench_rc_ = (call);                                                               \
        if (bench_rc_ != CUDA_SUCCESS) {                                                           \
            const char *bench_name_ = NULL;                                                        \
            cuGetErrorName(bench_rc_, &bench_name_);                                               \
            fprintf(stderr, "%s:%d: %s failed: %s (%d)\n", __FILE__, __LINE__, #call,              \
                    bench_name_ ? bench_name_ : "?", (int)bench_rc_);                              \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static inline uint64_t bench_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline int bench_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of n values; sorts a copy, leaves the input in measurement order. */
static inline double bench_median(const double *values, size_t n) {
    if (n == 0)
        return 0;
    double *sorted = malloc(n * sizeof *sorted);
    if (!sorted)
        abort();
    memcpy(sorted, values, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, bench_cmp_double);
    double m = n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    free(sorted);
    return m;
}

/* Prints `"name": [v0, v1, ...]` (no trailing comma). */
static inline void bench_print_array(FILE *out, const char *name, const double *values, size_t n) {
    fprintf(out, "\"%s\": [", name);
    for (size_t i = 0; i < n; i++)
        fprintf(out, "%s%.1f", i ? ", " : "", values[i]);
    fprintf(out, "]");
}

/* Device 0's primary context, current on the calling thread. */
static inline CUcontext bench_context(void) {
    CUdevice dev;
    CUcontext ctx;
    BENCH_CHECK(cuInit(0));
    BENCH_CHECK(cuDeviceGet(&dev, 0));
    BENCH_CHECK(cuDevicePrimaryCtxRetain(&ctx, dev));
    BENCH_CHECK(cuCtxSetCurrent(ctx));
    return ctx;
}

static inline CUfunction bench_kernel(CUmodule module, const char *name) {
    CUfunction f;
    BENCH_CHECK(cuModuleGetFunction(&f, module, name));
    return f;
}

#endif /* BENCH_H */
