/*
 * pointer_table.c — a kernel that reads its operands' addresses from a table in device
 * memory, the table uploaded by the program (as cuBLAS's batched GEMMs and CUTLASS's
 * grouped GEMM are given their pointer arrays), under memory pressure.
 *
 *   pointer_table MiB [tracked | untracked] [sync | async | generic]
 *
 * Four buffers A, B, C, D of MiB each, filled with 1, 2, 3, 4 in that order (on a device
 * that holds three of them beside the table, A is evicted to make room for D). The table
 * holds {A, B}: sum_table(table, 2, C) makes C = 3, and D (least recently used) is
 * evicted for A. The table is then rewritten to {C, D}, and sum_table(table, 2, A) makes
 * A = 7 (D restored, B evicted). No launch passes A, B or D directly where they are read:
 * a liboffload that does not follow the table lets the kernel read evicted memory (an
 * illegal address on a GPU, the simulator's sticky fault), one that does not follow the
 * table's rewrite reads D evicted.
 *
 * `tracked` (the default): the table sits at offset 64 of a 2 MiB allocation, as a
 * caching allocator would place it in a segment; `untracked`: its own 64-byte allocation,
 * below liboffload's min_size. The upload is cuMemcpyHtoD (`sync`, the default),
 * cuMemcpyHtoDAsync from pinned memory (`async`) or cuMemcpy from pageable memory
 * (`generic`).
 *
 * Prints "sum A B C D = ..." and exits 0 when every word is right, else names the first
 * wrong one and exits 1.
 */
#include "tests/progs/prog_check.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#define THREADS 256
#define TABLE_OFFSET 64 /* inside the tracked table allocation */

static CUmodule module;

static void launch(const char *name, unsigned long long n, void **params) {
    CUfunction f;
    PROG_CHECK_CU(cuModuleGetFunction(&f, module, name));
    unsigned blocks = (unsigned)((n + THREADS - 1) / THREADS);
    PROG_CHECK_CU(cuLaunchKernel(f, blocks, 1, 1, THREADS, 1, 1, 0, NULL, params, NULL));
}

static void upload(CUdeviceptr table, const CUdeviceptr ptrs[2], const char *how) {
    if (strcmp(how, "async") == 0) {
        CUdeviceptr *pinned;
        PROG_CHECK_CU(cuMemAllocHost((void **)&pinned, 2 * sizeof *pinned));
        memcpy(pinned, ptrs, 2 * sizeof *pinned);
        PROG_CHECK_CU(cuMemcpyHtoDAsync(table, pinned, 2 * sizeof *pinned, NULL));
        PROG_CHECK_CU(cuStreamSynchronize(NULL));
        PROG_CHECK_CU(cuMemFreeHost(pinned));
    } else if (strcmp(how, "generic") == 0) {
        PROG_CHECK_CU(cuMemcpy(table, (CUdeviceptr)(uintptr_t)ptrs, 2 * sizeof *ptrs));
    } else {
        PROG_CHECK_CU(cuMemcpyHtoD(table, ptrs, 2 * sizeof *ptrs));
    }
}

static void sum_table(CUdeviceptr table, CUdeviceptr out, unsigned long long n) {
    unsigned count = 2;
    launch("sum_table", n, (void *[]){&table, &count, &out, &n});
}

int main(int argc, char **argv) {
    size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 32;
    bool untracked = argc > 2 && strcmp(argv[2], "untracked") == 0;
    const char *how = argc > 3 ? argv[3] : "sync";
    unsigned long long n = mib * (1 << 20) / 4;
    CUdevice dev;
    prog_primary_context(&dev);
    PROG_CHECK_CU(cuModuleLoad(&module, prog_beside_exe("table_kernels.so")));
    CUdeviceptr table_alloc, table;
    PROG_CHECK_CU(cuMemAlloc(&table_alloc, untracked ? 64 : 2 << 20));
    table = untracked ? table_alloc : table_alloc + TABLE_OFFSET;
    CUdeviceptr buf[4];
    for (unsigned i = 0; i < 4; i++) {
        PROG_CHECK_CU(cuMemAlloc(&buf[i], n * 4));
        unsigned v = i + 1;
        launch("table_fill", n, (void *[]){&buf[i], &n, &v});
    }
    CUdeviceptr a = buf[0], b = buf[1], c = buf[2], d = buf[3];
    upload(table, (CUdeviceptr[]){a, b}, how);
    sum_table(table, c, n); /* C = 1 + 2 */
    upload(table, (CUdeviceptr[]){c, d}, how);
    sum_table(table, a, n); /* A = 3 + 4 */
    PROG_CHECK_CU(cuCtxSynchronize());
    uint64_t sum = prog_check_words(a, n, 7, "A") + prog_check_words(b, n, 2, "B") +
                   prog_check_words(c, n, 3, "C") + prog_check_words(d, n, 4, "D");
    printf("sum A B C D = %llu\n", (unsigned long long)sum);
    for (unsigned i = 0; i < 4; i++)
        PROG_CHECK_CU(cuMemFree(buf[i]));
    PROG_CHECK_CU(cuMemFree(table_alloc));
    return 0;
}
