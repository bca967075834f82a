/*
 * simkernel.h — the kernel ABI of the simulated driver.
 *
 * On a real GPU a module is a cubin. On the simulator a module is a host shared
 * object, loaded by cuModuleLoad with dlopen(). For every kernel NAME it exports one
 * symbol, SIMKERNEL_SYMBOL_PREFIX "NAME", of type `const struct simkernel_desc`:
 * cuModuleGetFunction(&f, mod, "NAME") is a dlsym() of that symbol.
 *
 * The descriptor gives what the driver itself knows about a compiled kernel:
 *  - its parameter layout, as cuFuncGetParamInfo reports it (offset and size of each
 *    parameter in the packed argument buffer that CU_LAUNCH_PARAM_BUFFER_POINTER uses);
 *  - `run`, which executes the whole grid on the calling thread. `args[i]` points to
 *    the value of parameter i, exactly like cuLaunchKernel's kernelParams;
 *  - (version 2) which parameter words the kernel only reads through: bit k of
 *    `param_reads[i]` says that the k-th 8-byte word the driver scans in parameter i
 *    (the words at 8-aligned offsets from the parameter's start, see fault.c) is a
 *    pointer the kernel never writes through. The race detector (race.c) counts such an
 *    access as a read; every other word that points into device memory is a write, the
 *    conservative choice. cuda_host.h derives it from the kernel's signature (a `const T *`
 *    parameter) and from SIM_READ_ONLY_FIELDS for pointers inside structs.
 *
 * Kernels are written once in CUDA C. tests/sim/cuda_host.h compiles the same source
 * as host C++ and generates these descriptors (see SIM_KERNEL there). Threads of a
 * block run one after another, so simulated kernels may not use __syncthreads() or
 * rely on shared memory between threads.
 */
#ifndef SIMKERNEL_H
#define SIMKERNEL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* 2: param_reads. The loader accepts only its own version: a module built against an
 * older header fails to load (CUDA_ERROR_INVALID_IMAGE) instead of being misread. */
#define SIMKERNEL_ABI_VERSION 2
#define SIMKERNEL_MAX_PARAMS 32
#define SIMKERNEL_SYMBOL_PREFIX "simkernel__"

