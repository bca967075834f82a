/*
 * physmem.c — physical memory: the pool where handles keep their pages, and the handles
 * (cuMemCreate, cuMemRelease, cuMemRetainAllocationHandle,
 * cuMemGetAllocationPropertiesFromHandle).
 *
 * Physical memory behaves like a GPU's: mapping it is a page-table update, and it never
 * page-faults once it has been touched. The pool is one window of private anonymous
 * memory (2 MiB aligned, MADV_HUGEPAGE) where every extent keeps its pages at its home
 * offset while it is not mapped. cuMemMap mremaps the pages from home to the address and
 * cuMemUnmap mremaps them home again (vmm.c): the page-table entries (2 MiB ones when the
 * kernel gave huge pages) move with them, so the first copy into a fresh mapping runs at
 * the speed of the second. (On this kind of VM every new 4 KiB page-table entry costs
 * microseconds on its first access, whatever was prefaulted: a memfd mapped afresh paid
 * that at every cuMemMap.) Home is always PROT_NONE: an extent's pages reach the address
 * with no access, and a hole left at home stays reserved, so nothing else lands there.
 * Released extents stay in the pool with their pages, and the next cuMemCreate reuses
 * them (first fit). Every extent, fresh or reused, is poisoned over its whole length
 * when it is handed out (poison.c), as is every cuMemAlloc (alloc.c), so a restore that
 * forgot to copy reads poison, not zeros or an old allocation's bytes.
 * Pages can be in one place only: a handle range mapped a second time while it is mapped
 * (aliasing) turns the handle into a memfd of its own (bytes copied in, its mappings
 * re-made MAP_SHARED from it), mapped and unmapped the old way from then on.
 */
#include "tests/sim/memory_internal.h"
#include "tests/sim/rangevec.h"
#include "tests/sim/sim.h"
#include "tests/sim/strict.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <uthash.h>

/* Free extents of the pool: [start, end) offsets in its window. */
struct extent {
    uintptr_t start, end;
};

/* ---- physical memory pool -------------------------------------------------------- */

#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif

/* With the write lock held. Twice the capacity leaves room for fragmentation; an
 * allocation that finds no room gets a memfd of its own. The window is 2 MiB aligned:
 * huge pages move as such only between 2 MiB-aligned addresses. */
static struct pool *pool_get(void) {
    if (mem.pool)
        return mem.pool;
    struct pool *pl = calloc(1, sizeof *pl);
    if (!pl)
        return NULL;
    pl->free.elem = sizeof(struct extent);
    pl->size = (mem.capacity / SIM_GRANULARITY + 1) * SIM_GRANULARITY * 2;
    size_t span = pl->size + SIM_GRANULARITY;
    unsigned char *w =
        mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (w == MAP_FAILED) {
        free(pl);
        return NULL;
    }
    uintptr_t a = ((uintptr_t)w + SIM_GRANULARITY - 1) & ~(uintptr_t)(SIM_GRANULARITY - 1);
    if (a > (uintptr_t)w)
        munmap(w, a - (uintptr_t)w);
    if ((uintptr_t)w + span > a + pl->size)
        munmap((void *)(a + pl->size), (uintptr_t)w + span - (a + pl->size));
    pl->window = (unsigned char *)a;
    madvise(pl->window, pl->size, MADV_HUGEPAGE);
    mem.pool = pl;
    return pl;
}

/* With the write lock held: one mremap of [from, from+n) to `to`, replacing what is
 * there. `from` is left reserved PROT_NONE without pages: MREMAP_DONTUNMAP keeps its
 * (PROT_NONE) mapping, so the hole is never unreserved; where the kernel (or valgrind)
 * refuses that flag, the hole is reserved again at once. 0, or -1 with errno. */
static int move_once(uintptr_t from, uintptr_t to, size_t n) {
    if (!mem.no_dontunmap) {
        if (mremap((void *)from, n, n, MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP,
                   (void *)to) != MAP_FAILED)
            return 0;
        if (errno != EINVAL)
            return -1;
        mem.no_dontunmap = 1;
    }
    if (mremap((void *)from, n, n, MREMAP_MAYMOVE | MREMAP_FIXED, (void *)to) == MAP_FAILED)
        return -1;
    reserve_fixed(from, n);
    return 0;
}

