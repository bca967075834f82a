/* The simulated driver's stream capture and graphs: captured launches become kernel
 * nodes whose parameters can be read back, and replay runs them again. */
#include "tests/sim/testutil.h"
#include "tests/unit/check.h"

#include <stdlib.h>

static CUresult incr_copy(CUstream s, CUdeviceptr src, CUdeviceptr dst) {
    void *args[] = {&src, &dst};
    return cuLaunchKernel(sim_test_kernel("incr_copy"), 1, 1, 1, 1, 1, 1, 0, s, args, NULL);
}

TEST(capture_and_replay) {
    CUstream s;
    CUdeviceptr d;
    CHECK_CU(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    CHECK_CU(cuMemAlloc(&d, 64));
    CHECK_CU(sim_test_landed(cuMemsetD32(d, 0, 16)));
    CUstreamCaptureStatus st;
    CHECK_CU(cuStreamIsCapturing(s, &st));
    CHECK_EQ_U64(st, CU_STREAM_CAPTURE_STATUS_NONE);
    CHECK_CU(cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_GLOBAL));
    CHECK_CU(cuStreamIsCapturing(s, &st));
    CHECK_EQ_U64(st, CU_STREAM_CAPTURE_STATUS_ACTIVE);
    CHECK_CU(sim_test_fill(s, d, 4, 5));
    CHECK_CU(incr_copy(s, d, d + 16));
    CHECK_CU(cuMemsetD32Async(d + 32, 9, 1, s));
    CHECK_CU(cuMemcpyDtoDAsync(d + 36, d + 16, 4, s));
    cuuint64_t id = 0;
    size_t ndeps = 0;
    CUgraph cg = NULL;
    const CUgraphNode *deps = NULL;
    CHECK_CU(cuStreamGetCaptureInfo(s, &st, &id, &cg, &deps, NULL, &ndeps));
    CHECK(id != 0 && cg != NULL && ndeps == 1);
    CUgraph g;
    CHECK_CU(cuStreamEndCapture(s, &g));
    CHECK(g == cg);
    CHECK_CU(cuStreamSynchronize(s));
    CHECK_EQ_U64(sim_test_word(d), 0); /* nothing ran yet */
    CHECK_EQ_U64(sim_test_word(d + 16), 0);

    size_t n = 0;
    CHECK_CU(cuGraphGetNodes(g, NULL, &n));
    CHECK_EQ_U64(n, 4);
    CUgraphNode nodes[4];
    CHECK_CU(cuGraphGetNodes(g, nodes, &n));
    CUgraphNodeType t;
    CHECK_CU(cuGraphNodeGetType(nodes[0], &t));
    CHECK_EQ_U64(t, CU_GRAPH_NODE_TYPE_KERNEL);
    CHECK_CU(cuGraphNodeGetType(nodes[2], &t));
    CHECK_EQ_U64(t, CU_GRAPH_NODE_TYPE_MEMSET);
    CHECK_CU(cuGraphNodeGetType(nodes[3], &t));
    CHECK_EQ_U64(t, CU_GRAPH_NODE_TYPE_MEMCPY);
    CUDA_KERNEL_NODE_PARAMS kp;
    CHECK_CU(cuGraphKernelNodeGetParams(nodes[1], &kp));
    CHECK(kp.func == sim_test_kernel("incr_copy"));
    CHECK_EQ_U64(*(CUdeviceptr *)kp.kernelParams[0], d);
    CHECK_EQ_U64(*(CUdeviceptr *)kp.kernelParams[1], d + 16);
    CHECK_EQ_U64(cuGraphKernelNodeGetParams(nodes[2], &kp), CUDA_ERROR_INVALID_VALUE);

    CUgraphExec x;
    CHECK_CU(cuGraphInstantiate(&x, g, 0));
    CHECK_CU(cuGraphDestroy(g)); /* the exec keeps its own copy */
    CHECK_CU(cuGraphLaunch(x, s));
    CHECK_CU(cuStreamSynchronize(s));
    CHECK_EQ_U64(sim_test_word(d), 5);
    CHECK_EQ_U64(sim_test_word(d + 16), 6);
    CHECK_EQ_U64(sim_test_word(d + 32), 9);
    CHECK_EQ_U64(sim_test_word(d + 36), 6);
    /* replay runs it all again */
    CHECK_CU(sim_test_landed(cuMemsetD32(d, 0, 16)));
    CHECK_CU(cuGraphLaunch(x, NULL));
    CHECK_CU(cuGraphExecDestroy(x)); /* a queued launch keeps it alive */
    CHECK_CU(cuCtxSynchronize());
    CHECK_EQ_U64(sim_test_word(d + 36), 6);
    CHECK_CU(cuMemFree(d));
    CHECK_CU(cuStreamDestroy(s));
}

