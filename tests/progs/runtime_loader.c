/*
 * runtime_loader — reaches the driver exactly the way the CUDA runtime does.
 *
 *   runtime_loader [--dlsym] [--buffers N] [--size MiB]   (default 8 buffers of 32 MiB)
 *
 * dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL) privately, dlsym(handle,
 * "cuGetProcAddress_v2") on that handle, then every entry point fetched through it by
 * name + version + flags (per-thread default stream for copies and memsets) before
 * cuInit. With --dlsym, the way TensorFlow's stream executor does it instead: every entry
 * point by its exact driver symbol, dlsym(handle, "cuMemAlloc_v2"). Never calls an
 * exported cu* symbol itself (linked with --as-needed: no link to libcuda at all).
 *
 * Allocates all N buffers first, then fills each with a distinct pattern (copies and
 * memsets on two streams), then reads every buffer back and verifies every byte. Prints
 * "verified N buffers" and exits 0; on failure prints "CALL: CUDA_ERROR_NAME" and exits 1.
 */
#include <cuda.h>
#include <cudaTypedefs.h>
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MiB ((size_t)1 << 20)

static PFN_cuGetErrorName_v6000 get_error_name;

/* The pattern of buffer i at byte offset o (see fill()). */
static unsigned char expected(unsigned i, size_t o, size_t size) {
    if (i % 2 == 0) {
        /* memset to a 32-bit word, then the first MiB copied from a pinned pattern */
        if (o < MiB && o < size)
            return (unsigned char)((o * 31 + i) ^ (o >> 8));
        uint32_t word = 0xa5000000u | (i << 8) | (0x5a ^ i);
        return (unsigned char)(word >> (8 * (o % 4)));
    }
    /* a pageable pattern copied whole, then a memset of 8-bit value i in the middle */
    if (o >= size / 4 && o < size / 2)
        return (unsigned char)(0x40 + i);
    return (unsigned char)((o * 7 + i * 13) ^ (o >> 12));
}

static int failed(const char *call, CUresult r) {
    const char *name = NULL;
    if (!get_error_name || get_error_name(r, &name) != CUDA_SUCCESS || !name)
        name = "unknown error";
    printf("%s: %s\n", call, name);
    return 1;
}

#define CALL(what, expr)                                                                           \
    do {                                                                                           \
        CUresult r_ = (expr);                                                                      \
        if (r_ != CUDA_SUCCESS)                                                                    \
            return failed(what, r_);                                                               \
    } while (0)

static PFN_cuGetProcAddress_v12000 resolver;
static CUdeviceptr *buf;
static unsigned char *host;

static void *lib;
static int by_symbol; /* --dlsym */

/* Fetches `name` at `version` with `flags` from the resolver, or with --dlsym the exact
 * driver `symbol` that stands for them from the handle; exits with a message if it cannot. */
static void *fetch(const char *name, int version, cuuint64_t flags, const char *symbol) {
    void *fn = NULL;
    if (by_symbol) {
        fn = dlsym(lib, symbol);
        if (!fn) {
            printf("dlsym(%s): %s\n", symbol, dlerror());
            exit(1);
        }
        return fn;
    }
    CUdriverProcAddressQueryResult status = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
    CUresult r = resolver(name, &fn, version, flags, &status);
    if (r != CUDA_SUCCESS || status != CU_GET_PROC_ADDRESS_SUCCESS || !fn) {
        printf("cuGetProcAddress(%s, %d): status %d, error %d\n", name, version, (int)status,
               (int)r);
        exit(1);
    }
    return fn;
}

#define PER_THREAD CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM

