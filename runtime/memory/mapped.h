/*
 * mapped.h — program-mapped memory: the physical-memory handles liboffload hands the
 * program for its cuMemCreate, and every cuMemMap the program made while liboffload ran.
 *
 * A handle the program holds is liboffload's (`id`, tagged so it never equals a driver
 * handle: the driver's are small numbers or user-space pointers). Its driver memory is
 * made when it is first mapped, by residency.h like any tracked allocation's: a mapping
 * of a whole handle is a tracked allocation (ALLOC_FROM_MAPPING) that can be evicted
 * (unmapped, the driver memory released) and restored at the same address. While it is
 * mapped that way the allocation owns the driver memory; the handle owns it (`real`) only
 * while it is not mapped, or when it is `direct`.
 *
 * `direct`: the program's mappings of it are the driver's own, never tracked or moved —
 * a handle that is exported (cuMemExportToShareableHandle), mapped twice at once, mapped
 * in part, or given other access than read-write on liboffload's device. A handle never
 * stops being direct.
 *
 * The mapping table answers what the driver would for ranges whose tracked memory is
 * evicted (the driver sees nothing mapped there): overlaps, whole-mapping runs for
 * cuMemUnmap, mappings inside a cuMemAddressFree.
 *
 * Extents: one mapping is one tracked allocation, but a buffer of the program may lie
 * across several contiguous mappings (PyTorch's expandable segments, ggml's VMM pool
 * place large tensors across handles). An extent is a byte range known to be one buffer
 * (or a few) crossing from one tracked mapping into another: learnt from a copy or memset
 * over it, or from one cuMemSetAccess over several mappings (made together for one
 * request). Extents are disjoint and sorted: one that overlaps another is merged with it,
 * adjacent ones are not (a buffer ending where the next begins is no reason to tie them).
 * Every tracked mapping an extent overlaps is marked `spanned`; a pointer p into a
 * spanned mapping M brings along every mapping of the extents overlapping [p, end of M)
 * (the buffer at p lies from p on). So at most two extents overlap a mapping: one across
 * its start, one across its end (a third would overlap one of them). An unmap forgets the
 * extents over the range unmapped: the buffers across it are gone with its memory.
 *
 * Pure data structure, no driver call; the caller holds the runtime lock.
 */
#ifndef OFFLOAD_MAPPED_H
#define OFFLOAD_MAPPED_H

#include "runtime/memory/allocation.h"

#include <cuda.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uthash.h>

#define VMM_HANDLE_TAG (1ull << 63)

struct vmm_handle {
    CUmemGenericAllocationHandle id; /* what the program holds */
    size_t size;
    CUmemAllocationProp prop; /* as the program asked */
    bool plain;               /* prop is plain device memory of liboffload's device */
    unsigned refs;            /* the program's: cuMemCreate, each cuMemRetainAllocationHandle */
    unsigned maps;            /* mappings of it in the table */
    CUmemGenericAllocationHandle real; /* driver memory the handle holds itself, 0: none */
    bool direct;
    UT_hash_handle hh;
};

/* One cuMemMap of the program. */
struct vmm_mapping {
    CUdeviceptr base;
    size_t size;
    struct vmm_handle *handle;  /* NULL: a driver handle liboffload did not make */
    struct allocation *tracked; /* the tracked allocation, NULL: the driver's mapping */
};

/* A byte range one buffer of the program spans across tracked mappings. */
struct vmm_extent {
    CUdeviceptr start, end;
};

struct vmm_table {
    struct vmm_handle *handles; /* uthash on id */
    uint64_t next_id;
    struct vmm_mapping *maps; /* sorted by base, never overlapping */
    size_t count, capacity;
    struct vmm_extent *extents; /* sorted by start, never overlapping */
    size_t extent_count, extent_capacity;
};

/* A new handle (refs 1, no memory), or NULL out of memory. */
struct vmm_handle *vmm_handle_new(struct vmm_table *t, size_t size, const CUmemAllocationProp *prop,
                                  bool plain);

/* The handle with that id, or NULL. */
struct vmm_handle *vmm_handle_find(struct vmm_table *t, CUmemGenericAllocationHandle id);

/* Frees h when the program holds no reference and nothing maps it; true when freed (the
 * caller has released its `real` memory). */
bool vmm_handle_forget_if_unused(struct vmm_table *t, struct vmm_handle *h);

/* Adds a mapping (h's `maps` counted); 0, or -1 out of memory. */
int vmm_mapping_add(struct vmm_table *t, CUdeviceptr base, size_t size, struct vmm_handle *h,
                    struct allocation *tracked);

/* The index of the mapping containing addr, or -1. */
long vmm_mapping_at(const struct vmm_table *t, CUdeviceptr addr);

/* Whether any mapping overlaps [base, base+size). */
bool vmm_mapping_overlaps(const struct vmm_table *t, CUdeviceptr base, size_t size);

/* Whether [base, base+size) is exactly a contiguous run of whole mappings (what cuMemUnmap
 * accepts); *first and *n the run. */
bool vmm_mapping_run(const struct vmm_table *t, CUdeviceptr base, size_t size, size_t *first,
                     size_t *n);

/* Removes mapping i (its handle's `maps` uncounted). */
void vmm_mapping_remove(struct vmm_table *t, size_t i);

/* Learns that [base, base+size) may be one buffer: when it overlaps two tracked mappings
 * or more, it becomes an extent (merged with those it overlaps) and the tracked mappings
 * it overlaps are marked spanned. 1 when an extent was added or grew, 0 when nothing was
 * learnt, -1 out of memory (nothing changed). */
int vmm_extent_learn(struct vmm_table *t, CUdeviceptr base, size_t size);

/* Forgets every extent overlapping [base, base+size), and marks again which tracked
 * mappings stay spanned. */
void vmm_extent_forget(struct vmm_table *t, CUdeviceptr base, size_t size);

/* Calls fn(arg, a) for the tracked allocation a of every mapping that an extent
 * overlapping [lo, hi) overlaps (in address order; a mapping in two extents twice). */
void vmm_extent_members(const struct vmm_table *t, CUdeviceptr lo, CUdeviceptr hi,
                        void (*fn)(void *arg, struct allocation *a), void *arg);

#endif /* OFFLOAD_MAPPED_H */
