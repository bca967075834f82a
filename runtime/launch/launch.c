/*
 * launch.c — parameter layouts and the scan of a launch's 8-byte values.
 */
#include "runtime/launch/launch.h"

#include "base/log.h"
#include "driver/driver.h"

#include <stdlib.h>

/* Kernels have at most a few thousand parameter bytes; stop asking past this. */
#define LAUNCH_MAX_PARAMS 4096

/* Returns CUDA_SUCCESS, or the driver's error when a query failed for another reason than
 * the end of the parameters (INVALID_VALUE) or an unsupported call (NOT_SUPPORTED). */
static CUresult learn_layout(struct func_layout *l) {
    uint16_t index[LAUNCH_MAX_PARAMS / 8 + 1];
    unsigned pointers = 0, i = 0;
    CUresult stop = CUDA_ERROR_NOT_SUPPORTED;
    for (; driver()->cuFuncGetParamInfo && i < LAUNCH_MAX_PARAMS; i++) {
        size_t offset = 0, size = 0;
        stop = driver()->cuFuncGetParamInfo(l->func, i, &offset, &size);
        if (stop != CUDA_SUCCESS)
            break;
        if (size == 8 && pointers < sizeof index / sizeof index[0])
            index[pointers++] = (uint16_t)i;
    }
    if (stop != CUDA_SUCCESS && stop != CUDA_ERROR_INVALID_VALUE &&
        stop != CUDA_ERROR_NOT_SUPPORTED)
        return stop;
    l->param_count = i;
    /* INVALID_VALUE at index i: the kernel has i parameters. NOT_SUPPORTED (or anything
     * else) at index 0: the driver cannot tell, so the pointers stay invisible. */
    l->known = i > 0 || stop == CUDA_ERROR_INVALID_VALUE;
    if (pointers) {
        l->pointer_index = malloc(pointers * sizeof *l->pointer_index);
        if (l->pointer_index)
            memcpy(l->pointer_index, index, pointers * sizeof *index);
        else
            l->known = false;
    }
    l->pointer_count = l->pointer_index ? pointers : 0;
    const char *name = NULL;
    if (driver()->cuFuncGetName && driver()->cuFuncGetName(&name, l->func) == CUDA_SUCCESS)
        l->name = name;
    l->component = -2;
    return CUDA_SUCCESS;
}

static size_t recent_slot(CUfunction f) {
    return ((uintptr_t)f >> 4) % LAUNCH_RECENT_SLOTS; /* as launch_layout in launch.h */
}

struct func_layout *launch_layout_slow(struct launch_cache *cache, CUfunction f) {
    struct func_layout *l;
    HASH_FIND(hh, cache->by_func, &f, sizeof f, l);
    if (l) {
        cache->recent[recent_slot(f)] = l;
        return l;
    }
    l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->func = f;
    CUresult failed = learn_layout(l);
    if (failed != CUDA_SUCCESS) {
        cache->query_failed = failed;
        free(l);
        return NULL;
    }
    if (!l->known && !cache->blind_logged) {
        cache->blind_logged = true;
        log_warn("cannot read the parameter layout of kernel %s: its pointers are not seen",
                 l->name ? l->name : "(unnamed)");
    }
    bool hash_oom = false;
    HASH_ADD(hh, cache->by_func, func, sizeof l->func, l);
    if (hash_oom) {
        free(l->pointer_index);
        free(l);
        return NULL;
    }
    cache->recent[recent_slot(f)] = l;
    return l;
}

static bool scan_extra(void **extra, void (*visit)(void *, CUdeviceptr), void *ctx) {
    const char *buffer = NULL;
    size_t size = 0;
    for (size_t i = 0; extra[i] != CU_LAUNCH_PARAM_END; i += 2) {
        if (extra[i] == CU_LAUNCH_PARAM_BUFFER_POINTER)
            buffer = extra[i + 1];
        else if (extra[i] == CU_LAUNCH_PARAM_BUFFER_SIZE && extra[i + 1])
            size = *(const size_t *)extra[i + 1];
        else if (i > 64)
            break; /* malformed: never read far */
    }
    if (!buffer)
        return true;
    for (size_t off = 0; off + 8 <= size; off += 8) {
        uint64_t v;
        memcpy(&v, buffer + off, 8);
        visit(ctx, (CUdeviceptr)v);
    }
    return true;
}

bool launch_scan(const struct func_layout *layout, void **params, void **extra,
                 void (*visit)(void *ctx, CUdeviceptr value), void *ctx) {
    if (params) {
        if (!layout || !layout->known)
            return false;
        for (unsigned k = 0; k < layout->pointer_count; k++) {
            uint64_t v;
            memcpy(&v, params[layout->pointer_index[k]], 8);
            visit(ctx, (CUdeviceptr)v);
        }
        return true;
    }
    if (extra)
        return scan_extra(extra, visit, ctx);
    return true;
}

void launch_cache_clear(struct launch_cache *cache) {
    struct func_layout *l, *tmp;
    memset(cache->recent, 0, sizeof cache->recent);
    HASH_ITER(hh, cache->by_func, l, tmp) {
        HASH_DELETE(hh, cache->by_func, l);
        free(l->pointer_index);
        free(l);
    }
}
