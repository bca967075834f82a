/*
 * runtime.c — first cut: every call passes straight through to the driver.
 * Replaced piece by piece by the registry, residency and policy modules.
 */
#include "runtime/runtime.h"

#include "interpose/driver.h"

void runtime_early_init(void) {}

void runtime_shutdown(void) {}

CUresult runtime_mem_alloc(CUdeviceptr *dptr, size_t bytes) {
    return driver()->cuMemAlloc_v2(dptr, bytes);
}

CUresult runtime_mem_free(CUdeviceptr dptr) {
    return driver()->cuMemFree_v2(dptr);
}

CUresult runtime_mem_get_info(size_t *free_bytes, size_t *total_bytes) {
    return driver()->cuMemGetInfo_v2(free_bytes, total_bytes);
}

bool runtime_address_range(CUdeviceptr dptr, CUdeviceptr *base, size_t *size) {
    (void)dptr, (void)base, (void)size;
    return false;
}

CUresult runtime_before_launch(CUfunction f, CUstream stream, void **params, void **extra) {
    (void)f, (void)stream, (void)params, (void)extra;
    return CUDA_SUCCESS;
}

CUresult runtime_before_access(CUdeviceptr ptr, size_t bytes, CUstream stream) {
    (void)ptr, (void)bytes, (void)stream;
    return CUDA_SUCCESS;
}

void runtime_graph_instantiated(CUgraphExec exec, CUgraph graph) {
    (void)exec, (void)graph;
}

CUresult runtime_before_graph_launch(CUgraphExec exec, CUstream stream) {
    (void)exec, (void)stream;
    return CUDA_SUCCESS;
}

void runtime_graph_exec_destroyed(CUgraphExec exec) {
    (void)exec;
}

void runtime_stream_destroyed(CUstream stream) {
    (void)stream;
}
