/*
 * interp.c — runs one generated driver-API program (tests/fuzz/programs/gen.py writes them).
 *
 *   interp PROGRAM KERNELS.so
 *
 * A program is a text file, one operation per line (the grammar is in README.md). Every
 * operation is a real driver call made by this process, so LD_PRELOAD=liboffload.so sees
 * exactly what it would see from a CUDA program. The interpreter adds no ordering of its
 * own: the generator made the program race-free with its events and synchronizes.
 *
 * Everything read back from the device is folded into a 64-bit hash, printed at exit as
 * "hash 0123456789abcdef" (exit 0). A driver call that fails prints
 * "error LINE CALL CUDA_ERROR_NAME" and exits 3; a malformed program exits 2.
 */
#include <cuda.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BUFS 256
#define MAX_HOST 64
#define MAX_STREAMS 256
#define MAX_EVENTS 512
#define MAX_GRAPHS 32
#define MAX_POOLS 16
#define MAX_THREADS 4
#define MAX_ARGS 48
#define GROUPS 4
#define KINDS 4

/* Stream ids with a fixed meaning; created streams are 3 and up. */
enum { STREAM_NULL = 0, STREAM_LEGACY = 1, STREAM_PER_THREAD = 2 };

enum op_kind {
    OP_STREAM,
    OP_UNSTREAM,
    OP_ALLOC,
    OP_ALLOCINFO,
    OP_FREE,
    OP_HOST,
    OP_UNHOST,
    OP_MEMSET,
    OP_MEMSET2D,
    OP_H2D,
    OP_D2D,
    OP_D2H,
    OP_COPY2D,
    OP_H2D2D,
    OP_D2H2D,
    OP_COPY3D,
    OP_BATCH,
    OP_LAUNCH,
    OP_RECORD,
    OP_WAIT,
    OP_SSYNC,
    OP_ESYNC,
    OP_CSYNC,
    OP_QUERY,
    OP_GETINFO,
    OP_CAPBEGIN,
    OP_CAPEND,
    OP_GLAUNCH,
    OP_GDESTROY,
    OP_PAR,
    OP_THREAD,
    OP_ENDPAR,
    OP_ALLOCASYNC,
    OP_FREEASYNC,
    OP_MEMPOOL,
    OP_UNPOOL,
    OP_POOLSET,
    OP_POOLTRIM,
    OP_SETPOOL,
    OP_COUNT
};

static const char *const op_names[OP_COUNT] = {
    "stream",     "unstream",  "alloc",   "allocinfo", "free",     "host",     "unhost", "memset",
    "memset2d",   "h2d",       "d2d",     "d2h",       "copy2d",   "h2d2d",    "d2h2d",  "copy3d",
    "batch",      "launch",    "record",  "wait",      "ssync",    "esync",    "csync",  "query",
    "getinfo",    "capbegin",  "capend",  "glaunch",   "gdestroy", "par",      "thread", "endpar",
    "allocasync", "freeasync", "mempool", "unpool",    "poolset",  "pooltrim", "setpool"};

struct op {
    enum op_kind kind;
    int line;
    int nargs;
    unsigned long long a[MAX_ARGS];
};

struct host_buf {
    void *p;
    size_t size;
    unsigned kind; /* 0 malloc, 1 cuMemAllocHost, 2 cuMemHostAlloc, 3 malloc + register */
};

/* What one executing host thread owns: its hash and its staging buffers for reads. */
struct thread_state {
    uint64_t hash;
    void *pinned;
    size_t pinned_size;
    void *pageable;
    size_t pageable_size;
    const struct op *ops;
    size_t count;
};

static struct op *ops;
static size_t op_count;
static CUcontext ctx;
static CUdeviceptr bufs[MAX_BUFS];
static struct host_buf hosts[MAX_HOST];
static CUstream streams[MAX_STREAMS];
static CUevent events[MAX_EVENTS];
static CUgraphExec graphs[MAX_GRAPHS];
/* Pools the program made, from 2 up: pool 0 means cuMemAllocAsync (the device's current
 * pool), 1 the device's default pool by handle. */
static CUmemoryPool pools[MAX_POOLS];
static CUfunction kernels[GROUPS][KINDS];   /* from cuModuleLoad */
static CUkernel lib_kernels[GROUPS][KINDS]; /* the same code from cuLibraryLoadFromFile */
static const char *const kernel_names[KINDS] = {"fill", "mix", "mix3", "smix"};

/* Taken for good by the first thread that ends the program: exit() is not thread-safe
 * (glibc before 2.41 runs the exit handlers and stdio's teardown in both of two threads
 * that call it at once), and under fault injection two threads of a par block can fail
 * together. The second one waits here until the process is gone. */
static pthread_mutex_t ending = PTHREAD_MUTEX_INITIALIZER;

static void die_program(int line, const char *why) {
    pthread_mutex_lock(&ending);
    fprintf(stderr, "interp: line %d: %s\n", line, why);
    exit(2);
}

/* A failed driver call ends the program, as a CUDA program checking its calls would. */
static void check(CUresult r, int line, const char *call) {
    if (r == CUDA_SUCCESS)
        return;
    pthread_mutex_lock(&ending);
    const char *name = "?";
    cuGetErrorName(r, &name);
    printf("error %d %s %s\n", line, call, name);
    fflush(stdout);
    exit(3);
}
#define CK(op, call) check((call), (op)->line, #call)

