/* The simulated driver's capture rules, as the driver documents them: capture modes and
 * potentially unsafe calls (cuThreadExchangeStreamCaptureMode), operations that conflict
 * with capture in every mode, waits on events recorded outside a capture; and graph
 * launches whose independent branches run concurrently, ordered by their edges for the
 * race detector. */
#include "tests/sim/testutil.h"
#include "tests/unit/check.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>

/* the per-thread-stream form of cuMemsetD32, which cuda.h declares only for programs
 * built with per-thread default streams */
CUresult CUDAAPI cuMemsetD32_v2_ptds(CUdeviceptr dst, unsigned int v, size_t n);

#define MiB ((size_t)1 << 20)
#define GRAN (2 * MiB)

static CUmemAllocationProp prop(void) {
    CUmemAllocationProp p = {0};
    p.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    p.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    return p;
}

static CUmemAccessDesc rw(void) {
    CUmemAccessDesc a = {0};
    a.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    a.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
    return a;
}

/* What the unsafe calls below work on, made before any capture. */
static struct {
    CUstream other;
    CUevent done; /* recorded on `other` */
    CUdeviceptr d, va, mapped_va;
    CUmemGenericAllocationHandle h, mapped_h;
    unsigned host[4];
} fx;

static CUresult unsafe_alloc(void) {
    CUdeviceptr p;
    return cuMemAlloc(&p, 64);
}
static CUresult unsafe_free(void) {
    return cuMemFree(fx.d);
}
static CUresult unsafe_htod(void) {
    return cuMemcpyHtoD(fx.d, fx.host, sizeof fx.host);
}
static CUresult unsafe_dtoh(void) {
    return cuMemcpyDtoH(fx.host, fx.d, sizeof fx.host);
}
static CUresult unsafe_memset(void) {
    return cuMemsetD32(fx.d, 1, 4);
}
static CUresult unsafe_ctx_sync(void) {
    return cuCtxSynchronize();
}
static CUresult unsafe_stream_sync(void) {
    return cuStreamSynchronize(fx.other);
}
static CUresult unsafe_stream_query(void) {
    return cuStreamQuery(fx.other);
}
static CUresult unsafe_event_sync(void) {
    return cuEventSynchronize(fx.done);
}
static CUresult unsafe_event_query(void) {
    return cuEventQuery(fx.done);
}
static CUresult unsafe_reserve(void) {
    CUdeviceptr va;
    return cuMemAddressReserve(&va, GRAN, 0, 0, 0);
}
static CUresult unsafe_create(void) {
    CUmemAllocationProp p = prop();
    CUmemGenericAllocationHandle h;
    return cuMemCreate(&h, GRAN, &p, 0);
}
static CUresult unsafe_map(void) {
    return cuMemMap(fx.va, GRAN, 0, fx.h, 0);
}
static CUresult unsafe_set_access(void) {
    CUmemAccessDesc a = rw();
    return cuMemSetAccess(fx.mapped_va, GRAN, &a, 1);
}
static CUresult unsafe_unmap(void) {
    return cuMemUnmap(fx.mapped_va, GRAN);
}
static CUresult unsafe_release(void) {
    return cuMemRelease(fx.h);
}
static CUresult unsafe_host_alloc(void) {
    void *p;
    return cuMemHostAlloc(&p, 4096, 0);
}

static const struct {
    const char *name;
    CUresult (*call)(void);
} unsafe_calls[] = {
    {"cuMemAlloc", unsafe_alloc},
    {"cuMemFree", unsafe_free},
    {"cuMemcpyHtoD", unsafe_htod},
    {"cuMemcpyDtoH", unsafe_dtoh},
    {"cuMemsetD32", unsafe_memset},
    {"cuCtxSynchronize", unsafe_ctx_sync},
    {"cuStreamSynchronize of another stream", unsafe_stream_sync},
    {"cuStreamQuery of another stream", unsafe_stream_query},
    {"cuEventSynchronize", unsafe_event_sync},
    {"cuEventQuery", unsafe_event_query},
    {"cuMemAddressReserve", unsafe_reserve},
    {"cuMemCreate", unsafe_create},
    {"cuMemMap", unsafe_map},
    {"cuMemSetAccess", unsafe_set_access},
    {"cuMemUnmap", unsafe_unmap},
    {"cuMemRelease", unsafe_release},
    {"cuMemHostAlloc", unsafe_host_alloc},
};
#define NUNSAFE (sizeof unsafe_calls / sizeof unsafe_calls[0])

