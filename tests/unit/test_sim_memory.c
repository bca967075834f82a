/* The simulated driver's memory: allocation, copies, memsets, VMM mapping, capacity,
 * validation of copies against unmapped memory, faults of kernels on unmapped memory. */
#include "tests/sim/testutil.h"
#include "tests/unit/check.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

#define MiB ((size_t)1 << 20)
#define GRAN (2 * MiB)

static CUmemAllocationProp prop(void) {
    CUmemAllocationProp p = {0};
    p.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    p.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    p.location.id = 0;
    return p;
}

static CUmemAccessDesc rw(void) {
    CUmemAccessDesc a = {0};
    a.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    a.location.id = 0;
    a.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
    return a;
}

static size_t used(void) {
    size_t f, t;
    cuMemGetInfo(&f, &t);
    return t - f;
}

TEST(alloc_copy_memset) {
    CUdeviceptr d;
    size_t n = 3 * MiB + 5;
    size_t before = used();
    CHECK_CU(cuMemAlloc(&d, n));
    CHECK_EQ_U64(used() - before, n);
    unsigned char *h = malloc(n), *back = malloc(n);
    for (size_t i = 0; i < n; i++)
        h[i] = (unsigned char)(i * 7);
    CHECK_CU(sim_test_landed(cuMemcpyHtoD(d, h, n)));
    CHECK_CU(cuMemcpyDtoH(back, d, n));
    CHECK(memcmp(h, back, n) == 0);
    CHECK_CU(sim_test_landed(cuMemsetD8(d + 1, 0xab, 10)));
    CHECK_CU(cuMemcpyDtoH(back, d, 12));
    CHECK(back[0] == h[0] && back[1] == 0xab && back[10] == 0xab && back[11] == h[11]);
    CHECK_CU(sim_test_landed(cuMemsetD32(d, 0x01020304, 4)));
    unsigned w[4];
    CHECK_CU(cuMemcpyDtoH(w, d, sizeof w));
    CHECK(w[0] == 0x01020304 && w[3] == 0x01020304);
    CHECK_EQ_U64(cuMemsetD32(d + 1, 0, 1), CUDA_ERROR_INVALID_VALUE); /* misaligned */
    /* out of bounds by one byte */
    CHECK_EQ_U64(cuMemcpyHtoD(d + n - 4, h, 5), CUDA_ERROR_INVALID_VALUE);
    CUdeviceptr base;
    size_t size;
    CHECK_CU(cuMemGetAddressRange(&base, &size, d + 100));
    CHECK(base == d && size == n);
    CHECK_CU(cuMemFree(d));
    CHECK_EQ_U64(used(), before);
    CHECK_EQ_U64(cuMemcpyDtoH(back, d, 1), CUDA_ERROR_INVALID_VALUE); /* freed */
    CHECK_EQ_U64(cuMemFree(d), CUDA_ERROR_INVALID_VALUE);
    free(h);
    free(back);
}

TEST(vmm_map_unmap) {
    CUmemAllocationProp p = prop();
    size_t g = 0;
    CHECK_CU(cuMemGetAllocationGranularity(&g, &p, CU_MEM_ALLOC_GRANULARITY_MINIMUM));
    CHECK_EQ_U64(g, GRAN);
    CUdeviceptr va;
    CHECK_CU(cuMemAddressReserve(&va, 2 * GRAN, 0, 0, 0));
    CHECK_EQ_U64(va % GRAN, 0);
    size_t before = used();
    CUmemGenericAllocationHandle h;
    CHECK_CU(cuMemCreate(&h, 2 * GRAN, &p, 0));
    CHECK_EQ_U64(used() - before, 2 * GRAN);
    unsigned char buf[64] = {1, 2, 3};
    CHECK_EQ_U64(cuMemcpyHtoD(va, buf, 64), CUDA_ERROR_INVALID_VALUE); /* reserved only */
    CHECK_CU(cuMemMap(va, 2 * GRAN, 0, h, 0));
    CHECK_EQ_U64(cuMemcpyHtoD(va, buf, 64), CUDA_ERROR_INVALID_VALUE); /* mapped, no access */
    CUmemAccessDesc a = rw();
    CHECK_CU(cuMemSetAccess(va, 2 * GRAN, &a, 1));
    CHECK_CU(sim_test_landed(cuMemcpyHtoD(va + GRAN - 32, buf, 64))); /* across the two granules */
    CHECK_CU(cuMemRelease(h));
    CHECK_EQ_U64(used() - before, 2 * GRAN); /* still mapped */
    unsigned char back[64];
    CHECK_CU(cuMemcpyDtoH(back, va + GRAN - 32, 64));
    CHECK(memcmp(buf, back, 64) == 0);
    CHECK_EQ_U64(cuMemAddressFree(va, 2 * GRAN), CUDA_ERROR_INVALID_VALUE); /* still mapped */
    CHECK_EQ_U64(cuMemUnmap(va, GRAN), CUDA_ERROR_INVALID_VALUE);           /* part of a mapping */
    CHECK_CU(cuMemUnmap(va, 2 * GRAN));
    CHECK_EQ_U64(used(), before);
    CHECK_EQ_U64(cuMemcpyDtoH(back, va, 64), CUDA_ERROR_INVALID_VALUE);
    /* remap new memory at the same address: usable, and not the old bytes (the pool
     * hands back the same physical extent, poisoned) */
    CHECK_CU(cuMemCreate(&h, GRAN, &p, 0));
    CHECK_CU(cuMemMap(va, GRAN, 0, h, 0));
    CHECK_CU(cuMemSetAccess(va, GRAN, &a, 1));
    CHECK_CU(cuMemcpyDtoH(back, va + GRAN - 32, 32));
    CHECK(memcmp(buf, back, 32) != 0);
    CHECK_CU(cuMemUnmap(va, GRAN));
    CHECK_CU(cuMemRelease(h));
    CHECK_CU(cuMemAddressFree(va, 2 * GRAN));
    CHECK_EQ_U64(used(), before);
}