/* Built with -DINTERP_VIA_PROC (interp_proc): the entry points programs use most are
 * called through pointers from cuGetProcAddress, as the CUDA runtime calls the driver. The
 * name given to the resolver is the base name ("cuMemAlloc"); the pointer's type is that of
 * the version cuda.h maps the name to (cuMemAlloc_v2). */
#ifdef INTERP_VIA_PROC
/* clang-format off */
#define PROC_LIST(X) \
    X(cuLaunchKernel) \
    X(cuLaunchKernelEx) \
    X(cuMemcpyHtoD) \
    X(cuMemcpyHtoDAsync) \
    X(cuMemcpyDtoH) \
    X(cuMemcpyDtoHAsync) \
    X(cuMemcpyDtoDAsync) \
    X(cuMemcpyAsync) \
    X(cuMemcpy) \
    X(cuMemsetD32Async) \
    X(cuMemsetD8) \
    X(cuMemAlloc) \
    X(cuMemFree) \
    X(cuStreamSynchronize) \
    X(cuStreamWaitEvent) \
    X(cuEventRecord) \
    X(cuGraphLaunch) \
    X(cuMemcpy2DAsync) \
    X(cuMemcpyBatchAsync) \
    X(cuMemAllocAsync) \
    X(cuMemAllocFromPoolAsync) \
    X(cuMemFreeAsync)
/* clang-format on */
#define PROC_POINTER(name) static __typeof__(&name) p_##name;
PROC_LIST(PROC_POINTER)

