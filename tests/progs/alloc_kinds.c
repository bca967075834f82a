/*
 * alloc_kinds — the same work on device memory allocated each way frameworks allocate it
 * (issue 17): cuMemAlloc; mapped by the program (cuMemAddressReserve + cuMemCreate +
 * cuMemMap + cuMemSetAccess, as PyTorch's expandable segments or ggml's VMM pool);
 * stream-ordered from the device's current pool (cuMemAllocAsync, as cudaMallocAsync);
 * stream-ordered from a created pool (cuMemPoolCreate + cuMemAllocFromPoolAsync).
 *
 *   alloc_kinds KERNELS.so [--kind alloc|vmm|async|pool|all] [--buffers N] [--size MiB]
 *   alloc_kinds KERNELS.so --errors
 *
 * For each kind: N buffers (default 8 of 32 MiB) made that way, all of them first; each
 * written by a kernel, then updated twice by a kernel (every buffer in turn, each round:
 * under pressure a buffer is evicted and restored between its kernels); read back, and
 * hashed. Prints "alloc_kinds: KIND checksum 0x%016llx" per kind; the pattern depends
 * only on the buffer's index, so every kind gives the same checksum. The buffers are
 * freed the way they were made before the next kind starts.
 *
 * --errors: misuses of VMM handles and ranges and of stream-ordered allocations, each
 * printed as "errors: WHAT = CUDA_ERROR_NAME" (the driver answers CUDA_ERROR_INVALID_VALUE
 * to every one of them); exits 0 when all of them got it, 1 otherwise.
 *
 * A failed call prints "alloc_kinds: FILE:LINE: CALL = CUDA_ERROR_NAME" and exits 1.
 */
#include "tests/progs/prog_check.h"

#include <stdint.h>
#include <string.h>

#define MiB ((size_t)1 << 20)

enum kind { KIND_ALLOC, KIND_VMM, KIND_ASYNC, KIND_POOL, NKINDS };
static const char *const kind_names[NKINDS] = {"alloc", "vmm", "async", "pool"};

/* The buffers of one kind, and what it takes to free them. */
struct buffers {
    enum kind kind;
    unsigned n;
    size_t size;
    CUdeviceptr *ptr;
    CUmemGenericAllocationHandle *handle; /* vmm */
    CUdeviceptr va;                       /* vmm: one reservation for all of them */
    CUmemoryPool pool;                    /* pool */
};

static void make_vmm(struct buffers *b) {
    CUmemAllocationProp prop;
    memset(&prop, 0, sizeof prop);
    prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    prop.location.id = 0;
    size_t gran = 0;
    PROG_CHECK_CU(cuMemGetAllocationGranularity(&gran, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM));
    if (b->size % gran) {
        fprintf(stderr, "alloc_kinds: --size must be a multiple of %zu bytes for vmm\n", gran);
        exit(2);
    }
    CUmemAccessDesc access;
    memset(&access, 0, sizeof access);
    access.location = prop.location;
    access.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
    PROG_CHECK_CU(cuMemAddressReserve(&b->va, b->n * b->size, 0, 0, 0));
    for (unsigned i = 0; i < b->n; i++) {
        b->ptr[i] = b->va + i * b->size;
        PROG_CHECK_CU(cuMemCreate(&b->handle[i], b->size, &prop, 0));
        PROG_CHECK_CU(cuMemMap(b->ptr[i], b->size, 0, b->handle[i], 0));
        PROG_CHECK_CU(cuMemSetAccess(b->ptr[i], b->size, &access, 1));
    }
}

static void make_pool(struct buffers *b) {
    CUmemPoolProps props;
    memset(&props, 0, sizeof props);
    props.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
    props.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    props.location.id = 0;
    PROG_CHECK_CU(cuMemPoolCreate(&b->pool, &props));
    /* as frameworks do: the pool keeps what it reserved (no release at each synchronize) */
    cuuint64_t keep = UINT64_MAX;
    PROG_CHECK_CU(cuMemPoolSetAttribute(b->pool, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &keep));
}

