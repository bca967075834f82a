/*
 * stress_threads.c — many threads, each with its own stream, allocating (sizes on both
 * sides of liboffload's 1 MiB tracking threshold), uploading, launching kernels that read
 * and write their buffers, memsetting, copying device to device, reading back and
 * freeing, for a given time. Every thread keeps a host shadow of each of its buffers and
 * checks every byte of a buffer against it after each operation. All threads also read
 * one shared buffer in their kernels, so it is used from every stream at once.
 *
 *   stress_threads [--threads T] [--seconds S] [--slots K] [--seed N] [--dtod 0|1]
 *                  [--module PATH]
 *
 * --dtod 0 leaves out device-to-device copies (to look at the other operations alone).
 * Defaults: 8 threads, 30 s, 4 live buffers per thread, module stress_kernels.so next to
 * the executable. Exit 0 only if every byte read back was right and every thread did
 * work; prints "stress_threads: ok: T threads, N operations, B bytes verified".
 * Any driver error is a failure (named on stderr): run it with a device or budget that
 * holds what one call needs (three buffers of at most 3 MiB each, per thread).
 */
#include <cuda.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_THREADS 64
#define MAX_SLOTS 16
#define COMMON_WORDS ((size_t)(1536 << 10) / 4) /* 1.5 MiB: tracked */

/* Sizes on both sides of the 1 MiB threshold, some not multiples of the granularity. */
static const size_t sizes[] = {4 << 10,    64 << 10,         700 << 10,        1 << 20,
                               1536 << 10, (2 << 20) + 4096, (3 << 20) - 4096, 3 << 20};
#define NSIZES (sizeof sizes / sizeof sizes[0])
#define MAX_BYTES ((size_t)3 << 20)

struct options {
    int threads, slots, dtod;
    double seconds;
    unsigned long long seed;
    char module[PATH_MAX];
};

struct shared {
    struct options opt;
    CUcontext ctx;
    CUfunction add, mix;
    CUdeviceptr common;
    unsigned *common_shadow;
    double deadline;
    atomic_ullong operations, verified_bytes;
    atomic_int failed;
};

struct slot {
    CUdeviceptr dev;
    size_t words;
    unsigned *shadow;
};

