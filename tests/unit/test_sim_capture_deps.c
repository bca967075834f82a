/* The simulated driver's capture rules about dependencies that would cross a capture's
 * boundary: the legacy stream while a blocking stream captures
 * (CUDA_ERROR_STREAM_CAPTURE_IMPLICIT, the capture invalidated), and external event
 * waits (CU_EVENT_WAIT_EXTERNAL), which hold back only the nodes after them. */
#include "tests/sim/testutil.h"
#include "tests/unit/check.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>

/* cuda.h declares the _ptds forms only for programs built with per-thread streams */
CUresult CUDAAPI cuMemsetD32_v2_ptds(CUdeviceptr dst, unsigned int v, size_t n);

static void nothing(void *data) {
    (void)data;
}

/* ---- the legacy stream during capture ------------------------------------------------ */

static struct {
    CUdeviceptr d;
    CUevent done; /* recorded before the capture, on another stream */
    CUgraphExec exec;
    unsigned host;
} lx;

static CUresult legacy_launch(void) {
    return sim_test_fill(NULL, lx.d, 1, 9);
}
static CUresult legacy_launch_explicit(void) {
    return sim_test_fill(CU_STREAM_LEGACY, lx.d, 1, 9);
}
static CUresult legacy_copy_async(void) {
    return cuMemcpyHtoDAsync(lx.d, &lx.host, 4, NULL);
}
static CUresult legacy_memset_async(void) {
    return cuMemsetD32Async(lx.d, 9, 1, NULL);
}
static CUresult legacy_copy_sync(void) {
    return cuMemcpyDtoH(&lx.host, lx.d, 4);
}
static CUresult legacy_memset_sync(void) {
    return cuMemsetD32(lx.d, 9, 1);
}
static CUresult legacy_sync(void) {
    return cuStreamSynchronize(NULL);
}
static CUresult legacy_query(void) {
    return cuStreamQuery(CU_STREAM_LEGACY);
}
static CUresult legacy_record(void) {
    return cuEventRecord(lx.done, NULL);
}
static CUresult legacy_wait(void) {
    return cuStreamWaitEvent(NULL, lx.done, 0);
}
static CUresult legacy_host_func(void) {
    return cuLaunchHostFunc(NULL, nothing, NULL);
}
static CUresult legacy_graph_launch(void) {
    return cuGraphLaunch(lx.exec, NULL);
}
static CUresult legacy_alloc_async(void) {
    CUdeviceptr p;
    return cuMemAllocAsync(&p, 64, NULL);
}

static const struct {
    const char *name;
    CUresult (*call)(void);
} legacy_uses[] = {
    {"cuLaunchKernel on NULL", legacy_launch},
    {"cuLaunchKernel on CU_STREAM_LEGACY", legacy_launch_explicit},
    {"cuMemcpyHtoDAsync", legacy_copy_async},
    {"cuMemsetD32Async", legacy_memset_async},
    {"cuMemcpyDtoH", legacy_copy_sync},
    {"cuMemsetD32", legacy_memset_sync},
    {"cuStreamSynchronize", legacy_sync},
    {"cuStreamQuery", legacy_query},
    {"cuEventRecord", legacy_record},
    {"cuStreamWaitEvent", legacy_wait},
    {"cuLaunchHostFunc", legacy_host_func},
    {"cuGraphLaunch", legacy_graph_launch},
    {"cuMemAllocAsync", legacy_alloc_async},
};
#define NLEGACY (sizeof legacy_uses / sizeof legacy_uses[0])

static void legacy_fixture(CUstream other) {
    CHECK_CU(cuMemAlloc(&lx.d, 64));
    CHECK_CU(sim_test_landed(cuMemsetD32(lx.d, 5, 16)));
    CHECK_CU(cuEventCreate(&lx.done, CU_EVENT_DISABLE_TIMING));
    CHECK_CU(cuEventRecord(lx.done, other));
    CUgraph g;
    CHECK_CU(cuStreamBeginCapture(other, CU_STREAM_CAPTURE_MODE_GLOBAL));
    CHECK_CU(sim_test_fill(other, lx.d + 32, 1, 3));
    CHECK_CU(cuStreamEndCapture(other, &g));
    CHECK_CU(cuGraphInstantiate(&lx.exec, g, 0));
    CHECK_CU(cuGraphDestroy(g));
}

static void legacy_fixture_free(void) {
    CHECK_CU(cuGraphExecDestroy(lx.exec));
    CHECK_CU(cuEventDestroy(lx.done));
    CHECK_CU(cuMemFree(lx.d));
}

