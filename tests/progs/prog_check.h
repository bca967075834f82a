/*
 * prog_check.h — what the test programs share: stopping on a failed driver call, and
 * the usual start (device 0's primary context, current).
 *
 * PROG_CHECK_CU(call) prints "PROGRAM: FILE:LINE: CALL = CUDA_ERROR_NAME" on stderr and
 * exits 1: the bats tests read the error name, a person reads where it came from.
 */
#ifndef PROG_CHECK_H
#define PROG_CHECK_H

#include <cuda.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#define PROG_CHECK_CU(call)                                                                        \
    do {                                                                                           \
        CUresult prog_r_ = (call);                                                                 \
        if (prog_r_ != CUDA_SUCCESS) {                                                             \
            const char *prog_name_ = "?";                                                          \
            cuGetErrorName(prog_r_, &prog_name_);                                                  \
            fprintf(stderr, "%s: %s:%d: %s = %s\n", program_invocation_short_name, __FILE__,       \
                    __LINE__, #call, prog_name_);                                                  \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

/* cuInit, then device 0's primary context made current; *dev receives device 0. */
static inline CUcontext prog_primary_context(CUdevice *dev) {
    CUcontext ctx;
    PROG_CHECK_CU(cuInit(0));
    PROG_CHECK_CU(cuDeviceGet(dev, 0));
    PROG_CHECK_CU(cuDevicePrimaryCtxRetain(&ctx, *dev));
    PROG_CHECK_CU(cuCtxSetCurrent(ctx));
    return ctx;
}

#endif /* PROG_CHECK_H */
