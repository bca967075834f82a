/*
 * alloc_kernels.cu — kernels of tests/progs/alloc_kinds: they write and read every word
 * of their buffer, so a buffer that is not resident (or not yet allocated in stream
 * order) when one runs faults on the simulator instead of passing by luck.
 */
#ifndef SIM_KERNEL
#define SIM_KERNEL(name)
#endif

/* p[i] = a pattern of i and seed, for i < n. */
extern "C" __global__ void pattern_u32(unsigned *p, unsigned long long n, unsigned seed) {
    unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        p[i] = (unsigned)(i * 2654435761ull) ^ seed;
}
SIM_KERNEL(pattern_u32)

/* p[i] = p[i] * 3 + delta for i < n: the result depends on what was there. */
extern "C" __global__ void update_u32(unsigned *p, unsigned long long n, unsigned delta) {
    unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        p[i] = p[i] * 3u + delta;
}
SIM_KERNEL(update_u32)
