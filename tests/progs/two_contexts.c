/*
 * two_contexts.c — a program with a second context on the same device.
 *
 *   two_contexts MiB
 *
 * In the primary context: X (MiB) filled with a pattern. Then a context of its own,
 * current: cuMemGetInfo's total printed, Y (MiB) allocated, filled with another pattern, read back,
 * freed. Back in the primary context: X read back. Every word is checked; prints "ok" and exits 0,
 * or names the first failed call or word and exits 1. Run under liboffload with a budget that holds
 * X or Y but not both, Y's allocation has to make room by evicting X.
 */
#include "tests/progs/prog_check.h"

#include <cuda.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static void expect_words(CUdeviceptr p, size_t bytes, uint32_t value, const char *what) {
    uint32_t *host = malloc(bytes);
    if (!host) {
        fprintf(stderr, "two_contexts: out of host memory\n");
        exit(1);
    }
    PROG_CHECK_CU(cuMemcpyDtoH(host, p, bytes));
    for (size_t i = 0; i < bytes / 4; i++) {
        if (host[i] != value) {
            fprintf(stderr, "two_contexts: %s word %zu is 0x%08x, not 0x%08x\n", what, i, host[i],
                    value);
            exit(1);
        }
    }
    free(host);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: two_contexts MiB\n");
        return 2;
    }
    size_t bytes = (size_t)atoi(argv[1]) << 20;
    CUdevice dev;
    CUcontext own, primary = prog_primary_context(&dev);

    CUdeviceptr x, y;
    PROG_CHECK_CU(cuMemAlloc(&x, bytes));
    PROG_CHECK_CU(cuMemsetD32(x, 0x5eed0001u, bytes / 4));
    PROG_CHECK_CU(cuCtxSynchronize());

    PROG_CHECK_CU(cuCtxCreate(&own, NULL, 0, dev)); /* current from here */
    size_t free_bytes = 0, total = 0;
    PROG_CHECK_CU(cuMemGetInfo(&free_bytes, &total));
    printf("own context: total %zu\n", total); /* the same device: under liboffload, the budget */
    PROG_CHECK_CU(cuMemAlloc(&y, bytes));
    PROG_CHECK_CU(cuMemsetD32(y, 0x5eed0002u, bytes / 4));
    PROG_CHECK_CU(cuCtxSynchronize());
    expect_words(y, bytes, 0x5eed0002u, "Y (own context)");
    PROG_CHECK_CU(cuMemFree(y));
    PROG_CHECK_CU(cuCtxDestroy(own));

    PROG_CHECK_CU(cuCtxSetCurrent(primary));
    expect_words(x, bytes, 0x5eed0001u, "X (primary context)");
    PROG_CHECK_CU(cuMemFree(x));
    PROG_CHECK_CU(cuDevicePrimaryCtxRelease(dev));
    printf("ok\n");
    return 0;
}
