/* The simulated driver's streams, events and launches: ordering under real concurrency,
 * legacy and per-thread default streams, async copy semantics, argument capture. */
#include "tests/sim/testutil.h"
#include "tests/unit/check.h"

#include <cudaTypedefs.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>

/* 16 words of scratch device memory, each an allocation of its own: kernels access
 * whole allocations for the race detector, and these tests run kernels on unordered
 * streams that each write their own word. */
static CUdeviceptr dev_word[16];
#define W(i) (dev_word[i])

static int alloc_words(void) {
    for (int i = 0; i < 16; i++)
        if (cuMemAlloc(&dev_word[i], 4) != CUDA_SUCCESS)
            return -1;
    return 0;
}

static unsigned read_word(int i) {
    unsigned v = 0xdeadbeef;
    cuMemcpyDtoH(&v, W(i), 4);
    return v;
}

static void zero_words(void) {
    for (int i = 0; i < 16; i++)
        cuMemsetD32(dev_word[i], 0, 1);
    cuCtxSynchronize(); /* a memset returns before it is done */
}

static CUresult incr_copy(CUstream s, CUdeviceptr src, CUdeviceptr dst) {
    void *args[] = {&src, &dst};
    return cuLaunchKernel(sim_test_kernel("incr_copy"), 1, 1, 1, 1, 1, 1, 0, s, args, NULL);
}

/* A kernel on s that waits for the host to set *flag; writes 1 to out if it saw it, 2 if
 * it gave up after 3 s. Shows that work on s did not hold up other work. */
static CUresult wait_flag(CUstream s, unsigned *flag, CUdeviceptr out) {
    unsigned timeout_ms = 3000;
    void *args[] = {&flag, &out, &timeout_ms};
    return cuLaunchKernel(sim_test_kernel("wait_flag"), 1, 1, 1, 1, 1, 1, 0, s, args, NULL);
}

static void set_flag(unsigned *flag, unsigned v) {
    __atomic_store_n(flag, v, __ATOMIC_RELEASE);
}

/* A flag a kernel may read: pinned host memory (a GPU cannot reach pageable memory, and
 * neither can the simulator's kernels). Cleared. */
static unsigned *pinned_flag(void) {
    static unsigned *flag;
    if (!flag && cuMemAllocHost((void **)&flag, sizeof *flag) != CUDA_SUCCESS)
        return NULL;
    set_flag(flag, 0);
    return flag;
}

TEST(kernel_fill) {
    CUdeviceptr d;
    unsigned long long n = 1000;
    CHECK_CU(cuMemAlloc(&d, n * 4));
    unsigned v = 7;
    void *args[] = {&d, &n, &v};
    CHECK_CU(cuLaunchKernel(sim_test_kernel("fill_u32"), 4, 1, 1, 256, 1, 1, 0, NULL, args, NULL));
    unsigned *h = malloc(n * 4);
    CHECK_CU(cuMemcpyDtoH(h, d, n * 4));
    int ok = 1;
    for (unsigned long long i = 0; i < n; i++)
        ok &= h[i] == 7;
    CHECK(ok);
    free(h);
    CHECK_CU(cuMemFree(d));
}

