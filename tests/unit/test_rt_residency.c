/*
 * test_rt_residency.c — the allocation state machine and residency.h, driven directly
 * against the simulated driver: liboffload's runtime objects (not its hooks) and
 * build/sim/libcuda.so.1 in one process.
 */
#include "runtime/memory/residency.h"
#include "runtime/runtime.h"
#include "runtime/state.h"
#include "tests/sim/testutil.h"
#include "tests/unit/check.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

#define MiB (1ull << 20)
#define SIZE (8 * MiB)

static struct runtime *const rt = &offload_runtime;
static CUstream stream_a, stream_b;

static struct allocation *tracked(uint8_t fill) {
    CUdeviceptr p = 0;
    CHECK(runtime_mem_alloc(&p, SIZE) == CUDA_SUCCESS);
    CHECK(cuMemsetD8_v2(p, fill, SIZE) == CUDA_SUCCESS);
    CHECK(cuCtxSynchronize() == CUDA_SUCCESS);
    struct allocation *a = registry_find(&rt->registry, p);
    CHECK(a && a->state == ALLOC_RESIDENT);
    return a;
}

static bool holds(const struct allocation *a, uint8_t fill) {
    uint8_t *buf = malloc(a->size);
    bool same = buf && cuMemcpyDtoH_v2(buf, a->base, a->size) == CUDA_SUCCESS;
    for (size_t i = 0; same && i < a->size; i++)
        same = buf[i] == fill;
    free(buf);
    return same;
}

static void release(struct allocation *a) {
    CHECK(runtime_mem_free(a->base) == CUDA_SUCCESS);
}

TEST(transition_table) {
    static const enum alloc_state legal[][2] = {
        {ALLOC_RESERVED, ALLOC_RESIDENT},  {ALLOC_RESIDENT, ALLOC_EVICTING},
        {ALLOC_RESTORING, ALLOC_EVICTING}, {ALLOC_RESTORING, ALLOC_RESIDENT},
        {ALLOC_EVICTING, ALLOC_EVICTED},   {ALLOC_EVICTING, ALLOC_RESIDENT},
        {ALLOC_EVICTING, ALLOC_RESTORING}, {ALLOC_EVICTED, ALLOC_RESTORING},
    };
    size_t allowed = 0;
    for (int from = 0; from < ALLOC_STATE_COUNT; from++)
        for (int to = 0; to < ALLOC_STATE_COUNT; to++)
            allowed += allocation_transition_allowed(from, to);
    CHECK_EQ_U64(allowed, sizeof legal / sizeof legal[0]);
    for (size_t i = 0; i < sizeof legal / sizeof legal[0]; i++)
        CHECK(allocation_transition_allowed(legal[i][0], legal[i][1]));
    CHECK(!allocation_transition_allowed(ALLOC_RESIDENT, ALLOC_EVICTED)); /* no copy out */
    CHECK(!allocation_transition_allowed(ALLOC_EVICTED, ALLOC_RESIDENT)); /* no copy in */
    CHECK(!allocation_transition_allowed(ALLOC_RESERVED, ALLOC_EVICTED));
}

TEST(illegal_transition_is_reported_and_applied) {
    struct allocation *a = allocation_new(100, 2 * MiB);
    CHECK(a->state == ALLOC_RESERVED && a->mapped == 2 * MiB && a->component == -1);
    CHECK(allocation_set_state(a, ALLOC_RESIDENT));
#ifdef OFFLOAD_DEBUG
    /* make DEBUG=1: the same mistake aborts */
    pid_t child = fork();
    if (child == 0) {
        allocation_set_state(a, ALLOC_EVICTED);
        _exit(0);
    }
    int status = 0;
    CHECK(waitpid(child, &status, 0) == child);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
#else
    CHECK(!allocation_set_state(a, ALLOC_EVICTED)); /* logged: "internal error: ..." */
    CHECK(a->state == ALLOC_EVICTED);
    CHECK_STR(allocation_state_name(a->state), "evicted");
#endif
    allocation_free(a);
}

TEST(eviction_steps) {
    struct allocation *a = allocation_new(100, 2 * MiB);
    CHECK(a->fp_slot == -1 && !a->fingerprint_known);
    CHECK(allocation_set_state(a, ALLOC_RESIDENT));
    CHECK(allocation_set_evict_step(a, EVICT_CHECKING));
    CHECK(a->state == ALLOC_EVICTING && a->evict_step == EVICT_CHECKING);
    CHECK(allocation_set_evict_step(a, EVICT_COPYING)); /* the check found it changed */
    CHECK(a->state == ALLOC_EVICTING && a->evict_step == EVICT_COPYING);
#ifndef OFFLOAD_DEBUG
    CHECK(!allocation_set_evict_step(a, EVICT_CHECKING)); /* a copy never becomes a check */
#endif
    CHECK(allocation_set_state(a, ALLOC_EVICTED));
    CHECK(allocation_set_state(a, ALLOC_RESTORING) && allocation_set_state(a, ALLOC_EVICTING));
    CHECK(a->evict_step == EVICT_COPYING); /* plain entry: the copy */
    allocation_free(a);
}

