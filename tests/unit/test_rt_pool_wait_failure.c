/*
 * test_rt_pool_wait_failure.c — a stream-ordered free liboffload waits for to make room,
 * whose wait fails, stays queued with its memory mapped: work queued before the free may
 * still use it. Its own binary: the simulator reads SIMCUDA_FAIL (here the first
 * cuEventSynchronize, the wait for the free) once, at its start. Fuzz seed 378042576454
 * (FUZZ_WEIGHTS=pool=60, SIMCUDA_FAIL_RANDOM) showed it: "freeing it now" unmapped a
 * buffer a queued kernel still read (a race with the unmap, then a sticky
 * ILLEGAL_ADDRESS).
 */
#include "runtime/memory/residency.h"
#include "runtime/runtime.h"
#include "runtime/state.h"
#include "tests/sim/testutil.h"
#include "tests/unit/check.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define MiB (1ull << 20)
#define SIZE (8 * MiB)

static struct runtime *const rt = &offload_runtime;
static atomic_bool gate_open;

/* A host function holding its stream until the test opens the gate. */
static void CUDA_CB gate(void *unused) {
    (void)unused;
    while (!atomic_load(&gate_open))
        ;
}

TEST(a_free_whose_wait_fails_stays_queued) {
    CUstream stream;
    CHECK_CU(cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING));
    CUdeviceptr d = 0;
    bool forward = true;
    CHECK_CU(runtime_stream_alloc(&d, SIZE, NULL, stream, &forward));
    CHECK(!forward);
    CHECK_CU(cuMemsetD8Async(d, 0x5a, SIZE, stream));
    CHECK_CU(cuStreamSynchronize(stream));
    /* the free cannot run before the gate opens; a memset is queued before it */
    atomic_store(&gate_open, false);
    CHECK_CU(cuLaunchHostFunc(stream, gate, NULL));
    CHECK_CU(cuMemsetD8Async(d, 0x5b, SIZE, stream));
    CHECK_CU(runtime_stream_free(d, stream, &forward));
    CHECK(!forward);
    CHECK_EQ_U64(rt->pools.free_count, 1);
    /* fill the budget: the next allocation waits for the free first, and that wait fails */
    CUdeviceptr live[8];
    size_t n = 0;
    while (n < 7 && budget_used(&rt->budget) + SIZE <= rt->budget.limit)
        CHECK_CU(runtime_mem_alloc(&live[n++], SIZE));
    CUdeviceptr more = 0;
    CHECK_CU(runtime_mem_alloc(&more, SIZE));
    CHECK_EQ_U64(rt->pools.free_count, 1); /* still queued, still mapped */
    CHECK(registry_find(&rt->registry, d) != NULL);
    atomic_store(&gate_open, true);
    /* the memset before the free found its memory: no sticky error */
    CHECK_CU(cuStreamSynchronize(stream));
    CHECK_CU(cuCtxSynchronize());
    runtime_lock();
    rt->epoch++;
    pools_reap_frees(rt); /* the free ran: now it goes */
    runtime_unlock();
    CHECK_EQ_U64(rt->pools.free_count, 0);
    CHECK(registry_find(&rt->registry, d) == NULL);
    CHECK_CU(runtime_mem_free(more));
    for (size_t i = 0; i < n; i++)
        CHECK_CU(runtime_mem_free(live[i]));
    CHECK_CU(cuStreamDestroy(stream));
}

int main(int argc, char **argv) {
    (void)argc;
    /* clang-format off */
    static const char *const env[] = {
        "SIMCUDA_FAIL", "cuEventSynchronize:1",
        "SIMCUDA_MEMORY", "256MiB",
        "OFFLOAD_BUDGET", "64MiB",
        NULL};
    /* clang-format on */
    if (!sim_test_restart_with(argv, env))
        return 1;
    if (!sim_test_setup())
        return 1;
    runtime_early_init();
    RUN(a_free_whose_wait_fails_stays_queued);
    return check_summary();
}