static void make_buffers(struct buffers *b, CUstream s) {
    b->ptr = calloc(b->n, sizeof *b->ptr);
    b->handle = calloc(b->n, sizeof *b->handle);
    if (!b->ptr || !b->handle) {
        fprintf(stderr, "alloc_kinds: out of host memory\n");
        exit(1);
    }
    if (b->kind == KIND_VMM)
        make_vmm(b);
    if (b->kind == KIND_POOL)
        make_pool(b);
    for (unsigned i = 0; i < b->n; i++) {
        if (b->kind == KIND_ALLOC)
            PROG_CHECK_CU(cuMemAlloc(&b->ptr[i], b->size));
        else if (b->kind == KIND_ASYNC)
            PROG_CHECK_CU(cuMemAllocAsync(&b->ptr[i], b->size, s));
        else if (b->kind == KIND_POOL)
            PROG_CHECK_CU(cuMemAllocFromPoolAsync(&b->ptr[i], b->size, b->pool, s));
    }
}

static void free_buffers(struct buffers *b, CUstream s) {
    for (unsigned i = 0; i < b->n; i++) {
        if (b->kind == KIND_ALLOC)
            PROG_CHECK_CU(cuMemFree(b->ptr[i]));
        else if (b->kind == KIND_VMM) {
            PROG_CHECK_CU(cuMemUnmap(b->ptr[i], b->size));
            PROG_CHECK_CU(cuMemRelease(b->handle[i]));
        } else {
            PROG_CHECK_CU(cuMemFreeAsync(b->ptr[i], s));
        }
    }
    PROG_CHECK_CU(cuStreamSynchronize(s));
    if (b->kind == KIND_VMM)
        PROG_CHECK_CU(cuMemAddressFree(b->va, b->n * b->size));
    if (b->kind == KIND_POOL)
        PROG_CHECK_CU(cuMemPoolDestroy(b->pool));
    free(b->ptr);
    free(b->handle);
}

static void launch(CUfunction f, CUdeviceptr p, size_t words, unsigned v, CUstream s) {
    unsigned long long n = words;
    void *args[] = {&p, &n, &v};
    unsigned blocks = (unsigned)((words + 255) / 256);
    PROG_CHECK_CU(cuLaunchKernel(f, blocks, 1, 1, 256, 1, 1, 0, s, args, NULL));
}

/* FNV-1a over 64-bit words, with a shift to mix: every byte of every buffer counts. */
static uint64_t hash_words(uint64_t h, const uint64_t *w, size_t n) {
    for (size_t i = 0; i < n; i++) {
        h = (h ^ w[i]) * 0x100000001b3ull;
        h ^= h >> 29; /* high bits back into the low ones */
    }
    return h;
}

static uint64_t run_kind(enum kind k, unsigned n, size_t size, CUfunction pattern,
                         CUfunction update, CUstream s, uint64_t *host) {
    struct buffers b = {.kind = k, .n = n, .size = size};
    size_t words = size / 4;
    make_buffers(&b, s);
    for (unsigned i = 0; i < n; i++)
        launch(pattern, b.ptr[i], words, 0x9e3779b9u * (i + 1), s);
    for (unsigned round = 1; round <= 2; round++)
        for (unsigned i = 0; i < n; i++)
            launch(update, b.ptr[i], words, round * 1000u + i, s);
    uint64_t h = 0xcbf29ce484222325ull;
    for (unsigned i = 0; i < n; i++) {
        PROG_CHECK_CU(cuMemcpyDtoHAsync(host, b.ptr[i], size, s));
        PROG_CHECK_CU(cuStreamSynchronize(s));
        h = hash_words(h, host, size / 8);
    }
    free_buffers(&b, s);
    return h;
}

/* ---- --errors -------------------------------------------------------------------- */

static int errors_wrong;

static void expect_invalid(const char *what, CUresult r) {
    const char *name = "?";
    cuGetErrorName(r, &name);
    printf("errors: %s = %s\n", what, name);
    errors_wrong += r != CUDA_ERROR_INVALID_VALUE;
}

static void vmm_errors(void) {
    CUmemAllocationProp prop;
    memset(&prop, 0, sizeof prop);
    prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    size_t gran = 0;
    PROG_CHECK_CU(cuMemGetAllocationGranularity(&gran, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM));
    CUdeviceptr va;
    CUmemGenericAllocationHandle h, h2;
    PROG_CHECK_CU(cuMemAddressReserve(&va, 2 * gran, 0, 0, 0));
    PROG_CHECK_CU(cuMemCreate(&h, gran, &prop, 0));
    PROG_CHECK_CU(cuMemCreate(&h2, gran, &prop, 0));
    expect_invalid("cuMemRelease(0)", cuMemRelease(0));
    expect_invalid("cuMemMap(handle 0)", cuMemMap(va, gran, 0, 0, 0));
    PROG_CHECK_CU(cuMemMap(va, gran, 0, h, 0));
    expect_invalid("cuMemMap(over a mapped range)", cuMemMap(va, gran, 0, h2, 0));
    PROG_CHECK_CU(cuMemUnmap(va, gran));
    expect_invalid("cuMemUnmap(not mapped)", cuMemUnmap(va, gran));
    PROG_CHECK_CU(cuMemRelease(h));
    expect_invalid("cuMemRelease(released)", cuMemRelease(h));
    expect_invalid("cuMemMap(released handle)", cuMemMap(va, gran, 0, h, 0));
    PROG_CHECK_CU(cuMemRelease(h2));
    PROG_CHECK_CU(cuMemAddressFree(va, 2 * gran));
}

