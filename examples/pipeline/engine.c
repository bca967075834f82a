/* engine.c — see engine.h. */
#include "examples/pipeline/engine.h"

#include "examples/pipeline/cuda_check.h"
#include "examples/pipeline/device_memory.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The directory of the running executable, from /proc/self/exe. */
static void executable_dir(char *dir, size_t size) {
    ssize_t n = readlink("/proc/self/exe", dir, size - 1);
    if (n <= 0) {
        snprintf(dir, size, ".");
        return;
    }
    dir[n] = '\0';
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
}

static void choose_module(struct engine *e) {
    const char *forced = getenv("PIPELINE_MODULE");
    if (forced && *forced) {
        snprintf(e->module_path, sizeof e->module_path, "%s", forced);
        return;
    }
    char dir[PATH_MAX];
    executable_dir(dir, sizeof dir);
    bool simulated = strncmp(e->device_name, ENGINE_SIM_PREFIX, strlen(ENGINE_SIM_PREFIX)) == 0;
    int n = snprintf(e->module_path, sizeof e->module_path, "%s/%s", dir,
                     simulated ? "kernels.host.so" : "kernels.cubin");
    if (n < 0 || (size_t)n >= sizeof e->module_path) {
        fprintf(stderr, "pipeline: path of the kernel module too long\n");
        exit(1);
    }
}

static void find_module(struct engine *e) {
    choose_module(e);
    if (access(e->module_path, R_OK) != 0) {
        fprintf(stderr,
                "pipeline: kernel module %s: %s (build it with `make pipeline`; the cubin "
                "needs nvcc; PIPELINE_MODULE=path picks another)\n",
                e->module_path, strerror(errno));
        exit(1);
    }
}

static void load_module(struct engine *e) {
    CUresult r = cuModuleLoad(&e->module, e->module_path);
    if (r == CUDA_ERROR_NO_BINARY_FOR_GPU || r == CUDA_ERROR_INVALID_IMAGE) {
        int major = 0, minor = 0;
        cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, e->device);
        cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, e->device);
        char buf[32];
        fprintf(stderr,
                "pipeline: cuModuleLoad failed: %s (loading %s on %s, compute capability "
                "%d.%d; rebuild with `make pipeline GPU_ARCH=sm_%d%d`, component none)\n",
                cuda_error_name(r, buf, sizeof buf), e->module_path, e->device_name, major, minor,
                major, minor);
        exit(1);
    }
    char what[PATH_MAX + 16];
    snprintf(what, sizeof what, "loading %s", e->module_path);
    cuda_check(r, "cuModuleLoad", what, "none");
}

void engine_open(struct engine *e, const struct pipeline_args *a) {
    memset(e, 0, sizeof *e);
    e->like_torch = a->like_torch;
    CU_CALL(cuInit, (0), "initialising the driver", "none");
    int count = 0;
    CU_CALL(cuDeviceGetCount, (&count), "counting devices", "none");
    if (count < 1) {
        fprintf(stderr, "pipeline: no CUDA device\n");
        exit(1);
    }
    CU_CALL(cuDeviceGet, (&e->device, 0), "opening device 0", "none");
    CU_CALL(cuDeviceGetName, (e->device_name, sizeof e->device_name, e->device),
            "reading the device name", "none");
    CU_CALL(cuDeviceTotalMem, (&e->device_bytes, e->device), "reading the device memory", "none");
    CU_CALL(cuDevicePrimaryCtxRetain, (&e->context, e->device), "retaining the primary context",
            "none");
    CU_CALL(cuCtxSetCurrent, (e->context), "making the primary context current", "none");
    CU_CALL(cuStreamCreate, (&e->stream, CU_STREAM_DEFAULT), "creating the compute stream", "none");
    device_memory_open(e, a->allocator);
    find_module(e);
    if (e->like_torch) {
        torch_open(e);
        return;
    }
    load_module(e);
    kernels_lookup(e);
}

void engine_sync(struct engine *e) {
    char what[64];
    snprintf(what, sizeof what, "finishing %s", e->component ? e->component : "the run");
    CU_CALL(cuStreamSynchronize, (e->stream), what, e->component);
}

void engine_close(struct engine *e) {
    device_memory_close(e);
    CU_CALL(cuStreamDestroy, (e->stream), "destroying the compute stream", "none");
    if (e->like_torch)
        torch_close(e);
    if (e->module)
        CU_CALL(cuModuleUnload, (e->module), "unloading the kernel module", "none");
    CU_CALL(cuDevicePrimaryCtxRelease, (e->device), "releasing the primary context", "none");
}
