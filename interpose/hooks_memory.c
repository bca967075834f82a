/*
 * hooks_memory.c — allocation, free, memory info and pointer queries.
 *
 * Allocation, free and cuMemGetInfo belong to the runtime entirely (it calls the driver
 * itself for what it does not track). Address queries on tracked memory are answered from
 * the runtime's registry: a tracked allocation is a reserved VMM range that may be
 * evicted (unmapped) at any moment, and the program must keep seeing the allocation it
 * made, with its base and size, whatever its residency.
 */
#include "interpose/hook.h"

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

/* One attribute of a tracked pointer. The range attributes come from the registry; the
 * others are the driver's while the memory is mapped, and for an evicted allocation (the
 * driver sees an unmapped range) the answers cuMemAlloc'd memory would give. */
static CUresult tracked_attribute(void *data, CUpointer_attribute attribute, CUdeviceptr ptr,
                                  CUdeviceptr base, size_t size) {
    switch (attribute) {
    case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR:
        *(CUdeviceptr *)data = base;
        return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_RANGE_SIZE:
        *(size_t *)data = size;
        return CUDA_SUCCESS;
    default:
        break;
    }
    CUresult rc = driver()->cuPointerGetAttribute(data, attribute, ptr);
    if (rc == CUDA_SUCCESS)
        return rc;
    switch (attribute) {
    case CU_POINTER_ATTRIBUTE_MEMORY_TYPE:
        *(unsigned int *)data = CU_MEMORYTYPE_DEVICE;
        return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_DEVICE_POINTER:
        *(CUdeviceptr *)data = ptr;
        return CUDA_SUCCESS;
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