#ifdef __cplusplus
extern "C" {
#endif

struct simkernel_dim3 {
    unsigned x, y, z;
};

struct simkernel_desc {
    unsigned abi_version; /* SIMKERNEL_ABI_VERSION */
    const char *name;     /* the kernel's name, as cuFuncGetName returns it */
    unsigned param_count;
    size_t param_offset[SIMKERNEL_MAX_PARAMS];
    size_t param_size[SIMKERNEL_MAX_PARAMS];
    void (*run)(struct simkernel_dim3 grid, struct simkernel_dim3 block, void **args);
    uint64_t param_reads[SIMKERNEL_MAX_PARAMS]; /* bit k: word k of parameter i is read-only */
};

/* Whether word `word` (0 = the first 8-aligned word) of parameter `param` is only read. */
static inline int simkernel_word_read_only(const struct simkernel_desc *d, unsigned param,
                                           size_t word) {
    return param < d->param_count && word < 64 && ((d->param_reads[param] >> word) & 1);
}

/*
 * Tensor maps (CUtensorMap, 128 bytes): the simulator's own encoding, which
 * cuTensorMapEncodeTiled / cuTensorMapEncodeIm2col / cuTensorMapEncodeIm2colWide write and
 * cuTensorMapReplaceAddress rewrites (tests/sim/tensormap.c), and simulated kernels read
 * (simkernel_tensor_map_decode; cuda_host.h's sim_tensor_map_* helpers on top). Like the
 * real driver's it is opaque to the host program: the global address is stored only
 * scrambled (xor with a key derived from every other word) at byte 112, and byte 120 holds
 * a checksum of the rest, so nothing finds the address by peeking at a fixed offset and a
 * map changed by hand fails to decode. This file is the simulator's side of the contract:
 * liboffload must never include it (it learns addresses by hooking the encoders).
 *
 *   word 0       tag: magic, format version, kind, data type, element size, rank,
 *                interleave, swizzle, L2 promotion, OOB fill
 *   words 1-5    global dimensions
 *   words 6-9    global strides of dimensions 1..4 (bytes)
 *   word 10      box dimensions
 *   word 11      element strides, channels per pixel, pixels per column
 *   words 12-13  im2col corners, lower and upper (and the wide mode)
 *   word 14      the scrambled address
 *   word 15      the checksum
 */
#define SIMKERNEL_TMAP_MAGIC 0x70616d74u /* "tmap" */
#define SIMKERNEL_TMAP_VERSION 1u
#define SIMKERNEL_TMAP_MAX_RANK 5

enum simkernel_tmap_kind {
    SIMKERNEL_TMAP_TILED = 1,
    SIMKERNEL_TMAP_IM2COL = 2,
    SIMKERNEL_TMAP_IM2COL_WIDE = 3,
};

/* What a map describes, decoded. Dimension 0 is the innermost (contiguous) one. */
struct simkernel_tensor_map {
    unsigned kind;      /* enum simkernel_tmap_kind */
    unsigned data_type; /* CUtensorMapDataType */
    unsigned elem_size; /* bytes of one element */
    unsigned rank;
    uint64_t global_address;
    uint64_t global_dim[SIMKERNEL_TMAP_MAX_RANK];
    uint64_t global_stride[SIMKERNEL_TMAP_MAX_RANK]; /* bytes; [0] is elem_size */
    unsigned box_dim[SIMKERNEL_TMAP_MAX_RANK];       /* tiled maps */
    unsigned element_stride[SIMKERNEL_TMAP_MAX_RANK];
    unsigned interleave, swizzle, l2_promotion, oob_fill;
    int lower_corner[3], upper_corner[3]; /* im2col: D, H, W offsets (wide: W only) */
    unsigned channels_per_pixel, pixels_per_column, wide_mode;
};

static inline uint64_t simkernel_tmap_mix(uint64_t x) { /* splitmix64's finaliser */
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* The key the address is scrambled with, from words 0..13. */
static inline uint64_t simkernel_tmap_key(const uint64_t *w) {
    uint64_t k = 0x5d1cea7e5e1f0a11ull;
    for (int i = 0; i < 14; i++)
        k = simkernel_tmap_mix(k ^ w[i]);
    return k;
}

static inline uint64_t simkernel_tmap_checksum(const uint64_t *w) {
    uint64_t c = 0x0c4ec5a11ab1e5edull;
    for (int i = 0; i < 15; i++)
        c = simkernel_tmap_mix(c + w[i]);
    return c;
}

/* Writes the 128 bytes at map (16 words) from t. Fields beyond t->rank must be zero. */
static inline void simkernel_tensor_map_encode(void *map, const struct simkernel_tensor_map *t) {
    uint64_t *w = (uint64_t *)map;
    for (int i = 0; i < 16; i++)
        w[i] = 0;
    w[0] = (uint64_t)SIMKERNEL_TMAP_MAGIC | (uint64_t)SIMKERNEL_TMAP_VERSION << 32 |
           (uint64_t)(t->kind & 0xf) << 36 | (uint64_t)(t->data_type & 0xff) << 40 |
           (uint64_t)(t->rank & 0xf) << 48 | (uint64_t)(t->interleave & 0x3) << 52 |
           (uint64_t)(t->swizzle & 0x7) << 54 | (uint64_t)(t->l2_promotion & 0x3) << 57 |
           (uint64_t)(t->oob_fill & 0x1) << 59 | (uint64_t)(t->elem_size & 0xf) << 60;
    for (unsigned i = 0; i < SIMKERNEL_TMAP_MAX_RANK; i++) {
        w[1 + i] = t->global_dim[i];
        if (i > 0)
            w[5 + i] = t->global_stride[i];
        w[10] |= (uint64_t)(t->box_dim[i] & 0xfff) << (12 * i);
        w[11] |= (uint64_t)(t->element_stride[i] & 0xf) << (4 * i);
    }
    w[11] |= (uint64_t)(t->channels_per_pixel & 0x1ff) << 20 |
             (uint64_t)(t->pixels_per_column & 0x7ff) << 29;
    for (int i = 0; i < 3; i++) {
        w[12] |= (uint64_t)(uint16_t)t->lower_corner[i] << (16 * i);
        w[13] |= (uint64_t)(uint16_t)t->upper_corner[i] << (16 * i);
    }
    w[12] |= (uint64_t)(t->wide_mode & 1) << 48;
    w[14] = t->global_address ^ simkernel_tmap_key(w);
    w[15] = simkernel_tmap_checksum(w);
}

/* Reads the map at `map` into *t; 0 on success, -1 if the bytes are no valid map. */
static inline int simkernel_tensor_map_decode(const void *map, struct simkernel_tensor_map *t) {
    const uint64_t *w = (const uint64_t *)map;
    if ((uint32_t)w[0] != SIMKERNEL_TMAP_MAGIC || ((w[0] >> 32) & 0xf) != SIMKERNEL_TMAP_VERSION ||
        w[15] != simkernel_tmap_checksum(w))
        return -1;
    memset(t, 0, sizeof *t);
    t->kind = (unsigned)(w[0] >> 36) & 0xf;
    t->data_type = (unsigned)(w[0] >> 40) & 0xff;
    t->rank = (unsigned)(w[0] >> 48) & 0xf;
    t->interleave = (unsigned)(w[0] >> 52) & 0x3;
    t->swizzle = (unsigned)(w[0] >> 54) & 0x7;
    t->l2_promotion = (unsigned)(w[0] >> 57) & 0x3;
    t->oob_fill = (unsigned)(w[0] >> 59) & 0x1;
    t->elem_size = (unsigned)(w[0] >> 60) & 0xf;
    if (t->rank == 0 || t->rank > SIMKERNEL_TMAP_MAX_RANK)
        return -1;
    for (unsigned i = 0; i < SIMKERNEL_TMAP_MAX_RANK; i++) {
        t->global_dim[i] = w[1 + i];
        t->global_stride[i] = i == 0 ? t->elem_size : w[5 + i];
        t->box_dim[i] = (unsigned)(w[10] >> (12 * i)) & 0xfff;
        t->element_stride[i] = (unsigned)(w[11] >> (4 * i)) & 0xf;
    }
    t->channels_per_pixel = (unsigned)(w[11] >> 20) & 0x1ff;
    t->pixels_per_column = (unsigned)(w[11] >> 29) & 0x7ff;
    for (int i = 0; i < 3; i++) {
        t->lower_corner[i] = (int16_t)(uint16_t)(w[12] >> (16 * i));
        t->upper_corner[i] = (int16_t)(uint16_t)(w[13] >> (16 * i));
    }
    t->wide_mode = (unsigned)(w[12] >> 48) & 1;
    t->global_address = w[14] ^ simkernel_tmap_key(w);
    return 0;
}

#ifdef __cplusplus
}
#endif

#endif /* SIMKERNEL_H */
