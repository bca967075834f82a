/* The simulated driver's stream-ordered allocation (tests/sim/pool.c): the default and
 * created pools, cuMemAllocAsync / cuMemAllocFromPoolAsync / cuMemFreeAsync, the reuse
 * policies, attributes, trimming and the release threshold, access, errors, and uses
 * before the allocation or after the free in stream order (in child processes, this
 * binary run again with --misuse N: they break the context, or fault). */
#include "tests/sim/testutil.h"
#include "tests/unit/check.h"

#include <cudaTypedefs.h>

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

#define MiB ((size_t)1 << 20)

static size_t used(void) {
    size_t f, t;
    cuMemGetInfo(&f, &t);
    return t - f;
}

static cuuint64_t attr(CUmemoryPool p, CUmemPool_attribute a) {
    cuuint64_t v = 0;
    if (a <= CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES) {
        int i = -1;
        if (cuMemPoolGetAttribute(p, a, &i) != CUDA_SUCCESS)
            return ~(cuuint64_t)0;
        return (cuuint64_t)i;
    }
    if (cuMemPoolGetAttribute(p, a, &v) != CUDA_SUCCESS)
        return ~(cuuint64_t)0;
    return v;
}

static void set_flag(CUmemoryPool p, CUmemPool_attribute a, int on) {
    CHECK_CU(cuMemPoolSetAttribute(p, a, &on));
}

static CUmemPoolProps device_props(void) {
    CUmemPoolProps pp;
    memset(&pp, 0, sizeof pp);
    pp.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
    pp.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    pp.location.id = 0;
    return pp;
}

/* A pool that reuses memory freed on another stream only as `flags` allow. */
static CUmemoryPool pool_with(int follow, int opportunistic, int internal) {
    CUmemoryPool p = NULL;
    CUmemPoolProps pp = device_props();
    CHECK_CU(cuMemPoolCreate(&p, &pp));
    set_flag(p, CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES, follow);
    set_flag(p, CU_MEMPOOL_ATTR_REUSE_ALLOW_OPPORTUNISTIC, opportunistic);
    set_flag(p, CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES, internal);
    return p;
}

/* Queues `us` microseconds of work on s (a kernel storing into scratch). */
static void busy(CUstream s, CUdeviceptr scratch, unsigned us) {
    CUfunction f = sim_test_kernel("slow_store");
    unsigned v = 1;
    void *args[] = {&scratch, &v, &us};
    CHECK(f && cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, s, args, NULL) == CUDA_SUCCESS);
}

/* Until s has run everything queued, without a synchronize (which would tell the pool
 * that the host has seen its frees). */
static void spin_until_idle(CUstream s) {
    while (cuStreamQuery(s) == CUDA_ERROR_NOT_READY) {
    }
}

TEST(device_pools) {
    int supported = 0;
    CHECK_CU(cuDeviceGetAttribute(&supported, CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED, 0));
    CHECK_EQ_U64(supported, 1);
    CUmemoryPool def = NULL, cur = NULL, mine = NULL, got = NULL;
    CHECK_CU(cuDeviceGetDefaultMemPool(&def, 0));
    CHECK(def != NULL);
    CHECK_CU(cuDeviceGetMemPool(&cur, 0));
    CHECK(cur == def);
    CHECK_EQ_U64(cuDeviceGetDefaultMemPool(NULL, 0), CUDA_ERROR_INVALID_VALUE);
    CHECK_EQ_U64(cuDeviceGetDefaultMemPool(&got, 1), CUDA_ERROR_INVALID_DEVICE);
    CHECK_EQ_U64(cuDeviceGetMemPool(&got, 1), CUDA_ERROR_INVALID_DEVICE);
    CHECK_EQ_U64(cuDeviceSetMemPool(0, NULL), CUDA_ERROR_INVALID_VALUE);
    CHECK_EQ_U64(cuMemPoolDestroy(def), CUDA_ERROR_INVALID_VALUE); /* never the default */

    /* cuMemAllocAsync allocates from the device's current pool */
    CUmemPoolProps pp = device_props();
    CHECK_CU(cuMemPoolCreate(&mine, &pp));
    CHECK_CU(cuDeviceSetMemPool(0, mine));
    CHECK_CU(cuDeviceGetMemPool(&cur, 0));
    CHECK(cur == mine);
    CUdeviceptr d = 0;
    CHECK_CU(cuMemAllocAsync(&d, 4096, NULL));
    CHECK_CU(cuPointerGetAttribute(&got, CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE, d));
    CHECK(got == mine);
    CHECK_CU(cuMemFreeAsync(d, NULL));
    /* destroying the current pool makes the default one current again */
    CHECK_CU(cuMemPoolDestroy(mine));
    CHECK_CU(cuDeviceGetMemPool(&cur, 0));
    CHECK(cur == def);
    CHECK_EQ_U64(cuMemPoolDestroy(mine), CUDA_ERROR_INVALID_VALUE);
    CHECK_EQ_U64(cuDeviceSetMemPool(0, mine), CUDA_ERROR_INVALID_VALUE);
    CHECK_CU(cuMemAllocAsync(&d, 4096, NULL));
    CHECK_CU(cuPointerGetAttribute(&got, CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE, d));
    CHECK(got == def);
    CHECK_CU(cuMemFreeAsync(d, NULL));
    CHECK_CU(cuCtxSynchronize());

    /* the CUDA 13 forms, by location */
    CUmemLocation loc = {CU_MEM_LOCATION_TYPE_DEVICE, 0};
    CHECK_CU(cuMemGetDefaultMemPool(&got, &loc, CU_MEM_ALLOCATION_TYPE_PINNED));
    CHECK(got == def);
    CHECK_CU(cuMemGetMemPool(&got, &loc, CU_MEM_ALLOCATION_TYPE_PINNED));
    CHECK(got == def);
    CHECK_CU(cuMemSetMemPool(&loc, CU_MEM_ALLOCATION_TYPE_PINNED, def));
    CHECK_EQ_U64(cuMemGetDefaultMemPool(&got, &loc, CU_MEM_ALLOCATION_TYPE_INVALID),
                 CUDA_ERROR_INVALID_VALUE);
    CHECK_EQ_U64(cuMemGetMemPool(&got, &loc, CU_MEM_ALLOCATION_TYPE_MANAGED),
                 CUDA_ERROR_NOT_SUPPORTED);
    loc.id = 3;
    CHECK_EQ_U64(cuMemGetDefaultMemPool(&got, &loc, CU_MEM_ALLOCATION_TYPE_PINNED),
                 CUDA_ERROR_INVALID_DEVICE);
}

