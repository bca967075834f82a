/*
 * stress_kernels.cu — kernels for tests/progs/stress_threads.c. Each reads and writes
 * every word it is given, so a buffer that is evicted (unmapped) while one runs faults on
 * the simulator instead of passing by luck.
 */
#ifndef SIM_KERNEL
#define SIM_KERNEL(name)
#endif

/* p[i] += delta for i < n. */
extern "C" __global__ void stress_add(unsigned *p, unsigned long long n, unsigned delta) {
    unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        p[i] += delta;
}
SIM_KERNEL(stress_add)

/* dst[i] = (src[i] ^ key) + common[i % common_n] for i < n: three buffers in one launch,
 * one of them shared by every thread. */
extern "C" __global__ void stress_mix(unsigned *dst, const unsigned *src, const unsigned *common,
                                      unsigned long long n, unsigned long long common_n,
                                      unsigned key) {
    unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        dst[i] = (src[i] ^ key) + common[i % common_n];
}
SIM_KERNEL(stress_mix)