/* The driver's errors for misused VMM handles and ranges (issue 17, item 6): an invalid
 * or released handle, a double cuMemRelease, a cuMemMap over a mapped range, all
 * CUDA_ERROR_INVALID_VALUE, and none of them changes anything. */
TEST(vmm_errors) {
    CUmemAllocationProp p = prop();
    CUmemAccessDesc a = rw();
    CUdeviceptr va;
    CUmemGenericAllocationHandle h, h2;
    CHECK_CU(cuMemAddressReserve(&va, 4 * GRAN, 0, 0, 0));
    size_t before = used();
    CHECK_CU(cuMemCreate(&h, 2 * GRAN, &p, 0));
    CHECK_CU(cuMemCreate(&h2, 2 * GRAN, &p, 0));
    /* invalid handles */
    CHECK_EQ_U64(cuMemRelease(0), CUDA_ERROR_INVALID_VALUE);
    CHECK_EQ_U64(cuMemRelease(h2 + 1000), CUDA_ERROR_INVALID_VALUE);
    CHECK_EQ_U64(cuMemMap(va, GRAN, 0, 0, 0), CUDA_ERROR_INVALID_VALUE);
    CHECK_EQ_U64(cuMemMap(va, GRAN, 0, h2 + 1000, 0), CUDA_ERROR_INVALID_VALUE);
    /* a map over a mapped range, whole or in part, with the same handle or another */
    CHECK_CU(cuMemMap(va, 2 * GRAN, 0, h, 0));
    CHECK_EQ_U64(cuMemMap(va, 2 * GRAN, 0, h2, 0), CUDA_ERROR_INVALID_VALUE);
    CHECK_EQ_U64(cuMemMap(va + GRAN, 2 * GRAN, 0, h2, 0), CUDA_ERROR_INVALID_VALUE);
    CHECK_EQ_U64(cuMemMap(va, GRAN, 0, h, 0), CUDA_ERROR_INVALID_VALUE);
    CHECK_CU(cuMemSetAccess(va, 2 * GRAN, &a, 1));
    unsigned v = 0x600df00d, back = 0;
    CHECK_CU(cuMemcpyHtoD(va + 8, &v, 4));
    CHECK_CU(cuMemMap(va + 2 * GRAN, 2 * GRAN, 0, h2, 0)); /* the free half still maps */
    /* a double release: the second fails, the first still holds until the unmap */
    CHECK_CU(cuMemRelease(h));
    CHECK_EQ_U64(cuMemRelease(h), CUDA_ERROR_INVALID_VALUE);
    CHECK_EQ_U64(cuMemMap(va + 2 * GRAN, GRAN, 0, h, 0), CUDA_ERROR_INVALID_VALUE); /* released */
    CHECK_CU(cuMemcpyDtoH(&back, va + 8, 4));
    CHECK_EQ_U64(back, v);
    CHECK_EQ_U64(used() - before, 4 * GRAN);
    CHECK_CU(cuMemUnmap(va, 2 * GRAN));
    CHECK_EQ_U64(cuMemUnmap(va, 2 * GRAN), CUDA_ERROR_INVALID_VALUE); /* not mapped now */
    CHECK_EQ_U64(used() - before, 2 * GRAN);
    CHECK_EQ_U64(cuMemRelease(h), CUDA_ERROR_INVALID_VALUE); /* freed: gone */
    CHECK_CU(cuMemUnmap(va + 2 * GRAN, 2 * GRAN));
    CHECK_CU(cuMemRelease(h2));
    CHECK_EQ_U64(cuMemRelease(h2), CUDA_ERROR_INVALID_VALUE);
    CHECK_EQ_U64(used(), before);
    CHECK_CU(cuMemAddressFree(va, 4 * GRAN));
}

/* cuMemRetainAllocationHandle gives the mapped handle with one more reference: it takes
 * one more cuMemRelease (before or after the unmap) to free the memory, as NCCL does. */
