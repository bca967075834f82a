/* cuda_check.c — see cuda_check.h. */
#include "examples/pipeline/cuda_check.h"

#include <stdio.h>
#include <stdlib.h>

const char *cuda_error_name(CUresult r, char *buf, size_t size) {
    const char *name = NULL;
    if (cuGetErrorName(r, &name) == CUDA_SUCCESS && name)
        return name;
    snprintf(buf, size, "CUDA_ERROR_%d", (int)r);
    return buf;
}

const char *format_bytes(size_t bytes, char *buf, size_t size) {
    if (bytes >= (size_t)1 << 30)
        snprintf(buf, size, "%.1f GiB", (double)bytes / (1 << 30));
    else if (bytes >= (size_t)1 << 20)
        snprintf(buf, size, "%.1f MiB", (double)bytes / (1 << 20));
    else if (bytes >= (size_t)1 << 10)
        snprintf(buf, size, "%.1f KiB", (double)bytes / (1 << 10));
    else
        snprintf(buf, size, "%zu bytes", bytes);
    return buf;
}

void cuda_check(CUresult r, const char *call, const char *what, const char *component) {
    if (r == CUDA_SUCCESS)
        return;
    char buf[32];
    fflush(stdout);
    fprintf(stderr, "pipeline: %s failed: %s (%s, component %s)\n", call,
            cuda_error_name(r, buf, sizeof buf), what, component ? component : "none");
    exit(1);
}

void cuda_out_of_memory(size_t bytes, const char *component, const char *tensor, const char *call,
                        CUresult r) {
    char b1[32], b2[32], b3[32], name[32];
    size_t free_bytes = 0, total_bytes = 0;
    fflush(stdout);
    fprintf(stderr, "pipeline: out of memory allocating %zu bytes (%s) for %s/%s (%s: %s", bytes,
            format_bytes(bytes, b1, sizeof b1), component, tensor, call,
            cuda_error_name(r, name, sizeof name));
    if (cuMemGetInfo(&free_bytes, &total_bytes) == CUDA_SUCCESS)
        fprintf(stderr, "; device memory: %s free of %s", format_bytes(free_bytes, b2, sizeof b2),
                format_bytes(total_bytes, b3, sizeof b3));
    fprintf(stderr, ")\n");
    exit(1);
}

CUdeviceptr cuda_alloc(size_t bytes, const char *component, const char *tensor) {
    CUdeviceptr p = 0;
    CUresult r = cuMemAlloc(&p, bytes);
    if (r == CUDA_ERROR_OUT_OF_MEMORY)
        cuda_out_of_memory(bytes, component, tensor, "cuMemAlloc", r);
    if (r != CUDA_SUCCESS) {
        char what[128];
        snprintf(what, sizeof what, "allocating %zu bytes for %s/%s", bytes, component, tensor);
        cuda_check(r, "cuMemAlloc", what, component);
    }
    return p;
}

void cuda_free(CUdeviceptr p, const char *component, const char *tensor) {
    if (!p)
        return;
    char what[128];
    snprintf(what, sizeof what, "freeing %s/%s", component, tensor);
    CU_CALL(cuMemFree, (p), what, component);
}
