/*
 * oom_probe.c — what a program sees when nothing more can be made to fit.
 *
 *   oom_probe MODULE MiB
 *
 * Allocates A and B of MiB each (B's allocation may evict A), then launches one kernel that
 * needs both at once, then allocates one buffer of 4 * MiB. Prints one line per step with
 * the driver's result name, e.g. "alloc A: CUDA_SUCCESS", and exits 0 when every call
 * returned without crashing (the bats test judges the lines).
 */
#include <cuda.h>
#include <stdio.h>
#include <stdlib.h>

static const char *name(CUresult r) {
    const char *s = "?";
    cuGetErrorName(r, &s);
    return s;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: oom_probe MODULE MiB\n");
        return 2;
    }
    size_t bytes = (size_t)atoi(argv[2]) << 20;
    CUdevice dev;
    CUcontext ctx;
    CUmodule mod;
    CUfunction xor_copy;
    if (cuInit(0) || cuDeviceGet(&dev, 0) || cuDevicePrimaryCtxRetain(&ctx, dev) ||
        cuCtxSetCurrent(ctx) || cuModuleLoad(&mod, argv[1]) ||
        cuModuleGetFunction(&xor_copy, mod, "xor_copy_u32")) {
        fprintf(stderr, "oom_probe: set-up failed\n");
        return 1;
    }
    CUdeviceptr a = 0, b = 0, big = 0;
    printf("alloc A: %s\n", name(cuMemAlloc(&a, bytes)));
    printf("alloc B: %s\n", name(cuMemAlloc(&b, bytes)));
    unsigned long long n = bytes / 4;
    unsigned mask = 1;
    void *args[] = {&b, &a, &n, &mask};
    CUresult r =
        cuLaunchKernel(xor_copy, (unsigned)((n + 255) / 256), 1, 1, 256, 1, 1, 0, NULL, args, NULL);
    if (r == CUDA_SUCCESS)
        r = cuCtxSynchronize();
    printf("launch A+B: %s\n", name(r));
    printf("alloc 4x: %s\n", name(cuMemAlloc(&big, 4 * bytes)));
    size_t free_bytes = 0, total = 0;
    r = cuMemGetInfo(&free_bytes, &total);
    printf("meminfo: %s free %zu total %zu\n", name(r), free_bytes, total);
    printf("free A: %s\n", name(cuMemFree(a)));
    printf("free B: %s\n", name(cuMemFree(b)));
    return 0;
}