/* With the write lock held: moves the pages of [from, from+n) to `to`, with their page
 * tables (2 MiB entries move as such) and their protection, which must be PROT_NONE:
 * work still touching `from` faults, and nothing arrives accessible. A range spanning
 * several kernel mappings (access set on part of a piece, an extent moved home in parts)
 * is moved a granule at a time where the kernel cannot move it in one call: every
 * boundary the simulator makes is granule aligned. 0, or -1 with nothing moved. */
int move_pages(uintptr_t from, uintptr_t to, size_t n) {
    if (move_once(from, to, n) == 0)
        return 0;
    if (errno != EFAULT)
        return -1;
    for (size_t at = 0; at < n; at += SIM_GRANULARITY) {
        if (move_once(from + at, to + at, SIM_GRANULARITY) != 0) {
            while (at > 0) {
                at -= SIM_GRANULARITY;
                move_once(to + at, from + at, SIM_GRANULARITY);
            }
            return -1;
        }
    }
    return 0;
}

/* Fills an extent with poison (poison.c) over its whole length. Home is PROT_NONE:
 * opened for the writes, closed after. 0 or -1. */
static int poison(unsigned char *p, size_t n) {
    if (mprotect(p, n, PROT_READ | PROT_WRITE) != 0)
        return -1;
    sim_poison_fill(p, n);
    mprotect(p, n, PROT_NONE);
    return 0;
}

static void pool_give(struct pool *pl, size_t at, size_t n);

/* With the write lock held: an extent of n bytes at *at (first fit among released ones,
 * whose pages are already there), poisoned, or -1. */
static int pool_take(struct pool *pl, size_t n, size_t *at) {
    for (size_t i = 0; i < pl->free.n; i++) {
        struct extent *e = vat(&pl->free, i);
        if (e->end - e->start < n)
            continue;
        *at = e->start;
        e->start += n;
        if (e->start == e->end)
            vremove(&pl->free, i);
        if (poison(pl->window + *at, n) != 0) {
            pool_give(pl, *at, n);
            return -1;
        }
        return 0;
    }
    if (pl->size - pl->bump < n || poison(pl->window + pl->bump, n) != 0)
        return -1;
    *at = pl->bump;
    pl->bump += n;
    return 0;
}

/* With the write lock held: [at, at+n) back to the pool, merged with its neighbours.
 * Its pages stay (that is the point). */
static void pool_give(struct pool *pl, size_t at, size_t n) {
    struct extent e = {at, at + n};
    long i = vfloor(&pl->free, e.start);
    struct extent *prev = i >= 0 ? vat(&pl->free, (size_t)i) : NULL;
    struct extent *next = (size_t)(i + 1) < pl->free.n ? vat(&pl->free, (size_t)(i + 1)) : NULL;
    if (prev && prev->end == e.start) {
        prev->end = e.end;
        if (next && next->start == prev->end) {
            prev->end = next->end;
            vremove(&pl->free, (size_t)(i + 1));
        }
    } else if (next && next->start == e.end) {
        next->start = e.start;
    } else if (vinsert(&pl->free, &e) != 0) {
        /* no memory for the list: the extent is lost to the pool, not to capacity */
    }
}

struct phys *phys_find(uint64_t handle) {
    struct phys *ph = NULL;
    HASH_FIND(hh, mem.phys, &handle, sizeof handle, ph);
    return ph;
}

/* With the write lock held: frees physical memory nobody holds any more. Every page of
 * an anonymous handle is home by now. */
void phys_maybe_free(struct phys *ph) {
    if (ph->refs > 0 || ph->maps > 0)
        return;
    HASH_DELETE(hh, mem.phys, ph);
    if (ph->pool)
        pool_give(ph->pool, ph->home, ph->size);
    if (ph->fd >= 0)
        close(ph->fd);
    uncharge(ph->size);
    free(ph);
}

