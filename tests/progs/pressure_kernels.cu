/*
 * pressure_kernels.cu — kernels for the runtime's end-to-end programs (threads_pressure):
 * they read and write their buffers, so a buffer that is not resident when one runs
 * faults on the simulator instead of passing by luck.
 */
#ifndef SIM_KERNEL
#define SIM_KERNEL(name)
#endif

/* p[i] += delta for i < n. */
extern "C" __global__ void add_u32(unsigned *p, unsigned long long n, unsigned delta) {
    unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        p[i] += delta;
}
SIM_KERNEL(add_u32)

/* dst[i] = src[i] ^ mask for i < n: two buffers in one launch. */
extern "C" __global__ void xor_copy_u32(unsigned *dst, const unsigned *src, unsigned long long n,
                                        unsigned mask) {
    unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        dst[i] = src[i] ^ mask;
}
SIM_KERNEL(xor_copy_u32)