TEST(param_info_and_extra) {
    CUfunction f = sim_test_kernel("mixed_params");
    size_t off[4], size[4];
    for (int i = 0; i < 4; i++)
        CHECK_CU(cuFuncGetParamInfo(f, i, &off[i], &size[i]));
    CHECK_EQ_U64(cuFuncGetParamInfo(f, 4, &off[0], &size[0]), CUDA_ERROR_INVALID_VALUE);
    CHECK(off[0] == 0 && size[0] == 1 && off[1] == 8 && size[1] == 8 && off[2] == 16 &&
          off[3] == 24 && size[3] == 8);
    const char *name;
    CHECK_CU(cuFuncGetName(&name, f));
    CHECK_STR(name, "mixed_params");
    CUdeviceptr out;
    CHECK_CU(cuMemAlloc(&out, 24));
    unsigned char buf[32] = {0};
    char c = 9;
    double d = 1234.0;
    int i = 77;
    memcpy(buf + off[0], &c, 1);
    memcpy(buf + off[1], &d, 8);
    memcpy(buf + off[2], &i, 4);
    memcpy(buf + off[3], &out, 8);
    size_t bsize = sizeof buf;
    void *extra[] = {CU_LAUNCH_PARAM_BUFFER_POINTER, buf, CU_LAUNCH_PARAM_BUFFER_SIZE, &bsize,
                     CU_LAUNCH_PARAM_END};
    CHECK_CU(cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, NULL, NULL, extra));
    unsigned long long r[3];
    CHECK_CU(cuMemcpyDtoH(r, out, sizeof r));
    CHECK(r[0] == 9 && r[1] == 1234 && r[2] == 77);
    /* cuLaunchKernelEx with kernelParams */
    c = 1;
    void *args[] = {&c, &d, &i, &out};
    CUlaunchConfig cfg = {0};
    cfg.gridDimX = cfg.gridDimY = cfg.gridDimZ = 1;
    cfg.blockDimX = cfg.blockDimY = cfg.blockDimZ = 1;
    CHECK_CU(cuLaunchKernelEx(&cfg, f, args, NULL));
    CHECK_CU(cuMemcpyDtoH(r, out, sizeof r));
    CHECK(r[0] == 1);
    CHECK_EQ_U64(cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, NULL, NULL, NULL),
                 CUDA_ERROR_INVALID_VALUE);
    CHECK_CU(cuMemFree(out));
}

/* Values are read when the launch is queued, not when it runs. */
TEST(arguments_captured_at_enqueue) {
    zero_words();
    CUstream s;
    CHECK_CU(cuStreamCreate(&s, 0));
    CHECK_CU(sim_test_slow_store(s, W(1), 5, 50000));
    CUdeviceptr p = W(0);
    unsigned long long n = 1;
    unsigned v = 1;
    void *args[] = {&p, &n, &v};
    CHECK_CU(cuLaunchKernel(sim_test_kernel("fill_u32"), 1, 1, 1, 1, 1, 1, 0, s, args, NULL));
    v = 2;
    p = W(2);
    CHECK_CU(cuStreamSynchronize(s));
    CHECK_EQ_U64(read_word(0), 1);
    CHECK_EQ_U64(read_word(2), 0);
    CHECK_CU(cuStreamDestroy(s));
}

/* B waits for an event recorded on A after slow work: the dependent step sees it. */
TEST(event_orders_streams) {
    zero_words();
    CUstream a, b;
    CUevent e;
    CHECK_CU(cuStreamCreate(&a, CU_STREAM_NON_BLOCKING));
    CHECK_CU(cuStreamCreate(&b, CU_STREAM_NON_BLOCKING));
    CHECK_CU(cuEventCreate(&e, 0));
    CHECK_EQ_U64(cuEventQuery(e), CUDA_SUCCESS); /* never recorded */
    CHECK_CU(sim_test_slow_store(a, W(0), 41, 80000));
    CHECK_CU(cuEventRecord(e, a));
    CHECK_EQ_U64(cuEventQuery(e), CUDA_ERROR_NOT_READY);
    CHECK_CU(cuStreamWaitEvent(b, e, 0));
    CHECK_CU(incr_copy(b, W(0), W(1)));
    CHECK_EQ_U64(cuStreamQuery(b), CUDA_ERROR_NOT_READY);
    CHECK_CU(cuStreamSynchronize(b));
    CHECK_EQ_U64(read_word(1), 42);
    CHECK_EQ_U64(cuEventQuery(e), CUDA_SUCCESS);
    /* without the wait, b does not wait for a: a's kernel sees the flag the host sets
     * only after b finished */
    unsigned *flag = pinned_flag();
    CHECK_CU(wait_flag(a, flag, W(2)));
    CHECK_CU(incr_copy(b, W(4), W(3)));
    CHECK_CU(cuStreamSynchronize(b));
    set_flag(flag, 1);
    CHECK_CU(cuStreamSynchronize(a));
    CHECK_EQ_U64(read_word(3), 1);
    CHECK_EQ_U64(read_word(2), 1);
    CHECK_CU(cuEventDestroy(e));
    CHECK_CU(cuStreamDestroy(a));
    CHECK_CU(cuStreamDestroy(b));
}

