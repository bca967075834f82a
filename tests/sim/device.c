/*
 * device.c — the one simulated device and its contexts: device queries, the primary
 * context, created contexts and the per-thread context stack.
 */
#include "tests/sim/sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CTX_MAGIC 0x43545831u
#define CTX_STACK_MAX 16

static struct {
    pthread_mutex_t lock;
    struct sim_ctx primary;
    int primary_refs;
    unsigned primary_flags;
} dev = {.lock = PTHREAD_MUTEX_INITIALIZER};

void sim_device_atfork(enum sim_fork_phase phase) {
    if (phase == SIM_FORK_PREPARE)
        pthread_mutex_lock(&dev.lock);
    else if (phase == SIM_FORK_PARENT)
        pthread_mutex_unlock(&dev.lock);
    else
        pthread_mutex_init(&dev.lock, NULL);
}

/* The calling thread's context stack; the top is the current context. */
static __thread struct sim_ctx *ctx_stack[CTX_STACK_MAX];
static __thread int ctx_depth;

struct sim_ctx *sim_ctx_current(void) {
    struct sim_ctx *c = ctx_depth ? ctx_stack[ctx_depth - 1] : NULL;
    return c && c->alive ? c : NULL;
}

int sim_ctx_valid(CUcontext c) {
    struct sim_ctx *x = (struct sim_ctx *)c;
    return x && x->magic == CTX_MAGIC && x->alive;
}

static void ctx_start(struct sim_ctx *c, int primary, unsigned flags) {
    c->magic = CTX_MAGIC;
    c->primary = primary;
    c->flags = flags;
    if (!c->legacy)
        c->legacy = sim_stream_create(c, SIM_STREAM_LEGACY, 0, 0);
    c->alive = 1;
}

/* ---- devices --------------------------------------------------------------------- */

#define CHECK_DEV(d)                                                                               \
    do {                                                                                           \
        if ((d) != 0)                                                                              \
            return CUDA_ERROR_INVALID_DEVICE;                                                      \
    } while (0)

SIM_API CUresult cuDeviceGet(CUdevice *device, int ordinal) {
    SIM_ENTER("cuDeviceGet");
    if (!device)
        return CUDA_ERROR_INVALID_VALUE;
    if (ordinal != 0)
        return CUDA_ERROR_INVALID_DEVICE;
    *device = 0;
    return CUDA_SUCCESS;
}

SIM_API CUresult cuDeviceGetCount(int *count) {
    SIM_ENTER("cuDeviceGetCount");
    if (!count)
        return CUDA_ERROR_INVALID_VALUE;
    *count = 1;
    return CUDA_SUCCESS;
}

SIM_API CUresult cuDeviceGetName(char *name, int len, CUdevice d) {
    SIM_ENTER("cuDeviceGetName");
    if (!name || len <= 0)
        return CUDA_ERROR_INVALID_VALUE;
    CHECK_DEV(d);
    snprintf(name, (size_t)len, "simcuda CPU device");
    return CUDA_SUCCESS;
}

SIM_API CUresult cuDeviceTotalMem_v2(size_t *bytes, CUdevice d) {
    SIM_ENTER("cuDeviceTotalMem_v2");
    if (!bytes)
        return CUDA_ERROR_INVALID_VALUE;
    CHECK_DEV(d);
    *bytes = sim_memory_capacity();
    return CUDA_SUCCESS;
}

static const unsigned char sim_uuid[16] = {0x51, 0x6d, 0xc0, 0xda, 0x00, 0x01, 0x40, 0x00,
                                           0x80, 0x00, 0x73, 0x69, 0x6d, 0x63, 0x75, 0x64};

SIM_API CUresult cuDeviceGetUuid_v2(CUuuid *uuid, CUdevice d) {
    SIM_ENTER("cuDeviceGetUuid_v2");
    if (!uuid)
        return CUDA_ERROR_INVALID_VALUE;
    CHECK_DEV(d);
    memcpy(uuid->bytes, sim_uuid, sizeof uuid->bytes);
    return CUDA_SUCCESS;
}

#undef cuDeviceGetUuid
SIM_API CUresult cuDeviceGetUuid(CUuuid *uuid, CUdevice d) {
    SIM_ENTER("cuDeviceGetUuid");
    if (!uuid)
        return CUDA_ERROR_INVALID_VALUE;
    CHECK_DEV(d);
    memcpy(uuid->bytes, sim_uuid, sizeof uuid->bytes);
    return CUDA_SUCCESS;
}

