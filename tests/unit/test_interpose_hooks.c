/*
 * test_interpose_hooks.c — the hooks between a fake runtime and the simulated driver.
 *
 * This file defines the runtime contract (runtime/runtime.h) itself, so the hooks call
 * these recorders instead of the real runtime, while forwarding to the simulated driver
 * (OFFLOAD_DRIVER, set before the first hook). The Makefile links this test with
 * interpose/'s objects and the log only, never liboffload.a: the real runtime cannot end
 * up beside the fake. Checks what each hook tells the runtime (stream normalisation,
 * ranges, graph and stream handles, the order against the driver, the begun call held over
 * the driver call and ended on every path), that the runtime's error stops the call, and
 * that address queries on tracked memory come from the registry.
 */
#include "driver/driver.h"
#include "interpose/hook.h"
#include "runtime/launch/tensor_maps.h"
#include "runtime/runtime.h"
#include "tests/unit/check.h"

#include <dlfcn.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

/* --- the fake runtime ---------------------------------------------------------------- */

struct seen {
    const char *what;
    CUdeviceptr ptr;
    size_t bytes;
    CUdeviceptr ptr2; /* runtime_begin_access's second range */
    size_t bytes2;
    CUstream stream;
    CUfunction f;
    void **params;
    CUgraphExec exec;
    CUgraph graph;
};

static struct {
    struct seen calls[16];
    int count;
    CUresult fail_with;       /* what runtime_begin_* answers */
    int begun;                /* runtime_begin_* calls not yet ended */
    int ended;                /* runtime_end_call calls */
    bool held_at_driver;      /* a begun call was open when the spied entry point ran */
    CUdeviceptr tracked_base; /* runtime_address_range's one tracked allocation */
    size_t tracked_size;
    bool exec_alive_when_forgotten;
    bool serve_reads;          /* runtime_read_evicted answers reads (with 0xee bytes) */
    CUstream read_stream;      /* the stream runtime_read_evicted was told */
    int host_waits;            /* runtime_before_host_wait calls */
    bool captures_in_progress; /* what runtime_captures_in_progress answers */
} fake;

static void record(struct seen s) {
    if (fake.count < 16)
        fake.calls[fake.count++] = s;
}

static void reset(void) {
    fake.count = 0;
    fake.fail_with = CUDA_SUCCESS;
    fake.begun = 0;
    fake.ended = 0;
}

void runtime_early_init(void) {}
void runtime_shutdown(void) {}

CUresult runtime_mem_alloc(CUdeviceptr *dptr, size_t bytes) {
    record((struct seen){.what = "alloc", .bytes = bytes});
    return driver()->cuMemAlloc_v2(dptr, bytes);
}

CUresult runtime_mem_free(CUdeviceptr dptr) {
    record((struct seen){.what = "free", .ptr = dptr});
    return driver()->cuMemFree_v2(dptr);
}

CUresult runtime_mem_get_info(size_t *free_bytes, size_t *total_bytes) {
    *free_bytes = 1;
    *total_bytes = 2;
    return CUDA_SUCCESS;
}

CUresult runtime_device_total_mem(size_t *bytes, CUdevice dev) {
    (void)dev;
    *bytes = 3;
    return CUDA_SUCCESS;
}

bool runtime_address_range(CUdeviceptr dptr, CUdeviceptr *base, size_t *size) {
    if (dptr < fake.tracked_base || dptr >= fake.tracked_base + fake.tracked_size)
        return false;
    *base = fake.tracked_base;
    *size = fake.tracked_size;
    return true;
}

/* Every begin is open until runtime_end_call, whatever it answered (runtime.h). */
static CUresult begin(struct seen s) {
    record(s);
    fake.begun++;
    return fake.fail_with;
}

CUresult runtime_begin_launch(CUfunction f, CUstream stream, void **params, void **extra) {
    (void)extra;
    return begin((struct seen){.what = "launch", .f = f, .stream = stream, .params = params});
}

CUresult runtime_begin_access(CUdeviceptr ptr, size_t bytes, CUdeviceptr ptr2, size_t bytes2,
                              CUstream stream) {
    return begin((struct seen){.what = "access",
                               .ptr = ptr,
                               .bytes = bytes,
                               .ptr2 = ptr2,
                               .bytes2 = bytes2,
                               .stream = stream});
}

/* Uploads and unified copies begin like any access (the host side reading is the
 * runtime's business): recorded as the ranges an access would get. */
CUresult runtime_begin_upload(CUdeviceptr dst, const void *host, size_t bytes, CUstream stream) {
    (void)host;
    return runtime_begin_access(dst, bytes, 0, 0, stream);
}

CUresult runtime_begin_copy(CUdeviceptr dst, CUdeviceptr src, size_t bytes, CUstream stream) {
    return runtime_begin_access(src, bytes, dst, bytes, stream);
}

CUresult runtime_read_evicted(void *dst, CUdeviceptr src, size_t bytes, CUstream stream,
                              bool *served) {
    (void)src;
    fake.read_stream = stream;
    *served = fake.serve_reads;
    if (fake.serve_reads)
        memset(dst, 0xee, bytes);
    return CUDA_SUCCESS;
}

void runtime_before_host_wait(void) {
    fake.host_waits++;
}

void runtime_end_call(void) {
    fake.ended++;
    fake.begun = 0;
}

void runtime_graph_instantiated(CUgraphExec exec, CUgraph graph) {
    record((struct seen){.what = "instantiated", .exec = exec, .graph = graph});
}

CUresult runtime_begin_graph_launch(CUgraphExec exec, CUstream stream) {
    return begin((struct seen){.what = "graph_launch", .exec = exec, .stream = stream});
}

void runtime_graph_exec_destroyed(CUgraphExec exec) {
    /* still valid in the driver: the hook tells the runtime first */
    CUstream none = NULL;
    CUresult r = driver()->cuGraphLaunch(exec, none);
    fake.exec_alive_when_forgotten = r == CUDA_SUCCESS;
    driver()->cuStreamSynchronize(none);
    record((struct seen){.what = "exec_destroyed", .exec = exec});
}

void runtime_stream_destroyed(CUstream stream) {
    record((struct seen){.what = "stream_destroyed", .stream = stream});
}

/* A wait goes straight to the driver unless a capture is in progress. */
bool runtime_captures_in_progress(void) {
    return fake.captures_in_progress;
}

void runtime_capture_joined(CUstream stream, CUresult r) {
    record((struct seen){.what = "capture_joined", .stream = stream, .bytes = r});
}

/* Before the driver call (the runtime marks the stream and fences the legacy one). */
void runtime_capture_prepare(CUstream stream) {
    record((struct seen){.what = "capture_prepare", .stream = stream});
}

/* The driver's answer in .bytes. */
void runtime_capture_begun(CUstream stream, CUresult r) {
    record((struct seen){.what = "capture_begun", .stream = stream, .bytes = r});
}

