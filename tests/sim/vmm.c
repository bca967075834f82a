/*
 * vmm.c — virtual memory management: reservations and what is mapped in them.
 *
 * cuMemAddressReserve: a granule-aligned PROT_NONE range of the arena (memory.c), followed
 * by a guard granule; cuMemCreate takes an extent of the physical pool (physmem.c),
 * cuMemMap moves its pages there with no access, cuMemSetAccess mprotects and prefaults,
 * cuMemUnmap moves them back and puts PROT_NONE back.
 */
#include "tests/sim/memory_internal.h"
#include "tests/sim/rangevec.h"
#include "tests/sim/sim.h"
#include "tests/sim/strict.h"

#include <sys/mman.h>

/* ---- virtual memory management --------------------------------------------------- */

SIM_API CUresult cuMemGetAllocationGranularity(size_t *granularity, const CUmemAllocationProp *prop,
                                               CUmemAllocationGranularity_flags option) {
    SIM_ENTER("cuMemGetAllocationGranularity");
    (void)option;
    if (!granularity || !prop)
        return CUDA_ERROR_INVALID_VALUE;
    *granularity = SIM_GRANULARITY;
    return CUDA_SUCCESS;
}

SIM_API CUresult cuMemAddressReserve(CUdeviceptr *ptr, size_t size, size_t alignment,
                                     CUdeviceptr addr, unsigned long long flags) {
    SIM_ENTER("cuMemAddressReserve");
    SIM_UNSAFE_CALL();
    (void)addr; /* a hint; the arena decides */
    if (!ptr || size == 0 || size % SIM_GRANULARITY || flags != 0 || (alignment & (alignment - 1)))
        return CUDA_ERROR_INVALID_VALUE;
    if (alignment < SIM_GRANULARITY)
        alignment = SIM_GRANULARITY;
    CUresult r = CUDA_ERROR_OUT_OF_MEMORY;
    pthread_rwlock_wrlock(mem.lock);
    uintptr_t a = arena_take(size, alignment, SIM_GRANULARITY);
    if (a) {
        struct region reg = {a, a + size, REGION_RESERVED, ++mem.next_id};
        if (vinsert(&mem.regions, &reg) == 0)
            r = CUDA_SUCCESS;
    }
    pthread_rwlock_unlock(mem.lock);
    if (r == CUDA_SUCCESS)
        *ptr = (CUdeviceptr)a;
    return r;
}

SIM_API CUresult cuMemAddressFree(CUdeviceptr ptr, size_t size) {
    SIM_ENTER("cuMemAddressFree");
    SIM_UNSAFE_CALL();
    CUresult r = CUDA_ERROR_INVALID_VALUE;
    pthread_rwlock_wrlock(mem.lock);
    long i = vfind(&mem.regions, ptr);
    if (i >= 0) {
        struct region *reg = vat(&mem.regions, (size_t)i);
        long m = vfloor(&mem.maps, reg->end - 1);
        int mapped = m >= 0 && vend(&mem.maps, (size_t)m) > reg->start;
        if (reg->kind == REGION_RESERVED && reg->start == ptr && reg->end - reg->start == size &&
            !mapped) {
            vremove(&mem.regions, (size_t)i);
            r = CUDA_SUCCESS;
        }
    }
    pthread_rwlock_unlock(mem.lock);
    return r;
}

/* With the write lock held: the reservation holding [p, p+n), or NULL. */
static struct region *reservation_of(uintptr_t p, size_t n) {
    long i = vfind(&mem.regions, p);
    if (i < 0)
        return NULL;
    struct region *reg = vat(&mem.regions, (size_t)i);
    return reg->kind == REGION_RESERVED && p + n <= reg->end && p + n > p ? reg : NULL;
}