static void fixture_make(void) {
    CUmemAllocationProp p = prop();
    CUmemAccessDesc a = rw();
    CHECK_CU(cuStreamCreate(&fx.other, CU_STREAM_NON_BLOCKING));
    CHECK_CU(cuEventCreate(&fx.done, CU_EVENT_DISABLE_TIMING));
    CHECK_CU(cuEventRecord(fx.done, fx.other));
    CHECK_CU(cuMemAlloc(&fx.d, 64));
    CHECK_CU(cuMemAddressReserve(&fx.va, GRAN, 0, 0, 0));
    CHECK_CU(cuMemCreate(&fx.h, GRAN, &p, 0));
    CHECK_CU(cuMemAddressReserve(&fx.mapped_va, GRAN, 0, 0, 0));
    CHECK_CU(cuMemCreate(&fx.mapped_h, GRAN, &p, 0));
    CHECK_CU(cuMemMap(fx.mapped_va, GRAN, 0, fx.mapped_h, 0));
    CHECK_CU(cuMemSetAccess(fx.mapped_va, GRAN, &a, 1));
}

static void fixture_free(void) {
    CHECK_CU(cuMemUnmap(fx.mapped_va, GRAN));
    CHECK_CU(cuMemRelease(fx.mapped_h));
    CHECK_CU(cuMemRelease(fx.h));
    CHECK_CU(cuMemAddressFree(fx.mapped_va, GRAN));
    CHECK_CU(cuMemAddressFree(fx.va, GRAN));
    CHECK_CU(cuMemFree(fx.d));
    CHECK_CU(cuEventDestroy(fx.done));
    CHECK_CU(cuStreamDestroy(fx.other));
}

/* A GLOBAL or THREAD_LOCAL capture: each potentially unsafe call of the capturing thread
 * fails with CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, changes nothing, and invalidates the
 * capture. */
