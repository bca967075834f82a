/*
 * cuda_host.h — compile CUDA C kernels as a host shared object for the simulator.
 *
 * Force-included (-include) when a .cu file is compiled with the host C++ compiler.
 * It supplies what nvcc would: __global__, __device__, threadIdx/blockIdx/blockDim/
 * gridDim, and a few device intrinsics. After each kernel the source writes
 *
 *     SIM_KERNEL(name)
 *
 * which expands to nothing under nvcc and, here, to the simkernel_desc that the
 * simulated driver finds by dlsym (see simkernel.h). The descriptor's parameter
 * layout is derived from the kernel's own signature, with the alignment rules the
 * CUDA ABI uses for the packed argument buffer, so it cannot drift from the code.
 */
#ifndef CUDA_HOST_H
#define CUDA_HOST_H

#ifndef __CUDACC__

#include "tests/sim/simkernel.h"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>

#define __global__
#define __device__ static inline
#define __host__
#define __forceinline__ inline
#define __restrict__ __restrict

struct sim_uint3 {
    unsigned x, y, z;
};
struct sim_dim3 {
    unsigned x, y, z;
};

/* The executing "GPU thread" of the calling host thread. Initial-exec TLS: these are read
 * for every simulated thread, and the default model of a shared object would call
 * __tls_get_addr each time (the module is dlopened, so it uses the static TLS surplus:
 * 48 bytes per module). */
#define SIM_TLS_IE __attribute__((tls_model("initial-exec")))
extern thread_local sim_uint3 threadIdx SIM_TLS_IE;
extern thread_local sim_uint3 blockIdx SIM_TLS_IE;
extern thread_local sim_dim3 blockDim SIM_TLS_IE;
extern thread_local sim_dim3 gridDim SIM_TLS_IE;

/* Defined once, in the translation unit that includes this header (one per module). */
thread_local sim_uint3 threadIdx SIM_TLS_IE;
thread_local sim_uint3 blockIdx SIM_TLS_IE;
thread_local sim_dim3 blockDim SIM_TLS_IE;
thread_local sim_dim3 gridDim SIM_TLS_IE;

static inline float rsqrtf(float x) {
    return 1.0f / std::sqrt(x);
}
static inline float __fdividef(float a, float b) {
    return a / b;
}

namespace sim_detail {

template <typename... P> struct layout {
    static constexpr unsigned count = sizeof...(P);
    static constexpr size_t size[] = {sizeof(P)..., 0};
    static constexpr size_t align[] = {alignof(P)..., 1};
};

template <typename... P> constexpr size_t param_offset(unsigned i) {
    size_t off = 0;
    for (unsigned k = 0; k <= i; k++) {
        size_t a = layout<P...>::align[k];
        off = (off + a - 1) / a * a;
        if (k == i)
            return off;
        off += layout<P...>::size[k];
    }
    return off;
}

template <typename... P, size_t... I>
constexpr simkernel_desc make_desc(const char *name,
                                   void (*run)(simkernel_dim3, simkernel_dim3, void **),
                                   std::index_sequence<I...>) {
    return simkernel_desc{SIMKERNEL_ABI_VERSION,      name,           sizeof...(P),
                          {param_offset<P...>(I)...}, {sizeof(P)...}, run};
}

template <typename... P, size_t... I>
inline void call(void (*fn)(P...), void **args, std::index_sequence<I...>) {
    fn(*static_cast<std::remove_reference_t<P> *>(args[I])...);
}

template <typename... P>
inline void run_grid(void (*fn)(P...), simkernel_dim3 grid, simkernel_dim3 block, void **args) {
    gridDim = {grid.x, grid.y, grid.z};
    blockDim = {block.x, block.y, block.z};
    for (unsigned bz = 0; bz < grid.z; bz++)
        for (unsigned by = 0; by < grid.y; by++)
            for (unsigned bx = 0; bx < grid.x; bx++) {
                blockIdx = {bx, by, bz};
                for (unsigned tz = 0; tz < block.z; tz++)
                    for (unsigned ty = 0; ty < block.y; ty++)
                        for (unsigned tx = 0; tx < block.x; tx++) {
                            threadIdx = {tx, ty, tz};
                            call(fn, args, std::index_sequence_for<P...>{});
                        }
            }
}

template <typename... P> constexpr unsigned arity(void (*)(P...)) {
    return sizeof...(P);
}

template <typename... P>
constexpr simkernel_desc describe(void (*)(P...), const char *name,
                                  void (*run)(simkernel_dim3, simkernel_dim3, void **)) {
    static_assert(sizeof...(P) <= SIMKERNEL_MAX_PARAMS, "too many kernel parameters");
    return make_desc<P...>(name, run, std::index_sequence_for<P...>{});
}

} // namespace sim_detail

#define SIM_KERNEL(name)                                                                           \
    static void simkernel_run__##name(simkernel_dim3 g, simkernel_dim3 b, void **a) {              \
        sim_detail::run_grid(name, g, b, a);                                                       \
    }                                                                                              \
    extern "C" __attribute__((visibility("default"))) const simkernel_desc simkernel__##name =     \
        sim_detail::describe(name, #name, simkernel_run__##name);

#else /* __CUDACC__: nvcc builds the cubin; the descriptors do not exist there. */
#define SIM_KERNEL(name)
#endif

#endif /* CUDA_HOST_H */
