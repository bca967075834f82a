/*
 * vmm.c — the entry points of program-mapped memory (runtime.h): cuMemCreate, cuMemRelease,
 * cuMemMap, cuMemUnmap, cuMemSetAccess, cuMemGetAccess, cuMemRetainAllocationHandle,
 * cuMemGetAllocationPropertiesFromHandle, cuMemExportToShareableHandle, cuMemAddressFree.
 *
 * The program's cuMemCreate in liboffload's context gets a liboffload handle with no
 * memory behind it (memory/mapped.h). Its first cuMemMap, of the whole handle, makes a
 * tracked allocation at the program's address (ALLOC_FROM_MAPPING): memory is made then,
 * within the budget, and can be evicted and restored there like cuMemAlloc memory. What
 * cannot be tracked that way makes the handle `direct` (its memory is the driver's, mapped
 * where the program says, counted against the budget, never moved): an export, a second
 * mapping at once, a mapping of part of it, access other than read-write on liboffload's
 * device, a mapping of a handle that already holds memory (unmapped by the program while
 * it kept the handle), a handle smaller than min_size.
 *
 * The driver's answer is kept wherever liboffload cannot change it; where an evicted
 * range would make the driver answer differently (nothing is mapped there for it), the
 * mapping table answers as the driver would have: a map over a mapped range, an unmap that
 * is not a run of whole mappings, a reservation freed with mappings inside are
 * CUDA_ERROR_INVALID_VALUE, as the driver answers them.
 */
#include "runtime/runtime.h"

#include "base/log.h"
#include "base/units.h"
#include "driver/cuerr.h"
#include "driver/driver.h"
#include "runtime/alloc.h"
#include "runtime/call.h"
#include "runtime/memory/mapped.h"
#include "runtime/memory/residency.h"
#include "runtime/setup.h"
#include "runtime/state.h"
#include "runtime/vmm.h"

#include <stdint.h>
#include <string.h>
#include <unistd.h>

#define rt (&offload_runtime)

/* Set up, and not a forked child (whose CUDA is unusable): liboffload's tables apply. */
static bool usable(void) {
    return rt->cuda_ready && !atomic_load(&rt->cuda_unusable);
}

/* --- properties ---------------------------------------------------------------------- */

/* Device memory of liboffload's device that liboffload can make and map itself. */
static bool trackable_request(size_t size, const CUmemAllocationProp *prop,
                              unsigned long long flags) {
    return prop && flags == 0 && size > 0 && size % rt->granularity == 0 &&
           prop->type == CU_MEM_ALLOCATION_TYPE_PINNED &&
           prop->location.type == CU_MEM_LOCATION_TYPE_DEVICE && prop->location.id == rt->device;
}

/* No handle types, no allocation flags: what liboffload's own memory is (its evicted
 * handles can be reused for it). */
static bool plain_request(const CUmemAllocationProp *prop) {
    static const unsigned char zero[sizeof prop->allocFlags];
    return prop->requestedHandleTypes == CU_MEM_HANDLE_TYPE_NONE &&
           memcmp(&prop->allocFlags, zero, sizeof zero) == 0;
}

/* Whether the driver accepts `prop` (handle types, compression, RDMA, ...) the way it will
 * be asked for it at the first mapping: liboffload's own memory is plain, so only other
 * requests are tried, once each, with one granule made and released at once. The driver's
 * error is the program's answer now rather than at a later cuMemMap. A device too full for
 * the trial proves nothing: the request is taken. */
static CUresult driver_accepts(const CUmemAllocationProp *prop) {
    static CUmemAllocationProp accepted;
    static bool any;
    if (any && memcmp(&accepted, prop, sizeof *prop) == 0)
        return CUDA_SUCCESS;
    CUmemGenericAllocationHandle probe;
    CUresult r = driver()->cuMemCreate(&probe, rt->granularity, prop, 0);
    if (r == CUDA_SUCCESS) {
        driver()->cuMemRelease(probe);
        accepted = *prop;
        any = true;
    }
    return r == CUDA_ERROR_OUT_OF_MEMORY ? CUDA_SUCCESS : r;
}

