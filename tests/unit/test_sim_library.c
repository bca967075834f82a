/* The simulated driver's libraries and CUkernel handles (tests/sim/library.c). */
#include "tests/sim/testutil.h"
#include "tests/unit/check.h"

#include <stdlib.h>

static CUdeviceptr words;

static unsigned word(int i) {
    unsigned v = 0;
    cuMemcpyDtoH(&v, words + 4 * (size_t)i, 4);
    return v;
}

/* How many kernels the module exports, counted by nm (not by the simulator). */
static unsigned exported_kernels(void) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "nm -D --defined-only '%s' | grep -c ' simkernel__'",
             sim_test_kernels_path());
    FILE *p = popen(cmd, "r");
    unsigned n = 0;
    if (!p || fscanf(p, "%u", &n) != 1)
        n = 0;
    if (p)
        pclose(p);
    return n;
}

static CUlibrary load_file(void) {
    CUlibrary lib = NULL;
    CHECK_CU(cuLibraryLoadFromFile(&lib, sim_test_kernels_path(), NULL, NULL, 0, NULL, NULL, 0));
    return lib;
}

TEST(enumerate_every_kernel) {
    CUlibrary lib = load_file();
    unsigned count = 0;
    CHECK_CU(cuLibraryGetKernelCount(&count, lib));
    CHECK(count > 0);
    CHECK_EQ_U64(count, exported_kernels());
    CUkernel ks[64];
    CHECK(count <= 64);
    CHECK_CU(cuLibraryEnumerateKernels(ks, count, lib));
    int saw_fill = 0;
    for (unsigned i = 0; i < count; i++) {
        const char *name = NULL;
        CHECK_CU(cuKernelGetName(&name, ks[i]));
        CUkernel again = NULL;
        CHECK_CU(cuLibraryGetKernel(&again, lib, name));
        CHECK(again == ks[i]);
        saw_fill |= name && strcmp(name, "fill_u32") == 0;
    }
    CHECK(saw_fill);
    CUkernel k;
    CHECK_EQ_U64(cuLibraryGetKernel(&k, lib, "no_such_kernel"), CUDA_ERROR_NOT_FOUND);
    CHECK_EQ_U64(cuLibraryEnumerateKernels(ks, 0, lib), CUDA_ERROR_INVALID_VALUE);
    CHECK_CU(cuLibraryUnload(lib));
}

/* A CUkernel is not a CUfunction: cuFunc* queries reject it, cuKernel* ones reject a
 * CUfunction, and the two describe the same parameters. */
TEST(kernel_is_not_a_function) {
    CUlibrary lib = load_file();
    CUkernel k;
    CUfunction f;
    CHECK_CU(cuLibraryGetKernel(&k, lib, "mixed_params"));
    CHECK_CU(cuKernelGetFunction(&f, k));
    CHECK((void *)f != (void *)k);
    size_t off = 0, size = 0, koff = 1, ksize = 1;
    const char *name = NULL;
    CHECK_EQ_U64(cuFuncGetParamInfo((CUfunction)k, 0, &off, &size), CUDA_ERROR_INVALID_HANDLE);
    CHECK_EQ_U64(cuFuncGetName(&name, (CUfunction)k), CUDA_ERROR_INVALID_HANDLE);
    CHECK_EQ_U64(cuKernelGetParamInfo((CUkernel)f, 0, &off, &size), CUDA_ERROR_INVALID_HANDLE);
    CHECK_EQ_U64(cuKernelGetName(&name, (CUkernel)f), CUDA_ERROR_INVALID_HANDLE);
    /* mixed_params(char, double, int, unsigned long long *) */
    for (size_t i = 0; i < 4; i++) {
        CHECK_CU(cuFuncGetParamInfo(f, i, &off, &size));
        CHECK_CU(cuKernelGetParamInfo(k, i, &koff, &ksize));
        CHECK_EQ_U64(koff, off);
        CHECK_EQ_U64(ksize, size);
    }
    CHECK_CU(cuKernelGetParamInfo(k, 1, &koff, &ksize));
    CHECK_EQ_U64(koff, 8);
    CHECK_EQ_U64(ksize, 8);
    CHECK_EQ_U64(cuKernelGetParamInfo(k, 4, &koff, &ksize), CUDA_ERROR_INVALID_VALUE);
    CHECK_CU(cuFuncGetName(&name, f));
    CHECK_STR(name, "mixed_params");
    CHECK_CU(cuKernelGetName(&name, k));
    CHECK_STR(name, "mixed_params");
    int v = 0, fv = 0;
    CHECK_CU(cuKernelGetAttribute(&v, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, k, 0));
    CHECK_CU(cuFuncGetAttribute(&fv, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, f));
    CHECK_EQ_U64(v, 1024);
    CHECK_EQ_U64(v, fv);
    CHECK_EQ_U64(cuKernelGetAttribute(&v, CU_FUNC_ATTRIBUTE_NUM_REGS, k, 1),
                 CUDA_ERROR_INVALID_DEVICE);
    CHECK_CU(cuKernelSetAttribute(CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, 65536, k, 0));
    CHECK_EQ_U64(cuKernelSetAttribute(CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, 65536,
                                      (CUkernel)f, 0),
                 CUDA_ERROR_INVALID_HANDLE);
    CHECK_CU(cuKernelSetCacheConfig(k, CU_FUNC_CACHE_PREFER_SHARED, 0));
    CUmodule lm = NULL, fm = NULL;
    CUlibrary back = NULL;
    CHECK_CU(cuLibraryGetModule(&lm, lib));
    CHECK_CU(cuFuncGetModule(&fm, f));
    CHECK(lm == fm);
    CHECK_CU(cuKernelGetLibrary(&back, k));
    CHECK(back == lib);
    CHECK_CU(cuLibraryUnload(lib));
}

