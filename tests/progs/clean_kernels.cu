/*
 * clean_kernels.cu — kernels for clean_evict: one only reads its buffer, one changes one
 * byte of its buffer.
 */
#ifndef SIM_KERNEL
#define SIM_KERNEL(name)
#endif

/* *acc = fold of *acc and every word of w[0..n): one thread (the order matters). */
extern "C" __global__ void fold_words(const unsigned long long *w, unsigned long long n,
                                      unsigned long long *acc) {
    if (blockIdx.x != 0 || threadIdx.x != 0)
        return;
    unsigned long long h = *acc;
    for (unsigned long long i = 0; i < n; i++)
        h = (h ^ w[i]) * 0x100000001b3ull;
    *acc = h;
}
SIM_KERNEL(fold_words)

/* p[at] += 1: one byte changes. */
extern "C" __global__ void bump_byte(unsigned char *p, unsigned long long at) {
    if (blockIdx.x == 0 && threadIdx.x == 0)
        p[at] += 1;
}
SIM_KERNEL(bump_byte)
