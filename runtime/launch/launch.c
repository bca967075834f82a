/*
 * launch.c — parameter layouts and the scan of a launch's words.
 */
#include "runtime/launch/launch.h"

#include "base/grow.h"
#include "base/log.h"
#include "driver/driver.h"

#include <stdlib.h>
#include <string.h>

/* Stop asking for parameters past this index: a kernel's parameters fit in 32 KiB, so a
 * driver still answering here is not telling the truth. */
#define LAUNCH_MAX_PARAMS 4096

/* Pairs in an `extra` array before it counts as malformed: CUDA defines three keys. */
#define LAUNCH_MAX_EXTRA_PAIRS 32

typedef CUresult (*param_info_fn)(void *handle, size_t index, size_t *offset, size_t *size);

static CUresult func_param_info(void *h, size_t i, size_t *offset, size_t *size) {
    return driver()->cuFuncGetParamInfo((CUfunction)h, i, offset, size);
}

static CUresult kernel_param_info(void *h, size_t i, size_t *offset, size_t *size) {
    return driver()->cuKernelGetParamInfo((CUkernel)h, i, offset, size);
}

/* Adds the words of a parameter of `size` bytes. false without memory. */
static bool add_words(struct func_layout *l, size_t *capacity, unsigned param, size_t size) {
    for (size_t off = 0; off + 8 <= size && off <= UINT16_MAX; off += 8) {
        if (grow(&l->words, capacity, l->word_count + 1, sizeof *l->words, 8) != 0)
            return false;
        l->words[l->word_count++] = (struct param_word){(uint16_t)param, (uint16_t)off};
    }
    return true;
}

/* Asks info() for every parameter; false when the driver cannot tell (the first call
 * fails other than with INVALID_VALUE, which at index i means "i parameters"). */
static bool learn_words(struct func_layout *l, param_info_fn info, CUresult *first_error) {
    size_t capacity = 0;
    unsigned i = 0;
    CUresult stop = CUDA_SUCCESS;
    for (; i < LAUNCH_MAX_PARAMS; i++) {
        size_t offset = 0, size = 0;
        stop = info(l->func, i, &offset, &size);
        if (stop != CUDA_SUCCESS)
            break;
        if (!add_words(l, &capacity, i, size)) {
            free(l->words);
            l->words = NULL;
            l->word_count = 0;
            return false;
        }
    }
    *first_error = i == 0 ? stop : CUDA_SUCCESS;
    l->param_count = i;
    return i > 0 || stop == CUDA_ERROR_INVALID_VALUE;
}

static void learn_layout(struct func_layout *l) {
    const struct driver_table *d = driver();
    CUresult first_error = CUDA_ERROR_NOT_SUPPORTED;
    l->known = d->cuFuncGetParamInfo && learn_words(l, func_param_info, &first_error);
    /* A CUkernel cast to CUfunction: a strict driver says INVALID_HANDLE to the function
     * query, and the kernel query answers. */
    if (!l->known && first_error == CUDA_ERROR_INVALID_HANDLE && d->cuKernelGetParamInfo) {
        l->known = learn_words(l, kernel_param_info, &first_error);
        l->is_kernel = l->known;
    }
    const char *name = NULL;
    if (l->is_kernel) {
        if (d->cuKernelGetName && d->cuKernelGetName(&name, (CUkernel)l->func) == CUDA_SUCCESS)
            l->name = name;
    } else if (d->cuFuncGetName && d->cuFuncGetName(&name, l->func) == CUDA_SUCCESS) {
        l->name = name;
    }
    l->component = -2;
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
    learn_layout(l);
    if (!l->known)
        log_unreadable_once(cache, l);
    bool hash_oom = false;
    HASH_ADD(hh, cache->by_func, func, sizeof l->func, l);
    if (hash_oom) {
        free(l->words);
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
    return true;
}

bool launch_scan(const struct func_layout *layout, void **params, void **extra,
                 void (*visit)(void *ctx, CUdeviceptr value), void *ctx) {
    if (params) {
        if (!layout || !layout->known)
            return false;
        for (unsigned k = 0; k < layout->word_count; k++)
            visit(ctx, (CUdeviceptr)launch_word(params, layout->words[k]));
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
        free(l->words);
        free(l);
    }
}