/* --- the handle's memory ------------------------------------------------------------- */

/* The tracked mapping of h, or -1. */
static long tracked_mapping_of(const struct vmm_handle *h) {
    for (size_t i = 0; i < rt->vmm.count; i++)
        if (rt->vmm.maps[i].handle == h && rt->vmm.maps[i].tracked)
            return (long)i;
    return -1;
}

/* Driver memory for h, made now (within the budget): h holds it. */
static CUresult make_real(struct vmm_handle *h) {
    CUresult r = alloc_room_for_untracked(rt, h->size, rt->budget.limit);
    if (r == CUDA_SUCCESS)
        r = driver()->cuMemCreate(&h->real, h->size, &h->prop, 0);
    if (r == CUDA_ERROR_OUT_OF_MEMORY) {
        alloc_room_for_untracked(rt, h->size, budget_used(&rt->budget));
        r = driver()->cuMemCreate(&h->real, h->size, &h->prop, 0);
    }
    if (r == CUDA_SUCCESS)
        budget_add_untracked(&rt->budget, h->size);
    return r;
}

/* From now on the program maps h's driver memory itself: a tracked mapping is handed
 * back in place (restored first when evicted), memory is made when it has none. */
static CUresult make_direct(struct vmm_handle *h) {
    if (h->direct)
        return CUDA_SUCCESS;
    long i = tracked_mapping_of(h);
    CUresult r = CUDA_SUCCESS;
    if (i >= 0) {
        struct allocation *a = rt->vmm.maps[i].tracked;
        alloc_stop_tracking(rt, a);
        r = residency_detach(rt, a, &h->real);
        if (r != CUDA_SUCCESS)
            return r;
        rt->vmm.maps[i].tracked = NULL;
        budget_add_untracked(&rt->budget, h->size);
        atomic_store(&rt->tracked_count, rt->registry.count);
    } else if (!h->real) {
        r = make_real(h);
    }
    if (r == CUDA_SUCCESS)
        h->direct = true;
    return r;
}

/* The program let go of its last reference: the driver memory goes with the last mapping
 * (the driver's rule). */
static void drop_if_unused(struct vmm_handle *h) {
    if (h->refs == 0 && h->real && !h->direct) {
        driver()->cuMemRelease(h->real); /* not mapped anywhere: freed now */
        h->real = 0;
        budget_sub_untracked(&rt->budget, h->size);
    }
    if (h->refs == 0 && h->maps == 0 && h->direct && h->real) {
        h->real = 0; /* our reference went at the release, the last mapping with the unmap */
        budget_sub_untracked(&rt->budget, h->size);
    }
    vmm_handle_forget_if_unused(&rt->vmm, h);
}

/* --- entry points -------------------------------------------------------------------- */

CUresult runtime_vmm_create(CUmemGenericAllocationHandle *handle, size_t size,
                            const CUmemAllocationProp *prop, unsigned long long flags) {
    runtime_lock();
    if (!handle || !setup_cuda(rt) || setup_current_place(rt) != PLACE_MANAGED ||
        !trackable_request(size, prop, flags)) {
        runtime_unlock();
        return driver()->cuMemCreate(handle, size, prop, flags);
    }
    bool plain = plain_request(prop);
    CUresult r = plain ? CUDA_SUCCESS : driver_accepts(prop);
    struct vmm_handle *h = r == CUDA_SUCCESS ? vmm_handle_new(&rt->vmm, size, prop, plain) : NULL;
    if (h)
        *handle = h->id;
    else if (r == CUDA_SUCCESS)
        r = CUDA_ERROR_OUT_OF_MEMORY;
    runtime_unlock();
    return r;
}

