/*
 * cuda_check.h — every driver call the pipeline makes is checked; a failure ends the
 * program with one line that names the call, the driver's error name, what was being
 * done and the component it was done for, and exit status 1:
 *
 *   pipeline: cuMemcpyHtoD failed: CUDA_ERROR_INVALID_VALUE (uploading unet/block3.w_up,
 *   component unet)
 *
 * Running out of device memory gets its own message, naming the allocation:
 *
 *   pipeline: out of memory allocating 42991616 bytes (41.0 MiB) for unet/block3.w_up ...
 */
#ifndef PIPELINE_CUDA_CHECK_H
#define PIPELINE_CUDA_CHECK_H

#include <cuda.h>
#include <stddef.h>

/* CU_CALL(cuMemAlloc, (&p, n), "what", "component"): the call's name is the macro
 * argument as written, before cuda.h renames it to its _v2 symbol. */
#define CU_CALL(fn, args, what, component) cuda_check(fn args, #fn, (what), (component))

/* Returns if r is CUDA_SUCCESS; otherwise prints the failure and exits with status 1. */
void cuda_check(CUresult r, const char *call, const char *what, const char *component);

/* cuMemAlloc that reports running out of memory as "out of memory allocating N bytes for
 * COMPONENT/TENSOR", with the device's free and total memory. */
CUdeviceptr cuda_alloc(size_t bytes, const char *component, const char *tensor);

/* Prints "out of memory allocating N bytes (...) for COMPONENT/TENSOR (CALL: ERROR; device
 * memory: F free of T)" and exits with status 1. */
void cuda_out_of_memory(size_t bytes, const char *component, const char *tensor, const char *call,
                        CUresult r);

/* cuMemFree, checked. A zero pointer is ignored. */
void cuda_free(CUdeviceptr p, const char *component, const char *tensor);

/* The driver's name for r ("CUDA_ERROR_OUT_OF_MEMORY"), or "CUDA_ERROR_<number>". */
const char *cuda_error_name(CUresult r, char *buf, size_t size);

/* "41.0 MiB": bytes in binary units, for messages. */
const char *format_bytes(size_t bytes, char *buf, size_t size);

#endif /* PIPELINE_CUDA_CHECK_H */
