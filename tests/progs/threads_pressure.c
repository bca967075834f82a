/*
 * threads_pressure.c — several threads, each with its own stream, allocating, copying,
 * launching and verifying at the same time, with more live device memory than the device
 * (or the budget) holds. Linked to the driver directly.
 *
 *   threads_pressure MODULE [--threads T] [--buffers B] [--size MiB] [--rounds R]
 *
 * Each thread owns B buffers of `size` MiB. Every round it fills each buffer from the host,
 * adds a round-dependent value with a kernel, derives a second buffer from the first with
 * another kernel (two pointers in one launch), reads both back and checks every word.
 * Buffers are freed and reallocated every other round. Exit 0 only if every word of every
 * thread was right; prints "threads_pressure: ok T threads, N words verified".
 */
#include <cuda.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct options {
    const char *module;
    int threads, buffers, rounds;
    size_t bytes;
};

struct shared {
    struct options opt;
    CUcontext ctx;
    CUfunction add, xor_copy;
    atomic_ullong verified;
    atomic_int failed;
};

struct worker {
    struct shared *sh;
    int id;
};

#define CHECK_CU(call)                                                                             \
    do {                                                                                           \
        CUresult r_ = (call);                                                                      \
        if (r_ != CUDA_SUCCESS) {                                                                  \
            const char *name_ = "?";                                                               \
            cuGetErrorName(r_, &name_);                                                            \
            fprintf(stderr, "threads_pressure: %s:%d: %s failed: %s\n", __FILE__, __LINE__, #call, \
                    name_);                                                                        \
            goto fail;                                                                             \
        }                                                                                          \
    } while (0)

static unsigned pattern(int thread, int round, int buffer, size_t i) {
    return (unsigned)(i * 2654435761u) ^ (unsigned)(thread << 24) ^ (unsigned)(round << 16) ^
           (unsigned)buffer;
}

static void *work(void *arg) {
    struct worker *w = arg;
    struct shared *sh = w->sh;
    const struct options *o = &sh->opt;
    size_t words = o->bytes / sizeof(unsigned);
    int nb = o->buffers;
    CUdeviceptr *buf = calloc((size_t)nb, sizeof *buf);
    CUdeviceptr *derived = calloc((size_t)nb, sizeof *derived);
    unsigned *host = malloc(o->bytes);
    CUstream stream = NULL;
    if (!buf || !derived || !host)
        goto fail;
    CHECK_CU(cuCtxSetCurrent(sh->ctx));
    CHECK_CU(cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING));
    for (int round = 0; round < o->rounds; round++) {
        for (int b = 0; b < nb; b++) {
            if (!buf[b]) {
                CHECK_CU(cuMemAlloc(&buf[b], o->bytes));
                CHECK_CU(cuMemAlloc(&derived[b], o->bytes));
            }
            for (size_t i = 0; i < words; i++)
                host[i] = pattern(w->id, round, b, i);
            CHECK_CU(cuMemcpyHtoDAsync(buf[b], host, o->bytes, stream));
            /* The copy reads `host` asynchronously: wait before reusing it. */
            CHECK_CU(cuStreamSynchronize(stream));
            unsigned long long n = words;
            unsigned delta = (unsigned)(round + 1), mask = 0x5a5a5a5au ^ (unsigned)b;
            void *add_args[] = {&buf[b], &n, &delta};
            unsigned block = 256, grid = (unsigned)((words + block - 1) / block);
            CHECK_CU(cuLaunchKernel(sh->add, grid, 1, 1, block, 1, 1, 0, stream, add_args, NULL));
            void *xor_args[] = {&derived[b], &buf[b], &n, &mask};
            CHECK_CU(
                cuLaunchKernel(sh->xor_copy, grid, 1, 1, block, 1, 1, 0, stream, xor_args, NULL));
        }
        for (int b = 0; b < nb; b++) {
            unsigned delta = (unsigned)(round + 1), mask = 0x5a5a5a5au ^ (unsigned)b;
            CHECK_CU(cuMemcpyDtoHAsync(host, buf[b], o->bytes, stream));
            CHECK_CU(cuStreamSynchronize(stream));
            for (size_t i = 0; i < words; i++)
                if (host[i] != pattern(w->id, round, b, i) + delta) {
                    fprintf(stderr,
                            "threads_pressure: thread %d round %d buffer %d word %zu: %08x\n",
                            w->id, round, b, i, host[i]);
                    goto fail;
                }
            CHECK_CU(cuMemcpyDtoHAsync(host, derived[b], o->bytes, stream));
            CHECK_CU(cuStreamSynchronize(stream));
            for (size_t i = 0; i < words; i++)
                if (host[i] != ((pattern(w->id, round, b, i) + delta) ^ mask)) {
                    fprintf(stderr, "threads_pressure: thread %d round %d derived %d word %zu\n",
                            w->id, round, b, i);
                    goto fail;
                }
            atomic_fetch_add(&sh->verified, 2 * words);
        }
        if (round % 2 == 1)
            for (int b = 0; b < nb; b++) {
                CHECK_CU(cuMemFree(buf[b]));
                CHECK_CU(cuMemFree(derived[b]));
                buf[b] = derived[b] = 0;
            }
    }
    for (int b = 0; b < nb; b++)
        if (buf[b]) {
            CHECK_CU(cuMemFree(buf[b]));
            CHECK_CU(cuMemFree(derived[b]));
        }
    CHECK_CU(cuStreamDestroy(stream));
    free(buf), free(derived), free(host);
    return NULL;