TEST(vmm_retain_and_properties) {
    CUmemAllocationProp p = prop(), got;
    p.requestedHandleTypes = CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR;
    CUdeviceptr va;
    CUmemGenericAllocationHandle h, r = 0;
    CHECK_CU(cuMemAddressReserve(&va, 2 * GRAN, 0, 0, 0));
    size_t before = used();
    CHECK_CU(cuMemCreate(&h, 2 * GRAN, &p, 0));
    memset(&got, 0xff, sizeof got);
    CHECK_CU(cuMemGetAllocationPropertiesFromHandle(&got, h));
    CHECK(got.type == CU_MEM_ALLOCATION_TYPE_PINNED && got.location.type == p.location.type &&
          got.location.id == 0 && got.requestedHandleTypes == p.requestedHandleTypes);
    CHECK_EQ_U64(cuMemRetainAllocationHandle(&r, (void *)va),
                 CUDA_ERROR_INVALID_VALUE); /* unmapped */
    CHECK_CU(cuMemMap(va, 2 * GRAN, 0, h, 0));
    CHECK_CU(cuMemRetainAllocationHandle(&r, (void *)(va + GRAN + 12)));
    CHECK_EQ_U64(r, h);
    CHECK_EQ_U64(cuMemRetainAllocationHandle(NULL, (void *)va), CUDA_ERROR_INVALID_VALUE);
    CHECK_CU(cuMemRelease(h));
    CHECK_CU(cuMemUnmap(va, 2 * GRAN));
    CHECK_EQ_U64(used() - before, 2 * GRAN); /* the retained reference holds it */
    CHECK_CU(cuMemGetAllocationPropertiesFromHandle(&got, h));
    CHECK_CU(cuMemRelease(r));
    CHECK_EQ_U64(used(), before);
    CHECK_EQ_U64(cuMemRelease(h), CUDA_ERROR_INVALID_VALUE);
    CHECK_EQ_U64(cuMemGetAllocationPropertiesFromHandle(&got, h), CUDA_ERROR_INVALID_VALUE);
    CHECK_EQ_U64(cuMemGetAllocationPropertiesFromHandle(NULL, h), CUDA_ERROR_INVALID_VALUE);
    CHECK_CU(cuMemAddressFree(va, 2 * GRAN));
}

/* Physical memory is recycled (released extents keep their pages, like a GPU's), but a
 * new allocation never shows an old one's bytes: every 4 KiB page of it differs from
 * what was written there, so a restore that forgot to copy gets a wrong checksum. */
TEST(recycled_memory_is_poisoned) {
    CUmemAllocationProp p = prop();
    CUmemAccessDesc a = rw();
    size_t n = 2 * GRAN, before = used();
    unsigned char *host = malloc(n), *back = malloc(n);
    memset(host, 0x11, n);
    CUdeviceptr va;
    CUmemGenericAllocationHandle h;
    CHECK_CU(cuMemAddressReserve(&va, n, 0, 0, 0));
    for (int round = 0; round < 3; round++) {
        CHECK_CU(cuMemCreate(&h, n, &p, 0));
        CHECK_EQ_U64(used() - before, n);
        CHECK_CU(cuMemMap(va, n, 0, h, 0));
        CHECK_CU(cuMemSetAccess(va, n, &a, 1));
        CHECK_CU(cuMemcpyDtoH(back, va, n));
        size_t stale = 0;
        for (size_t at = 0; at < n; at += 4096)
            stale += memcmp(back + at, host + at, 4096) == 0;
        CHECK_EQ_U64(stale, 0); /* round 0: zeros; later: poison over the old pattern */
        CHECK_CU(sim_test_landed(cuMemcpyHtoD(va, host, n)));
        CHECK_CU(cuMemcpyDtoH(back, va, n));
        CHECK(memcmp(back, host, n) == 0);
        CHECK_CU(cuMemUnmap(va, n));
        CHECK_CU(cuMemRelease(h));
        CHECK_EQ_U64(used(), before);
    }
    CHECK_CU(cuMemAddressFree(va, n));
    free(host);
    free(back);
}

/* Distinct bytes for every 4 KiB page of [0, n) of a buffer, from `seed`. */
static void pattern(unsigned char *b, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)(seed + i / 4096 * 13 + i * 7);
}

static CUmemAccessDesc ro(void) {
    CUmemAccessDesc a = rw();
    a.flags = CU_MEM_ACCESS_FLAGS_PROT_READ;
    return a;
}

/* A handle's bytes stay its own across unmap and map: mapped in three parts at three
 * addresses (one part with mixed access), unmapped, then mapped whole elsewhere and in
 * part at yet another offset. (Pages move between the pool and the addresses.) */
