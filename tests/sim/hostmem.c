/*
 * hostmem.c — pinned host memory: cuMemAllocHost, cuMemHostAlloc, cuMemFreeHost,
 * cuMemHostRegister, cuMemHostUnregister, cuMemHostGetDevicePointer, cuMemHostGetFlags,
 * and whether a host range is pinned (sim_is_pinned: copies and kernel launches ask).
 * Allocated pinned memory is anonymous memory of its own, outside the arena; it does not
 * count against SIMCUDA_MEMORY. Pinning faults every page in when the memory is allocated
 * or registered, as the real driver's does: the cost lands on the call that pins, not on
 * the first copy that touches a page (which would run slower than the bandwidth model),
 * and a range that cannot be pinned (not mapped, or read-only without
 * CU_MEMHOSTREGISTER_READ_ONLY) is refused at registration.
 */
#include "tests/sim/memory_internal.h"
#include "tests/sim/rangevec.h"
#include "tests/sim/sim.h"

#include <errno.h>
#include <sys/mman.h>

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

/* ---- pinned host memory ---------------------------------------------------------- */

int sim_is_pinned(uintptr_t p, size_t n) {
    pthread_rwlock_rdlock(mem.lock);
    long i = vfind(&mem.host, p);
    int pinned = i >= 0 && p + n <= vend(&mem.host, (size_t)i);
    pthread_rwlock_unlock(mem.lock);
    return pinned;
}

/* Faults in the pages covering [p, p+n), for writing unless `read_only`: 0, or -1 when
 * some page cannot be had that way. Writing a read-only mapping is EINVAL, as is advice
 * the kernel does not know (before 5.14): a read that works tells them apart. A kernel
 * without MADV_POPULATE_* pins nothing ahead, and refuses nothing. */
static int pin_pages(uintptr_t p, size_t n, int read_only) {
    void *from = (void *)(p & ~(uintptr_t)(PAGE - 1));
    size_t len = ((p + n + PAGE - 1) & ~(uintptr_t)(PAGE - 1)) - (uintptr_t)from;
    if (madvise(from, len, read_only ? MADV_POPULATE_READ : MADV_POPULATE_WRITE) == 0)
        return 0;
    if (errno != EINVAL)
        return -1; /* a hole in the range (ENOMEM), or a page that would fault (EFAULT) */
    if (read_only)
        return 0;
    return madvise(from, len, MADV_POPULATE_READ) == 0 ? -1 : 0;
}