CUresult runtime_vmm_release(CUmemGenericAllocationHandle handle) {
    runtime_lock();
    struct vmm_handle *h = usable() ? vmm_handle_find(&rt->vmm, handle) : NULL;
    if (!h) {
        runtime_unlock();
        return driver()->cuMemRelease(handle);
    }
    CUresult r = CUDA_ERROR_INVALID_VALUE; /* released already (still mapped) */
    if (h->refs) {
        r = CUDA_SUCCESS;
        if (--h->refs == 0 && h->direct && h->real)
            r = driver()->cuMemRelease(h->real); /* our one reference on the driver's */
        bool pushed = setup_context_enter(rt);
        drop_if_unused(h);
        setup_context_leave(pushed);
    }
    runtime_unlock();
    return r;
}

/* The whole handle at ptr, first mapping: a tracked allocation. */
static CUresult map_tracked(CUdeviceptr ptr, struct vmm_handle *h) {
    struct allocation *a;
    rt->epoch++;
    CUresult r = residency_create_mapped(rt, ptr, h->size, h->plain ? NULL : &h->prop, &a);
    if (r == CUDA_SUCCESS)
        r = alloc_start_tracking(rt, a);
    if (r == CUDA_SUCCESS && vmm_mapping_add(&rt->vmm, ptr, h->size, h, a) != 0) {
        alloc_stop_tracking(rt, a);
        residency_destroy(rt, a);
        atomic_store(&rt->tracked_count, rt->registry.count);
        r = CUDA_ERROR_OUT_OF_MEMORY;
    }
    residency_drain_pool(rt);
    return r;
}

/* Anything else: the driver maps h's own memory, the mapping is remembered. */
static CUresult map_direct(CUdeviceptr ptr, size_t size, size_t offset, struct vmm_handle *h,
                           unsigned long long flags) {
    CUresult r = make_direct(h);
    if (r == CUDA_SUCCESS)
        r = driver()->cuMemMap(ptr, size, offset, h->real, flags);
    if (r == CUDA_SUCCESS && vmm_mapping_add(&rt->vmm, ptr, size, h, NULL) != 0) {
        driver()->cuMemUnmap(ptr, size);
        r = CUDA_ERROR_OUT_OF_MEMORY;
    }
    residency_drain_pool(rt);
    return r;
}

/* What the driver checks of a map's arguments (it answers CUDA_ERROR_INVALID_VALUE). */
static bool map_args_valid(CUdeviceptr ptr, size_t size, size_t offset, const struct vmm_handle *h,
                           unsigned long long flags) {
    size_t g = rt->granularity;
    return flags == 0 && size && ptr % g == 0 && size % g == 0 && offset % g == 0 &&
           offset < h->size && size <= h->size - offset;
}

CUresult runtime_vmm_map(CUdeviceptr ptr, size_t size, size_t offset,
                         CUmemGenericAllocationHandle handle, unsigned long long flags) {
    runtime_lock();
    if (!usable()) {
        runtime_unlock();
        return driver()->cuMemMap(ptr, size, offset, handle, flags);
    }
    struct vmm_handle *h = vmm_handle_find(&rt->vmm, handle);
    CUresult r;
    if (size && vmm_mapping_overlaps(&rt->vmm, ptr, size)) {
        r = CUDA_ERROR_INVALID_VALUE; /* the driver's answer to a map over a mapped range */
    } else if (!h) { /* a driver handle: the driver maps it; remembered for what follows */
        r = driver()->cuMemMap(ptr, size, offset, handle, flags);
        if (r == CUDA_SUCCESS)
            vmm_mapping_add(&rt->vmm, ptr, size, NULL, NULL);
    } else if (!h->refs || !map_args_valid(ptr, size, offset, h, flags)) {
        /* released (only its mappings keep it), or what the driver rejects */
        r = CUDA_ERROR_INVALID_VALUE;
    } else {
        bool pushed = setup_context_enter(rt);
        /* below min_size a handle stays the driver's, as a small cuMemAlloc does */
        bool whole = offset == 0 && size == h->size && h->size >= rt->min_size;
        r = whole && !h->direct && !h->real && h->maps == 0
                ? map_tracked(ptr, h)
                : map_direct(ptr, size, offset, h, flags);
        setup_context_leave(pushed);
    }
    runtime_unlock();
    return r;
}

