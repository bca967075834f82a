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
 *
 * So are the parameters the kernel only reads (the race detector counts their accesses
 * as reads): a parameter of type `const T *` is read-only, every other one is written
 * (the conservative choice: a `T *` the kernel only reads is still a write to the
 * detector). Pointers inside a struct passed by value say the same with their type,
 * and the struct names them once, after its definition, at file scope:
 *
 *     struct args { const float *x; float *y; int n; };
 *     SIM_READ_ONLY_FIELDS(args, x)
 *
 * which checks that each named field is a pointer to const (a wrong name or a `T *`
 * field does not compile). Nothing else is read-only; under nvcc the line expands to
 * nothing.
 */
#ifndef CUDA_HOST_H
#define CUDA_HOST_H

#ifndef __CUDACC__

#include "tests/sim/simkernel.h"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <type_traits>
#include <utility>

#define __global__
#define __device__ static inline
#define __host__
#define __forceinline__ inline
#define __restrict__ __restrict
#define __grid_constant__

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

/*
 * Reading through a tensor map (the host build's stand-in for TMA). A kernel takes the
 * map by value, as on a GPU (`const __grid_constant__ CUtensorMap map`), and passes its
 * address to these; the encoding is the simulator's (simkernel.h). Coordinates are
 * element indices, dimension 0 (the contiguous one) first. Under nvcc none of this
 * exists: a kernel reads through the map with cp.async.bulk.tensor there.
 *
 *   sim_tensor_map_read(&map)               the decoded map; a map the simulator did not
 *                                           encode (or bytes changed since) traps (SIGILL),
 *                                           as a GPU faults on a bad descriptor
 *   sim_tensor_map_element(t, coords)       address of one element, nullptr outside
 *   sim_tensor_map_load<T>(&map, coords)    one element (sizeof(T) = element size), 0 outside
 *   sim_tensor_map_load_box(dst, &map, c)   a tiled map's box at c (signed), what one TMA
 *                                           load brings: ceil(boxDim[i] / elementStrides[i])
 *                                           elements per dimension (dimension 0 steps by 1
 *                                           without interleave), dense in dst, zero outside
 *                                           the tensor; no swizzle
 */
static inline simkernel_tensor_map sim_tensor_map_read(const void *map) {
    simkernel_tensor_map t;
    if (simkernel_tensor_map_decode(map, &t) != 0)
        __builtin_trap();
    return t;
}

static inline const void *sim_tensor_map_element(const simkernel_tensor_map &t,
                                                 const long long *coords) {
    uint64_t off = 0;
    for (unsigned i = 0; i < t.rank; i++) {
        if (coords[i] < 0 || (uint64_t)coords[i] >= t.global_dim[i])
            return nullptr;
        off += (uint64_t)coords[i] * t.global_stride[i];
    }
    return (const void *)(uintptr_t)(t.global_address + off);
}

template <typename T>
static inline T sim_tensor_map_load(const void *map, const long long *coords) {
    simkernel_tensor_map t = sim_tensor_map_read(map);
    if (sizeof(T) != t.elem_size)
        __builtin_trap();
    const void *p = sim_tensor_map_element(t, coords);
    T v{};
    if (p)
        std::memcpy(&v, p, sizeof v);
    return v;
}

static inline void sim_tensor_map_load_box(void *dst, const void *map, const int *coords) {
    simkernel_tensor_map t = sim_tensor_map_read(map);
    if (t.kind != SIMKERNEL_TMAP_TILED)
        __builtin_trap();
    unsigned count[SIMKERNEL_TMAP_MAX_RANK], step[SIMKERNEL_TMAP_MAX_RANK],
        idx[SIMKERNEL_TMAP_MAX_RANK] = {0};
    uint64_t total = 1;
    for (unsigned i = 0; i < t.rank; i++) {
        step[i] = i == 0 && t.interleave == 0 ? 1 : t.element_stride[i];
        count[i] = (t.box_dim[i] + step[i] - 1) / step[i];
        total *= count[i];
    }
    unsigned char *out = static_cast<unsigned char *>(dst);
    for (uint64_t n = 0; n < total; n++) {
        long long c[SIMKERNEL_TMAP_MAX_RANK];
        for (unsigned i = 0; i < t.rank; i++)
            c[i] = (long long)coords[i] + (long long)idx[i] * step[i];
        const void *p = sim_tensor_map_element(t, c);
        if (p)
            std::memcpy(out, p, t.elem_size);
        else
            std::memset(out, 0, t.elem_size);
        out += t.elem_size;
        for (unsigned i = 0; i < t.rank && ++idx[i] == count[i]; i++)
            idx[i] = 0;
    }
}

