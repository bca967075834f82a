/*
 * read_evicted.c — synchronous reads of evicted buffers.
 *
 *   read_evicted MiB
 *
 * A and B of MiB each, under a budget that holds one of them: A written, B written (A is
 * evicted for it), A read whole and from an interior offset, B read, A written again (A
 * restored, B evicted), A read, B read. Every word is checked against its pattern; prints
 * "ok" and exits 0, or names the first failed call or word and exits 1. Under liboffload
 * the reads of the evicted buffer come from its host backup (OFFLOAD_STATS backup_reads)
 * instead of restoring it.
 */
#include "tests/progs/prog_check.h"

#include <cuda.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static uint32_t pattern(uint32_t seed, size_t word) {
    return seed ^ (uint32_t)(word * 2654435761u);
}

static void write_words(CUdeviceptr p, size_t bytes, uint32_t seed, uint32_t *host) {
    for (size_t i = 0; i < bytes / 4; i++)
        host[i] = pattern(seed, i);
    PROG_CHECK_CU(cuMemcpyHtoD(p, host, bytes));
}

/* Reads [offset, offset+bytes) of p and checks it against seed's pattern. */
static void expect_words(CUdeviceptr p, size_t offset, size_t bytes, uint32_t seed, uint32_t *host,
                         const char *what) {
    PROG_CHECK_CU(cuMemcpyDtoH(host, p + offset, bytes));
    for (size_t i = 0; i < bytes / 4; i++) {
        uint32_t want = pattern(seed, offset / 4 + i);
        if (host[i] != want) {
            fprintf(stderr, "read_evicted: %s word %zu is 0x%08x, not 0x%08x\n", what,
                    offset / 4 + i, host[i], want);
            exit(1);
        }
    }
}

int main(int argc, char **argv) {
    if (argc != 2 || atoi(argv[1]) < 2) {
        fprintf(stderr, "usage: read_evicted MiB (at least 2)\n");
        return 2;
    }
    size_t bytes = (size_t)atoi(argv[1]) << 20;
    uint32_t *host = malloc(bytes);
    if (!host)
        return 1;
    CUdevice dev;
    prog_primary_context(&dev);

    CUdeviceptr a, b;
    PROG_CHECK_CU(cuMemAlloc(&a, bytes));
    write_words(a, bytes, 0xa0000001u, host);
    PROG_CHECK_CU(cuMemAlloc(&b, bytes));
    write_words(b, bytes, 0xb0000001u, host);
    expect_words(a, 0, bytes, 0xa0000001u, host, "A");
    expect_words(a, 4096 + 12, 1 << 20, 0xa0000001u, host, "A interior");
    expect_words(b, 0, bytes, 0xb0000001u, host, "B");
    write_words(a, bytes, 0xa0000002u, host);
    expect_words(a, 0, bytes, 0xa0000002u, host, "A rewritten");
    expect_words(b, 0, bytes, 0xb0000001u, host, "B again");

    PROG_CHECK_CU(cuMemFree(a));
    PROG_CHECK_CU(cuMemFree(b));
    PROG_CHECK_CU(cuDevicePrimaryCtxRelease(dev));
    free(host);
    printf("ok\n");
    return 0;
}
