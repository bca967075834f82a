/*
 * engine.h — the pipeline's driver state: device, primary context, the compute stream and
 * the kernel module. Everything the forward passes need travels in one struct engine,
 * passed explicitly; there is no global state.
 *
 * The kernel module matches the driver it runs on: a device whose name starts with
 * "simcuda" is the simulated driver, which loads kernels.host.so (the kernels compiled
 * for the CPU); any other device loads kernels.cubin. Both are looked up next to the
 * executable; PIPELINE_MODULE=path overrides the choice. --like torch loads the same file
 * as a CUlibrary instead (torch_launch.h).
 */
#ifndef PIPELINE_ENGINE_H
#define PIPELINE_ENGINE_H

#include "examples/pipeline/args.h"
#include "examples/pipeline/launch.h"
#include "examples/pipeline/torch_launch.h"

#include <cuda.h>
#include <limits.h>
#include <stddef.h>

#define ENGINE_SIM_PREFIX "simcuda"

struct engine {
    CUdevice device;
    CUcontext context; /* the device's primary context, as the CUDA runtime uses */
    CUstream stream;   /* compute and input uploads; weights go up with cuMemcpyHtoD */
    CUmodule module;
    char device_name[256];
    size_t device_bytes;
    char module_path[PATH_MAX];
    struct kernels kernels;
    const char *component; /* the component running now, for error messages */
    /* --like torch: kernels from a CUlibrary, launched as CUkernel with cuLaunchKernelEx */
    bool like_torch;
    CUlibrary library;
    struct torch_kernels torch;
    struct tensor_map_cache *maps; /* the GEMM's weight tensor maps, encoded once each */
    /* device memory (device_memory.h) */
    enum allocator_kind allocator;
    struct caching_alloc *cache; /* caching and expandable */
    CUmemoryPool pool;           /* async: the device's default pool */
};

/* cuInit, device 0, its primary context made current, a stream, the kernel module and
 * every kernel in it. Exits with a message on any failure. */
void engine_open(struct engine *e, const struct pipeline_args *a);

/* Waits for the stream; failures are reported as "finishing <component>". */
void engine_sync(struct engine *e);

/* Releases what engine_open acquired; every tensor must have been freed. */
void engine_close(struct engine *e);

#endif /* PIPELINE_ENGINE_H */
