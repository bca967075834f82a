/*
 * simkernel.h — the kernel ABI of the simulated driver.
 *
 * On a real GPU a module is a cubin. On the simulator a module is a host shared
 * object, loaded by cuModuleLoad with dlopen(). For every kernel NAME it exports one
 * symbol, SIMKERNEL_SYMBOL_PREFIX "NAME", of type `const struct simkernel_desc`:
 * cuModuleGetFunction(&f, mod, "NAME") is a dlsym() of that symbol.
 *
 * The descriptor gives what the driver itself knows about a compiled kernel:
 *  - its parameter layout, as cuFuncGetParamInfo reports it (offset and size of each
 *    parameter in the packed argument buffer that CU_LAUNCH_PARAM_BUFFER_POINTER uses);
 *  - `run`, which executes the whole grid on the calling thread. `args[i]` points to
 *    the value of parameter i, exactly like cuLaunchKernel's kernelParams.
 *
 * Kernels are written once in CUDA C. tests/sim/cuda_host.h compiles the same source
 * as host C++ and generates these descriptors (see SIM_KERNEL there). Threads of a
 * block run one after another, so simulated kernels may not use __syncthreads() or
 * rely on shared memory between threads.
 */
#ifndef SIMKERNEL_H
#define SIMKERNEL_H

#include <stddef.h>

#define SIMKERNEL_ABI_VERSION 1
#define SIMKERNEL_MAX_PARAMS 32
#define SIMKERNEL_SYMBOL_PREFIX "simkernel__"

#ifdef __cplusplus
extern "C" {
#endif

struct simkernel_dim3 {
    unsigned x, y, z;
};

struct simkernel_desc {
    unsigned abi_version; /* SIMKERNEL_ABI_VERSION */
    const char *name;     /* the kernel's name, as cuFuncGetName returns it */
    unsigned param_count;
    size_t param_offset[SIMKERNEL_MAX_PARAMS];
    size_t param_size[SIMKERNEL_MAX_PARAMS];
    void (*run)(struct simkernel_dim3 grid, struct simkernel_dim3 block, void **args);
};

#ifdef __cplusplus
}
#endif

#endif /* SIMKERNEL_H */