TEST(bytes_survive_unmap_and_remap) {
    CUmemAllocationProp p = prop();
    CUmemAccessDesc a = rw(), r = ro();
    size_t n = 4 * GRAN, before = used();
    unsigned char *host = malloc(n), *back = malloc(n);
    pattern(host, n, 1);
    CUmemGenericAllocationHandle h;
    CUdeviceptr va1, va2, va3, va4;
    CHECK_CU(cuMemCreate(&h, n, &p, 0));
    CHECK_CU(cuMemAddressReserve(&va1, 2 * GRAN, 0, 0, 0));
    CHECK_CU(cuMemAddressReserve(&va2, GRAN, 0, 0, 0));
    CHECK_CU(cuMemAddressReserve(&va3, GRAN, 0, 0, 0));
    CHECK_CU(cuMemAddressReserve(&va4, n, 0, 0, 0));
    CHECK_CU(cuMemMap(va1, 2 * GRAN, GRAN, h, 0)); /* bytes [G, 3G) */
    CHECK_CU(cuMemMap(va2, GRAN, 3 * GRAN, h, 0)); /* [3G, 4G) */
    CHECK_CU(cuMemMap(va3, GRAN, 0, h, 0));        /* [0, G) */
    CHECK_CU(cuMemSetAccess(va1, 2 * GRAN, &a, 1));
    CHECK_CU(cuMemSetAccess(va2, GRAN, &a, 1));
    CHECK_CU(cuMemSetAccess(va3, GRAN, &a, 1));
    CHECK_CU(sim_test_landed(cuMemcpyHtoD(va3, host, GRAN)));
    CHECK_CU(sim_test_landed(cuMemcpyHtoD(va1, host + GRAN, 2 * GRAN)));
    CHECK_CU(sim_test_landed(cuMemcpyHtoD(va2, host + 3 * GRAN, GRAN)));
    CHECK_CU(cuMemSetAccess(va1 + GRAN, GRAN, &r, 1)); /* va1: two kinds of access */
    CHECK_EQ_U64(cuMemcpyHtoD(va1 + GRAN, host, 64), CUDA_ERROR_INVALID_VALUE);
    /* from pageable memory cuMemcpyHtoD returns once staged: wait before unmapping */
    CHECK_CU(cuCtxSynchronize());
    CHECK_CU(cuMemUnmap(va1, 2 * GRAN));
    CHECK_CU(cuMemUnmap(va2, GRAN));
    CHECK_CU(cuMemUnmap(va3, GRAN));
    CHECK_EQ_U64(used() - before, n);
    CHECK_CU(cuMemMap(va4, n, 0, h, 0));
    CHECK_EQ_U64(cuMemcpyDtoH(back, va4, 64), CUDA_ERROR_INVALID_VALUE); /* no access yet */
    CHECK_CU(cuMemSetAccess(va4, n, &r, 1));
    memset(back, 0, n);
    CHECK_CU(cuMemcpyDtoH(back, va4, n));
    CHECK(memcmp(back, host, n) == 0);
    CHECK_CU(cuMemUnmap(va4, n));
    CHECK_CU(cuMemMap(va2, GRAN, 2 * GRAN, h, 0));
    CHECK_CU(cuMemSetAccess(va2, GRAN, &r, 1));
    CHECK_CU(cuMemcpyDtoH(back, va2, GRAN));
    CHECK(memcmp(back, host + 2 * GRAN, GRAN) == 0);
    CHECK_CU(cuMemRelease(h));
    CHECK_EQ_U64(used() - before, n); /* still mapped */
    CHECK_CU(cuMemUnmap(va2, GRAN));
    CHECK_EQ_U64(used(), before);
    CHECK_CU(cuMemAddressFree(va1, 2 * GRAN));
    CHECK_CU(cuMemAddressFree(va2, GRAN));
    CHECK_CU(cuMemAddressFree(va3, GRAN));
    CHECK_CU(cuMemAddressFree(va4, n));
    free(host);
    free(back);
}

/* One physical range mapped at two addresses at once (legal in CUDA): both show the same
 * bytes, whoever writes them (copy, memset or kernel), including bytes that were in the
 * pool, not mapped, when the alias was made; unmapping one leaves the other intact. */