/* One whole mapping of the program, unmapped. */
static CUresult unmap_one(size_t i) {
    struct vmm_mapping m = rt->vmm.maps[i];
    struct allocation *a = m.tracked;
    CUresult r;
    if (!a) {
        r = driver()->cuMemUnmap(m.base, m.size);
    } else {
        r = residency_quiesce(rt, a);
        if (r != CUDA_SUCCESS)
            return r;
        alloc_stop_tracking(rt, a);
        if (m.handle->refs) {
            /* the program keeps the handle, and with it the bytes: back in place, then
             * unmapped, the memory the handle's */
            r = residency_detach(rt, a, &m.handle->real);
            if (r == CUDA_SUCCESS) {
                budget_add_untracked(&rt->budget, m.handle->size);
                r = driver()->cuMemUnmap(m.base, m.size);
            }
        } else {
            residency_destroy(rt, a);
        }
        atomic_store(&rt->tracked_count, rt->registry.count);
    }
    if (r != CUDA_SUCCESS)
        return r;
    vmm_mapping_remove(&rt->vmm, i);
    vmm_extent_forget(&rt->vmm, m.base, m.size); /* the buffers across it went with it */
    if (m.handle)
        drop_if_unused(m.handle);
    return CUDA_SUCCESS;
}

CUresult runtime_vmm_unmap(CUdeviceptr ptr, size_t size) {
    runtime_lock();
    if (!usable() || !size || !vmm_mapping_overlaps(&rt->vmm, ptr, size)) {
        runtime_unlock();
        return driver()->cuMemUnmap(ptr, size);
    }
    size_t first, n;
    CUresult r = CUDA_ERROR_INVALID_VALUE; /* not a run of whole mappings: the driver's answer */
    if (vmm_mapping_run(&rt->vmm, ptr, size, &first, &n)) {
        bool pushed = setup_context_enter(rt);
        r = CUDA_SUCCESS;
        for (size_t k = 0; k < n && r == CUDA_SUCCESS; k++)
            r = unmap_one(first); /* each removal moves the next one to `first` */
        residency_drain_pool(rt);
        setup_context_leave(pushed);
    }
    runtime_unlock();
    return r;
}

/* Read-write on liboffload's device alone: what liboffload maps tracked memory with. */
static bool default_access(const CUmemAccessDesc *desc, size_t count) {
    return desc && count == 1 && desc[0].location.type == CU_MEM_LOCATION_TYPE_DEVICE &&
           desc[0].location.id == rt->device && desc[0].flags == CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
}

CUresult runtime_begin_set_access(CUdeviceptr ptr, size_t size, const CUmemAccessDesc *desc,
                                  size_t count) {
    if (call_nothing_to_do()) /* nothing tracked: no mapping of the program is liboffload's */
        return CUDA_SUCCESS;
    bool nested = call_prepare_lock();
    if (!usable() || !size || !vmm_mapping_overlaps(&rt->vmm, ptr, size))
        return call_prepare_unlock(CUDA_SUCCESS, false, nested);
    call_prepare_epoch(nested);
    /* one call over several mappings: they were made together, for one request (PyTorch's
     * expandable segments map the pages a block needs, then set access on them at once) */
    if (vmm_extent_learn(&rt->vmm, ptr, size) < 0)
        log_warn("out of memory: a buffer spanning program mappings is not remembered");
    bool pushed = setup_context_enter(rt);
    CUresult r = CUDA_SUCCESS;
    bool plain = default_access(desc, count);
    /* every tracked mapping in the range protected first, so none is evicted for another */
    for (size_t i = 0; i < rt->vmm.count; i++) {
        const struct vmm_mapping *m = &rt->vmm.maps[i];
        if (m->tracked && m->base < ptr + size && m->base + m->size > ptr)
            m->tracked->protect_epoch = rt->epoch;
    }
    for (size_t i = 0; i < rt->vmm.count && r == CUDA_SUCCESS; i++) {
        struct vmm_mapping *m = &rt->vmm.maps[i];
        if (!m->tracked || m->base >= ptr + size || m->base + m->size <= ptr)
            continue;
        /* the driver sets access only where memory is mapped; other access than
         * liboffload's could not be restored: the handle goes direct */
        r = plain ? residency_restore(rt, m->tracked, false) : make_direct(m->handle);
    }
    residency_drain_pool(rt);
    setup_context_leave(pushed);
    return call_prepare_unlock(r, true, nested);
}