/* Whether a holds `fill` everywhere but byte 0, which holds `first`. */
static bool holds_but_first(const struct allocation *a, uint8_t first, uint8_t fill) {
    uint8_t *buf = malloc(a->size);
    bool same = buf && cuMemcpyDtoH_v2(buf, a->base, a->size) == CUDA_SUCCESS && buf[0] == first;
    for (size_t i = 1; same && i < a->size; i++)
        same = buf[i] == fill;
    free(buf);
    return same;
}

/* Used, evicted and restored through the state machine; the "kernel" that changes a byte
 * is a memset liboffload does not see (as it does not see what kernels write). */
static void use_and_sync(struct allocation *a) {
    CHECK(residency_use(rt, a, stream_a) == CUDA_SUCCESS);
    CHECK(!a->backup_valid);
    runtime_unlock();
    CHECK(cuStreamSynchronize(stream_a) == CUDA_SUCCESS);
    runtime_lock();
}

TEST(clean_evictions_are_decided_on_the_device) {
    struct allocation *a = tracked(0x3c);
    struct stats before = rt->stats;
    runtime_lock();
    CHECK(residency_evict(rt, a) == CUDA_SUCCESS); /* first: a copy, the fingerprint beside */
    CHECK(a->state == ALLOC_EVICTING && a->evict_step == EVICT_COPYING && a->fp_slot >= 0);
    residency_finish_evictions(rt);
    CHECK(a->state == ALLOC_EVICTED && a->fingerprint_known && a->fp_slot == -1);
    CHECK_EQ_U64(rt->stats.total.bytes_to_host, before.total.bytes_to_host + a->size);
    CHECK(residency_restore(rt, a, false) == CUDA_SUCCESS);
    use_and_sync(a);
    /* launches only since the backup: the check, and no copy */
    CHECK(residency_evict(rt, a) == CUDA_SUCCESS);
    CHECK(a->state == ALLOC_EVICTING && a->evict_step == EVICT_CHECKING);
    residency_finish_evictions(rt);
    CHECK(a->state == ALLOC_EVICTED && a->backup_valid);
    CHECK_EQ_U64(rt->stats.total.bytes_to_host, before.total.bytes_to_host + a->size);
    CHECK_EQ_U64(rt->stats.clean_evictions, before.clean_evictions + 1);
    CHECK_EQ_U64(rt->stats.clean_bytes, before.clean_bytes + a->size);
    /* a byte changed unseen: the check finds it, the copy follows */
    CHECK(residency_restore(rt, a, false) == CUDA_SUCCESS);
    use_and_sync(a);
    CHECK(cuMemsetD8Async(a->base, 0x3d, 1, stream_a) == CUDA_SUCCESS);
    CHECK(cuStreamSynchronize(stream_a) == CUDA_SUCCESS);
    CHECK(residency_evict(rt, a) == CUDA_SUCCESS && a->evict_step == EVICT_CHECKING);
    residency_finish_evictions(rt);
    CHECK(a->state == ALLOC_EVICTED && a->fingerprint_known);
    CHECK_EQ_U64(rt->stats.total.bytes_to_host, before.total.bytes_to_host + 2 * a->size);
    CHECK_EQ_U64(rt->stats.clean_checks, before.clean_checks + 2);
    CHECK_EQ_U64(rt->stats.clean_evictions, before.clean_evictions + 1);
    CHECK(a->check_misses == 1 && a->check_skips == 1);
    /* after a failed check the next eviction copies at once; a check taken back keeps
     * the fingerprint (the backup is untouched) */
    CHECK(residency_restore(rt, a, false) == CUDA_SUCCESS);
    use_and_sync(a);
    CHECK(residency_evict(rt, a) == CUDA_SUCCESS && a->evict_step == EVICT_COPYING);
    residency_finish_evictions(rt);
    CHECK(residency_restore(rt, a, false) == CUDA_SUCCESS);
    use_and_sync(a);
    CHECK(residency_evict(rt, a) == CUDA_SUCCESS && a->evict_step == EVICT_CHECKING);
    CHECK(residency_restore(rt, a, false) == CUDA_SUCCESS); /* taken back */
    CHECK(a->state == ALLOC_RESTORING && a->fingerprint_known && a->fp_slot == -1);
    use_and_sync(a);
    runtime_unlock();
    CHECK(holds_but_first(a, 0x3d, 0x3c));
    release(a);
}