int main(int argc, char **argv) {
    unsigned nbuf = 8;
    size_t size = 32 * MiB;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dlsym") == 0)
            by_symbol = 1;
        else if (strcmp(argv[i], "--buffers") == 0 && i + 1 < argc)
            nbuf = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--size") == 0 && i + 1 < argc)
            size = strtoull(argv[++i], NULL, 10) * MiB;
        else {
            fprintf(stderr, "usage: %s [--dlsym] [--buffers N] [--size MiB]\n", argv[0]);
            return 2;
        }
    }
    if (nbuf == 0 || size < 4 * MiB) {
        fprintf(stderr, "need at least one buffer of at least 4 MiB\n");
        return 2;
    }

    lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        printf("dlopen(libcuda.so.1): %s\n", dlerror());
        return 1;
    }
    resolver = (PFN_cuGetProcAddress_v12000)dlsym(lib, "cuGetProcAddress_v2");
    if (!resolver && !by_symbol) {
        printf("dlsym(cuGetProcAddress_v2): %s\n", dlerror());
        return 1;
    }
    /* Everything is fetched before cuInit, as cudart does. */
    get_error_name = fetch("cuGetErrorName", 6000, 0, "cuGetErrorName");
    PFN_cuInit_v2000 init = fetch("cuInit", 2000, 0, "cuInit");
    PFN_cuDeviceGet_v2000 device_get = fetch("cuDeviceGet", 2000, 0, "cuDeviceGet");
    PFN_cuDevicePrimaryCtxRetain_v7000 retain =
        fetch("cuDevicePrimaryCtxRetain", 7000, 0, "cuDevicePrimaryCtxRetain");
    PFN_cuDevicePrimaryCtxRelease_v11000 release =
        fetch("cuDevicePrimaryCtxRelease", 11000, 0, "cuDevicePrimaryCtxRelease_v2");
    PFN_cuCtxSetCurrent_v4000 set_current = fetch("cuCtxSetCurrent", 4000, 0, "cuCtxSetCurrent");
    PFN_cuMemAlloc_v3020 mem_alloc = fetch("cuMemAlloc", 3020, 0, "cuMemAlloc_v2");
    PFN_cuMemFree_v3020 mem_free = fetch("cuMemFree", 3020, 0, "cuMemFree_v2");
    PFN_cuMemAllocHost_v3020 alloc_host = fetch("cuMemAllocHost", 3020, 0, "cuMemAllocHost_v2");
    PFN_cuMemFreeHost_v2000 free_host = fetch("cuMemFreeHost", 2000, 0, "cuMemFreeHost");
    PFN_cuStreamCreate_v2000 stream_create = fetch("cuStreamCreate", 2000, 0, "cuStreamCreate");
    PFN_cuStreamSynchronize_v7000_ptsz stream_sync =
        fetch("cuStreamSynchronize", 7000, PER_THREAD, "cuStreamSynchronize_ptsz");
    PFN_cuStreamDestroy_v4000 stream_destroy =
        fetch("cuStreamDestroy", 4000, 0, "cuStreamDestroy_v2");
    PFN_cuMemcpyHtoD_v7000_ptds htod =
        fetch("cuMemcpyHtoD", 7000, PER_THREAD, "cuMemcpyHtoD_v2_ptds");
    PFN_cuMemcpyDtoH_v7000_ptds dtoh =
        fetch("cuMemcpyDtoH", 7000, PER_THREAD, "cuMemcpyDtoH_v2_ptds");
    PFN_cuMemcpyHtoDAsync_v7000_ptsz htod_async =
        fetch("cuMemcpyHtoDAsync", 7000, PER_THREAD, "cuMemcpyHtoDAsync_v2_ptsz");
    PFN_cuMemsetD8_v7000_ptds memset8 = fetch("cuMemsetD8", 7000, PER_THREAD, "cuMemsetD8_v2_ptds");
    PFN_cuMemsetD32Async_v7000_ptsz memset32_async =
        fetch("cuMemsetD32Async", 7000, PER_THREAD, "cuMemsetD32Async_ptsz");

    CUdevice dev;
    CUcontext ctx;
    CALL("cuInit", init(0));
    CALL("cuDeviceGet", device_get(&dev, 0));
    CALL("cuDevicePrimaryCtxRetain", retain(&ctx, dev));
    CALL("cuCtxSetCurrent", set_current(ctx));

    CUstream streams[2];
    for (int s = 0; s < 2; s++)
        CALL("cuStreamCreate", stream_create(&streams[s], 0));
    /* file-scope roots: an early error return is not a leak */
    buf = calloc(nbuf, sizeof *buf);
    host = malloc(size);
    unsigned char *pinned[2];
    for (int s = 0; s < 2; s++)
        CALL("cuMemAllocHost", alloc_host((void **)&pinned[s], MiB));
    if (!buf || !host)
        return failed("malloc", CUDA_ERROR_OUT_OF_MEMORY);

    /* 1. allocate everything */
    for (unsigned i = 0; i < nbuf; i++)
        CALL("cuMemAlloc", mem_alloc(&buf[i], size));

    /* 2. fill everything */
    for (unsigned i = 0; i < nbuf; i++) {
        CUstream s = streams[i % 4 < 2 ? 0 : 1];
        if (i % 2 == 0) {
            unsigned char *p = pinned[i % 4 < 2 ? 0 : 1];
            /* the pinned staging buffer is reused: wait until its last copy is done */
            CALL("cuStreamSynchronize", stream_sync(s));
            for (size_t o = 0; o < MiB; o++)
                p[o] = expected(i, o, size);
            uint32_t word = 0xa5000000u | (i << 8) | (0x5a ^ i);
            CALL("cuMemsetD32Async", memset32_async(buf[i], word, size / 4, s));
            CALL("cuMemcpyHtoDAsync", htod_async(buf[i], p, MiB, s));
        } else {
            for (size_t o = 0; o < size; o++)
                host[o] = (unsigned char)((o * 7 + i * 13) ^ (o >> 12));
            CALL("cuMemcpyHtoD", htod(buf[i], host, size));
            CALL("cuMemsetD8", memset8(buf[i] + size / 4, (unsigned char)(0x40 + i), size / 4));
        }
    }
    for (int s = 0; s < 2; s++)
        CALL("cuStreamSynchronize", stream_sync(streams[s]));

    /* 3. verify everything */
    for (unsigned i = 0; i < nbuf; i++) {
        memset(host, 0, size);
        CALL("cuMemcpyDtoH", dtoh(host, buf[i], size));
        for (size_t o = 0; o < size; o++)
            if (host[o] != expected(i, o, size)) {
                printf("buffer %u byte %zu: got 0x%02x, expected 0x%02x\n", i, o, host[o],
                       expected(i, o, size));
                return 1;
            }
    }

    for (unsigned i = 0; i < nbuf; i++)
        CALL("cuMemFree", mem_free(buf[i]));
    for (int s = 0; s < 2; s++) {
        CALL("cuMemFreeHost", free_host(pinned[s]));
        CALL("cuStreamDestroy", stream_destroy(streams[s]));
    }
    CALL("cuDevicePrimaryCtxRelease", release(dev));
    free(buf);
    free(host);
    printf("verified %u buffers\n", nbuf);
    return 0;
}
