/*
 * devcode.c — loading the embedded PTX, launching the fingerprint.
 */
#include "runtime/devcode/devcode.h"

#include "driver/driver.h"
#include "runtime/devcode/fingerprint_ptx.h"

#define FINGERPRINT_THREADS 256u
/* Enough blocks to fill any GPU (an H200 holds 132 x 8 of these at once), few enough
 * that each thread sums a run of words and the atomics stay negligible. */
#define FINGERPRINT_MAX_BLOCKS 1024u
#define FINGERPRINT_WORDS_PER_THREAD 8u

static CUresult load(struct devcode *dc, CUcontext ctx) {
    const struct driver_table *d = driver();
    CUcontext current = NULL;
    if (!d->cuModuleLoadData || !d->cuModuleGetFunction) {
        dc->failed_call = "cuModuleLoadData (not in the driver)";
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    bool pushed = d->cuCtxGetCurrent(&current) == CUDA_SUCCESS && current != ctx &&
                  d->cuCtxPushCurrent_v2(ctx) == CUDA_SUCCESS;
    dc->failed_call = "cuModuleLoadData";
    CUresult r = d->cuModuleLoadData(&dc->module, fingerprint_ptx);
    if (r == CUDA_SUCCESS) {
        dc->failed_call = "cuModuleGetFunction";
        r = d->cuModuleGetFunction(&dc->fingerprint, dc->module, "offload_fingerprint");
    }
    if (pushed) {
        CUcontext popped;
        d->cuCtxPopCurrent_v2(&popped);
    }
    return r;
}

CUresult devcode_fingerprint(struct devcode *dc, CUcontext ctx, CUfunction *f) {
    if (dc->status == DEVCODE_UNTRIED) {
        dc->failure = load(dc, ctx);
        dc->status = dc->failure == CUDA_SUCCESS ? DEVCODE_READY : DEVCODE_FAILED;
    }
    if (dc->status != DEVCODE_READY)
        return dc->failure;
    *f = dc->fingerprint;
    return CUDA_SUCCESS;
}

CUresult devcode_launch_fingerprint(CUfunction f, CUdeviceptr data, uint64_t bytes,
                                    CUdeviceptr sums, CUstream stream) {
    uint64_t per_block = (uint64_t)FINGERPRINT_THREADS * FINGERPRINT_WORDS_PER_THREAD;
    uint64_t blocks = (bytes / 8 + per_block - 1) / per_block;
    if (blocks == 0)
        blocks = 1;
    if (blocks > FINGERPRINT_MAX_BLOCKS)
        blocks = FINGERPRINT_MAX_BLOCKS;
    unsigned long long p_data = data, p_bytes = bytes, p_sums = sums;
    void *params[] = {&p_data, &p_bytes, &p_sums};
    return driver()->cuLaunchKernel(f, (unsigned)blocks, 1, 1, FINGERPRINT_THREADS, 1, 1, 0, stream,
                                    params, NULL);
}