static void resolve_entry_points(void) {
    CUdriverProcAddressQueryResult status;
#define PROC_RESOLVE(name)                                                                         \
    check(cuGetProcAddress_v2(#name, (void **)&p_##name, CUDA_VERSION,                             \
                              CU_GET_PROC_ADDRESS_DEFAULT, &status),                               \
          0, "cuGetProcAddress(" #name ")");                                                       \
    if (!p_##name) {                                                                               \
        fprintf(stderr, "interp: cuGetProcAddress(%s) gave no function\n", #name);                 \
        exit(2);                                                                                   \
    }
    PROC_LIST(PROC_RESOLVE)
}
#undef cuMemcpyHtoD
#undef cuMemcpyHtoDAsync
#undef cuMemcpyDtoH
#undef cuMemcpyDtoHAsync
#undef cuMemcpyDtoDAsync
#undef cuMemsetD8
#undef cuMemsetD32Async
#undef cuMemAlloc
#undef cuMemFree
#undef cuMemcpy2DAsync
#undef cuMemcpyBatchAsync
#undef cuEventRecord
#undef cuStreamWaitEvent
#undef cuStreamSynchronize
#undef cuLaunchKernel
#undef cuLaunchKernelEx
#undef cuMemcpyAsync
#undef cuMemcpy
#undef cuGraphLaunch
#undef cuMemAllocAsync
#undef cuMemAllocFromPoolAsync
#undef cuMemFreeAsync
#define cuLaunchKernel (*p_cuLaunchKernel)
#define cuLaunchKernelEx (*p_cuLaunchKernelEx)
#define cuMemcpyHtoD (*p_cuMemcpyHtoD)
#define cuMemcpyHtoDAsync (*p_cuMemcpyHtoDAsync)
#define cuMemcpyDtoH (*p_cuMemcpyDtoH)
#define cuMemcpyDtoHAsync (*p_cuMemcpyDtoHAsync)
#define cuMemcpyDtoDAsync (*p_cuMemcpyDtoDAsync)
#define cuMemcpyAsync (*p_cuMemcpyAsync)
#define cuMemcpy (*p_cuMemcpy)
#define cuMemsetD32Async (*p_cuMemsetD32Async)
#define cuMemsetD8 (*p_cuMemsetD8)
#define cuMemAlloc (*p_cuMemAlloc)
#define cuMemFree (*p_cuMemFree)
#define cuStreamSynchronize (*p_cuStreamSynchronize)
#define cuStreamWaitEvent (*p_cuStreamWaitEvent)
#define cuEventRecord (*p_cuEventRecord)
#define cuGraphLaunch (*p_cuGraphLaunch)
#define cuMemcpy2DAsync (*p_cuMemcpy2DAsync)
#define cuMemcpyBatchAsync (*p_cuMemcpyBatchAsync)
#define cuMemAllocAsync (*p_cuMemAllocAsync)
#define cuMemAllocFromPoolAsync (*p_cuMemAllocFromPoolAsync)
#define cuMemFreeAsync (*p_cuMemFreeAsync)
#else
static void resolve_entry_points(void) {}
#endif

static uint64_t fold(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0x9e3779b97f4a7c15ull;
        h ^= h >> 29;
    }
    for (; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

static void fold_read(struct thread_state *t, const struct op *op, const void *data, size_t n) {
    uint64_t tag[2] = {(uint64_t)op->line, n};
    t->hash = fold(t->hash, tag, sizeof tag);
    t->hash = fold(t->hash, data, n);
}

static unsigned long long arg(const struct op *op, int i) {
    if (i >= op->nargs)
        die_program(op->line, "too few arguments");
    return op->a[i];
}

static unsigned idx(const struct op *op, int i, unsigned limit) {
    unsigned long long v = arg(op, i);
    if (v >= limit)
        die_program(op->line, "index out of range");
    return (unsigned)v;
}

static CUstream stream_of(const struct op *op, int i) {
    unsigned s = idx(op, i, MAX_STREAMS);
    if (s == STREAM_NULL)
        return NULL;
    if (s == STREAM_LEGACY)
        return CU_STREAM_LEGACY;
    if (s == STREAM_PER_THREAD)
        return CU_STREAM_PER_THREAD;
    if (!streams[s])
        die_program(op->line, "stream not created");
    return streams[s];
}

static CUdeviceptr dptr(const struct op *op, int b, int off) {
    unsigned i = idx(op, b, MAX_BUFS);
    if (!bufs[i])
        die_program(op->line, "buffer not allocated");
    return bufs[i] + arg(op, off);
}

static char *hptr(const struct op *op, int h, int off) {
    unsigned i = idx(op, h, MAX_HOST);
    if (!hosts[i].p)
        die_program(op->line, "host buffer not allocated");
    return (char *)hosts[i].p + arg(op, off);
}

static CUevent event_of(const struct op *op, int i) {
    unsigned e = idx(op, i, MAX_EVENTS);
    if (!events[e])
        CK(op, cuEventCreate(&events[e], (e & 1) ? CU_EVENT_DISABLE_TIMING : CU_EVENT_DEFAULT));
    return events[e];
}

/* The thread's staging buffer for reads: pinned (async copies really are async) or not. */
static void *staging(struct thread_state *t, const struct op *op, size_t n, int pinned) {
    if (pinned) {
        if (t->pinned_size < n) {
            if (t->pinned)
                CK(op, cuMemFreeHost(t->pinned));
            CK(op, cuMemAllocHost(&t->pinned, n));
            t->pinned_size = n;
        }
        return t->pinned;
    }
    if (t->pageable_size < n) {
        free(t->pageable);
        t->pageable = malloc(n);
        if (!t->pageable)
            die_program(op->line, "out of host memory");
        t->pageable_size = n;
    }
    return t->pageable;
}

static void run_stream(const struct op *op) {
    unsigned s = idx(op, 0, MAX_STREAMS);
    if (s <= STREAM_PER_THREAD || streams[s])
        die_program(op->line, "bad stream id");
    unsigned flags = arg(op, 1) ? CU_STREAM_NON_BLOCKING : CU_STREAM_DEFAULT;
    int lo, hi;
    CK(op, cuCtxGetStreamPriorityRange(&lo, &hi));
    int prio = lo - (int)(arg(op, 2) % (unsigned)(lo - hi + 1));
    CK(op, cuStreamCreateWithPriority(&streams[s], flags, prio));
}

static void run_alloc(const struct op *op, int sized_by_info) {
    unsigned b = idx(op, 0, MAX_BUFS);
    size_t size = arg(op, 1);
    if (bufs[b])
        die_program(op->line, "buffer already allocated");
    if (sized_by_info) {
        /* As programs that take "a quarter of what is free" do; the program only uses its
         * first SIZE bytes, so the hash does not depend on what cuMemGetInfo said. */
        size_t free_b, total;
        CK(op, cuMemGetInfo(&free_b, &total));
        size_t want = free_b / 8 < 4 * size ? free_b / 8 : 4 * size;
        if (want > size)
            size = want;
    }
    CK(op, cuMemAlloc(&bufs[b], size));
}

/* mempool P LIMITED: a pool of the device's pinned memory; LIMITED gives it a maxSize it
 * never reaches, which makes it a pool liboffload leaves to the driver. */
static void run_mempool(const struct op *op) {
    unsigned p = idx(op, 0, MAX_POOLS);
    if (p < 2 || pools[p])
        die_program(op->line, "bad pool id");
    CUmemPoolProps props;
    memset(&props, 0, sizeof props);
    props.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
    props.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    props.location.id = 0;
    if (arg(op, 1))
        props.maxSize = (size_t)2 << 30;
    CK(op, cuMemPoolCreate(&pools[p], &props));
}

static CUmemoryPool pool_of(const struct op *op, int i) {
    unsigned p = idx(op, i, MAX_POOLS);
    if (p == 1) {
        CUmemoryPool def;
        CK(op, cuDeviceGetDefaultMemPool(&def, 0));
        return def;
    }
    if (p < 2 || !pools[p])
        die_program(op->line, "pool not created");
    return pools[p];
}

/* allocasync B SIZE STREAM POOL */
static void run_allocasync(const struct op *op) {
    unsigned b = idx(op, 0, MAX_BUFS);
    size_t size = arg(op, 1);
    CUstream s = stream_of(op, 2);
    if (bufs[b])
        die_program(op->line, "buffer already allocated");
    if (idx(op, 3, MAX_POOLS) == 0)
        CK(op, cuMemAllocAsync(&bufs[b], size, s));
    else
        CK(op, cuMemAllocFromPoolAsync(&bufs[b], size, pool_of(op, 3), s));
}

/* poolset P ATTR VALUE: the reuse policies take an int, the release threshold 64 bits. */
static void run_poolset(const struct op *op) {
    CUmemoryPool pool = pool_of(op, 0);
    CUmemPool_attribute attr = (CUmemPool_attribute)arg(op, 1);
    if (attr == CU_MEMPOOL_ATTR_RELEASE_THRESHOLD) {
        cuuint64_t v = arg(op, 2);
        CK(op, cuMemPoolSetAttribute(pool, attr, &v));
    } else if (attr == CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES ||
               attr == CU_MEMPOOL_ATTR_REUSE_ALLOW_OPPORTUNISTIC ||
               attr == CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES) {
        int v = arg(op, 2) != 0;
        CK(op, cuMemPoolSetAttribute(pool, attr, &v));
    } else {
        die_program(op->line, "bad pool attribute");
    }
}

static void run_host(const struct op *op) {
    unsigned h = idx(op, 0, MAX_HOST);
    size_t size = arg(op, 1);
    unsigned seed = (unsigned)arg(op, 2), kind = (unsigned)arg(op, 3) % 4;
    struct host_buf *hb = &hosts[h];
    if (hb->p)
        die_program(op->line, "host buffer already allocated");
    hb->size = size;
    hb->kind = kind;
    if (kind == 1)
        CK(op, cuMemAllocHost(&hb->p, size));
    else if (kind == 2)
        CK(op, cuMemHostAlloc(&hb->p, size, CU_MEMHOSTALLOC_PORTABLE));
    else if (!(hb->p = malloc(size)))
        die_program(op->line, "out of host memory");
    if (kind == 3)
        CK(op, cuMemHostRegister(hb->p, size, 0));
    unsigned x = seed * 2654435761u + 1;
    for (size_t i = 0; i < size; i++) {
        x = x * 1103515245u + 12345u;
        ((unsigned char *)hb->p)[i] = (unsigned char)(x >> 16);
    }
}

static void run_unhost(const struct op *op) {
    struct host_buf *hb = &hosts[idx(op, 0, MAX_HOST)];
    if (hb->kind == 1 || hb->kind == 2)
        CK(op, cuMemFreeHost(hb->p));
    else {
        if (hb->kind == 3)
            CK(op, cuMemHostUnregister(hb->p));
        free(hb->p);
    }
    hb->p = NULL;
}

static void run_memset(const struct op *op) {
    unsigned w = (unsigned)arg(op, 0);
    CUdeviceptr d = dptr(op, 1, 2);
    size_t n = arg(op, 3);
    unsigned v = (unsigned)arg(op, 4);
    CUstream s = stream_of(op, 5);
    int async = (int)arg(op, 6);
    if (w == 8)
        CK(op,
           async ? cuMemsetD8Async(d, (unsigned char)v, n, s) : cuMemsetD8(d, (unsigned char)v, n));
    else if (w == 16)
        CK(op, async ? cuMemsetD16Async(d, (unsigned short)v, n, s)
                     : cuMemsetD16(d, (unsigned short)v, n));
    else
        CK(op, async ? cuMemsetD32Async(d, v, n, s) : cuMemsetD32(d, v, n));
}

static void run_memset2d(const struct op *op) {
    unsigned w = (unsigned)arg(op, 0);
    CUdeviceptr d = dptr(op, 1, 2);
    size_t pitch = arg(op, 3), width = arg(op, 4), height = arg(op, 5);
    unsigned v = (unsigned)arg(op, 6);
    CUstream s = stream_of(op, 7);
    int async = (int)arg(op, 8);
    if (w == 8)
        CK(op, async ? cuMemsetD2D8Async(d, pitch, (unsigned char)v, width, height, s)
                     : cuMemsetD2D8(d, pitch, (unsigned char)v, width, height));
    else if (w == 16)
        CK(op, async ? cuMemsetD2D16Async(d, pitch, (unsigned short)v, width, height, s)
                     : cuMemsetD2D16(d, pitch, (unsigned short)v, width, height));
    else
        CK(op, async ? cuMemsetD2D32Async(d, pitch, v, width, height, s)
                     : cuMemsetD2D32(d, pitch, v, width, height));
}

/* MODE: 0 the synchronous typed call, 1 its Async form, 2 cuMemcpy, 3 cuMemcpyAsync. */
static void run_h2d(const struct op *op) {
    CUdeviceptr d = dptr(op, 0, 1);
    const char *h = hptr(op, 2, 3);
    size_t n = arg(op, 4);
    CUstream s = stream_of(op, 5);
    switch (arg(op, 6)) {
    case 0:
        CK(op, cuMemcpyHtoD(d, h, n));
        break;
    case 1:
        CK(op, cuMemcpyHtoDAsync(d, h, n, s));
        break;
    case 2:
        CK(op, cuMemcpy(d, (CUdeviceptr)(uintptr_t)h, n));
        break;
    default:
        CK(op, cuMemcpyAsync(d, (CUdeviceptr)(uintptr_t)h, n, s));
        break;
    }
}

static void run_d2d(const struct op *op) {
    CUdeviceptr dst = dptr(op, 0, 1), src = dptr(op, 2, 3);
    size_t n = arg(op, 4);
    CUstream s = stream_of(op, 5);
    switch (arg(op, 6)) {
    case 0:
        CK(op, cuMemcpyDtoD(dst, src, n));
        break;
    case 1:
        CK(op, cuMemcpyDtoDAsync(dst, src, n, s));
        break;
    case 2:
        CK(op, cuMemcpy(dst, src, n));
        break;
    default:
        CK(op, cuMemcpyAsync(dst, src, n, s));
        break;
    }
}

/* A read: the bytes come back to the host and go into the hash. An asynchronous read is
 * followed by a synchronize of its stream, as a program does before it looks. */
static void run_d2h(struct thread_state *t, const struct op *op) {
    CUdeviceptr d = dptr(op, 0, 1);
    size_t n = arg(op, 2);
    CUstream s = stream_of(op, 3);
    unsigned long long mode = arg(op, 4);
    void *h = staging(t, op, n, (int)arg(op, 5));
    switch (mode) {
    case 0:
        CK(op, cuMemcpyDtoH(h, d, n));
        break;
    case 1:
        CK(op, cuMemcpyDtoHAsync(h, d, n, s));
        break;
    case 2:
        CK(op, cuMemcpy((CUdeviceptr)(uintptr_t)h, d, n));
        break;
    default:
        CK(op, cuMemcpyAsync((CUdeviceptr)(uintptr_t)h, d, n, s));
        break;
    }
    if (mode == 1 || mode == 3)
        CK(op, cuStreamSynchronize(s));
    fold_read(t, op, h, n);
}

static void memcpy2d_run(const struct op *op, CUDA_MEMCPY2D *c, CUstream s, int async) {
    CK(op, async ? cuMemcpy2DAsync(c, s) : cuMemcpy2D(c));
}

static void run_copy2d(const struct op *op) {
    CUDA_MEMCPY2D c = {0};
    c.dstMemoryType = CU_MEMORYTYPE_DEVICE;
    c.dstDevice = dptr(op, 0, 1);
    c.dstPitch = arg(op, 2);
    c.srcMemoryType = (arg(op, 9) & 2) ? CU_MEMORYTYPE_UNIFIED : CU_MEMORYTYPE_DEVICE;
    c.srcDevice = dptr(op, 3, 4);
    c.srcPitch = arg(op, 5);
    c.WidthInBytes = arg(op, 6);
    c.Height = arg(op, 7);
    memcpy2d_run(op, &c, stream_of(op, 8), (int)(arg(op, 9) & 1));
}

static void run_h2d2d(const struct op *op) {
    CUDA_MEMCPY2D c = {0};
    c.dstMemoryType = CU_MEMORYTYPE_DEVICE;
    c.dstDevice = dptr(op, 0, 1);
    c.dstPitch = arg(op, 2);
    c.srcMemoryType = CU_MEMORYTYPE_HOST;
    c.srcHost = hptr(op, 3, 4);
    c.srcPitch = arg(op, 5);
    c.WidthInBytes = arg(op, 6);
    c.Height = arg(op, 7);
    memcpy2d_run(op, &c, stream_of(op, 8), (int)arg(op, 9));
}

static void run_d2h2d(struct thread_state *t, const struct op *op) {
    CUDA_MEMCPY2D c = {0};
    size_t width = arg(op, 3), height = arg(op, 4);
    int async = (int)arg(op, 6);
    c.srcMemoryType = CU_MEMORYTYPE_DEVICE;
    c.srcDevice = dptr(op, 0, 1);
    c.srcPitch = arg(op, 2);
    c.dstMemoryType = CU_MEMORYTYPE_HOST;
    c.dstHost = staging(t, op, width * height, (int)arg(op, 7));
    c.dstPitch = width;
    c.WidthInBytes = width;
    c.Height = height;
    CUstream s = stream_of(op, 5);
    memcpy2d_run(op, &c, s, async);
    if (async)
        CK(op, cuStreamSynchronize(s));
    fold_read(t, op, c.dstHost, width * height);
}

static void run_copy3d(const struct op *op) {
    CUDA_MEMCPY3D c = {0};
    c.dstMemoryType = CU_MEMORYTYPE_DEVICE;
    c.dstDevice = dptr(op, 0, 1);
    c.srcMemoryType = CU_MEMORYTYPE_DEVICE;
    c.srcDevice = dptr(op, 2, 3);
    c.WidthInBytes = arg(op, 4);
    c.Height = arg(op, 5);
    c.Depth = arg(op, 6);
    c.dstPitch = arg(op, 7);
    c.dstHeight = c.Height;
    c.srcPitch = arg(op, 8);
    c.srcHeight = c.Height;
    CUstream s = stream_of(op, 9);
    CK(op, arg(op, 10) ? cuMemcpy3DAsync(&c, s) : cuMemcpy3D(&c));
}

static void run_batch(const struct op *op) {
    CUstream s = stream_of(op, 0);
    size_t n = arg(op, 1);
    CUdeviceptr dsts[8], srcs[8];
    size_t sizes[8];
    if (n == 0 || n > 8 || op->nargs != 2 + 5 * (int)n)
        die_program(op->line, "bad batch");
    for (size_t i = 0; i < n; i++) {
        int k = 2 + 5 * (int)i;
        dsts[i] = dptr(op, k, k + 1);
        srcs[i] = dptr(op, k + 2, k + 3);
        sizes[i] = arg(op, k + 4);
    }
    CUmemcpyAttributes attr = {0};
    attr.srcAccessOrder = CU_MEMCPY_SRC_ACCESS_ORDER_STREAM;
    attr.srcLocHint.type = CU_MEM_LOCATION_TYPE_DEVICE;
    attr.dstLocHint.type = CU_MEM_LOCATION_TYPE_DEVICE;
    size_t attr_idx = 0;
    CK(op, cuMemcpyBatchAsync(dsts, srcs, sizes, n, &attr, &attr_idx, 1, s));
}

struct fz_mix_args {
    CUdeviceptr a, b;
    unsigned long long n;
    unsigned k;
};

/* The parameter layout of the function run_launch launches: a CUkernel answers only to
 * cuKernelGetParamInfo (the driver rejects it in cuFunc* calls). */
static CUresult param_info(CUfunction f, bool is_kernel, unsigned i, size_t *off, size_t *size) {
    return is_kernel ? cuKernelGetParamInfo((CUkernel)f, i, off, size)
                     : cuFuncGetParamInfo(f, i, off, size);
}

/* launch HOW GROUP KERNEL STREAM GRID BLOCK ARGS...: HOW 0 kernelParams, 1 `extra` with
 * CU_LAUNCH_PARAM_BUFFER_POINTER, 2 cuLaunchKernelEx; HOW 3-5 the same with the library's
 * CUkernel cast to CUfunction, as the CUDA runtime launches the kernels it registers. */
static void run_launch(const struct op *op) {
    unsigned how = (unsigned)arg(op, 0), kind = idx(op, 2, KINDS);
    unsigned group = idx(op, 1, GROUPS);
    bool is_kernel = how >= 3;
    CUfunction f = is_kernel ? (CUfunction)lib_kernels[group][kind] : kernels[group][kind];
    how %= 3;
    CUstream s = stream_of(op, 3);
    unsigned grid = (unsigned)arg(op, 4), block = (unsigned)arg(op, 5);
    CUdeviceptr p[3];
    unsigned long long n;
    unsigned scalar = 0;
    void *params[4];
    struct fz_mix_args sargs;
    switch (kind) {
    case 0: /* fill B OFF N SEED */
        p[0] = dptr(op, 6, 7);
        n = arg(op, 8);
        scalar = (unsigned)arg(op, 9);
        params[0] = &p[0], params[1] = &n, params[2] = &scalar;
        break;
    case 1: /* mix A AOFF B BOFF N K */
        p[0] = dptr(op, 6, 7), p[1] = dptr(op, 8, 9);
        n = arg(op, 10);
        scalar = (unsigned)arg(op, 11);
        params[0] = &p[0], params[1] = &p[1], params[2] = &n, params[3] = &scalar;
        break;
    case 2: /* mix3 A AOFF B BOFF C COFF N */
        p[0] = dptr(op, 6, 7), p[1] = dptr(op, 8, 9), p[2] = dptr(op, 10, 11);
        n = arg(op, 12);
        params[0] = &p[0], params[1] = &p[1], params[2] = &p[2], params[3] = &n;
        break;
    default: /* smix A AOFF B BOFF N K, in one struct */
        memset(&sargs, 0, sizeof sargs);
        sargs.a = dptr(op, 6, 7), sargs.b = dptr(op, 8, 9);
        sargs.n = arg(op, 10);
        sargs.k = (unsigned)arg(op, 11);
        params[0] = &sargs;
        break;
    }
    if (how == 1) {
        /* Pack the parameters where the kernel's own descriptor says they go. */
        unsigned char buf[64] = {0};
        size_t end = 0;
        for (unsigned i = 0;; i++) {
            size_t off, size;
            CUresult r = param_info(f, is_kernel, i, &off, &size);
            if (r == CUDA_ERROR_INVALID_VALUE)
                break;
            CK(op, r);
            if (off + size > sizeof buf)
                die_program(op->line, "parameters too large");
            memcpy(buf + off, params[i], size);
            end = off + size;
        }
        void *extra[] = {CU_LAUNCH_PARAM_BUFFER_POINTER, buf, CU_LAUNCH_PARAM_BUFFER_SIZE, &end,
                         CU_LAUNCH_PARAM_END};
        CK(op, cuLaunchKernel(f, grid, 1, 1, block, 1, 1, 0, s, NULL, extra));
    } else if (how == 2) {
        CUlaunchConfig cfg = {0};
        cfg.gridDimX = grid, cfg.gridDimY = 1, cfg.gridDimZ = 1;
        cfg.blockDimX = block, cfg.blockDimY = 1, cfg.blockDimZ = 1;
        cfg.hStream = s;
        CK(op, cuLaunchKernelEx(&cfg, f, params, NULL));
    } else {
        CK(op, cuLaunchKernel(f, grid, 1, 1, block, 1, 1, 0, s, params, NULL));
    }
}

static void run_capend(const struct op *op) {
    CUstream s = stream_of(op, 0);
    unsigned g = idx(op, 1, MAX_GRAPHS);
    CUgraph graph;
    CK(op, cuStreamEndCapture(s, &graph));
    if (graphs[g]) {
        CUgraphExecUpdateResultInfo info;
        CK(op, cuGraphExecUpdate(graphs[g], graph, &info));
    } else {
        CK(op, cuGraphInstantiate(&graphs[g], graph, 0));
    }
    CK(op, cuGraphDestroy(graph));
}

static void run_ops(struct thread_state *t, const struct op *list, size_t count);

struct worker {
    pthread_t tid;
    struct thread_state state;
};

static void release_staging(struct thread_state *t) {
    if (t->pinned)
        check(cuMemFreeHost(t->pinned), 0, "cuMemFreeHost(staging)");
    free(t->pageable);
    t->pinned = t->pageable = NULL;
    t->pinned_size = t->pageable_size = 0;
}

static void *worker_main(void *arg) {
    struct thread_state *t = arg;
    check(cuCtxSetCurrent(ctx), t->ops ? t->ops[0].line : 0, "cuCtxSetCurrent");
    run_ops(t, t->ops, t->count);
    release_staging(t);
    return NULL;
}

/* par / thread T / ... / endpar: thread 0 is the calling thread, the others are started
 * for the block and joined at its end; their hashes join the caller's in thread order.
 * Returns the index of the endpar. */
static size_t run_par(struct thread_state *self, const struct op *list, size_t at, size_t count) {
    struct worker w[MAX_THREADS];
    memset(w, 0, sizeof w);
    size_t i = at + 1;
    int current = -1;
    for (; i < count && list[i].kind != OP_ENDPAR; i++) {
        if (list[i].kind == OP_THREAD) {
            current = (int)idx(&list[i], 0, MAX_THREADS);
            w[current].state.ops = &list[i + 1];
            continue;
        }
        if (current < 0)
            die_program(list[i].line, "operation outside a thread block");
        w[current].state.count++;
    }
    if (i == count)
        die_program(list[at].line, "par without endpar");
    for (int k = 1; k < MAX_THREADS; k++)
        if (w[k].state.ops && pthread_create(&w[k].tid, NULL, worker_main, &w[k].state))
            die_program(list[at].line, "pthread_create failed");
    if (w[0].state.ops)
        run_ops(self, w[0].state.ops, w[0].state.count);
    for (int k = 1; k < MAX_THREADS; k++)
        if (w[k].state.ops) {
            pthread_join(w[k].tid, NULL);
            self->hash = fold(self->hash, &w[k].state.hash, sizeof w[k].state.hash);
        }
    return i;
}

static void run_ops(struct thread_state *t, const struct op *list, size_t count) {
    for (size_t i = 0; i < count; i++) {
        const struct op *op = &list[i];
        switch (op->kind) {
        case OP_STREAM:
            run_stream(op);
            break;
        case OP_UNSTREAM: {
            unsigned s = idx(op, 0, MAX_STREAMS);
            CK(op, cuStreamDestroy(stream_of(op, 0)));
            streams[s] = NULL;
            break;
        }
        case OP_ALLOC:
            run_alloc(op, 0);
            break;
        case OP_ALLOCINFO:
            run_alloc(op, 1);
            break;
        case OP_FREE: {
            unsigned b = idx(op, 0, MAX_BUFS);
            if (!bufs[b])
                die_program(op->line, "buffer not allocated");
            CK(op, cuMemFree(bufs[b]));
            bufs[b] = 0;
            break;
        }
        case OP_ALLOCASYNC:
            run_allocasync(op);
            break;
        case OP_FREEASYNC: {
            unsigned b = idx(op, 0, MAX_BUFS);
            if (!bufs[b])
                die_program(op->line, "buffer not allocated");
            CK(op, cuMemFreeAsync(bufs[b], stream_of(op, 1)));
            bufs[b] = 0;
            break;
        }
        case OP_MEMPOOL:
            run_mempool(op);
            break;
        case OP_UNPOOL: {
            CUmemoryPool pool = pool_of(op, 0);
            CK(op, cuMemPoolDestroy(pool));
            pools[op->a[0]] = NULL;
            break;
        }
        case OP_POOLSET:
            run_poolset(op);
            break;
        case OP_POOLTRIM:
            CK(op, cuMemPoolTrimTo(pool_of(op, 0), (size_t)arg(op, 1)));
            break;
        case OP_SETPOOL:
            CK(op, cuDeviceSetMemPool(0, pool_of(op, 0)));
            break;
        case OP_HOST:
            run_host(op);
            break;
        case OP_UNHOST:
            run_unhost(op);
            break;
        case OP_MEMSET:
            run_memset(op);
            break;
        case OP_MEMSET2D:
            run_memset2d(op);
            break;
        case OP_H2D:
            run_h2d(op);
            break;
        case OP_D2D:
            run_d2d(op);
            break;
        case OP_D2H:
            run_d2h(t, op);
            break;
        case OP_COPY2D:
            run_copy2d(op);
            break;
        case OP_H2D2D:
            run_h2d2d(op);
            break;
        case OP_D2H2D:
            run_d2h2d(t, op);
            break;
        case OP_COPY3D:
            run_copy3d(op);
            break;
        case OP_BATCH:
            run_batch(op);
            break;
        case OP_LAUNCH:
            run_launch(op);
            break;
        case OP_RECORD:
            CK(op, cuEventRecord(event_of(op, 0), stream_of(op, 1)));
            break;
        case OP_WAIT:
            CK(op, cuStreamWaitEvent(stream_of(op, 0), event_of(op, 1), 0));
            break;
        case OP_SSYNC:
            CK(op, cuStreamSynchronize(stream_of(op, 0)));
            break;
        case OP_ESYNC:
            CK(op, cuEventSynchronize(event_of(op, 0)));
            break;
        case OP_CSYNC:
            CK(op, cuCtxSynchronize());
            break;
        case OP_QUERY: {
            CUresult r = cuStreamQuery(stream_of(op, 0));
            if (r != CUDA_ERROR_NOT_READY)
                CK(op, r);
            break;
        }
        case OP_GETINFO: {
            size_t free_b, total;
            CK(op, cuMemGetInfo(&free_b, &total));
            break;
        }
        case OP_CAPBEGIN:
            CK(op, cuStreamBeginCapture(stream_of(op, 0), (CUstreamCaptureMode)(arg(op, 1) % 3)));
            break;
        case OP_CAPEND:
            run_capend(op);
            break;
        case OP_GLAUNCH:
            if (!graphs[idx(op, 0, MAX_GRAPHS)])
                die_program(op->line, "graph not instantiated");
            CK(op, cuGraphLaunch(graphs[op->a[0]], stream_of(op, 1)));
            break;
        case OP_GDESTROY:
            CK(op, cuGraphExecDestroy(graphs[idx(op, 0, MAX_GRAPHS)]));
            graphs[op->a[0]] = NULL;
            break;
        case OP_PAR:
            i = run_par(t, list, i, count);
            break;
        case OP_THREAD:
        case OP_ENDPAR:
            die_program(op->line, "thread/endpar outside par");
            break;
        case OP_COUNT:
            break;
        }
    }
}

static void parse(FILE *f) {
    char line[4096];
    int lineno = 0;
    size_t cap = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char *save = NULL, *tok = strtok_r(line, " \t\r\n", &save);
        if (!tok || tok[0] == '#')
            continue;
        if (lineno == 1 || !strcmp(tok, "fuzzprog"))
            continue; /* the header line */
        if (op_count == cap) {
            cap = cap ? 2 * cap : 256;
            ops = realloc(ops, cap * sizeof *ops);
            if (!ops)
                die_program(lineno, "out of memory");
        }
        struct op *op = &ops[op_count];
        memset(op, 0, sizeof *op);
        op->line = lineno;
        op->kind = OP_COUNT;
        for (int k = 0; k < OP_COUNT; k++)
            if (!strcmp(tok, op_names[k]))
                op->kind = (enum op_kind)k;
        if (op->kind == OP_COUNT)
            die_program(lineno, "unknown operation");
        while ((tok = strtok_r(NULL, " \t\r\n", &save)) && tok[0] != '#') {
            if (op->nargs == MAX_ARGS)
                die_program(lineno, "too many arguments");
            char *end;
            op->a[op->nargs++] = strtoull(tok, &end, 0);
            if (*end)
                die_program(lineno, "not a number");
        }
        op_count++;
    }
}

static void load_kernels(const char *path) {
    CUmodule mod;
    CUlibrary lib;
    check(cuModuleLoad(&mod, path), 0, "cuModuleLoad");
    check(cuLibraryLoadFromFile(&lib, path, NULL, NULL, 0, NULL, NULL, 0), 0,
          "cuLibraryLoadFromFile");
    for (int g = 0; g < GROUPS; g++)
        for (int k = 0; k < KINDS; k++) {
            char name[32];
            snprintf(name, sizeof name, "g%d_%s", g, kernel_names[k]);
            check(cuModuleGetFunction(&kernels[g][k], mod, name), 0, "cuModuleGetFunction");
            check(cuLibraryGetKernel(&lib_kernels[g][k], lib, name), 0, "cuLibraryGetKernel");
        }
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: interp PROGRAM KERNELS.so\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "r");
    if (!f) {
        perror(argv[1]);
        return 2;
    }
    parse(f);
    fclose(f);
    CUdevice dev;
    check(cuInit(0), 0, "cuInit");
    check(cuDeviceGet(&dev, 0), 0, "cuDeviceGet");
    check(cuDevicePrimaryCtxRetain(&ctx, dev), 0, "cuDevicePrimaryCtxRetain");
    check(cuCtxSetCurrent(ctx), 0, "cuCtxSetCurrent");
    resolve_entry_points();
    load_kernels(argv[2]);
    struct thread_state main_state = {.hash = 0xcbf29ce484222325ull};
    run_ops(&main_state, ops, op_count);
    check(cuCtxSynchronize(), 0, "cuCtxSynchronize(end)");
    release_staging(&main_state);
    printf("hash %016llx\n", (unsigned long long)main_state.hash);
    free(ops);
    return 0;
}