TEST(aliased_mappings_share_bytes) {
    CUmemAllocationProp p = prop();
    CUmemAccessDesc a = rw(), r = ro();
    size_t n = 3 * GRAN, before = used();
    unsigned char *host = malloc(n), *back = malloc(n);
    pattern(host, n, 2);
    CUmemGenericAllocationHandle h;
    CUdeviceptr x, y, z;
    CHECK_CU(cuMemCreate(&h, n, &p, 0));
    CHECK_CU(cuMemAddressReserve(&x, 2 * GRAN, 0, 0, 0));
    CHECK_CU(cuMemAddressReserve(&y, 2 * GRAN, 0, 0, 0));
    CHECK_CU(cuMemAddressReserve(&z, n, 0, 0, 0));
    /* the last granule written, then left in the pool */
    CHECK_CU(cuMemMap(y, GRAN, 2 * GRAN, h, 0));
    CHECK_CU(cuMemSetAccess(y, GRAN, &a, 1));
    CHECK_CU(sim_test_landed(cuMemcpyHtoD(y, host + 2 * GRAN, GRAN)));
    CHECK_CU(cuMemUnmap(y, GRAN));
    CHECK_CU(cuMemMap(x, 2 * GRAN, 0, h, 0)); /* [0, 2G) at x */
    CHECK_CU(cuMemSetAccess(x, 2 * GRAN, &a, 1));
    CHECK_CU(sim_test_landed(cuMemcpyHtoD(x, host, 2 * GRAN)));
    CHECK_CU(cuMemMap(y, 2 * GRAN, GRAN, h, 0)); /* [G, 3G) at y: granule G twice */
    CHECK_CU(cuMemSetAccess(y, 2 * GRAN, &a, 1));
    CHECK_CU(cuMemcpyDtoH(back, y, 2 * GRAN));
    CHECK(memcmp(back, host + GRAN, 2 * GRAN) == 0);
    CHECK_CU(cuMemcpyDtoH(back, x, 2 * GRAN));
    CHECK(memcmp(back, host, 2 * GRAN) == 0);
    /* writes through one address show through the other */
    CHECK_CU(sim_test_landed(cuMemsetD8(y + 5, 0x77, 100)));
    CHECK_CU(cuMemcpyDtoH(back, x + GRAN, 128));
    CHECK(back[4] == host[GRAN + 4] && back[5] == 0x77 && back[104] == 0x77 &&
          back[105] == host[GRAN + 105]);
    CUfunction fill = sim_test_kernel("fill_u32");
    CHECK(fill != NULL);
    if (fill) {
        CUdeviceptr at = x + GRAN + 4096;
        unsigned long long count = 16;
        unsigned v = 0xfeedf00d;
        void *args[] = {&at, &count, &v};
        CHECK_CU(cuLaunchKernel(fill, 1, 1, 1, 16, 1, 1, 0, NULL, args, NULL));
        CHECK_CU(cuCtxSynchronize());
        unsigned w[16];
        CHECK_CU(cuMemcpyDtoH(w, y + 4096, sizeof w));
        CHECK(w[0] == 0xfeedf00d && w[15] == 0xfeedf00d);
    }
    /* a third mapping of the whole handle, read-only, and the last one made */
    CHECK_CU(cuMemMap(z, n, 0, h, 0));
    CHECK_CU(cuMemSetAccess(z, n, &r, 1));
    CHECK_CU(cuMemcpyDtoH(back, z + 2 * GRAN, GRAN));
    CHECK(memcmp(back, host + 2 * GRAN, GRAN) == 0);
    CHECK_CU(cuMemUnmap(x, 2 * GRAN));
    CHECK_CU(cuMemcpyDtoH(back, y + 2 * GRAN - 64, 64));
    CHECK(memcmp(back, host + 3 * GRAN - 64, 64) == 0);
    CHECK_CU(cuMemRelease(h));
    CHECK_EQ_U64(used() - before, n); /* still mapped twice */
    CHECK_CU(cuMemUnmap(y, 2 * GRAN));
    CHECK_EQ_U64(used() - before, n);
    CHECK_CU(cuMemUnmap(z, n));
    CHECK_EQ_U64(used(), before);
    CHECK_CU(cuMemAddressFree(x, 2 * GRAN));
    CHECK_CU(cuMemAddressFree(y, 2 * GRAN));
    CHECK_CU(cuMemAddressFree(z, n));
    free(host);
    free(back);
}

/* A forked child's device memory is its own: what it writes, unmaps, releases and poisons
 * never shows in the parent, whose mapping and pool keep their bytes. */
TEST(forked_child_leaves_parent_memory_alone) {
    CUmemAllocationProp p = prop();
    CUmemAccessDesc a = rw();
    unsigned char *host = malloc(GRAN), *back = malloc(GRAN);
    pattern(host, GRAN, 3);
    CUmemGenericAllocationHandle h;
    CUdeviceptr va, other;
    CHECK_CU(cuMemCreate(&h, GRAN, &p, 0));
    CHECK_CU(cuMemAddressReserve(&va, GRAN, 0, 0, 0));
    CHECK_CU(cuMemAddressReserve(&other, GRAN, 0, 0, 0));
    CHECK_CU(cuMemMap(va, GRAN, 0, h, 0));
    CHECK_CU(cuMemSetAccess(va, GRAN, &a, 1));
    CHECK_CU(sim_test_landed(cuMemcpyHtoD(va, host, GRAN)));
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        CUmemGenericAllocationHandle c;
        if (sim_test_landed(cuMemsetD8(va, 0x55, GRAN)) || cuMemUnmap(va, GRAN) || cuMemRelease(h))
            _exit(2);
        /* the child reuses h's extent: poisoned and written in the child only */
        if (cuMemCreate(&c, GRAN, &p, 0) || cuMemMap(other, GRAN, 0, c, 0) ||
            cuMemSetAccess(other, GRAN, &a, 1) || sim_test_landed(cuMemsetD8(other, 0x66, GRAN)))
            _exit(3);
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_CU(cuMemcpyDtoH(back, va, GRAN));
    CHECK(memcmp(back, host, GRAN) == 0);
    CHECK_CU(cuMemUnmap(va, GRAN));
    CHECK_CU(cuMemMap(other, GRAN, 0, h, 0)); /* from the parent's pool */
    CHECK_CU(cuMemSetAccess(other, GRAN, &a, 1));
    CHECK_CU(cuMemcpyDtoH(back, other, GRAN));
    CHECK(memcmp(back, host, GRAN) == 0);
    CHECK_CU(cuMemUnmap(other, GRAN));
    CHECK_CU(cuMemRelease(h));
    CHECK_CU(cuMemAddressFree(va, GRAN));
    CHECK_CU(cuMemAddressFree(other, GRAN));
    free(host);
    free(back);
}

TEST(capacity) {
    /* this binary runs with SIMCUDA_MEMORY=64MiB (set in main) */
    size_t f, t;
    CHECK_CU(cuMemGetInfo(&f, &t));
    CHECK_EQ_U64(t, 64 * MiB);
    CUmemAllocationProp p = prop();
    CUmemGenericAllocationHandle h[40];
    int n = 0;
    CUresult r;
    while ((r = cuMemCreate(&h[n], GRAN, &p, 0)) == CUDA_SUCCESS && n < 39)
        n++;
    CHECK_EQ_U64(r, CUDA_ERROR_OUT_OF_MEMORY);
    CHECK_EQ_U64(used(), 64 * MiB); /* every byte of capacity was usable */
    CUdeviceptr d;
    CHECK_EQ_U64(cuMemAlloc(&d, 1), CUDA_ERROR_OUT_OF_MEMORY);
    for (int i = 0; i < n; i++)
        CHECK_CU(cuMemRelease(h[i]));
    CHECK_CU(cuMemAlloc(&d, 32 * MiB));
    CHECK_CU(cuMemFree(d));
}

