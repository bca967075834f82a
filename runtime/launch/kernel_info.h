/*
 * kernel_info.h — a launched handle's parameters and name, whether it is a CUfunction or
 * a CUkernel cast to CUfunction (cudart 12+ launches the CUkernel handles cuLibrary*
 * gives). The driver may reject a CUkernel in cuFuncGetParamInfo / cuFuncGetName with
 * CUDA_ERROR_INVALID_HANDLE (the simulator does, as the stricter real behaviour), so
 * each asks the cuFunc* entry point first and, on INVALID_HANDLE, the cuKernel* one.
 */
#ifndef OFFLOAD_KERNEL_INFO_H
#define OFFLOAD_KERNEL_INFO_H

#include <cuda.h>

/* cuFuncGetParamInfo's contract: CUDA_SUCCESS, CUDA_ERROR_INVALID_VALUE past the last
 * parameter, another error when the layout cannot be learnt. */
CUresult kernel_param_info(CUfunction f, size_t index, size_t *offset, size_t *size);

/* The kernel's name, or NULL when the driver cannot tell. */
const char *kernel_name(CUfunction f);

#endif /* OFFLOAD_KERNEL_INFO_H */
