/*
 * linked_app.c — a program linked directly to libcuda.so.1 that calls the driver API as
 * ordinary code (cuMemAlloc compiles to cuMemAlloc_v2, cuMemcpyHtoD to cuMemcpyHtoD_v2,
 * ...): allocates, copies, sets, launches, queries, and verifies every byte. Its output
 * must be the same with and without liboffload.
 *
 *   linked_app [--bindings] [--fork N] [MODULE.so]
 *
 * --bindings  first print which library each driver function the program calls
 *             resolves to ("cuMemAlloc_v2 -> liboffload.so"), then run
 * --fork N    after the CUDA work, fork N children while another thread keeps copying;
 *             each child does non-CUDA work and leaves through exit() (so liboffload's
 *             exit handler runs in it) and must exit 0
 * MODULE.so   the simulator's kernel module with add_u32 (tests/progs/sim_kernels.cu);
 *             without it the launch is skipped
 */
#include "tests/progs/prog_check.h"

#include <cuda.h>
#include <dlfcn.h>
#include <libgen.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define EXPECT(cond)                                                                               \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "linked_app: %s:%d: expected %s\n", __FILE__, __LINE__, #cond);        \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

#define WORDS ((size_t)1 << 20) /* 4 MiB buffers: above the default min_size, so tracked */
#define BYTES (WORDS * sizeof(unsigned))

static void print_binding(const char *name, void *fn) {
    Dl_info info;
    const char *object = "?";
    char path[4096];
    if (dladdr(fn, &info) && info.dli_fname) {
        snprintf(path, sizeof path, "%s", info.dli_fname);
        object = basename(path);
    }
    printf("binding %s -> %s\n", name, object);
}

static void print_bindings(void) {
    /* The addresses the program's own references resolve to (through its GOT). */
    print_binding("cuMemAlloc_v2", (void *)&cuMemAlloc);
    print_binding("cuMemcpyHtoD_v2", (void *)&cuMemcpyHtoD);
    print_binding("cuMemcpyDtoHAsync_v2", (void *)&cuMemcpyDtoHAsync);
    print_binding("cuMemsetD32_v2", (void *)&cuMemsetD32);
    print_binding("cuLaunchKernel", (void *)&cuLaunchKernel);
    print_binding("cuInit", (void *)&cuInit);
}

