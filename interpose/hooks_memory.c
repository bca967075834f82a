/*
 * hooks_memory.c — allocation, free, memory info and pointer queries.
 *
 * Allocation, free, cuMemGetInfo and cuDeviceTotalMem belong to the runtime entirely (it
 * calls the driver itself for what it does not track). Address queries on tracked memory are
 * answered from the runtime's registry: a tracked allocation is a reserved VMM range that may be
 * evicted (unmapped) at any moment, and the program must keep seeing the allocation it
 * made, with its base and size, whatever its residency.
 */
#include "interpose/hook.h"

#include <pthread.h>
#include <stdatomic.h>

OFFLOAD_EXPORT CUresult cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytesize) {
    if (!driver()->cuMemAlloc_v2)
        return driver_missing();
    return runtime_mem_alloc(dptr, bytesize);
}

OFFLOAD_EXPORT CUresult cuMemFree_v2(CUdeviceptr dptr) {
    if (!driver()->cuMemFree_v2)
        return driver_missing();
    return runtime_mem_free(dptr);
}

OFFLOAD_EXPORT CUresult cuMemGetInfo_v2(size_t *free_bytes, size_t *total_bytes) {
    if (!driver()->cuMemGetInfo_v2)
        return driver_missing();
    return runtime_mem_get_info(free_bytes, total_bytes);
}

OFFLOAD_EXPORT CUresult cuDeviceTotalMem_v2(size_t *bytes, CUdevice dev) {
    if (!driver()->cuDeviceTotalMem_v2)
        return driver_missing();
    return runtime_device_total_mem(bytes, dev);
}

/* The pitch cuMemAllocPitch hands out. The driver rounds the width up to its own
 * alignment (512 bytes on current GPUs) which always satisfies
 * CU_DEVICE_ATTRIBUTE_TEXTURE_PITCH_ALIGNMENT; we do the same, and honour a larger
 * texture pitch alignment if a device ever reports one. 0 on overflow. */
static size_t pitch_for(size_t width_bytes) {
    size_t align = 512;
    CUdevice device;
    int texture_align = 0;
    if (driver()->cuCtxGetDevice && driver()->cuDeviceGetAttribute &&
        driver()->cuCtxGetDevice(&device) == CUDA_SUCCESS &&
        driver()->cuDeviceGetAttribute(&texture_align, CU_DEVICE_ATTRIBUTE_TEXTURE_PITCH_ALIGNMENT,
                                       device) == CUDA_SUCCESS &&
        texture_align > 0 && (size_t)texture_align > align &&
        ((size_t)texture_align & ((size_t)texture_align - 1)) == 0)
        align = (size_t)texture_align;
    size_t padded;
    if (__builtin_add_overflow(width_bytes, align - 1, &padded))
        return 0;
    return padded & ~(align - 1);
}

/* Pitched allocations go through the runtime like any other (so a large one is tracked
 * and can be evicted); only the pitch is computed here. Arguments the driver would reject
 * are forwarded so the program gets the driver's own error. */
OFFLOAD_EXPORT CUresult cuMemAllocPitch_v2(CUdeviceptr *dptr, size_t *pPitch, size_t WidthInBytes,
                                           size_t Height, unsigned int ElementSizeBytes) {
    if (!driver()->cuMemAllocPitch_v2)
        return driver_missing();
    bool valid_element = ElementSizeBytes == 4 || ElementSizeBytes == 8 || ElementSizeBytes == 16;
    size_t pitch = WidthInBytes ? pitch_for(WidthInBytes) : 0;
    size_t bytes;
    if (!dptr || !pPitch || !valid_element || pitch == 0 || Height == 0 ||
        __builtin_mul_overflow(pitch, Height, &bytes))
        return driver()->cuMemAllocPitch_v2(dptr, pPitch, WidthInBytes, Height, ElementSizeBytes);
    CUresult rc = runtime_mem_alloc(dptr, bytes);
    if (rc == CUDA_SUCCESS)
        *pPitch = pitch;
    return rc;
}

OFFLOAD_EXPORT CUresult cuMemGetAddressRange_v2(CUdeviceptr *pbase, size_t *psize,
                                                CUdeviceptr dptr) {
    if (!driver()->cuMemGetAddressRange_v2)
        return driver_missing();
    CUdeviceptr base;
    size_t size;
    if (!runtime_address_range(dptr, &base, &size))
        return driver()->cuMemGetAddressRange_v2(pbase, psize, dptr);
    if (pbase)
        *pbase = base;
    if (psize)
        *psize = size;
    return CUDA_SUCCESS;
}

/*
 * What plain cuMemAlloc'd memory answers for the attributes that describe the kind of
 * memory rather than one allocation (sync memops, managed, allowed handle types, access
 * flags, memory pool): a one-byte allocation of liboffload's own, made through the driver
 * (never tracked) in the current context at the first query that needs it, and kept. The
 * driver itself says what its cuMemAlloc memory is, so nothing here guesses a driver's
 * defaults. 0 when none can be made (no context, no memory): the caller falls back to
 * the driver's answer for the pointer itself.
 */
