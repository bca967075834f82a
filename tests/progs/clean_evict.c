/*
 * clean_evict.c — a weight that kernels only read and a buffer a kernel changes by one
 * byte per turn, under a budget that holds one of them (clean evictions, memory/
 * fingerprint.h).
 *
 *   clean_evict KERNELS.so TURNS [MiB [upload]]
 *
 * W and B of MiB each (default 64), uploaded. Each turn: fold W into an accumulator
 * (reads W), bump one byte of B, fold B. At the end the accumulator and a hash of B read
 * back are printed: "clean_evict: ok acc HEX b HEX". The output is the same with and
 * without liboffload; under liboffload W's backup stays valid across turns (its clean
 * evictions copy nothing) and B is copied at every eviction.
 * With `upload`, B is rewritten from the host each turn (a synchronous cuMemcpyHtoD on
 * the legacy stream, nothing else between) instead of by the kernel: a write that
 * liboffload must order after whatever of its own still reads B (an eviction's
 * fingerprint or copy, even one that failed half-way).
 */
#include "tests/progs/prog_check.h"

#include <cuda.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fill(CUdeviceptr p, size_t bytes, uint64_t seed, uint64_t *host) {
    for (size_t i = 0; i < bytes / 8; i++)
        host[i] = (seed + i) * 0x9e3779b97f4a7c15ull;
    PROG_CHECK_CU(cuMemcpyHtoD(p, host, bytes));
}

static void fold(CUfunction f, CUdeviceptr p, size_t bytes, CUdeviceptr acc) {
    unsigned long long n = bytes / 8;
    void *args[] = {&p, &n, &acc};
    PROG_CHECK_CU(cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, NULL, args, NULL));
}

int main(int argc, char **argv) {
    if (argc < 3 || argc > 5 || atoi(argv[2]) < 1 ||
        (argc == 5 && strcmp(argv[4], "upload") != 0)) {
        fprintf(stderr, "usage: clean_evict KERNELS.so TURNS [MiB [upload]]\n");
        return 2;
    }
    int turns = atoi(argv[2]);
    size_t bytes = (size_t)(argc >= 4 ? atoi(argv[3]) : 64) << 20;
    bool upload = argc == 5;
    uint64_t *host = malloc(bytes);
    if (!host)
        return 1;
    CUdevice dev;
    prog_primary_context(&dev);
    CUmodule mod;
    CUfunction fold_words, bump_byte;
    PROG_CHECK_CU(cuModuleLoad(&mod, argv[1]));
    PROG_CHECK_CU(cuModuleGetFunction(&fold_words, mod, "fold_words"));
    PROG_CHECK_CU(cuModuleGetFunction(&bump_byte, mod, "bump_byte"));

    CUdeviceptr w, b, acc;
    PROG_CHECK_CU(cuMemAlloc(&w, bytes));
    fill(w, bytes, 1, host);
    PROG_CHECK_CU(cuMemAlloc(&b, bytes));
    fill(b, bytes, 2, host);
    PROG_CHECK_CU(cuMemAlloc(&acc, 8)); /* below min_size: never evicted */
    unsigned long long zero = 0xcbf29ce484222325ull;
    PROG_CHECK_CU(cuMemcpyHtoD(acc, &zero, 8));

    for (int t = 0; t < turns; t++) {
        fold(fold_words, w, bytes, acc);
        if (upload) {
            fill(b, bytes, 3 + (uint64_t)t, host);
        } else {
            unsigned long long at = ((unsigned long long)t * 1000003u + 7) % bytes;
            void *args[] = {&b, &at};
            PROG_CHECK_CU(cuLaunchKernel(bump_byte, 1, 1, 1, 1, 1, 1, 0, NULL, args, NULL));
        }
        fold(fold_words, b, bytes, acc);
    }
    unsigned long long result;
    PROG_CHECK_CU(cuMemcpyDtoH(&result, acc, 8));
    PROG_CHECK_CU(cuMemcpyDtoH(host, b, bytes));
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < bytes / 8; i++)
        h = (h ^ host[i]) * 0x100000001b3ull;
    printf("clean_evict: ok acc %016llx b %016llx\n", result, (unsigned long long)h);
    free(host);
    return 0;
}