void runtime_capture_ended(CUresult r) {
    record((struct seen){.what = "capture_ended", .bytes = r});
}

/* Program-mapped and stream-ordered memory: recorded, then the driver's own call. */
CUresult runtime_vmm_create(CUmemGenericAllocationHandle *handle, size_t size,
                            const CUmemAllocationProp *prop, unsigned long long flags) {
    record((struct seen){.what = "vmm_create", .bytes = size});
    return driver()->cuMemCreate(handle, size, prop, flags);
}

CUresult runtime_vmm_release(CUmemGenericAllocationHandle handle) {
    record((struct seen){.what = "vmm_release"});
    return driver()->cuMemRelease(handle);
}

CUresult runtime_vmm_map(CUdeviceptr ptr, size_t size, size_t offset,
                         CUmemGenericAllocationHandle handle, unsigned long long flags) {
    record((struct seen){.what = "vmm_map", .ptr = ptr, .bytes = size});
    return driver()->cuMemMap(ptr, size, offset, handle, flags);
}

CUresult runtime_vmm_unmap(CUdeviceptr ptr, size_t size) {
    record((struct seen){.what = "vmm_unmap", .ptr = ptr, .bytes = size});
    return driver()->cuMemUnmap(ptr, size);
}

CUresult runtime_vmm_get_access(unsigned long long *flags, const CUmemLocation *location,
                                CUdeviceptr ptr) {
    record((struct seen){.what = "vmm_get_access", .ptr = ptr});
    return driver()->cuMemGetAccess(flags, location, ptr);
}

CUresult runtime_vmm_retain(CUmemGenericAllocationHandle *handle, void *addr) {
    record((struct seen){.what = "vmm_retain", .ptr = (CUdeviceptr)addr});
    return driver()->cuMemRetainAllocationHandle(handle, addr);
}

CUresult runtime_vmm_properties(CUmemAllocationProp *prop, CUmemGenericAllocationHandle handle) {
    record((struct seen){.what = "vmm_properties"});
    return driver()->cuMemGetAllocationPropertiesFromHandle(prop, handle);
}

CUresult runtime_vmm_export(void *shareable, CUmemGenericAllocationHandle handle,
                            CUmemAllocationHandleType type, unsigned long long flags) {
    record((struct seen){.what = "vmm_export"});
    return driver()->cuMemExportToShareableHandle(shareable, handle, type, flags);
}

CUresult runtime_vmm_address_free(CUdeviceptr ptr, size_t size) {
    record((struct seen){.what = "vmm_address_free", .ptr = ptr, .bytes = size});
    return driver()->cuMemAddressFree(ptr, size);
}

CUresult runtime_begin_set_access(CUdeviceptr ptr, size_t size, const CUmemAccessDesc *desc,
                                  size_t count) {
    (void)desc;
    (void)count;
    return begin((struct seen){.what = "set_access", .ptr = ptr, .bytes = size});
}

CUresult runtime_stream_alloc(CUdeviceptr *dptr, size_t bytes, CUmemoryPool pool, CUstream stream,
                              bool *forward) {
    (void)dptr;
    (void)pool;
    record((struct seen){.what = "stream_alloc", .bytes = bytes, .stream = stream});
    *forward = true;
    return CUDA_SUCCESS;
}

void runtime_stream_alloc_forwarded(void) {}

CUresult runtime_stream_free(CUdeviceptr dptr, CUstream stream, bool *forward) {
    record((struct seen){.what = "stream_free", .ptr = dptr, .stream = stream});
    *forward = true;
    return CUDA_SUCCESS;
}

void runtime_mem_pool_created(CUmemoryPool pool, const CUmemPoolProps *props) {
    (void)pool;
    (void)props;
    record((struct seen){.what = "pool_created"});
}

void runtime_mem_pool_attribute(CUmemoryPool pool, CUmemPool_attribute attr, void *value) {
    (void)pool;
    (void)attr;
    (void)value;
    record((struct seen){.what = "pool_attribute"});
}

void runtime_mem_pool_attribute_set(CUmemoryPool pool, CUmemPool_attribute attr) {
    (void)pool;
    (void)attr;
    record((struct seen){.what = "pool_attribute_set"});
}

void runtime_mem_pool_destroyed(CUmemoryPool pool) {
    (void)pool;
    record((struct seen){.what = "pool_destroyed"});
}

/* The tensor-map hooks' one call into the runtime (runtime/launch/tensor_maps.h). */
static struct {
    int count;
    unsigned char bytes[TENSOR_MAPS_BYTES];
    CUdeviceptr global;
} remembered;

void tensor_maps_remember(const void *bytes128, CUdeviceptr global) {
    remembered.count++;
    memcpy(remembered.bytes, bytes128, TENSOR_MAPS_BYTES);
    remembered.global = global;
}

/* --- spies on the driver table: which entry point a hook reached --------------------- */

static const char *reached; /* the last spied entry point called */

#define SPY(entry, params, args)                                                                   \
    static __typeof__(((struct driver_table *)0)->entry) real_##entry;                             \
    static CUresult spy_##entry params {                                                           \
        reached = #entry;                                                                          \
        fake.held_at_driver = fake.begun > 0;                                                      \
        return real_##entry args;                                                                  \
    }
#define SPY_INSTALL(entry)                                                                         \
    do {                                                                                           \
        struct driver_table *table = (struct driver_table *)driver();                              \
        real_##entry = table->entry;                                                               \
        table->entry = spy_##entry;                                                                \
    } while (0)

SPY(cuMemcpyHtoD_v2, (CUdeviceptr d, const void *h, size_t n), (d, h, n))
SPY(cuMemcpyHtoD_v2_ptds, (CUdeviceptr d, const void *h, size_t n), (d, h, n))
SPY(cuMemcpyDtoH_v2, (void *h, CUdeviceptr d, size_t n), (h, d, n))
SPY(cuMemcpyDtoH_v2_ptds, (void *h, CUdeviceptr d, size_t n), (h, d, n))
SPY(cuMemsetD32Async, (CUdeviceptr d, unsigned v, size_t n, CUstream s), (d, v, n, s))
SPY(cuMemsetD32Async_ptsz, (CUdeviceptr d, unsigned v, size_t n, CUstream s), (d, v, n, s))
SPY(cuMemcpy2D_v2, (const CUDA_MEMCPY2D *c), (c))
SPY(cuMemcpy2D_v2_ptds, (const CUDA_MEMCPY2D *c), (c))
SPY(cuLaunchKernel,
    (CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
     unsigned sh, CUstream s, void **p, void **e),
    (f, gx, gy, gz, bx, by, bz, sh, s, p, e))
