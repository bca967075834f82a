/*
 * alloc.c — cuMemAlloc, cuMemAllocPitch, cuMemFree, cuMemGetInfo.
 *
 * A cuMemAlloc is an anonymous read/write mapping of its own in the arena (memory.c), 2 MiB
 * aligned and eligible for transparent huge pages from 2 MiB up, followed by a guard page;
 * freed, it goes back to PROT_NONE. It is poisoned when it is handed out (poison.c), as
 * every physical extent is (physmem.c), so a restore that forgot to copy reads poison, not
 * zeros or an old allocation's bytes.
 */
#include "tests/sim/memory_internal.h"
#include "tests/sim/rangevec.h"
#include "tests/sim/sim.h"
#include "tests/sim/strict.h"

#include <sys/mman.h>

/* ---- cuMemAlloc ------------------------------------------------------------------ */

/* What cuMemAlloc_v2 and cuMemAllocPitch_v2 do once their arguments are checked: neither
 * calls the other's entry point, so the report and SIMCUDA_FAIL count each as itself. */
static CUresult mem_alloc(CUdeviceptr *dptr, size_t bytesize) {
    size_t len = (bytesize + PAGE - 1) & ~(size_t)(PAGE - 1);
    pthread_rwlock_wrlock(mem.lock);
    CUresult r = charge(bytesize);
    /* From 2 MiB up, 2 MiB aligned and marked for huge pages, as a GPU's large
     * allocations: fewer page-table entries to fault in (best effort). */
    int huge = bytesize >= SIM_GRANULARITY;
    uintptr_t a = r == CUDA_SUCCESS ? arena_take(len, huge ? SIM_GRANULARITY : PAGE, PAGE) : 0;
    if (r == CUDA_SUCCESS && !a) {
        uncharge(bytesize);
        r = CUDA_ERROR_OUT_OF_MEMORY;
    }
    if (r == CUDA_SUCCESS) {
        void *p = mmap((void *)a, len, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
        if (p != MAP_FAILED && huge)
            madvise(p, len, MADV_HUGEPAGE);
        if (p != MAP_FAILED) {
            sim_poison_fill(p, bytesize); /* a GPU gives whatever was there */
            sim_shadow_fresh(a, bytesize);
        }
        struct region reg = {a, a + bytesize, REGION_ALLOC, ++mem.next_id};
        if (p == MAP_FAILED || vinsert(&mem.regions, &reg) != 0) {
            arena_protect_none(a, len);
            uncharge(bytesize);
            r = CUDA_ERROR_OUT_OF_MEMORY;
        }
    }
    pthread_rwlock_unlock(mem.lock);
    if (r == CUDA_SUCCESS)
        *dptr = (CUdeviceptr)a;
    return r;
}

SIM_API CUresult cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytesize) {
    SIM_ENTER("cuMemAlloc_v2");
    SIM_UNSAFE_CALL();
    if (!dptr || bytesize == 0)
        return CUDA_ERROR_INVALID_VALUE;
    NEED_CTX();
    return mem_alloc(dptr, bytesize);
}

SIM_API CUresult cuMemAllocPitch_v2(CUdeviceptr *dptr, size_t *pPitch, size_t WidthInBytes,
                                    size_t Height, unsigned int ElementSizeBytes) {
    SIM_ENTER("cuMemAllocPitch_v2");
    SIM_UNSAFE_CALL();
    if (!dptr || !pPitch || WidthInBytes == 0 || Height == 0 ||
        (ElementSizeBytes != 4 && ElementSizeBytes != 8 && ElementSizeBytes != 16))
        return CUDA_ERROR_INVALID_VALUE;
    NEED_CTX();
    /* the texture pitch alignment; a row or a size past the address space is refused
     * rather than wrapped to a small allocation */
    if (WidthInBytes > SIZE_MAX - 511)
        return CUDA_ERROR_INVALID_VALUE;
    size_t pitch = (WidthInBytes + 511) & ~(size_t)511;
    if (Height > SIZE_MAX / pitch)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult r = mem_alloc(dptr, pitch * Height);
    if (r == CUDA_SUCCESS)
        *pPitch = pitch;
    return r;
}

SIM_API CUresult cuMemFree_v2(CUdeviceptr dptr) {
    SIM_ENTER("cuMemFree_v2");
    SIM_UNSAFE_CALL();
    NEED_CTX();
    if (!dptr)
        return CUDA_SUCCESS;
    /* Like the real driver (and cudaFree), freeing waits for the device to be idle, so
     * work queued before the free never sees the memory vanish. */
    sim_sync_all(NULL);
    CUresult r = CUDA_ERROR_INVALID_VALUE;
    pthread_rwlock_wrlock(mem.lock);
    long i = vfind(&mem.regions, dptr);
    if (i >= 0) {
        struct region *reg = vat(&mem.regions, (size_t)i);
        if (reg->kind == REGION_ALLOC && reg->start == dptr) {
            size_t n = reg->end - reg->start;
            sim_race_host_write("cuMemFree_v2", reg->start, n); /* after the sync: none */
            arena_protect_none(reg->start, (n + PAGE - 1) & ~(size_t)(PAGE - 1));
            sim_shadow_fresh(reg->start, n);
            uncharge(n);
            vremove(&mem.regions, (size_t)i);
            r = CUDA_SUCCESS;
        } else if (reg->kind == REGION_POOL) {
            r = sim_pool_free_now_locked(dptr); /* a stream-ordered allocation */
        }
    }
    pthread_rwlock_unlock(mem.lock);
    return r;
}

SIM_API CUresult cuMemGetInfo_v2(size_t *free_bytes, size_t *total) {
    SIM_ENTER("cuMemGetInfo_v2");
    NEED_CTX();
    if (!free_bytes || !total)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_rwlock_rdlock(mem.lock);
    *free_bytes = mem.capacity - mem.used;
    *total = mem.capacity;
    pthread_rwlock_unlock(mem.lock);
    return CUDA_SUCCESS;
}
