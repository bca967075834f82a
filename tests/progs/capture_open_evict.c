/*
 * capture_open_evict.c — evictions while another thread's capture is open.
 *
 * A was written on a worker thread's per-thread default stream (which no other thread can
 * name), B on stream s before s began capturing, and s then captured a memset of D that
 * stays open. With a 24 MiB budget, allocating C, then E, needs A and B evicted while the
 * capture is open: A after the worker's last work (its per-thread stream's tail), B after
 * what s had queued when its capture began (never by recording into the capture). Once C
 * and E are written, the capture ends and its graph runs. Prints "capture: CUDA_SUCCESS"
 * and "words: ok"; the bare driver prints the same. liboffload used to keep both
 * resident until the capture ended, and ran out of memory.
 */
#include "tests/progs/prog_check.h"

#include <cuda.h>
#include <pthread.h>
#include <stdio.h>

#define BYTES (8u << 20)
#define WORDS (BYTES / 4)

static CUcontext ctx;
static CUdeviceptr a, b, c, d, e;
static CUstream s;

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
    PROG_CHECK_CU(cuMemsetD32Async(b, 0xb2, WORDS, s)); /* real work, before the capture */
    CUgraph g = NULL;
    CUgraphExec exec;
    CUresult r = cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL);
    if (r == CUDA_SUCCESS)
        r = cuMemsetD32Async(d, 0xd4, WORDS, s);
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
    if (r == CUDA_SUCCESS && (!check_words(d, 0xd4) || !check_words(b, 0xb2)))
        r = CUDA_ERROR_UNKNOWN;
    capture_result = r;
    return NULL;
}

int main(void) {
    CUdevice dev;
    ctx = prog_primary_context(&dev);
    PROG_CHECK_CU(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    PROG_CHECK_CU(cuMemAlloc(&a, BYTES));
    PROG_CHECK_CU(cuMemAlloc(&b, BYTES));
    PROG_CHECK_CU(cuMemAlloc(&d, BYTES));
    pthread_t worker, capturer;
    pthread_create(&worker, NULL, worker_main, NULL);
    pthread_join(worker, NULL);
    pthread_create(&capturer, NULL, capture_main, NULL);
    wait_step(1);
    /* the capture is open: C and E need A and B evicted (D is the capture's, and newest) */
    PROG_CHECK_CU(cuMemAlloc(&c, BYTES));
    PROG_CHECK_CU(cuMemsetD32(c, 0xc3, WORDS));
    PROG_CHECK_CU(cuMemAlloc(&e, BYTES));
    PROG_CHECK_CU(cuMemsetD32(e, 0xe5, WORDS));
    int ok = check_words(c, 0xc3) && check_words(e, 0xe5);
    set_step(2);
    pthread_join(capturer, NULL);
    ok = ok && check_words(a, 0xa1);
    const char *name = "?";
    cuGetErrorName(capture_result, &name);
    printf("capture: %s\n", name);
    printf("words: %s\n", ok ? "ok" : "WRONG");
    return ok && capture_result == CUDA_SUCCESS ? 0 : 1;
}