TEST(pool_create_props) {
    CUmemoryPool p = NULL;
    CUmemPoolProps pp = device_props();
    CHECK_EQ_U64(cuMemPoolCreate(NULL, &pp), CUDA_ERROR_INVALID_VALUE);
    CHECK_EQ_U64(cuMemPoolCreate(&p, NULL), CUDA_ERROR_INVALID_VALUE);
    pp.allocType = CU_MEM_ALLOCATION_TYPE_MANAGED;
    CHECK_EQ_U64(cuMemPoolCreate(&p, &pp), CUDA_ERROR_INVALID_VALUE);
    pp = device_props();
    pp.location.id = 1;
    CHECK_EQ_U64(cuMemPoolCreate(&p, &pp), CUDA_ERROR_INVALID_DEVICE);
    pp = device_props();
    pp.reserved[7] = 1;
    CHECK_EQ_U64(cuMemPoolCreate(&p, &pp), CUDA_ERROR_INVALID_VALUE);
    pp = device_props();
    pp.handleTypes = CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR;
    CHECK_EQ_U64(cuMemPoolCreate(&p, &pp), CUDA_ERROR_NOT_SUPPORTED);
    pp = device_props();
    pp.location.type = CU_MEM_LOCATION_TYPE_HOST;
    CHECK_EQ_U64(cuMemPoolCreate(&p, &pp), CUDA_ERROR_NOT_SUPPORTED);
}

/* Bytes round-trip through a stream-ordered allocation; the chunk counts against the
 * device, and the default release threshold (0) gives it back at the next synchronize. */
