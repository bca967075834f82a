/*
 * driver.c — loads the real driver once and fills the entry-point table.
 */
#include "interpose/driver.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static struct driver_table real_driver;
static pthread_once_t real_driver_once = PTHREAD_ONCE_INIT;

static void driver_load(void) {
    const char *path = secure_getenv("OFFLOAD_DRIVER");
    if (!path || !*path)
        path = "libcuda.so.1";
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        fprintf(stderr, "offload: cannot load the CUDA driver: %s\n", dlerror());
        return;
    }
#define DRIVER_LOAD(symbol, prototype) real_driver.symbol = (__typeof__(&prototype))dlsym(handle, #symbol);
    DRIVER_ENTRIES(DRIVER_LOAD)
#undef DRIVER_LOAD
}

const struct driver_table *driver(void) {
    pthread_once(&real_driver_once, driver_load);
    return &real_driver;
}
