/*
 * mapped_span — one buffer across several program mappings (issue 17): the way PyTorch's
 * expandable segments and ggml's VMM pool place a large tensor across contiguous handles
 * of one reservation. A kernel reads and writes all of it while other memory presses on
 * the device: each of its mappings must be resident when the kernel runs, although the
 * kernel's pointer lies in one of them only.
 *
 *   mapped_span KERNELS.so --learn copy|access [--pages N] [--page MiB] [--rounds R]
 *
 * N handles of one page each (default 3 of 8 MiB) mapped one after the other in one
 * reservation. The buffer starts half a page in and runs to the end of the last page.
 * --learn copy: each mapping gets its own cuMemSetAccess (as ggml does); the buffer is
 *   uploaded by one cuMemcpyHtoDAsync (a weight's load).
 * --learn access: one cuMemSetAccess over all the mappings (as PyTorch's expandable
 *   segments do for the pages one block needs); the buffer is first written by a kernel.
 * Then R rounds: the kernel update_u32 over the whole buffer, then N+1 pressure buffers of
 * one page each (cuMemAlloc) written by a kernel, so that the least recently used
 * memory, the buffer's far mappings first, is evicted between rounds under a budget
 * below N+1 pages plus the buffer. The buffer is read back with one cuMemcpyDtoHAsync and
 * hashed: prints "mapped_span: checksum 0x%016llx", the same with or without liboffload.
 *
 * A failed call prints "mapped_span: FILE:LINE: CALL = CUDA_ERROR_NAME" and exits 1 (a
 * mapping evicted beneath the kernel is CUDA_ERROR_ILLEGAL_ADDRESS at the next sync).
 */
#include "tests/progs/prog_check.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define MiB ((size_t)1 << 20)

static void launch(CUfunction f, CUdeviceptr p, size_t words, unsigned v, CUstream s) {
    unsigned long long n = words;
    void *args[] = {&p, &n, &v};
    unsigned blocks = (unsigned)((words + 255) / 256);
    PROG_CHECK_CU(cuLaunchKernel(f, blocks, 1, 1, 256, 1, 1, 0, s, args, NULL));
}

/* FNV-1a over 64-bit words, with a shift to mix (as alloc_kinds). */
static uint64_t hash_words(const uint64_t *w, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h = (h ^ w[i]) * 0x100000001b3ull;
        h ^= h >> 29;
    }
    return h;
}

static void usage(const char *argv0) {
    fprintf(stderr,
            "usage: %s KERNELS.so --learn copy|access [--pages N] [--page MiB] [--rounds R]\n",
            argv0);
    exit(2);
}

int main(int argc, char **argv) {
    if (argc < 2)
        usage(argv[0]);
    const char *learn = NULL;
    unsigned pages = 3, rounds = 4;
    size_t page = 8 * MiB;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--learn") == 0 && i + 1 < argc)
            learn = argv[++i];
        else if (strcmp(argv[i], "--pages") == 0 && i + 1 < argc)
            pages = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--page") == 0 && i + 1 < argc)
            page = strtoull(argv[++i], NULL, 10) * MiB;
        else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
            rounds = (unsigned)strtoul(argv[++i], NULL, 10);
        else
            usage(argv[0]);
    }
    if (!learn || (strcmp(learn, "copy") != 0 && strcmp(learn, "access") != 0) || pages < 2 ||
        page == 0)
        usage(argv[0]);
    bool by_copy = strcmp(learn, "copy") == 0;

    CUdevice dev;
    prog_primary_context(&dev);
    CUstream s;
    PROG_CHECK_CU(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    CUmodule mod;
    CUfunction pattern, update;
    PROG_CHECK_CU(cuModuleLoad(&mod, argv[1]));
    PROG_CHECK_CU(cuModuleGetFunction(&pattern, mod, "pattern_u32"));
    PROG_CHECK_CU(cuModuleGetFunction(&update, mod, "update_u32"));

    CUmemAllocationProp prop;
    memset(&prop, 0, sizeof prop);
    prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    prop.location.id = dev;
    size_t gran = 0;
    PROG_CHECK_CU(cuMemGetAllocationGranularity(&gran, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM));
    if (page % (2 * gran)) {
        fprintf(stderr, "mapped_span: --page must be a multiple of %zu bytes\n", 2 * gran);
        return 2;
    }
    CUmemAccessDesc access;
    memset(&access, 0, sizeof access);
    access.location = prop.location;
    access.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;

    CUdeviceptr va;
    CUmemGenericAllocationHandle *handle = calloc(pages, sizeof *handle);
    CUdeviceptr *pressure = calloc(pages + 1, sizeof *pressure);
    size_t bytes = pages * page - page / 2, words = bytes / 4;
    uint64_t *host = malloc(bytes);
    if (!handle || !pressure || !host) {
        fprintf(stderr, "mapped_span: out of host memory\n");
        return 1;
    }
    PROG_CHECK_CU(cuMemAddressReserve(&va, pages * page, 0, 0, 0));
    for (unsigned i = 0; i < pages; i++) {
        PROG_CHECK_CU(cuMemCreate(&handle[i], page, &prop, 0));
        PROG_CHECK_CU(cuMemMap(va + i * page, page, 0, handle[i], 0));
        if (by_copy)
            PROG_CHECK_CU(cuMemSetAccess(va + i * page, page, &access, 1));
    }
    if (!by_copy)
        PROG_CHECK_CU(cuMemSetAccess(va, pages * page, &access, 1));
    for (unsigned i = 0; i <= pages; i++)
        PROG_CHECK_CU(cuMemAlloc(&pressure[i], page));

    CUdeviceptr buffer = va + page / 2;
    if (by_copy) {
        unsigned *w = (unsigned *)host;
        for (size_t i = 0; i < words; i++)
            w[i] = (unsigned)(i * 2654435761ull) ^ 0x5eedu;
        /* on the kernels' stream: a non-blocking stream is not ordered after a copy the
         * legacy stream makes (a pageable upload may still be landing when it returns) */
        PROG_CHECK_CU(cuMemcpyHtoDAsync(buffer, host, bytes, s));
    } else {
        launch(pattern, buffer, words, 0x5eedu, s);
    }
    for (unsigned r = 1; r <= rounds; r++) {
        launch(update, buffer, words, r, s);
        for (unsigned i = 0; i <= pages; i++)
            launch(pattern, pressure[i], page / 4, r * 100 + i, s);
        PROG_CHECK_CU(cuStreamSynchronize(s));
    }
    PROG_CHECK_CU(cuMemcpyDtoHAsync(host, buffer, bytes, s));
    PROG_CHECK_CU(cuStreamSynchronize(s));
    printf("mapped_span: checksum 0x%016llx\n", (unsigned long long)hash_words(host, bytes / 8));

    for (unsigned i = 0; i <= pages; i++)
        PROG_CHECK_CU(cuMemFree(pressure[i]));
    PROG_CHECK_CU(cuMemUnmap(va, pages * page));
    for (unsigned i = 0; i < pages; i++)
        PROG_CHECK_CU(cuMemRelease(handle[i]));
    PROG_CHECK_CU(cuMemAddressFree(va, pages * page));
    PROG_CHECK_CU(cuStreamDestroy(s));
    PROG_CHECK_CU(cuModuleUnload(mod));
    free(host);
    free(pressure);
    free(handle);
    return 0;
}