TEST(unsafe_calls_fail_and_invalidate) {
    CUstream s;
    CHECK_CU(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    fixture_make();
    const CUstreamCaptureMode modes[] = {CU_STREAM_CAPTURE_MODE_GLOBAL,
                                         CU_STREAM_CAPTURE_MODE_THREAD_LOCAL};
    for (int m = 0; m < 2; m++)
        for (size_t i = 0; i < NUNSAFE; i++) {
            CHECK_CU(cuStreamBeginCapture(s, modes[m]));
            CHECK_CU(sim_test_fill(s, fx.d, 4, 1));
            CUresult r = unsafe_calls[i].call();
            if (r != CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED)
                fprintf(stderr, "mode %d: %s returned %d\n", m, unsafe_calls[i].name, r);
            CHECK_EQ_U64(r, CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
            CUstreamCaptureStatus st;
            CHECK_CU(cuStreamIsCapturing(s, &st));
            CHECK_EQ_U64(st, CU_STREAM_CAPTURE_STATUS_INVALIDATED);
            /* later captured work fails too */
            CHECK_EQ_U64(sim_test_fill(s, fx.d, 4, 1), CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
            CHECK(sim_test_end_capture(s, CUDA_ERROR_STREAM_CAPTURE_INVALIDATED));
        }
    /* nothing was changed: the fixture is intact and usable */
    CHECK_CU(sim_test_landed(cuMemsetD32(fx.d, 5, 4)));
    CHECK_EQ_U64(sim_test_word(fx.d), 5);
    fixture_free();
    cuStreamDestroy(s);
}

/* RELAXED capture, or a thread in RELAXED mode: the same calls are allowed. */
TEST(relaxed_allows_unsafe_calls) {
    CUstream s;
    CHECK_CU(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    for (int how = 0; how < 2; how++) {
        fixture_make();
        CHECK_CU(cuStreamBeginCapture(s, how == 0 ? CU_STREAM_CAPTURE_MODE_RELAXED
                                                  : CU_STREAM_CAPTURE_MODE_GLOBAL));
        CUstreamCaptureMode mode = CU_STREAM_CAPTURE_MODE_RELAXED;
        if (how == 1) {
            CHECK_CU(cuThreadExchangeStreamCaptureMode(&mode));
            CHECK_EQ_U64(mode, CU_STREAM_CAPTURE_MODE_GLOBAL); /* the default */
        }
        CHECK_CU(sim_test_fill(s, fx.d, 4, 1));
        for (size_t i = 0; i < NUNSAFE; i++) {
            if (unsafe_calls[i].call == unsafe_free || unsafe_calls[i].call == unsafe_release ||
                unsafe_calls[i].call == unsafe_unmap)
                continue; /* the fixture still needs them; allowed as the others are */
            if (unsafe_calls[i].call == unsafe_ctx_sync)
                continue; /* its context captures: a conflict in every mode */
            CUresult r = unsafe_calls[i].call();
            if (r != CUDA_SUCCESS)
                fprintf(stderr, "relaxed (%d): %s returned %d\n", how, unsafe_calls[i].name, r);
            CHECK_CU(r);
        }
        CHECK_CU(cuMemUnmap(fx.va, GRAN)); /* unsafe_map mapped it */
        if (how == 1) {
            CHECK_CU(cuThreadExchangeStreamCaptureMode(&mode));
            CHECK_EQ_U64(mode, CU_STREAM_CAPTURE_MODE_RELAXED);
            CHECK_EQ_U64(unsafe_alloc(), CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED); /* GLOBAL again */
            CHECK(sim_test_end_capture(s, CUDA_ERROR_STREAM_CAPTURE_INVALIDATED));
        } else {
            CHECK(sim_test_end_capture(s, CUDA_SUCCESS));
        }
        fixture_free();
    }
    CUstreamCaptureMode bad = (CUstreamCaptureMode)7;
    CHECK_EQ_U64(cuThreadExchangeStreamCaptureMode(&bad), CUDA_ERROR_INVALID_VALUE);
    CHECK_EQ_U64(cuThreadExchangeStreamCaptureMode(NULL), CUDA_ERROR_INVALID_VALUE);
    cuStreamDestroy(s);
}

/* Another thread's cuMemAlloc while this one captures, in the other thread's mode. */
struct other_thread {
    CUcontext ctx;
    CUstreamCaptureMode mode;
    CUresult alloc;
    CUstream capture_stream; /* non-NULL: it also tries to end that capture */
    CUresult end;
};

static void *other_thread_main(void *arg) {
    struct other_thread *t = arg;
    cuCtxSetCurrent(t->ctx);
    CUstreamCaptureMode m = t->mode;
    cuThreadExchangeStreamCaptureMode(&m);
    CUdeviceptr p = 0;
    t->alloc = cuMemAlloc(&p, 64);
    if (t->alloc == CUDA_SUCCESS)
        cuMemFree(p);
    if (t->capture_stream) {
        CUgraph g;
        t->end = cuStreamEndCapture(t->capture_stream, &g);
    }
    return NULL;
}

static CUresult alloc_in_other_thread(CUstreamCaptureMode mode, CUstream end_from_there,
                                      CUresult *end) {
    struct other_thread t = {NULL, mode, CUDA_ERROR_UNKNOWN, end_from_there, CUDA_ERROR_UNKNOWN};
    cuCtxGetCurrent(&t.ctx);
    pthread_t th;
    pthread_create(&th, NULL, other_thread_main, &t);
    pthread_join(th, NULL);
    if (end)
        *end = t.end;
    return t.alloc;
}

/* A GLOBAL capture prohibits unsafe calls of other threads in GLOBAL mode (the default);
 * a THREAD_LOCAL or RELAXED thread ignores it; a THREAD_LOCAL capture restricts only its
 * own thread. Ending a non-RELAXED capture from another thread is the wrong thread. */
TEST(modes_across_threads) {
    CUstream s;
    CUdeviceptr d;
    CHECK_CU(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    CHECK_CU(cuMemAlloc(&d, 64));

    CHECK_CU(cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_GLOBAL));
    CHECK_CU(sim_test_fill(s, d, 4, 1));
    CHECK_CU(alloc_in_other_thread(CU_STREAM_CAPTURE_MODE_THREAD_LOCAL, NULL, NULL));
    CHECK_CU(alloc_in_other_thread(CU_STREAM_CAPTURE_MODE_RELAXED, NULL, NULL));
    CUresult end = CUDA_SUCCESS;
    CHECK_CU(alloc_in_other_thread(CU_STREAM_CAPTURE_MODE_RELAXED, s, &end));
    CHECK_EQ_U64(end, CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD);
    CHECK(sim_test_end_capture(s, CUDA_SUCCESS)); /* none of it touched the capture */

    CHECK_CU(cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_GLOBAL));
    CHECK_EQ_U64(alloc_in_other_thread(CU_STREAM_CAPTURE_MODE_GLOBAL, NULL, NULL),
                 CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
    CHECK(sim_test_end_capture(s, CUDA_ERROR_STREAM_CAPTURE_INVALIDATED));

    CHECK_CU(cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL));
    CHECK_CU(alloc_in_other_thread(CU_STREAM_CAPTURE_MODE_GLOBAL, NULL, NULL));
    CHECK(sim_test_end_capture(s, CUDA_SUCCESS));

    CHECK_CU(cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_RELAXED));
    CHECK_CU(sim_test_fill(s, d, 4, 1));
    CHECK_CU(alloc_in_other_thread(CU_STREAM_CAPTURE_MODE_GLOBAL, s, &end));
    CHECK_CU(end); /* a RELAXED capture may end on any thread */
    CUgraph g;
    CHECK_EQ_U64(cuStreamEndCapture(s, &g), CUDA_ERROR_ILLEGAL_STATE);
    cuMemFree(d);
    cuStreamDestroy(s);
}

/* Conflicts in every mode, RELAXED too: synchronising or querying the capturing stream
 * or its context, querying an event recorded in the capture. Each invalidates it. */
TEST(conflicts_in_every_mode) {
    CUstream s;
    CUdeviceptr d;
    CUevent e;
    CHECK_CU(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    CHECK_CU(cuMemAlloc(&d, 64));
    CHECK_CU(cuEventCreate(&e, CU_EVENT_DISABLE_TIMING));
    for (int which = 0; which < 5; which++) {
        CHECK_CU(cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_RELAXED));
        CHECK_CU(sim_test_fill(s, d, 4, 1));
        CHECK_CU(cuEventRecord(e, s));
        CUresult r = which == 0   ? cuStreamSynchronize(s)
                     : which == 1 ? cuStreamQuery(s)
                     : which == 2 ? cuCtxSynchronize()
                     : which == 3 ? cuEventQuery(e)
                                  : cuEventSynchronize(e);
        CUresult want =
            which >= 3 ? CUDA_ERROR_CAPTURED_EVENT : CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
        if (r != want)
            fprintf(stderr, "conflict %d returned %d\n", which, r);
        CHECK_EQ_U64(r, want);
        CHECK(sim_test_end_capture(s, CUDA_ERROR_STREAM_CAPTURE_INVALIDATED));
    }
    /* a synchronous memset on the capturing per-thread stream */
    CHECK_CU(cuStreamBeginCapture(CU_STREAM_PER_THREAD, CU_STREAM_CAPTURE_MODE_RELAXED));
    CHECK_EQ_U64(cuMemsetD32_v2_ptds(d, 0, 1), CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
    CHECK(sim_test_end_capture(CU_STREAM_PER_THREAD, CUDA_ERROR_STREAM_CAPTURE_INVALIDATED));
    CHECK_CU(cuCtxSynchronize());
    cuEventDestroy(e);
    cuMemFree(d);
    cuStreamDestroy(s);
}

/* A capturing stream waiting on an event recorded outside the capture: without
 * CU_EVENT_WAIT_EXTERNAL the dependency would cross the capture's boundary
 * (CUDA_ERROR_STREAM_CAPTURE_ISOLATION, capture invalidated); with it, an event wait
 * node, and each launch of the graph waits for the event. An event never recorded stands
 * for no work; the flag outside capture is invalid. Waiting on another capture's event
 * would merge two captures. */
TEST(waits_on_outside_events) {
    CUstream s, o, t;
    CUdeviceptr x, y;
    CUevent e, fresh, other;
    CHECK_CU(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    CHECK_CU(cuStreamCreate(&o, CU_STREAM_NON_BLOCKING));
    CHECK_CU(cuStreamCreate(&t, CU_STREAM_NON_BLOCKING));
    CHECK_CU(cuMemAlloc(&x, 4));
    CHECK_CU(cuMemAlloc(&y, 4));
    CHECK_CU(cuEventCreate(&e, CU_EVENT_DISABLE_TIMING));
    CHECK_CU(cuEventCreate(&fresh, CU_EVENT_DISABLE_TIMING));
    CHECK_CU(cuEventCreate(&other, CU_EVENT_DISABLE_TIMING));
    CHECK_CU(cuEventRecord(e, o));

    CHECK_EQ_U64(cuStreamWaitEvent(s, e, CU_EVENT_WAIT_EXTERNAL), CUDA_ERROR_INVALID_VALUE);

    CHECK_CU(cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_GLOBAL));
    CHECK_EQ_U64(cuStreamWaitEvent(s, e, 0), CUDA_ERROR_STREAM_CAPTURE_ISOLATION);
    CHECK(sim_test_end_capture(s, CUDA_ERROR_STREAM_CAPTURE_INVALIDATED));

    CHECK_CU(cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_GLOBAL));
    CHECK_CU(cuStreamWaitEvent(s, fresh, 0));
    CHECK(sim_test_end_capture(s, CUDA_SUCCESS));

    CHECK_CU(cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_GLOBAL));
    CHECK_CU(cuStreamBeginCapture(t, CU_STREAM_CAPTURE_MODE_GLOBAL));
    CHECK_CU(cuEventRecord(other, t));
    CHECK_EQ_U64(cuStreamWaitEvent(s, other, 0), CUDA_ERROR_STREAM_CAPTURE_MERGE);
    CHECK(sim_test_end_capture(s, CUDA_ERROR_STREAM_CAPTURE_INVALIDATED));
    CHECK(sim_test_end_capture(t, CUDA_ERROR_STREAM_CAPTURE_INVALIDATED));

    CHECK_CU(cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_GLOBAL));
    CHECK_CU(cuStreamWaitEvent(s, e, CU_EVENT_WAIT_EXTERNAL));
    CHECK_CU(cuMemcpyDtoDAsync(y, x, 4, s));
    CUgraph g;
    CHECK_CU(cuStreamEndCapture(s, &g));
    size_t n = 0;
    CUgraphNode nodes[2];
    CHECK_CU(cuGraphGetNodes(g, NULL, &n));
    CHECK_EQ_U64(n, 2);
    CHECK_CU(cuGraphGetNodes(g, nodes, &n));
    CUgraphNodeType type;
    CHECK_CU(cuGraphNodeGetType(nodes[0], &type));
    CHECK_EQ_U64(type, CU_GRAPH_NODE_TYPE_WAIT_EVENT);
    CUgraphExec xg;
    CHECK_CU(cuGraphInstantiate(&xg, g, 0));
    for (unsigned v = 7; v < 9; v++) {
        /* x is written late on o; the launch waits for it through the event (else the
         * copy would read poison, and race with the kernel) */
        CHECK_CU(sim_test_slow_store(o, x, v, 30000));
        CHECK_CU(cuEventRecord(e, o));
        CHECK_CU(cuGraphLaunch(xg, s));
        CHECK_CU(cuStreamSynchronize(s));
        CHECK_EQ_U64(sim_test_word(y), v);
    }
    cuGraphExecDestroy(xg);
    cuGraphDestroy(g);
    cuEventDestroy(e);
    cuEventDestroy(fresh);
    cuEventDestroy(other);
    cuMemFree(x);
    cuMemFree(y);
    cuStreamDestroy(s);
    cuStreamDestroy(o);
    cuStreamDestroy(t);
}

