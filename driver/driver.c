/*
 * driver.c — loads the real driver once and fills the entry-point table.
 *
 * A driver that cannot be loaded is not fatal: the table stays empty, one message says
 * why, and every hook answers CUDA_ERROR_NOT_INITIALIZED (what a program sees from a
 * driver that cannot start), so the program fails the way it would without a GPU
 * instead of crashing inside liboffload.
 */
#include "driver/driver.h"

#include "base/log.h"
#include "driver/real_dlsym.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct {
    struct driver_table table;
    void *handle; /* NULL: not loaded (or failed) */
    bool tried;   /* the load ran (successfully or not): the hooks' fast path */
    pthread_once_t once;
} real_driver = {.once = PTHREAD_ONCE_INIT};

/* The exported name of a table entry: NAME_v1 is the driver's plain NAME (driver.h). */
static const char *exported_name(const char *entry, char *buf, size_t size) {
    size_t len = strlen(entry);
    if (len < 3 || strcmp(entry + len - 3, "_v1") != 0 || len - 3 >= size)
        return entry;
    memcpy(buf, entry, len - 3);
    buf[len - 3] = '\0';
    return buf;
}

static const char *driver_path(void) {
    const char *path = secure_getenv("OFFLOAD_DRIVER");
    return path && *path ? path : "libcuda.so.1";
}

static void driver_load(void) {
    const char *path = driver_path();
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        const char *why = dlerror();
        log_error("cannot load the CUDA driver %s: %s", path, why ? why : "unknown error");
        __atomic_store_n(&real_driver.tried, true, __ATOMIC_RELEASE);
        return;
    }
    char name[128];
#define DRIVER_LOAD(symbol, prototype)                                                             \
    real_driver.table.symbol =                                                                     \
        (__typeof__(&prototype))real_dlsym(handle, exported_name(#symbol, name, sizeof name));
    DRIVER_ENTRIES(DRIVER_LOAD)
#undef DRIVER_LOAD
    /* Published last: driver_is_handle reads it without waiting for the load. */
    __atomic_store_n(&real_driver.handle, handle, __ATOMIC_RELEASE);
    __atomic_store_n(&real_driver.tried, true, __ATOMIC_RELEASE);
}

/* Called twice by every hook: after the load, one acquire load and no library call. */
const struct driver_table *driver(void) {
    if (__builtin_expect(!__atomic_load_n(&real_driver.tried, __ATOMIC_ACQUIRE), 0))
        pthread_once(&real_driver.once, driver_load);
    return &real_driver.table;
}

void *driver_handle(void) {
    driver();
    return real_driver.handle;
}

bool driver_is_handle(void *handle) {
    if (!handle)
        return false;
    void *loaded = __atomic_load_n(&real_driver.handle, __ATOMIC_ACQUIRE);
    if (loaded)
        return handle == loaded;
    /* Not loaded by liboffload yet (a runtime-style program dlopens the driver before its
     * first driver call): would our load find this very object? RTLD_NOLOAD answers
     * without loading or running anything; the handles of one object are equal. */
    void *same = dlopen(driver_path(), RTLD_LAZY | RTLD_NOLOAD);
    if (!same)
        return false;
    dlclose(same); /* the caller still holds its own reference */
    return same == handle;
}

CUresult driver_missing(void) {
    return driver_handle() ? CUDA_ERROR_NOT_SUPPORTED : CUDA_ERROR_NOT_INITIALIZED;
}

void *driver_lookup(void *handle, const char *symbol) {
    return handle ? real_dlsym(handle, symbol) : NULL;
}