struct worker {
    struct shared *sh;
    int id;
    uint64_t rng;
    CUstream stream;
    unsigned *up, *down; /* pinned staging, MAX_BYTES each */
    struct slot slots[MAX_SLOTS];
    unsigned long long operations;
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t next(uint64_t *s) {
    uint64_t x = *s += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

/* Which worker this thread is, for messages (-1: the main thread). */
static _Thread_local int thread_id = -1;

static int cu_failed(CUresult r, const char *call, int line) {
    if (r == CUDA_SUCCESS)
        return 0;
    const char *name = "?";
    cuGetErrorName(r, &name);
    fprintf(stderr, "stress_threads: thread %d, line %d: %s failed: %s\n", thread_id, line, call,
            name);
    return 1;
}
#define CU(call)                                                                                   \
    do {                                                                                           \
        if (cu_failed((call), #call, __LINE__))                                                    \
            return -1;                                                                             \
    } while (0)

static unsigned grid_for(size_t words) {
    return (unsigned)((words + 255) / 256);
}

/* Reads slot s back in full and compares every byte with its shadow. */
static int verify(struct worker *w, struct slot *s, const char *after) {
    size_t bytes = s->words * 4;
    CU(cuMemcpyDtoHAsync(w->down, s->dev, bytes, w->stream));
    CU(cuStreamSynchronize(w->stream));
    if (memcmp(w->down, s->shadow, bytes) != 0) {
        size_t i = 0;
        while (w->down[i] == s->shadow[i])
            i++;
        fprintf(stderr,
                "stress_threads: thread %d: wrong data after %s: buffer of %zu bytes at 0x%llx, "
                "word %zu is %08x, want %08x\n",
                w->id, after, bytes, (unsigned long long)s->dev, i, w->down[i], s->shadow[i]);
        return -1;
    }
    atomic_fetch_add(&w->sh->verified_bytes, bytes);
    return 0;
}

static int slot_alloc(struct worker *w, struct slot *s) {
    size_t bytes = sizes[next(&w->rng) % NSIZES];
    s->words = bytes / 4;
    s->shadow = malloc(bytes);
    if (!s->shadow)
        return -1;
    CU(cuMemAlloc(&s->dev, bytes));
    unsigned salt = (unsigned)next(&w->rng);
    for (size_t i = 0; i < s->words; i++)
        s->shadow[i] = (unsigned)(i * 2654435761u) ^ salt;
    /* `up` is only rewritten after a synchronize (every operation ends with verify). */
    memcpy(w->up, s->shadow, bytes);
    CU(cuMemcpyHtoDAsync(s->dev, w->up, bytes, w->stream));
    return verify(w, s, "upload");
}

static int slot_free(struct slot *s) {
    CU(cuMemFree(s->dev));
    free(s->shadow);
    memset(s, 0, sizeof *s);
    return 0;
}

static struct slot *other_slot(struct worker *w, struct slot *not_this) {
    int k = w->sh->opt.slots, start = (int)(next(&w->rng) % (unsigned)k);
    for (int j = 0; j < k; j++) {
        struct slot *t = &w->slots[(start + j) % k];
        if (t != not_this && t->dev)
            return t;
    }
    return NULL;
}

static int one_operation(struct worker *w) {
    struct shared *sh = w->sh;
    struct slot *s = &w->slots[next(&w->rng) % (unsigned)sh->opt.slots];
    if (!s->dev)
        return slot_alloc(w, s);
    struct slot *t = other_slot(w, s);
    unsigned op = (unsigned)(next(&w->rng) % 6);
    if (op == 0)
        return slot_free(s);
    if (op == 1) { /* add, in place */
        unsigned long long n = s->words;
        unsigned delta = (unsigned)next(&w->rng);
        void *args[] = {&s->dev, &n, &delta};
        CU(cuLaunchKernel(sh->add, grid_for(n), 1, 1, 256, 1, 1, 0, w->stream, args, NULL));
        for (size_t i = 0; i < n; i++)
            s->shadow[i] += delta;
        return verify(w, s, "stress_add");
    }
    if (op == 2 && t) { /* mix: s = f(t, common) over the shorter of the two */
        unsigned long long n = s->words < t->words ? s->words : t->words, cn = COMMON_WORDS;
        unsigned key = (unsigned)next(&w->rng);
        void *args[] = {&s->dev, &t->dev, &sh->common, &n, &cn, &key};
        CU(cuLaunchKernel(sh->mix, grid_for(n), 1, 1, 256, 1, 1, 0, w->stream, args, NULL));
        for (size_t i = 0; i < n; i++)
            s->shadow[i] = (t->shadow[i] ^ key) + sh->common_shadow[i % cn];
        return verify(w, s, "stress_mix") || verify(w, t, "stress_mix (its source)");
    }
    if (op == 3) { /* memset a random part */
        size_t first = next(&w->rng) % s->words;
        size_t count = 1 + next(&w->rng) % (s->words - first);
        unsigned value = (unsigned)next(&w->rng);
        CU(cuMemsetD32Async(s->dev + first * 4, value, count, w->stream));
        for (size_t i = 0; i < count; i++)
            s->shadow[first + i] = value;
        return verify(w, s, "cuMemsetD32Async");
    }
    if (op == 4 && t && sh->opt.dtod) { /* device-to-device copy of a random part */
        size_t n = s->words < t->words ? s->words : t->words;
        size_t first = next(&w->rng) % n, count = 1 + next(&w->rng) % (n - first);
        CU(cuMemcpyDtoDAsync(s->dev + first * 4, t->dev + first * 4, count * 4, w->stream));
        memcpy(s->shadow + first, t->shadow + first, count * 4);
        return verify(w, s, "cuMemcpyDtoDAsync");
    }
    /* a synchronous upload of a random part, then a check of another buffer */
    size_t first = next(&w->rng) % s->words, count = 1 + next(&w->rng) % (s->words - first);
    for (size_t i = 0; i < count; i++)
        s->shadow[first + i] = (unsigned)next(&w->rng);
    CU(cuStreamSynchronize(w->stream));
    CU(cuMemcpyHtoD(s->dev + first * 4, s->shadow + first, count * 4));
    /* from pageable memory it returns once the source is staged, not landed */
    CU(cuStreamSynchronize(CU_STREAM_LEGACY));
    if (verify(w, s, "cuMemcpyHtoD"))
        return -1;
    return t ? verify(w, t, "cuMemcpyHtoD (another buffer)") : 0;
}

static int run_worker(struct worker *w) {
    struct shared *sh = w->sh;
    CU(cuCtxSetCurrent(sh->ctx));
    CU(cuStreamCreate(&w->stream, CU_STREAM_NON_BLOCKING));
    CU(cuMemAllocHost((void **)&w->up, MAX_BYTES));
    CU(cuMemAllocHost((void **)&w->down, MAX_BYTES));
    while (now_s() < sh->deadline && !atomic_load(&sh->failed)) {
        if (one_operation(w))
            return -1;
        w->operations++;
    }
    /* everything still alive is checked one last time, then freed */
    for (int k = 0; k < sh->opt.slots; k++)
        if (w->slots[k].dev && (verify(w, &w->slots[k], "the end") || slot_free(&w->slots[k])))
            return -1;
    CU(cuStreamDestroy(w->stream));
    CU(cuMemFreeHost(w->up));
    CU(cuMemFreeHost(w->down));
    return w->operations ? 0 : -1;
}

static void *worker_main(void *arg) {
    struct worker *w = arg;
    thread_id = w->id;
    if (run_worker(w) != 0)
        atomic_store(&w->sh->failed, 1);
    atomic_fetch_add(&w->sh->operations, w->operations);
    return NULL;
}

static int usage(void) {
    fprintf(stderr, "usage: stress_threads [--threads T] [--seconds S] [--slots K] [--seed N] "
                    "[--dtod 0|1] [--module PATH]\n");
    return 2;
}

static int parse(int argc, char **argv, struct options *o) {
    *o = (struct options){8, 4, 1, 30.0, 1, ""};
    char self[PATH_MAX];
    snprintf(self, sizeof self, "%s", argv[0]);
    snprintf(o->module, sizeof o->module, "%s/stress_kernels.so", dirname(self));
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (!v)
            return usage();
        errno = 0;
        if (strcmp(a, "--threads") == 0)
            o->threads = (int)strtol(v, &end, 10);
        else if (strcmp(a, "--seconds") == 0)
            o->seconds = strtod(v, &end);
        else if (strcmp(a, "--slots") == 0)
            o->slots = (int)strtol(v, &end, 10);
        else if (strcmp(a, "--dtod") == 0)
            o->dtod = (int)strtol(v, &end, 10);
        else if (strcmp(a, "--seed") == 0)
            o->seed = strtoull(v, &end, 10);
        else if (strcmp(a, "--module") == 0)
            snprintf(o->module, sizeof o->module, "%s", v), end = (char *)v + strlen(v);
        else
            return usage();
        if (errno || end == v || *end)
            return usage();
        i++;
    }
    if (o->threads < 1 || o->threads > MAX_THREADS || o->slots < 2 || o->slots > MAX_SLOTS ||
        !(o->seconds > 0))
        return usage();
    return 0;
}

/* Context, module, kernels and the shared buffer every thread reads. */
static int setup(struct shared *sh, CUmodule *mod) {
    CUdevice dev;
    CU(cuInit(0));
    CU(cuDeviceGet(&dev, 0));
    CU(cuDevicePrimaryCtxRetain(&sh->ctx, dev));
    CU(cuCtxSetCurrent(sh->ctx));
    CU(cuModuleLoad(mod, sh->opt.module));
    CU(cuModuleGetFunction(&sh->add, *mod, "stress_add"));
    CU(cuModuleGetFunction(&sh->mix, *mod, "stress_mix"));
    sh->common_shadow = malloc(COMMON_WORDS * 4);
    if (!sh->common_shadow)
        return -1;
    for (size_t i = 0; i < COMMON_WORDS; i++)
        sh->common_shadow[i] = (unsigned)(i * 40503u) ^ 0xc0ffee11u;
    CU(cuMemAlloc(&sh->common, COMMON_WORDS * 4));
    CU(cuMemcpyHtoD(sh->common, sh->common_shadow, COMMON_WORDS * 4));
    CU(cuStreamSynchronize(CU_STREAM_LEGACY)); /* landed before any stream reads it */
    return 0;
}

/* The shared buffer, read by every thread, is still intact; then everything goes. */
static int teardown(struct shared *sh, CUmodule mod) {
    unsigned *back = malloc(COMMON_WORDS * 4);
    if (!back)
        return -1;
    CU(cuMemcpyDtoH(back, sh->common, COMMON_WORDS * 4));
    int same = memcmp(back, sh->common_shadow, COMMON_WORDS * 4) == 0;
    free(back);
    if (!same) {
        fprintf(stderr, "stress_threads: the shared buffer changed\n");
        return -1;
    }
    CU(cuMemFree(sh->common));
    CU(cuModuleUnload(mod));
    free(sh->common_shadow);
    return 0;
}

int main(int argc, char **argv) {
    static struct shared sh;
    static struct worker w[MAX_THREADS];
    pthread_t tid[MAX_THREADS];
    CUmodule mod;
    if (parse(argc, argv, &sh.opt))
        return 2;
    if (setup(&sh, &mod))
        return 1;
    sh.deadline = now_s() + sh.opt.seconds;
    for (int t = 0; t < sh.opt.threads; t++) {
        w[t].sh = &sh;
        w[t].id = t;
        w[t].rng = sh.opt.seed * 1000003u + (uint64_t)t;
        if (pthread_create(&tid[t], NULL, worker_main, &w[t]) != 0) {
            fprintf(stderr, "stress_threads: pthread_create failed\n");
            return 1;
        }
    }
    for (int t = 0; t < sh.opt.threads; t++)
        pthread_join(tid[t], NULL);
    if (atomic_load(&sh.failed) || teardown(&sh, mod))
        return 1;
    printf("stress_threads: ok: %d threads, %llu operations, %llu bytes verified\n", sh.opt.threads,
           (unsigned long long)atomic_load(&sh.operations),
           (unsigned long long)atomic_load(&sh.verified_bytes));
    return 0;
}
