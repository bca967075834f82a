/*
 * pointer.c — address queries: the allocation-like range an address lies in (a cuMemAlloc,
 * a cuMemMap range, a stream-ordered allocation, pinned host memory), for
 * cuMemGetAddressRange, cuPointerGetAttribute(s) and the strictness checks
 * (sim_mem_extent_locked).
 */
#include "tests/sim/memory_internal.h"
#include "tests/sim/rangevec.h"
#include "tests/sim/sim.h"
#include "tests/sim/strict.h"

/* ---- address queries ------------------------------------------------------------- */

/* With a lock held: the allocation-like range holding p (an allocation, or the cuMemMap
 * range inside a reservation). */
static int range_of(uintptr_t p, uintptr_t *base, size_t *size, uint64_t *id, int *device) {
    long i = vfind(&mem.regions, p);
    if (i >= 0) {
        const struct region *reg = vat(&mem.regions, (size_t)i);
        *device = 1;
        *id = reg->id;
        if (reg->kind == REGION_ALLOC) {
            *base = reg->start;
            *size = reg->end - reg->start;
            return 0;
        }
        if (reg->kind == REGION_POOL)
            return sim_pool_range_locked(p, base, size, id);
        long m = vfind(&mem.maps, p);
        if (m < 0)
            return -1;
        const struct mapping *mp = vat(&mem.maps, (size_t)m);
        *base = mp->map_start;
        *size = mp->map_end - mp->map_start;
        *id = mp->ph->handle;
        return 0;
    }
    long h = vfind(&mem.host, p);
    if (h >= 0) {
        const struct hostrange *hr = vat(&mem.host, (size_t)h);
        *device = 0;
        *base = hr->start;
        *size = hr->end - hr->start;
        *id = hr->start;
        return 0;
    }
    return -1;
}

int sim_mem_extent_locked(uintptr_t p, uintptr_t *start, uintptr_t *end) {
    uintptr_t base;
    size_t size;
    uint64_t id;
    int device;
    /* Running work sees stream order: a stream-ordered piece freed and reused in API order
     * (cuMemAllocAsync of a larger piece at its start, merged with a neighbour freed
     * elsewhere) is still the old allocation for a kernel queued before the free. */
    if (sim_pool_live_extent_locked(p, start, end) == 0)
        return 0;
    if (range_of(p, &base, &size, &id, &device) != 0 || !device)
        return -1;
    *start = base;
    *end = base + size;
    return 0;
}

SIM_API CUresult cuMemGetAddressRange_v2(CUdeviceptr *pbase, size_t *psize, CUdeviceptr dptr) {
    SIM_ENTER("cuMemGetAddressRange_v2");
    uintptr_t base;
    size_t size;
    uint64_t id;
    int device;
    pthread_rwlock_rdlock(mem.lock);
    int bad = range_of(dptr, &base, &size, &id, &device) != 0 || !device;
    pthread_rwlock_unlock(mem.lock);
    if (bad)
        return CUDA_ERROR_NOT_FOUND;
    if (pbase)
        *pbase = base;
    if (psize)
        *psize = size;
    return CUDA_SUCCESS;
}