TEST(event_timing) {
    CUevent e0, e1, nt;
    CHECK_CU(cuEventCreate(&e0, 0));
    CHECK_CU(cuEventCreate(&e1, 0));
    CHECK_CU(cuEventCreate(&nt, CU_EVENT_DISABLE_TIMING));
    CHECK_CU(cuEventRecord(e0, NULL));
    CHECK_CU(sim_test_slow_store(NULL, W(0), 1, 30000));
    CHECK_CU(cuEventRecord(e1, NULL));
    CHECK_CU(cuEventRecord(nt, NULL));
    CHECK_CU(cuEventSynchronize(e1));
    float ms = 0;
    CHECK_CU(cuEventElapsedTime(&ms, e0, e1));
    CHECK(ms >= 29.0f && ms < 2000.0f);
    CHECK_CU(cuEventSynchronize(nt));
    CHECK_EQ_U64(cuEventElapsedTime(&ms, e0, nt), CUDA_ERROR_INVALID_HANDLE);
    cuEventDestroy(e0);
    cuEventDestroy(e1);
    cuEventDestroy(nt);
}

/* Legacy stream: its work waits for prior work of blocking streams, and blocking
 * streams' later work waits for it; non-blocking streams are left alone. */
TEST(legacy_default_stream) {
    zero_words();
    CUstream blocking, nonblocking;
    CHECK_CU(cuStreamCreate(&blocking, 0));
    CHECK_CU(cuStreamCreate(&nonblocking, CU_STREAM_NON_BLOCKING));
    CHECK_CU(sim_test_slow_store(blocking, W(0), 10, 80000));
    CHECK_CU(incr_copy(NULL, W(0), W(1))); /* waits for the blocking stream */
    CHECK_CU(sim_test_slow_store(NULL, W(2), 20, 80000));
    CHECK_CU(incr_copy(blocking, W(2), W(3))); /* waits for the legacy stream */
    unsigned *flag = pinned_flag();
    CHECK_CU(wait_flag(nonblocking, flag, W(4)));
    CHECK_CU(incr_copy(CU_STREAM_LEGACY, W(7), W(5))); /* does not wait for it */
    CHECK_CU(cuStreamSynchronize(CU_STREAM_LEGACY));
    set_flag(flag, 1);
    CHECK_CU(cuStreamSynchronize(blocking));
    CHECK_EQ_U64(read_word(1), 11);
    CHECK_EQ_U64(read_word(3), 21);
    CHECK_EQ_U64(read_word(5), 1);
    CHECK_CU(cuStreamSynchronize(nonblocking));
    CHECK_EQ_U64(read_word(4), 1); /* it saw the flag: the legacy stream did not wait */
    /* a synchronous copy (legacy stream) waits for blocking streams */
    CHECK_CU(sim_test_slow_store(blocking, W(6), 60, 80000));
    CHECK_EQ_U64(read_word(6), 60);
    cuStreamDestroy(blocking);
    cuStreamDestroy(nonblocking);
}

struct pt_arg {
    unsigned us;
    CUdeviceptr p;
    double done_ms;
    CUresult r;
};

static void *per_thread_worker(void *v) {
    struct pt_arg *a = v;
    CUcontext c;
    cuDevicePrimaryCtxRetain(&c, 0);
    cuCtxSetCurrent(c);
    void *args[] = {&a->p, &(unsigned){1}, &a->us};
    /* stream 0 through the _ptsz entry point is the per-thread stream */
    PFN_cuLaunchKernel_v7000_ptsz launch_ptsz = NULL;
    a->r = cuGetProcAddress("cuLaunchKernel", (void **)&launch_ptsz, 12000,
                            CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, NULL);
    if (a->r == CUDA_SUCCESS)
        a->r = launch_ptsz(sim_test_kernel("slow_store"), 1, 1, 1, 1, 1, 1, 0, NULL, args, NULL);
    if (a->r == CUDA_SUCCESS)
        a->r = cuStreamSynchronize(CU_STREAM_PER_THREAD);
    a->done_ms = sim_test_now_ms();
    return NULL;
}