SIM_API CUresult cuDeviceComputeCapability(int *major, int *minor, CUdevice d) {
    SIM_ENTER("cuDeviceComputeCapability");
    if (!major || !minor)
        return CUDA_ERROR_INVALID_VALUE;
    CHECK_DEV(d);
    *major = 9;
    *minor = 0;
    return CUDA_SUCCESS;
}

/* An H100-like device; attributes not listed are 0 (unsupported features). */
static const int attributes[CU_DEVICE_ATTRIBUTE_MAX] = {
    [CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK] = 1024,
    [CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X] = 1024,
    [CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y] = 1024,
    [CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z] = 64,
    [CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X] = 2147483647,
    [CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y] = 65535,
    [CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z] = 65535,
    [CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK] = 49152,
    [CU_DEVICE_ATTRIBUTE_TOTAL_CONSTANT_MEMORY] = 65536,
    [CU_DEVICE_ATTRIBUTE_WARP_SIZE] = 32,
    [CU_DEVICE_ATTRIBUTE_MAX_PITCH] = 2147483647,
    [CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_BLOCK] = 65536,
    [CU_DEVICE_ATTRIBUTE_CLOCK_RATE] = 1755000,
    [CU_DEVICE_ATTRIBUTE_TEXTURE_ALIGNMENT] = 512,
    [CU_DEVICE_ATTRIBUTE_GPU_OVERLAP] = 1,
    [CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT] = 132,
    [CU_DEVICE_ATTRIBUTE_CAN_MAP_HOST_MEMORY] = 1,
    [CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE1D_WIDTH] = 131072,
    [CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE2D_WIDTH] = 131072,
    [CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE2D_HEIGHT] = 65536,
    [CU_DEVICE_ATTRIBUTE_SURFACE_ALIGNMENT] = 512,
    [CU_DEVICE_ATTRIBUTE_CONCURRENT_KERNELS] = 1,
    [CU_DEVICE_ATTRIBUTE_PCI_BUS_ID] = 1,
    [CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE] = 2619000,
    [CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH] = 5120,
    [CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE] = 52428800,
    [CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR] = 2048,
    [CU_DEVICE_ATTRIBUTE_ASYNC_ENGINE_COUNT] = 2,
    [CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING] = 1,
    [CU_DEVICE_ATTRIBUTE_TEXTURE_PITCH_ALIGNMENT] = 32,
    [CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR] = 9,
    [CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR] = 0,
    [CU_DEVICE_ATTRIBUTE_STREAM_PRIORITIES_SUPPORTED] = 1,
    [CU_DEVICE_ATTRIBUTE_GLOBAL_L1_CACHE_SUPPORTED] = 1,
    [CU_DEVICE_ATTRIBUTE_LOCAL_L1_CACHE_SUPPORTED] = 1,
    [CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR] = 233472,
    [CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_MULTIPROCESSOR] = 65536,
    [CU_DEVICE_ATTRIBUTE_MANAGED_MEMORY] = 0,
    [CU_DEVICE_ATTRIBUTE_HOST_NATIVE_ATOMIC_SUPPORTED] = 0,
    [CU_DEVICE_ATTRIBUTE_SINGLE_TO_DOUBLE_PRECISION_PERF_RATIO] = 2,
    [CU_DEVICE_ATTRIBUTE_COMPUTE_PREEMPTION_SUPPORTED] = 1,
    [CU_DEVICE_ATTRIBUTE_CAN_USE_HOST_POINTER_FOR_REGISTERED_MEM] = 1,
    [CU_DEVICE_ATTRIBUTE_COOPERATIVE_LAUNCH] = 1,
    [CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN] = 232448,
    [CU_DEVICE_ATTRIBUTE_CAN_FLUSH_REMOTE_WRITES] = 0,
    [CU_DEVICE_ATTRIBUTE_HOST_REGISTER_SUPPORTED] = 1,
    [CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED] = 1,
    [CU_DEVICE_ATTRIBUTE_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR_SUPPORTED] = 1,
    [CU_DEVICE_ATTRIBUTE_MAX_BLOCKS_PER_MULTIPROCESSOR] = 32,
    [CU_DEVICE_ATTRIBUTE_MAX_PERSISTING_L2_CACHE_SIZE] = 32505856,
    [CU_DEVICE_ATTRIBUTE_MAX_ACCESS_POLICY_WINDOW_SIZE] = 134213632,
    [CU_DEVICE_ATTRIBUTE_RESERVED_SHARED_MEMORY_PER_BLOCK] = 1024,
    [CU_DEVICE_ATTRIBUTE_READ_ONLY_HOST_REGISTER_SUPPORTED] = 1,
    [CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED] = 1, /* pool.c; no IPC handle types */
    [CU_DEVICE_ATTRIBUTE_DMA_BUF_SUPPORTED] = 0,
    [CU_DEVICE_ATTRIBUTE_HOST_NUMA_ID] = -1,
};