static CUdeviceptr reference_allocation(void) {
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    static _Atomic CUdeviceptr made;
    CUdeviceptr r = atomic_load_explicit(&made, memory_order_acquire);
    if (r)
        return r;
    pthread_mutex_lock(&lock);
    r = atomic_load_explicit(&made, memory_order_relaxed);
    if (!r && driver()->cuMemAlloc_v2(&r, 1) == CUDA_SUCCESS)
        atomic_store_explicit(&made, r, memory_order_release);
    pthread_mutex_unlock(&lock);
    return r;
}

static bool describes_the_kind_of_memory(CUpointer_attribute attribute) {
    switch (attribute) {
    case CU_POINTER_ATTRIBUTE_SYNC_MEMOPS:
    case CU_POINTER_ATTRIBUTE_IS_MANAGED:
    case CU_POINTER_ATTRIBUTE_ALLOWED_HANDLE_TYPES:
    case CU_POINTER_ATTRIBUTE_ACCESS_FLAGS:
    case CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE:
        return true;
    default:
        return false;
    }
}

/*
 * One attribute of a tracked pointer, answered the same whether the allocation is
 * resident or evicted (the driver sees an unmapped range then), and as cuMemAlloc'd
 * memory answers:
 *  - the range and the pointer itself from the registry; MAPPED is 1 (to the program the
 *    allocation is always backed: liboffload restores it before any use); BUFFER_ID, a
 *    process-wide id of the allocation, is derived from its base address, which liboffload
 *    reserved for it, so it stays the same across evictions and restores;
 *  - the kind of memory from the reference allocation above;
 *  - IS_LEGACY_CUDA_IPC_CAPABLE is 0, the truth for the VMM memory behind a tracked
 *    allocation: cuIpcGetMemHandle does not work on it (README, Limits);
 *  - CONTEXT and DEVICE_ORDINAL the driver's, or the current ones while evicted;
 *  - anything else the driver's (HOST_POINTER: an error for device memory, either way).
 */
#define TRACKED_BUFFER_ID(base) ((unsigned long long)(base) | 1ull << 63)

static CUresult tracked_attribute(void *data, CUpointer_attribute attribute, CUdeviceptr ptr,
                                  CUdeviceptr base, size_t size) {
    switch (attribute) {
    case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR:
        *(CUdeviceptr *)data = base;
        return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_RANGE_SIZE:
        *(size_t *)data = size;
        return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_MEMORY_TYPE:
        *(unsigned int *)data = CU_MEMORYTYPE_DEVICE;
        return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_DEVICE_POINTER:
        *(CUdeviceptr *)data = ptr;
        return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_MAPPED:
        *(int *)data = 1;
        return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_BUFFER_ID:
        *(unsigned long long *)data = TRACKED_BUFFER_ID(base);
        return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_IS_LEGACY_CUDA_IPC_CAPABLE:
        *(int *)data = 0;
        return CUDA_SUCCESS;
    default:
        break;
    }
    CUdeviceptr reference = describes_the_kind_of_memory(attribute) ? reference_allocation() : 0;
    CUresult rc = driver()->cuPointerGetAttribute(data, attribute, reference ? reference : ptr);
    if (rc == CUDA_SUCCESS)
        return rc;
    switch (attribute) {
    case CU_POINTER_ATTRIBUTE_CONTEXT:
        return driver()->cuCtxGetCurrent ? driver()->cuCtxGetCurrent((CUcontext *)data) : rc;
    case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL:
        return driver()->cuCtxGetDevice ? driver()->cuCtxGetDevice((CUdevice *)data) : rc;
    default:
        return rc;
    }
}

OFFLOAD_EXPORT CUresult cuPointerGetAttribute(void *data, CUpointer_attribute attribute,
                                              CUdeviceptr ptr) {
    if (!driver()->cuPointerGetAttribute)
        return driver_missing();
    CUdeviceptr base;
    size_t size;
    if (!data || !runtime_address_range(ptr, &base, &size))
        return driver()->cuPointerGetAttribute(data, attribute, ptr);
    return tracked_attribute(data, attribute, ptr, base, size);
}

/* The driver answers first (it fills defaults for what it does not know and validates the
 * arguments); for a tracked pointer the attributes tracked_attribute knows are then
 * answered as cuPointerGetAttribute answers them. */
OFFLOAD_EXPORT CUresult cuPointerGetAttributes(unsigned int numAttributes,
                                               CUpointer_attribute *attributes, void **data,
                                               CUdeviceptr ptr) {
    if (!driver()->cuPointerGetAttributes || !driver()->cuPointerGetAttribute)
        return driver_missing();
    CUresult rc = driver()->cuPointerGetAttributes(numAttributes, attributes, data, ptr);
    CUdeviceptr base;
    size_t size;
    if (rc != CUDA_SUCCESS || !attributes || !data || !runtime_address_range(ptr, &base, &size))
        return rc;
    for (unsigned int i = 0; i < numAttributes; i++) {
        if (data[i])
            (void)tracked_attribute(data[i], attributes[i], ptr, base, size);
    }
    return CUDA_SUCCESS;
}
