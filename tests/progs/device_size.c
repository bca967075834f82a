/*
 * device_size — what a program reads of device 0's memory: cuDeviceTotalMem (which
 * cudaDeviceProp.totalGlobalMem comes from, and PyTorch's expandable segments reserve
 * their address range from) before any context exists and again with one current, then
 * cuMemGetInfo. Prints
 *   device_size: total before context N
 *   device_size: total N
 *   device_size: mem_get_info free N total N
 * (bytes). A failed call prints "device_size: FILE:LINE: CALL = CUDA_ERROR_NAME", exits 1.
 */
#include "tests/progs/prog_check.h"

int main(void) {
    CUdevice dev;
    size_t before = 0, total = 0, free_bytes = 0, info_total = 0;
    PROG_CHECK_CU(cuInit(0));
    PROG_CHECK_CU(cuDeviceGet(&dev, 0));
    PROG_CHECK_CU(cuDeviceTotalMem(&before, dev));
    printf("device_size: total before context %zu\n", before);
    prog_primary_context(&dev);
    PROG_CHECK_CU(cuDeviceTotalMem(&total, dev));
    printf("device_size: total %zu\n", total);
    PROG_CHECK_CU(cuMemGetInfo(&free_bytes, &info_total));
    printf("device_size: mem_get_info free %zu total %zu\n", free_bytes, info_total);
    return 0;
}
