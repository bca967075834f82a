/* Stream-ordered allocations as strict as the rest of device memory: fresh and reused
 * pieces read as poison over their whole extent, and for the race detector the
 * allocation and the free write the piece in stream order, so a use on another stream
 * not ordered after the allocation (or before the free) is a race whatever the timing. */
#include "tests/sim/testutil.h"
#include "tests/unit/check.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <sys/wait.h>

/* the pattern poison.c fills device memory with: byte a is pattern[a % 8] */
static const unsigned char pattern[8] = {0xDE, 0xAD, 0xBE, 0xEF, 0x5E, 0xC0, 0xDE, 0xAD};

static int all_poison(const unsigned char *h, CUdeviceptr d, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (h[i] != pattern[(d + i) % 8])
            return 0;
    return 1;
}

/* Fresh memory (never used) and memory reused after a free read as poison, page interiors
 * included; what the first allocation wrote is gone. */
TEST(fresh_and_reused_pieces_read_as_poison) {
    enum { N = 3 * 4096 };
    CUstream s;
    CUdeviceptr a, b;
    unsigned char *h = malloc(N);
    CHECK_CU(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    CHECK_CU(cuMemAllocAsync(&a, N, s));
    CHECK_CU(cuMemcpyDtoHAsync(h, a, N, s));
    CHECK_CU(cuStreamSynchronize(s));
    CHECK(all_poison(h, a, N));
    CHECK_CU(cuMemsetD8Async(a, 0x11, N, s));
    CHECK_CU(cuMemFreeAsync(a, s));
    CHECK_CU(cuMemAllocAsync(&b, N, s));
    CHECK(b == a); /* the same piece, on the same stream */
    CHECK_CU(cuMemcpyDtoHAsync(h, b, N, s));
    CHECK_CU(cuStreamSynchronize(s));
    CHECK(all_poison(h, b, N));
    CHECK_CU(cuMemFreeAsync(b, s));
    CHECK_CU(cuStreamSynchronize(s));
    CHECK_CU(cuStreamDestroy(s));
    free(h);
}

static atomic_int flag;

static void raise_flag(void *data) {
    (void)data;
    atomic_store(&flag, 1);
}

static atomic_int gate_open, gate2_open;

/* A host function holding its stream until the test opens the gate DATA. */
static void gate(void *data) {
    while (!atomic_load((atomic_int *)data))
        usleep(100);
}

enum scenario { USE_BEFORE_ALLOC, USE_BEFORE_FREE, ORDERED, OPPORTUNISTIC_REUSE, REUSED_EXTENT };

/* Exit 0 when the outcome is the expected one: a race for the first two (whichever runs
 * first: nothing here waits), none for the others. */
static int race_child(enum scenario how) {
    if (!sim_test_setup())
        return 2;
    CUstream s1, s2;
    CUdeviceptr d, e;
    CUevent ev;
    if (cuStreamCreate(&s1, CU_STREAM_NON_BLOCKING) ||
        cuStreamCreate(&s2, CU_STREAM_NON_BLOCKING) || cuEventCreate(&ev, 0))
        return 3;
    switch (how) {
    case USE_BEFORE_ALLOC:
        /* s2 uses what s1 allocates, with no event between. The use is made to run after
         * the allocation (else it fails on unmapped memory): the host sees a flag, which
         * orders nothing. Without the race detector it would work. */
        if (cuMemAllocAsync(&d, 4096, s1) || cuLaunchHostFunc(s1, raise_flag, NULL))
            return 4;
        while (!atomic_load(&flag))
            usleep(1000);
        if (cuMemsetD32Async(d, 1, 4, s2))
            return 4;
        break;
    case USE_BEFORE_FREE: /* s2 uses it (ordered after the allocation), s1 frees it */
        if (cuMemAllocAsync(&d, 4096, s1) || cuEventRecord(ev, s1) ||
            cuStreamWaitEvent(s2, ev, 0) || cuMemsetD32Async(d, 1, 4, s2) || cuMemFreeAsync(d, s1))
            return 4;
        break;
    case ORDERED: /* the same, and the free waits for s2 */
        if (cuMemAllocAsync(&d, 4096, s1) || cuEventRecord(ev, s1) ||
            cuStreamWaitEvent(s2, ev, 0) || cuMemsetD32Async(d, 1, 4, s2) ||
            cuEventRecord(ev, s2) || cuStreamWaitEvent(s1, ev, 0) || cuMemFreeAsync(d, s1))
            return 4;
        break;
    case OPPORTUNISTIC_REUSE: /* freed on s1 and done, then allocated on s2 */
        if (cuMemAllocAsync(&d, 4096, s1) || cuMemsetD32Async(d, 1, 4, s1) ||
            cuMemFreeAsync(d, s1) || cuEventRecord(ev, s1))
            return 4;
        while (cuEventQuery(ev) == CUDA_ERROR_NOT_READY) /* the free has run */
            usleep(1000);
        if (cuMemAllocAsync(&e, 4096, s2) || cuMemsetD32Async(e, 2, 4, s2) || cuMemFreeAsync(e, s2))
            return 4;
        break;
    case REUSED_EXTENT: {
        /* x and y side by side, both freed on s1: y's free is unordered with a kernel on s2
         * that writes x only (the free of x waits for it). A larger allocation on s1 then
         * takes x's start and y's piece in API order, before the kernel runs. The kernel
         * writes x's piece, live in stream order: no race with y's free (fuzz seed
         * 956665115522 reported one, the kernel taken to write the new allocation). */
        CUdeviceptr x, y, z;
        CUevent done;
        if (cuEventCreate(&done, 0) || cuMemAllocAsync(&x, 100 << 10, s1) ||
            cuMemsetD8Async(x, 1, 100 << 10, s1) || cuMemAllocAsync(&y, 100 << 10, s1) ||
            cuMemsetD8Async(y, 2, 100 << 10, s1) || cuEventRecord(ev, s1) ||
            cuLaunchHostFunc(s1, gate, &gate_open) || cuStreamWaitEvent(s2, ev, 0) ||
            cuLaunchHostFunc(s2, gate, &gate2_open) || sim_test_slow_store(s2, x, 3, 0) ||
            cuEventRecord(done, s2) || cuMemFreeAsync(y, s1) || cuStreamWaitEvent(s1, done, 0) ||
            cuMemFreeAsync(x, s1) || cuMemAllocAsync(&z, 200 << 10, s1))
            return 4;
        if (z != x || y != x + (100 << 10))
            return 7; /* not the reuse this is about */
        /* the kernel runs first, then the free of y */
        atomic_store(&gate2_open, 1);
        if (cuEventSynchronize(done))
            return 4;
        atomic_store(&gate_open, 1);
        if (cuMemsetD8Async(z, 4, 200 << 10, s1) || cuMemFreeAsync(z, s1))
            return 4;
        break;
    }
    }
    CUresult r = cuCtxSynchronize();
    if (how == USE_BEFORE_ALLOC || how == USE_BEFORE_FREE)
        return r == CUDA_ERROR_ILLEGAL_ADDRESS ? 0 : 5;
    return r == CUDA_SUCCESS ? 0 : 6;
}

static void expect(enum scenario how, const char *first, const char *second) {
    int status = 0;
    const char *err = sim_test_race_child("test_sim_pool_order", (int)how, &status);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    const char *line = strstr(err, "simcuda: race: ");
    if (first)
        CHECK(line && strstr(line, first) && strstr(line, second));
    else
        CHECK(line == NULL);
    if (check_current_failed)
        fprintf(stderr, "scenario %d, status %d: %s\n", (int)how, status, err);
}

TEST(use_before_the_allocation_races) {
    expect(USE_BEFORE_ALLOC, "cuMemAllocAsync", "cuMemsetD32Async");
}

TEST(use_unordered_with_the_free_races) {
    expect(USE_BEFORE_FREE, "cuMemFreeAsync", "cuMemsetD32Async");
}

TEST(ordered_uses_do_not_race) {
    expect(ORDERED, NULL, NULL);
    expect(OPPORTUNISTIC_REUSE, NULL, NULL); /* reuse is ordered after the free it follows */
}

TEST(a_kernel_accesses_the_piece_live_in_stream_order) {
    expect(REUSED_EXTENT, NULL, NULL);
}

int main(int argc, char **argv) {
    if (argc > 2 && strcmp(argv[1], "race-child") == 0)
        return race_child((enum scenario)atoi(argv[2]));
    if (!sim_test_setup())
        return 1;
    RUN(fresh_and_reused_pieces_read_as_poison);
    RUN(use_before_the_allocation_races);
    RUN(use_unordered_with_the_free_races);
    RUN(ordered_uses_do_not_race);
    RUN(a_kernel_accesses_the_piece_live_in_stream_order);
    return check_summary();
}