/* Each launch entry point takes the CUkernel cast to CUfunction. */
TEST(launch_kernel_handles) {
    CUlibrary lib = load_file();
    CUkernel k;
    CHECK_CU(cuLibraryGetKernel(&k, lib, "fill_u32"));
    CUdeviceptr p = words;
    unsigned long long n = 1;
    unsigned v = 11;
    void *args[] = {&p, &n, &v};
    CHECK_CU(cuLaunchKernel((CUfunction)k, 1, 1, 1, 1, 1, 1, 0, NULL, args, NULL));
    CHECK_CU(cuCtxSynchronize());
    CHECK_EQ_U64(word(0), 11);
    p = words + 4;
    v = 12;
    CUlaunchConfig cfg = {.gridDimX = 1,
                          .gridDimY = 1,
                          .gridDimZ = 1,
                          .blockDimX = 1,
                          .blockDimY = 1,
                          .blockDimZ = 1};
    CHECK_CU(cuLaunchKernelEx(&cfg, (CUfunction)k, args, NULL));
    CHECK_CU(cuCtxSynchronize());
    CHECK_EQ_U64(word(1), 12);
    p = words + 8;
    v = 13;
    CHECK_CU(cuLaunchCooperativeKernel((CUfunction)k, 1, 1, 1, 1, 1, 1, 0, NULL, args));
    CHECK_CU(cuCtxSynchronize());
    CHECK_EQ_U64(word(2), 13);
    /* a dead library's kernels launch no more */
    CHECK_CU(cuLibraryUnload(lib));
    CHECK_EQ_U64(cuLaunchKernel((CUfunction)k, 1, 1, 1, 1, 1, 1, 0, NULL, args, NULL),
                 CUDA_ERROR_INVALID_HANDLE);
    CHECK_EQ_U64(cuLibraryGetKernel(&k, lib, "fill_u32"), CUDA_ERROR_INVALID_HANDLE);
    CHECK_EQ_U64(cuKernelGetParamInfo(k, 0, NULL, NULL), CUDA_ERROR_INVALID_HANDLE);
    CHECK_EQ_U64(cuLibraryUnload(lib), CUDA_ERROR_INVALID_HANDLE);
}

/* A captured launch of a CUkernel: the node's parameters name only the kernel (func
 * NULL, kern set); the graph runs it. */