void vmm_learn_access(struct runtime *state, CUdeviceptr ptr, size_t bytes) {
    if (state->vmm.count < 2 || bytes < 2)
        return;
    /* crossing a boundary between mappings: its ends lie in two allocations */
    const struct allocation *first = registry_find(&state->registry, ptr);
    const struct allocation *last = registry_find(&state->registry, ptr + bytes - 1);
    if (first == last && first)
        return;
    if (vmm_extent_learn(&state->vmm, ptr, bytes) < 0)
        log_warn("out of memory: a buffer spanning program mappings is not remembered");
}

CUresult runtime_vmm_get_access(unsigned long long *flags, const CUmemLocation *location,
                                CUdeviceptr ptr) {
    runtime_lock();
    long i = usable() ? vmm_mapping_at(&rt->vmm, ptr) : -1;
    const struct allocation *a = i >= 0 ? rt->vmm.maps[i].tracked : NULL;
    if (!a || allocation_mapped(a) || !flags || !location) {
        runtime_unlock();
        return driver()->cuMemGetAccess(flags, location, ptr);
    }
    /* evicted: what the driver answers for it mapped (read-write on liboffload's device,
     * nothing for the host or another device), and its errors for what names no place */
    CUresult r = CUDA_SUCCESS;
    int devices = 0;
    switch (location->type) {
    case CU_MEM_LOCATION_TYPE_DEVICE:
        r = driver()->cuDeviceGetCount(&devices);
        if (r == CUDA_SUCCESS && (location->id < 0 || location->id >= devices))
            r = CUDA_ERROR_INVALID_DEVICE;
        break;
    case CU_MEM_LOCATION_TYPE_HOST:
    case CU_MEM_LOCATION_TYPE_HOST_NUMA:
    case CU_MEM_LOCATION_TYPE_HOST_NUMA_CURRENT:
        break;
    default:
        r = CUDA_ERROR_INVALID_VALUE;
        break;
    }
    bool ours = location->type == CU_MEM_LOCATION_TYPE_DEVICE && location->id == rt->device;
    if (r == CUDA_SUCCESS)
        *flags = ours ? CU_MEM_ACCESS_FLAGS_PROT_READWRITE : CU_MEM_ACCESS_FLAGS_PROT_NONE;
    runtime_unlock();
    return r;
}

CUresult runtime_vmm_retain(CUmemGenericAllocationHandle *handle, void *addr) {
    runtime_lock();
    long i = usable() ? vmm_mapping_at(&rt->vmm, (CUdeviceptr)addr) : -1;
    struct vmm_handle *h = i >= 0 ? rt->vmm.maps[i].handle : NULL;
    if (!h || !handle) {
        runtime_unlock();
        return driver()->cuMemRetainAllocationHandle(handle, addr);
    }
    CUmemGenericAllocationHandle real;
    if (h->direct && h->refs == 0) {
        /* its reference on the driver's memory went with the last release: take one again */
        CUresult r = driver()->cuMemRetainAllocationHandle(&real, addr);
        if (r != CUDA_SUCCESS) {
            runtime_unlock();
            return r;
        }
    }
    h->refs++;
    *handle = h->id;
    runtime_unlock();
    return CUDA_SUCCESS;
}

