// Kernels the program fuzzer's interpreter launches (tests/fuzz/programs/interp.c).
// Compiled as a host shared object with tests/sim/cuda_host.h (see tests/sim/simkernel.h).
//
// Every kernel exists in four copies, g0_* .. g3_*, identical but for the name: a
// generated config can then group launches into components by `kernels = gN_*` globs.
// Each kernel walks its n elements with a grid-stride loop, so a small grid covers any
// buffer and the simulator's per-thread cost stays low. All arithmetic is on unsigned
// integers: the bytes are the same on any machine and any schedule.

// Parameters passed by value inside one struct: liboffload must find the pointers inside.
struct fz_mix_args {
    const unsigned *a;
    unsigned *b;
    unsigned long long n;
    unsigned k;
};
SIM_READ_ONLY_FIELDS(fz_mix_args, a) // what the race detector needs to see that s.a is read

__device__ unsigned fz_scramble(unsigned x) {
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

#define FZ_STRIDE_LOOP(i, n)                                                                       \
    for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;         \
         i < (n); i += (unsigned long long)gridDim.x * blockDim.x)

#define FZ_KERNELS(G)                                                                              \
    /* p[i] = scramble(seed + i) */                                                                \
    __global__ void G##_fill(unsigned *p, unsigned long long n, unsigned seed) {                   \
        FZ_STRIDE_LOOP(i, n) p[i] = fz_scramble(seed + (unsigned)i);                               \
    }                                                                                              \
    SIM_KERNEL(G##_fill)                                                                           \
    /* b[i] = b[i] * k + a[i] ^ (b[i] >> 7): reads a, reads and writes b */                        \
    __global__ void G##_mix(const unsigned *a, unsigned *b, unsigned long long n, unsigned k) {    \
        FZ_STRIDE_LOOP(i, n) b[i] = (b[i] * k + a[i]) ^ (b[i] >> 7);                               \
    }                                                                                              \
    SIM_KERNEL(G##_mix)                                                                            \
    /* c[i] = scramble(a[i] * 3 + b[i]): reads a and b, writes c */                                \
    __global__ void G##_mix3(const unsigned *a, const unsigned *b, unsigned *c,                    \
                             unsigned long long n) {                                               \
        FZ_STRIDE_LOOP(i, n) c[i] = fz_scramble(a[i] * 3u + b[i]);                                 \
    }                                                                                              \
    SIM_KERNEL(G##_mix3)                                                                           \
    /* _mix with its parameters in a struct passed by value */                                     \
    __global__ void G##_smix(fz_mix_args s) {                                                      \
        FZ_STRIDE_LOOP(i, s.n) s.b[i] = (s.b[i] * s.k + s.a[i]) ^ (s.b[i] >> 7);                   \
    }                                                                                              \
    SIM_KERNEL(G##_smix)

FZ_KERNELS(g0)
FZ_KERNELS(g1)
FZ_KERNELS(g2)
FZ_KERNELS(g3)
