/*
 * after_exit.c — preloaded after liboffload (LD_PRELOAD="liboffload.so libafter_exit.so"),
 * its constructor runs before liboffload's, so the exit handler it registers runs after
 * liboffload's (atexit handlers run in reverse order): it calls the driver API once
 * liboffload's exit report has run, as another library's exit handler freeing device memory
 * would. It allocates, writes and reads back more than a small budget holds, frees, and
 * prints "after_exit: ok" (or what failed) on stderr. The driver's functions are looked up
 * in the global scope, so they are liboffload's hooks.
 */
#include <cuda.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

#define WORDS ((size_t)1 << 20) /* 4 MiB: tracked */
#define BYTES (WORDS * sizeof(unsigned))
#define BUFFERS 6

#define LOOKUP(name) ((__typeof__(&name))dlsym(RTLD_DEFAULT, #name))

static int work(void) {
    __typeof__(&cuDeviceGet) device_get = LOOKUP(cuDeviceGet);
    __typeof__(&cuDevicePrimaryCtxRetain) retain = LOOKUP(cuDevicePrimaryCtxRetain);
    __typeof__(&cuCtxSetCurrent) set_current = LOOKUP(cuCtxSetCurrent);
    __typeof__(&cuMemAlloc_v2) alloc = LOOKUP(cuMemAlloc_v2);
    __typeof__(&cuMemsetD32_v2) set = LOOKUP(cuMemsetD32_v2);
    __typeof__(&cuMemcpyDtoH_v2) dtoh = LOOKUP(cuMemcpyDtoH_v2);
    __typeof__(&cuMemFree_v2) mem_free = LOOKUP(cuMemFree_v2);
    if (!device_get || !retain || !set_current || !alloc || !set || !dtoh || !mem_free)
        return 1;
    CUdevice dev;
    CUcontext ctx;
    if (device_get(&dev, 0) || retain(&ctx, dev) || set_current(ctx))
        return 2;
    unsigned *back = malloc(BYTES);
    CUdeviceptr bufs[BUFFERS];
    if (!back)
        return 3;
    for (unsigned i = 0; i < BUFFERS; i++) {
        if (alloc(&bufs[i], BYTES) || set(bufs[i], 0x2000u + i, WORDS))
            return 4;
    }
    for (unsigned i = 0; i < BUFFERS; i++) {
        if (dtoh(back, bufs[i], BYTES))
            return 5;
        for (size_t w = 0; w < WORDS; w++) {
            if (back[w] != 0x2000u + i)
                return 6;
        }
    }
    for (unsigned i = 0; i < BUFFERS; i++) {
        if (mem_free(bufs[i]))
            return 7;
    }
    free(back);
    return 0;
}

static void at_exit(void) {
    int failed = work();
    if (failed)
        fprintf(stderr, "after_exit: failed at step %d\n", failed);
    else
        fprintf(stderr, "after_exit: ok\n");
}

__attribute__((constructor)) static void start(void) {
    atexit(at_exit);
}