/* With the write lock held: whether a piece of anonymous `ph` overlapping its bytes
 * [off, off+n) is mapped (its pages are away from home). */
int phys_mapped(const struct phys *ph, size_t off, size_t n) {
    for (size_t i = 0; ph->maps > 0 && i < mem.maps.n; i++) {
        const struct mapping *mp = vat(&mem.maps, i);
        if (mp->ph == ph && mp->offset < off + n && off < mp->offset + (mp->end - mp->start))
            return 1;
    }
    return 0;
}

/* With the write lock held: anonymous `ph` becomes a memfd of its own, because one
 * range of it must show at two addresses and moved pages are in one place only. Its
 * bytes are copied in (from home, then from every piece mapped elsewhere), each piece
 * is re-mapped MAP_SHARED from the memfd with its protection, and the home extent goes
 * back to the pool. Slow, and rare (liboffload never aliases). Work running on a piece
 * meanwhile races with the copy as it would with any remapping. 0, or -1 with nothing
 * changed. */
int phys_make_shared(struct phys *ph) {
    int fd = memfd_create("simcuda-device", MFD_CLOEXEC);
    if (fd < 0)
        return -1;
    unsigned char *bytes = MAP_FAILED, *home = ph->pool->window + ph->home;
    if (ftruncate(fd, (off_t)ph->size) == 0)
        bytes = mmap(NULL, ph->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (bytes == MAP_FAILED || mprotect(home, ph->size, PROT_READ) != 0) {
        if (bytes != MAP_FAILED)
            munmap(bytes, ph->size);
        close(fd);
        return -1;
    }
    memcpy(bytes, home, ph->size); /* the parts mapped elsewhere read zeros here */
    mprotect(home, ph->size, PROT_NONE);
    for (size_t i = 0; i < mem.maps.n; i++) {
        const struct mapping *mp = vat(&mem.maps, i);
        size_t len = mp->end - mp->start;
        if (mp->ph != ph)
            continue;
        if (!(mp->prot & PROT_READ) && mprotect((void *)mp->start, len, PROT_READ) != 0) {
            munmap(bytes, ph->size);
            close(fd);
            return -1;
        }
        memcpy(bytes + mp->offset, (void *)mp->start, len);
        mprotect((void *)mp->start, len, mp->prot);
    }
    munmap(bytes, ph->size);
    /* Past here nothing can be undone: a piece left anonymous would silently stop
     * aliasing, so a failure (the kernel out of mappings) ends the program. */
    for (size_t i = 0; i < mem.maps.n; i++) {
        const struct mapping *mp = vat(&mem.maps, i);
        if (mp->ph == ph && mmap((void *)mp->start, mp->end - mp->start, mp->prot,
                                 MAP_SHARED | MAP_FIXED, fd, (off_t)mp->offset) == MAP_FAILED) {
            fprintf(stderr, "simcuda: cannot re-map an aliased allocation: %s\n", strerror(errno));
            abort();
        }
    }
    pool_give(ph->pool, ph->home, ph->size);
    ph->pool = NULL;
    ph->fd = fd;
    return 0;
}

/* With the write lock held: bytes [offset, offset+n) of `ph` appear at `to` (reserved),
 * with no access. 0 or -1 (`to` still reserved). */
int phys_map(struct phys *ph, uintptr_t to, size_t offset, size_t n) {
    if (ph->fd < 0)
        return move_pages((uintptr_t)ph->pool->window + ph->home + offset, to, n);
    if (mmap((void *)to, n, PROT_NONE, MAP_SHARED | MAP_FIXED, ph->fd, (off_t)offset) != MAP_FAILED)
        return 0;
    arena_protect_none(to, n); /* a failed MAP_FIXED may have unmapped it */
    return -1;
}

SIM_API CUresult cuMemCreate(CUmemGenericAllocationHandle *handle, size_t size,
                             const CUmemAllocationProp *prop, unsigned long long flags) {
    SIM_ENTER("cuMemCreate");
    SIM_UNSAFE_CALL();
    if (!handle || !prop || size == 0 || size % SIM_GRANULARITY || flags != 0 ||
        prop->type != CU_MEM_ALLOCATION_TYPE_PINNED)
        return CUDA_ERROR_INVALID_VALUE;
    if (prop->location.type != CU_MEM_LOCATION_TYPE_DEVICE || prop->location.id != 0)
        return CUDA_ERROR_INVALID_DEVICE;
    NEED_CTX();
    struct phys *ph = calloc(1, sizeof *ph);
    if (!ph)
        return CUDA_ERROR_OUT_OF_MEMORY;
    ph->fd = -1;
    pthread_rwlock_wrlock(mem.lock);
    CUresult r = charge(size);
    struct pool *pl = r == CUDA_SUCCESS ? pool_get() : NULL;
    if (pl && pool_take(pl, size, &ph->home) == 0) {
        ph->pool = pl;
    } else if (r == CUDA_SUCCESS) {
        ph->fd = memfd_create("simcuda-device", MFD_CLOEXEC);
        void *bytes = MAP_FAILED;
        if (ph->fd >= 0 && ftruncate(ph->fd, (off_t)size) == 0)
            bytes = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, ph->fd, 0);
        if (bytes == MAP_FAILED) {
            if (ph->fd >= 0)
                close(ph->fd);
            uncharge(size);
            r = CUDA_ERROR_OUT_OF_MEMORY;
        } else {
            sim_poison_fill(bytes, size);
            munmap(bytes, size);
        }
    }
    if (r == CUDA_SUCCESS) {
        ph->size = size;
        ph->refs = 1;
        ph->handle_types = prop->requestedHandleTypes;
        ph->handle = ++mem.next_id;
        HASH_ADD(hh, mem.phys, handle, sizeof ph->handle, ph);
        *handle = ph->handle;
    } else {
        free(ph);
    }
    pthread_rwlock_unlock(mem.lock);
    return r;
}

