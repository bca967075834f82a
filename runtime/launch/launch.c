/*
 * launch.c — parameter layouts and the scan of a launch's words.
 */
#include "runtime/launch/launch.h"

#include "base/log.h"
#include "base/vec.h"
#include "driver/cuerr.h"
#include "runtime/launch/kernel_info.h"
#include "runtime/launch/tensor_maps.h"

#include <stdlib.h>
#include <string.h>

/* Stop asking for parameters past this index: a kernel's parameters fit in 32 KiB, so a
 * driver still answering here is not telling the truth. */
#define LAUNCH_MAX_PARAMS 4096

/* Pairs in an `extra` array before it counts as malformed: CUDA defines three keys. */
#define LAUNCH_MAX_EXTRA_PAIRS 32

/* Tensor maps are 64-byte aligned in older cuda.h, 128-byte in newer ones: every
 * 64-byte-aligned offset covers both. */
#define TENSOR_MAP_ALIGN 64

struct layout_capacity {
    size_t words, maps;
};

/* Adds the words (and tensor-map places) of a parameter of `size` bytes. false without
 * memory. */
static bool add_words(struct func_layout *l, struct layout_capacity *cap, unsigned param,
                      size_t size) {
    for (size_t off = 0; off + 8 <= size && off <= UINT16_MAX; off += 8) {
        if (VEC_RESERVE(l->words, cap->words, l->word_count + 1) != 0)
            return false;
        l->words[l->word_count++] = (struct param_word){(uint16_t)param, (uint16_t)off};
    }
    for (size_t off = 0; off + TENSOR_MAPS_BYTES <= size && off <= UINT16_MAX;
         off += TENSOR_MAP_ALIGN) {
        if (VEC_RESERVE(l->maps, cap->maps, l->map_count + 1) != 0)
            return false;
        l->maps[l->map_count++] = (struct param_word){(uint16_t)param, (uint16_t)off};
    }
    return true;
}

/* Asks for every parameter (kernel_info.h: of a CUfunction or a CUkernel). *known: false
 * when the driver cannot tell (NOT_SUPPORTED, or any answer other than INVALID_VALUE,
 * which at index i means "i parameters", at index 0). Returns CUDA_SUCCESS, or the
 * driver's error when a query failed for another reason (a fault: the layout must not be
 * cached truncated, hiding the pointers after it for good). */
static CUresult learn_words(struct func_layout *l, bool *known) {
    struct layout_capacity capacity = {0, 0};
    unsigned i = 0;
    CUresult stop = CUDA_SUCCESS;
    for (; i < LAUNCH_MAX_PARAMS; i++) {
        size_t offset = 0, size = 0;
        stop = kernel_param_info(l->func, i, &offset, &size);
        if (stop != CUDA_SUCCESS)
            break;
        if (!add_words(l, &capacity, i, size)) {
            free(l->words), free(l->maps);
            l->words = l->maps = NULL;
            l->word_count = l->map_count = 0;
            *known = false;
            return CUDA_SUCCESS;
        }
    }
    l->param_count = i;
    *known = i > 0 || stop == CUDA_ERROR_INVALID_VALUE;
    if (stop != CUDA_SUCCESS && stop != CUDA_ERROR_INVALID_VALUE &&
        stop != CUDA_ERROR_NOT_SUPPORTED && stop != CUDA_ERROR_INVALID_HANDLE)
        return stop;
    return CUDA_SUCCESS;
}

static CUresult learn_layout(struct func_layout *l) {
    CUresult r = learn_words(l, &l->known);
    l->name = kernel_name(l->func);
    l->component = -2;
    l->indirect = -2;
    return r;
}

static size_t recent_slot(CUfunction f) {
    return ((uintptr_t)f >> 4) % LAUNCH_RECENT_SLOTS; /* as launch_layout in launch.h */
}

static void log_unreadable_once(struct launch_cache *cache, const struct func_layout *l) {
    if (cache->unreadable_logged)
        return;
    cache->unreadable_logged = true;
    log_warn("cannot read the parameter layout of kernel %s: before each launch of such a "
             "kernel, liboffload makes the active component resident (as much of it as the "
             "budget holds)",
             l->name ? l->name : "(unnamed)");
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
        /* both names: a CUkernel's layout comes from cuKernelGetParamInfo (kernel_info.c) */
        log_error("reading the parameter layout of kernel %s failed (cuFuncGetParamInfo or "
                  "cuKernelGetParamInfo: %s): "
                  "the launch fails with that error rather than run with pointers unseen",
                  l->name ? l->name : "(unnamed)", cuerr_name(failed));
        cache->query_failed = failed;
        free(l->words), free(l->maps);
        free(l);
        return NULL;
    }
    if (!l->known)
        log_unreadable_once(cache, l);
    bool hash_oom = false;
    HASH_ADD(hh, cache->by_func, func, sizeof l->func, l);
    if (hash_oom) {
        free(l->words), free(l->maps);
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
        else if (i / 2 > LAUNCH_MAX_EXTRA_PAIRS)
            break; /* malformed: never read far */
    }
    if (!buffer)
        return true;
    for (size_t off = 0; off + 8 <= size; off += 8) {
        uint64_t v;
        memcpy(&v, buffer + off, 8);
        visit(ctx, (CUdeviceptr)v);
    }
    CUdeviceptr global;
    for (size_t off = 0; off + TENSOR_MAPS_BYTES <= size; off += TENSOR_MAP_ALIGN)
        if (tensor_maps_lookup(buffer + off, &global))
            visit(ctx, global);
    return true;
}

bool launch_scan(const struct func_layout *layout, void **params, void **extra,
                 void (*visit)(void *ctx, CUdeviceptr value), void *ctx) {
    if (params) {
        if (!layout || !layout->known)
            return false;
        for (unsigned k = 0; k < layout->word_count; k++)
            visit(ctx, (CUdeviceptr)launch_word(params, layout->words[k]));
        CUdeviceptr global;
        for (unsigned k = 0; k < layout->map_count; k++) {
            if (tensor_maps_lookup(launch_param_at(params, layout->maps[k]), &global))
                visit(ctx, global);
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
        free(l->words), free(l->maps);
        free(l);
    }
}
