/*
 * capture_begin_race.c — a capture that begins on one thread while liboffload, on another,
 * has looked whether any capture is open and is about to synchronise the context.
 *
 * A was written on nine streams, more users than liboffload keeps per allocation:
 * evicting it needs cuCtxSynchronize, which liboffload makes only while no capture is
 * open (it would invalidate one, in every mode). The main thread allocates C,
 * which needs A evicted; 50 ms later thread T begins a THREAD_LOCAL capture of a memset
 * on its own stream. Run with SIMCUDA_DELAY=cuCtxSynchronize:300000, the context sync
 * is still on its way when T begins: liboffload must not let a capture begin between its
 * look and its call (the fuzzer's seed 810591569968 lost a capture to this, by chance).
 * Prints "capture: CUDA_SUCCESS" (its graph wrote D as the capture said) and "words: ok"
 * (A, B, C); the bare driver prints the same.
 */
#include "tests/progs/prog_check.h"

#include <cuda.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>

#define BYTES (8u << 20)
#define WORDS (BYTES / 4)

static CUcontext ctx;
static CUdeviceptr a, b, c, d;

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A written in nine parts, each on its own stream: more users than liboffload keeps per
 * allocation, so its eviction must wait for the whole context. */
#define PARTS 9
static void write_a_on_nine_streams(void) {
    CUstream s[PARTS];
    size_t part = WORDS / PARTS + 1;
    for (int i = 0; i < PARTS; i++) {
        size_t first = (size_t)i * part, n = first + part > WORDS ? WORDS - first : part;
        PROG_CHECK_CU(cuStreamCreate(&s[i], CU_STREAM_NON_BLOCKING));
        PROG_CHECK_CU(cuMemsetD32Async(a + first * 4, 0xa1, n, s[i]));
    }
    for (int i = 0; i < PARTS; i++) /* kept: a destroyed stream is no longer a user */
        PROG_CHECK_CU(cuStreamSynchronize(s[i]));
}

static int check_words(CUdeviceptr p, unsigned want) {
    static unsigned host[WORDS];
    PROG_CHECK_CU(cuMemcpyDtoH(host, p, BYTES));
    for (unsigned i = 0; i < WORDS; i++)
        if (host[i] != want)
            return 0;
    return 1;
}

/* The capture's outcome: the first error of begin, memset, end, launch. */
static CUresult capture_result;

static void *capture_main(void *arg) {
    (void)arg;
    PROG_CHECK_CU(cuCtxSetCurrent(ctx));
    CUstream s;
    PROG_CHECK_CU(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    sleep_ms(50);
    CUgraph g = NULL;
    CUgraphExec exec;
    CUresult r = cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL);
    if (r == CUDA_SUCCESS) {
        sleep_ms(400); /* the context sync, had it been let through, has run */
        r = cuMemsetD32Async(d, 0xd4, WORDS, s);
        CUresult end = cuStreamEndCapture(s, &g);
        if (r == CUDA_SUCCESS)
            r = end;
    }
    if (r == CUDA_SUCCESS)
        r = cuGraphInstantiate(&exec, g, 0);
    if (r == CUDA_SUCCESS)
        r = cuGraphLaunch(exec, s);
    if (r == CUDA_SUCCESS)
        r = cuStreamSynchronize(s);
    if (r == CUDA_SUCCESS && !check_words(d, 0xd4))
        r = CUDA_ERROR_UNKNOWN;
    capture_result = r;
    return NULL;
}

int main(void) {
    CUdevice dev;
    ctx = prog_primary_context(&dev);
    PROG_CHECK_CU(cuMemAlloc(&a, BYTES));
    PROG_CHECK_CU(cuMemAlloc(&b, BYTES));
    PROG_CHECK_CU(cuMemsetD32(b, 0xb2, WORDS));
    pthread_t capturer;
    write_a_on_nine_streams();
    PROG_CHECK_CU(cuMemsetD32(b, 0xb3, WORDS));
    PROG_CHECK_CU(cuMemAlloc(&d, BYTES)); /* the capture's; A is the least recently used */
    pthread_create(&capturer, NULL, capture_main, NULL);
    PROG_CHECK_CU(cuMemAlloc(&c, BYTES)); /* room: A is evicted */
    PROG_CHECK_CU(cuMemsetD32(c, 0xc3, WORDS));
    pthread_join(capturer, NULL);
    const char *name = "?";
    cuGetErrorName(capture_result, &name);
    printf("capture: %s\n", name);
    int ok = check_words(a, 0xa1) && check_words(b, 0xb3) && check_words(c, 0xc3);
    printf("words: %s\n", ok ? "ok" : "WRONG");
    return ok && capture_result == CUDA_SUCCESS ? 0 : 1;
}