namespace sim_detail {

/* 1 if a parameter of type T is a pointer the kernel cannot write through. */
template <typename T> constexpr uint64_t default_reads() {
    return std::is_pointer<T>::value && std::is_const<std::remove_pointer_t<T>>::value ? 1 : 0;
}

/* The word mask of a struct's read-only fields, from their offsets. */
constexpr uint64_t field_words(std::initializer_list<size_t> offsets) {
    uint64_t mask = 0;
    for (size_t off : offsets)
        mask |= off / 8 < 64 ? uint64_t(1) << (off / 8) : 0;
    return mask;
}

/* A field named read-only must be a pointer to const (8-aligned, as pointers are). */
template <typename F> constexpr size_t read_only_field(size_t offset) {
    static_assert(std::is_pointer<F>::value && std::is_const<std::remove_pointer_t<F>>::value,
                  "SIM_READ_ONLY_FIELDS names a field that is not a pointer to const");
    return offset;
}

} // namespace sim_detail

/* Bit k: the k-th 8-byte word of a parameter of type T is only read (see the top). */
template <typename T> struct sim_param_reads {
    static constexpr uint64_t words = sim_detail::default_reads<T>();
};

#define SIM_RO_FIELD_(T, f) sim_detail::read_only_field<decltype(T::f)>(offsetof(T, f))
#define SIM_RO_1_(T, a) SIM_RO_FIELD_(T, a)
#define SIM_RO_2_(T, a, ...) SIM_RO_FIELD_(T, a), SIM_RO_1_(T, __VA_ARGS__)
#define SIM_RO_3_(T, a, ...) SIM_RO_FIELD_(T, a), SIM_RO_2_(T, __VA_ARGS__)
#define SIM_RO_4_(T, a, ...) SIM_RO_FIELD_(T, a), SIM_RO_3_(T, __VA_ARGS__)
#define SIM_RO_5_(T, a, ...) SIM_RO_FIELD_(T, a), SIM_RO_4_(T, __VA_ARGS__)
#define SIM_RO_6_(T, a, ...) SIM_RO_FIELD_(T, a), SIM_RO_5_(T, __VA_ARGS__)
#define SIM_RO_7_(T, a, ...) SIM_RO_FIELD_(T, a), SIM_RO_6_(T, __VA_ARGS__)
#define SIM_RO_8_(T, a, ...) SIM_RO_FIELD_(T, a), SIM_RO_7_(T, __VA_ARGS__)
#define SIM_RO_COUNT_(_1, _2, _3, _4, _5, _6, _7, _8, N, ...) N
#define SIM_RO_CAT_(a, b) a##b
#define SIM_RO_PICK_(n) SIM_RO_CAT_(SIM_RO_, n)
#define SIM_RO_N_(...) SIM_RO_COUNT_(__VA_ARGS__, 8_, 7_, 6_, 5_, 4_, 3_, 2_, 1_, 0_)

/* SIM_READ_ONLY_FIELDS(Struct, field, ...): up to 8 pointer-to-const fields of Struct (at
 * file scope, after its definition) are read-only when Struct is passed by value. */
#define SIM_READ_ONLY_FIELDS(T, ...)                                                               \
    static_assert(alignof(T) >= 8, "SIM_READ_ONLY_FIELDS: the struct must be 8-byte aligned");     \
    template <> struct sim_param_reads<T> {                                                        \
        static constexpr uint64_t words =                                                          \
            sim_detail::field_words({SIM_RO_PICK_(SIM_RO_N_(__VA_ARGS__))(T, __VA_ARGS__)});       \
    };

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
    return simkernel_desc{SIMKERNEL_ABI_VERSION,         name,           sizeof...(P),
                          {param_offset<P...>(I)...},    {sizeof(P)...}, run,
                          {sim_param_reads<P>::words...}};
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
#define SIM_READ_ONLY_FIELDS(T, ...)
#endif

#endif /* CUDA_HOST_H */
