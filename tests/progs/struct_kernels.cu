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
