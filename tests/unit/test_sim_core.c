/* The simulated driver's core: init, devices, contexts, errors, the resolver. */
#include "tests/sim/testutil.h"
#include "tests/unit/check.h"

#include <cudaTypedefs.h>
#include <dlfcn.h>
#include <stdlib.h>

TEST(before_init) {
    CUdeviceptr p;
    int v = 0;
    CHECK_EQ_U64(cuMemAlloc(&p, 16), CUDA_ERROR_NOT_INITIALIZED);
    CHECK_CU(cuDriverGetVersion(&v));
    CHECK_EQ_U64(v, 13000);
    void *fn = NULL;
    CUdriverProcAddressQueryResult st;
    CHECK_CU(cuGetProcAddress("cuMemAlloc", &fn, 12000, 0, &st));
    CHECK(fn == dlsym(RTLD_DEFAULT, "cuMemAlloc_v2"));
    CHECK_EQ_U64(st, CU_GET_PROC_ADDRESS_SUCCESS);
}

TEST(device_queries) {
    CHECK(sim_test_setup() != NULL);
    int n = 0, v = 0;
    CHECK_CU(cuDeviceGetCount(&n));
    CHECK_EQ_U64(n, 1);
    CUdevice d;
    CHECK_CU(cuDeviceGet(&d, 0));
    CHECK_EQ_U64(cuDeviceGet(&d, 1), CUDA_ERROR_INVALID_DEVICE);
    char name[64];
    CHECK_CU(cuDeviceGetName(name, sizeof name, 0));
    CHECK(strncmp(name, "simcuda", 7) == 0);
    CHECK_CU(cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, 0));
    CHECK_EQ_U64(v, 9);
    CHECK_CU(cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING, 0));
    CHECK_EQ_U64(v, 1);
    CHECK_CU(cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED, 0));
    CHECK_EQ_U64(v, 1);
    size_t total = 0;
    CHECK_CU(cuDeviceTotalMem(&total, 0));
    CHECK(total > 0);
    CUuuid u;
    CHECK_CU(cuDeviceGetUuid(&u, 0));
}

TEST(contexts) {
    CUcontext primary = sim_test_setup(), c2 = NULL, cur = NULL, popped = NULL;
    unsigned flags;
    int active = 0;
    CHECK_CU(cuDevicePrimaryCtxGetState(0, &flags, &active));
    CHECK(active);
    CHECK_CU(cuCtxCreate(&c2, NULL, 0, 0));
    CHECK_CU(cuCtxGetCurrent(&cur));
    CHECK(cur == c2);
    CHECK_CU(cuCtxPopCurrent(&popped));
    CHECK(popped == c2);
    CHECK_CU(cuCtxGetCurrent(&cur));
    CHECK(cur == primary);
    CHECK_CU(cuCtxPushCurrent(c2));
    CHECK_CU(cuCtxSynchronize());
    CUdevice d = -1;
    CHECK_CU(cuCtxGetDevice(&d));
    CHECK_EQ_U64(d, 0);
    CHECK_CU(cuCtxDestroy(c2));
    CHECK_CU(cuCtxGetCurrent(&cur));
    CHECK(cur == primary);
}

TEST(errors) {
    const char *s = NULL;
    CHECK_CU(cuGetErrorName(CUDA_ERROR_OUT_OF_MEMORY, &s));
    CHECK_STR(s, "CUDA_ERROR_OUT_OF_MEMORY");
    CHECK_CU(cuGetErrorString(CUDA_ERROR_INVALID_VALUE, &s));
    CHECK(s && strlen(s) > 10);
    CHECK_EQ_U64(cuGetErrorName((CUresult)12345, &s), CUDA_ERROR_INVALID_VALUE);
}

TEST(proc_address_versions) {
    void *fn;
    CUdriverProcAddressQueryResult st;
    CHECK_CU(cuGetProcAddress("cuMemAlloc", &fn, 3000, 0, &st));
    CHECK(fn == dlsym(RTLD_DEFAULT, "cuMemAlloc"));
    CHECK(fn != dlsym(RTLD_DEFAULT, "cuMemAlloc_v2"));
    CHECK_CU(cuGetProcAddress("cuMemcpyHtoD", &fn, 12000,
                              CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, &st));
    CHECK(fn == dlsym(RTLD_DEFAULT, "cuMemcpyHtoD_v2_ptds"));
    CHECK_CU(cuGetProcAddress("cuLaunchKernel", &fn, 12000,
                              CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, &st));
    CHECK(fn == dlsym(RTLD_DEFAULT, "cuLaunchKernel_ptsz"));
    CHECK_CU(cuGetProcAddress("cuLaunchKernel", &fn, 12000, 0, &st));
    CHECK(fn == dlsym(RTLD_DEFAULT, "cuLaunchKernel"));
    CHECK_CU(cuGetProcAddress("cuCtxCreate", &fn, 13000, 0, &st));
    CHECK(fn == dlsym(RTLD_DEFAULT, "cuCtxCreate_v4"));
    CHECK_CU(cuGetProcAddress("cuStreamBeginCapture", &fn, 12000,
                              CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, &st));
    CHECK(fn == dlsym(RTLD_DEFAULT, "cuStreamBeginCapture_v2_ptsz"));
    /* renamed in 12.0 (cuda.h: #define cuGraphInstantiate cuGraphInstantiateWithFlags) */
    CHECK_CU(cuGetProcAddress("cuGraphInstantiate", &fn, 12000, 0, &st));
    CHECK(fn == dlsym(RTLD_DEFAULT, "cuGraphInstantiateWithFlags"));
    CHECK_CU(cuGetProcAddress("cuGraphInstantiate", &fn, 11040, 0, &st));
    CHECK(fn == dlsym(RTLD_DEFAULT, "cuGraphInstantiate_v2"));
    CHECK_EQ_U64(cuGetProcAddress("cuMemCreate", &fn, 10000, 0, &st), CUDA_ERROR_NOT_FOUND);
    CHECK_EQ_U64(st, CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT);
    CHECK(fn == NULL);
    CHECK_EQ_U64(cuGetProcAddress("cuNoSuchThing", &fn, 13000, 0, &st), CUDA_ERROR_NOT_FOUND);
    CHECK_EQ_U64(st, CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND);
    /* an unimplemented entry point exists and says so */
    CHECK_CU(cuGetProcAddress("cuArrayCreate", &fn, 13000, 0, &st));
    CHECK(fn != NULL);
    CHECK_EQ_U64(((PFN_cuArrayCreate_v3020)fn)(NULL, NULL), CUDA_ERROR_NOT_SUPPORTED);
    /* v1 of the resolver */
    void *fn1 = NULL;
    CHECK_CU(((PFN_cuGetProcAddress_v11030)dlsym(RTLD_DEFAULT, "cuGetProcAddress"))(
        "cuMemFree", &fn1, 12000, 0));
    CHECK(fn1 == dlsym(RTLD_DEFAULT, "cuMemFree_v2"));
}

int main(void) {
    RUN(before_init);
    RUN(device_queries);
    RUN(contexts);
    RUN(errors);
    RUN(proc_address_versions);
    return check_summary();
}
