/*
 * fork_child.c — fork() while liboffload holds state and another thread hammers it.
 *
 *   fork_child [--forks N] [--mib M]
 *
 * The parent makes a few tracked allocations (more than the device holds, so there are
 * evictions in flight), starts a thread that allocates, writes and frees tracked and
 * untracked buffers without pause (so liboffload's locks are often held at the instant
 * of the fork), then forks N times. Each child does non-CUDA work (malloc, stdio, a
 * pipe back to the parent) and leaves with exit(0), which runs every atexit handler and
 * destructor — liboffload's included — in a process where only the forking thread
 * survived. A lock copied in its held state would hang the child here.
 *
 * The parent gives each child 10 s; a child that is still running is killed and
 * counted as hung. Afterwards the parent checks its own buffers. Exit 0 only if every
 * child exited 0 in time and every byte the parent wrote is still right; prints
 * "fork_child: ok: N children".
 */
#include <cuda.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NBUF 4

static atomic_int stop_hammer;
static atomic_int hammer_failed;
static atomic_ullong hammer_rounds;
static CUcontext ctx;

static int cu_failed(CUresult r, const char *call, int line) {
    if (r == CUDA_SUCCESS)
        return 0;
    const char *name = "?";
    cuGetErrorName(r, &name);
    fprintf(stderr, "fork_child: line %d: %s failed: %s\n", line, call, name);
    return 1;
}
#define CU(call)                                                                                   \
    do {                                                                                           \
        if (cu_failed((call), #call, __LINE__))                                                    \
            goto fail;                                                                             \
    } while (0)

/* Allocates, writes, reads back and frees, sizes on both sides of 1 MiB, until told. */
static void *hammer(void *arg) {
    (void)arg;
    static const size_t sizes[] = {64 << 10, 1 << 20, 3 << 20};
    unsigned char *host = malloc(3 << 20), *back = malloc(3 << 20);
    if (!host || !back)
        goto fail;
    CU(cuCtxSetCurrent(ctx));
    for (unsigned long long i = 0; !atomic_load(&stop_hammer); i++) {
        size_t n = sizes[i % 3];
        CUdeviceptr d;
        memset(host, (int)(i & 0xff), n);
        CU(cuMemAlloc(&d, n));
        CU(cuMemcpyHtoD(d, host, n));
        CU(cuMemcpyDtoH(back, d, n));
        CU(cuMemFree(d));
        if (memcmp(host, back, n) != 0) {
            fprintf(stderr, "fork_child: hammer thread read back wrong data\n");
            goto fail;
        }
        atomic_fetch_add(&hammer_rounds, 1);
    }
    free(host), free(back);
    return NULL;
fail:
    atomic_store(&hammer_failed, 1);
    free(host), free(back);
    return NULL;
}

/* What a child of a CUDA program typically does: no CUDA, some libc, then exit(). */
static void child(int fd) {
    char *p = malloc(1 << 20);
    if (!p)
        _exit(3);
    memset(p, 7, 1 << 20);
    char msg[64];
    int n = snprintf(msg, sizeof msg, "child %d ok %d\n", (int)getpid(), p[12345]);
    free(p);
    if (write(fd, msg, (size_t)n) != n)
        _exit(4);
    printf("fork_child: child %d done\n", (int)getpid());
    exit(0);
}

/* 0: exited 0; 1: exited otherwise or by a signal; 2: still running after `seconds`. */
static int reap(pid_t pid, double seconds) {
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        int status;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
                return 0;
            if (WIFSIGNALED(status))
                fprintf(stderr, "fork_child: child %d killed by signal %d\n", (int)pid,
                        WTERMSIG(status));
            else
                fprintf(stderr, "fork_child: child %d exited %d\n", (int)pid, WEXITSTATUS(status));
            return 1;
        }
        if (r < 0 && errno != EINTR)
            return 1;
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) * 1e-9 > seconds) {
            fprintf(stderr, "fork_child: child %d still running after %.0f s: hung in exit\n",
                    (int)pid, seconds);
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return 2;
        }
        usleep(2000);
    }
}

int main(int argc, char **argv) {
    int forks = 20;
    size_t bytes = (size_t)8 << 20;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--forks") == 0)
            forks = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--mib") == 0)
            bytes = (size_t)atoi(argv[i + 1]) << 20;
    }
    if (argc % 2 == 0 || forks < 1 || bytes == 0) {
        fprintf(stderr, "usage: fork_child [--forks N] [--mib M]\n");
        return 2;
    }
    CUdevice dev;
    CUdeviceptr buf[NBUF] = {0};
    unsigned char *host = malloc(bytes), *back = malloc(bytes);
    pthread_t tid;
    int bad = 0, hung = 0, started = 0;
    if (!host || !back)
        return 1;
    CU(cuInit(0));
    CU(cuDeviceGet(&dev, 0));
    CU(cuDevicePrimaryCtxRetain(&ctx, dev));
    CU(cuCtxSetCurrent(ctx));
    for (int b = 0; b < NBUF; b++) {
        memset(host, 0x40 + b, bytes);
        CU(cuMemAlloc(&buf[b], bytes));
        CU(cuMemcpyHtoD(buf[b], host, bytes));
    }
    if (pthread_create(&tid, NULL, hammer, NULL) != 0)
        return 1;
    started = 1;
    for (int i = 0; i < forks; i++) {
        int fds[2];
        if (pipe(fds) != 0)
            goto fail;
        fflush(stdout);
        pid_t pid = fork();
        if (pid < 0)
            goto fail;
        if (pid == 0) {
            close(fds[0]);
            child(fds[1]);
        }
        close(fds[1]);
        int r = reap(pid, 10.0);
        char msg[64] = "";
        ssize_t got = read(fds[0], msg, sizeof msg - 1);
        close(fds[0]);
        if (r == 0 && got <= 0) {
            fprintf(stderr, "fork_child: child %d said nothing\n", (int)pid);
            r = 1;
        }
        bad += r != 0;
        hung += r == 2;
        usleep(1000 * (unsigned)(i % 7)); /* fork at varied points of the hammer's loop */
    }
    atomic_store(&stop_hammer, 1);
    pthread_join(tid, NULL);
    started = 0;
    for (int b = 0; b < NBUF; b++) {
        memset(host, 0x40 + b, bytes);
        CU(cuMemcpyDtoH(back, buf[b], bytes));
        if (memcmp(host, back, bytes) != 0) {
            fprintf(stderr, "fork_child: parent buffer %d changed\n", b);
            bad++;
        }
        CU(cuMemFree(buf[b]));
    }
    free(host), free(back);
    host = back = NULL;
    if (bad || atomic_load(&hammer_failed)) {
        fprintf(stderr, "fork_child: %d of %d children failed (%d hung)%s\n", bad, forks, hung,
                atomic_load(&hammer_failed) ? "; the hammer thread failed" : "");
        return 1;
    }
    printf("fork_child: ok: %d children, %llu hammer rounds\n", forks,
           (unsigned long long)atomic_load(&hammer_rounds));
    return 0;
fail:
    if (started) {
        atomic_store(&stop_hammer, 1);
        pthread_join(tid, NULL);
    }
    free(host), free(back);
    return 1;
}