TEST(alloc_copy_free) {
    CUmemoryPool def;
    CHECK_CU(cuDeviceGetDefaultMemPool(&def, 0));
    CUstream s;
    CHECK_CU(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    size_t before = used();
    CUdeviceptr d = 0;
    CHECK_CU(cuMemAllocAsync(&d, MiB + 1, s));
    CHECK(d != 0 && d % 4096 == 0);
    CHECK_EQ_U64(used() - before, 2 * MiB); /* one 2 MiB chunk */
    CHECK_EQ_U64(attr(def, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), 2 * MiB);
    CHECK_EQ_U64(attr(def, CU_MEMPOOL_ATTR_USED_MEM_CURRENT), MiB + 4096);
    CUdeviceptr base = 0;
    size_t size = 0;
    CHECK_CU(cuMemGetAddressRange(&base, &size, d + 100));
    CHECK(base == d && size == MiB + 4096);
    unsigned char *h = malloc(MiB + 1), *back = malloc(MiB + 1);
    for (size_t i = 0; i <= MiB; i++)
        h[i] = (unsigned char)(i * 13);
    CHECK_CU(cuMemcpyHtoDAsync(d, h, MiB + 1, s));
    CHECK_CU(cuMemsetD8Async(d + 10, 0x5a, 5, s));
    CHECK_CU(cuMemcpyDtoHAsync(back, d, MiB + 1, s));
    CHECK_CU(cuMemFreeAsync(d, s));
    CHECK_CU(cuStreamSynchronize(s));
    CHECK(back[9] == h[9] && back[10] == 0x5a && back[14] == 0x5a && back[15] == h[15]);
    CHECK(back[MiB] == h[MiB]);
    /* freed in API order: calls on it fail at once; the synchronize released the chunk */
    CHECK_EQ_U64(cuMemcpyDtoH(back, d, 1), CUDA_ERROR_INVALID_VALUE);
    CHECK_EQ_U64(cuMemGetAddressRange(&base, &size, d), CUDA_ERROR_NOT_FOUND);
    CHECK_EQ_U64(attr(def, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), 0);
    CHECK_EQ_U64(attr(def, CU_MEMPOOL_ATTR_USED_MEM_CURRENT), 0);
    CHECK_EQ_U64(used(), before);
    /* the per-thread forms, as the resolver hands them out */
    PFN_cuMemAllocAsync_v11020_ptsz alloc_pt = NULL;
    PFN_cuMemFreeAsync_v11020_ptsz free_pt = NULL;
    CUdriverProcAddressQueryResult q;
    CHECK_CU(cuGetProcAddress("cuMemAllocAsync", (void **)&alloc_pt, 12000,
                              CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, &q));
    CHECK_CU(cuGetProcAddress("cuMemFreeAsync", (void **)&free_pt, 12000,
                              CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, &q));
    CHECK(alloc_pt && free_pt && alloc_pt(&d, 4096, NULL) == CUDA_SUCCESS);
    CHECK_CU(cuMemsetD32Async(d, 7, 1024, CU_STREAM_PER_THREAD));
    CHECK(free_pt && free_pt(d, NULL) == CUDA_SUCCESS);
    CHECK_CU(cuStreamSynchronize(CU_STREAM_PER_THREAD));
    free(h);
    free(back);
    CHECK_CU(cuStreamDestroy(s));
}

TEST(alloc_free_errors) {
    CUdeviceptr d = 0, plain = 0;
    CUmemoryPool def;
    CHECK_CU(cuDeviceGetDefaultMemPool(&def, 0));
    CHECK_EQ_U64(cuMemAllocAsync(NULL, 4096, NULL), CUDA_ERROR_INVALID_VALUE);
    CHECK_EQ_U64(cuMemAllocAsync(&d, 0, NULL), CUDA_ERROR_INVALID_VALUE);
    CHECK_EQ_U64(cuMemAllocAsync(&d, 4096, (CUstream)&d), CUDA_ERROR_INVALID_HANDLE);
    CHECK_EQ_U64(cuMemAllocFromPoolAsync(&d, 4096, NULL, NULL), CUDA_ERROR_INVALID_VALUE);
    CHECK_EQ_U64(cuMemAllocFromPoolAsync(&d, 4096, (CUmemoryPool)&d, NULL),
                 CUDA_ERROR_INVALID_VALUE);
    CHECK_EQ_U64(cuMemAllocAsync(&d, (size_t)1 << 40, NULL), CUDA_ERROR_OUT_OF_MEMORY);
    /* only the start of a live stream-ordered allocation can be freed, once */
    CHECK_CU(cuMemAlloc(&plain, 4096));
    CHECK_EQ_U64(cuMemFreeAsync(plain, NULL), CUDA_ERROR_INVALID_VALUE);
    CHECK_EQ_U64(cuMemFreeAsync(0, NULL), CUDA_ERROR_INVALID_VALUE);
    CHECK_CU(cuMemAllocAsync(&d, 8192, NULL));
    CHECK_EQ_U64(cuMemFreeAsync(d + 4096, NULL), CUDA_ERROR_INVALID_VALUE);
    CHECK_EQ_U64(cuMemFreeAsync(d, (CUstream)&d), CUDA_ERROR_INVALID_HANDLE);
    CHECK_CU(cuMemFreeAsync(d, NULL));
    CHECK_EQ_U64(cuMemFreeAsync(d, NULL), CUDA_ERROR_INVALID_VALUE); /* double free */
    CHECK_CU(cuMemFree(plain));
    /* a pool's maxSize bounds its reserve */
    CUmemoryPool small;
    CUmemPoolProps pp = device_props();
    pp.maxSize = 4 * MiB;
    CHECK_CU(cuMemPoolCreate(&small, &pp));
    CUdeviceptr a, b;
    CHECK_CU(cuMemAllocFromPoolAsync(&a, 4 * MiB, small, NULL));
    CHECK_EQ_U64(cuMemAllocFromPoolAsync(&b, 4096, small, NULL), CUDA_ERROR_OUT_OF_MEMORY);
    CHECK_CU(cuMemFreeAsync(a, NULL));
    CHECK_CU(cuStreamSynchronize(NULL));
    CHECK_CU(cuMemAllocFromPoolAsync(&b, 4096, small, NULL)); /* after the free: room */
    CHECK_CU(cuMemFreeAsync(b, NULL));
    CHECK_CU(cuMemPoolDestroy(small));
    CHECK_EQ_U64(cuMemAllocFromPoolAsync(&b, 4096, small, NULL), CUDA_ERROR_INVALID_VALUE);
    /* capacity: what cuMemAlloc holds is not there for pools, and the reverse */
    size_t f, t;
    CHECK_CU(cuMemGetInfo(&f, &t));
    CHECK_CU(cuMemAllocAsync(&a, f - 4 * MiB, NULL));
    CHECK_EQ_U64(cuMemAlloc(&plain, 8 * MiB), CUDA_ERROR_OUT_OF_MEMORY);
    CHECK_CU(cuMemFreeAsync(a, NULL));
    CHECK_CU(cuCtxSynchronize());
    CHECK_CU(cuMemAlloc(&plain, 8 * MiB));
    CHECK_CU(cuMemFree(plain));
    CHECK_CU(cuStreamSynchronize(NULL));
}

/* Freed and allocated again on one stream: the same memory, poisoned, no growth. */
TEST(same_stream_reuse) {
    CUmemoryPool p = pool_with(0, 0, 0);
    CUstream s;
    CHECK_CU(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    CUdeviceptr a, b;
    CHECK_CU(cuMemAllocFromPoolAsync(&a, MiB, p, s));
    CHECK_CU(cuMemsetD8Async(a, 0x11, MiB, s));
    CHECK_CU(cuMemFreeAsync(a, s));
    CHECK_CU(cuMemAllocFromPoolAsync(&b, MiB, p, s));
    CHECK(b == a);
    CHECK_EQ_U64(attr(p, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), 2 * MiB);
    unsigned char head[4], mid[4];
    CHECK_CU(cuMemcpyDtoHAsync(head, b, 4, s));
    CHECK_CU(cuMemcpyDtoHAsync(mid, b + 1000, 4, s));
    CHECK_CU(cuStreamSynchronize(s));
    CHECK(head[0] == 0xDE && head[1] == 0xAD); /* poison, not the old 0x11 */
    CHECK(mid[0] == 0xDE && mid[1] == 0xAD);   /* over the whole piece (b + 1000: 8-aligned) */
    CHECK_CU(cuMemFreeAsync(b, s));
    CHECK_CU(cuStreamSynchronize(s));
    CHECK_CU(cuMemPoolDestroy(p));
    CHECK_CU(cuStreamDestroy(s));
}

/* Memory freed on s1 and wanted on s2: reused only as the pool's policies allow. */
TEST(cross_stream_reuse_policies) {
    CUstream s1, s2;
    CUdeviceptr scratch, a, b;
    CHECK_CU(cuStreamCreate(&s1, CU_STREAM_NON_BLOCKING));
    CHECK_CU(cuStreamCreate(&s2, CU_STREAM_NON_BLOCKING));
    CHECK_CU(cuMemAlloc(&scratch, 4096));
    CUevent ev;
    CHECK_CU(cuEventCreate(&ev, CU_EVENT_DISABLE_TIMING));

    /* no policy: a new chunk */
    CUmemoryPool p = pool_with(0, 0, 0);
    CHECK_CU(cuMemAllocFromPoolAsync(&a, 2 * MiB, p, s1));
    CHECK_CU(cuMemFreeAsync(a, s1));
    spin_until_idle(s1);
    CHECK_CU(cuMemAllocFromPoolAsync(&b, 2 * MiB, p, s2));
    CHECK(b != a);
    CHECK_EQ_U64(attr(p, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), 4 * MiB);
    CHECK_CU(cuMemFreeAsync(b, s2));
    CHECK_CU(cuCtxSynchronize());
    CHECK_CU(cuMemPoolDestroy(p));

    /* follow event dependencies: s2 waits for an event recorded after the free */
    p = pool_with(1, 0, 0);
    CHECK_CU(cuMemAllocFromPoolAsync(&a, 2 * MiB, p, s1));
    busy(s1, scratch, 20000);
    CHECK_CU(cuMemFreeAsync(a, s1));
    CHECK_CU(cuMemAllocFromPoolAsync(&b, 2 * MiB, p, s2)); /* no dependency yet */
    CHECK(b != a);
    CHECK_CU(cuMemFreeAsync(b, s2));
    CHECK_CU(cuEventRecord(ev, s1));
    CHECK_CU(cuStreamWaitEvent(s2, ev, 0));
    CUdeviceptr c;
    CHECK_CU(cuMemAllocFromPoolAsync(&c, 2 * MiB, p, s2));
    CHECK(c == a);
    CHECK_CU(cuMemsetD8Async(c, 0x33, 2 * MiB, s2));
    CHECK_CU(cuMemFreeAsync(c, s2));
    CHECK_CU(cuCtxSynchronize());
    CHECK_CU(cuMemPoolDestroy(p));

    /* opportunistic: a free that has already run, no dependency */
    p = pool_with(0, 1, 0);
    CHECK_CU(cuMemAllocFromPoolAsync(&a, 2 * MiB, p, s1));
    busy(s1, scratch, 20000);
    CHECK_CU(cuMemFreeAsync(a, s1));
    CHECK_CU(cuMemAllocFromPoolAsync(&b, 2 * MiB, p, s2)); /* the free has not run */
    CHECK(b != a);
    spin_until_idle(s1);
    CHECK_CU(cuMemAllocFromPoolAsync(&c, 2 * MiB, p, s2));
    CHECK(c == a);
    CHECK_CU(cuMemFreeAsync(b, s2));
    CHECK_CU(cuMemFreeAsync(c, s2));
    CHECK_CU(cuCtxSynchronize());
    CHECK_CU(cuMemPoolDestroy(p));

    /* the host has seen the free (a synchronize): any stream may reuse it */
    p = pool_with(0, 0, 0);
    CHECK_CU(cuMemPoolSetAttribute(p, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &(cuuint64_t){64 * MiB}));
    CHECK_CU(cuMemAllocFromPoolAsync(&a, 2 * MiB, p, s1));
    CHECK_CU(cuMemFreeAsync(a, s1));
    CHECK_CU(cuStreamSynchronize(s1));
    CHECK_CU(cuMemAllocFromPoolAsync(&b, 2 * MiB, p, s2));
    CHECK(b == a);
    CHECK_CU(cuMemFreeAsync(b, s2));
    CHECK_CU(cuCtxSynchronize());
    CHECK_CU(cuMemPoolDestroy(p));

    /* the legacy stream is ordered after blocking streams (null stream interactions) */
    CUstream blk;
    CHECK_CU(cuStreamCreate(&blk, 0));
    p = pool_with(1, 0, 0);
    CHECK_CU(cuMemAllocFromPoolAsync(&a, 2 * MiB, p, blk));
    busy(blk, scratch, 20000);
    CHECK_CU(cuMemFreeAsync(a, blk));
    CHECK_CU(cuMemAllocFromPoolAsync(&b, 2 * MiB, p, CU_STREAM_LEGACY));
    CHECK(b == a);
    CHECK_CU(cuMemFreeAsync(b, CU_STREAM_LEGACY));
    CHECK_CU(cuCtxSynchronize());
    CHECK_CU(cuMemPoolDestroy(p));

    /* internal dependencies: only when the pool cannot grow, and then the allocation
     * waits for the free */
    CUmemPoolProps pp = device_props();
    pp.maxSize = 2 * MiB;
    CHECK_CU(cuMemPoolCreate(&p, &pp));
    set_flag(p, CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES, 0);
    set_flag(p, CU_MEMPOOL_ATTR_REUSE_ALLOW_OPPORTUNISTIC, 0);
    CHECK_CU(cuMemAllocFromPoolAsync(&a, 2 * MiB, p, s1));
    CHECK_CU(cuMemsetD8Async(a, 0x44, 2 * MiB, s1));
    busy(s1, scratch, 30000);
    unsigned char *seen = NULL; /* pinned: the copy stays queued behind the busy kernel */
    CHECK_CU(cuMemAllocHost((void **)&seen, 1));
    CHECK_CU(cuMemcpyDtoHAsync(seen, a, 1, s1));
    CHECK_CU(cuMemFreeAsync(a, s1));
    CHECK_CU(cuMemAllocFromPoolAsync(&b, 2 * MiB, p, s2));
    CHECK(b == a);
    CHECK_CU(cuMemsetD8Async(b, 0x55, 2 * MiB, s2)); /* must not overtake s1's copy */
    CHECK_CU(cuStreamSynchronize(s2));
    CHECK_EQ_U64(cuStreamQuery(s1), CUDA_SUCCESS); /* s2 waited for s1's free */
    CHECK_EQ_U64(*seen, 0x44);
    CHECK_CU(cuMemFreeHost(seen));
    CHECK_CU(cuMemFreeAsync(b, s2));
    /* without them: out of memory */
    set_flag(p, CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES, 0);
    CHECK_CU(cuMemAllocFromPoolAsync(&a, 2 * MiB, p, s2));
    busy(s2, scratch, 20000);
    CHECK_CU(cuMemFreeAsync(a, s2));
    CHECK_EQ_U64(cuMemAllocFromPoolAsync(&b, 2 * MiB, p, s1), CUDA_ERROR_OUT_OF_MEMORY);
    CHECK_CU(cuCtxSynchronize());
    CHECK_CU(cuMemPoolDestroy(p));

    CHECK_CU(cuEventDestroy(ev));
    CHECK_CU(cuMemFree(scratch));
    CHECK_CU(cuStreamDestroy(s1));
    CHECK_CU(cuStreamDestroy(s2));
    CHECK_CU(cuStreamDestroy(blk));
}

TEST(attributes) {
    CUmemoryPool p = pool_with(1, 1, 1);
    CHECK_EQ_U64(attr(p, CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES), 1);
    CHECK_EQ_U64(attr(p, CU_MEMPOOL_ATTR_REUSE_ALLOW_OPPORTUNISTIC), 1);
    CHECK_EQ_U64(attr(p, CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES), 1);
    CHECK_EQ_U64(attr(p, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD), 0);
    set_flag(p, CU_MEMPOOL_ATTR_REUSE_ALLOW_OPPORTUNISTIC, 0);
    CHECK_EQ_U64(attr(p, CU_MEMPOOL_ATTR_REUSE_ALLOW_OPPORTUNISTIC), 0);
    cuuint64_t v = 32 * MiB;
    CHECK_CU(cuMemPoolSetAttribute(p, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &v));
    CHECK_EQ_U64(attr(p, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD), 32 * MiB);
    CUdeviceptr a, b;
    CHECK_CU(cuMemAllocFromPoolAsync(&a, 3 * MiB, p, NULL));
    CHECK_CU(cuMemAllocFromPoolAsync(&b, 5 * MiB, p, NULL));
    CHECK_EQ_U64(attr(p, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), 4 * MiB + 6 * MiB);
    CHECK_EQ_U64(attr(p, CU_MEMPOOL_ATTR_USED_MEM_CURRENT), 8 * MiB);
    CHECK_CU(cuMemFreeAsync(a, NULL));
    CHECK_CU(cuStreamSynchronize(NULL));
    CHECK_EQ_U64(attr(p, CU_MEMPOOL_ATTR_USED_MEM_CURRENT), 5 * MiB);
    CHECK_EQ_U64(attr(p, CU_MEMPOOL_ATTR_USED_MEM_HIGH), 8 * MiB);
    CHECK_EQ_U64(attr(p, CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH), 10 * MiB);
    /* under the threshold: nothing was released */
    CHECK_EQ_U64(attr(p, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), 10 * MiB);
    /* the high watermarks reset to the current figure, and only to zero */
    v = 1;
    CHECK_EQ_U64(cuMemPoolSetAttribute(p, CU_MEMPOOL_ATTR_USED_MEM_HIGH, &v),
                 CUDA_ERROR_INVALID_VALUE);
    v = 0;
    CHECK_CU(cuMemPoolSetAttribute(p, CU_MEMPOOL_ATTR_USED_MEM_HIGH, &v));
    CHECK_EQ_U64(attr(p, CU_MEMPOOL_ATTR_USED_MEM_HIGH), 5 * MiB);
    CHECK_CU(cuMemPoolTrimTo(p, 0));
    CHECK_CU(cuMemPoolSetAttribute(p, CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH, &v));
    CHECK_EQ_U64(attr(p, CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH), 6 * MiB);
    /* the current figures are read-only */
    CHECK_EQ_U64(cuMemPoolSetAttribute(p, CU_MEMPOOL_ATTR_USED_MEM_CURRENT, &v),
                 CUDA_ERROR_INVALID_VALUE);
    CHECK_EQ_U64(cuMemPoolSetAttribute(p, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT, &v),
                 CUDA_ERROR_INVALID_VALUE);
    CHECK_EQ_U64(cuMemPoolSetAttribute(p, (CUmemPool_attribute)99, &v), CUDA_ERROR_INVALID_VALUE);
    CHECK_EQ_U64(cuMemPoolGetAttribute(p, (CUmemPool_attribute)99, &v), CUDA_ERROR_INVALID_VALUE);
    CHECK_EQ_U64(cuMemPoolGetAttribute(p, CU_MEMPOOL_ATTR_USED_MEM_HIGH, NULL),
                 CUDA_ERROR_INVALID_VALUE);
    CHECK_EQ_U64(cuMemPoolGetAttribute(NULL, CU_MEMPOOL_ATTR_USED_MEM_HIGH, &v),
                 CUDA_ERROR_INVALID_VALUE);
    CHECK_CU(cuMemFreeAsync(b, NULL));
    CHECK_CU(cuMemPoolDestroy(p));
    CHECK_CU(cuStreamSynchronize(NULL));
}

/* cuMemPoolTrimTo and the release threshold give idle chunks back, never live ones. */
TEST(trim_and_release_threshold) {
    CUmemoryPool p = pool_with(1, 1, 1);
    cuuint64_t thr = 64 * MiB;
    CHECK_CU(cuMemPoolSetAttribute(p, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &thr));
    size_t before = used();
    CUdeviceptr d[3];
    for (int i = 0; i < 3; i++)
        CHECK_CU(cuMemAllocFromPoolAsync(&d[i], 32 * MiB, p, NULL));
    CHECK_EQ_U64(used() - before, 96 * MiB);
    for (int i = 0; i < 3; i++)
        CHECK_CU(cuMemFreeAsync(d[i], NULL));
    CHECK_EQ_U64(attr(p, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), 96 * MiB);
    CHECK_CU(cuStreamSynchronize(NULL)); /* above the threshold: down to it */
    CHECK_EQ_U64(attr(p, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), 64 * MiB);
    CHECK_EQ_U64(used() - before, 64 * MiB);
    CHECK_CU(cuMemPoolTrimTo(p, 40 * MiB)); /* releasing a 32 MiB chunk would leave 32 < 40 */
    CHECK_EQ_U64(attr(p, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), 64 * MiB);
    CHECK_CU(cuMemPoolTrimTo(p, 32 * MiB));
    CHECK_EQ_U64(attr(p, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), 32 * MiB);
    /* an outstanding allocation keeps its chunk */
    CUdeviceptr live;
    CHECK_CU(cuMemAllocFromPoolAsync(&live, 32 * MiB, p, NULL));
    CHECK_CU(cuMemPoolTrimTo(p, 0));
    CHECK_EQ_U64(attr(p, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), 32 * MiB);
    CHECK_CU(cuMemsetD8(live, 1, 32 * MiB));
    CHECK_CU(cuMemFreeAsync(live, NULL));
    CHECK_CU(cuMemPoolTrimTo(p, 0));
    CHECK_CU(cuStreamSynchronize(NULL));
    CHECK_CU(cuMemPoolTrimTo(p, 0));
    CHECK_EQ_U64(attr(p, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), 0);
    CHECK_EQ_U64(used(), before);
    CHECK_EQ_U64(cuMemPoolTrimTo(NULL, 0), CUDA_ERROR_INVALID_VALUE);
    CHECK_CU(cuMemPoolDestroy(p));
}

TEST(access) {
    CUmemoryPool def;
    CHECK_CU(cuDeviceGetDefaultMemPool(&def, 0));
    CUmemAccessDesc desc = {{CU_MEM_LOCATION_TYPE_DEVICE, 0}, CU_MEM_ACCESS_FLAGS_PROT_READWRITE};
    CHECK_CU(cuMemPoolSetAccess(def, &desc, 1));
    CHECK_EQ_U64(cuMemPoolSetAccess(def, NULL, 1), CUDA_ERROR_INVALID_VALUE);
    CHECK_EQ_U64(cuMemPoolSetAccess(NULL, &desc, 1), CUDA_ERROR_INVALID_VALUE);
    desc.flags = CU_MEM_ACCESS_FLAGS_PROT_READ; /* the owner's access cannot be reduced */
    CHECK_EQ_U64(cuMemPoolSetAccess(def, &desc, 1), CUDA_ERROR_INVALID_VALUE);
    desc.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
    desc.location.id = 1;
    CHECK_EQ_U64(cuMemPoolSetAccess(def, &desc, 1), CUDA_ERROR_INVALID_DEVICE);
    desc.location.type = CU_MEM_LOCATION_TYPE_HOST;
    CHECK_EQ_U64(cuMemPoolSetAccess(def, &desc, 1), CUDA_ERROR_INVALID_VALUE);
    CUmemAccess_flags fl = CU_MEM_ACCESS_FLAGS_PROT_NONE;
    CUmemLocation loc = {CU_MEM_LOCATION_TYPE_DEVICE, 0};
    CHECK_CU(cuMemPoolGetAccess(&fl, def, &loc));
    CHECK_EQ_U64(fl, CU_MEM_ACCESS_FLAGS_PROT_READWRITE);
    loc.id = 2;
    CHECK_EQ_U64(cuMemPoolGetAccess(&fl, def, &loc), CUDA_ERROR_INVALID_DEVICE);
    CHECK_EQ_U64(cuMemPoolGetAccess(NULL, def, &loc), CUDA_ERROR_INVALID_VALUE);
}

/* A destroyed pool's outstanding allocations stay usable; their memory goes at the free.
 * cuMemFree frees a stream-ordered allocation too (after the device is idle). */
TEST(destroy_outstanding_and_cumemfree) {
    size_t before = used();
    CUmemoryPool p = pool_with(1, 1, 1);
    CUdeviceptr a, b;
    CHECK_CU(cuMemAllocFromPoolAsync(&a, 4 * MiB, p, NULL));
    CHECK_CU(cuMemAllocFromPoolAsync(&b, 4 * MiB, p, NULL));
    CHECK_CU(cuMemPoolDestroy(p));
    unsigned v = 0;
    CHECK_CU(cuMemsetD32(a, 0xabcd, MiB));
    CHECK_CU(cuMemcpyDtoH(&v, a + 64, 4));
    CHECK_EQ_U64(v, 0xabcd);
    CHECK_EQ_U64(used() - before, 8 * MiB);
    CHECK_CU(cuMemFreeAsync(a, NULL));
    CHECK_CU(cuStreamSynchronize(NULL));
    CHECK_EQ_U64(used() - before, 4 * MiB);
    CHECK_CU(cuMemFree(b));
    CHECK_EQ_U64(used(), before);
    CHECK_EQ_U64(cuMemFree(b), CUDA_ERROR_INVALID_VALUE);
}

struct churn_arg {
    CUcontext ctx;
    CUmemoryPool pool;
    int id, errors;
};

/* One thread: allocate, fill, read back, free, on its own stream, many times. */
static void *churn(void *v) {
    struct churn_arg *a = v;
    cuCtxSetCurrent(a->ctx);
    CUstream s;
    unsigned *pinned;
    if (cuStreamCreate(&s, CU_STREAM_NON_BLOCKING) || cuMemAllocHost((void **)&pinned, 4096)) {
        a->errors++;
        return NULL;
    }
    for (int i = 0; i < 200; i++) {
        unsigned want = (unsigned)(a->id * 1000 + i);
        size_t n = 4096 * (size_t)(1 + (i * 7 + a->id) % 300);
        CUdeviceptr d;
        if (cuMemAllocFromPoolAsync(&d, n, a->pool, s) || cuMemsetD32Async(d, want, n / 4, s) ||
            cuMemcpyDtoHAsync(pinned, d + n - 4096, 4096, s) || cuMemFreeAsync(d, s) ||
            (i % 16 == 0 && cuStreamSynchronize(s))) {
            a->errors++;
            continue;
        }
        if (i % 16 == 0)
            a->errors += pinned[0] != want || pinned[1023] != want;
    }
    a->errors += cuStreamSynchronize(s) != CUDA_SUCCESS;
    cuMemFreeHost(pinned);
    cuStreamDestroy(s);
    return NULL;
}

/* Threads allocating and freeing in one pool at once, reuse across their streams on. */
TEST(concurrent_churn) {
    size_t before = used();
    CUmemoryPool p = pool_with(1, 1, 1);
    struct churn_arg args[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (struct churn_arg){NULL, p, i, 0};
        cuCtxGetCurrent(&args[i].ctx);
        pthread_create(&t[i], NULL, churn, &args[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        CHECK_EQ_U64(args[i].errors, 0);
    }
    CHECK_EQ_U64(attr(p, CU_MEMPOOL_ATTR_USED_MEM_CURRENT), 0);
    CHECK_CU(cuMemPoolTrimTo(p, 0));
    CHECK_EQ_U64(attr(p, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), 0);
    CHECK_CU(cuMemPoolDestroy(p));
    CHECK_EQ_U64(used(), before);
}

/* ---- uses outside the allocation's life in stream order (child processes) -------- */

static void on_segv(int sig) {
    (void)sig;
    _exit(77);
}

enum misuse { COPY_AFTER_FREE, MEMSET_BEFORE_ALLOC, KERNEL_BEFORE_ALLOC, ORDERED_BY_EVENT };

/* In a child process of its own: s2 uses memory s1 allocates or frees, ordered
 * (an event) or not. 0: the use worked; 10: the context broke with
 * CUDA_ERROR_ILLEGAL_ADDRESS, 11 with another error. */
static int misuse_child(enum misuse how) {
    signal(SIGSEGV, on_segv);
    if (!sim_test_setup())
        return 2;
    CUstream s1, s2;
    CUdeviceptr scratch, d = 0;
    CUevent ev;
    unsigned *host = NULL; /* pinned: copies into it stay asynchronous */
    if (cuStreamCreate(&s1, CU_STREAM_NON_BLOCKING) ||
        cuStreamCreate(&s2, CU_STREAM_NON_BLOCKING) || cuMemAlloc(&scratch, 4096) ||
        cuEventCreate(&ev, 0) || cuMemAllocHost((void **)&host, 4096))
        return 3;
    CUfunction fill = sim_test_kernel("fill_u32");
    unsigned long long n = 4;
    unsigned v = 9;
    void *args[] = {&d, &n, &v};
    switch (how) {
    case COPY_AFTER_FREE:
        /* the copy is queued while d lives, but runs after s1 has freed it */
        if (cuMemAllocAsync(&d, 4096, s1) || cuStreamSynchronize(s1))
            return 4;
        busy(s2, scratch, 100000);
        if (cuMemcpyDtoHAsync(host, d, 16, s2) || cuMemFreeAsync(d, s1))
            return 5;
        break;
    case MEMSET_BEFORE_ALLOC:
    case KERNEL_BEFORE_ALLOC:
        /* s2 races ahead of s1, which reaches the allocation 100 ms later */
        busy(s1, scratch, 100000);
        if (cuMemAllocAsync(&d, 4096, s1))
            return 4;
        if (how == MEMSET_BEFORE_ALLOC && cuMemsetD32Async(d, 1, 4, s2))
            return 5;
        if (how == KERNEL_BEFORE_ALLOC && cuLaunchKernel(fill, 1, 1, 1, 4, 1, 1, 0, s2, args, NULL))
            return 5;
        break;
    case ORDERED_BY_EVENT:
        busy(s1, scratch, 100000);
        if (cuMemAllocAsync(&d, 4096, s1) || cuEventRecord(ev, s1) ||
            cuStreamWaitEvent(s2, ev, 0) ||
            cuLaunchKernel(fill, 1, 1, 1, 4, 1, 1, 0, s2, args, NULL) ||
            cuMemcpyDtoHAsync(host, d, 16, s2) || cuEventRecord(ev, s2) ||
            cuStreamWaitEvent(s1, ev, 0) || cuMemFreeAsync(d, s1))
            return 5;
        break;
    }
    CUresult r = cuCtxSynchronize();
    if (r != CUDA_SUCCESS)
        return r == CUDA_ERROR_ILLEGAL_ADDRESS ? 10 : 11;
    return how == ORDERED_BY_EVENT && host[3] != 9 ? 6 : 0;
}

/* A fresh process (exec, not only fork: nothing of this one's driver state comes along). */
static int run_child(enum misuse how) {
    char arg[16];
    snprintf(arg, sizeof arg, "%d", (int)how);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        sim_test_child_without_leak_check();
        execl("/proc/self/exe", "test_sim_pool", "--misuse", arg, (char *)NULL);
        _exit(99);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
}

TEST(uses_outside_stream_order) {
    if (RUNNING_ON_VALGRIND) {
        printf("# skipped under valgrind: the faults it provokes are what valgrind reports\n");
        return;
    }
    CHECK_EQ_U64(run_child(COPY_AFTER_FREE), 10);
    CHECK_EQ_U64(run_child(MEMSET_BEFORE_ALLOC), 10);
    /* a kernel on unmapped memory dies of SIGSEGV (77), or, where the simulator catches
     * kernel faults, breaks the context as on a GPU (10): either way it did not pass */
    int kernel = run_child(KERNEL_BEFORE_ALLOC);
    CHECK(kernel == 77 || kernel == 10);
    CHECK_EQ_U64(run_child(ORDERED_BY_EVENT), 0);
}

int main(int argc, char **argv) {
    /* a child breaks its context on purpose and leaves it so: no exit handlers (nor a
     * leak check of what the dead context still holds) */
    if (argc == 3 && strcmp(argv[1], "--misuse") == 0)
        _exit(misuse_child((enum misuse)atoi(argv[2])));
    setenv("SIMCUDA_MEMORY", "256MiB", 1); /* read at the first cuInit */
    RUN(uses_outside_stream_order);
    if (!sim_test_setup())
        return 1;
    RUN(device_pools);
    RUN(pool_create_props);
    RUN(alloc_copy_free);
    RUN(alloc_free_errors);
    RUN(same_stream_reuse);
    RUN(cross_stream_reuse_policies);
    RUN(attributes);
    RUN(trim_and_release_threshold);
    RUN(access);
    RUN(destroy_outstanding_and_cumemfree);
    RUN(concurrent_churn);
    return check_summary();
}