/* Captures a fork: two branches of `us`-microsecond slow stores on a and b (b forked
 * from a and joined back), then a third node after both. Unordered, the second store goes
 * to e, an allocation of its own: the race detector counts a kernel's write as one to
 * the whole allocation its pointer points into. */
static CUgraph capture_two_branches(CUstream a, CUstream b, CUdeviceptr d, CUdeviceptr e,
                                    unsigned us, int ordered) {
    CUevent fork_ev, join_ev;
    CUgraph g = NULL;
    if (cuEventCreate(&fork_ev, CU_EVENT_DISABLE_TIMING) ||
        cuEventCreate(&join_ev, CU_EVENT_DISABLE_TIMING) ||
        cuStreamBeginCapture(a, CU_STREAM_CAPTURE_MODE_GLOBAL) || cuEventRecord(fork_ev, a) ||
        cuStreamWaitEvent(b, fork_ev, 0))
        return NULL;
    if (ordered) { /* both write d: the second after the first */
        sim_test_slow_store(a, d, 1, us);
        cuEventRecord(fork_ev, a);
        cuStreamWaitEvent(b, fork_ev, 0);
        sim_test_slow_store(b, d, 2, us);
    } else { /* d and e */
        sim_test_slow_store(a, d, 1, us);
        sim_test_slow_store(b, e, 2, us);
    }
    cuEventRecord(join_ev, b);
    cuStreamWaitEvent(a, join_ev, 0);
    cuMemcpyDtoDAsync(d + 8, d, 4, a);
    cuStreamEndCapture(a, &g);
    cuEventDestroy(fork_ev);
    cuEventDestroy(join_ev);
    return g;
}