SPY(cuLaunchKernel_ptsz,
    (CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
     unsigned sh, CUstream s, void **p, void **e),
    (f, gx, gy, gz, bx, by, bz, sh, s, p, e))
SPY(cuGraphLaunch, (CUgraphExec g, CUstream s), (g, s))
SPY(cuStreamSynchronize, (CUstream s), (s))
SPY(cuStreamSynchronize_ptsz, (CUstream s), (s))
SPY(cuEventSynchronize, (CUevent e), (e))
SPY(cuCtxSynchronize, (void), ())
SPY(cuCtxSynchronize_v2, (CUcontext c), (c))
SPY(cuGraphLaunch_ptsz, (CUgraphExec g, CUstream s), (g, s))
SPY(cuMemAllocAsync, (CUdeviceptr * d, size_t n, CUstream s), (d, n, s))
SPY(cuMemAllocAsync_ptsz, (CUdeviceptr * d, size_t n, CUstream s), (d, n, s))
SPY(cuMemFreeAsync, (CUdeviceptr d, CUstream s), (d, s))
SPY(cuMemFreeAsync_ptsz, (CUdeviceptr d, CUstream s), (d, s))
SPY(cuStreamBeginCapture_v1, (CUstream s), (s))
SPY(cuStreamBeginCapture_ptsz, (CUstream s), (s))
SPY(cuStreamBeginCapture_v2, (CUstream s, CUstreamCaptureMode m), (s, m))
SPY(cuStreamBeginCapture_v2_ptsz, (CUstream s, CUstreamCaptureMode m), (s, m))
SPY(cuStreamEndCapture, (CUstream s, CUgraph *g), (s, g))
SPY(cuStreamEndCapture_ptsz, (CUstream s, CUgraph *g), (s, g))
SPY(cuStreamWaitEvent, (CUstream s, CUevent e, unsigned f), (s, e, f))
SPY(cuStreamWaitEvent_ptsz, (CUstream s, CUevent e, unsigned f), (s, e, f))

static void install_spies(void) {
    SPY_INSTALL(cuStreamWaitEvent);
    SPY_INSTALL(cuStreamWaitEvent_ptsz);
    SPY_INSTALL(cuStreamBeginCapture_v1);
    SPY_INSTALL(cuStreamBeginCapture_ptsz);
    SPY_INSTALL(cuStreamBeginCapture_v2);
    SPY_INSTALL(cuStreamBeginCapture_v2_ptsz);
    SPY_INSTALL(cuStreamEndCapture);
    SPY_INSTALL(cuStreamEndCapture_ptsz);
    SPY_INSTALL(cuMemAllocAsync);
    SPY_INSTALL(cuMemAllocAsync_ptsz);
    SPY_INSTALL(cuMemFreeAsync);
    SPY_INSTALL(cuMemFreeAsync_ptsz);
    SPY_INSTALL(cuMemcpyHtoD_v2);
    SPY_INSTALL(cuMemcpyHtoD_v2_ptds);
    SPY_INSTALL(cuMemcpyDtoH_v2);
    SPY_INSTALL(cuMemcpyDtoH_v2_ptds);
    SPY_INSTALL(cuMemsetD32Async);
    SPY_INSTALL(cuMemsetD32Async_ptsz);
    SPY_INSTALL(cuMemcpy2D_v2);
    SPY_INSTALL(cuMemcpy2D_v2_ptds);
    SPY_INSTALL(cuLaunchKernel);
    SPY_INSTALL(cuLaunchKernel_ptsz);
    SPY_INSTALL(cuGraphLaunch);
    SPY_INSTALL(cuGraphLaunch_ptsz);
    SPY_INSTALL(cuStreamSynchronize);
    SPY_INSTALL(cuStreamSynchronize_ptsz);
    SPY_INSTALL(cuEventSynchronize);
    SPY_INSTALL(cuCtxSynchronize);
    SPY_INSTALL(cuCtxSynchronize_v2);
}

/* A legacy hook must reach the legacy entry, its per-thread twin the per-thread one. */
/* Every spied entry point uses device memory: the hook must reach it inside its begun call
 * (the runtime held) and end that call after it. */
#define CHECK_REACHED(call, entry)                                                                 \
    do {                                                                                           \
        reached = NULL;                                                                            \
        fake.held_at_driver = false;                                                               \
        fake.ended = 0;                                                                            \
        CHECK_CU(call);                                                                            \
        CHECK_STR(reached, entry);                                                                 \
        CHECK(fake.held_at_driver);                                                                \
        CHECK(fake.begun == 0 && fake.ended == 1);                                                 \
    } while (0)

/* --- set-up -------------------------------------------------------------------------- */

static char build_dir[PATH_MAX]; /* $BUILD, from this binary's own path */
static CUcontext ctx;
#define N (1u << 20)

static void *sim_symbol(const char *name) {
    return dlsym(driver_handle(), name); /* test-only entry points, not in the table */
}

TEST(driver_is_the_simulator) {
    CHECK(driver_handle() != NULL);
    CHECK(driver()->cuMemAlloc_v2 != NULL);
    CHECK(driver()->cuMemcpyHtoD_v2_ptds != NULL);
    CHECK(driver()->cuGetProcAddress_v1 != NULL); /* the "cuGetProcAddress" export */
    CHECK(driver_is_handle(driver_handle()));
    CUdevice dev;
    CHECK_CU(driver()->cuInit(0));
    CHECK_CU(((CUresult(*)(CUdevice *, int))sim_symbol("cuDeviceGet"))(&dev, 0));
    CHECK_CU(
        ((CUresult(*)(CUcontext *, CUdevice))sim_symbol("cuDevicePrimaryCtxRetain"))(&ctx, dev));
    CHECK_CU(driver()->cuCtxSetCurrent(ctx));
}

/* --- copies and sets ----------------------------------------------------------------- */

