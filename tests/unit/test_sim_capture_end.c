/* The end of a stream capture, as the driver documents it: a fork whose captured work the
 * origin stream never joined makes cuStreamEndCapture fail with
 * CUDA_ERROR_STREAM_CAPTURE_UNJOINED (no graph); ending takes every stream of the capture
 * out of capture mode, so their later calls are ordinary work; a captured call another
 * thread makes on a forked stream while the origin ends the capture is either part of
 * the capture or ordinary work, never a spurious error; an invalidated capture refuses
 * the use of its streams and events (records and waits too) until it ends. */
#include "tests/sim/testutil.h"
#include "tests/unit/check.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

static CUstream a, b, c;
static CUevent fork_ev, join_ev, outside;
static CUdeviceptr d;

static CUstreamCaptureStatus status_of(CUstream s) {
    CUstreamCaptureStatus st = (CUstreamCaptureStatus)-1;
    cuStreamIsCapturing(s, &st);
    return st;
}

/* Begins a capture on a and forks b into it (b has no work of its own yet). */
static CUresult begin_and_fork(void) {
    CUresult r = cuStreamBeginCapture(a, CU_STREAM_CAPTURE_MODE_GLOBAL);
    if (r == CUDA_SUCCESS)
        r = cuEventRecord(fork_ev, a);
    if (r == CUDA_SUCCESS)
        r = cuStreamWaitEvent(b, fork_ev, 0);
    return r;
}

/* b's captured work the origin never waits for: UNJOINED, no graph, both streams out of
 * capture mode, b's next launch ordinary work that runs. */
TEST(unjoined_fork_fails_the_capture) {
    CHECK_CU(begin_and_fork());
    CHECK_CU(sim_test_fill(b, d, 4, 1));
    CHECK_CU(sim_test_fill(a, d + 16, 4, 2));
    CHECK(sim_test_end_capture(a, CUDA_ERROR_STREAM_CAPTURE_UNJOINED));
    CHECK_EQ_U64(status_of(a), CU_STREAM_CAPTURE_STATUS_NONE);
    CHECK_EQ_U64(status_of(b), CU_STREAM_CAPTURE_STATUS_NONE);
    CHECK_CU(sim_test_fill(b, d, 4, 7));
    CHECK_CU(cuStreamSynchronize(b));
    CHECK_EQ_U64(sim_test_word(d), 7);
    /* the capture is over: a begins afresh */
    CHECK_CU(cuStreamBeginCapture(a, CU_STREAM_CAPTURE_MODE_GLOBAL));
    CHECK(sim_test_end_capture(a, CUDA_SUCCESS));
}

/* Work after the join is unjoined again; an invalidated capture stays INVALIDATED. */
TEST(work_after_the_join_is_unjoined) {
    CHECK_CU(begin_and_fork());
    CHECK_CU(sim_test_fill(b, d, 4, 1));
    CHECK_CU(cuEventRecord(join_ev, b));
    CHECK_CU(cuStreamWaitEvent(a, join_ev, 0));
    CHECK_CU(sim_test_fill(b, d + 16, 4, 2));
    CHECK(sim_test_end_capture(a, CUDA_ERROR_STREAM_CAPTURE_UNJOINED));

    CHECK_CU(begin_and_fork());
    CHECK_CU(sim_test_fill(b, d, 4, 1));
    CHECK_EQ_U64(cuStreamWaitEvent(a, outside, 0), CUDA_ERROR_STREAM_CAPTURE_ISOLATION);
    CHECK(sim_test_end_capture(a, CUDA_ERROR_STREAM_CAPTURE_INVALIDATED));
    CHECK_EQ_U64(status_of(b), CU_STREAM_CAPTURE_STATUS_NONE);
}

/* What is joined ends well: a fork that captured nothing, a fork joined back, and a
 * fork of a fork (c after b's node) that b's join covers. The graph has every node. */