TEST(pinned_and_registered) {
    void *p;
    CHECK_CU(cuMemAllocHost(&p, 4096));
    unsigned f;
    CHECK_CU(cuMemHostGetFlags(&f, p));
    CHECK_CU(cuMemFreeHost(p));
    CHECK_EQ_U64(cuMemFreeHost(p), CUDA_ERROR_INVALID_VALUE);
    CHECK_CU(cuMemHostAlloc(&p, 8192, CU_MEMHOSTALLOC_PORTABLE));
    CHECK_CU(cuMemFreeHost(p));
    /* a large one is 2 MiB aligned (for huge pages), every byte of it usable */
    size_t big = 3 * MiB + 5;
    unsigned char *b;
    CUdeviceptr d;
    CHECK_CU(cuMemAllocHost((void **)&b, big));
    CHECK_EQ_U64((uintptr_t)b % GRAN, 0);
    memset(b, 0x5a, big);
    CHECK_CU(cuMemAlloc(&d, big));
    CHECK_CU(sim_test_landed(cuMemcpyHtoD(d, b, big)));
    memset(b, 0, big);
    CHECK_CU(cuMemcpyDtoH(b, d, big));
    CHECK(b[0] == 0x5a && b[big - 1] == 0x5a);
    CHECK_CU(cuMemFree(d));
    CHECK_CU(cuMemFreeHost(b));
    static char buf[8192];
    CHECK_CU(cuMemHostRegister(buf, sizeof buf, 0));
    CHECK_EQ_U64(cuMemHostRegister(buf + 16, 16, 0), CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED);
    unsigned mt = 0;
    CHECK_CU(cuPointerGetAttribute(&mt, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, (CUdeviceptr)buf));
    CHECK_EQ_U64(mt, CU_MEMORYTYPE_HOST);
    CHECK_CU(cuMemHostUnregister(buf));
    CHECK_EQ_U64(cuMemHostUnregister(buf), CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED);
}

/* A kernel writing to a reserved but unmapped range faults as on a GPU: the launch
 * succeeds, the kernel stops, every later call returns the sticky
 * CUDA_ERROR_ILLEGAL_ADDRESS, and the process lives on to exit normally. In a child,
 * since the context stays broken. */
TEST(kernel_faults_on_unmapped) {
    if (RUNNING_ON_VALGRIND) {
        printf("# skipped under valgrind: the fault it provokes is what valgrind reports\n");
        return;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        CUdeviceptr va;
        if (!sim_test_setup())
            _exit(2);
        if (cuMemAddressReserve(&va, GRAN, 0, 0, 0) != CUDA_SUCCESS)
            _exit(3);
        CUfunction f = sim_test_kernel("fill_u32");
        unsigned long long n = 16;
        unsigned v = 1;
        void *args[] = {&va, &n, &v};
        if (!f || cuLaunchKernel(f, 1, 1, 1, 16, 1, 1, 0, NULL, args, NULL) != CUDA_SUCCESS)
            _exit(4);
        if (cuCtxSynchronize() != CUDA_ERROR_ILLEGAL_ADDRESS)
            _exit(5);
        CUdeviceptr d;
        if (cuMemAlloc(&d, 4096) != CUDA_ERROR_ILLEGAL_ADDRESS) /* sticky */
            _exit(6);
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status));
    CHECK_EQ_U64(WEXITSTATUS(status), 0);
}

/* A kernel cannot reach pageable host memory: a parameter pointing there faults the
 * launch's stream (sticky), while pinned host memory is device-accessible. */
TEST(kernel_faults_on_pageable_host_memory) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        if (!sim_test_setup())
            _exit(2);
        CUfunction f = sim_test_kernel("fill_u32");
        unsigned long long n = 16;
        unsigned v = 9, *pinned;
        if (!f || cuMemAllocHost((void **)&pinned, 64) != CUDA_SUCCESS)
            _exit(3);
        void *ok_args[] = {&pinned, &n, &v};
        if (cuLaunchKernel(f, 1, 1, 1, 16, 1, 1, 0, NULL, ok_args, NULL) != CUDA_SUCCESS ||
            cuCtxSynchronize() != CUDA_SUCCESS || pinned[15] != 9)
            _exit(4);
        unsigned *pageable = calloc(16, sizeof *pageable);
        void *bad_args[] = {&pageable, &n, &v};
        if (cuLaunchKernel(f, 1, 1, 1, 16, 1, 1, 0, NULL, bad_args, NULL) != CUDA_SUCCESS)
            _exit(5);
        if (cuCtxSynchronize() != CUDA_ERROR_ILLEGAL_ADDRESS)
            _exit(6);
        _exit(pageable[0] == 0 ? 0 : 7); /* the kernel never ran */
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status));
    CHECK_EQ_U64(WEXITSTATUS(status), 0);
}