/* Each host thread's per-thread stream is its own: a fast thread is not held up. */
TEST(per_thread_streams) {
    zero_words();
    struct pt_arg slow = {300000, W(0), 0, 0}, fast = {1000, W(1), 0, 0};
    double t0 = sim_test_now_ms();
    pthread_t t1, t2;
    pthread_create(&t1, NULL, per_thread_worker, &slow);
    pthread_create(&t2, NULL, per_thread_worker, &fast);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    CHECK_CU(slow.r);
    CHECK_CU(fast.r);
    CHECK(fast.done_ms - t0 < 250);
    CHECK(slow.done_ms - t0 >= 299);
    CHECK_EQ_U64(read_word(0), 1);
    CHECK_EQ_U64(read_word(1), 1);
}

/* Pinned source: the copy happens later, on the worker. Pageable: staged at the call. */
TEST(async_copy_semantics) {
    zero_words();
    CUstream s;
    CHECK_CU(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    unsigned *pinned;
    CHECK_CU(cuMemAllocHost((void **)&pinned, 4096));
    unsigned pageable = 1;
    pinned[0] = 1;
    CHECK_CU(sim_test_slow_store(s, W(9), 1, 80000));
    CHECK_CU(cuMemcpyHtoDAsync(W(0), pinned, 4, s));
    CHECK_CU(cuMemcpyHtoDAsync(W(1), &pageable, 4, s));
    pinned[0] = 2;
    pageable = 2;
    CHECK_CU(cuStreamSynchronize(s));
    CHECK_EQ_U64(read_word(0), 2);
    CHECK_EQ_U64(read_word(1), 1);
    /* device-to-host into pageable memory returns with the data there */
    CHECK_CU(sim_test_slow_store(s, W(2), 77, 80000));
    unsigned out = 0;
    CHECK_CU(cuMemcpyDtoHAsync(&out, W(2), 4, s));
    CHECK_EQ_U64(out, 77);
    /* into pinned memory it does not */
    CHECK_CU(sim_test_slow_store(s, W(3), 88, 80000));
    pinned[1] = 0;
    CHECK_CU(cuMemcpyDtoHAsync(&pinned[1], W(3), 4, s));
    CHECK_EQ_U64(pinned[1], 0);
    CHECK_CU(cuStreamSynchronize(s));
    CHECK_EQ_U64(pinned[1], 88);
    CHECK_CU(cuMemFreeHost(pinned));
    cuStreamDestroy(s);
}

static void host_fn(void *data) {
    unsigned *v = data;
    *v = *v * 10 + 1;
}

TEST(host_functions_in_order) {
    CUstream s;
    CHECK_CU(cuStreamCreate(&s, 0));
    unsigned v = 0;
    for (int i = 0; i < 5; i++)
        CHECK_CU(cuLaunchHostFunc(s, host_fn, &v));
    CHECK_CU(cuStreamSynchronize(s));
    CHECK_EQ_U64(v, 11111);
    cuStreamDestroy(s);
}

/* An async copy whose target is unmapped before the worker runs it fails on the worker
 * (no segfault) and poisons the context, like the real driver. In a child: sticky. */
TEST(async_fault_is_sticky) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        if (!sim_test_setup() || alloc_words() != 0)
            _exit(9);
        CUmemAllocationProp p = {0};
        p.type = CU_MEM_ALLOCATION_TYPE_PINNED;
        p.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
        CUmemAccessDesc a = {{CU_MEM_LOCATION_TYPE_DEVICE, 0}, CU_MEM_ACCESS_FLAGS_PROT_READWRITE};
        CUdeviceptr va;
        CUmemGenericAllocationHandle h;
        CUstream s;
        static unsigned *pinned;
        if (cuMemAddressReserve(&va, 2 << 20, 0, 0, 0) || cuMemCreate(&h, 2 << 20, &p, 0) ||
            cuMemMap(va, 2 << 20, 0, h, 0) || cuMemSetAccess(va, 2 << 20, &a, 1) ||
            cuStreamCreate(&s, CU_STREAM_NON_BLOCKING) || cuMemAllocHost((void **)&pinned, 64))
            _exit(10);
        if (sim_test_slow_store(s, W(0), 1, 80000) || cuMemcpyHtoDAsync(va, pinned, 64, s))
            _exit(11);
        if (cuMemUnmap(va, 2 << 20)) /* while the copy is still queued */
            _exit(12);
        if (cuStreamSynchronize(s) != CUDA_ERROR_ILLEGAL_ADDRESS)
            _exit(13);
        CUdeviceptr d;
        if (cuMemAlloc(&d, 16) != CUDA_ERROR_ILLEGAL_ADDRESS)
            _exit(14);
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status));
    CHECK_EQ_U64(WEXITSTATUS(status), 0);
}