SIM_API CUresult cuMemMap(CUdeviceptr ptr, size_t size, size_t offset,
                          CUmemGenericAllocationHandle handle, unsigned long long flags) {
    SIM_ENTER("cuMemMap");
    SIM_UNSAFE_CALL();
    if (flags != 0 || size == 0 || ptr % SIM_GRANULARITY || size % SIM_GRANULARITY ||
        offset % SIM_GRANULARITY)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult r = CUDA_ERROR_INVALID_VALUE;
    pthread_rwlock_wrlock(mem.lock);
    struct phys *ph = phys_find(handle);
    long m = vfloor(&mem.maps, ptr + size - 1);
    int overlaps = m >= 0 && vend(&mem.maps, (size_t)m) > ptr;
    if (ph && ph->refs > 0 && offset + size <= ph->size && offset + size > offset &&
        reservation_of(ptr, size) && !overlaps) {
        struct mapping mp = {ptr, ptr + size, PROT_NONE, ph, offset, ptr, ptr + size};
        r = CUDA_ERROR_OUT_OF_MEMORY;
        if (ph->fd < 0 && phys_mapped(ph, offset, size) && phys_make_shared(ph) != 0) {
            /* could not share: r stays OUT_OF_MEMORY */
        } else if (vinsert(&mem.maps, &mp) != 0) {
            /* r stays OUT_OF_MEMORY */
        } else if (phys_map(ph, ptr, offset, size) != 0) {
            vremove(&mem.maps, (size_t)vfind(&mem.maps, ptr));
        } else {
            ph->maps++;
            sim_shadow_fresh(ptr, size); /* nothing written at this address yet */
            r = CUDA_SUCCESS;
        }
    }
    pthread_rwlock_unlock(mem.lock);
    return r;
}

/* With the write lock held: makes `at` a boundary between mapping pieces. */
static int split_at(uintptr_t at) {
    long m = vfind(&mem.maps, at);
    if (m < 0)
        return 0;
    struct mapping *mp = vat(&mem.maps, (size_t)m);
    if (mp->start == at)
        return 0;
    struct mapping tail = *mp;
    tail.start = at;
    tail.offset += at - mp->start;
    mp->end = at;
    if (vinsert(&mem.maps, &tail) != 0) {
        ((struct mapping *)vat(&mem.maps, (size_t)m))->end = tail.end;
        return -1;
    }
    tail.ph->maps++;
    return 0;
}

/* With the write lock held: index of the first piece of a run of contiguous mappings
 * covering exactly [p, p+n) after splitting at its ends, or -1. */
static long covered_run(uintptr_t p, size_t n, int split) {
    if (split && (split_at(p) != 0 || split_at(p + n) != 0))
        return -1;
    long first = vfind(&mem.maps, p);
    if (first < 0 || vstart(&mem.maps, (size_t)first) != p)
        return -1;
    uintptr_t at = p;
    for (size_t i = (size_t)first; i < mem.maps.n && at < p + n; i++) {
        if (vstart(&mem.maps, i) != at)
            return -1;
        at = vend(&mem.maps, i);
    }
    return at == p + n ? first : -1;
}

SIM_API CUresult cuMemSetAccess(CUdeviceptr ptr, size_t size, const CUmemAccessDesc *desc,
                                size_t count) {
    SIM_ENTER("cuMemSetAccess");
    SIM_UNSAFE_CALL();
    if (!desc || count == 0 || size == 0 || ptr % SIM_GRANULARITY || size % SIM_GRANULARITY)
        return CUDA_ERROR_INVALID_VALUE;
    int prot = -1;
    for (size_t i = 0; i < count; i++) {
        if (desc[i].location.type != CU_MEM_LOCATION_TYPE_DEVICE || desc[i].location.id != 0)
            return CUDA_ERROR_INVALID_DEVICE;
        switch (desc[i].flags) {
        case CU_MEM_ACCESS_FLAGS_PROT_NONE:
            prot = PROT_NONE;
            break;
        case CU_MEM_ACCESS_FLAGS_PROT_READ:
            prot = PROT_READ;
            break;
        case CU_MEM_ACCESS_FLAGS_PROT_READWRITE:
            prot = PROT_READ | PROT_WRITE;
            break;
        default:
            return CUDA_ERROR_INVALID_VALUE;
        }
    }
    CUresult r = CUDA_ERROR_INVALID_VALUE;
    pthread_rwlock_wrlock(mem.lock);
    long first = covered_run(ptr, size, 1);
    if (first >= 0 && mprotect((void *)ptr, size, prot) == 0) {
        for (size_t i = (size_t)first; i < mem.maps.n && vstart(&mem.maps, i) < ptr + size; i++)
            ((struct mapping *)vat(&mem.maps, i))->prot = prot;
        /* Device memory never page-faults: fill the page tables now, in one call, rather
         * than one fault per 4 KiB at the first copy (best effort). */
        if (prot != PROT_NONE)
            madvise((void *)ptr, size,
                    (prot & PROT_WRITE) ? MADV_POPULATE_WRITE : MADV_POPULATE_READ);
        r = CUDA_SUCCESS;
    }
    pthread_rwlock_unlock(mem.lock);
    return r;
}