static CUresult host_alloc(void **pp, size_t bytesize, unsigned flags) {
    if (!pp || bytesize == 0)
        return CUDA_ERROR_INVALID_VALUE;
    NEED_CTX();
    size_t len = (bytesize + PAGE - 1) & ~(size_t)(PAGE - 1);
    /* From 2 MiB up, 2 MiB aligned and marked for huge pages: its first touch (which
     * the real driver pays when it pins) faults once per 2 MiB instead of per 4 KiB. */
    int huge = len >= SIM_GRANULARITY;
    size_t span = huge ? len + SIM_GRANULARITY : len;
    unsigned char *m = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return CUDA_ERROR_OUT_OF_MEMORY;
    unsigned char *p = m;
    if (huge) {
        p = (unsigned char *)(((uintptr_t)m + SIM_GRANULARITY - 1) &
                              ~(uintptr_t)(SIM_GRANULARITY - 1));
        if (p > m)
            munmap(m, (size_t)(p - m));
        if (m + span > p + len)
            munmap(p + len, (size_t)(m + span - (p + len)));
        madvise(p, len, MADV_HUGEPAGE);
    }
    pin_pages((uintptr_t)p, len, 0); /* anonymous read-write memory: always pinnable */
    struct hostrange h = {(uintptr_t)p, (uintptr_t)p + bytesize, HOST_ALLOCATED, len, flags};
    pthread_rwlock_wrlock(mem.lock);
    int bad = vinsert(&mem.host, &h);
    pthread_rwlock_unlock(mem.lock);
    if (bad) {
        munmap(p, len);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    *pp = p;
    return CUDA_SUCCESS;
}

SIM_API CUresult cuMemAllocHost_v2(void **pp, size_t bytesize) {
    SIM_ENTER("cuMemAllocHost_v2");
    SIM_UNSAFE_CALL();
    return host_alloc(pp, bytesize, 0);
}

SIM_API CUresult cuMemHostAlloc(void **pp, size_t bytesize, unsigned int flags) {
    SIM_ENTER("cuMemHostAlloc");
    SIM_UNSAFE_CALL();
    return host_alloc(pp, bytesize, flags);
}

SIM_API CUresult cuMemFreeHost(void *p) {
    SIM_ENTER("cuMemFreeHost");
    SIM_UNSAFE_CALL();
    CUresult r = CUDA_ERROR_INVALID_VALUE;
    pthread_rwlock_wrlock(mem.lock);
    long i = vfind(&mem.host, (uintptr_t)p);
    struct hostrange h = {0};
    if (i >= 0) {
        h = *(struct hostrange *)vat(&mem.host, (size_t)i);
        if (h.kind == HOST_ALLOCATED && h.start == (uintptr_t)p) {
            vremove(&mem.host, (size_t)i);
            r = CUDA_SUCCESS;
        }
    }
    pthread_rwlock_unlock(mem.lock);
    if (r == CUDA_SUCCESS)
        munmap(p, h.mapped);
    return r;
}

SIM_API CUresult cuMemHostRegister_v2(void *p, size_t bytesize, unsigned int flags) {
    SIM_ENTER("cuMemHostRegister_v2");
    SIM_UNSAFE_CALL();
    uintptr_t a = (uintptr_t)p;
    /* host memory only: no byte of the range may lie in the device arena (nor may the
     * range wrap around the address space) */
    if (!p || bytesize == 0 || bytesize > UINTPTR_MAX - a ||
        (a < mem.arena_end && a + bytesize > mem.arena))
        return CUDA_ERROR_INVALID_VALUE;
    NEED_CTX();
    if (pin_pages(a, bytesize, (flags & CU_MEMHOSTREGISTER_READ_ONLY) != 0) != 0)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult r = CUDA_SUCCESS;
    pthread_rwlock_wrlock(mem.lock);
    long i = vfloor(&mem.host, a + bytesize - 1);
    if (i >= 0 && vend(&mem.host, (size_t)i) > a)
        r = CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED;
    else {
        struct hostrange h = {a, a + bytesize, HOST_REGISTERED, 0, flags};
        if (vinsert(&mem.host, &h) != 0)
            r = CUDA_ERROR_OUT_OF_MEMORY;
    }
    pthread_rwlock_unlock(mem.lock);
    return r;
}

SIM_API CUresult cuMemHostUnregister(void *p) {
    SIM_ENTER("cuMemHostUnregister");
    SIM_UNSAFE_CALL();
    CUresult r = CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED;
    pthread_rwlock_wrlock(mem.lock);
    long i = vfind(&mem.host, (uintptr_t)p);
    if (i >= 0) {
        struct hostrange *h = vat(&mem.host, (size_t)i);
        if (h->kind == HOST_REGISTERED && h->start == (uintptr_t)p) {
            vremove(&mem.host, (size_t)i);
            r = CUDA_SUCCESS;
        }
    }
    pthread_rwlock_unlock(mem.lock);
    return r;
}

SIM_API CUresult cuMemHostGetDevicePointer_v2(CUdeviceptr *pdptr, void *p, unsigned int flags) {
    SIM_ENTER("cuMemHostGetDevicePointer_v2");
    if (!pdptr || flags != 0)
        return CUDA_ERROR_INVALID_VALUE;
    if (!sim_is_pinned((uintptr_t)p, 1))
        return CUDA_ERROR_INVALID_VALUE;
    *pdptr = (CUdeviceptr)p;
    return CUDA_SUCCESS;
}

SIM_API CUresult cuMemHostGetFlags(unsigned int *pFlags, void *p) {
    SIM_ENTER("cuMemHostGetFlags");
    if (!pFlags)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult r = CUDA_ERROR_INVALID_VALUE;
    pthread_rwlock_rdlock(mem.lock);
    long i = vfind(&mem.host, (uintptr_t)p);
    if (i >= 0) {
        *pFlags = ((struct hostrange *)vat(&mem.host, (size_t)i))->flags;
        r = CUDA_SUCCESS;
    }
    pthread_rwlock_unlock(mem.lock);
    return r;
}