/* A copy or memset that liboffload sees: the next eviction copies without a check. */
TEST(a_known_write_skips_the_check) {
    struct allocation *a = tracked(0x21);
    runtime_lock();
    CHECK(residency_evict(rt, a) == CUDA_SUCCESS);
    residency_finish_evictions(rt);
    CHECK(a->fingerprint_known && !a->written);
    runtime_unlock();
    CHECK(runtime_begin_access(a->base, 16, 0, 0, stream_a) == CUDA_SUCCESS);
    CHECK(cuMemsetD8Async(a->base, 0x22, 16, stream_a) == CUDA_SUCCESS);
    runtime_end_call();
    CHECK(a->written);
    CHECK(cuStreamSynchronize(stream_a) == CUDA_SUCCESS);
    runtime_lock();
    CHECK(residency_evict(rt, a) == CUDA_SUCCESS && a->evict_step == EVICT_COPYING);
    residency_finish_evictions(rt);
    CHECK(!a->written && a->fingerprint_known);
    CHECK(residency_restore(rt, a, false) == CUDA_SUCCESS);
    use_and_sync(a);
    runtime_unlock();
    release(a);
}

TEST(evict_and_restore_keep_the_bytes) {
    struct allocation *a = tracked(0x5a);
    uint64_t resident = rt->budget.resident, evictions = rt->stats.total.evictions;
    runtime_lock();
    CHECK(residency_evict(rt, a) == CUDA_SUCCESS);
    CHECK(a->state == ALLOC_EVICTING);
    CHECK_EQ_U64(rt->budget.resident, resident); /* released only once the copy landed */
    residency_finish_evictions(rt);
    residency_drain_pool(rt);
    CHECK(a->state == ALLOC_EVICTED && a->backup_valid);
    CHECK_EQ_U64(rt->budget.resident, resident - a->mapped);
    CHECK_EQ_U64(rt->stats.total.evictions, evictions + 1);
    CHECK(residency_evict(rt, a) == CUDA_SUCCESS && a->state == ALLOC_EVICTED); /* no-op */
    CHECK(residency_restore(rt, a, false) == CUDA_SUCCESS);
    CHECK(a->state == ALLOC_RESTORING);
    CHECK(residency_use(rt, a, stream_a) == CUDA_SUCCESS); /* ordered after the copy in */
    CHECK(cuStreamSynchronize(stream_a) == CUDA_SUCCESS);
    CHECK(residency_use(rt, a, stream_b) == CUDA_SUCCESS); /* finds it landed */
    CHECK(a->state == ALLOC_RESIDENT && !a->backup_valid);
    runtime_unlock();
    CHECK(holds(a, 0x5a));
    release(a);
}

TEST(readonly_backup_stays_valid) {
    struct allocation *a = tracked(0x11);
    a->readonly = true;
    runtime_lock();
    CHECK(residency_evict(rt, a) == CUDA_SUCCESS);
    residency_finish_evictions(rt);
    CHECK(residency_use(rt, a, stream_a) == CUDA_SUCCESS);
    CHECK(cuStreamSynchronize(stream_a) == CUDA_SUCCESS);
    uint64_t to_host = rt->stats.total.bytes_to_host;
    CHECK(residency_evict(rt, a) == CUDA_SUCCESS); /* the backup is current: copies nothing */
    CHECK_EQ_U64(rt->stats.total.bytes_to_host, to_host);
    residency_finish_evictions(rt);
    residency_drain_pool(rt);
    CHECK(residency_use(rt, a, stream_a) == CUDA_SUCCESS);
    runtime_unlock();
    CHECK(cuStreamSynchronize(stream_a) == CUDA_SUCCESS); /* the restore, ordered before it */
    CHECK(holds(a, 0x11));
    release(a);
}

TEST(an_eviction_in_flight_is_taken_back) {
    struct allocation *a = tracked(0x77);
    runtime_lock();
    CHECK(residency_evict(rt, a) == CUDA_SUCCESS);
    CHECK(residency_restore(rt, a, false) == CUDA_SUCCESS);
    CHECK(a->state == ALLOC_RESTORING && rt->evicting_count == 0 && a->handle != 0);
    CHECK(residency_use(rt, a, stream_a) == CUDA_SUCCESS);
    runtime_unlock();
    CHECK(cuStreamSynchronize(stream_a) == CUDA_SUCCESS);
    CHECK(holds(a, 0x77));
    release(a);
}

