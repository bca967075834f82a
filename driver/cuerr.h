/*
 * cuerr.h — naming driver failures in liboffload's messages: "cuMemCreate failed:
 * CUDA_ERROR_OUT_OF_MEMORY", so a user (and the fault-injection tests) can tell which call
 * broke.
 */
#ifndef OFFLOAD_CUERR_H
#define OFFLOAD_CUERR_H

#include <cuda.h>

/* "CUDA_ERROR_..." from the driver, or "CUDA error N" when it cannot say. */
const char *cuerr_name(CUresult r);

/* Remembers the call that failed last in *slot when r is an error; returns r. */
static inline CUresult cuerr_note(const char **slot, const char *call, CUresult r) {
    if (r != CUDA_SUCCESS)
        *slot = call;
    return r;
}

#endif /* OFFLOAD_CUERR_H */
