/*
 * bench_kernels.cu — the kernels the benchmarks launch. They do nothing on purpose:
 * the benchmarks measure what happens around a launch (liboffload's hook, the
 * residency it guarantees), never the kernel's own work.
 *
 * Built twice from this one source: as a host shared object for the simulator
 * (Makefile, -include tests/sim/cuda_host.h) and as a cubin by nvcc on a GPU
 * machine (tests/gpu/run.sh), where SIM_KERNEL is not defined and expands to nothing.
 */
#ifndef SIM_KERNEL
#define SIM_KERNEL(name)
#endif

/* Eight parameters, the shape issue 7 asks for: four device pointers (liboffload looks
 * each one up in its registry), four scalars of different sizes (it must skip them). */
extern "C" __global__ void empty8(float *a, float *b, float *c, float *d, int n, int m, float s,
                                  double t) {
    (void)a, (void)b, (void)c, (void)d, (void)n, (void)m, (void)s, (void)t;
}
SIM_KERNEL(empty8)

/* Names one buffer, so that the launch makes it resident (and its component active). */
extern "C" __global__ void touch(float *p) {
    (void)p;
}
SIM_KERNEL(touch)

/* Names no buffer: its own component ("idle*" in move.c's config) becomes active, so
 * under policy = sequence every other component is evicted. */
extern "C" __global__ void idle(int x) {
    (void)x;
}
SIM_KERNEL(idle)

/* A GEMM-style Params struct of 256 bytes passed by value, as CUTLASS and cuBLAS kernels
 * take theirs: four device pointers among sizes, strides and scalars. liboffload reads
 * every 8-byte word of it (32 words). */
struct params256 {
    float *a, *b, *c, *d;
    long long m, n, k, lda, ldb, ldc, ldd, batch;
    float alpha, beta;
    int flags[38];
};
static_assert(sizeof(params256) == 256, "params256 is 256 bytes");

extern "C" __global__ void params256_kernel(params256 p) {
    (void)p;
}
SIM_KERNEL(params256_kernel)