TEST(captured_kernel_node_names_the_kernel) {
    CUlibrary lib = load_file();
    CUkernel k;
    CHECK_CU(cuLibraryGetKernel(&k, lib, "fill_u32"));
    CUstream s;
    CHECK_CU(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    CUdeviceptr p = words + 12;
    unsigned long long n = 1;
    unsigned v = 14;
    void *args[] = {&p, &n, &v};
    CHECK_CU(cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL));
    CHECK_CU(cuLaunchKernel((CUfunction)k, 1, 1, 1, 1, 1, 1, 0, s, args, NULL));
    CUgraph g;
    CHECK_CU(cuStreamEndCapture(s, &g));
    CUgraphNode node;
    size_t count = 1;
    CHECK_CU(cuGraphGetNodes(g, &node, &count));
    CHECK_EQ_U64(count, 1);
    CUDA_KERNEL_NODE_PARAMS v2;
    memset(&v2, 0xff, sizeof v2);
    CHECK_CU(cuGraphKernelNodeGetParams_v2(node, &v2));
    CHECK(v2.func == NULL);
    CHECK(v2.kern == k);
    CHECK_EQ_U64(*(unsigned *)v2.kernelParams[2], 14);
    CUgraphExec exec;
    CHECK_CU(cuGraphInstantiate(&exec, g, 0));
    CHECK_CU(cuGraphLaunch(exec, s));
    CHECK_CU(cuStreamSynchronize(s));
    CHECK_EQ_U64(word(3), 14);
    CHECK_CU(cuGraphExecDestroy(exec));
    CHECK_CU(cuGraphDestroy(g));
    CHECK_CU(cuStreamDestroy(s));
    CHECK_CU(cuLibraryUnload(lib));
}

/* cuLibraryLoadData takes the image from memory, and needs no current context. */
TEST(load_data_without_context) {
    FILE *f = fopen(sim_test_kernels_path(), "rb");
    CHECK(f != NULL);
    if (!f)
        return;
    static unsigned char image[4 << 20];
    size_t n = fread(image, 1, sizeof image, f);
    fclose(f);
    CHECK(n > 0 && n < sizeof image);
    CUcontext ctx = NULL;
    CHECK_CU(cuCtxGetCurrent(&ctx));
    CHECK_CU(cuCtxSetCurrent(NULL));
    CUlibrary lib = NULL;
    CHECK_CU(cuLibraryLoadData(&lib, image, NULL, NULL, 0, NULL, NULL, 0));
    CUkernel k;
    CUfunction fn;
    CHECK_CU(cuLibraryGetKernel(&k, lib, "add_u32"));
    CHECK_EQ_U64(cuKernelGetFunction(&fn, k), CUDA_ERROR_INVALID_CONTEXT);
    CHECK_CU(cuCtxSetCurrent(ctx));
    CHECK_CU(cuKernelGetFunction(&fn, k));
    CUdeviceptr a = words, b = words + 4, c = words + 8;
    unsigned two[2] = {5, 7};
    CHECK_CU(cuMemcpyHtoD(a, &two[0], 4));
    CHECK_CU(cuMemcpyHtoD(b, &two[1], 4));
    unsigned long long count = 1;
    void *args[] = {&a, &b, &c, &count};
    CHECK_CU(cuLaunchKernel((CUfunction)k, 1, 1, 1, 1, 1, 1, 0, NULL, args, NULL));
    CHECK_CU(cuCtxSynchronize());
    CHECK_EQ_U64(word(2), 12);
    CHECK_CU(cuLibraryUnload(lib));
    CUlibrary bad;
    CHECK_EQ_U64(cuLibraryLoadFromFile(&bad, "/nonexistent/lib.so", NULL, NULL, 0, NULL, NULL, 0),
                 CUDA_ERROR_FILE_NOT_FOUND);
    CHECK_EQ_U64(cuLibraryLoadData(&bad, image, NULL, NULL, 1, NULL, NULL, 0),
                 CUDA_ERROR_INVALID_VALUE);
}

int main(void) {
    if (!sim_test_setup() || cuMemAlloc(&words, 4096) != CUDA_SUCCESS)
        return 1;
    RUN(enumerate_every_kernel);
    RUN(kernel_is_not_a_function);
    RUN(launch_kernel_handles);
    RUN(captured_kernel_node_names_the_kernel);
    RUN(load_data_without_context);
    return check_summary();
}