static unsigned checksum(const unsigned *p, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

struct copier {
    CUcontext ctx;
    CUdeviceptr buf;
    atomic_int stop;
};

/* Keeps liboffload's hooks (and so the runtime's lock) busy while the main thread forks. */
static void *copy_loop(void *arg) {
    struct copier *c = arg;
    static unsigned host[4096];
    PROG_CHECK_CU(cuCtxSetCurrent(c->ctx));
    while (!atomic_load(&c->stop)) {
        PROG_CHECK_CU(cuMemcpyHtoD(c->buf, host, sizeof host));
        PROG_CHECK_CU(cuMemcpyDtoH(host, c->buf, sizeof host));
    }
    return NULL;
}

static void fork_children(CUcontext ctx, CUdeviceptr buf, int n) {
    struct copier c = {.ctx = ctx, .buf = buf};
    pthread_t thread;
    EXPECT(pthread_create(&thread, NULL, copy_loop, &c) == 0);
    int ok = 0;
    for (int i = 0; i < n; i++) {
        fflush(stdout); /* or each child would print the parent's buffered output again */
        pid_t pid = fork();
        EXPECT(pid >= 0);
        if (pid == 0) {
            /* non-CUDA work: allocation, a dlsym through liboffload's routing, a shell */
            char *p = malloc(1 << 16);
            memset(p, i, 1 << 16);
            void *fn = dlsym(RTLD_DEFAULT, "strlen");
            int rc = (fn && p[100] == (char)i) ? 0 : 3;
            free(p);
            if (i == 0)
                rc |= system("exit 0");
            exit(rc); /* exit(), not _exit(): atexit handlers run in the child */
        }
        int status;
        EXPECT(waitpid(pid, &status, 0) == pid);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
            ok++;
        else
            fprintf(stderr, "linked_app: child %d ended with status 0x%x\n", i, status);
    }
    atomic_store(&c.stop, 1);
    EXPECT(pthread_join(thread, NULL) == 0);
    printf("fork: %d of %d children exited 0\n", ok, n);
    EXPECT(ok == n);
}

int main(int argc, char **argv) {
    int forks = 0;
    const char *module_path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--bindings") == 0)
            print_bindings();
        else if (strcmp(argv[i], "--fork") == 0 && i + 1 < argc)
            forks = atoi(argv[++i]);
        else
            module_path = argv[i];
    }

    CUdevice dev;
    CUcontext ctx = prog_primary_context(&dev);

    unsigned *host = malloc(BYTES), *back = malloc(BYTES);
    EXPECT(host && back);
    for (size_t i = 0; i < WORDS; i++)
        host[i] = (unsigned)(i * 2654435761u);

    CUdeviceptr a, b, c;
    PROG_CHECK_CU(cuMemAlloc(&a, BYTES));
    PROG_CHECK_CU(cuMemAlloc(&b, BYTES));
    PROG_CHECK_CU(cuMemAlloc(&c, BYTES));

    /* sync copies and sets */
    PROG_CHECK_CU(cuMemcpyHtoD(a, host, BYTES));
    PROG_CHECK_CU(cuMemsetD32(b, 7, WORDS));
    PROG_CHECK_CU(cuMemcpyDtoD(c, a, BYTES));
    PROG_CHECK_CU(cuMemcpyDtoH(back, c, BYTES));
    EXPECT(memcmp(back, host, BYTES) == 0);
    PROG_CHECK_CU(cuMemcpyDtoH(back, b, BYTES));
    for (size_t i = 0; i < WORDS; i++)
        EXPECT(back[i] == 7);

    /* async copies and sets on a stream */
    CUstream s;
    PROG_CHECK_CU(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    PROG_CHECK_CU(cuMemsetD8Async(c, 0x5a, BYTES, s));
    PROG_CHECK_CU(cuMemcpyDtoHAsync(back, c, BYTES, s));
    PROG_CHECK_CU(cuStreamSynchronize(s));
    for (size_t i = 0; i < WORDS; i++)
        EXPECT(back[i] == 0x5a5a5a5au);
    PROG_CHECK_CU(cuMemcpyHtoDAsync(c, host, BYTES, s));
    PROG_CHECK_CU(cuMemcpyDtoDAsync(b, c, BYTES, s));
    PROG_CHECK_CU(cuMemcpyDtoHAsync(back, b, BYTES, s));
    PROG_CHECK_CU(cuStreamSynchronize(s));
    EXPECT(memcmp(back, host, BYTES) == 0);

    /* a launch: c = a + b, with b = 7 everywhere */
    unsigned expect_sum = 0;
    if (module_path) {
        CUmodule mod;
        CUfunction add;
        PROG_CHECK_CU(cuMemsetD32(b, 7, WORDS));
        PROG_CHECK_CU(cuCtxSynchronize()); /* the memset returns before it is done */
        PROG_CHECK_CU(cuModuleLoad(&mod, module_path));
        PROG_CHECK_CU(cuModuleGetFunction(&add, mod, "add_u32"));
        unsigned long long n = WORDS;
        void *params[] = {&a, &b, &c, &n};
        PROG_CHECK_CU(
            cuLaunchKernel(add, (unsigned)(WORDS / 256), 1, 1, 256, 1, 1, 0, s, params, NULL));
        PROG_CHECK_CU(cuMemcpyDtoHAsync(back, c, BYTES, s));
        PROG_CHECK_CU(cuStreamSynchronize(s));
        for (size_t i = 0; i < WORDS; i++)
            EXPECT(back[i] == host[i] + 7);
        expect_sum = checksum(back, WORDS);
        PROG_CHECK_CU(cuModuleUnload(mod));
    }

    /* more buffers than a small budget holds: each written, then all read back (under
     * liboffload with OFFLOAD_BUDGET=16MiB, earlier ones are evicted and restored) */
    CUdeviceptr extra[4];
    for (unsigned i = 0; i < 4; i++) {
        PROG_CHECK_CU(cuMemAlloc(&extra[i], BYTES));
        if (i % 2)
            PROG_CHECK_CU(cuMemsetD32Async(extra[i], 0x1000u + i, WORDS, s));
        else
            PROG_CHECK_CU(cuMemcpyHtoDAsync(extra[i], host, BYTES, s));
    }
    for (unsigned i = 0; i < 4; i++) {
        PROG_CHECK_CU(cuMemcpyDtoHAsync(back, extra[i], BYTES, s));
        PROG_CHECK_CU(cuStreamSynchronize(s));
        for (size_t w = 0; w < WORDS; w++)
            EXPECT(back[w] == (i % 2 ? 0x1000u + i : host[w]));
    }
    for (unsigned i = 0; i < 4; i++)
        PROG_CHECK_CU(cuMemFree(extra[i]));
    /* the first buffers again (restored on demand under liboffload) */
    PROG_CHECK_CU(cuMemcpyDtoH(back, c, BYTES));
    for (size_t i = 0; i < WORDS; i++)
        EXPECT(back[i] == host[i] + (module_path ? 7 : 0));

    /* pitched allocation and 2D copies: rows of 1000 bytes, 300 rows */
    CUdeviceptr pitched;
    size_t pitch;
    CUresult pitched_rc = cuMemAllocPitch(&pitched, &pitch, 1000, 300, 4);
    if (pitched_rc == CUDA_ERROR_NOT_SUPPORTED) { /* a driver without it: pitch by hand */
        pitch = 1024;
        pitched_rc = cuMemAlloc(&pitched, pitch * 300);
    }
    PROG_CHECK_CU(pitched_rc);
    EXPECT(pitch >= 1000 && pitch % 4 == 0);
    CUDA_MEMCPY2D up = {0};
    up.srcMemoryType = CU_MEMORYTYPE_HOST;
    up.srcHost = host;
    up.srcPitch = 1000;
    up.dstMemoryType = CU_MEMORYTYPE_DEVICE;
    up.dstDevice = pitched;
    up.dstPitch = pitch;
    up.WidthInBytes = 1000;
    up.Height = 300;
    PROG_CHECK_CU(cuMemcpy2D(&up));
    CUDA_MEMCPY2D down = {0};
    down.srcMemoryType = CU_MEMORYTYPE_DEVICE;
    down.srcDevice = pitched;
    down.srcPitch = pitch;
    down.dstMemoryType = CU_MEMORYTYPE_HOST;
    down.dstHost = back;
    down.dstPitch = 1000;
    down.WidthInBytes = 1000;
    down.Height = 300;
    memset(back, 0, 1000 * 300);
    PROG_CHECK_CU(cuMemcpy2D(&down));
    EXPECT(memcmp(back, host, 1000 * 300) == 0);

    /* address queries answer with the allocation, from an interior pointer */
    CUdeviceptr base = 0;
    size_t size = 0;
    PROG_CHECK_CU(cuMemGetAddressRange(&base, &size, a + 12345));
    EXPECT(base == a && size >= BYTES);
    CUdeviceptr start = 0;
    unsigned type = 0;
    PROG_CHECK_CU(cuPointerGetAttribute(&start, CU_POINTER_ATTRIBUTE_RANGE_START_ADDR, b + 99));
    PROG_CHECK_CU(cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, b + 99));
    EXPECT(start == b && type == CU_MEMORYTYPE_DEVICE);
    size_t free_bytes = 0, total_bytes = 0;
    PROG_CHECK_CU(cuMemGetInfo(&free_bytes, &total_bytes));
    EXPECT(total_bytes > 0 && free_bytes <= total_bytes);

    if (forks > 0)
        fork_children(ctx, c, forks);

    PROG_CHECK_CU(cuStreamDestroy(s));
    PROG_CHECK_CU(cuMemFree(pitched));
    PROG_CHECK_CU(cuMemFree(a));
    PROG_CHECK_CU(cuMemFree(b));
    PROG_CHECK_CU(cuMemFree(c));
    PROG_CHECK_CU(cuDevicePrimaryCtxRelease(dev));
    printf("linked_app: ok checksum=%08x launch=%08x\n", checksum(host, WORDS), expect_sum);
    free(host);
    free(back);
    return 0;
}
