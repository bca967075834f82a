// Kernels the simulator's own tests launch (tests/unit/test_sim_*.c, tests/sim.bats).
// Compiled as a host shared object with tests/sim/cuda_host.h (see simkernel.h).
#ifndef __CUDACC__
#include <time.h>
#endif

// p[i] = v for i < n
__global__ void fill_u32(unsigned *p, unsigned long long n, unsigned v) {
    unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        p[i] = v;
}
SIM_KERNEL(fill_u32)

// c[i] = a[i] + b[i]
__global__ void add_u32(const unsigned *a, const unsigned *b, unsigned *c, unsigned long long n) {
    unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        c[i] = a[i] + b[i];
}
SIM_KERNEL(add_u32)

// Sleeps `us` microseconds (thread 0 only), then *p = v: slow work to test ordering.
__global__ void slow_store(unsigned *p, unsigned v, unsigned us) {
    if (threadIdx.x == 0 && blockIdx.x == 0) {
#ifndef __CUDACC__
        struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000};
        nanosleep(&ts, nullptr);
#else
        __nanosleep(us * 1000);
#endif
        *p = v;
    }
}
SIM_KERNEL(slow_store)

// *dst = *src + 1 (one thread): a dependent step for ordering chains.
__global__ void incr_copy(const unsigned *src, unsigned *dst) {
    if (threadIdx.x == 0 && blockIdx.x == 0)
        *dst = *src + 1;
}
SIM_KERNEL(incr_copy)

// The same with its pointers in a struct passed by value: the source is read-only, and
// says so to the race detector (tests/sim/cuda_host.h).
struct incr_args {
    const unsigned *src;
    unsigned *dst;
};
SIM_READ_ONLY_FIELDS(incr_args, src)

__global__ void incr_copy_struct(incr_args p) {
    if (threadIdx.x == 0 && blockIdx.x == 0)
        *p.dst = *p.src + 1;
}
SIM_KERNEL(incr_copy_struct)

// Mixed parameter sizes and alignments, to check the packed layout.
__global__ void mixed_params(char c, double d, int i, unsigned long long *out) {
    if (threadIdx.x == 0 && blockIdx.x == 0) {
        out[0] = (unsigned long long)(unsigned char)c;
        out[1] = (unsigned long long)d;
        out[2] = (unsigned long long)(unsigned)i;
    }
}
SIM_KERNEL(mixed_params)

// Waits until the host sets *flag (or timeout_ms passes), then *out = 1 if it saw the
// flag, 2 if it timed out: shows whether this kernel ran concurrently with host code.
__global__ void wait_flag(const unsigned *flag, unsigned *out, unsigned timeout_ms) {
    if (threadIdx.x != 0 || blockIdx.x != 0)
        return;
#ifndef __CUDACC__
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        if (__atomic_load_n(flag, __ATOMIC_ACQUIRE)) {
            *out = 1;
            return;
        }
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 > timeout_ms) {
            *out = 2;
            return;
        }
        struct timespec nap = {0, 100000};
        nanosleep(&nap, nullptr);
    }
#else
    unsigned long long end = clock64() + (unsigned long long)timeout_ms * 1000000ull;
    while (!*(volatile const unsigned *)flag && clock64() < end) {
    }
    *out = *(volatile const unsigned *)flag ? 1 : 2;
#endif
}
SIM_KERNEL(wait_flag)

#ifndef __CUDACC__ // reading through a tensor map: the host build's helpers (cuda_host.h)
#include <cuda.h>

// out[y * w + x] = element (x, y) of a 2D map of 32-bit elements, one thread per element.
__global__ void tmap_gather(const __grid_constant__ CUtensorMap map, unsigned *out, unsigned w,
                            unsigned h) {
    unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (unsigned long long)w * h)
        return;
    long long c[2] = {(long long)(i % w), (long long)(i / w)};
    out[i] = sim_tensor_map_load<unsigned>(&map, c);
}
SIM_KERNEL(tmap_gather)

// The box of a tiled map at (x, y), as one TMA load brings it, stored densely at out.
__global__ void tmap_box(const __grid_constant__ CUtensorMap map, int x, int y, unsigned *out) {
    if (threadIdx.x == 0 && blockIdx.x == 0) {
        int c[2] = {x, y};
        sim_tensor_map_load_box(out, &map, c);
    }
}
SIM_KERNEL(tmap_box)
#endif
