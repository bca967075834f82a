/*
 * kernel_handles.c — kernels launched as CUkernel handles, the way cudart 12+ does.
 *
 *   kernel_handles MODULE MiB
 *
 * Loads MODULE (tests/progs/sim_kernels.cu) with cuLibraryLoadFromFile and launches its
 * CUkernel handles cast to CUfunction, through cuLaunchKernel, cuLaunchKernelEx and
 * cuLaunchCooperativeKernel. Four buffers of MiB each: A, B, C, D filled in turn (under a
 * budget of three, D's fill evicts A), then C = A + B needs A back. Every word of C is
 * checked; prints "ok SUM" and exits 0, or names the first wrong word and exits 1. Under
 * liboffload the launches' pointers are seen only if it learns a CUkernel's layout
 * (cuKernelGetParamInfo): otherwise add_u32 runs on the evicted A and faults.
 */
#include "tests/progs/prog_check.h"

#include <cuda.h>
#include <stdio.h>
#include <stdlib.h>

static CUkernel fill, add;

static void fill_with(int how, CUdeviceptr p, unsigned long long n, unsigned v) {
    void *args[] = {&p, &n, &v};
    unsigned grid = (unsigned)((n + 255) / 256);
    if (how == 0) {
        PROG_CHECK_CU(cuLaunchKernel((CUfunction)fill, grid, 1, 1, 256, 1, 1, 0, NULL, args, NULL));
    } else if (how == 1) {
        CUlaunchConfig cfg = {.gridDimX = grid,
                              .gridDimY = 1,
                              .gridDimZ = 1,
                              .blockDimX = 256,
                              .blockDimY = 1,
                              .blockDimZ = 1};
        PROG_CHECK_CU(cuLaunchKernelEx(&cfg, (CUfunction)fill, args, NULL));
    } else {
        PROG_CHECK_CU(
            cuLaunchCooperativeKernel((CUfunction)fill, grid, 1, 1, 256, 1, 1, 0, NULL, args));
    }
}

int main(int argc, char **argv) {
    if (argc != 3 || atoi(argv[2]) < 1) {
        fprintf(stderr, "usage: kernel_handles MODULE MiB\n");
        return 2;
    }
    unsigned long long n = ((unsigned long long)atoi(argv[2]) << 20) / 4;
    CUdevice dev;
    prog_primary_context(&dev);
    CUlibrary lib;
    PROG_CHECK_CU(cuLibraryLoadFromFile(&lib, argv[1], NULL, NULL, 0, NULL, NULL, 0));
    PROG_CHECK_CU(cuLibraryGetKernel(&fill, lib, "fill_u32"));
    PROG_CHECK_CU(cuLibraryGetKernel(&add, lib, "add_u32"));
    CUdeviceptr buf[4];
    for (int i = 0; i < 4; i++) {
        PROG_CHECK_CU(cuMemAlloc(&buf[i], n * 4));
        fill_with(i % 3, buf[i], n, 10u * (unsigned)(i + 1));
    }
    void *args[] = {&buf[0], &buf[1], &buf[2], &n};
    PROG_CHECK_CU(cuLaunchKernel((CUfunction)add, (unsigned)((n + 255) / 256), 1, 1, 256, 1, 1, 0,
                                 NULL, args, NULL));
    unsigned *host = malloc(n * 4);
    if (!host)
        return 1;
    PROG_CHECK_CU(cuMemcpyDtoH(host, buf[2], n * 4));
    unsigned long long sum = 0;
    for (unsigned long long i = 0; i < n; i++) {
        if (host[i] != 30) {
            fprintf(stderr, "kernel_handles: C[%llu] = %u, not 30\n", i, host[i]);
            return 1;
        }
        sum += host[i];
    }
    for (int i = 0; i < 4; i++)
        PROG_CHECK_CU(cuMemFree(buf[i]));
    PROG_CHECK_CU(cuLibraryUnload(lib));
    PROG_CHECK_CU(cuDevicePrimaryCtxRelease(dev));
    free(host);
    printf("ok %llu\n", sum);
    return 0;
}
