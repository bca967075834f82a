/*
 * exit_inflight.c — a program that leaves while liboffload has work in flight.
 *
 *   exit_inflight exit [--mib M]          exit(0) with copies, kernels and evictions queued
 *                                         and a second thread still calling the driver
 *   exit_inflight signal-exit [--delay-ms D]   SIGALRM after D ms of busy work; the
 *                                         handler calls exit(3) (not async-signal-safe, but
 *                                         common): expect status 3
 *   exit_inflight signal-_exit [--delay-ms D]  the same with _exit(4): expect status 4
 *   exit_inflight unload LIBOFFLOAD.so    dlopen and dlclose liboffload three times, then
 *                                         work with the driver and exit(0)
 *
 * Buffers are sized so that with a 32 MiB device (or budget) liboffload is evicting when
 * the process leaves. Kernel module: stress_kernels.so next to the executable. The test
 * around it supplies the timeout: a hang is the failure this program exists to show.
 */
#include <cuda.h>
#include <dlfcn.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#define NBUF 8

static CUcontext ctx;
static CUfunction add;
static size_t bytes = (size_t)6 << 20;

static int cu_failed(CUresult r, const char *call, int line) {
    if (r == CUDA_SUCCESS)
        return 0;
    const char *name = "?";
    cuGetErrorName(r, &name);
    fprintf(stderr, "exit_inflight: line %d: %s failed: %s\n", line, call, name);
    return 1;
}
#define CU(call)                                                                                   \
    do {                                                                                           \
        if (cu_failed((call), #call, __LINE__))                                                    \
            return -1;                                                                             \
    } while (0)

static int start(const char *self) {
    char dir[PATH_MAX], module[PATH_MAX + 32];
    snprintf(dir, sizeof dir, "%s", self);
    snprintf(module, sizeof module, "%s/stress_kernels.so", dirname(dir));
    CUdevice dev;
    CUmodule mod;
    CU(cuInit(0));
    CU(cuDeviceGet(&dev, 0));
    CU(cuDevicePrimaryCtxRetain(&ctx, dev));
    CU(cuCtxSetCurrent(ctx));
    CU(cuModuleLoad(&mod, module));
    CU(cuModuleGetFunction(&add, mod, "stress_add"));
    return 0;
}

/* Queues, on `stream`, an upload and a kernel on a fresh buffer of `bytes`. Under a small
 * budget the allocation evicts earlier buffers whose work may still be queued. */
static int queue_work(CUstream stream, const void *host, CUdeviceptr *out) {
    CUdeviceptr d;
    CU(cuMemAlloc(&d, bytes));
    CU(cuMemcpyHtoDAsync(d, host, bytes, stream));
    unsigned long long n = bytes / 4;
    unsigned delta = 1;
    void *args[] = {&d, &n, &delta};
    CU(cuLaunchKernel(add, (unsigned)((n + 255) / 256), 1, 1, 256, 1, 1, 0, stream, args, NULL));
    *out = d;
    return 0;
}

static void *busy_thread(void *arg) {
    const void *host = arg;
    CUstream s;
    if (cuCtxSetCurrent(ctx) != CUDA_SUCCESS || cuStreamCreate(&s, CU_STREAM_NON_BLOCKING))
        return NULL;
    for (;;) { /* until the process goes away under it */
        CUdeviceptr d;
        if (queue_work(s, host, &d) != 0)
            return NULL;
        cuMemFree(d);
    }
}

static int mode_exit(void) {
    void *host;
    CUstream s;
    CUdeviceptr d[NBUF];
    pthread_t tid;
    CU(cuMemAllocHost(&host, bytes));
    memset(host, 0x5a, bytes);
    CU(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    if (pthread_create(&tid, NULL, busy_thread, host) != 0)
        return -1;
    for (int i = 0; i < NBUF; i++)
        if (queue_work(s, host, &d[i]) != 0)
            return -1;
    printf("exit_inflight: leaving with work in flight\n");
    fflush(stdout);
    exit(0);
}

static void on_alarm_exit(int sig) {
    (void)sig;
    exit(3);
}

static void on_alarm__exit(int sig) {
    (void)sig;
    _exit(4);
}

static int mode_signal(void (*handler)(int), long delay_ms) {
    void *host;
    CUstream s;
    CU(cuMemAllocHost(&host, bytes));
    memset(host, 0x33, bytes);
    CU(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 0}, {delay_ms / 1000, (delay_ms % 1000) * 1000}};
    setitimer(ITIMER_REAL, &it, NULL);
    /* Busy in and out of liboffload until the signal ends the process; each round
     * allocates (evicting), queues work, and frees. */
    CUdeviceptr ring[NBUF] = {0};
    for (unsigned i = 0;; i++) {
        CUdeviceptr *slot = &ring[i % NBUF];
        if (*slot)
            CU(cuMemFree(*slot));
        if (queue_work(s, host, slot) != 0)
            return -1;
    }
}

static int mode_unload(const char *lib) {
    for (int i = 0; i < 3; i++) {
        void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            fprintf(stderr, "exit_inflight: dlopen %s: %s\n", lib, dlerror());
            return -1;
        }
        if (dlclose(h) != 0) {
            fprintf(stderr, "exit_inflight: dlclose: %s\n", dlerror());
            return -1;
        }
    }
    void *host;
    CUstream s;
    CUdeviceptr d;
    CU(cuMemAllocHost(&host, bytes));
    memset(host, 0x11, bytes);
    CU(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    if (queue_work(s, host, &d) != 0)
        return -1;
    unsigned first = 0;
    CU(cuMemcpyDtoHAsync(&first, d, sizeof first, s));
    CU(cuStreamSynchronize(s));
    if (first != 0x11111111u + 1) {
        fprintf(stderr, "exit_inflight: after unloading, read %08x\n", first);
        return -1;
    }
    printf("exit_inflight: unloaded three times, driver still fine\n");
    return 0;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    long delay_ms = 200;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--delay-ms") == 0)
            delay_ms = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--mib") == 0)
            bytes = (size_t)atol(argv[i + 1]) << 20;
    }
    int known = !strcmp(mode, "exit") || !strcmp(mode, "signal-exit") ||
                !strcmp(mode, "signal-_exit") || (!strcmp(mode, "unload") && argc > 2);
    if (!known || delay_ms < 0 || bytes == 0) {
        fprintf(stderr, "usage: exit_inflight exit|signal-exit|signal-_exit [--delay-ms D] "
                        "[--mib M] | unload LIBOFFLOAD.so\n");
        return 2;
    }
    if (start(argv[0]) != 0)
        return 1;
    if (!strcmp(mode, "exit"))
        return mode_exit() ? 1 : 0;
    if (!strcmp(mode, "signal-exit"))
        return mode_signal(on_alarm_exit, delay_ms) ? 1 : 0;
    if (!strcmp(mode, "signal-_exit"))
        return mode_signal(on_alarm__exit, delay_ms) ? 1 : 0;
    return mode_unload(argv[2]) ? 1 : 0;
}
