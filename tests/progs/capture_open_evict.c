/*
 * capture_open_evict.c — evictions while another thread's capture is open.
 *
 * A was written on a worker thread's per-thread default stream (which no other thread can
 * name), B on stream s before s began capturing, F on stream t before t joined the
 * capture (waiting on an event recorded in it); s and t captured memsets of D, and the
 * capture stays open. With a 32 MiB budget, allocating C, E and H needs A, B and F
 * evicted while the capture is open: A after the worker's last work (its per-thread
 * stream's tail), B and F after what s and t had queued when they began or joined the
 * capture (never by recording into it). Once C, E and H are written, the capture ends and
 * its graph runs. Prints "capture: CUDA_SUCCESS"
 * and "words: ok"; the bare driver prints the same. liboffload used to keep them
 * resident until the capture ended, and ran out of memory.
 */
#include "tests/progs/prog_check.h"

#include <cuda.h>
#include <pthread.h>
#include <stdio.h>

#define BYTES (8u << 20)
#define WORDS (BYTES / 4)

static CUcontext ctx;
static CUdeviceptr a, b, c, d, e, f, h;
static CUstream s, t;

/* The capture thread's steps: 1 begun, 2 may end (the main thread says). */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static int step;
static CUresult capture_result;

static void set_step(int n) {
    pthread_mutex_lock(&lock);
    step = n;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
}

static void wait_step(int n) {
    pthread_mutex_lock(&lock);
    while (step < n)
        pthread_cond_wait(&changed, &lock);
    pthread_mutex_unlock(&lock);
}

static void *worker_main(void *arg) {
    (void)arg;
    PROG_CHECK_CU(cuCtxSetCurrent(ctx));
    PROG_CHECK_CU(cuMemsetD32Async(a, 0xa1, WORDS, CU_STREAM_PER_THREAD));
    PROG_CHECK_CU(cuStreamSynchronize(CU_STREAM_PER_THREAD));
    return NULL;
}

static int check_words(CUdeviceptr p, unsigned want) {
    static unsigned host[WORDS];
    PROG_CHECK_CU(cuMemcpyDtoH(host, p, BYTES));
    for (unsigned i = 0; i < WORDS; i++)
        if (host[i] != want)
            return 0;
    return 1;
}

static void *capture_main(void *arg) {
    (void)arg;
    PROG_CHECK_CU(cuCtxSetCurrent(ctx));
    /* real work, before the capture: B on s, F on t */
    PROG_CHECK_CU(cuMemsetD32Async(b, 0xb2, WORDS, s));
    PROG_CHECK_CU(cuMemsetD32Async(f, 0xf6, WORDS, t));
    CUevent fork_ev, join_ev;
    PROG_CHECK_CU(cuEventCreate(&fork_ev, CU_EVENT_DISABLE_TIMING));
    PROG_CHECK_CU(cuEventCreate(&join_ev, CU_EVENT_DISABLE_TIMING));
    CUgraph g = NULL;
    CUgraphExec exec;
    CUresult r = cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL);
    if (r == CUDA_SUCCESS)
        r = cuMemsetD32Async(d, 0xd4, WORDS / 2, s);
    if (r == CUDA_SUCCESS) /* t joins the capture */
        r = cuEventRecord(fork_ev, s);
    if (r == CUDA_SUCCESS)
        r = cuStreamWaitEvent(t, fork_ev, 0);
    if (r == CUDA_SUCCESS)
        r = cuMemsetD32Async(d + BYTES / 2, 0xd4, WORDS / 2, t);
    if (r == CUDA_SUCCESS)
        r = cuEventRecord(join_ev, t);
    if (r == CUDA_SUCCESS)
        r = cuStreamWaitEvent(s, join_ev, 0);
    set_step(1);
    wait_step(2);
    CUresult end = cuStreamEndCapture(s, &g);
    if (r == CUDA_SUCCESS)
        r = end;
    if (r == CUDA_SUCCESS)
        r = cuGraphInstantiate(&exec, g, 0);
    if (r == CUDA_SUCCESS)
        r = cuGraphLaunch(exec, s);
    if (r == CUDA_SUCCESS)
        r = cuStreamSynchronize(s);
    if (r == CUDA_SUCCESS) /* F's memset, queued on t before it joined */
        r = cuStreamSynchronize(t);
    if (r == CUDA_SUCCESS &&
        (!check_words(d, 0xd4) || !check_words(b, 0xb2) || !check_words(f, 0xf6)))
        r = CUDA_ERROR_UNKNOWN;
    capture_result = r;
    return NULL;
}

int main(void) {
    CUdevice dev;
    ctx = prog_primary_context(&dev);
    PROG_CHECK_CU(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    PROG_CHECK_CU(cuStreamCreate(&t, CU_STREAM_NON_BLOCKING));
    PROG_CHECK_CU(cuMemAlloc(&a, BYTES));
    PROG_CHECK_CU(cuMemAlloc(&b, BYTES));
    PROG_CHECK_CU(cuMemAlloc(&d, BYTES));
    PROG_CHECK_CU(cuMemAlloc(&f, BYTES));
    pthread_t worker, capturer;
    pthread_create(&worker, NULL, worker_main, NULL);
    pthread_join(worker, NULL);
    pthread_create(&capturer, NULL, capture_main, NULL);
    wait_step(1);
    /* the capture is open: C, E and H need A, B and F evicted (D, the capture's, is newest) */
    PROG_CHECK_CU(cuMemAlloc(&c, BYTES));
    PROG_CHECK_CU(cuMemsetD32(c, 0xc3, WORDS));
    PROG_CHECK_CU(cuMemAlloc(&e, BYTES));
    PROG_CHECK_CU(cuMemsetD32(e, 0xe5, WORDS));
    PROG_CHECK_CU(cuMemAlloc(&h, BYTES));
    PROG_CHECK_CU(cuMemsetD32(h, 0x18, WORDS));
    int ok = check_words(c, 0xc3) && check_words(e, 0xe5) && check_words(h, 0x18);
    set_step(2);
    pthread_join(capturer, NULL);
    ok = ok && check_words(a, 0xa1);
    const char *name = "?";
    cuGetErrorName(capture_result, &name);
    printf("capture: %s\n", name);
    printf("words: %s\n", ok ? "ok" : "WRONG");
    return ok && capture_result == CUDA_SUCCESS ? 0 : 1;
}
