/*
 * hooks_vmm.c — program-mapped memory: the VMM entry points a program calls on the
 * handles it creates and the ranges it maps (PyTorch's expandable segments, ggml's VMM
 * pool). Each hands the whole call to the runtime (runtime/vmm.c), which answers as the
 * driver does and calls the driver for what is not liboffload's; cuMemSetAccess is
 * bracketed like a copy, so an evicted mapping is back in place for the driver's call.
 * cuMemAddressReserve and cuMemGetAllocationGranularity are not hooked: liboffload keeps
 * their meaning by leaving them alone.
 */
#include "interpose/hook.h"

OFFLOAD_EXPORT CUresult cuMemCreate(CUmemGenericAllocationHandle *handle, size_t size,
                                    const CUmemAllocationProp *prop, unsigned long long flags) {
    if (!driver()->cuMemCreate)
        return driver_missing();
    return runtime_vmm_create(handle, size, prop, flags);
}

OFFLOAD_EXPORT CUresult cuMemRelease(CUmemGenericAllocationHandle handle) {
    if (!driver()->cuMemRelease)
        return driver_missing();
    return runtime_vmm_release(handle);
}

OFFLOAD_EXPORT CUresult cuMemMap(CUdeviceptr ptr, size_t size, size_t offset,
                                 CUmemGenericAllocationHandle handle, unsigned long long flags) {
    if (!driver()->cuMemMap)
        return driver_missing();
    return runtime_vmm_map(ptr, size, offset, handle, flags);
}

OFFLOAD_EXPORT CUresult cuMemUnmap(CUdeviceptr ptr, size_t size) {
    if (!driver()->cuMemUnmap)
        return driver_missing();
    return runtime_vmm_unmap(ptr, size);
}

OFFLOAD_EXPORT CUresult cuMemSetAccess(CUdeviceptr ptr, size_t size, const CUmemAccessDesc *desc,
                                       size_t count) {
    if (!driver()->cuMemSetAccess)
        return driver_missing();
    return HOOK_BRACKETED(runtime_begin_set_access(ptr, size, desc, count),
                          driver()->cuMemSetAccess(ptr, size, desc, count));
}

OFFLOAD_EXPORT CUresult cuMemGetAccess(unsigned long long *flags, const CUmemLocation *location,
                                       CUdeviceptr ptr) {
    if (!driver()->cuMemGetAccess)
        return driver_missing();
    return runtime_vmm_get_access(flags, location, ptr);
}

OFFLOAD_EXPORT CUresult cuMemRetainAllocationHandle(CUmemGenericAllocationHandle *handle,
                                                    void *addr) {
    if (!driver()->cuMemRetainAllocationHandle)
        return driver_missing();
    return runtime_vmm_retain(handle, addr);
}

OFFLOAD_EXPORT CUresult cuMemGetAllocationPropertiesFromHandle(
    CUmemAllocationProp *prop, CUmemGenericAllocationHandle handle) {
    if (!driver()->cuMemGetAllocationPropertiesFromHandle)
        return driver_missing();
    return runtime_vmm_properties(prop, handle);
}

OFFLOAD_EXPORT CUresult cuMemExportToShareableHandle(void *shareableHandle,
                                                     CUmemGenericAllocationHandle handle,
                                                     CUmemAllocationHandleType handleType,
                                                     unsigned long long flags) {
    if (!driver()->cuMemExportToShareableHandle)
        return driver_missing();
    return runtime_vmm_export(shareableHandle, handle, handleType, flags);
}

OFFLOAD_EXPORT CUresult cuMemAddressFree(CUdeviceptr ptr, size_t size) {
    if (!driver()->cuMemAddressFree)
        return driver_missing();
    return runtime_vmm_address_free(ptr, size);
}
