/*
 * kernel_info.c — parameters and name of a CUfunction or a CUkernel (kernel_info.h).
 */
#include "runtime/launch/kernel_info.h"

#include "driver/driver.h"

CUresult kernel_param_info(CUfunction f, size_t index, size_t *offset, size_t *size) {
    const struct driver_table *d = driver();
    CUresult r = d->cuFuncGetParamInfo ? d->cuFuncGetParamInfo(f, index, offset, size)
                                       : CUDA_ERROR_NOT_SUPPORTED;
    if (r == CUDA_ERROR_INVALID_HANDLE && d->cuKernelGetParamInfo)
        r = d->cuKernelGetParamInfo((CUkernel)f, index, offset, size);
    return r;
}

const char *kernel_name(CUfunction f) {
    const struct driver_table *d = driver();
    const char *name = NULL;
    CUresult r = d->cuFuncGetName ? d->cuFuncGetName(&name, f) : CUDA_ERROR_NOT_SUPPORTED;
    if (r == CUDA_ERROR_INVALID_HANDLE && d->cuKernelGetName)
        r = d->cuKernelGetName(&name, (CUkernel)f);
    return r == CUDA_SUCCESS ? name : NULL;
}
