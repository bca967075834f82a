/*
 * launch.h — which device addresses a kernel launch passes.
 *
 * The parameter layout of each kernel handle comes from the driver once and is cached
 * (uthash keyed by the handle): cuFuncGetParamInfo for a CUfunction, cuKernelGetParamInfo
 * for a CUkernel cast to CUfunction (cudart 12+ launches those). A pointer can sit in any
 * parameter of 8 bytes or more: alone, or inside a struct passed by value (PyTorch's
 * Array<char*, N>, a GEMM's Params). So a launch reads every 8-byte-aligned word of every
 * such parameter; a word that is not a tracked address costs one range compare. `extra`
 * buffers (CU_LAUNCH_PARAM_BUFFER_POINTER) are read at every 8-byte-aligned offset.
 *
 * Tensor maps (CUtensorMap, 128 opaque bytes with a global address encoded inside, which
 * Hopper kernels take alone or embedded in a Params struct) are recognised by their bytes:
 * at every 64-byte-aligned offset of a parameter of 128 bytes or more, 128 bytes equal to
 * a map the program encoded (tensor_maps.h) pass that map's address.
 *
 * Pointers stored in device memory (a pointer array a kernel reads) are not in the
 * launch: those the program uploaded are followed from the memory the launch passes
 * (stored_pointers.h); those a kernel wrote stay invisible, as do pointers inside
 * parameters smaller than 8 bytes (none fit). A kernel whose layout
 * the driver cannot tell is "unreadable": the runtime then makes the memory it most likely
 * uses resident before it (runtime/work.c).
 *
 * Callers hold the runtime lock.
 */
#ifndef OFFLOAD_LAUNCH_H
#define OFFLOAD_LAUNCH_H

#include "base/hash.h"

#include <cuda.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct func_layout;

#define LAUNCH_RECENT_SLOTS 64

struct launch_cache {
    struct func_layout *by_func; /* uthash head */
    /* direct-mapped cache in front of the hash: a program launches few kernels, often */
    struct func_layout *recent[LAUNCH_RECENT_SLOTS];
    bool unreadable_logged; /* a kernel whose parameters cannot be read was reported */
    /* The error of a layout query that failed for a reason other than the end of the
     * parameters or an unsupported call (an injected or transient fault): that layout is
     * not cached, launch_layout returns NULL, and the launch fails with this error
     * rather than run with pointers it cannot see. */
    CUresult query_failed;
};

/* One 8-byte word a launch may pass a pointer in: bytes [offset, offset+8) of the value
 * of parameter `param` (kernelParams[param]). */
struct param_word {
    uint16_t param;
    uint16_t offset;
};

/* What the runtime remembers about one kernel. */
struct func_layout {
    CUfunction func;
    bool known; /* the driver told its parameters */
    unsigned param_count;
    unsigned word_count; /* every 8-byte-aligned word of every parameter of >= 8 bytes */
    struct param_word *words;
    /* where a 128-byte CUtensorMap may sit: every 64-byte-aligned offset of a parameter of
     * 128 bytes or more with 128 bytes after it */
    unsigned map_count;
    struct param_word *maps;
    const char *name; /* cuFuncGetName / cuKernelGetName, NULL when unknown */
    int component;    /* set by the component logic; -2: not looked up yet */
    int indirect;     /* the component whose `indirect` names it, -1 none; -2: not looked up */
    UT_hash_handle hh;
};

/* The hash lookup (and first-time driver query) behind launch_layout. */
struct func_layout *launch_layout_slow(struct launch_cache *cache, CUfunction f);

/* The cached layout of f, asking the driver the first time. NULL only when out of memory. */
static inline struct func_layout *launch_layout(struct launch_cache *cache, CUfunction f) {
    struct func_layout *l = cache->recent[((uintptr_t)f >> 4) % LAUNCH_RECENT_SLOTS];
    if (l && l->func == f)
        return l;
    return launch_layout_slow(cache, f);
}

/* Where w lies in kernelParams (a word, or a place a tensor map may sit). */
static inline const void *launch_param_at(void *const *params, struct param_word w) {
    return (const char *)params[w.param] + w.offset;
}

/* The 8 bytes of kernelParams at word w. */
static inline uint64_t launch_word(void *const *params, struct param_word w) {
    uint64_t v;
    memcpy(&v, launch_param_at(params, w), sizeof v);
    return v;
}

/* Calls visit(ctx, value) for every 8-byte value the launch passes: each word of the
 * layout in kernelParams (when the layout is known), each 8-byte aligned word of an
 * `extra` buffer; and for the global address of every encoded tensor map among them. Returns false
 * when kernelParams were given but their layout is unknown: the launch may use memory liboffload
 * cannot see. */
bool launch_scan(const struct func_layout *layout, void **params, void **extra,
                 void (*visit)(void *ctx, CUdeviceptr value), void *ctx);

void launch_cache_clear(struct launch_cache *cache);

#endif /* OFFLOAD_LAUNCH_H */
