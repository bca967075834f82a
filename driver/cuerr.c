/*
 * cuerr.c — error names through the driver's own cuGetErrorName.
 */
#include "driver/cuerr.h"

#include "driver/driver.h"

const char *cuerr_name(CUresult r) {
    const char *name = NULL;
    if (driver()->cuGetErrorName && driver()->cuGetErrorName(r, &name) == CUDA_SUCCESS && name)
        return name;
    return r == CUDA_ERROR_OUT_OF_MEMORY ? "CUDA_ERROR_OUT_OF_MEMORY" : "CUDA error (unnamed)";
}
