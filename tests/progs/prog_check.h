/*
 * prog_check.h — what the test programs share: stopping on a failed driver call, and
 * the usual start (device 0's primary context, current).
 *
 * prog_beside_exe(file) is the path of FILE in the program's own folder (the build puts a
 * program's kernel module there); prog_check_words(p, n, want, name) reads N 32-bit words
 * back and stops with "PROGRAM: NAME[i] is X, not WANT" at the first that differs.
 *
 * PROG_CHECK_CU(call) prints "PROGRAM: FILE:LINE: CALL = CUDA_ERROR_NAME" on stderr and
 * exits 1: the bats tests read the error name, a person reads where it came from.
 */
#ifndef PROG_CHECK_H
#define PROG_CHECK_H

#include <cuda.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

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

/* FILE in the folder of /proc/self/exe; the result lives until the next call. */
static inline const char *prog_beside_exe(const char *file) {
    static char path[PATH_MAX];
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[len > 0 ? len : 0] = 0;
    snprintf(path, sizeof path, "%s/%s", dirname(exe), file);
    return path;
}

/* Reads N words at P back; every one must be WANT. Returns their sum. */
static inline uint64_t prog_check_words(CUdeviceptr p, unsigned long long n, unsigned want,
                                        const char *name) {
    unsigned *host = malloc(n * sizeof *host);
    if (!host) {
        fprintf(stderr, "%s: out of host memory for %llu words\n", program_invocation_short_name,
                n);
        exit(1);
    }
    PROG_CHECK_CU(cuMemcpyDtoH(host, p, n * sizeof *host));
    uint64_t sum = 0;
    for (unsigned long long i = 0; i < n; i++) {
        if (host[i] != want) {
            fprintf(stderr, "%s: %s[%llu] is %u, not %u\n", program_invocation_short_name, name, i,
                    host[i], want);
            exit(1);
        }
        sum += host[i];
    }
    free(host);
    return sum;
}

#endif /* PROG_CHECK_H */
