// Kernels that take their pointers the way real frameworks pass them: inside structs
// passed by value (PyTorch's Array<char*, N>, a GEMM's Params). tests/progs/struct_params.c.
// Compiled as a host shared object with tests/sim/cuda_host.h (see simkernel.h).

// p[i] = v for i < n
__global__ void fill_words(unsigned *p, unsigned long long n, unsigned v) {
    unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        p[i] = v;
}
SIM_KERNEL(fill_words)

struct pair {
    unsigned *a;
    const unsigned *b;
};
SIM_READ_ONLY_FIELDS(pair, b) // for the race detector (tests/sim/cuda_host.h)

// p.a[i] += p.b[i]: the two pointers travel in a 16-byte struct
__global__ void add_pair(struct pair p, unsigned long long n) {
    unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        p.a[i] += p.b[i];
}
SIM_KERNEL(add_pair)

// A GEMM-style Params struct of 256 bytes: the pointers at offsets 40, 120 and 248,
// the rest sizes, strides and scalars (none of which look like device addresses).
struct params256 {
    unsigned long long n;
    int m, k, lda, ldb;
    float alpha, beta;
    unsigned long long pad0[1];
    const unsigned *x; // offset 40
    unsigned long long pad1[9];
    const unsigned *y; // offset 120
    unsigned long long pad2[15];
    unsigned *out; // offset 248
};
SIM_READ_ONLY_FIELDS(params256, x, y)

// out[i] = x[i] * m + y[i]
__global__ void combine256(struct params256 p) {
    unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < p.n)
        p.out[i] = p.x[i] * (unsigned)p.m + p.y[i];
}
SIM_KERNEL(combine256)

// p.a[i] = p.b[i] * 2
__global__ void double_pair(struct pair p, unsigned long long n) {
    unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        p.a[i] = p.b[i] * 2;
}
SIM_KERNEL(double_pair)

#ifndef __CUDACC__ // reads through tensor maps: the simulator's accessor (cuda_host.h)
#include <cuda.h>

// out[i] = element (i % w, i / w) of a 2D map of 32-bit elements: the map passed alone
__global__ void map_copy(const __grid_constant__ CUtensorMap map, unsigned *out, unsigned w,
                         unsigned h) {
    unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (unsigned long long)w * h)
        return;
    long long c[2] = {(long long)(i % w), (long long)(i / w)};
    out[i] = sim_tensor_map_load<unsigned>(&map, c);
}
SIM_KERNEL(map_copy)

// The same with the map embedded in a Params struct (at offset 128: CUtensorMap is
// 128-byte aligned in this cuda.h, 64 in older ones), as CUTLASS 3 does.
struct map_params {
    unsigned *out;
    unsigned w, h;
    CUtensorMap map;
};
static_assert(offsetof(map_params, map) == 128, "the map at offset 128");

__global__ void map_copy_params(const __grid_constant__ map_params p) {
    unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (unsigned long long)p.w * p.h)
        return;
    long long c[2] = {(long long)(i % p.w), (long long)(i / p.w)};
    p.out[i] = sim_tensor_map_load<unsigned>(&p.map, c) + 1;
}
SIM_KERNEL(map_copy_params)
#endif
