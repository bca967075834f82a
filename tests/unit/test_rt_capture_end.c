/*
 * test_rt_capture_end.c — liboffload counts the captures in progress (copy_captures:
 * while one is, it never synchronises the context and skips fingerprints). Every way a
 * capture ends must end its count: a successful end, an invalidated one, and one that
 * fails with CUDA_ERROR_STREAM_CAPTURE_UNJOINED (a forked stream's work never joined),
 * which ends the capture as well ("the capture sequence contains a fork that was not
 * joined"; no graph, its streams out of capture mode). Driven the way the interposed
 * cuStreamBeginCapture / cuStreamWaitEvent / cuStreamEndCapture drive the runtime.
 */
#include "runtime/runtime.h"
#include "tests/sim/testutil.h"
#include "tests/unit/check.h"

static CUstream a, b;
static CUevent fork_ev, outside;

static CUresult begin(void) {
    runtime_capture_prepare(a);
    CUresult r = cuStreamBeginCapture_v2(a, CU_STREAM_CAPTURE_MODE_GLOBAL);
    runtime_capture_begun(a, r);
    return r;
}

static CUresult fork_b(void) {
    CUresult r = cuEventRecord(fork_ev, a);
    if (r != CUDA_SUCCESS)
        return r;
    if (runtime_captures_in_progress()) {
        runtime_capture_prepare(b);
        r = cuStreamWaitEvent(b, fork_ev, 0);
        runtime_capture_joined(b, r);
    } else {
        r = cuStreamWaitEvent(b, fork_ev, 0);
    }
    return r;
}

static void CUDA_CB nothing(void *arg) {
    (void)arg;
}

static CUresult end(void) {
    CUgraph g = NULL;
    CUresult r = cuStreamEndCapture(a, &g);
    runtime_capture_ended(r);
    if (g)
        cuGraphDestroy(g);
    return r;
}

TEST(every_end_ends_the_count) {
    CHECK(!runtime_captures_in_progress());
    CHECK_CU(begin());
    CHECK(runtime_captures_in_progress());
    CHECK_CU(end());
    CHECK(!runtime_captures_in_progress());

    CHECK_CU(begin());
    CHECK_EQ_U64(cuStreamWaitEvent(a, outside, 0), CUDA_ERROR_STREAM_CAPTURE_ISOLATION);
    CHECK_EQ_U64(end(), CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
    CHECK(!runtime_captures_in_progress());

    CHECK_CU(begin());
    CHECK_CU(fork_b());
    CHECK_CU(cuLaunchHostFunc(b, nothing, NULL)); /* b's work, never joined */
    CHECK_EQ_U64(end(), CUDA_ERROR_STREAM_CAPTURE_UNJOINED);
    CHECK(!runtime_captures_in_progress());
    CUstreamCaptureStatus st;
    CHECK_CU(cuStreamIsCapturing(b, &st));
    CHECK_EQ_U64(st, CU_STREAM_CAPTURE_STATUS_NONE);
    /* an unmatched end changes nothing */
    CHECK_EQ_U64(end(), CUDA_ERROR_ILLEGAL_STATE);
    CHECK(!runtime_captures_in_progress());
}

int main(void) {
    if (!sim_test_setup())
        return 1;
    runtime_early_init();
    if (cuStreamCreate(&a, CU_STREAM_NON_BLOCKING) || cuStreamCreate(&b, CU_STREAM_NON_BLOCKING) ||
        cuEventCreate(&fork_ev, 0) || cuEventCreate(&outside, 0) || cuEventRecord(outside, b) ||
        cuStreamSynchronize(b))
        return 1;
    RUN(every_end_ends_the_count);
    return check_summary();
}