/* Independent branches run at the same time: two 100 ms branches take about 100 ms, not
 * 200; each node starts after its dependencies (the last copy sees the first store). */
TEST(branches_run_concurrently) {
    CUstream a, b;
    CUdeviceptr d, e;
    CHECK_CU(cuStreamCreate(&a, CU_STREAM_NON_BLOCKING));
    CHECK_CU(cuStreamCreate(&b, CU_STREAM_NON_BLOCKING));
    CHECK_CU(cuMemAlloc(&d, 16));
    CHECK_CU(cuMemAlloc(&e, 4));
    CUgraph g = capture_two_branches(a, b, d, e, 100000, 0);
    CHECK(g != NULL);
    CUgraphExec x;
    CHECK_CU(cuGraphInstantiate(&x, g, 0));
    double best = 1e9;
    for (int i = 0; i < 3; i++) {
        double t0 = sim_test_now_ms();
        CHECK_CU(cuGraphLaunch(x, a));
        CHECK_CU(cuStreamSynchronize(a));
        double ms = sim_test_now_ms() - t0;
        best = ms < best ? ms : best;
        CHECK_EQ_U64(sim_test_word(d + 8), 1);
        CHECK_EQ_U64(sim_test_word(e), 2);
    }
    if (best >= 170)
        fprintf(stderr, "two 100 ms branches took %.0f ms\n", best);
    CHECK(best >= 100 && best < 170);
    cuGraphExecDestroy(x);
    cuGraphDestroy(g);
    cuMemFree(d);
    cuMemFree(e);
    cuStreamDestroy(a);
    cuStreamDestroy(b);
}