struct churn_arg {
    CUcontext ctx;
    int id, errors;
};

/* One thread's loop: map, fill, read back, unmap; allocate, fill, read back, free. */
static void *churn(void *v) {
    struct churn_arg *a = v;
    cuCtxSetCurrent(a->ctx);
    CUmemAllocationProp p = prop();
    CUmemAccessDesc acc = rw();
    CUstream s;
    if (cuStreamCreate(&s, CU_STREAM_NON_BLOCKING) != CUDA_SUCCESS) {
        a->errors++;
        return NULL;
    }
    unsigned char *pinned;
    if (cuMemAllocHost((void **)&pinned, 4096) != CUDA_SUCCESS) {
        a->errors++;
        return NULL;
    }
    for (int i = 0; i < 100; i++) {
        unsigned char want = (unsigned char)(a->id * 31 + i);
        CUdeviceptr va, d;
        CUmemGenericAllocationHandle h;
        if (cuMemAddressReserve(&va, GRAN, 0, 0, 0) || cuMemCreate(&h, GRAN, &p, 0) ||
            cuMemMap(va, GRAN, 0, h, 0) || cuMemSetAccess(va, GRAN, &acc, 1) ||
            cuMemsetD8Async(va, want, 4096, s) || cuMemcpyDtoHAsync(pinned, va, 4096, s) ||
            cuStreamSynchronize(s) || cuMemUnmap(va, GRAN) || cuMemRelease(h) ||
            cuMemAddressFree(va, GRAN)) {
            a->errors++;
            continue;
        }
        a->errors += pinned[0] != want || pinned[4095] != want;
        if (cuMemAlloc(&d, 4096 + i) || sim_test_landed(cuMemsetD8(d, want ^ 0xff, 4096 + i)) ||
            cuMemcpyDtoH(pinned, d, 64) || cuMemFree(d)) {
            a->errors++;
            continue;
        }
        a->errors += pinned[63] != (unsigned char)(want ^ 0xff);
    }
    cuMemFreeHost(pinned);
    cuStreamDestroy(s);
    return NULL;
}

