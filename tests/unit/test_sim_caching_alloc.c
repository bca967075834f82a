/*
 * test_sim_caching_alloc.c — the reference pipeline's caching allocator
 * (examples/pipeline/caching_alloc.c, PyTorch's rules) on the simulated driver: rounding,
 * pools and segment sizes, splitting, reuse of freed blocks, merging, the release-and-retry
 * on out of memory, and expandable segments growing and shrinking. The device has 24 MiB,
 * so the retry can be forced.
 */
#include "examples/pipeline/caching_alloc.c"
#include "tests/sim/testutil.h"
#include "tests/unit/check.h"

#include <stdlib.h>

#define MiB ((size_t)1 << 20)

static CUdevice device;

static struct caching_stats stats_of(const struct caching_alloc *a) {
    struct caching_stats s;
    caching_alloc_stats(a, &s);
    return s;
}

static CUdeviceptr must_malloc(struct caching_alloc *a, size_t bytes) {
    CUresult r = CUDA_SUCCESS;
    const char *call = "";
    CUdeviceptr p = caching_alloc_malloc(a, bytes, &r, &call);
    if (!p)
        fprintf(stderr, "malloc %zu: %s failed with %d\n", bytes, call, (int)r);
    return p;
}

static void destroy(struct caching_alloc *a) {
    const char *call = "";
    CHECK_CU(caching_alloc_destroy(a, &call));
}

TEST(rounding_and_segment_sizes) {
    CHECK_EQ_U64(caching_round_size(1), 512);
    CHECK_EQ_U64(caching_round_size(512), 512);
    CHECK_EQ_U64(caching_round_size(513), 1024);
    CHECK_EQ_U64(caching_segment_size(512), 2 * MiB);
    CHECK_EQ_U64(caching_segment_size(1 * MiB), 2 * MiB);         /* small pool up to 1 MiB */
    CHECK_EQ_U64(caching_segment_size(1 * MiB + 512), 20 * MiB);  /* then 20 MiB segments */
    CHECK_EQ_U64(caching_segment_size(10 * MiB - 512), 20 * MiB); /* under 10 MiB */
    CHECK_EQ_U64(caching_segment_size(10 * MiB), 10 * MiB);       /* its own, 2 MiB rounded */
    CHECK_EQ_U64(caching_segment_size(11 * MiB + 512), 12 * MiB);
}

TEST(small_requests_share_a_segment_and_reuse_freed_blocks) {
    struct caching_alloc *a = caching_alloc_create(CACHING_SEGMENTS, device);
    CUdeviceptr x = must_malloc(a, 100), y = must_malloc(a, 600), z = must_malloc(a, 512);
    CHECK(x && y && z);
    CHECK_EQ_U64(y, x + 512);  /* 100 -> 512, split from the same 2 MiB segment */
    CHECK_EQ_U64(z, y + 1024); /* 600 -> 1024 */
    struct caching_stats s = stats_of(a);
    CHECK_EQ_U64(s.segment_allocs, 1);
    CHECK_EQ_U64(s.reserved, 2 * MiB);
    CHECK_EQ_U64(s.allocated, 2048);
    /* a freed block is cached and handed out again, no new segment */
    CHECK_CU(caching_alloc_free(a, y));
    CHECK_EQ_U64(must_malloc(a, 1000), y);
    /* freeing x and y merges them: a 1536-byte request fits at x */
    CHECK_CU(caching_alloc_free(a, y));
    CHECK_CU(caching_alloc_free(a, x));
    CHECK_EQ_U64(must_malloc(a, 1536), x);
    CHECK_EQ_U64(stats_of(a).segment_allocs, 1);
    CHECK_EQ_U64(caching_alloc_free(a, x + 8), CUDA_ERROR_INVALID_VALUE); /* not a block */
    destroy(a);
}

TEST(large_pool_splits_only_above_1_MiB) {
    struct caching_alloc *a = caching_alloc_create(CACHING_SEGMENTS, device);
    CUdeviceptr p = must_malloc(a, 3 * MiB / 2);
    CUdeviceptr q = must_malloc(a, 3 * MiB);
    CHECK_EQ_U64(q, p + 3 * MiB / 2); /* both from one 20 MiB segment */
    CHECK_EQ_U64(stats_of(a).segment_allocs, 1);
    CHECK_CU(caching_alloc_free(a, p));
    CHECK_CU(caching_alloc_free(a, q));
    /* the free 20 MiB block is the best fit there is for 11 MiB + 512: it is used and
     * split (almost 9 MiB are left, over 1 MiB), no segment of its own is made */
    CUdeviceptr big = must_malloc(a, 11 * MiB + 512);
    CHECK_EQ_U64(big, p);
    CHECK_EQ_U64(stats_of(a).segment_allocs, 1);
    CHECK_EQ_U64(stats_of(a).allocated, 11 * MiB + 512);
    destroy(a);

    /* alone, the same request takes a 12 MiB segment; the 1 MiB - 512 left is not split
     * off (a large-pool block is split only when more than 1 MiB would remain) */
    a = caching_alloc_create(CACHING_SEGMENTS, device);
    big = must_malloc(a, 11 * MiB + 512);
    CHECK(big != 0);
    CHECK_EQ_U64(stats_of(a).reserved, 12 * MiB);
    CHECK_EQ_U64(stats_of(a).allocated, 12 * MiB);
    destroy(a);
}