/* ---- races inside a graph: in a child (a race is sticky) ---------------------------- */

/* 0: two unordered branches memset the same bytes: a race, reported naming two graph
 * nodes. 1: the same writes ordered by an edge: none. Exit 0 when the outcome is the
 * expected one. */
static int race_child(int scenario) {
    if (!sim_test_setup())
        return 2;
    CUstream a, b;
    CUdeviceptr d;
    CUevent fork_ev, join_ev;
    CUgraph g;
    CUgraphExec x;
    if (cuStreamCreate(&a, CU_STREAM_NON_BLOCKING) || cuStreamCreate(&b, CU_STREAM_NON_BLOCKING) ||
        cuMemAlloc(&d, 64) || cuEventCreate(&fork_ev, 0) || cuEventCreate(&join_ev, 0))
        return 3;
    if (cuStreamBeginCapture(a, CU_STREAM_CAPTURE_MODE_GLOBAL) || cuEventRecord(fork_ev, a) ||
        cuStreamWaitEvent(b, fork_ev, 0) || cuMemsetD32Async(d, 1, 16, a))
        return 4;
    if (scenario == 1 && (cuEventRecord(fork_ev, a) || cuStreamWaitEvent(b, fork_ev, 0)))
        return 5;
    if (cuMemsetD32Async(d, 2, 16, b) || cuEventRecord(join_ev, b) ||
        cuStreamWaitEvent(a, join_ev, 0) || cuStreamEndCapture(a, &g) ||
        cuGraphInstantiate(&x, g, 0))
        return 6;
    CUresult r = cuGraphLaunch(x, a);
    if (r == CUDA_SUCCESS)
        r = cuStreamSynchronize(a);
    if (scenario == 1)
        return r == CUDA_SUCCESS && sim_test_word(d + 60) == 2 ? 0 : 7;
    return r == CUDA_ERROR_ILLEGAL_ADDRESS ? 0 : 8;
}

TEST(unordered_branches_race) {
    int status = 0;
    const char *err = sim_test_race_child("test_sim_capture", 0, &status);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    const char *line = strstr(err, "simcuda: race: ");
    CHECK(line && strstr(line, "cuMemsetD32Async") && strstr(line, "graph node 1") &&
          strstr(line, "graph node 0"));
    CHECK(line && !strstr(line + 1, "simcuda: race: "));
    if (check_current_failed)
        fprintf(stderr, "status %d: %s\n", status, err);
}

TEST(branches_ordered_by_edges_do_not_race) {
    int status = 0;
    const char *err = sim_test_race_child("test_sim_capture", 1, &status);
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
    RUN(unsafe_calls_fail_and_invalidate);
    RUN(relaxed_allows_unsafe_calls);
    RUN(modes_across_threads);
    RUN(conflicts_in_every_mode);
    RUN(waits_on_outside_events);
    RUN(branches_run_concurrently);
    RUN(unordered_branches_race);
    RUN(branches_ordered_by_edges_do_not_race);
    return check_summary();
}
