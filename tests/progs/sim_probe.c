/*
 * sim_probe — small scenarios for tests/sim.bats, one per subcommand:
 *   sim_probe unimplemented     calls unimplemented entry points (SIMCUDA_LOG test)
 *   sim_probe allocs N          N cuMemAlloc calls of 1 MiB, one result name per line
 *   sim_probe memsets N         N cuMemsetD8 calls; prints how many failed
 *   sim_probe traffic           known copies and launches, exits without any cleanup
 *   sim_probe pcie MiB          times a host-to-device copy of MiB; prints milliseconds
 */
#include <cuda.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *name_of(CUresult r) {
    const char *s = "?";
    cuGetErrorName(r, &s);
    return s;
}

/* Retried: under SIMCUDA_FAIL_RANDOM any call may fail. */
#define RETRY(call)                                                                                \
    do {                                                                                           \
        int tries_ = 0;                                                                            \
        while ((call) != CUDA_SUCCESS)                                                             \
            if (++tries_ == 100) {                                                                 \
                printf("%s failed\n", #call);                                                      \
                return -1;                                                                         \
            }                                                                                      \
    } while (0)

static int setup(void) {
    CUcontext c;
    RETRY(cuInit(0));
    RETRY(cuDevicePrimaryCtxRetain(&c, 0));
    RETRY(cuCtxSetCurrent(c));
    return 0;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static CUfunction kernel(const char *name) {
    char exe[PATH_MAX], path[PATH_MAX + 32];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = 0;
    snprintf(path, sizeof path, "%s/sim_kernels.so", dirname(exe));
    CUmodule m;
    CUfunction f = NULL;
    if (cuModuleLoad(&m, path) || cuModuleGetFunction(&f, m, name))
        return NULL;
    return f;
}

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    const char *cmd = argv[1];
    long arg = argc > 2 ? atol(argv[2]) : 0;
    if (setup())
        return 1;
    if (strcmp(cmd, "unimplemented") == 0) {
        CUarray a;
        CUDA_ARRAY_DESCRIPTOR d = {0};
        for (int i = 0; i < 2; i++)
            printf("cuArrayCreate: %s\n", name_of(cuArrayCreate(&a, &d)));
        CUmipmappedArray m;
        CUDA_ARRAY3D_DESCRIPTOR d3 = {0};
        printf("cuMipmappedArrayCreate: %s\n", name_of(cuMipmappedArrayCreate(&m, &d3, 1)));
        return 0;
    }
    if (strcmp(cmd, "allocs") == 0) {
        for (long i = 0; i < arg; i++) {
            CUdeviceptr p;
            printf("%s\n", name_of(cuMemAlloc(&p, 1 << 20)));
        }
        return 0;
    }
    if (strcmp(cmd, "memsets") == 0) {
        CUdeviceptr p;
        RETRY(cuMemAlloc(&p, 64));
        long failed = 0;
        for (long i = 0; i < arg; i++)
            failed += cuMemsetD8(p, 1, 64) != CUDA_SUCCESS;
        printf("%ld failed\n", failed);
        return 0;
    }
    if (strcmp(cmd, "traffic") == 0) {
        /* 3 MiB up, 1 MiB down, 5 launches, 6 MiB peak; no cleanup at all */
        static char host[3 << 20];
        CUdeviceptr a, b;
        CUfunction f = kernel("incr_copy");
        if (!f || cuMemAlloc(&a, 3 << 20) || cuMemAlloc(&b, 3 << 20) ||
            cuMemcpyHtoD(a, host, sizeof host) || cuMemcpyDtoH(host, b, 1 << 20))
            return 1;
        void *args[] = {&a, &b};
        for (int i = 0; i < 5; i++)
            if (cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, NULL, args, NULL))
                return 1;
        printf("traffic done\n");
        exit(0);
    }
    if (strcmp(cmd, "pcie") == 0) {
        size_t n = (size_t)arg << 20;
        char *host = calloc(1, n);
        CUdeviceptr d;
        if (!host || cuMemAlloc(&d, n))
            return 1;
        double t0 = now_ms();
        /* from pageable memory it returns once staged: wait for the bytes to land */
        if (cuMemcpyHtoD(d, host, n) || cuCtxSynchronize())
            return 1;
        printf("%.0f\n", now_ms() - t0);
        free(host);
        return 0;
    }
    return 2;
}
