/*
 * thread_reuse_evict.c — an eviction after a thread that exited left work on its
 * per-thread default stream, and a new thread took over its pthread_t.
 *
 * The first worker queues a slow host-to-device copy into A on its per-thread stream
 * and exits without waiting for it (the work still runs: a thread's exit does not undo
 * what it queued). glibc gives the second worker the first one's thread descriptor, so
 * the same pthread_self(); it writes B on its own per-thread stream and waits for it.
 * Then the main thread allocates C, which under a 16 MiB budget needs A evicted: the
 * eviction must come after the first worker's copy. liboffload named per-thread streams
 * by pthread_self(), so it took the second worker's work for the first's and ordered the
 * eviction after the wrong stream: it read A while the copy still wrote it.
 *
 * Prints "thread reused: yes|no" and "words: ok"; with SIMCUDA_PCIE_GBPS=0.1 the copy
 * takes about 80 ms.
 */
#include "tests/progs/prog_check.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define BYTES (8u << 20)
#define WORDS (BYTES / 4)

static CUcontext ctx;
static CUdeviceptr a, b, c;
static unsigned *pinned;
static pthread_t first_self, second_self;

static void *first_main(void *arg) {
    (void)arg;
    first_self = pthread_self();
    PROG_CHECK_CU(cuCtxSetCurrent(ctx));
    PROG_CHECK_CU(cuMemcpyHtoDAsync(a, pinned, BYTES, CU_STREAM_PER_THREAD));
    return NULL; /* no synchronize: the copy is still running when the thread is gone */
}

static void *second_main(void *arg) {
    (void)arg;
    second_self = pthread_self();
    PROG_CHECK_CU(cuCtxSetCurrent(ctx));
    PROG_CHECK_CU(cuMemsetD32Async(b, 0xb2, WORDS, CU_STREAM_PER_THREAD));
    PROG_CHECK_CU(cuStreamSynchronize(CU_STREAM_PER_THREAD));
    return NULL;
}

int main(void) {
    CUdevice dev;
    ctx = prog_primary_context(&dev);
    PROG_CHECK_CU(cuMemAllocHost((void **)&pinned, BYTES));
    for (unsigned i = 0; i < WORDS; i++)
        pinned[i] = 0xa1000000u + i;
    PROG_CHECK_CU(cuMemAlloc(&a, BYTES));
    PROG_CHECK_CU(cuMemAlloc(&b, BYTES));
    pthread_t t;
    pthread_create(&t, NULL, first_main, NULL);
    pthread_join(t, NULL);
    pthread_create(&t, NULL, second_main, NULL);
    pthread_join(t, NULL);
    printf("thread reused: %s\n", pthread_equal(first_self, second_self) ? "yes" : "no");
    /* A and B fill the budget: C needs one of them evicted, A first (the oldest use) */
    PROG_CHECK_CU(cuMemAlloc(&c, BYTES));
    PROG_CHECK_CU(cuMemsetD32(c, 0xc3, WORDS));
    PROG_CHECK_CU(cuCtxSynchronize());
    unsigned *host = malloc(BYTES);
    if (!host)
        return 1;
    PROG_CHECK_CU(cuMemcpyDtoH(host, a, BYTES));
    int ok = memcmp(host, pinned, BYTES) == 0;
    free(host);
    prog_check_words(b, WORDS, 0xb2, "B");
    prog_check_words(c, WORDS, 0xc3, "C");
    printf("words: %s\n", ok ? "ok" : "WRONG");
    return ok ? 0 : 1;
}
