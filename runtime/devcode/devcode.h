/*
 * devcode.h — liboffload's own device code: the PTX embedded from fingerprint.cu, loaded
 * at its first need into liboffload's context through the real driver table (driver/),
 * never through liboffload's hooks (its launches are not the program's).
 *
 * Any failure (the module does not load, the entry is missing) is final for the process:
 * the caller falls back to what it did without device code. Callers hold the runtime lock.
 */
#ifndef OFFLOAD_DEVCODE_H
#define OFFLOAD_DEVCODE_H

#include <cuda.h>
#include <stdint.h>

enum devcode_status { DEVCODE_UNTRIED, DEVCODE_READY, DEVCODE_FAILED };

struct devcode {
    enum devcode_status status;
    CUresult failure;        /* why it failed, for the message */
    const char *failed_call; /* which call */
    CUmodule module;
    CUfunction fingerprint; /* offload_fingerprint(data, bytes, sums) */
};

/* The fingerprint kernel, loading the module into ctx (pushed for the load when it is not
 * current) at the first call. CUDA_SUCCESS with *f set, or the load's error (this call's
 * or the first one's). */
CUresult devcode_fingerprint(struct devcode *dc, CUcontext ctx, CUfunction *f);

/* Queues the fingerprint of [data, data+bytes) on stream: adds its two sums to
 * sums[0..1] (16 bytes of device memory the caller zeroed on that stream). */
CUresult devcode_launch_fingerprint(CUfunction f, CUdeviceptr data, uint64_t bytes,
                                    CUdeviceptr sums, CUstream stream);

#endif /* OFFLOAD_DEVCODE_H */
