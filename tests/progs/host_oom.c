/*
 * host_oom.c — an eviction that cannot get host memory for its backup must fail cleanly
 * and leave the data on the device.
 *
 *   host_oom [--mib M]      (run with a device or budget of exactly 2 x M MiB)
 *
 * Two tracked buffers A and B of M MiB fill the budget. Then the address space is capped
 * (RLIMIT_AS at what the process maps now plus 1 MiB), so no backup of M MiB can be
 * mapped, pinned or not, and a third buffer C is requested: making room needs an
 * eviction, which needs a backup. Expected: C fails with CUDA_ERROR_OUT_OF_MEMORY, and
 * A and B still hold every byte. The cap is lifted, C is asked for again and must now
 * succeed (evicting), and A, B and C are checked once more.
 * Exit 0 with "host_oom: ok" only if all of that held; the simulator's device memory
 * lives in an address range reserved at start, so the cap does not touch it.
 */
#include <cuda.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static int cu_failed(CUresult r, const char *call, int line) {
    if (r == CUDA_SUCCESS)
        return 0;
    const char *name = "?";
    cuGetErrorName(r, &name);
    fprintf(stderr, "host_oom: line %d: %s failed: %s\n", line, call, name);
    return 1;
}
#define CU(call)                                                                                   \
    do {                                                                                           \
        if (cu_failed((call), #call, __LINE__))                                                    \
            return 1;                                                                              \
    } while (0)

static long vm_size_kib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmSize: %ld kB", &kib) == 1)
            break;
    if (f)
        fclose(f);
    return kib;
}

static int check(CUdeviceptr d, unsigned char *back, size_t bytes, int value, const char *name,
                 const char *when) {
    CU(cuMemcpyDtoH(back, d, bytes));
    for (size_t i = 0; i < bytes; i++)
        if (back[i] != (unsigned char)value) {
            fprintf(stderr, "host_oom: buffer %s byte %zu is %02x, want %02x, %s\n", name, i,
                    back[i], value, when);
            return 1;
        }
    return 0;
}

int main(int argc, char **argv) {
    size_t bytes = (size_t)8 << 20;
    if (argc == 3 && strcmp(argv[1], "--mib") == 0)
        bytes = (size_t)atol(argv[2]) << 20;
    else if (argc != 1) {
        fprintf(stderr, "usage: host_oom [--mib M]\n");
        return 2;
    }
    CUdevice dev;
    CUcontext ctx;
    CUdeviceptr a, b, c;
    unsigned char *fill = malloc(bytes), *back = malloc(bytes);
    if (!fill || !back)
        return 1;
    memset(back, 0, bytes); /* touched now: no page is needed later */
    CU(cuInit(0));
    CU(cuDeviceGet(&dev, 0));
    CU(cuDevicePrimaryCtxRetain(&ctx, dev));
    CU(cuCtxSetCurrent(ctx));
    CU(cuMemAlloc(&a, bytes));
    memset(fill, 0xa1, bytes);
    CU(cuMemcpyHtoD(a, fill, bytes));
    CU(cuMemAlloc(&b, bytes));
    memset(fill, 0xb2, bytes);
    CU(cuMemcpyHtoD(b, fill, bytes));

    struct rlimit old, cap;
    getrlimit(RLIMIT_AS, &old);
    long kib = vm_size_kib();
    if (kib <= 0)
        return 1;
    cap = old;
    cap.rlim_cur = (rlim_t)(kib + 1024) * 1024;
    if (setrlimit(RLIMIT_AS, &cap) != 0) {
        perror("host_oom: setrlimit");
        return 1;
    }
    CUresult r = cuMemAlloc(&c, bytes);
    setrlimit(RLIMIT_AS, &old);
    const char *name = "?";
    cuGetErrorName(r, &name);
    printf("host_oom: with no host memory, cuMemAlloc of a third buffer: %s\n", name);
    if (r == CUDA_SUCCESS) {
        fprintf(stderr, "host_oom: the allocation succeeded: nothing was evicted, or the "
                        "backup came from nowhere\n");
        return 1;
    }
    if (r != CUDA_ERROR_OUT_OF_MEMORY) {
        fprintf(stderr, "host_oom: want CUDA_ERROR_OUT_OF_MEMORY\n");
        return 1;
    }
    if (check(a, back, bytes, 0xa1, "A", "after the failed eviction") ||
        check(b, back, bytes, 0xb2, "B", "after the failed eviction"))
        return 1;
    /* Host memory is back: the same request now evicts and succeeds. */
    CU(cuMemAlloc(&c, bytes));
    memset(fill, 0xc3, bytes);
    CU(cuMemcpyHtoD(c, fill, bytes));
    if (check(a, back, bytes, 0xa1, "A", "at the end") ||
        check(b, back, bytes, 0xb2, "B", "at the end") ||
        check(c, back, bytes, 0xc3, "C", "at the end"))
        return 1;
    CU(cuMemFree(a));
    CU(cuMemFree(b));
    CU(cuMemFree(c));
    free(fill);
    free(back);
    printf("host_oom: ok: the eviction failed cleanly, the data stayed on the device\n");
    return 0;
}