SIM_API CUresult cuDeviceGetAttribute(int *pi, CUdevice_attribute attrib, CUdevice d) {
    SIM_ENTER("cuDeviceGetAttribute");
    if (!pi || (int)attrib < 0 || attrib >= CU_DEVICE_ATTRIBUTE_MAX)
        return CUDA_ERROR_INVALID_VALUE;
    CHECK_DEV(d);
    *pi = attributes[attrib];
    return CUDA_SUCCESS;
}

SIM_API CUresult cuDeviceGetPCIBusId(char *pciBusId, int len, CUdevice d) {
    SIM_ENTER("cuDeviceGetPCIBusId");
    if (!pciBusId || len <= 0)
        return CUDA_ERROR_INVALID_VALUE;
    CHECK_DEV(d);
    snprintf(pciBusId, (size_t)len, "0000:01:00.0");
    return CUDA_SUCCESS;
}

SIM_API CUresult cuDeviceCanAccessPeer(int *canAccessPeer, CUdevice d, CUdevice peer) {
    SIM_ENTER("cuDeviceCanAccessPeer");
    if (!canAccessPeer)
        return CUDA_ERROR_INVALID_VALUE;
    CHECK_DEV(d);
    CHECK_DEV(peer);
    *canAccessPeer = 0;
    return CUDA_SUCCESS;
}

/* ---- primary context ------------------------------------------------------------- */

SIM_API CUresult cuDevicePrimaryCtxRetain(CUcontext *pctx, CUdevice d) {
    SIM_ENTER("cuDevicePrimaryCtxRetain");
    if (!pctx)
        return CUDA_ERROR_INVALID_VALUE;
    CHECK_DEV(d);
    pthread_mutex_lock(&dev.lock);
    if (dev.primary_refs++ == 0)
        ctx_start(&dev.primary, 1, dev.primary_flags);
    pthread_mutex_unlock(&dev.lock);
    *pctx = (CUcontext)&dev.primary;
    return CUDA_SUCCESS;
}

SIM_API CUresult cuDevicePrimaryCtxRelease_v2(CUdevice d) {
    SIM_ENTER("cuDevicePrimaryCtxRelease_v2");
    CHECK_DEV(d);
    CUresult r = CUDA_SUCCESS;
    pthread_mutex_lock(&dev.lock);
    if (dev.primary_refs == 0)
        r = CUDA_ERROR_INVALID_CONTEXT;
    else if (--dev.primary_refs == 0) {
        pthread_mutex_unlock(&dev.lock);
        sim_sync_all(&dev.primary);
        pthread_mutex_lock(&dev.lock);
        if (dev.primary_refs == 0)
            dev.primary.alive = 0;
    }
    pthread_mutex_unlock(&dev.lock);
    return r;
}

SIM_API CUresult cuDevicePrimaryCtxGetState(CUdevice d, unsigned int *flags, int *active) {
    SIM_ENTER("cuDevicePrimaryCtxGetState");
    if (!flags || !active)
        return CUDA_ERROR_INVALID_VALUE;
    CHECK_DEV(d);
    pthread_mutex_lock(&dev.lock);
    *flags = dev.primary_flags;
    *active = dev.primary_refs > 0;
    pthread_mutex_unlock(&dev.lock);
    return CUDA_SUCCESS;
}

SIM_API CUresult cuDevicePrimaryCtxSetFlags_v2(CUdevice d, unsigned int flags) {
    SIM_ENTER("cuDevicePrimaryCtxSetFlags_v2");
    CHECK_DEV(d);
    pthread_mutex_lock(&dev.lock);
    dev.primary_flags = flags;
    dev.primary.flags = flags;
    pthread_mutex_unlock(&dev.lock);
    return CUDA_SUCCESS;
}

SIM_API CUresult cuDevicePrimaryCtxReset_v2(CUdevice d) {
    SIM_ENTER("cuDevicePrimaryCtxReset_v2");
    CHECK_DEV(d);
    sim_sync_all(&dev.primary);
    pthread_mutex_lock(&dev.lock);
    dev.primary_refs = 0;
    dev.primary.alive = 0;
    pthread_mutex_unlock(&dev.lock);
    return CUDA_SUCCESS;
}