fail:
    atomic_store(&sh->failed, 1);
    free(buf), free(derived), free(host);
    return NULL;
}

int main(int argc, char **argv) {
    struct shared sh;
    memset(&sh, 0, sizeof sh);
    sh.opt = (struct options){NULL, 4, 2, 3, 8u << 20};
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--threads") == 0)
            sh.opt.threads = atoi(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--buffers") == 0)
            sh.opt.buffers = atoi(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--rounds") == 0)
            sh.opt.rounds = atoi(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--size") == 0)
            sh.opt.bytes = (size_t)atoi(argv[++i]) << 20;
        else if (!sh.opt.module && argv[i][0] != '-')
            sh.opt.module = argv[i];
        else {
            fprintf(stderr, "usage: threads_pressure MODULE [--threads T] [--buffers B] "
                            "[--size MiB] [--rounds R]\n");
            return 2;
        }
    }
    if (!sh.opt.module || sh.opt.threads < 1 || sh.opt.threads > 64 || sh.opt.buffers < 1 ||
        sh.opt.bytes == 0) {
        fprintf(stderr, "threads_pressure: bad arguments\n");
        return 2;
    }
    CUdevice dev;
    CUmodule mod;
    pthread_t tid[64];
    struct worker w[64];
    CHECK_CU(cuInit(0));
    CHECK_CU(cuDeviceGet(&dev, 0));
    CHECK_CU(cuDevicePrimaryCtxRetain(&sh.ctx, dev));
    CHECK_CU(cuCtxSetCurrent(sh.ctx));
    CHECK_CU(cuModuleLoad(&mod, sh.opt.module));
    CHECK_CU(cuModuleGetFunction(&sh.add, mod, "add_u32"));
    CHECK_CU(cuModuleGetFunction(&sh.xor_copy, mod, "xor_copy_u32"));
    for (int t = 0; t < sh.opt.threads; t++) {
        w[t] = (struct worker){&sh, t};
        if (pthread_create(&tid[t], NULL, work, &w[t]) != 0) {
            fprintf(stderr, "threads_pressure: pthread_create failed\n");
            return 1;
        }
    }
    for (int t = 0; t < sh.opt.threads; t++)
        pthread_join(tid[t], NULL);
    if (atomic_load(&sh.failed))
        return 1;
    printf("threads_pressure: ok %d threads, %llu words verified\n", sh.opt.threads,
           (unsigned long long)atomic_load(&sh.verified));
    return 0;
fail:
    return 1;
}