TEST(joined_forks_end_well) {
    CHECK_CU(begin_and_fork());
    CHECK_CU(sim_test_fill(a, d, 4, 1));
    CHECK(sim_test_end_capture(a, CUDA_SUCCESS)); /* b forked, captured nothing */

    CHECK_CU(begin_and_fork());
    CHECK_CU(sim_test_fill(b, d, 4, 1));
    CHECK_CU(cuEventRecord(join_ev, b));
    CHECK_CU(cuStreamWaitEvent(c, join_ev, 0)); /* c forks after b's node */
    CHECK_CU(cuStreamWaitEvent(a, join_ev, 0));
    CHECK_CU(sim_test_fill(a, d + 16, 4, 2));
    CUgraph g = NULL;
    CHECK_CU(cuStreamEndCapture(a, &g));
    size_t n = 0;
    CHECK(g != NULL);
    if (g) {
        CHECK_CU(cuGraphGetNodes(g, NULL, &n));
        CHECK_EQ_U64(n, 2);
        cuGraphDestroy(g);
    }
    CHECK_EQ_U64(status_of(b), CU_STREAM_CAPTURE_STATUS_NONE);
    CHECK_EQ_U64(status_of(c), CU_STREAM_CAPTURE_STATUS_NONE);

    /* c's own work, never joined: unjoined, though b's is joined */
    CHECK_CU(begin_and_fork());
    CHECK_CU(sim_test_fill(b, d, 4, 1));
    CHECK_CU(cuEventRecord(join_ev, b));
    CHECK_CU(cuStreamWaitEvent(c, join_ev, 0));
    CHECK_CU(cuStreamWaitEvent(a, join_ev, 0));
    CHECK_CU(sim_test_fill(c, d + 32, 4, 3));
    CHECK(sim_test_end_capture(a, CUDA_ERROR_STREAM_CAPTURE_UNJOINED));
    CHECK_EQ_U64(status_of(c), CU_STREAM_CAPTURE_STATUS_NONE);
}

/* An invalidated capture: its streams' records and waits (on any event), and waits on
 * its events from other streams, fail with CUDA_ERROR_STREAM_CAPTURE_INVALIDATED (the guide:
 * "further use of any streams which are being captured or captured events associated with the graph
 * is invalid and will return an error") and change nothing. */