/* ---- created contexts ------------------------------------------------------------ */

static CUresult ctx_create(CUcontext *pctx, unsigned flags, CUdevice d) {
    if (!pctx)
        return CUDA_ERROR_INVALID_VALUE;
    CHECK_DEV(d);
    struct sim_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return CUDA_ERROR_OUT_OF_MEMORY;
    ctx_start(c, 0, flags);
    if (ctx_depth == CTX_STACK_MAX)
        return CUDA_ERROR_INVALID_CONTEXT;
    ctx_stack[ctx_depth++] = c;
    *pctx = (CUcontext)c;
    return CUDA_SUCCESS;
}

SIM_API CUresult cuCtxCreate_v2(CUcontext *pctx, unsigned int flags, CUdevice d) {
    SIM_ENTER("cuCtxCreate_v2");
    return ctx_create(pctx, flags, d);
}

SIM_API CUresult cuCtxCreate_v3(CUcontext *pctx, CUexecAffinityParam *params, int n,
                                unsigned int flags, CUdevice d) {
    SIM_ENTER("cuCtxCreate_v3");
    (void)params;
    (void)n;
    return ctx_create(pctx, flags, d);
}

SIM_API CUresult cuCtxCreate_v4(CUcontext *pctx, CUctxCreateParams *params, unsigned int flags,
                                CUdevice d) {
    SIM_ENTER("cuCtxCreate_v4");
    (void)params;
    return ctx_create(pctx, flags, d);
}

SIM_API CUresult cuCtxDestroy_v2(CUcontext ctx) {
    SIM_ENTER("cuCtxDestroy_v2");
    struct sim_ctx *c = (struct sim_ctx *)ctx;
    if (!sim_ctx_valid(ctx) || c->primary)
        return CUDA_ERROR_INVALID_CONTEXT;
    sim_sync_all(c);
    c->alive = 0;
    /* pop it wherever it is on this thread's stack */
    for (int i = 0; i < ctx_depth; i++)
        if (ctx_stack[i] == c) {
            memmove(&ctx_stack[i], &ctx_stack[i + 1], (size_t)(ctx_depth - i - 1) * sizeof c);
            ctx_depth--;
            i--;
        }
    return CUDA_SUCCESS;
}

SIM_API CUresult cuCtxSetCurrent(CUcontext ctx) {
    SIM_ENTER("cuCtxSetCurrent");
    if (ctx && !sim_ctx_valid(ctx))
        return CUDA_ERROR_INVALID_CONTEXT;
    if (!ctx) {
        if (ctx_depth)
            ctx_depth--;
        return CUDA_SUCCESS;
    }
    if (ctx_depth == 0)
        ctx_depth = 1;
    ctx_stack[ctx_depth - 1] = (struct sim_ctx *)ctx;
    return CUDA_SUCCESS;
}

SIM_API CUresult cuCtxGetCurrent(CUcontext *pctx) {
    SIM_ENTER("cuCtxGetCurrent");
    if (!pctx)
        return CUDA_ERROR_INVALID_VALUE;
    *pctx = (CUcontext)sim_ctx_current();
    return CUDA_SUCCESS;
}

SIM_API CUresult cuCtxPushCurrent_v2(CUcontext ctx) {
    SIM_ENTER("cuCtxPushCurrent_v2");
    if (!sim_ctx_valid(ctx))
        return CUDA_ERROR_INVALID_CONTEXT;
    if (ctx_depth == CTX_STACK_MAX)
        return CUDA_ERROR_INVALID_VALUE;
    ctx_stack[ctx_depth++] = (struct sim_ctx *)ctx;
    return CUDA_SUCCESS;
}

SIM_API CUresult cuCtxPopCurrent_v2(CUcontext *pctx) {
    SIM_ENTER("cuCtxPopCurrent_v2");
    if (ctx_depth == 0)
        return CUDA_ERROR_INVALID_CONTEXT;
    struct sim_ctx *c = ctx_stack[--ctx_depth];
    if (pctx)
        *pctx = (CUcontext)c;
    return CUDA_SUCCESS;
}

SIM_API CUresult cuCtxGetDevice(CUdevice *device) {
    SIM_ENTER("cuCtxGetDevice");
    if (!device)
        return CUDA_ERROR_INVALID_VALUE;
    if (!sim_ctx_current())
        return CUDA_ERROR_INVALID_CONTEXT;
    *device = 0;
    return CUDA_SUCCESS;
}