/* Fork a second stream into the capture with an event and join it back. */
TEST(fork_join) {
    CUstream a, b;
    CUevent fork_ev, join_ev;
    CUdeviceptr d;
    CHECK_CU(cuStreamCreate(&a, 0));
    CHECK_CU(cuStreamCreate(&b, 0));
    CHECK_CU(cuEventCreate(&fork_ev, 0));
    CHECK_CU(cuEventCreate(&join_ev, 0));
    CHECK_CU(cuMemAlloc(&d, 64));
    CHECK_CU(sim_test_landed(cuMemsetD32(d, 0, 16)));
    CHECK_CU(cuStreamBeginCapture(a, CU_STREAM_CAPTURE_MODE_GLOBAL));
    CHECK_CU(sim_test_fill(a, d, 1, 1));
    CHECK_CU(cuEventRecord(fork_ev, a));
    CHECK_CU(cuStreamWaitEvent(b, fork_ev, 0));
    CUstreamCaptureStatus st;
    CHECK_CU(cuStreamIsCapturing(b, &st));
    CHECK_EQ_U64(st, CU_STREAM_CAPTURE_STATUS_ACTIVE);
    CHECK_CU(incr_copy(b, d, d + 4));
    CHECK_CU(cuEventRecord(join_ev, b));
    CHECK_CU(cuStreamWaitEvent(a, join_ev, 0));
    CHECK_CU(incr_copy(a, d + 4, d + 8));
    CUgraph g;
    CHECK_CU(cuStreamEndCapture(a, &g));
    CHECK_CU(cuStreamIsCapturing(b, &st));
    CHECK_EQ_U64(st, CU_STREAM_CAPTURE_STATUS_NONE);
    CUgraphExec x;
    CHECK_CU(cuGraphInstantiate(&x, g, 0));
    CHECK_CU(cuGraphLaunch(x, a));
    CHECK_CU(cuStreamSynchronize(a));
    CHECK_EQ_U64(sim_test_word(d + 8), 3);
    cuGraphExecDestroy(x);
    cuGraphDestroy(g);
    cuMemFree(d);
    cuEventDestroy(fork_ev);
    cuEventDestroy(join_ev);
    cuStreamDestroy(a);
    cuStreamDestroy(b);
}

TEST(capture_errors) {
    CHECK_EQ_U64(cuStreamBeginCapture(NULL, CU_STREAM_CAPTURE_MODE_GLOBAL),
                 CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
    CUstream s;
    CUgraph g;
    CHECK_CU(cuStreamCreate(&s, 0));
    CHECK_EQ_U64(cuStreamEndCapture(s, &g), CUDA_ERROR_ILLEGAL_STATE);
    CHECK_CU(cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_RELAXED));
    CHECK_CU(cuStreamEndCapture(s, &g));
    size_t n = 7;
    CHECK_CU(cuGraphGetNodes(g, NULL, &n));
    CHECK_EQ_U64(n, 0);
    CHECK_CU(cuGraphDestroy(g));
    /* synchronising a capturing stream conflicts with capture in every mode: it fails
     * and invalidates the capture (more in test_sim_capture.c) */
    CHECK_CU(cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_RELAXED));
    CHECK_EQ_U64(cuStreamSynchronize(s), CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
    CHECK_EQ_U64(cuStreamEndCapture(s, &g), CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
    CHECK(g == NULL);
    cuStreamDestroy(s);
}

static CUgraph capture_fills(CUstream s, CUdeviceptr d, unsigned v, int count) {
    CUgraph g = NULL;
    if (cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_GLOBAL) != CUDA_SUCCESS)
        return NULL;
    for (int i = 0; i < count; i++)
        sim_test_fill(s, d, 4, v);
    cuStreamEndCapture(s, &g);
    return g;
}

/* cuGraphExecUpdate takes new parameters for the same topology, refuses another one. */
TEST(exec_update) {
    CUstream s;
    CUdeviceptr d;
    CHECK_CU(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    CHECK_CU(cuMemAlloc(&d, 16));
    CUgraph g5 = capture_fills(s, d, 5, 1), g7 = capture_fills(s, d, 7, 1);
    CUgraph g2 = capture_fills(s, d, 9, 2);
    CHECK(g5 && g7 && g2);
    CUgraphExec x;
    CHECK_CU(cuGraphInstantiate(&x, g5, 0));
    CHECK_CU(cuGraphLaunch(x, s));
    CHECK_CU(cuStreamSynchronize(s));
    CHECK_EQ_U64(sim_test_word(d), 5);
    CUgraphExecUpdateResultInfo info;
    CHECK_CU(cuGraphExecUpdate(x, g7, &info));
    CHECK_EQ_U64(info.result, CU_GRAPH_EXEC_UPDATE_SUCCESS);
    CHECK_CU(cuGraphLaunch(x, s));
    CHECK_CU(cuStreamSynchronize(s));
    CHECK_EQ_U64(sim_test_word(d), 7);
    CHECK_EQ_U64(cuGraphExecUpdate(x, g2, &info), CUDA_ERROR_GRAPH_EXEC_UPDATE_FAILURE);
    CHECK_EQ_U64(info.result, CU_GRAPH_EXEC_UPDATE_ERROR_TOPOLOGY_CHANGED);
    CHECK_CU(cuGraphExecDestroy(x));
    cuGraphDestroy(g5);
    cuGraphDestroy(g7);
    cuGraphDestroy(g2);
    cuMemFree(d);
    cuStreamDestroy(s);
}

int main(void) {
    if (!sim_test_setup())
        return 1;
    RUN(capture_and_replay);
    RUN(fork_join);
    RUN(capture_errors);
    RUN(exec_update);
    return check_summary();
}