TEST(invalidated_capture_refuses_records_and_waits) {
    CHECK_CU(begin_and_fork());
    CHECK_CU(cuEventRecord(join_ev, b));
    CHECK_EQ_U64(cuStreamWaitEvent(a, outside, 0), CUDA_ERROR_STREAM_CAPTURE_ISOLATION);
    CHECK_EQ_U64(cuEventRecord(fork_ev, a), CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
    CHECK_EQ_U64(cuEventRecord(fork_ev, b), CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
    CHECK_EQ_U64(cuStreamWaitEvent(a, join_ev, 0), CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
    CHECK_EQ_U64(cuStreamWaitEvent(c, join_ev, 0), CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
    CHECK_EQ_U64(status_of(c), CU_STREAM_CAPTURE_STATUS_NONE); /* c did not join */
    CHECK_EQ_U64(cuStreamWaitEvent(a, outside, 0), CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
    CHECK_EQ_U64(cuStreamWaitEvent(b, fork_ev, 0), CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
    CHECK(sim_test_end_capture(a, CUDA_ERROR_STREAM_CAPTURE_INVALIDATED));
}

/* ---- the end racing another thread's captured calls ------------------------------ */

static atomic_uint ran;

static void CUDA_CB count_run(void *arg) {
    (void)arg;
    atomic_fetch_add(&ran, 1);
}

struct launcher {
    CUcontext ctx;
    atomic_int stop;
    atomic_uint calls;
    unsigned bad; /* calls that failed with another error than `allowed` */
    CUresult allowed, first_bad;
};

/* Host functions on b, as fast as it can, until told to stop. */
static void *launch_loop(void *arg) {
    struct launcher *l = arg;
    cuCtxSetCurrent(l->ctx);
    while (!atomic_load(&l->stop)) {
        CUresult r = cuLaunchHostFunc(b, count_run, NULL);
        if (r != CUDA_SUCCESS && r != l->allowed && !l->bad++)
            l->first_bad = r;
        atomic_fetch_add(&l->calls, 1);
    }
    return NULL;
}

/* While a second thread launches on b, forked into a's capture, a's capture ends: each
 * launch is captured (then the end finds b unjoined) or runs as ordinary work; none may
 * fail for want of a capture that ended under it. Invalidated first, the launches before
 * the end fail with CUDA_ERROR_STREAM_CAPTURE_INVALIDATED, the later ones run. */
TEST(end_is_atomic_with_captured_calls) {
    unsigned bad = 0;
    CUresult first_bad = CUDA_SUCCESS;
    unsigned rounds = 400, unjoined = 0;
    for (unsigned i = 0; i < rounds; i++) {
        int invalidate = i % 4 == 3;
        struct launcher l = {.allowed =
                                 invalidate ? CUDA_ERROR_STREAM_CAPTURE_INVALIDATED : CUDA_SUCCESS};
        cuCtxGetCurrent(&l.ctx);
        CHECK_CU(begin_and_fork());
        if (invalidate)
            CHECK_EQ_U64(cuStreamWaitEvent(a, outside, 0), CUDA_ERROR_STREAM_CAPTURE_ISOLATION);
        atomic_store(&ran, 0);
        pthread_t t;
        pthread_create(&t, NULL, launch_loop, &l);
        while (atomic_load(&l.calls) < 2)
            sched_yield();
        CUgraph g = (CUgraph)1;
        CUresult r = cuStreamEndCapture(a, &g);
        unsigned at_end = atomic_load(&l.calls);
        while (atomic_load(&l.calls) < at_end + 2)
            sched_yield();
        atomic_store(&l.stop, 1);
        pthread_join(t, NULL);
        CHECK_CU(cuStreamSynchronize(b));
        CHECK(g == NULL);
        CHECK_EQ_U64(r, invalidate ? CUDA_ERROR_STREAM_CAPTURE_INVALIDATED
                                   : CUDA_ERROR_STREAM_CAPTURE_UNJOINED);
        unjoined += r == CUDA_ERROR_STREAM_CAPTURE_UNJOINED;
        /* the launches after the end ran; the captured ones went with the graph */
        CHECK(atomic_load(&ran) >= 1 && atomic_load(&ran) < atomic_load(&l.calls));
        if (l.bad && !bad)
            first_bad = l.first_bad;
        bad += l.bad;
    }
    if (bad)
        fprintf(stderr, "%u launches failed, the first with %d\n", bad, (int)first_bad);
    CHECK_EQ_U64(bad, 0);
    CHECK_EQ_U64(unjoined, rounds - rounds / 4);
}

/* ---- data races in the simulator itself (seen under ThreadSanitizer) ------------- */

static void *query_loop(void *arg) {
    struct launcher *l = arg;
    cuCtxSetCurrent(l->ctx);
    atomic_store(&l->calls, 1); /* started */
    while (!atomic_load(&l->stop))
        if (cuEventQuery(join_ev) == CUDA_ERROR_CAPTURED_EVENT)
            l->bad = 1; /* read once stopped, after the join */
    return NULL;
}

/* One thread records an event on a capturing stream while another queries it: the
 * query finds the event captured (and invalidates the capture) or not, and the
 * simulator's own reads and writes of the event's capture do not race. */
TEST(query_races_captured_record) {
    unsigned captured = 0;
    for (int i = 0; i < 20; i++) {
        struct launcher l = {0};
        cuCtxGetCurrent(&l.ctx);
        CHECK_CU(cuEventRecord(join_ev, c)); /* an ordinary record first: not captured */
        CHECK_CU(cuStreamSynchronize(c));
        CHECK_CU(cuStreamBeginCapture(a, CU_STREAM_CAPTURE_MODE_RELAXED));
        pthread_t t;
        pthread_create(&t, NULL, query_loop, &l);
        while (!atomic_load(&l.calls))
            sched_yield();
        CUresult r = CUDA_SUCCESS;
        for (int k = 0; k < 2000 && r == CUDA_SUCCESS; k++)
            r = cuEventRecord(join_ev, a);
        atomic_store(&l.stop, 1);
        pthread_join(t, NULL);
        CUgraph g = NULL;
        CUresult end = cuStreamEndCapture(a, &g);
        if (g)
            cuGraphDestroy(g);
        /* a query that saw the captured event invalidated the capture */
        CHECK_EQ_U64(end, l.bad ? CUDA_ERROR_STREAM_CAPTURE_INVALIDATED : CUDA_SUCCESS);
        CHECK(r == CUDA_SUCCESS || (l.bad && r == CUDA_ERROR_STREAM_CAPTURE_INVALIDATED));
        captured += l.bad;
    }
    CHECK(captured > 0);
}

int main(void) {
    if (!sim_test_setup())
        return 1;
    if (cuStreamCreate(&a, CU_STREAM_NON_BLOCKING) || cuStreamCreate(&b, CU_STREAM_NON_BLOCKING) ||
        cuStreamCreate(&c, CU_STREAM_NON_BLOCKING) || cuEventCreate(&fork_ev, 0) ||
        cuEventCreate(&join_ev, 0) || cuEventCreate(&outside, 0) || cuEventRecord(outside, c) ||
        cuMemAlloc(&d, 64))
        return 1;
    RUN(unjoined_fork_fails_the_capture);
    RUN(work_after_the_join_is_unjoined);
    RUN(joined_forks_end_well);
    RUN(invalidated_capture_refuses_records_and_waits);
    RUN(end_is_atomic_with_captured_calls);
    RUN(query_races_captured_record);
    cuMemFree(d);
    return check_summary();
}
