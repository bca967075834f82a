/*
 * fork_exit.c — liboffload in a process's life events.
 *
 *   fork_exit MODULE fork   buffers under pressure, a thread keeps launching (so the
 *                           runtime lock is often held) while the main thread forks; each
 *                           child does non-CUDA work (malloc, stdio, a pipe) and exits 0.
 *                           Prints "fork: N children ok".
 *   fork_exit MODULE exit   makes liboffload start copies (evictions, prefetches) and
 *                           exits at once with them in flight. Prints "exit: leaving".
 *
 * Under a config with two components a (alloc 0) and b (alloc 1), sequence a -> b,
 * prefetch 1: every switch evicts one and prefetches the other asynchronously.
 */
#include <cuda.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MIB (1u << 20)

static CUfunction add;
static CUdeviceptr buf[2];
static unsigned long long words;
static atomic_int stop;

static int launch(int i, CUstream s) {
    unsigned delta = 1;
    void *args[] = {&buf[i], &words, &delta};
    return cuLaunchKernel(add, (unsigned)((words + 255) / 256), 1, 1, 256, 1, 1, 0, s, args,
                          NULL) != CUDA_SUCCESS;
}

static void *launcher(void *ctx) {
    cuCtxSetCurrent(ctx);
    CUstream s;
    if (cuStreamCreate(&s, CU_STREAM_NON_BLOCKING))
        return (void *)1;
    for (int i = 0; !atomic_load(&stop); i++)
        if (launch(i % 2, s) || cuStreamSynchronize(s))
            return (void *)1;
    return NULL;
}

static int child_work(void) {
    int fds[2];
    char *p = malloc(1 << 20);
    if (!p || pipe(fds))
        return 1;
    memset(p, 7, 1 << 20);
    if (write(fds[1], p, 100) != 100)
        return 1;
    char back[100];
    if (read(fds[0], back, 100) != 100 || back[99] != 7)
        return 1;
    free(p);
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 3)
        return 2;
    CUdevice dev;
    CUcontext ctx;
    CUmodule mod;
    words = 8 * MIB / 4;
    if (cuInit(0) || cuDeviceGet(&dev, 0) || cuDevicePrimaryCtxRetain(&ctx, dev) ||
        cuCtxSetCurrent(ctx) || cuModuleLoad(&mod, argv[1]) ||
        cuModuleGetFunction(&add, mod, "add_u32") || cuMemAlloc(&buf[0], 8 * MIB) ||
        cuMemAlloc(&buf[1], 8 * MIB) || cuMemsetD8(buf[0], 0, 8 * MIB) ||
        cuMemsetD8(buf[1], 0, 8 * MIB) || cuCtxSynchronize()) { /* memsets return early */
        fprintf(stderr, "fork_exit: set-up failed\n");
        return 1;
    }
    if (strcmp(argv[2], "exit") == 0) {
        /* a -> b -> a: each launch switches, evicting one buffer and prefetching the other */
        for (int i = 0; i < 3; i++)
            if (launch(i % 2, NULL))
                return 1;
        printf("exit: leaving\n");
        fflush(stdout);
        exit(0);
    }
    pthread_t t;
    if (pthread_create(&t, NULL, launcher, ctx))
        return 1;
    int ok = 0, n = 20;
    for (int i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid == 0)
            exit(child_work());
        int status = 0;
        if (pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
            WEXITSTATUS(status) == 0)
            ok++;
        usleep(2000);
    }
    atomic_store(&stop, 1);
    void *rc;
    pthread_join(t, &rc);
    printf("fork: %d children ok\n", ok);
    return ok == n && rc == NULL ? 0 : 1;
}
