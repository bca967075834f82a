/*
 * capture_unsafe.c — the program's own potentially unsafe calls during a GLOBAL capture.
 *
 * The driver refuses cuMemAlloc and cuMemFree while the calling thread captures in GLOBAL
 * mode (CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, nothing allocated or freed, the capture
 * invalidated) and allows them in a thread switched to RELAXED mode. liboffload carries
 * them out with several driver calls (room, reserve, create, map; unmap, release): it
 * must answer the same, and the memory it refused to free must still work. Prints one
 * line per call ("alloc: CUDA_ERROR_..."), then "end: ..." and "after: ok".
 */
#include "tests/progs/prog_check.h"

#include <cuda.h>
#include <pthread.h>
#include <stdio.h>

#define BYTES (8u << 20)

static const char *name(CUresult r) {
    const char *n = "?";
    cuGetErrorName(r, &n);
    return n;
}

struct relaxed_thread {
    CUcontext ctx;
    CUresult alloc, free;
};

static void *relaxed_main(void *arg) {
    struct relaxed_thread *t = arg;
    CUstreamCaptureMode mode = CU_STREAM_CAPTURE_MODE_RELAXED;
    CUdeviceptr p = 0;
    cuCtxSetCurrent(t->ctx);
    cuThreadExchangeStreamCaptureMode(&mode);
    t->alloc = cuMemAlloc(&p, BYTES);
    t->free = t->alloc == CUDA_SUCCESS ? cuMemFree(p) : CUDA_ERROR_UNKNOWN;
    return NULL;
}

int main(void) {
    CUdevice dev;
    CUcontext ctx = prog_primary_context(&dev);
    CUstream s;
    CUdeviceptr kept, fresh = 0;
    CUgraph g;
    unsigned v = 0;
    PROG_CHECK_CU(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    PROG_CHECK_CU(cuMemAlloc(&kept, BYTES));
    PROG_CHECK_CU(cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_GLOBAL));
    struct relaxed_thread t = {ctx, CUDA_ERROR_UNKNOWN, CUDA_ERROR_UNKNOWN};
    pthread_t th;
    pthread_create(&th, NULL, relaxed_main, &t);
    pthread_join(th, NULL);
    printf("relaxed thread: alloc %s, free %s\n", name(t.alloc), name(t.free));
    printf("alloc: %s\n", name(cuMemAlloc(&fresh, BYTES)));
    printf("free: %s\n", name(cuMemFree(kept)));
    g = (CUgraph)1;
    CUresult end = cuStreamEndCapture(s, &g);
    printf("end: %s, graph %s\n", name(end), g ? "returned" : "NULL");
    /* kept was not freed: it still works */
    PROG_CHECK_CU(cuMemsetD32(kept, 0x5eed, BYTES / 4));
    PROG_CHECK_CU(cuMemcpyDtoH(&v, kept + BYTES - 4, 4));
    PROG_CHECK_CU(cuMemFree(kept));
    printf("after: %s\n", v == 0x5eed ? "ok" : "wrong");
    return 0;
}