/* A victim source that evicts the allocations it is given, in order. */
static struct allocation *offered[4];
static size_t offered_next, asked;

static bool evict_offered(struct runtime *r, uint64_t need) {
    (void)need;
    asked++;
    while (offered_next < 4 && offered[offered_next])
        if (residency_evict(r, offered[offered_next++]) == CUDA_SUCCESS)
            return true;
    return false;
}

static const struct victim_source offer = {evict_offered, NULL};

TEST(make_room_honours_its_limit_and_its_source) {
    struct allocation *a = tracked(1), *b = tracked(2);
    memset(offered, 0, sizeof offered);
    offered[0] = b;
    offered_next = asked = 0;
    runtime_lock();
    uint64_t used = budget_used(&rt->budget);
    CHECK(residency_make_room(rt, SIZE, used + SIZE, &offer) == CUDA_SUCCESS);
    CHECK_EQ_U64(asked, 0); /* fits under that limit */
    CHECK(residency_make_room(rt, SIZE, used, &offer) == CUDA_SUCCESS);
    CHECK_EQ_U64(asked, 1);
    CHECK(b->state == ALLOC_EVICTED && a->state == ALLOC_RESIDENT);
    residency_drain_pool(rt);
    CHECK(residency_make_room(rt, 2 * SIZE, budget_used(&rt->budget) + SIZE, &offer) ==
          CUDA_ERROR_OUT_OF_MEMORY); /* the source has nothing more */
    CHECK(residency_make_room(rt, rt->budget.limit + 1, rt->budget.limit, &offer) ==
          CUDA_ERROR_OUT_OF_MEMORY); /* can never fit: nothing is evicted for it */
    CHECK(a->state == ALLOC_RESIDENT);
    runtime_unlock();
    CHECK(holds(a, 1));
    runtime_lock();
    CHECK(residency_use(rt, b, stream_a) == CUDA_SUCCESS);
    runtime_unlock();
    CHECK(cuStreamSynchronize(stream_a) == CUDA_SUCCESS);
    CHECK(holds(b, 2));
    release(a);
    release(b);
}

TEST(a_prefetch_never_evicts) {
    struct allocation *a = tracked(3);
    runtime_lock();
    CHECK(residency_evict(rt, a) == CUDA_SUCCESS);
    residency_finish_evictions(rt);
    residency_drain_pool(rt);
    uint64_t saved = rt->budget.limit;
    rt->budget.limit = budget_used(&rt->budget); /* full: only an eviction makes room */
    CHECK(residency_restore(rt, a, true) == CUDA_ERROR_OUT_OF_MEMORY);
    CHECK(a->state == ALLOC_EVICTED && rt->evicting_count == 0);
    rt->budget.limit = saved;
    CHECK(residency_restore(rt, a, true) == CUDA_SUCCESS && a->prefetched);
    CHECK(residency_use(rt, a, stream_a) == CUDA_SUCCESS && !a->prefetched);
    runtime_unlock();
    CHECK(cuStreamSynchronize(stream_a) == CUDA_SUCCESS);
    CHECK(holds(a, 3));
    release(a);
}

TEST(freeing_an_evicting_allocation_returns_everything) {
    uint64_t resident = rt->budget.resident;
    size_t count = rt->registry.count;
    struct allocation *a = tracked(4);
    runtime_lock();
    CHECK(residency_evict(rt, a) == CUDA_SUCCESS);
    runtime_unlock();
    release(a);
    CHECK_EQ_U64(rt->budget.resident, resident);
    CHECK_EQ_U64(rt->registry.count, count);
    CHECK_EQ_U64(rt->evicting_count, 0);
}

int main(void) {
    setenv("SIMCUDA_MEMORY", "256MiB", 1);
    setenv("OFFLOAD_BUDGET", "64MiB", 1);
    if (!sim_test_setup())
        return 1;
    runtime_early_init();
    if (cuStreamCreate(&stream_a, CU_STREAM_NON_BLOCKING) != CUDA_SUCCESS ||
        cuStreamCreate(&stream_b, CU_STREAM_NON_BLOCKING) != CUDA_SUCCESS)
        return 1;
    RUN(transition_table);
    RUN(illegal_transition_is_reported_and_applied);
    RUN(eviction_steps);
    RUN(evict_and_restore_keep_the_bytes);
    RUN(clean_evictions_are_decided_on_the_device);
    RUN(a_known_write_skips_the_check);
    RUN(readonly_backup_stays_valid);
    RUN(an_eviction_in_flight_is_taken_back);
    RUN(make_room_honours_its_limit_and_its_source);
    RUN(a_prefetch_never_evicts);
    RUN(freeing_an_evicting_allocation_returns_everything);
    return check_summary();
}
