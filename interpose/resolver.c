/*
 * resolver.c — the exported cuGetProcAddress and cuGetProcAddress_v2 hooks.
 */
#include "interpose/resolver.h"

#include "base/log.h"
#include "driver/real_dlsym.h"

#include <dlfcn.h>
#include <link.h>
#include <stdatomic.h>

static struct {
    atomic_bool warned_unexported; /* said once: see resolver_substitute */
} resolver_state;

static void *driver_symbol(void *ctx, const char *symbol) {
    return driver_lookup(ctx, symbol);
}

/* The name under which the driver exports fn, or NULL (an internal function, or a
 * pointer outside the driver). */
static const char *exported_name(void *fn, void *driver_handle) {
    Dl_info info;
    struct link_map *object = NULL;
    if (!dladdr1(fn, &info, (void **)&object, RTLD_DL_LINKMAP) || !info.dli_sname ||
        info.dli_saddr != fn || (void *)object != driver_handle)
        return NULL;
    return info.dli_sname;
}

void *resolver_substitute(const char *requested, int version, cuuint64_t flags, void *fn) {
    void *handle = driver_handle();
    if (!handle || !fn || !requested)
        return fn;
    struct resolver_query query = {
        .requested = requested,
        .flags = flags,
        .fn = fn,
        .dladdr_name = exported_name(fn, handle),
        .lookup = driver_symbol,
        .ctx = handle,
    };
    const struct hook_entry *hook = resolver_pick(&query);
    const char *what = query.dladdr_name ? query.dladdr_name : "(not exported)";
    if (hook) {
        log_debug("resolver: %s@%d flags %llu -> %s (hooked)", requested, version,
                  (unsigned long long)flags, hook->symbol);
        return hook->fn;
    }
    log_debug("resolver: %s@%d flags %llu -> %s (driver's own)", requested, version,
              (unsigned long long)flags, what);
    /* A function liboffload hooks some version of, which the driver hands out from a
     * non-exported address: this driver's resolver cannot be matched to its symbols, and
     * programs that load it runtime-style would run uninterposed. Say so once. */
    if (!query.dladdr_name && resolver_family_hooked(requested) &&
        !atomic_exchange(&resolver_state.warned_unexported, true))
        log_warn("resolver: the driver returned a non-exported function for %s@%d; "
                 "entry points fetched through cuGetProcAddress may not be intercepted",
                 requested, version);
    return fn;
}

OFFLOAD_EXPORT CUresult cuGetProcAddress_v2(const char *symbol, void **pfn, int cudaVersion,
                                            cuuint64_t flags,
                                            CUdriverProcAddressQueryResult *symbolStatus) {
    __typeof__(&cuGetProcAddress_v2) real = driver()->cuGetProcAddress_v2;
    if (!real)
        return driver_missing();
    CUresult rc = real(symbol, pfn, cudaVersion, flags, symbolStatus);
    if (rc == CUDA_SUCCESS && pfn && *pfn)
        *pfn = resolver_substitute(symbol, cudaVersion, flags, *pfn);
    return rc;
}

/* The 11.3 ABI (no symbolStatus), exported as "cuGetProcAddress" (hook.h). */
OFFLOAD_EXPORT CUresult hook_cuGetProcAddress_v1(const char *symbol, void **pfn, int cudaVersion,
                                                 cuuint64_t flags) {
    __typeof__(&driver_abi_cuGetProcAddress_v1) real = driver()->cuGetProcAddress_v1;
    if (!real)
        return driver_missing();
    CUresult rc = real(symbol, pfn, cudaVersion, flags);
    if (rc == CUDA_SUCCESS && pfn && *pfn)
        *pfn = resolver_substitute(symbol, cudaVersion, flags, *pfn);
    return rc;
}