/* Every use of the legacy stream while `cap` (blocking, or a non-blocking origin that a
 * blocking stream `joined` forked into) captures: CUDA_ERROR_STREAM_CAPTURE_IMPLICIT, no
 * effect, the capture invalidated. RELAXED, so that no call fails as potentially unsafe
 * first. */
static void legacy_uses_fail(CUstream cap, CUstream joined) {
    CUevent fork_ev, join_ev;
    CHECK_CU(cuEventCreate(&fork_ev, CU_EVENT_DISABLE_TIMING));
    CHECK_CU(cuEventCreate(&join_ev, CU_EVENT_DISABLE_TIMING));
    for (size_t i = 0; i < NLEGACY; i++) {
        CHECK_CU(cuStreamBeginCapture(cap, CU_STREAM_CAPTURE_MODE_RELAXED));
        CHECK_CU(sim_test_fill(cap, lx.d + 8, 1, 1));
        if (joined) {
            CHECK_CU(cuEventRecord(fork_ev, cap));
            CHECK_CU(cuStreamWaitEvent(joined, fork_ev, 0));
            CHECK_CU(sim_test_fill(joined, lx.d + 12, 1, 1));
        }
        CUresult r = legacy_uses[i].call();
        if (r != CUDA_ERROR_STREAM_CAPTURE_IMPLICIT)
            fprintf(stderr, "%s returned %d\n", legacy_uses[i].name, r);
        CHECK_EQ_U64(r, CUDA_ERROR_STREAM_CAPTURE_IMPLICIT);
        CUstreamCaptureStatus st;
        CHECK_CU(cuStreamIsCapturing(cap, &st));
        CHECK_EQ_U64(st, CU_STREAM_CAPTURE_STATUS_INVALIDATED);
        if (joined) { /* the streams of an invalidated capture refuse to join */
            CHECK_EQ_U64(cuEventRecord(join_ev, joined), CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
            CHECK_EQ_U64(cuStreamWaitEvent(cap, join_ev, 0), CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
        }
        CHECK(sim_test_end_capture(cap, CUDA_ERROR_STREAM_CAPTURE_INVALIDATED));
    }
    /* none of them ran: the word the launches and memsets would have set is still 5 */
    CHECK_CU(cuCtxSynchronize());
    CHECK_EQ_U64(sim_test_word(lx.d), 5);
    CHECK_EQ_U64(sim_test_word(lx.d + 32), 5); /* nor the graph */
    cuEventDestroy(fork_ev);
    cuEventDestroy(join_ev);
}

TEST(legacy_stream_refused_while_blocking_stream_captures) {
    CUstream blocking, nb, other;
    CHECK_CU(cuStreamCreate(&blocking, 0));
    CHECK_CU(cuStreamCreate(&nb, CU_STREAM_NON_BLOCKING));
    CHECK_CU(cuStreamCreate(&other, CU_STREAM_NON_BLOCKING));
    legacy_fixture(other);
    legacy_uses_fail(blocking, NULL);
    legacy_uses_fail(nb, blocking);               /* a blocking stream forked into it */
    legacy_uses_fail(CU_STREAM_PER_THREAD, NULL); /* the per-thread stream is blocking */
    legacy_fixture_free();
    cuStreamDestroy(blocking);
    cuStreamDestroy(nb);
    cuStreamDestroy(other);
}

/* A GLOBAL capture: a synchronous copy on the legacy stream is refused as an implicit
 * dependency (checked when its stream is resolved, before the capture mode). */
TEST(legacy_sync_copy_in_global_capture) {
    CUstream blocking, other;
    CHECK_CU(cuStreamCreate(&blocking, 0));
    CHECK_CU(cuStreamCreate(&other, CU_STREAM_NON_BLOCKING));
    legacy_fixture(other);
    CHECK_CU(cuStreamBeginCapture(blocking, CU_STREAM_CAPTURE_MODE_GLOBAL));
    CHECK_EQ_U64(legacy_copy_sync(), CUDA_ERROR_STREAM_CAPTURE_IMPLICIT);
    CHECK(sim_test_end_capture(blocking, CUDA_ERROR_STREAM_CAPTURE_INVALIDATED));
    legacy_fixture_free();
    cuStreamDestroy(blocking);
    cuStreamDestroy(other);
}

/* What stays legal: the legacy stream while only non-blocking streams capture, and after
 * the blocking capture ended; attribute queries of it during one; cuStreamIsCapturing and
 * cuStreamGetCaptureInfo of it return CUDA_ERROR_STREAM_CAPTURE_IMPLICIT without
 * invalidating the capture (as cuStreamIsCapturing documents). */
TEST(legacy_stream_legal_uses) {
    CUstream blocking, nb, other;
    CHECK_CU(cuStreamCreate(&blocking, 0));
    CHECK_CU(cuStreamCreate(&nb, CU_STREAM_NON_BLOCKING));
    CHECK_CU(cuStreamCreate(&other, CU_STREAM_NON_BLOCKING));
    legacy_fixture(other);
    for (size_t i = 0; i < NLEGACY; i++) {
        CHECK_CU(cuStreamBeginCapture(nb, CU_STREAM_CAPTURE_MODE_RELAXED));
        CHECK_CU(sim_test_fill(nb, lx.d + 8, 1, 1));
        CUresult r = legacy_uses[i].call();
        if (r != CUDA_SUCCESS)
            fprintf(stderr, "non-blocking capture: %s returned %d\n", legacy_uses[i].name, r);
        CHECK_CU(r);
        CHECK(sim_test_end_capture(nb, CUDA_SUCCESS));
    }
    CHECK_CU(cuCtxSynchronize());
    CHECK_EQ_U64(sim_test_word(lx.d), 9);
    CHECK_EQ_U64(sim_test_word(lx.d + 32), 3);

    CHECK_CU(cuStreamBeginCapture(blocking, CU_STREAM_CAPTURE_MODE_GLOBAL));
    CHECK_CU(sim_test_fill(blocking, lx.d + 8, 1, 1));
    CUstreamCaptureStatus st = CU_STREAM_CAPTURE_STATUS_NONE;
    cuuint64_t id = 0;
    CHECK_EQ_U64(cuStreamIsCapturing(NULL, &st), CUDA_ERROR_STREAM_CAPTURE_IMPLICIT);
    CHECK_EQ_U64(cuStreamGetCaptureInfo(CU_STREAM_LEGACY, &st, &id, NULL, NULL, NULL, NULL),
                 CUDA_ERROR_STREAM_CAPTURE_IMPLICIT);
    unsigned flags = 7;
    CUcontext ctx = NULL;
    CHECK_CU(cuStreamGetFlags(NULL, &flags));
    CHECK_EQ_U64(flags, 0);
    CHECK_CU(cuStreamGetCtx(NULL, &ctx));
    CHECK(ctx != NULL);
    CHECK_CU(cuStreamIsCapturing(blocking, &st));
    CHECK_EQ_U64(st, CU_STREAM_CAPTURE_STATUS_ACTIVE);
    CHECK(sim_test_end_capture(blocking, CUDA_SUCCESS));
    CHECK_CU(sim_test_landed(legacy_memset_sync())); /* usable again */
    CHECK_CU(cuStreamIsCapturing(NULL, &st));
    CHECK_EQ_U64(st, CU_STREAM_CAPTURE_STATUS_NONE);
    legacy_fixture_free();
    cuStreamDestroy(blocking);
    cuStreamDestroy(nb);
    cuStreamDestroy(other);
}

/* ---- external event waits: only the nodes after the wait wait --------------------- */

static atomic_int gate_open, branch_done;

static void hold_until_open(void *data) {
    (void)data;
    double t0 = sim_test_now_ms();
    while (!atomic_load(&gate_open) && sim_test_now_ms() - t0 < 5000)
        usleep(1000);
}

static void mark_done(void *data) {
    (void)data;
    atomic_store(&branch_done, 1);
}

/* A graph on s: branch 1 waits for `ext` (CU_EVENT_WAIT_EXTERNAL) then copies a to b;
 * branch 2 (forked onto t) memsets c then runs `tail` (a host node); both join. With
 * `copy_a_too`, branch 2 also copies a to d: unordered with what ext stands for. */
static CUgraphExec capture_wait_graph(CUstream s, CUstream t, CUevent ext, CUdeviceptr a,
                                      CUdeviceptr b, CUdeviceptr c, CUdeviceptr d,
                                      void (*tail)(void *), int copy_a_too) {
    CUevent fork_ev, join_ev;
    CUgraph g;
    CUgraphExec x = NULL;
    if (cuEventCreate(&fork_ev, CU_EVENT_DISABLE_TIMING) ||
        cuEventCreate(&join_ev, CU_EVENT_DISABLE_TIMING) ||
        cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_GLOBAL) || cuEventRecord(fork_ev, s) ||
        cuStreamWaitEvent(t, fork_ev, 0) || cuStreamWaitEvent(s, ext, CU_EVENT_WAIT_EXTERNAL) ||
        cuMemcpyDtoDAsync(b, a, 4, s) || cuMemsetD32Async(c, 4, 1, t) ||
        (copy_a_too && cuMemcpyDtoDAsync(d, a, 4, t)) || cuLaunchHostFunc(t, tail, NULL) ||
        cuEventRecord(join_ev, t) || cuStreamWaitEvent(s, join_ev, 0) ||
        cuStreamEndCapture(s, &g) || cuGraphInstantiate(&x, g, 0) || cuGraphDestroy(g))
        x = NULL;
    cuEventDestroy(fork_ev);
    cuEventDestroy(join_ev);
    return x;
}

/* The event stands for a host function that holds its stream until the test opens the
 * gate: the independent branch finishes meanwhile, the waiting one only after. */
TEST(external_wait_holds_only_its_branch) {
    CUstream s, t, o;
    CUdeviceptr a, b, c;
    CUevent ext;
    CHECK_CU(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    CHECK_CU(cuStreamCreate(&t, CU_STREAM_NON_BLOCKING));
    CHECK_CU(cuStreamCreate(&o, CU_STREAM_NON_BLOCKING));
    CHECK_CU(cuMemAlloc(&a, 4));
    CHECK_CU(cuMemAlloc(&b, 4));
    CHECK_CU(cuMemAlloc(&c, 4));
    CHECK_CU(cuEventCreate(&ext, CU_EVENT_DISABLE_TIMING));
    CHECK_CU(cuEventRecord(ext, o));
    CUgraphExec x = capture_wait_graph(s, t, ext, a, b, c, 0, mark_done, 0);
    CHECK(x != NULL);
    for (unsigned v = 1; v < 3; v++) {
        atomic_store(&gate_open, 0);
        atomic_store(&branch_done, 0);
        CHECK_CU(sim_test_landed(cuMemsetD32(c, 0, 1)));
        CHECK_CU(cuLaunchHostFunc(o, hold_until_open, NULL));
        CHECK_CU(cuMemsetD32Async(a, 10 * v, 1, o));
        CHECK_CU(cuEventRecord(ext, o));
        CHECK_CU(cuGraphLaunch(x, s));
        double t0 = sim_test_now_ms();
        while (!atomic_load(&branch_done) && sim_test_now_ms() - t0 < 2000)
            usleep(1000);
        CHECK(atomic_load(&branch_done)); /* the independent branch ran to its end */
        CHECK_EQ_U64(cuEventQuery(ext), CUDA_ERROR_NOT_READY);
        CHECK_EQ_U64(cuStreamQuery(s), CUDA_ERROR_NOT_READY); /* the launch waits */
        atomic_store(&gate_open, 1);
        CHECK_CU(cuStreamSynchronize(s));
        CHECK_EQ_U64(sim_test_word(b),
                     10 * v); /* the waiting branch saw what the event stands for */
        CHECK_EQ_U64(sim_test_word(c), 4);
    }
    cuGraphExecDestroy(x);
    cuEventDestroy(ext);
    cuMemFree(a);
    cuMemFree(b);
    cuMemFree(c);
    cuStreamDestroy(s);
    cuStreamDestroy(t);
    cuStreamDestroy(o);
}

/* ---- launches of one graphExec ------------------------------------------------------ */

/* A graph of one 50 ms kernel writing d, captured on a. */
static CUgraphExec slow_graph(CUstream a, CUdeviceptr d) {
    CUgraph g;
    CUgraphExec x = NULL;
    if (cuStreamBeginCapture(a, CU_STREAM_CAPTURE_MODE_GLOBAL) ||
        sim_test_slow_store(a, d, 1, 50000) || cuStreamEndCapture(a, &g) ||
        cuGraphInstantiate(&x, g, 0) || cuGraphDestroy(g))
        return NULL;
    return x;
}

/* "Each launch is ordered behind ... any previous launches of graphExec": two launches on
 * unordered streams run one after the other (and, in a child with the race detector on,
 * are no race although both write d). */
TEST(launches_of_one_exec_are_ordered) {
    CUstream a, b;
    CUdeviceptr d;
    CHECK_CU(cuStreamCreate(&a, CU_STREAM_NON_BLOCKING));
    CHECK_CU(cuStreamCreate(&b, CU_STREAM_NON_BLOCKING));
    CHECK_CU(cuMemAlloc(&d, 4));
    CUgraphExec x = slow_graph(a, d);
    CHECK(x != NULL);
    double t0 = sim_test_now_ms();
    CHECK_CU(cuGraphLaunch(x, a));
    CHECK_CU(cuGraphLaunch(x, b));
    CHECK_CU(cuStreamSynchronize(b));
    double ms = sim_test_now_ms() - t0;
    CHECK_EQ_U64(cuStreamQuery(a), CUDA_SUCCESS); /* b's launch came after a's */
    if (ms < 100)
        fprintf(stderr, "two launches of a 50 ms graph took %.0f ms\n", ms);
    CHECK(ms >= 100);
    cuGraphExecDestroy(x);
    cuMemFree(d);
    cuStreamDestroy(a);
    cuStreamDestroy(b);
}

/* ---- the race detector and event wait nodes: in a child (a race is sticky) --------- */

/* a is written on o (recorded in ext) and read by the graph. 0: only the node after the
 * wait reads it: ordered, no race. 1: the independent branch reads it too: a race. Exit 0
 * when the outcome is the expected one. */
static int race_child(int scenario) {
    if (!sim_test_setup())
        return 2;
    if (scenario == 2) { /* two launches of one exec on unordered streams: ordered */
        CUstream a, b;
        CUdeviceptr d;
        if (cuStreamCreate(&a, CU_STREAM_NON_BLOCKING) ||
            cuStreamCreate(&b, CU_STREAM_NON_BLOCKING) || cuMemAlloc(&d, 4))
            return 3;
        CUgraphExec x = slow_graph(a, d);
        if (!x || cuGraphLaunch(x, a) || cuGraphLaunch(x, b))
            return 4;
        return cuCtxSynchronize() == CUDA_SUCCESS ? 0 : 5;
    }
    CUstream s, t, o;
    CUdeviceptr a, b, c, d;
    CUevent ext;
    if (cuStreamCreate(&s, CU_STREAM_NON_BLOCKING) || cuStreamCreate(&t, CU_STREAM_NON_BLOCKING) ||
        cuStreamCreate(&o, CU_STREAM_NON_BLOCKING) || cuMemAlloc(&a, 4) || cuMemAlloc(&b, 4) ||
        cuMemAlloc(&c, 4) || cuMemAlloc(&d, 4) || cuEventCreate(&ext, 0) || cuEventRecord(ext, o))
        return 3;
    CUgraphExec x = capture_wait_graph(s, t, ext, a, b, c, d, nothing, scenario == 1);
    if (!x || cuMemsetD32Async(a, 7, 1, o) || cuEventRecord(ext, o) || cuGraphLaunch(x, s))
        return 4;
    CUresult r = cuStreamSynchronize(s);
    if (scenario == 1)
        return r == CUDA_ERROR_ILLEGAL_ADDRESS ? 0 : 5;
    /* what follows the launch on s is ordered after the event's work too */
    if (r != CUDA_SUCCESS || cuMemsetD32Async(a, 8, 1, s) || cuStreamSynchronize(s))
        return 6;
    return sim_test_word(b) == 7 && sim_test_word(a) == 8 ? 0 : 7;
}

TEST(wait_node_orders_only_its_successors_for_the_detector) {
    int status = 0;
    const char *err = sim_test_race_child("test_sim_capture_deps", 0, &status);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(strstr(err, "simcuda: race") == NULL);
    if (check_current_failed)
        fprintf(stderr, "status %d: %s\n", status, err);
    err = sim_test_race_child("test_sim_capture_deps", 1, &status);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    const char *line = strstr(err, "simcuda: race: ");
    CHECK(line && strstr(line, "cuMemcpyDtoDAsync") && strstr(line, "graph node") &&
          strstr(line, "cuMemsetD32Async"));
    if (check_current_failed)
        fprintf(stderr, "status %d: %s\n", status, err);
}

TEST(launches_of_one_exec_do_not_race) {
    int status = 0;
    const char *err = sim_test_race_child("test_sim_capture_deps", 2, &status);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(strstr(err, "simcuda: race") == NULL);
    if (check_current_failed)
        fprintf(stderr, "status %d: %s\n", status, err);
}

int main(int argc, char **argv) {
    if (argc > 2 && strcmp(argv[1], "race-child") == 0)
        return race_child(atoi(argv[2]));
    if (!sim_test_setup())
        return 1;
    RUN(legacy_stream_refused_while_blocking_stream_captures);
    RUN(legacy_sync_copy_in_global_capture);
    RUN(legacy_stream_legal_uses);
    RUN(external_wait_holds_only_its_branch);
    RUN(wait_node_orders_only_its_successors_for_the_detector);
    RUN(launches_of_one_exec_are_ordered);
    RUN(launches_of_one_exec_do_not_race);
    return check_summary();
}