CUresult runtime_vmm_properties(CUmemAllocationProp *prop, CUmemGenericAllocationHandle handle) {
    runtime_lock();
    const struct vmm_handle *h = usable() ? vmm_handle_find(&rt->vmm, handle) : NULL;
    if (!h) {
        runtime_unlock();
        return driver()->cuMemGetAllocationPropertiesFromHandle(prop, handle);
    }
    CUresult r = CUDA_ERROR_INVALID_VALUE;
    if (prop && h->refs) {
        /* what the driver keeps of a request: the kind, the place, the handle types and
         * the allocation flags */
        memset(prop, 0, sizeof *prop);
        prop->type = h->prop.type;
        prop->location = h->prop.location;
        prop->requestedHandleTypes = h->prop.requestedHandleTypes;
        prop->allocFlags = h->prop.allocFlags;
        r = CUDA_SUCCESS;
    }
    runtime_unlock();
    return r;
}

static void log_export_once(void) {
    if (rt->export_logged)
        return;
    rt->export_logged = true;
    log_info("a memory handle was exported (cuMemExportToShareableHandle): another process "
             "may map it, so liboffload never evicts it");
}

CUresult runtime_vmm_export(void *shareable, CUmemGenericAllocationHandle handle,
                            CUmemAllocationHandleType type, unsigned long long flags) {
    runtime_lock();
    struct vmm_handle *h = usable() ? vmm_handle_find(&rt->vmm, handle) : NULL;
    if (!h) {
        runtime_unlock();
        return driver()->cuMemExportToShareableHandle(shareable, handle, type, flags);
    }
    CUresult r = CUDA_ERROR_INVALID_VALUE;
    if (h->refs) {
        bool pushed = setup_context_enter(rt);
        bool was_direct = h->direct;
        r = make_direct(h);
        residency_drain_pool(rt);
        setup_context_leave(pushed);
        if (r == CUDA_SUCCESS)
            r = driver()->cuMemExportToShareableHandle(shareable, h->real, type, flags);
        if (r == CUDA_SUCCESS && !was_direct) {
            log_export_once();
            rt->stats.exported_kept++;
        }
    }
    runtime_unlock();
    return r;
}

/* --- the device's size ---------------------------------------------------------------- */

/* What the program may map at once under liboffload: the device's memory and, evicted to
 * the host, as much again as the host's physical memory. Allocators that reserve their
 * address range from the device's size (PyTorch's expandable segments: 1.125 times
 * totalGlobalMem, per pool and stream) could otherwise never map more than the device
 * holds, however much liboffload evicts. Capped at four times the device's: address
 * space only, but a reservation per pool of many times a large host's memory would be
 * out of proportion, and beyond that a program moves more than it computes. What
 * programs size memory use from (cuMemGetInfo) keeps answering with the budget. */
static size_t holdable_bytes(size_t device_bytes) {
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    uint64_t host = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;
    uint64_t cap = 4 * (uint64_t)device_bytes;
    uint64_t holdable = (uint64_t)device_bytes + host;
    holdable = holdable < cap ? holdable : cap;
    return holdable > SIZE_MAX ? SIZE_MAX : (size_t)holdable;
}

CUresult runtime_device_total_mem(size_t *bytes, CUdevice dev) {
    CUresult r = driver()->cuDeviceTotalMem_v2(bytes, dev);
    if (r != CUDA_SUCCESS || !bytes)
        return r;
    runtime_lock();
    /* before set-up (no context yet) the device asked is taken to be the one liboffload
     * will manage: the program's first context is normally made on it */
    bool ours = rt->config_loaded && !atomic_load(&rt->cuda_unusable) &&
                !atomic_load(&rt->forked_child) && (!rt->cuda_ready || dev == rt->device);
    runtime_unlock();
    if (ours)
        *bytes = holdable_bytes(*bytes);
    return r;
}

CUresult runtime_vmm_address_free(CUdeviceptr ptr, size_t size) {
    runtime_lock();
    bool mapped_inside = usable() && size && vmm_mapping_overlaps(&rt->vmm, ptr, size);
    runtime_unlock();
    /* mappings inside, evicted or not: the driver's answer for a reservation still mapped */
    return mapped_inside ? CUDA_ERROR_INVALID_VALUE : driver()->cuMemAddressFree(ptr, size);
}
