/*
 * setup.c — early (config) and lazy (CUDA) initialisation, fork handling.
 */
#include "runtime/setup.h"

#include "base/log.h"
#include "base/units.h"
#include "driver/cuerr.h"
#include "driver/driver.h"
#include "runtime/components/components.h"
#include "runtime/pressure.h"
#include "runtime/record/record.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* In the child of fork() the lock may have been held by a thread that does not exist
 * there, and CUDA is unusable: start a fresh lock and pass everything through. */
static void after_fork_in_child(void) {
    offload_lock_reset(&offload_runtime.lock);
    atomic_store(&offload_runtime.cuda_unusable, true);
    atomic_store(&offload_runtime.forked_child, true);
    /* the child has one thread: plain stores are safe; every entry point now passes through */
    offload_runtime.cuda_ready = false;
    atomic_store(&offload_runtime.tracked_count, 0);
}

void setup_early(struct runtime *rt) {
    struct config_error err;
    if (config_load(&rt->cfg, &err) != 0) {
        fprintf(stderr, "%s\n", err.text);
        _exit(2);
    }
    rt->config_loaded = true;
    log_set_level(rt->cfg.log_level);
    pthread_atfork(NULL, NULL, after_fork_in_child);
}

static void print_start_line(const struct runtime *rt) {
    char sequence[512];
    size_t n = components_describe(rt, sequence, sizeof sequence);
    /* With components the user asked for offloading and sees it at the default level;
     * a plain preload says nothing unless asked (it runs in every child process). */
    enum log_level level = n ? LOG_WARN : LOG_INFO;
    char budget[32];
    format_size(budget, sizeof budget, rt->budget.limit);
    log_msg(level, "%zu component%s, budget %s%s%s%s", n, n == 1 ? "" : "s", budget,
            sequence[0] ? ", sequence " : "", sequence,
            rt->cfg.mode == CONFIG_MODE_RECORD ? ", recording" : "");
}

static bool setup_failed(struct runtime *rt, const char *what, CUresult r) {
    log_error("cannot set up (%s: %s); passing every call through", what, cuerr_name(r));
    atomic_store(&rt->cuda_unusable, true);
    return false;
}

/* liboffload's own cuCtxGetCurrent, NULL when it fails. A driver fails it only before
 * cuInit or after shutdown, when the program's own call fails alike. Any other error (an
 * injected fault) sends the call it serves to the driver untracked, which may cost room
 * later: that is said, naming the call, once per run, so that an out-of-memory it leads
 * to is not a mystery. */
static CUcontext current_context(void) {
    static atomic_bool said;
    CUcontext ctx = NULL;
    CUresult r = driver()->cuCtxGetCurrent(&ctx);
    if (r == CUDA_SUCCESS)
        return ctx;
    if (r != CUDA_ERROR_NOT_INITIALIZED && r != CUDA_ERROR_DEINITIALIZED &&
        !atomic_exchange(&said, true))
        log_error("cuCtxGetCurrent failed (%s): the call it served went to the driver untracked",
                  cuerr_name(r));
    return NULL;
}

bool setup_cuda(struct runtime *rt) {
    if (rt->cuda_ready)
        return true;
    if (atomic_load(&rt->cuda_unusable) || !rt->config_loaded)
        return false;
    const struct driver_table *d = driver();
    if (!d->cuCtxGetCurrent || !d->cuMemCreate || !d->cuMemAddressReserve)
        return setup_failed(rt, "driver lacks virtual memory management", CUDA_ERROR_NOT_FOUND);
    CUcontext ctx = current_context();
    if (!ctx)
        return false; /* no context yet: the program's own call will say so */
    CUresult r = d->cuCtxGetDevice(&rt->device);
    if (r != CUDA_SUCCESS)
        return setup_failed(rt, "cuCtxGetDevice", r);
    size_t total = 0, free_bytes = 0;
    r = d->cuDeviceTotalMem_v2(&total, rt->device);
    if (r != CUDA_SUCCESS)
        return setup_failed(rt, "cuDeviceTotalMem", r);
    r = d->cuMemGetInfo_v2(&free_bytes, &total);
    if (r != CUDA_SUCCESS)
        return setup_failed(rt, "cuMemGetInfo", r);
    CUmemAllocationProp prop;
    memset(&prop, 0, sizeof prop);
    prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    prop.location.id = rt->device;
    size_t gran = 0;
    r = d->cuMemGetAllocationGranularity(&gran, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM);
    if (r != CUDA_SUCCESS)
        return setup_failed(rt, "cuMemGetAllocationGranularity", r);
    if (gran == 0 || (gran & (gran - 1)) != 0)
        return setup_failed(rt, "granularity is not a power of two", CUDA_ERROR_NOT_SUPPORTED);
    r = copy_engine_start(&rt->copy);
    if (r != CUDA_SUCCESS)
        return setup_failed(rt, "cuStreamCreate", r);

    rt->ctx = ctx;
    rt->device_total = total;
    rt->granularity = gran;
    registry_init(&rt->registry, (unsigned)__builtin_ctzll(gran));
    rt->budget.limit =
        rt->cfg.budget.set ? config_size_bytes(&rt->cfg.budget, total) : (uint64_t)free_bytes;
    rt->min_size = rt->cfg.min_size.set ? config_size_bytes(&rt->cfg.min_size, total) : 1u << 20;
    if (rt->min_size == 0)
        rt->min_size = 1;
    rt->victims = &pressure_victims;
    if (components_init(rt) != 0)
        return setup_failed(rt, "components", CUDA_ERROR_OUT_OF_MEMORY);
    record_init(rt);
    rt->cuda_ready = true;
    print_start_line(rt);
    return true;
}

bool setup_context_enter(struct runtime *rt) {
    CUcontext cur = NULL;
    if (driver()->cuCtxGetCurrent(&cur) == CUDA_SUCCESS && cur == rt->ctx)
        return false;
    return driver()->cuCtxPushCurrent_v2 && driver()->cuCtxPushCurrent_v2(rt->ctx) == 0;
}

void setup_context_leave(bool pushed) {
    if (pushed) {
        CUcontext popped;
        driver()->cuCtxPopCurrent_v2(&popped);
    }
}

enum setup_place setup_current_place(const struct runtime *rt) {
    CUcontext cur = current_context();
    if (!cur)
        return PLACE_NONE;
    if (cur == rt->ctx)
        return PLACE_MANAGED;
    CUdevice dev = -1;
    CUresult r = driver()->cuCtxGetDevice(&dev);
    if (r != CUDA_SUCCESS) {
        /* with a context current only a fault fails it: said once, as above */
        static atomic_bool said;
        if (!atomic_exchange(&said, true))
            log_error("cuCtxGetDevice failed (%s): the call it served went to the driver "
                      "untracked",
                      cuerr_name(r));
        return PLACE_OTHER_DEVICE;
    }
    return dev == rt->device ? PLACE_OTHER_CONTEXT : PLACE_OTHER_DEVICE;
}
