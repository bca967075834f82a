/*
 * prog_check.h — the test programs' way to stop on a failed driver call.
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

#endif /* PROG_CHECK_H */
