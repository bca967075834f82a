/*
 * resolver_probe.c — loads the driver the way the CUDA runtime does (private dlopen,
 * dlsym of the resolver on that handle, entry points by name + version + flags, all
 * before cuInit) and prints, for each lookup, which library and which exported symbol
 * the pointer it got belongs to:
 *
 *   gpa cuMemAlloc@3020 flags=0 -> liboffload.so:cuMemAlloc_v2
 *
 * Without liboffload every line names libcuda.so.1; with it, only the exact versioned
 * symbols liboffload hooks name liboffload.so (tests/interpose.bats compares both).
 * Then it uses what it fetched: cuInit, a context, an allocation, a copy round trip.
 */
#include <cuda.h>
#include <dlfcn.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef CUresult (*gpa_v2_fn)(const char *, void **, int, cuuint64_t,
                              CUdriverProcAddressQueryResult *);
typedef CUresult (*gpa_v1_fn)(const char *, void **, int, cuuint64_t);

static const char *where(void *fn) {
    static char out[512];
    Dl_info info;
    if (!fn)
        return "NULL";
    if (!dladdr(fn, &info) || !info.dli_fname)
        return "?";
    char path[4096];
    snprintf(path, sizeof path, "%s", info.dli_fname);
    snprintf(out, sizeof out, "%s:%s", basename(path),
             info.dli_sname && info.dli_saddr == fn ? info.dli_sname : "?");
    return out;
}

static gpa_v2_fn gpa;

static void *fetch(const char *name, int version, cuuint64_t flags) {
    void *fn = NULL;
    CUdriverProcAddressQueryResult status = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
    CUresult rc = gpa(name, &fn, version, flags, &status);
    printf("gpa %s@%d flags=%llu -> %s (rc %d, status %d)\n", name, version,
           (unsigned long long)flags, rc == CUDA_SUCCESS ? where(fn) : "error", (int)rc,
           (int)status);
    return rc == CUDA_SUCCESS ? fn : NULL;
}

#define PT CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "libcuda.so.1";
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "resolver_probe: %s\n", dlerror());
        return 1;
    }
    dlerror(); /* clear */
    gpa = (gpa_v2_fn)dlsym(h, "cuGetProcAddress_v2");
    gpa_v1_fn gpa_v1 = (gpa_v1_fn)dlsym(h, "cuGetProcAddress");
    const char *err = dlerror(); /* a successful lookup leaves no error behind */
    printf("dlerror after the resolver lookups: %s\n", err ? err : "none");
    printf("dlsym(handle, cuGetProcAddress_v2) -> %s\n", where((void *)gpa));
    printf("dlsym(handle, cuGetProcAddress) -> %s\n", where((void *)gpa_v1));
    if (!gpa || !gpa_v1)
        return 1;

    /* handle lookups of everything else are the driver's own */
    printf("dlsym(handle, cuMemAlloc) -> %s\n", where(dlsym(h, "cuMemAlloc")));
    printf("dlsym(handle, cuMemAlloc_v2) -> %s\n", where(dlsym(h, "cuMemAlloc_v2")));
    printf("dlsym(handle, cuGetProcAddress_v3) -> %s\n", where(dlsym(h, "cuGetProcAddress_v3")));

    /* the resolver, before cuInit */
    fetch("cuMemAlloc", 2000, 0); /* 32-bit ABI: never the _v2 hook */
    fetch("cuMemAlloc", 3020, 0);
    fetch("cuMemAlloc", 13000, 0);
    fetch("cuMemcpyHtoD", 2000, 0);
    fetch("cuMemcpyHtoD", 12000, 0);
    fetch("cuMemcpyHtoD", 12000, PT);
    fetch("cuMemsetD8Async", 3020, PT);
    fetch("cuStreamDestroy", 2000, 0);
    fetch("cuStreamDestroy", 4000, 0);
    fetch("cuGraphInstantiate", 12000, 0);
    fetch("cuLaunchKernel", 12000, PT);
    fetch("cuCtxCreate", 12000, 0); /* not hooked */
    fetch("cuGetProcAddress", 11030, 0);
    fetch("cuGetProcAddress", 12000, 0);
    void *fn = NULL;
    CUresult rc = gpa_v1("cuMemAlloc", &fn, 12000, 0);
    printf("gpa_v1 cuMemAlloc@12000 -> %s (rc %d)\n", rc == CUDA_SUCCESS ? where(fn) : "error",
           (int)rc);

    /* use what was fetched: the hooks work with the real driver behind them */
    CUresult (*init)(unsigned) = (CUresult(*)(unsigned))fetch("cuInit", 2000, 0);
    CUresult (*device_get)(CUdevice *, int) =
        (CUresult(*)(CUdevice *, int))fetch("cuDeviceGet", 2000, 0);
    CUresult (*retain)(CUcontext *, CUdevice) =
        (CUresult(*)(CUcontext *, CUdevice))fetch("cuDevicePrimaryCtxRetain", 7000, 0);
    CUresult (*set_current)(CUcontext) = (CUresult(*)(CUcontext))fetch("cuCtxSetCurrent", 4000, 0);
    CUresult (*alloc)(CUdeviceptr *, size_t) =
        (CUresult(*)(CUdeviceptr *, size_t))fetch("cuMemAlloc", 12000, 0);
    CUresult (*htod)(CUdeviceptr, const void *, size_t) =
        (CUresult(*)(CUdeviceptr, const void *, size_t))fetch("cuMemcpyHtoD", 12000, PT);
    CUresult (*dtoh)(void *, CUdeviceptr, size_t) =
        (CUresult(*)(void *, CUdeviceptr, size_t))fetch("cuMemcpyDtoH", 12000, PT);
    CUresult (*mem_free)(CUdeviceptr) = (CUresult(*)(CUdeviceptr))fetch("cuMemFree", 12000, 0);
    if (!init || !device_get || !retain || !set_current || !alloc || !htod || !dtoh || !mem_free)
        return 1;
    CUdevice dev;
    CUcontext ctx;
    CUdeviceptr p;
    size_t n = 3 << 20;
    char *src = malloc(n), *dst = calloc(1, n);
    for (size_t i = 0; i < n; i++)
        src[i] = (char)(i * 31 + 7);
    if (init(0) || device_get(&dev, 0) || retain(&ctx, dev) || set_current(ctx) || alloc(&p, n) ||
        htod(p, src, n) || dtoh(dst, p, n) || memcmp(src, dst, n) != 0 || mem_free(p)) {
        fprintf(stderr, "resolver_probe: round trip failed\n");
        return 1;
    }
    printf("round trip: ok\n");
    free(src);
    free(dst);
    return 0;
}
