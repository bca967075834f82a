/*
 * switch_early.c — a component switched away from while its prefetch is still in flight.
 *
 *   switch_early MODULE MiB
 *
 * A, B and C of MiB each, written from the host, are components a, b, c of the sequence
 * a -> b -> c (the test's config), under a budget that holds two of them. A kernel on C
 * makes c active (b goes, a is prefetched); a kernel on A makes a active and prefetches
 * b; a kernel on C right after, out of sequence, makes c active again, which evicts b
 * before any kernel used it, its restore possibly still moving. Then every word of A, B
 * and C is read back and checked: A was incremented once, C twice, B never. Prints "ok" and exits
 * 0, or names the first wrong word and exits 1. Run with a slow SIMCUDA_PCIE_GBPS so the prefetch
 * is still in flight when the eviction is issued: the eviction must wait for it.
 */
#include "tests/progs/prog_check.h"

#include <cuda.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static uint32_t pattern(int buffer, size_t word) {
    return (uint32_t)(buffer << 28) ^ (uint32_t)(word * 2654435761u);
}

static void add_one(CUfunction add, CUdeviceptr p, unsigned long long words) {
    unsigned delta = 1;
    void *args[] = {&p, &words, &delta};
    PROG_CHECK_CU(
        cuLaunchKernel(add, (unsigned)((words + 255) / 256), 1, 1, 256, 1, 1, 0, NULL, args, NULL));
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: switch_early MODULE MiB\n");
        return 2;
    }
    size_t bytes = (size_t)atoi(argv[2]) << 20, words = bytes / 4;
    uint32_t *host = malloc(bytes);
    if (!host)
        return 1;
    CUdevice dev;
    prog_primary_context(&dev);
    CUmodule mod;
    CUfunction add;
    PROG_CHECK_CU(cuModuleLoad(&mod, argv[1]));
    PROG_CHECK_CU(cuModuleGetFunction(&add, mod, "add_u32"));

    CUdeviceptr buf[3];
    for (int b = 0; b < 3; b++) {
        PROG_CHECK_CU(cuMemAlloc(&buf[b], bytes));
        for (size_t i = 0; i < words; i++)
            host[i] = pattern(b, i);
        PROG_CHECK_CU(cuMemcpyHtoD(buf[b], host, bytes));
    }
    add_one(add, buf[2], words); /* c active: b evicted, a prefetched */
    add_one(add, buf[0], words); /* a active: c evicted, then b prefetched */
    /* The prefetch waits for c's eviction to land: the context sync waits for that copy
     * too (liboffload's streams are the context's), and the host wait after it finds the
     * eviction landed and issues the prefetch, which is then moving. */
    PROG_CHECK_CU(cuCtxSynchronize());
    PROG_CHECK_CU(cuStreamSynchronize(NULL));
    add_one(add, buf[2], words); /* c active, out of sequence: b evicted, unused */
    PROG_CHECK_CU(cuCtxSynchronize());

    static const uint32_t added_to[3] = {1, 0, 2};
    for (int b = 0; b < 3; b++) {
        PROG_CHECK_CU(cuMemcpyDtoH(host, buf[b], bytes));
        uint32_t added = added_to[b];
        for (size_t i = 0; i < words; i++) {
            if (host[i] != pattern(b, i) + added) {
                fprintf(stderr, "switch_early: buffer %c word %zu is 0x%08x, not 0x%08x\n", 'A' + b,
                        i, host[i], pattern(b, i) + added);
                return 1;
            }
        }
        PROG_CHECK_CU(cuMemFree(buf[b]));
    }
    PROG_CHECK_CU(cuModuleUnload(mod));
    free(host);
    printf("ok\n");
    return 0;
}
