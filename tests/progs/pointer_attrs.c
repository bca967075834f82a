/*
 * pointer_attrs.c — what address queries answer for device allocations.
 *
 *   pointer_attrs MiB
 *
 * A and B of MiB each, written in turn; under a budget that holds one of them A is
 * evicted when B is written, then A is written again (restored, B evicted). After each
 * step it prints, for a pointer inside each allocation, every CU_POINTER_ATTRIBUTE the
 * simulator supports, asked one at a time (cuPointerGetAttribute) and all at once
 * (cuPointerGetAttributes), and cuMemGetAddressRange. Values that depend on where the
 * memory lies are printed relative to the allocation (base+N), the context as
 * current/other, a buffer id as the allocation it first belonged to (A, B, 0 or new), so
 * the output without liboffload and under liboffload compare line by line
 * (tests/interpose.bats).
 */
#include "tests/progs/prog_check.h"

#include <cuda.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ATTR(name)                                                                                 \
    { CU_POINTER_ATTRIBUTE_##name, #name }
static const struct {
    CUpointer_attribute attr;
    const char *name;
} attrs[] = {
    ATTR(CONTEXT),
    ATTR(MEMORY_TYPE),
    ATTR(DEVICE_POINTER),
    ATTR(HOST_POINTER),
    ATTR(SYNC_MEMOPS),
    ATTR(BUFFER_ID),
    ATTR(IS_MANAGED),
    ATTR(DEVICE_ORDINAL),
    ATTR(IS_LEGACY_CUDA_IPC_CAPABLE),
    ATTR(RANGE_START_ADDR),
    ATTR(RANGE_SIZE),
    ATTR(MAPPED),
    ATTR(ALLOWED_HANDLE_TYPES),
    ATTR(ACCESS_FLAGS),
    ATTR(MEMPOOL_HANDLE),
};
#define NATTRS (sizeof attrs / sizeof attrs[0])

struct alloc {
    const char *name;
    CUdeviceptr base;
    unsigned long long buffer_id; /* the first one seen */
};
static struct alloc allocs[2];

/* Room for any attribute's value. */
union value {
    CUcontext ctx;
    unsigned u;
    int i;
    unsigned long long ull;
    CUdeviceptr ptr;
    size_t size;
    void *p;
};

static void print_address(char *out, size_t n, CUdeviceptr v, const struct alloc *a) {
    if (v >= a->base && v - a->base < (64ull << 30))
        snprintf(out, n, "base+%llu", (unsigned long long)(v - a->base));
    else
        snprintf(out, n, "%s", v ? "elsewhere" : "0");
}

static const char *buffer_name(unsigned long long id) {
    if (!id)
        return "0";
    for (int i = 0; i < 2; i++)
        if (allocs[i].buffer_id == id)
            return allocs[i].name;
    return "new";
}

static void describe(char *out, size_t n, CUpointer_attribute attr, const union value *v,
                     const struct alloc *a) {
    CUcontext cur = NULL;
    switch (attr) {
    case CU_POINTER_ATTRIBUTE_CONTEXT:
        cuCtxGetCurrent(&cur);
        snprintf(out, n, "%s", !v->ctx ? "NULL" : v->ctx == cur ? "current" : "other");
        break;
    case CU_POINTER_ATTRIBUTE_DEVICE_POINTER:
    case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR:
        print_address(out, n, v->ptr, a);
        break;
    case CU_POINTER_ATTRIBUTE_HOST_POINTER:
    case CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE:
        snprintf(out, n, "%s", v->p ? "set" : "NULL");
        break;
    case CU_POINTER_ATTRIBUTE_BUFFER_ID:
        snprintf(out, n, "%s", buffer_name(v->ull));
        break;
    case CU_POINTER_ATTRIBUTE_RANGE_SIZE:
        snprintf(out, n, "%zu", v->size);
        break;
    case CU_POINTER_ATTRIBUTE_ALLOWED_HANDLE_TYPES:
        snprintf(out, n, "%llu", v->ull);
        break;
    default:
        snprintf(out, n, "%d", v->i);
        break;
    }
}

static const char *err_name(CUresult r) {
    const char *s = "?";
    cuGetErrorName(r, &s);
    return s;
}

/* Every attribute of a pointer 4 KiB + 12 bytes into a, each way, then its range. */
static void report(const char *phase, struct alloc *a) {
    CUdeviceptr p = a->base + 4096 + 12;
    char text[64];
    union value one[NATTRS], all[NATTRS];
    CUpointer_attribute list[NATTRS];
    void *data[NATTRS];
    for (size_t i = 0; i < NATTRS; i++) {
        memset(&one[i], 0, sizeof one[i]);
        memset(&all[i], 0xa5, sizeof all[i]);
        list[i] = attrs[i].attr;
        data[i] = &all[i];
        CUresult r = cuPointerGetAttribute(&one[i], attrs[i].attr, p);
        if (attrs[i].attr == CU_POINTER_ATTRIBUTE_BUFFER_ID && r == CUDA_SUCCESS && !a->buffer_id)
            a->buffer_id = one[i].ull;
        if (r == CUDA_SUCCESS)
            describe(text, sizeof text, attrs[i].attr, &one[i], a);
        printf("%s %s %s: %s%s%s\n", phase, a->name, attrs[i].name, err_name(r),
               r == CUDA_SUCCESS ? " " : "", r == CUDA_SUCCESS ? text : "");
    }
    CUresult r = cuPointerGetAttributes(NATTRS, list, data, p);
    printf("%s %s all at once: %s\n", phase, a->name, err_name(r));
    for (size_t i = 0; i < NATTRS && r == CUDA_SUCCESS; i++) {
        describe(text, sizeof text, attrs[i].attr, &all[i], a);
        printf("%s %s all %s: %s\n", phase, a->name, attrs[i].name, text);
    }
    CUdeviceptr base = 0;
    size_t size = 0;
    r = cuMemGetAddressRange(&base, &size, p);
    print_address(text, sizeof text, base, a);
    printf("%s %s address range: %s %s %zu\n", phase, a->name, err_name(r), text, size);
}

static void write_pattern(CUdeviceptr p, size_t bytes, unsigned seed, unsigned *host) {
    for (size_t i = 0; i < bytes / 4; i++)
        host[i] = seed ^ (unsigned)(i * 2654435761u);
    PROG_CHECK_CU(cuMemcpyHtoD(p, host, bytes));
}

int main(int argc, char **argv) {
    if (argc != 2 || atoi(argv[1]) < 1) {
        fprintf(stderr, "usage: pointer_attrs MiB\n");
        return 2;
    }
    size_t bytes = (size_t)atoi(argv[1]) << 20;
    unsigned *host = malloc(bytes);
    if (!host)
        return 1;
    CUdevice dev;
    prog_primary_context(&dev);
    allocs[0].name = "A";
    allocs[1].name = "B";
    PROG_CHECK_CU(cuMemAlloc(&allocs[0].base, bytes));
    write_pattern(allocs[0].base, bytes, 0xa1, host);
    report("1-resident", &allocs[0]);
    PROG_CHECK_CU(cuMemAlloc(&allocs[1].base, bytes));
    write_pattern(allocs[1].base, bytes, 0xb1, host); /* A evicted under a small budget */
    report("2-other-written", &allocs[0]);
    report("2-other-written", &allocs[1]);
    write_pattern(allocs[0].base, bytes, 0xa2, host); /* A restored, B evicted */
    report("3-rewritten", &allocs[0]);
    report("3-rewritten", &allocs[1]);
    PROG_CHECK_CU(cuMemFree(allocs[0].base));
    PROG_CHECK_CU(cuMemFree(allocs[1].base));
    PROG_CHECK_CU(cuDevicePrimaryCtxRelease(dev));
    free(host);
    return 0;
}
