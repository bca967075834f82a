/*
 * test_rt_evict_failure.c — an eviction that fails after it queued reads of the
 * allocation (its fingerprint, its copy out) leaves none of them running when the
 * allocation is the program's again: the program's next write must not race with them.
 * Its own binary: the simulator reads SIMCUDA_FAIL (here the first cuEventRecord, the
 * eviction's `ready`) once, at its start. Fuzz seed 280401280608 showed it: the program's
 * cuMemcpy racing with liboffload's fingerprint kernel after a failed `ready` record.
 */
#include "runtime/memory/residency.h"
#include "runtime/runtime.h"
#include "runtime/state.h"
#include "tests/sim/testutil.h"
#include "tests/unit/check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SIZE (8ull << 20)

static struct runtime *const rt = &offload_runtime;

TEST(a_failed_eviction_leaves_nothing_reading_the_allocation) {
    CUdeviceptr p = 0;
    CHECK(runtime_mem_alloc(&p, SIZE) == CUDA_SUCCESS);
    CHECK(cuMemsetD8_v2(p, 0x11, SIZE) == CUDA_SUCCESS);
    CHECK(cuCtxSynchronize() == CUDA_SUCCESS);
    struct allocation *a = registry_find(&rt->registry, p);
    CHECK(a && a->state == ALLOC_RESIDENT);
    if (!a)
        return;
    runtime_lock();
    uint64_t failed = rt->stats.failed_evictions;
    /* the copy out is queued (8 ms at 1 GB/s), then recording `ready` fails */
    CHECK(residency_evict(rt, a) == CUDA_ERROR_UNKNOWN);
    CHECK(a->state == ALLOC_RESIDENT && !a->backup_valid);
    CHECK_EQ_U64(rt->stats.failed_evictions, failed + 1);
    runtime_unlock();
    /* the program writes it at once, on the legacy stream: ordered after nothing of
     * liboffload's, so whatever still read it would race (a sticky ILLEGAL_ADDRESS) */
    uint8_t *host = malloc(SIZE);
    CHECK(host != NULL);
    if (!host)
        return;
    memset(host, 0x22, SIZE);
    CHECK(cuMemcpyHtoD_v2(p, host, SIZE) == CUDA_SUCCESS);
    memset(host, 0, SIZE);
    CHECK(cuMemcpyDtoH_v2(host, p, SIZE) == CUDA_SUCCESS);
    CHECK(host[0] == 0x22 && host[SIZE - 1] == 0x22);
    free(host);
    CHECK(runtime_mem_free(p) == CUDA_SUCCESS);
}

int main(int argc, char **argv) {
    (void)argc;
    /* clang-format off */
    static const char *const env[] = {
        "SIMCUDA_FAIL", "cuEventRecord:1",
        "SIMCUDA_MEMORY", "256MiB",
        "OFFLOAD_BUDGET", "64MiB",
        "SIMCUDA_PCIE_GBPS", "1",
        NULL};
    /* clang-format on */
    if (!sim_test_restart_with(argv, env))
        return 1;
    if (!sim_test_setup())
        return 1;
    runtime_early_init();
    RUN(a_failed_eviction_leaves_nothing_reading_the_allocation);
    return check_summary();
}
