/*
 * launch.h — which device addresses a kernel launch passes.
 *
 * The parameter layout of each CUfunction comes from cuFuncGetParamInfo once and is cached
 * (uthash keyed by the handle); a launch then reads only its 8-byte parameters, the only
 * ones that can hold a device pointer. `extra` buffers (CU_LAUNCH_PARAM_BUFFER_POINTER) are
 * read at every 8-byte aligned offset. Callers hold the runtime lock.
 */
#ifndef OFFLOAD_LAUNCH_H
#define OFFLOAD_LAUNCH_H

#include "base/hash.h"

#include <cuda.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct func_layout;

#define LAUNCH_RECENT_SLOTS 64

struct launch_cache {
    struct func_layout *by_func; /* uthash head */
    /* direct-mapped cache in front of the hash: a program launches few kernels, often */
    struct func_layout *recent[LAUNCH_RECENT_SLOTS];
    bool blind_logged; /* a kernel whose parameters cannot be read was reported */
    /* The error of a layout query that failed for a reason other than the end of the
     * parameters or an unsupported call (an injected or transient fault): that layout is
     * not cached, launch_layout returns NULL, and the launch fails with this error
     * rather than run with pointers it cannot see. */
    CUresult query_failed;
};

/* What the runtime remembers about one kernel. */
struct func_layout {
    CUfunction func;
    bool known; /* cuFuncGetParamInfo answered for it */
    unsigned param_count;
    unsigned pointer_count; /* parameters of 8 bytes */
    uint16_t *pointer_index;
    const char *name; /* cuFuncGetName, NULL when unknown */
    int component;    /* set by the component logic; -2: not looked up yet */
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

/* Calls visit(ctx, value) for every 8-byte value the launch passes: each 8-byte parameter
 * of kernelParams (when the layout is known), each 8-byte aligned word of an `extra`
 * buffer. Returns false when kernelParams were given but their layout is unknown: the
 * launch may use memory liboffload cannot see. */
bool launch_scan(const struct func_layout *layout, void **params, void **extra,
                 void (*visit)(void *ctx, CUdeviceptr value), void *ctx);

void launch_cache_clear(struct launch_cache *cache);

#endif /* OFFLOAD_LAUNCH_H */