TEST(out_of_memory_releases_cached_segments_and_retries_once) {
    struct caching_alloc *a = caching_alloc_create(CACHING_SEGMENTS, device);
    /* 20 MiB of small-pool segments (two 1 MiB blocks each), all freed: cached */
    CUdeviceptr small[20];
    for (int i = 0; i < 20; i++)
        small[i] = must_malloc(a, 1 * MiB);
    CHECK_EQ_U64(stats_of(a).segment_allocs, 10);
    for (int i = 0; i < 20; i++)
        CHECK_CU(caching_alloc_free(a, small[i]));
    CHECK_EQ_U64(stats_of(a).reserved, 20 * MiB); /* cached, not returned */
    /* the large pool cannot use them and 12 MiB more does not fit beside them: the
     * cached segments go back, the retry succeeds */
    CUdeviceptr big = must_malloc(a, 12 * MiB);
    CHECK(big != 0);
    struct caching_stats s = stats_of(a);
    CHECK_EQ_U64(s.segments, 1);
    CHECK_EQ_U64(s.reserved, 12 * MiB);
    CHECK_EQ_U64(s.segment_allocs, 11);
    /* nothing cached to give back: out of memory, named */
    CUresult r = CUDA_SUCCESS;
    const char *call = "";
    CHECK_EQ_U64(caching_alloc_malloc(a, 16 * MiB, &r, &call), 0);
    CHECK_EQ_U64(r, CUDA_ERROR_OUT_OF_MEMORY);
    CHECK_STR(call, "cuMemAlloc");
    CHECK_EQ_U64(stats_of(a).reserved, 12 * MiB); /* the failed attempt left nothing */
    destroy(a);
}

TEST(expandable_segments_grow_by_pages_and_shrink_at_the_end) {
    struct caching_alloc *a = caching_alloc_create(EXPANDABLE_SEGMENTS, device);
    CUdeviceptr x = must_malloc(a, 1 * MiB), y = must_malloc(a, 1 * MiB);
    CUdeviceptr z = must_malloc(a, 1 * MiB);
    CHECK_EQ_U64(y, x + 1 * MiB);
    CHECK_EQ_U64(z, y + 1 * MiB); /* the range grew by a second 2 MiB page, contiguously */
    struct caching_stats s = stats_of(a);
    CHECK_EQ_U64(s.segment_allocs, 2); /* two cuMemCreate pages */
    CHECK_EQ_U64(s.reserved, 4 * MiB);
    /* the large pool maps 20 MiB pages */
    CUdeviceptr l = must_malloc(a, 3 * MiB);
    CHECK(l != 0);
    CHECK_EQ_U64(stats_of(a).reserved, 24 * MiB);
    /* the device is full: a 1 MiB block more needs the small pool's third page, which
     * only fits once the large pool's free page is released */
    CHECK_CU(caching_alloc_free(a, l));
    CUdeviceptr w = must_malloc(a, 1 * MiB), v = must_malloc(a, 1 * MiB);
    CHECK_EQ_U64(w, z + 1 * MiB);
    CHECK_EQ_U64(v, w + 1 * MiB);
    CHECK_EQ_U64(stats_of(a).reserved, 6 * MiB);
    /* freeing the end gives its pages back on release; the start stays mapped */
    CHECK_CU(caching_alloc_free(a, v));
    CHECK_CU(caching_alloc_free(a, w));
    CHECK_CU(caching_alloc_free(a, z));
    const char *call = "";
    CHECK_CU(caching_alloc_release_cached(a, &call));
    CHECK_EQ_U64(stats_of(a).reserved, 2 * MiB);
    CHECK_EQ_U64(must_malloc(a, 1 * MiB), z); /* the same addresses when it grows again */
    destroy(a);
}

int main(void) {
    setenv("SIMCUDA_MEMORY", "24MiB", 1);
    if (!sim_test_setup() || cuDeviceGet(&device, 0) != CUDA_SUCCESS)
        return 1;
    RUN(rounding_and_segment_sizes);
    RUN(small_requests_share_a_segment_and_reuse_freed_blocks);
    RUN(large_pool_splits_only_above_1_MiB);
    RUN(out_of_memory_releases_cached_segments_and_retries_once);
    RUN(expandable_segments_grow_by_pages_and_shrink_at_the_end);
    return check_summary();
}