static void stream_ordered_errors(CUstream s) {
    CUdeviceptr d, plain;
    CUmemoryPool def, pool;
    CUmemPoolProps props;
    memset(&props, 0, sizeof props);
    props.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
    props.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    PROG_CHECK_CU(cuMemAllocAsync(&d, 4096, s));
    PROG_CHECK_CU(cuMemFreeAsync(d, s));
    expect_invalid("cuMemFreeAsync(freed)", cuMemFreeAsync(d, s));
    PROG_CHECK_CU(cuMemAlloc(&plain, 4096));
    expect_invalid("cuMemFreeAsync(cuMemAlloc memory)", cuMemFreeAsync(plain, s));
    PROG_CHECK_CU(cuMemFree(plain));
    PROG_CHECK_CU(cuDeviceGetDefaultMemPool(&def, 0));
    expect_invalid("cuMemPoolDestroy(default pool)", cuMemPoolDestroy(def));
    PROG_CHECK_CU(cuMemPoolCreate(&pool, &props));
    PROG_CHECK_CU(cuMemPoolDestroy(pool));
    expect_invalid("cuMemAllocFromPoolAsync(destroyed pool)",
                   cuMemAllocFromPoolAsync(&d, 4096, pool, s));
    PROG_CHECK_CU(cuStreamSynchronize(s));
}

/* ---- main ------------------------------------------------------------------------ */

static void usage(const char *argv0) {
    fprintf(stderr,
            "usage: %s KERNELS.so [--kind alloc|vmm|async|pool|all] [--buffers N] "
            "[--size MiB] [--errors]\n",
            argv0);
    exit(2);
}

int main(int argc, char **argv) {
    if (argc < 2)
        usage(argv[0]);
    int first = 0, last = NKINDS - 1, errors = 0;
    unsigned n = 8;
    size_t size = 32 * MiB;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--errors") == 0) {
            errors = 1;
        } else if (strcmp(argv[i], "--kind") == 0 && i + 1 < argc) {
            const char *k = argv[++i];
            first = strcmp(k, "all") == 0 ? 0 : -1;
            for (int j = 0; j < NKINDS && first < 0; j++)
                if (strcmp(k, kind_names[j]) == 0)
                    first = last = j;
            if (first < 0)
                usage(argv[0]);
        } else if (strcmp(argv[i], "--buffers") == 0 && i + 1 < argc) {
            n = (unsigned)strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--size") == 0 && i + 1 < argc) {
            size = strtoull(argv[++i], NULL, 10) * MiB;
        } else {
            usage(argv[0]);
        }
    }
    if (n == 0 || size == 0)
        usage(argv[0]);

    CUdevice dev;
    prog_primary_context(&dev);
    CUstream s;
    PROG_CHECK_CU(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    if (errors) {
        vmm_errors();
        stream_ordered_errors(s);
        printf("errors: %d wrong\n", errors_wrong);
        return errors_wrong ? 1 : 0;
    }
    CUmodule mod;
    CUfunction pattern, update;
    PROG_CHECK_CU(cuModuleLoad(&mod, argv[1]));
    PROG_CHECK_CU(cuModuleGetFunction(&pattern, mod, "pattern_u32"));
    PROG_CHECK_CU(cuModuleGetFunction(&update, mod, "update_u32"));
    uint64_t *host = malloc(size);
    if (!host) {
        fprintf(stderr, "alloc_kinds: out of host memory\n");
        return 1;
    }
    for (int k = first; k <= last; k++) {
        uint64_t h = run_kind((enum kind)k, n, size, pattern, update, s, host);
        printf("alloc_kinds: %s checksum 0x%016llx\n", kind_names[k], (unsigned long long)h);
        fflush(stdout);
    }
    free(host);
    PROG_CHECK_CU(cuStreamDestroy(s));
    PROG_CHECK_CU(cuModuleUnload(mod));
    return 0;
}