/* Threads mapping, copying and unmapping at once: the memory map stays consistent. */
TEST(concurrent_churn) {
    size_t before = used();
    struct churn_arg args[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (struct churn_arg){NULL, i, 0};
        cuCtxGetCurrent(&args[i].ctx);
        pthread_create(&t[i], NULL, churn, &args[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        CHECK_EQ_U64(args[i].errors, 0);
    }
    CHECK_EQ_U64(used(), before);
}

/* cuMemAllocPitch is a call of its own: the child runs with SIMCUDA_FAIL=cuMemAlloc:1 and
 * SIMCUDA_REPORT; its pitched allocation succeeds (the rule is not its), its first
 * cuMemAlloc fails. Exit 0 when both did. */
static int pitch_child(void) {
    if (!sim_test_setup())
        return 2;
    CUdeviceptr d, e;
    size_t pitch = 0;
    if (cuMemAllocPitch(&d, &pitch, 100, 8, 4) != CUDA_SUCCESS || pitch != 512)
        return 3;
    if (cuMemAlloc(&e, 64) != CUDA_ERROR_OUT_OF_MEMORY)
        return 4;
    return cuMemFree(d) == CUDA_SUCCESS ? 0 : 5;
}

TEST(alloc_pitch_is_its_own_call) {
    int status = 0;
    const char *r =
        sim_test_report_child("test_sim_memory", "pitch-child", "cuMemAlloc:1", &status);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(strstr(r, "\"cuMemAllocPitch_v2\": 1") != NULL);
    CHECK(strstr(r, "\"cuMemAlloc_v2\": 1") != NULL); /* the child's own call only */
    if (check_current_failed)
        fprintf(stderr, "status %d, report: %s\n", status, r);
}

/* A pitch times a height past the address space is refused, not wrapped into a small
 * allocation (512 * (2^55 + 1) is 512 modulo 2^64); so is a row the pitch cannot round. */
TEST(alloc_pitch_overflow) {
    CUdeviceptr d = 0;
    size_t pitch = 0;
    CHECK_EQ_U64(cuMemAllocPitch(&d, &pitch, 512, ((size_t)1 << 55) + 1, 4),
                 CUDA_ERROR_INVALID_VALUE);
    CHECK_EQ_U64(cuMemAllocPitch(&d, &pitch, SIZE_MAX - 10, 1, 4), CUDA_ERROR_INVALID_VALUE);
    CHECK_EQ_U64(d, 0);
    CHECK_CU(cuMemAllocPitch(&d, &pitch, 513, 3, 8));
    CHECK_EQ_U64(pitch, 1024);
    CHECK_CU(cuMemFree(d));
}

/* cuMemHostRegister takes host memory only: a range that starts in host memory and runs
 * into the device arena is refused like one that starts there, and so is one that wraps
 * around the address space; nothing is registered. */
TEST(host_register_refuses_device_ranges) {
    static char buf[4096];
    CUdeviceptr d;
    CHECK_CU(cuMemAlloc(&d, 64));
    uintptr_t h = (uintptr_t)buf;
    CHECK(h < d); /* the image lies below the arena, mapped at load */
    CHECK_EQ_U64(cuMemHostRegister((void *)d, 64, 0), CUDA_ERROR_INVALID_VALUE);
    CHECK_EQ_U64(cuMemHostRegister(buf, d + 64 - h, 0), CUDA_ERROR_INVALID_VALUE);
    CHECK_EQ_U64(cuMemHostRegister(buf, SIZE_MAX - h + 2, 0), CUDA_ERROR_INVALID_VALUE);
    CHECK_EQ_U64(cuMemHostUnregister(buf), CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED);
    CHECK_CU(cuMemHostRegister(buf, sizeof buf, 0));
    CHECK_CU(cuMemHostUnregister(buf));
    CHECK_CU(cuMemFree(d));
}

/* Registering pins: every page must be there to fault in, writable unless the
 * registration is read-only. A range running into unmapped memory is refused, a
 * read-only mapping only without CU_MEMHOSTREGISTER_READ_ONLY; nothing is registered
 * by a refusal. */
TEST(host_register_pins_what_it_registers) {
    long page = sysconf(_SC_PAGESIZE);
    char *m =
        mmap(NULL, 2 * (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(m != MAP_FAILED);
    CHECK(munmap(m + page, (size_t)page) == 0);
    CHECK_EQ_U64(cuMemHostRegister(m, 2 * (size_t)page, 0), CUDA_ERROR_INVALID_VALUE);
    CHECK_EQ_U64(cuMemHostUnregister(m), CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED);
    CHECK(mprotect(m, (size_t)page, PROT_READ) == 0);
    CHECK_EQ_U64(cuMemHostRegister(m, (size_t)page, 0), CUDA_ERROR_INVALID_VALUE);
    CHECK_CU(cuMemHostRegister(m, (size_t)page, CU_MEMHOSTREGISTER_READ_ONLY));
    CHECK_CU(cuMemHostUnregister(m));
    CHECK(munmap(m, (size_t)page) == 0);
}

/* cuMemGetAccess answers for the location asked about: device 0 what cuMemSetAccess
 * gave it, the host none (device memory), another ordinal names no device, a location
 * type that is none is invalid. */
TEST(get_access_per_location) {
    CUmemAllocationProp p = prop();
    CUdeviceptr va;
    CUmemGenericAllocationHandle h;
    CHECK_CU(cuMemAddressReserve(&va, GRAN, 0, 0, 0));
    CHECK_CU(cuMemCreate(&h, GRAN, &p, 0));
    CHECK_CU(cuMemMap(va, GRAN, 0, h, 0));
    CUmemAccessDesc a = rw();
    CHECK_CU(cuMemSetAccess(va, GRAN, &a, 1));
    unsigned long long f = 99;
    CUmemLocation dev0 = {CU_MEM_LOCATION_TYPE_DEVICE, 0}, dev1 = {CU_MEM_LOCATION_TYPE_DEVICE, 1};
    CUmemLocation host = {CU_MEM_LOCATION_TYPE_HOST, 0}, none = {CU_MEM_LOCATION_TYPE_INVALID, 0};
    CHECK_CU(cuMemGetAccess(&f, &dev0, va + 100));
    CHECK_EQ_U64(f, CU_MEM_ACCESS_FLAGS_PROT_READWRITE);
    CHECK_CU(cuMemGetAccess(&f, &host, va));
    CHECK_EQ_U64(f, CU_MEM_ACCESS_FLAGS_PROT_NONE);
    f = 99;
    CHECK_EQ_U64(cuMemGetAccess(&f, &dev1, va), CUDA_ERROR_INVALID_DEVICE);
    CHECK_EQ_U64(cuMemGetAccess(&f, &none, va), CUDA_ERROR_INVALID_VALUE);
    CHECK_EQ_U64(f, 99); /* left alone */
    CHECK_CU(cuMemUnmap(va, GRAN));
    CHECK_EQ_U64(cuMemGetAccess(&f, &dev0, va), CUDA_ERROR_INVALID_VALUE);
    CHECK_CU(cuMemRelease(h));
    CHECK_CU(cuMemAddressFree(va, GRAN));
}

int main(int argc, char **argv) {
    setenv("SIMCUDA_MEMORY", "64MiB", 1); /* read at the first cuInit */
    if (argc > 1 && strcmp(argv[1], "pitch-child") == 0)
        return pitch_child();
    /* first, while this process has no threads: the child sets up its own driver */
    RUN(kernel_faults_on_unmapped);
    RUN(kernel_faults_on_pageable_host_memory);
    if (!sim_test_setup())
        return 1;
    RUN(alloc_copy_memset);
    RUN(vmm_map_unmap);
    RUN(vmm_errors);
    RUN(vmm_retain_and_properties);
    RUN(recycled_memory_is_poisoned);
    RUN(bytes_survive_unmap_and_remap);
    RUN(aliased_mappings_share_bytes);
    RUN(forked_child_leaves_parent_memory_alone);
    RUN(capacity);
    RUN(pinned_and_registered);
    RUN(alloc_pitch_is_its_own_call);
    RUN(alloc_pitch_overflow);
    RUN(host_register_refuses_device_ranges);
    RUN(host_register_pins_what_it_registers);
    RUN(get_access_per_location);
    RUN(concurrent_churn);
    return check_summary();
}