SIM_API CUresult cuMemUnmap(CUdeviceptr ptr, size_t size) {
    SIM_ENTER("cuMemUnmap");
    SIM_UNSAFE_CALL();
    if (size == 0 || ptr % SIM_GRANULARITY || size % SIM_GRANULARITY)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult r = CUDA_ERROR_INVALID_VALUE;
    pthread_rwlock_wrlock(mem.lock);
    long first = covered_run(ptr, size, 0);
    /* the real driver unmaps whole cuMemMap ranges only */
    if (first >= 0) {
        const struct mapping *a = vat(&mem.maps, (size_t)first);
        long lastm = vfind(&mem.maps, ptr + size - 1);
        const struct mapping *b = vat(&mem.maps, (size_t)lastm);
        if (a->map_start != ptr || b->map_end != ptr + size)
            first = -1;
    }
    if (first >= 0 && sim_race_host_write("cuMemUnmap", ptr, size) != 0) {
        r = CUDA_ERROR_ILLEGAL_ADDRESS; /* queued work still uses it */
        first = -1;
    }
    if (first >= 0) {
        /* No access first: work still touching the range faults from now on, and the
         * pages arrive home PROT_NONE. Anonymous pages go home; shared ones are dropped
         * from the address. A move that fails (the kernel out of mappings) drops the
         * pages too: the extent gets fresh ones when it is next touched. */
        mprotect((void *)ptr, size, PROT_NONE);
        for (size_t i = (size_t)first; i < mem.maps.n && vstart(&mem.maps, i) < ptr + size; i++) {
            const struct mapping *mp = vat(&mem.maps, i);
            if (mp->ph->fd < 0)
                move_pages(mp->start, (uintptr_t)mp->ph->pool->window + mp->ph->home + mp->offset,
                           mp->end - mp->start);
        }
        arena_protect_none(ptr, size);
        sim_shadow_fresh(ptr, size);
        while ((size_t)first < mem.maps.n && vstart(&mem.maps, (size_t)first) < ptr + size) {
            struct phys *ph = ((struct mapping *)vat(&mem.maps, (size_t)first))->ph;
            vremove(&mem.maps, (size_t)first);
            ph->maps--;
            phys_maybe_free(ph);
        }
        r = CUDA_SUCCESS;
    }
    pthread_rwlock_unlock(mem.lock);
    return r;
}

SIM_API CUresult cuMemGetAccess(unsigned long long *flags, const CUmemLocation *location,
                                CUdeviceptr ptr) {
    SIM_ENTER("cuMemGetAccess");
    if (!flags || !location)
        return CUDA_ERROR_INVALID_VALUE;
    /* The flags are per location. The one device (ordinal 0) has what cuMemSetAccess gave
     * it; another ordinal names no device; the host, which cuMemSetAccess never gives
     * access to device memory, has none; anything else is no location. */
    int host = 0;
    switch (location->type) {
    case CU_MEM_LOCATION_TYPE_DEVICE:
        if (location->id != 0)
            return CUDA_ERROR_INVALID_DEVICE;
        break;
    case CU_MEM_LOCATION_TYPE_HOST:
    case CU_MEM_LOCATION_TYPE_HOST_NUMA:
    case CU_MEM_LOCATION_TYPE_HOST_NUMA_CURRENT:
        host = 1;
        break;
    default:
        return CUDA_ERROR_INVALID_VALUE;
    }
    CUresult r = CUDA_ERROR_INVALID_VALUE;
    pthread_rwlock_rdlock(mem.lock);
    long m = vfind(&mem.maps, ptr);
    if (m >= 0) {
        int prot = host ? PROT_NONE : ((struct mapping *)vat(&mem.maps, (size_t)m))->prot;
        *flags = (prot & PROT_WRITE)  ? CU_MEM_ACCESS_FLAGS_PROT_READWRITE
                 : (prot & PROT_READ) ? CU_MEM_ACCESS_FLAGS_PROT_READ
                                      : CU_MEM_ACCESS_FLAGS_PROT_NONE;
        r = CUDA_SUCCESS;
    }
    pthread_rwlock_unlock(mem.lock);
    return r;
}