TEST(copies_report_range_and_default_stream) {
    static unsigned host[N / 4], back[N / 4];
    for (unsigned i = 0; i < N / 4; i++)
        host[i] = i * 7;
    CUdeviceptr d;
    reset();
    CHECK_CU(cuMemAlloc_v2(&d, N));
    CHECK(fake.count == 1 && fake.calls[0].bytes == N);

    reset();
    CHECK_CU(cuMemcpyHtoD_v2(d, host, N));
    CHECK(fake.count == 1 && fake.calls[0].ptr == d && fake.calls[0].bytes == N);
    CHECK(fake.calls[0].bytes2 == 0);
    CHECK(fake.calls[0].stream == CU_STREAM_LEGACY);
    CHECK(fake.begun == 0 && fake.ended == 1); /* ended once, after the driver call */

    reset();
    CHECK_CU(cuMemcpyDtoH_v2_ptds(back, d + 64, 128));
    CHECK(fake.count == 1 && fake.calls[0].ptr == d + 64 && fake.calls[0].bytes == 128);
    CHECK(fake.calls[0].stream == CU_STREAM_PER_THREAD);
    CHECK(back[0] == host[16]);

    CUstream s;
    CHECK_CU(driver()->cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    reset();
    CHECK_CU(cuMemsetD32Async_ptsz(d, 5, 10, NULL)); /* NULL from a _ptsz: per-thread */
    CHECK_CU(cuMemsetD32Async(d, 5, 10, NULL));      /* NULL from legacy: legacy */
    /* s is non-blocking: the same bytes written on it and on the default streams would race */
    CHECK_CU(driver()->cuCtxSynchronize());
    CHECK_CU(cuMemsetD32Async(d, 5, 10, s));
    CHECK(fake.count == 3);
    CHECK(fake.calls[0].stream == CU_STREAM_PER_THREAD && fake.calls[0].bytes == 40);
    CHECK(fake.calls[1].stream == CU_STREAM_LEGACY);
    CHECK(fake.calls[2].stream == s);
    CHECK_CU(driver()->cuStreamSynchronize(s));

    /* device to device: both sides in one begin, so neither can evict the other */
    reset();
    CHECK_CU(cuMemcpyDtoD_v2(d + N / 2, d, 1000));
    CHECK(fake.count == 1 && fake.ended == 1);
    CHECK(fake.calls[0].ptr == d && fake.calls[0].bytes == 1000);
    CHECK(fake.calls[0].ptr2 == d + N / 2 && fake.calls[0].bytes2 == 1000);

    /* 2D: the rows touched on the device side only */
    CUDA_MEMCPY2D c = {0};
    c.srcMemoryType = CU_MEMORYTYPE_DEVICE;
    c.srcDevice = d;
    c.srcPitch = 1024;
    c.srcY = 2;
    c.dstMemoryType = CU_MEMORYTYPE_HOST;
    c.dstHost = back;
    c.dstPitch = 100;
    c.WidthInBytes = 100;
    c.Height = 3;
    reset();
    CHECK_CU(cuMemcpy2D_v2(&c));
    CHECK(fake.count == 1 && fake.calls[0].ptr == d + 2048 && fake.calls[0].bytes == 2148);
    CHECK(fake.calls[0].bytes2 == 0); /* the host side is not device memory */

    reset();
    CHECK_CU(cuMemsetD2D8_v2_ptds(d, 256, 1, 10, 4));
    CHECK(fake.count == 1 && fake.calls[0].bytes == 3 * 256 + 10);
    CHECK(fake.calls[0].stream == CU_STREAM_PER_THREAD);

    /* the runtime's error stops the call before the driver */
    CHECK_CU(driver()->cuMemsetD8_v2(d, 0, 16));
    reset();
    fake.fail_with = CUDA_ERROR_OUT_OF_MEMORY;
    CHECK_EQ_U64(cuMemcpyHtoD_v2(d, host + 100, 16), CUDA_ERROR_OUT_OF_MEMORY);
    CHECK(fake.begun == 0 && fake.ended == 1); /* ended on the error path too */
    fake.fail_with = CUDA_SUCCESS;
    unsigned char zeros[16] = {0}, got[16];
    CHECK_CU(driver()->cuMemcpyDtoH_v2(got, d, 16));
    CHECK(memcmp(got, zeros, 16) == 0);

    reset();
    CHECK_CU(cuStreamDestroy_v2(s));
    CHECK(fake.count == 1 && fake.calls[0].stream == s);
    CHECK_CU(cuMemFree_v2(d));
}

/* --- launches and graphs ------------------------------------------------------------- */

/* The simulator's fill_u32 (tests/progs/sim_kernels.so), loaded past the hooks. */
static CUfunction fill_kernel(void) {
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/progs/sim_kernels.so", build_dir);
    CUmodule mod;
    CUfunction fill = NULL;
    CHECK_CU(((CUresult(*)(CUmodule *, const char *))sim_symbol("cuModuleLoad"))(&mod, path));
    CHECK_CU(((CUresult(*)(CUfunction *, CUmodule, const char *))sim_symbol("cuModuleGetFunction"))(
        &fill, mod, "fill_u32"));
    return fill;
}

TEST(launches_and_graphs) {
    CUfunction fill = fill_kernel();
    CUdeviceptr d;
    CHECK_CU(driver()->cuMemAlloc_v2(&d, 1024 * 4));
    unsigned long long n = 1024;
    unsigned v = 0xabc;
    void *params[] = {&d, &n, &v};
    reset();
    CHECK_CU(cuLaunchKernel_ptsz(fill, 4, 1, 1, 256, 1, 1, 0, NULL, params, NULL));
    CHECK(fake.count == 1 && fake.calls[0].f == fill && fake.calls[0].params == params);
    CHECK(fake.calls[0].stream == CU_STREAM_PER_THREAD);
    CHECK_CU(driver()->cuCtxSynchronize());
    unsigned back[1024];
    CHECK_CU(driver()->cuMemcpyDtoH_v2(back, d, sizeof back));
    CHECK(back[0] == 0xabc && back[1023] == 0xabc); /* forwarded: the kernel ran */

    CUlaunchConfig cfg = {.gridDimX = 4,
                          .gridDimY = 1,
                          .gridDimZ = 1,
                          .blockDimX = 256,
                          .blockDimY = 1,
                          .blockDimZ = 1};
    reset();
    CHECK_CU(cuLaunchKernelEx(&cfg, fill, params, NULL));
    CHECK(fake.count == 1 && fake.calls[0].stream == CU_STREAM_LEGACY);
    reset();
    fake.fail_with = CUDA_ERROR_ILLEGAL_ADDRESS;
    CHECK_EQ_U64(cuLaunchKernel(fill, 4, 1, 1, 256, 1, 1, 0, NULL, params, NULL),
                 CUDA_ERROR_ILLEGAL_ADDRESS);
    CHECK(fake.begun == 0 && fake.ended == 1);
    fake.fail_with = CUDA_SUCCESS;

    CUgraph g;
    CUgraphExec exec;
    CHECK_CU(((CUresult(*)(CUgraph *, unsigned))sim_symbol("cuGraphCreate"))(&g, 0));
    reset();
    CHECK_CU(cuGraphInstantiateWithFlags(&exec, g, 0));
    CHECK(fake.count == 1 && fake.calls[0].exec == exec && fake.calls[0].graph == g);
    reset();
    CHECK_CU(cuGraphLaunch_ptsz(exec, NULL));
    CHECK(fake.count == 1 && fake.calls[0].exec == exec &&
          fake.calls[0].stream == CU_STREAM_PER_THREAD);
    CHECK_CU(driver()->cuCtxSynchronize());
    reset();
    fake.exec_alive_when_forgotten = false;
    CHECK_CU(cuGraphExecDestroy(exec));
    CHECK(fake.count == 1 && fake.calls[0].exec == exec);
    CHECK(fake.exec_alive_when_forgotten);
    CHECK_CU(((CUresult(*)(CUgraph))sim_symbol("cuGraphDestroy"))(g));
    CHECK_CU(driver()->cuMemFree_v2(d));
}

/* The launch and graph ABIs launches_and_graphs does not take: cooperative launches and
 * cuLaunchKernelEx on the per-thread stream tell the runtime their function, parameters
 * and normalised stream; every instantiation ABI reports the exec and its graph; both
 * update ABIs replace what the runtime knows of the exec (forget, then learn again); a
 * failed instantiation or update tells it nothing. */
TEST(every_launch_and_graph_abi_tells_the_runtime) {
    CUfunction fill = fill_kernel();
    CUdeviceptr d;
    CHECK_CU(driver()->cuMemAlloc_v2(&d, 1024 * 4));
    unsigned long long n = 1024;
    unsigned v = 5;
    void *params[] = {&d, &n, &v};
    reset();
    CHECK_CU(cuLaunchCooperativeKernel(fill, 4, 1, 1, 256, 1, 1, 0, NULL, params));
    CHECK(fake.count == 1 && fake.calls[0].f == fill && fake.calls[0].params == params);
    CHECK(fake.calls[0].stream == CU_STREAM_LEGACY && fake.ended == 1);
    reset();
    CHECK_CU(cuLaunchCooperativeKernel_ptsz(fill, 4, 1, 1, 256, 1, 1, 0, NULL, params));
    CHECK(fake.count == 1 && fake.calls[0].stream == CU_STREAM_PER_THREAD);
    CUlaunchConfig cfg = {.gridDimX = 4,
                          .gridDimY = 1,
                          .gridDimZ = 1,
                          .blockDimX = 256,
                          .blockDimY = 1,
                          .blockDimZ = 1};
    reset();
    CHECK_CU(cuLaunchKernelEx_ptsz(&cfg, fill, params, NULL));
    CHECK(fake.count == 1 && fake.calls[0].stream == CU_STREAM_PER_THREAD);
    reset();
    CHECK(cuLaunchKernelEx(NULL, fill, params, NULL) != CUDA_SUCCESS); /* the driver's refusal */
    CHECK(fake.count == 0);
    CHECK_CU(driver()->cuCtxSynchronize());
    unsigned back[1024];
    CHECK_CU(driver()->cuMemcpyDtoH_v2(back, d, sizeof back));
    CHECK(back[0] == 5 && back[1023] == 5); /* forwarded: the kernels ran */

    CUgraph g;
    CUgraphExec exec[4];
    CHECK_CU(((CUresult(*)(CUgraph *, unsigned))sim_symbol("cuGraphCreate"))(&g, 0));
    CUDA_GRAPH_INSTANTIATE_PARAMS ip = {0};
    reset();
    CHECK_CU(hook_cuGraphInstantiate_v1(&exec[0], g, NULL, NULL, 0));
    CHECK_CU(cuGraphInstantiate_v2(&exec[1], g, NULL, NULL, 0));
    CHECK_CU(cuGraphInstantiateWithParams(&exec[2], g, &ip));
    CHECK_CU(cuGraphInstantiateWithParams_ptsz(&exec[3], g, &ip));
    CHECK(fake.count == 4);
    for (int i = 0; i < 4 && i < fake.count; i++)
        CHECK(strcmp(fake.calls[i].what, "instantiated") == 0 && fake.calls[i].exec == exec[i] &&
              fake.calls[i].graph == g);
    reset();
    CHECK(cuGraphInstantiateWithFlags(&exec[0], NULL, 0) != CUDA_SUCCESS);
    CHECK(fake.count == 0);
    reset();
    CUgraphExecUpdateResultInfo info;
    CHECK_CU(cuGraphExecUpdate_v2(exec[1], g, &info));
    CUgraphNode error_node;
    CUgraphExecUpdateResult result;
    CHECK_CU(hook_cuGraphExecUpdate_v1(exec[2], g, &error_node, &result));
    CHECK(fake.count == 4);
    const char *want[] = {"exec_destroyed", "instantiated", "exec_destroyed", "instantiated"};
    for (int i = 0; i < 4 && i < fake.count; i++)
        CHECK(strcmp(fake.calls[i].what, want[i]) == 0 &&
              fake.calls[i].exec == exec[i < 2 ? 1 : 2]);
    reset();
    CHECK(cuGraphExecUpdate_v2(exec[1], NULL, &info) != CUDA_SUCCESS);
    CHECK(fake.count == 0);
    for (int i = 0; i < 4; i++)
        CHECK_CU(cuGraphExecDestroy(exec[i]));
    CHECK_CU(((CUresult(*)(CUgraph))sim_symbol("cuGraphDestroy"))(g));
    CHECK_CU(driver()->cuMemFree_v2(d));
}

/* A read the runtime serves from a host backup never reaches the driver, and the runtime
 * is told which default stream the copy would have run on (it waits for it). */
TEST(served_reads_skip_the_driver) {
    unsigned char host[64];
    CUdeviceptr d;
    CHECK_CU(driver()->cuMemAlloc_v2(&d, sizeof host));
    fake.serve_reads = true;
    reached = NULL;
    memset(host, 0, sizeof host);
    CHECK_CU(cuMemcpyDtoH_v2(host, d, sizeof host));
    CHECK(reached == NULL && host[0] == 0xee && host[63] == 0xee);
    CHECK(fake.read_stream == CU_STREAM_LEGACY);
    CHECK_CU(cuMemcpyDtoH_v2_ptds(host, d, sizeof host));
    CHECK(reached == NULL && fake.read_stream == CU_STREAM_PER_THREAD);
    fake.serve_reads = false;
    CHECK_CU(driver()->cuMemFree_v2(d));
}

/* Each host wait first tells the runtime (which may issue a prefetch), then reaches its
 * own driver entry point, outside any begun call. */
#define CHECK_WAIT(call, entry)                                                                    \
    do {                                                                                           \
        reached = NULL;                                                                            \
        fake.host_waits = 0;                                                                       \
        CHECK_CU(call);                                                                            \
        CHECK_STR(reached, entry);                                                                 \
        CHECK(fake.host_waits == 1);                                                               \
        CHECK(!fake.held_at_driver);                                                               \
    } while (0)

TEST(host_waits_tell_the_runtime_first) {
    CUstream s;
    CUevent e;
    CHECK_CU(driver()->cuStreamCreate(&s, 0));
    CHECK_CU(driver()->cuEventCreate(&e, 0));
    CHECK_CU(driver()->cuEventRecord(e, s));
    CHECK_WAIT(cuStreamSynchronize(s), "cuStreamSynchronize");
    CHECK_WAIT(cuStreamSynchronize_ptsz(s), "cuStreamSynchronize_ptsz");
    CHECK_WAIT(cuEventSynchronize(e), "cuEventSynchronize");
    CHECK_WAIT(cuCtxSynchronize(), "cuCtxSynchronize");
    CHECK_WAIT(cuCtxSynchronize_v2(ctx), "cuCtxSynchronize_v2");
    CHECK_CU(driver()->cuEventDestroy_v2(e));
    CHECK_CU(driver()->cuStreamDestroy_v2(s));
}

/* A capture hook reached `entry`, then told the runtime `told` with the driver's answer;
 * a begin or join told it "capture_prepare" first, for the same stream (the stream's mark
 * and the legacy stream's fence, memory/copy.h). */
#define CHECK_CAPTURE(call, entry, told, want)                                                     \
    do {                                                                                           \
        reached = NULL;                                                                            \
        reset();                                                                                   \
        CHECK_EQ_U64(call, want);                                                                  \
        CHECK_STR(reached, entry);                                                                 \
        int first_ = strcmp(told, "capture_begun") == 0 || strcmp(told, "capture_joined") == 0;    \
        CHECK(fake.count == first_ + 1 && strcmp(fake.calls[first_].what, told) == 0);             \
        CHECK(!first_ || (strcmp(fake.calls[0].what, "capture_prepare") == 0 &&                    \
                          fake.calls[0].stream == fake.calls[1].stream));                          \
        CHECK_EQ_U64(fake.calls[first_].bytes, want);                                              \
    } while (0)

/* A stream wait reaches the driver unchanged; while a capture is in progress it may join
 * the stream to it, and the runtime hears the answer for the normalised stream. */
TEST(stream_waits_tell_the_runtime_only_during_captures) {
    CUstream s;
    CUevent e;
    CHECK_CU(driver()->cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    CHECK_CU(driver()->cuEventCreate(&e, CU_EVENT_DISABLE_TIMING));
    fake.captures_in_progress = false;
    reached = NULL;
    reset();
    CHECK_CU(cuStreamWaitEvent(s, e, 0));
    CHECK_STR(reached, "cuStreamWaitEvent");
    CHECK(fake.count == 0);
    fake.captures_in_progress = true;
    CHECK_CAPTURE(cuStreamWaitEvent(s, e, 0), "cuStreamWaitEvent", "capture_joined", CUDA_SUCCESS);
    CHECK(fake.calls[0].stream == s);
    CHECK_CAPTURE(cuStreamWaitEvent_ptsz(NULL, e, 0), "cuStreamWaitEvent_ptsz", "capture_joined",
                  CUDA_SUCCESS);
    CHECK(fake.calls[0].stream == CU_STREAM_PER_THREAD);
    CHECK_CAPTURE(cuStreamWaitEvent(NULL, e, 0), "cuStreamWaitEvent", "capture_joined",
                  CUDA_SUCCESS);
    CHECK(fake.calls[0].stream == CU_STREAM_LEGACY);
    fake.captures_in_progress = false;
    CHECK_CU(driver()->cuEventDestroy_v2(e));
    CHECK_CU(driver()->cuStreamDestroy_v2(s));
}

/* The runtime counts captures in progress (it never synchronises the context during one):
 * every begin and end hook tells it the driver's answer. */
TEST(capture_hooks_tell_the_runtime) {
    CUstream s;
    CUgraph g;
    CHECK_CU(driver()->cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    CHECK_CAPTURE(hook_cuStreamBeginCapture_v1(s), "cuStreamBeginCapture_v1", "capture_begun",
                  CUDA_SUCCESS);
    CHECK_CAPTURE(cuStreamEndCapture(s, &g), "cuStreamEndCapture", "capture_ended", CUDA_SUCCESS);
    CHECK_CU(((CUresult(*)(CUgraph))sim_symbol("cuGraphDestroy"))(g));
    CHECK_CAPTURE(cuStreamBeginCapture_v2(s, CU_STREAM_CAPTURE_MODE_RELAXED),
                  "cuStreamBeginCapture_v2", "capture_begun", CUDA_SUCCESS);
    CHECK_CAPTURE(cuStreamBeginCapture_v2(s, CU_STREAM_CAPTURE_MODE_RELAXED),
                  "cuStreamBeginCapture_v2", "capture_begun", CUDA_ERROR_ILLEGAL_STATE);
    CHECK_CAPTURE(cuStreamEndCapture_ptsz(s, &g), "cuStreamEndCapture_ptsz", "capture_ended",
                  CUDA_SUCCESS);
    CHECK_CU(((CUresult(*)(CUgraph))sim_symbol("cuGraphDestroy"))(g));
    CHECK_CAPTURE(cuStreamEndCapture(s, &g), "cuStreamEndCapture", "capture_ended",
                  CUDA_ERROR_ILLEGAL_STATE);
    CHECK_CAPTURE(cuStreamBeginCapture_ptsz(s), "cuStreamBeginCapture_ptsz", "capture_begun",
                  CUDA_SUCCESS);
    CHECK_CAPTURE(cuStreamEndCapture(s, &g), "cuStreamEndCapture", "capture_ended", CUDA_SUCCESS);
    CHECK_CU(((CUresult(*)(CUgraph))sim_symbol("cuGraphDestroy"))(g));
    CHECK_CAPTURE(cuStreamBeginCapture_v2_ptsz(s, CU_STREAM_CAPTURE_MODE_GLOBAL),
                  "cuStreamBeginCapture_v2_ptsz", "capture_begun", CUDA_SUCCESS);
    CHECK_CAPTURE(cuStreamEndCapture(s, &g), "cuStreamEndCapture", "capture_ended", CUDA_SUCCESS);
    CHECK_CU(((CUresult(*)(CUgraph))sim_symbol("cuGraphDestroy"))(g));
    CHECK_CU(driver()->cuStreamDestroy_v2(s));
}

TEST(each_hook_reaches_its_own_entry_point) {
    static unsigned host[1024];
    CUdeviceptr d;
    CHECK_CU(driver()->cuMemAlloc_v2(&d, sizeof host));
    CHECK_REACHED(cuMemcpyHtoD_v2(d, host, sizeof host), "cuMemcpyHtoD_v2");
    CHECK_REACHED(cuMemcpyHtoD_v2_ptds(d, host, sizeof host), "cuMemcpyHtoD_v2_ptds");
    CHECK_REACHED(cuMemcpyDtoH_v2(host, d, sizeof host), "cuMemcpyDtoH_v2");
    CHECK_REACHED(cuMemcpyDtoH_v2_ptds(host, d, sizeof host), "cuMemcpyDtoH_v2_ptds");
    CHECK_REACHED(cuMemsetD32Async(d, 1, 4, NULL), "cuMemsetD32Async");
    CHECK_REACHED(cuMemsetD32Async_ptsz(d, 1, 4, NULL), "cuMemsetD32Async_ptsz");
    CUDA_MEMCPY2D c = {.srcMemoryType = CU_MEMORYTYPE_HOST,
                       .srcHost = host,
                       .srcPitch = 64,
                       .dstMemoryType = CU_MEMORYTYPE_DEVICE,
                       .dstDevice = d,
                       .dstPitch = 64,
                       .WidthInBytes = 64,
                       .Height = 4};
    CHECK_REACHED(cuMemcpy2D_v2(&c), "cuMemcpy2D_v2");
    CHECK_REACHED(cuMemcpy2D_v2_ptds(&c), "cuMemcpy2D_v2_ptds");

    CUfunction fill = fill_kernel();
    unsigned long long n = 1024;
    unsigned v = 3;
    void *params[] = {&d, &n, &v};
    CHECK_REACHED(cuLaunchKernel(fill, 4, 1, 1, 256, 1, 1, 0, NULL, params, NULL),
                  "cuLaunchKernel");
    CHECK_REACHED(cuLaunchKernel_ptsz(fill, 4, 1, 1, 256, 1, 1, 0, NULL, params, NULL),
                  "cuLaunchKernel_ptsz");
    CUgraph g;
    CUgraphExec exec;
    CHECK_CU(((CUresult(*)(CUgraph *, unsigned))sim_symbol("cuGraphCreate"))(&g, 0));
    CHECK_CU(driver()->cuGraphInstantiateWithFlags(&exec, g, 0));
    CHECK_REACHED(cuGraphLaunch(exec, NULL), "cuGraphLaunch");
    CHECK_REACHED(cuGraphLaunch_ptsz(exec, NULL), "cuGraphLaunch_ptsz");
    CHECK_CU(driver()->cuCtxSynchronize());
    CHECK_CU(driver()->cuGraphExecDestroy(exec));
    CHECK_CU(((CUresult(*)(CUgraph))sim_symbol("cuGraphDestroy"))(g));
    CHECK_CU(driver()->cuMemFree_v2(d));
}

/* Reached the driver's entry point `entry`, with no bracket (an allocation or a free). */
#define CHECK_FORWARDED(call, entry)                                                               \
    do {                                                                                           \
        reached = NULL;                                                                            \
        CHECK_CU(call);                                                                            \
        CHECK_STR(reached, entry);                                                                 \
    } while (0)

TEST(stream_ordered_hooks_pass_their_stream_and_reach_their_entry_point) {
    CUdeviceptr d;
    reset();
    CHECK_FORWARDED(cuMemAllocAsync(&d, 4096, NULL), "cuMemAllocAsync");
    CHECK(fake.count == 1 && fake.calls[0].bytes == 4096);
    CHECK(fake.calls[0].stream == CU_STREAM_LEGACY);
    reset();
    CHECK_FORWARDED(cuMemFreeAsync_ptsz(d, NULL), "cuMemFreeAsync_ptsz");
    CHECK(fake.count == 1 && fake.calls[0].ptr == d);
    CHECK(fake.calls[0].stream == CU_STREAM_PER_THREAD);
    reset();
    CHECK_FORWARDED(cuMemAllocAsync_ptsz(&d, 4096, NULL), "cuMemAllocAsync_ptsz");
    CHECK(fake.calls[0].stream == CU_STREAM_PER_THREAD);
    CHECK_FORWARDED(cuMemFreeAsync(d, NULL), "cuMemFreeAsync");
    CHECK_CU(driver()->cuCtxSynchronize());
}

/* --- address queries ----------------------------------------------------------------- */

TEST(address_queries_on_tracked_memory) {
    /* A tracked allocation the driver does not see (as when evicted: an unmapped range). */
    fake.tracked_base = (CUdeviceptr)0x7e0000000000ull;
    fake.tracked_size = 6u << 20;
    CUdeviceptr base = 0, p = fake.tracked_base + 12345;
    size_t size = 0;
    CHECK_CU(cuMemGetAddressRange_v2(&base, &size, p));
    CHECK(base == fake.tracked_base && size == fake.tracked_size);
    CHECK_CU(cuMemGetAddressRange_v2(NULL, &size, p));

    unsigned type = 0;
    CUdeviceptr start = 0, devptr = 0;
    CHECK_CU(cuPointerGetAttribute(&start, CU_POINTER_ATTRIBUTE_RANGE_START_ADDR, p));
    CHECK_CU(cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, p));
    CHECK_CU(cuPointerGetAttribute(&devptr, CU_POINTER_ATTRIBUTE_DEVICE_POINTER, p));
    CHECK(start == fake.tracked_base && type == CU_MEMORYTYPE_DEVICE && devptr == p);

    CUpointer_attribute attrs[] = {CU_POINTER_ATTRIBUTE_MEMORY_TYPE,
                                   CU_POINTER_ATTRIBUTE_RANGE_SIZE, CU_POINTER_ATTRIBUTE_CONTEXT};
    unsigned type2 = 0;
    size_t size2 = 0;
    CUcontext owner = NULL;
    void *data[] = {&type2, &size2, &owner};
    CHECK_CU(cuPointerGetAttributes(3, attrs, data, p));
    CHECK(type2 == CU_MEMORYTYPE_DEVICE && size2 == fake.tracked_size && owner == ctx);

    /* what plain cuMemAlloc memory answers, though the driver does not know the range */
    int mapped = 0, ipc = 1, sync = -1, plain_sync = -2;
    unsigned long long id = 0, id_at_base = 1;
    CHECK_CU(cuPointerGetAttribute(&mapped, CU_POINTER_ATTRIBUTE_MAPPED, p));
    CHECK_CU(cuPointerGetAttribute(&ipc, CU_POINTER_ATTRIBUTE_IS_LEGACY_CUDA_IPC_CAPABLE, p));
    CHECK(mapped == 1 && ipc == 0); /* VMM memory is not legacy-IPC capable */
    CHECK_CU(cuPointerGetAttribute(&id, CU_POINTER_ATTRIBUTE_BUFFER_ID, p));
    CHECK_CU(cuPointerGetAttribute(&id_at_base, CU_POINTER_ATTRIBUTE_BUFFER_ID, fake.tracked_base));
    CHECK(id != 0 && id == id_at_base);
    CUdeviceptr plain;
    CHECK_CU(driver()->cuMemAlloc_v2(&plain, 4096));
    CHECK_CU(driver()->cuPointerGetAttribute(&plain_sync, CU_POINTER_ATTRIBUTE_SYNC_MEMOPS, plain));
    CHECK_CU(cuPointerGetAttribute(&sync, CU_POINTER_ATTRIBUTE_SYNC_MEMOPS, p));
    CHECK_EQ_U64(sync, plain_sync);
    CHECK_CU(driver()->cuMemFree_v2(plain));

    /* untracked pointers: the driver's own answer, error included */
    fake.tracked_size = 0;
    CHECK(cuMemGetAddressRange_v2(&base, &size, p) != CUDA_SUCCESS);
    CHECK(cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, p) != CUDA_SUCCESS);
    size_t free_b, total_b;
    CHECK_CU(cuMemGetInfo_v2(&free_b, &total_b));
    CHECK(free_b == 1 && total_b == 2);
    CHECK_CU(cuDeviceTotalMem_v2(&total_b, 0)); /* the runtime's answer */
    CHECK(total_b == 3);
}

/* --- tensor maps ---------------------------------------------------------------------- */

/* Each encoder hook remembers exactly the bytes the driver wrote, with the address it was
 * given; a call the driver refuses is not remembered. */
TEST(tensor_map_hooks_remember_what_the_driver_wrote) {
    CUdeviceptr d, d2;
    CHECK_CU(driver()->cuMemAlloc_v2(&d, 4096));
    CHECK_CU(driver()->cuMemAlloc_v2(&d2, 4096));
    CUtensorMap m;
    cuuint64_t dim[2] = {16, 8}, stride[1] = {64};
    cuuint32_t box[2] = {16, 4}, estride[2] = {1, 1};
    remembered.count = 0;
    CHECK_CU(cuTensorMapEncodeTiled(&m, CU_TENSOR_MAP_DATA_TYPE_UINT32, 2, (void *)d, dim, stride,
                                    box, estride, CU_TENSOR_MAP_INTERLEAVE_NONE,
                                    CU_TENSOR_MAP_SWIZZLE_NONE, CU_TENSOR_MAP_L2_PROMOTION_NONE,
                                    CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE));
    CHECK_EQ_U64(remembered.count, 1);
    CHECK(remembered.global == d);
    CHECK(memcmp(remembered.bytes, &m, sizeof m) == 0);
    /* refused (address not 16-byte aligned): nothing remembered */
    CHECK_EQ_U64(cuTensorMapEncodeTiled(&m, CU_TENSOR_MAP_DATA_TYPE_UINT32, 2, (void *)(d + 4), dim,
                                        stride, box, estride, CU_TENSOR_MAP_INTERLEAVE_NONE,
                                        CU_TENSOR_MAP_SWIZZLE_NONE, CU_TENSOR_MAP_L2_PROMOTION_NONE,
                                        CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE),
                 CUDA_ERROR_INVALID_VALUE);
    CHECK_EQ_U64(remembered.count, 1);
    CHECK_CU(cuTensorMapReplaceAddress(&m, (void *)d2));
    CHECK_EQ_U64(remembered.count, 2);
    CHECK(remembered.global == d2);
    CHECK(memcmp(remembered.bytes, &m, sizeof m) == 0);
    cuuint64_t dim4[4] = {8, 4, 2, 1}, stride4[3] = {16, 64, 128};
    cuuint32_t estride4[4] = {1, 1, 1, 1};
    int lower[2] = {0, 0}, upper[2] = {0, 0};
    CHECK_CU(cuTensorMapEncodeIm2col(
        &m, CU_TENSOR_MAP_DATA_TYPE_FLOAT16, 4, (void *)d, dim4, stride4, lower, upper, 8, 4,
        estride4, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_NONE,
        CU_TENSOR_MAP_L2_PROMOTION_NONE, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE));
    CHECK_EQ_U64(remembered.count, 3);
    CHECK(remembered.global == d && memcmp(remembered.bytes, &m, sizeof m) == 0);
    /* the simulator refuses wide im2col (a 10.0 feature): forwarded, not remembered */
    CHECK_EQ_U64(cuTensorMapEncodeIm2colWide(
                     &m, CU_TENSOR_MAP_DATA_TYPE_FLOAT16, 4, (void *)d, dim4, stride4, 0, 1, 8, 4,
                     estride4, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_IM2COL_WIDE_MODE_W,
                     CU_TENSOR_MAP_SWIZZLE_64B, CU_TENSOR_MAP_L2_PROMOTION_NONE,
                     CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE),
                 CUDA_ERROR_INVALID_VALUE);
    CHECK_EQ_U64(remembered.count, 3);
    CHECK_CU(driver()->cuMemFree_v2(d));
    CHECK_CU(driver()->cuMemFree_v2(d2));
}

/* --- the resolver, through the hooks ------------------------------------------------- */

TEST(resolver_hands_out_hooks_for_exact_symbols) {
    void *fn = NULL;
    CHECK_CU(cuGetProcAddress_v2("cuMemAlloc", &fn, 3020, 0, NULL));
    CHECK(fn == (void *)cuMemAlloc_v2);
    CHECK_CU(cuGetProcAddress_v2("cuMemAlloc", &fn, 2000, 0, NULL));
    CHECK(fn == sim_symbol("cuMemAlloc")); /* 32-bit ABI: the driver's own */
    CHECK_CU(cuGetProcAddress_v2("cuMemcpyDtoH", &fn, 12000,
                                 CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, NULL));
    CHECK(fn == (void *)cuMemcpyDtoH_v2_ptds);
    CHECK_CU(hook_cuGetProcAddress_v1("cuGetProcAddress", &fn, 11030, 0));
    CHECK(fn == (void *)hook_cuGetProcAddress_v1);
    CHECK_CU(cuGetProcAddress_v2("cuCtxSetCurrent", &fn, 4000, 0, NULL));
    CHECK(fn == sim_symbol("cuCtxSetCurrent"));
}

int main(int argc, char **argv) {
    (void)argc;
    char self[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) {
        perror("readlink /proc/self/exe");
        return 1;
    }
    self[len] = '\0';
    snprintf(build_dir, sizeof build_dir, "%s/..", dirname(self)); /* $BUILD/tests/.. */
    char sim[PATH_MAX + 32];
    snprintf(sim, sizeof sim, "%s/sim/libcuda.so.1", build_dir);
    setenv("OFFLOAD_DRIVER", sim, 1);
    (void)argv;
    RUN(driver_is_the_simulator);
    install_spies();
    RUN(each_hook_reaches_its_own_entry_point);
    RUN(capture_hooks_tell_the_runtime);
    RUN(stream_waits_tell_the_runtime_only_during_captures);
    RUN(served_reads_skip_the_driver);
    RUN(host_waits_tell_the_runtime_first);
    RUN(copies_report_range_and_default_stream);
    RUN(launches_and_graphs);
    RUN(every_launch_and_graph_abi_tells_the_runtime);
    RUN(stream_ordered_hooks_pass_their_stream_and_reach_their_entry_point);
    RUN(address_queries_on_tracked_memory);
    RUN(tensor_map_hooks_remember_what_the_driver_wrote);
    RUN(resolver_hands_out_hooks_for_exact_symbols);
    return check_summary();
}
