/* runtime/launch/kernel_info: a launched handle's layout and name, CUfunction or CUkernel,
 * on the simulated driver (which rejects a CUkernel in cuFunc* calls). */
#include "driver/driver.h"
#include "runtime/launch/kernel_info.h"
#include "tests/unit/check.h"

#include <dlfcn.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

static char build_dir[PATH_MAX];

static void *sim_symbol(const char *name) {
    return dlsym(driver_handle(), name);
}

TEST(function_and_kernel_give_the_same_layout) {
    CUdevice dev = 0;
    CUcontext ctx;
    CHECK_CU(driver()->cuInit(0));
    CHECK_CU(
        ((CUresult(*)(CUcontext *, CUdevice))sim_symbol("cuDevicePrimaryCtxRetain"))(&ctx, dev));
    CHECK_CU(driver()->cuCtxSetCurrent(ctx));
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/progs/sim_kernels.so", build_dir);
    CUlibrary lib;
    CUkernel k;
    CUfunction f;
    CHECK_CU(((__typeof__(&cuLibraryLoadFromFile))sim_symbol("cuLibraryLoadFromFile"))(
        &lib, path, NULL, NULL, 0, NULL, NULL, 0));
    CHECK_CU(((__typeof__(&cuLibraryGetKernel))sim_symbol("cuLibraryGetKernel"))(&k, lib,
                                                                                 "mixed_params"));
    CHECK_CU(((__typeof__(&cuKernelGetFunction))sim_symbol("cuKernelGetFunction"))(&f, k));
    /* the simulator is strict: the cuFunc* entry points refuse the CUkernel */
    size_t off = 0, size = 0;
    CHECK_EQ_U64(driver()->cuFuncGetParamInfo((CUfunction)k, 0, &off, &size),
                 CUDA_ERROR_INVALID_HANDLE);
    /* mixed_params(char, double, int, unsigned long long *) */
    const size_t want_off[] = {0, 8, 16, 24}, want_size[] = {1, 8, 4, 8};
    for (size_t i = 0; i < 4; i++) {
        CHECK_CU(kernel_param_info(f, i, &off, &size));
        CHECK_EQ_U64(off, want_off[i]);
        CHECK_EQ_U64(size, want_size[i]);
        off = size = 99;
        CHECK_CU(kernel_param_info((CUfunction)k, i, &off, &size));
        CHECK_EQ_U64(off, want_off[i]);
        CHECK_EQ_U64(size, want_size[i]);
    }
    CHECK_EQ_U64(kernel_param_info(f, 4, &off, &size), CUDA_ERROR_INVALID_VALUE);
    CHECK_EQ_U64(kernel_param_info((CUfunction)k, 4, &off, &size), CUDA_ERROR_INVALID_VALUE);
    CHECK_STR(kernel_name(f), "mixed_params");
    CHECK_STR(kernel_name((CUfunction)k), "mixed_params");
    CHECK_CU(((__typeof__(&cuLibraryUnload))sim_symbol("cuLibraryUnload"))(lib));
}

int main(void) {
    char self[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0)
        return 1;
    self[len] = '\0';
    snprintf(build_dir, sizeof build_dir, "%s/..", dirname(self));
    char sim[PATH_MAX + 32];
    snprintf(sim, sizeof sim, "%s/sim/libcuda.so.1", build_dir);
    setenv("OFFLOAD_DRIVER", sim, 1);
    RUN(function_and_kernel_give_the_same_layout);
    return check_summary();
}