SIM_API CUresult cuCtxGetDevice_v2(CUdevice *device, CUcontext ctx) {
    SIM_ENTER("cuCtxGetDevice_v2");
    if (!device)
        return CUDA_ERROR_INVALID_VALUE;
    if (ctx ? !sim_ctx_valid(ctx) : !sim_ctx_current())
        return CUDA_ERROR_INVALID_CONTEXT;
    *device = 0;
    return CUDA_SUCCESS;
}

SIM_API CUresult cuCtxSynchronize(void) {
    SIM_ENTER("cuCtxSynchronize");
    struct sim_ctx *c = sim_ctx_current();
    if (!c)
        return CUDA_ERROR_INVALID_CONTEXT;
    CUresult r = sim_capture_conflict_ctx(c);
    if (r != CUDA_SUCCESS)
        return r;
    SIM_UNSAFE_CALL();
    sim_sync_all(c);
    return sim_sticky();
}

SIM_API CUresult cuCtxSynchronize_v2(CUcontext ctx) {
    SIM_ENTER("cuCtxSynchronize_v2");
    struct sim_ctx *c = ctx ? (struct sim_ctx *)ctx : sim_ctx_current();
    if (!c || !sim_ctx_valid((CUcontext)c))
        return CUDA_ERROR_INVALID_CONTEXT;
    CUresult r = sim_capture_conflict_ctx(c);
    if (r != CUDA_SUCCESS)
        return r;
    SIM_UNSAFE_CALL();
    sim_sync_all(c);
    return sim_sticky();
}

SIM_API CUresult cuCtxGetFlags(unsigned int *flags) {
    SIM_ENTER("cuCtxGetFlags");
    struct sim_ctx *c = sim_ctx_current();
    if (!flags)
        return CUDA_ERROR_INVALID_VALUE;
    if (!c)
        return CUDA_ERROR_INVALID_CONTEXT;
    *flags = c->flags;
    return CUDA_SUCCESS;
}

SIM_API CUresult cuCtxSetFlags(unsigned int flags) {
    SIM_ENTER("cuCtxSetFlags");
    struct sim_ctx *c = sim_ctx_current();
    if (!c)
        return CUDA_ERROR_INVALID_CONTEXT;
    c->flags = flags;
    return CUDA_SUCCESS;
}

SIM_API CUresult cuCtxGetApiVersion(CUcontext ctx, unsigned int *version) {
    SIM_ENTER("cuCtxGetApiVersion");
    if (!version)
        return CUDA_ERROR_INVALID_VALUE;
    if (ctx ? !sim_ctx_valid(ctx) : !sim_ctx_current())
        return CUDA_ERROR_INVALID_CONTEXT;
    *version = 3020;
    return CUDA_SUCCESS;
}

SIM_API CUresult cuCtxGetStreamPriorityRange(int *least, int *greatest) {
    SIM_ENTER("cuCtxGetStreamPriorityRange");
    if (least)
        *least = 0;
    if (greatest)
        *greatest = -5;
    return CUDA_SUCCESS;
}

SIM_API CUresult cuCtxGetLimit(size_t *pvalue, CUlimit limit) {
    SIM_ENTER("cuCtxGetLimit");
    if (!pvalue)
        return CUDA_ERROR_INVALID_VALUE;
    static const size_t limits[] = {
        [CU_LIMIT_STACK_SIZE] = 1024,
        [CU_LIMIT_PRINTF_FIFO_SIZE] = 1 << 20,
        [CU_LIMIT_MALLOC_HEAP_SIZE] = 8 << 20,
        [CU_LIMIT_DEV_RUNTIME_SYNC_DEPTH] = 2,
        [CU_LIMIT_DEV_RUNTIME_PENDING_LAUNCH_COUNT] = 2048,
        [CU_LIMIT_MAX_L2_FETCH_GRANULARITY] = 64,
        [CU_LIMIT_PERSISTING_L2_CACHE_SIZE] = 0,
    };
    if ((unsigned)limit >= sizeof limits / sizeof limits[0])
        return CUDA_ERROR_UNSUPPORTED_LIMIT;
    *pvalue = limits[limit];
    return CUDA_SUCCESS;
}

SIM_API CUresult cuCtxSetLimit(CUlimit limit, size_t value) {
    SIM_ENTER("cuCtxSetLimit");
    (void)value;
    if ((unsigned)limit > CU_LIMIT_PERSISTING_L2_CACHE_SIZE)
        return CUDA_ERROR_UNSUPPORTED_LIMIT;
    return CUDA_SUCCESS;
}
