// The smallest CUDA runtime program: its first runtime call makes cudart (linked
// statically, as nvcc does by default) load the driver and resolve every entry point it
// uses through cuGetProcAddress. tests/cudart.bats reads those requests from
// liboffload's resolver log. No kernel: only the runtime's start-up matters here.
#include <cuda_runtime.h>
#include <stdio.h>

int main(void) {
    int version = 0;
    cudaError_t e = cudaDriverGetVersion(&version);
    printf("cudaDriverGetVersion: %s (%d)\n", cudaGetErrorName(e), version);
    e = cudaFree(0);
    printf("cudaFree(0): %s\n", cudaGetErrorName(e));
    return 0;
}