static CUresult pointer_attribute(void *data, CUpointer_attribute attr, CUdeviceptr ptr) {
    uintptr_t base;
    size_t size;
    uint64_t id;
    int device;
    pthread_rwlock_rdlock(mem.lock);
    int known = range_of(ptr, &base, &size, &id, &device) == 0;
    int mapped = known && check_range_locked(ptr, 1, 0, 1) == CUDA_SUCCESS;
    CUmemoryPool pool = known && device ? sim_pool_of_locked(ptr) : NULL;
    pthread_rwlock_unlock(mem.lock);
    switch (attr) {
    case CU_POINTER_ATTRIBUTE_CONTEXT:
        if (!known)
            return CUDA_ERROR_INVALID_VALUE;
        *(CUcontext *)data = (CUcontext)sim_ctx_current();
        return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_MEMORY_TYPE:
        if (!known)
            return CUDA_ERROR_INVALID_VALUE;
        *(unsigned *)data = device ? CU_MEMORYTYPE_DEVICE : CU_MEMORYTYPE_HOST;
        return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_DEVICE_POINTER:
        if (!known)
            return CUDA_ERROR_INVALID_VALUE;
        *(CUdeviceptr *)data = ptr;
        return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_HOST_POINTER:
        if (!known || device)
            return CUDA_ERROR_INVALID_VALUE;
        *(void **)data = (void *)ptr;
        return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_SYNC_MEMOPS:
    case CU_POINTER_ATTRIBUTE_IS_LEGACY_CUDA_IPC_CAPABLE:
        *(int *)data = known;
        return known ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
    case CU_POINTER_ATTRIBUTE_BUFFER_ID:
        if (!known)
            return CUDA_ERROR_INVALID_VALUE;
        *(unsigned long long *)data = id;
        return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_IS_MANAGED:
        *(int *)data = 0;
        return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL:
        if (!known)
            return CUDA_ERROR_INVALID_VALUE;
        *(int *)data = 0;
        return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR:
        if (!known)
            return CUDA_ERROR_INVALID_VALUE;
        *(CUdeviceptr *)data = base;
        return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_RANGE_SIZE:
        if (!known)
            return CUDA_ERROR_INVALID_VALUE;
        *(size_t *)data = size;
        return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_MAPPED:
        *(int *)data = mapped;
        return known ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
    case CU_POINTER_ATTRIBUTE_ALLOWED_HANDLE_TYPES:
        *(unsigned long long *)data =
            known && device ? CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR : CU_MEM_HANDLE_TYPE_NONE;
        return known ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
    case CU_POINTER_ATTRIBUTE_ACCESS_FLAGS:
        *(unsigned *)data = CU_POINTER_ATTRIBUTE_ACCESS_FLAG_READWRITE;
        return known ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
    case CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE:
        *(CUmemoryPool *)data = pool;
        return known ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
    default:
        return CUDA_ERROR_INVALID_VALUE;
    }
}

SIM_API CUresult cuPointerGetAttribute(void *data, CUpointer_attribute attribute, CUdeviceptr ptr) {
    SIM_ENTER("cuPointerGetAttribute");
    if (!data)
        return CUDA_ERROR_INVALID_VALUE;
    return pointer_attribute(data, attribute, ptr);
}

SIM_API CUresult cuPointerGetAttributes(unsigned int numAttributes, CUpointer_attribute *attributes,
                                        void **data, CUdeviceptr ptr) {
    SIM_ENTER("cuPointerGetAttributes");
    if (!attributes || !data)
        return CUDA_ERROR_INVALID_VALUE;
    for (unsigned i = 0; i < numAttributes; i++) {
        if (!data[i])
            continue;
        /* like the driver: unknown pointers give zeroed answers, not an error */
        if (pointer_attribute(data[i], attributes[i], ptr) != CUDA_SUCCESS) {
            switch (attributes[i]) {
            case CU_POINTER_ATTRIBUTE_CONTEXT:
            case CU_POINTER_ATTRIBUTE_HOST_POINTER:
            case CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE:
                *(void **)data[i] = NULL;
                break;
            case CU_POINTER_ATTRIBUTE_DEVICE_POINTER:
            case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR:
            case CU_POINTER_ATTRIBUTE_BUFFER_ID:
            case CU_POINTER_ATTRIBUTE_ALLOWED_HANDLE_TYPES:
                *(unsigned long long *)data[i] = 0;
                break;
            case CU_POINTER_ATTRIBUTE_RANGE_SIZE:
                *(size_t *)data[i] = 0;
                break;
            case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL:
                *(int *)data[i] = -2;
                break;
            default:
                *(unsigned *)data[i] = 0;
                break;
            }
        }
    }
    return CUDA_SUCCESS;
}