SIM_API CUresult cuMemRelease(CUmemGenericAllocationHandle handle) {
    SIM_ENTER("cuMemRelease");
    SIM_UNSAFE_CALL();
    CUresult r = CUDA_ERROR_INVALID_VALUE;
    pthread_rwlock_wrlock(mem.lock);
    struct phys *ph = phys_find(handle);
    if (ph && ph->refs > 0) {
        ph->refs--;
        phys_maybe_free(ph);
        r = CUDA_SUCCESS;
    }
    pthread_rwlock_unlock(mem.lock);
    return r;
}

/* The handle mapped at addr (anywhere in a cuMemMap range), with one more reference the
 * program must release. */
SIM_API CUresult cuMemRetainAllocationHandle(CUmemGenericAllocationHandle *handle, void *addr) {
    SIM_ENTER("cuMemRetainAllocationHandle");
    if (!handle)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult r = CUDA_ERROR_INVALID_VALUE;
    pthread_rwlock_wrlock(mem.lock);
    long m = vfind(&mem.maps, (uintptr_t)addr);
    if (m >= 0) {
        struct phys *ph = ((struct mapping *)vat(&mem.maps, (size_t)m))->ph;
        ph->refs++;
        *handle = ph->handle;
        r = CUDA_SUCCESS;
    }
    pthread_rwlock_unlock(mem.lock);
    return r;
}

SIM_API CUresult cuMemGetAllocationPropertiesFromHandle(CUmemAllocationProp *prop,
                                                        CUmemGenericAllocationHandle handle) {
    SIM_ENTER("cuMemGetAllocationPropertiesFromHandle");
    if (!prop)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult r = CUDA_ERROR_INVALID_VALUE;
    pthread_rwlock_rdlock(mem.lock);
    const struct phys *ph = phys_find(handle);
    if (ph && ph->refs > 0) {
        memset(prop, 0, sizeof *prop);
        prop->type = CU_MEM_ALLOCATION_TYPE_PINNED;
        prop->location.type = CU_MEM_LOCATION_TYPE_DEVICE;
        prop->location.id = 0;
        prop->requestedHandleTypes = ph->handle_types;
        r = CUDA_SUCCESS;
    }
    pthread_rwlock_unlock(mem.lock);
    return r;
}