/* fork() while streams hold queued work: the child drops the parent's work and can use
 * the driver at once (synchronous calls start no thread, which sanitizers require). */
TEST(fork_with_work_in_flight) {
    CUstream s;
    CHECK_CU(cuStreamCreate(&s, 0));
    CHECK_CU(sim_test_slow_store(s, W(0), 5, 200000));
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        unsigned v = 0;
        if (cuMemsetD32(W(1), 77, 1) != CUDA_SUCCESS || cuMemcpyDtoH(&v, W(1), 4) != CUDA_SUCCESS)
            _exit(2);
        if (cuStreamQuery(s) != CUDA_SUCCESS) /* the parent's work is not the child's */
            _exit(3);
        _exit(v == 77 ? 0 : 4);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status));
    CHECK_EQ_U64(WEXITSTATUS(status), 0);
    CHECK_CU(cuStreamSynchronize(s));
    CHECK_EQ_U64(read_word(0), 5);
    cuStreamDestroy(s);
}

/* cuModuleLoadData takes the module's ELF image from memory. */
TEST(module_from_memory) {
    FILE *f = fopen(sim_test_kernels_path(), "rb");
    CHECK(f != NULL);
    if (!f)
        return;
    static unsigned char image[4 << 20];
    size_t n = fread(image, 1, sizeof image, f);
    fclose(f);
    CHECK(n > 0 && n < sizeof image);
    CUmodule m;
    CUfunction fn;
    CHECK_CU(cuModuleLoadData(&m, image));
    CHECK_CU(cuModuleGetFunction(&fn, m, "fill_u32"));
    CHECK_EQ_U64(cuModuleGetFunction(&fn, m, "no_such_kernel"), CUDA_ERROR_NOT_FOUND);
    CUdeviceptr p = W(0);
    unsigned long long count = 1;
    unsigned v = 99;
    void *args[] = {&p, &count, &v};
    CHECK_CU(cuLaunchKernel(fn, 1, 1, 1, 1, 1, 1, 0, NULL, args, NULL));
    CHECK_EQ_U64(read_word(0), 99);
    CHECK_CU(cuModuleUnload(m));
    CHECK_EQ_U64(cuModuleGetFunction(&fn, m, "fill_u32"), CUDA_ERROR_INVALID_HANDLE);
    CUmodule bad;
    CHECK_EQ_U64(cuModuleLoad(&bad, "/nonexistent/module.so"), CUDA_ERROR_FILE_NOT_FOUND);
}

int main(void) {
    /* first, while this process has no threads: the child sets up its own driver */
    RUN(async_fault_is_sticky);
    if (!sim_test_setup())
        return 1;
    if (alloc_words() != 0)
        return 1;
    RUN(kernel_fill);
    RUN(param_info_and_extra);
    RUN(arguments_captured_at_enqueue);
    RUN(event_orders_streams);
    RUN(event_timing);
    RUN(legacy_default_stream);
    RUN(per_thread_streams);
    RUN(async_copy_semantics);
    RUN(host_functions_in_order);
    RUN(fork_with_work_in_flight);
    RUN(module_from_memory);
    return check_summary();
}
