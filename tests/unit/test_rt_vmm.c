/*
 * test_rt_vmm.c — program-mapped and stream-ordered memory in the runtime (runtime/vmm.c,
 * runtime/stream_alloc.c, memory/mapped.h, memory/pools.h), driven directly against the
 * simulated driver: the runtime's entry points as the hooks call them, the simulator's
 * own cu* for what a program does beside them.
 */
#include "runtime/memory/residency.h"
#include "runtime/runtime.h"
#include "runtime/state.h"
#include "tests/sim/testutil.h"
#include "tests/unit/check.h"

#include <stdatomic.h>
#include <stdlib.h>

#define MiB (1ull << 20)
#define SIZE (8 * MiB)

static struct runtime *const rt = &offload_runtime;
static CUstream stream;

static CUmemAllocationProp device_prop(void) {
    CUmemAllocationProp prop;
    memset(&prop, 0, sizeof prop);
    prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    prop.location.id = 0;
    return prop;
}

static const CUmemAccessDesc read_write = {
    .location = {.type = CU_MEM_LOCATION_TYPE_DEVICE, .id = 0},
    .flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE,
};

/* The program's way: a handle, mapped at `va`, given access, filled. */
static CUmemGenericAllocationHandle mapped_at(CUdeviceptr va, uint8_t fill) {
    CUmemAllocationProp prop = device_prop();
    CUmemGenericAllocationHandle h = 0;
    CHECK_CU(runtime_vmm_create(&h, SIZE, &prop, 0));
    CHECK_CU(runtime_vmm_map(va, SIZE, 0, h, 0));
    CHECK_CU(runtime_begin_set_access(va, SIZE, &read_write, 1));
    CHECK_CU(cuMemSetAccess(va, SIZE, &read_write, 1));
    runtime_end_call();
    CHECK_CU(cuMemsetD8_v2(va, fill, SIZE));
    CHECK_CU(cuCtxSynchronize());
    return h;
}

static void evict_now(struct allocation *a) {
    runtime_lock();
    CHECK_CU(residency_evict(rt, a));
    residency_finish_evictions(rt);
    residency_drain_pool(rt);
    runtime_unlock();
    CHECK(a->state == ALLOC_EVICTED);
}

/* The bytes at va, read as a program reads them (restored on demand). */
static bool holds(CUdeviceptr va, size_t bytes, uint8_t fill) {
    uint8_t *buf = malloc(bytes);
    bool same = buf && runtime_begin_access(va, bytes, 0, 0, CU_STREAM_LEGACY) == CUDA_SUCCESS &&
                cuMemcpyDtoH_v2(buf, va, bytes) == CUDA_SUCCESS;
    runtime_end_call();
    for (size_t i = 0; same && i < bytes; i++)
        same = buf[i] == fill;
    free(buf);
    return same;
}

TEST(a_mapped_range_is_evicted_and_restored_at_its_address) {
    CUdeviceptr va;
    CHECK_CU(cuMemAddressReserve(&va, 2 * SIZE, 0, 0, 0));
    uint64_t resident = rt->budget.resident;
    CUmemGenericAllocationHandle h = mapped_at(va, 0x3c);
    CHECK(h & VMM_HANDLE_TAG); /* liboffload's handle, never a driver value */
    struct allocation *a = registry_find(&rt->registry, va + 5);
    CHECK(a && a->base == va && a->origin == ALLOC_FROM_MAPPING && a->state == ALLOC_RESIDENT);
    CHECK_EQ_U64(rt->budget.resident, resident + SIZE);
    evict_now(a);
    CHECK_EQ_U64(rt->budget.resident, resident);

    /* evicted: the driver sees nothing mapped there, the program sees its mapping */
    unsigned long long flags = 0;
    CUmemLocation here = {.type = CU_MEM_LOCATION_TYPE_DEVICE, .id = 0};
    CHECK_CU(runtime_vmm_get_access(&flags, &here, va));
    CHECK_EQ_U64(flags, CU_MEM_ACCESS_FLAGS_PROT_READWRITE);
    /* other places answer as the driver does for the mapping (tests/sim/vmm.c) */
    CUmemLocation host = {.type = CU_MEM_LOCATION_TYPE_HOST, .id = 0};
    CHECK_CU(runtime_vmm_get_access(&flags, &host, va));
    CHECK_EQ_U64(flags, CU_MEM_ACCESS_FLAGS_PROT_NONE);
    CUmemLocation nowhere = {.type = CU_MEM_LOCATION_TYPE_DEVICE, .id = 7};
    CHECK_EQ_U64(runtime_vmm_get_access(&flags, &nowhere, va), CUDA_ERROR_INVALID_DEVICE);
    nowhere = (CUmemLocation){.type = CU_MEM_LOCATION_TYPE_INVALID, .id = 0};
    CHECK_EQ_U64(runtime_vmm_get_access(&flags, &nowhere, va), CUDA_ERROR_INVALID_VALUE);
    CUmemAllocationProp prop = device_prop(), got;
    CUmemGenericAllocationHandle other, retained = 0;
    CHECK_CU(cuMemCreate(&other, SIZE, &prop, 0)); /* a driver handle */
    CHECK_EQ_U64(runtime_vmm_map(va, SIZE, 0, other, 0), CUDA_ERROR_INVALID_VALUE);
    CHECK_EQ_U64(runtime_vmm_address_free(va, 2 * SIZE), CUDA_ERROR_INVALID_VALUE);
    CHECK_EQ_U64(runtime_vmm_unmap(va, SIZE / 2), CUDA_ERROR_INVALID_VALUE); /* part of one */
    CHECK_CU(runtime_vmm_retain(&retained, (void *)(va + MiB)));
    CHECK_EQ_U64(retained, h);
    CHECK_CU(runtime_vmm_properties(&got, h));
    CHECK(got.type == prop.type && got.location.id == 0 && got.requestedHandleTypes == 0);
    CHECK(a->state == ALLOC_EVICTED); /* none of that restored it */

    /* a use restores it at the same address, bytes intact */
    CHECK(holds(va, SIZE, 0x3c));
    CHECK(registry_find(&rt->registry, va) == a && a->base == va);

    /* a driver handle mapped beside it stays the driver's mapping */
    CHECK_CU(runtime_vmm_map(va + SIZE, SIZE, 0, other, 0));
    CHECK(registry_find(&rt->registry, va + SIZE) == NULL);
    CHECK_CU(runtime_vmm_release(h)); /* cuMemRelease before unmap: still mapped */
    CHECK_CU(runtime_vmm_release(retained));
    CHECK_EQ_U64(runtime_vmm_release(h), CUDA_ERROR_INVALID_VALUE); /* the driver's: released */
    CHECK(holds(va, SIZE, 0x3c));
    evict_now(a);
    /* one cuMemUnmap of the whole run: the evicted mapping and the driver's beside it */
    CHECK_EQ_U64(runtime_vmm_unmap(va, SIZE + SIZE / 2), CUDA_ERROR_INVALID_VALUE);
    CHECK_CU(runtime_vmm_unmap(va, 2 * SIZE));
    CHECK(registry_find(&rt->registry, va) == NULL);
    CHECK_EQ_U64(rt->budget.resident, resident);
    CHECK_EQ_U64(runtime_vmm_release(h), CUDA_ERROR_INVALID_VALUE); /* gone */
    CHECK_CU(cuMemRelease(other));
    CHECK_CU(runtime_vmm_address_free(va, 2 * SIZE));
}

/* Each misuse, once on the bare driver's own mapping and once on liboffload's evicted one
 * (unmapped to the driver): the same answer. */
TEST(misuses_get_the_bare_driver_answer_while_evicted) {
    CUmemAllocationProp prop = device_prop();
    CUdeviceptr bare_va, va;
    CUmemGenericAllocationHandle bare_h, bare_other, h, other;
    CHECK_CU(cuMemAddressReserve(&bare_va, 2 * SIZE, 0, 0, 0));
    CHECK_CU(cuMemAddressReserve(&va, 2 * SIZE, 0, 0, 0));
    CHECK_CU(cuMemCreate(&bare_h, SIZE, &prop, 0));
    CHECK_CU(cuMemCreate(&bare_other, SIZE, &prop, 0));
    CHECK_CU(runtime_vmm_create(&other, SIZE, &prop, 0));
    CHECK_CU(cuMemMap(bare_va, SIZE, 0, bare_h, 0));
    h = mapped_at(va, 0x11);
    evict_now(registry_find(&rt->registry, va));
    struct {
        CUresult bare, offload;
    } cases[] = {
        {cuMemMap(bare_va, SIZE, 0, bare_other, 0), runtime_vmm_map(va, SIZE, 0, other, 0)},
        {cuMemMap(bare_va + SIZE / 2, SIZE, 0, bare_other, 0),
         runtime_vmm_map(va + SIZE / 2, SIZE, 0, other, 0)},
        {cuMemUnmap(bare_va, SIZE / 2), runtime_vmm_unmap(va, SIZE / 2)},
        {cuMemUnmap(bare_va, 2 * SIZE), runtime_vmm_unmap(va, 2 * SIZE)},
        {cuMemAddressFree(bare_va, 2 * SIZE), runtime_vmm_address_free(va, 2 * SIZE)},
        {cuMemRelease(0), runtime_vmm_release(0)},
        {cuMemMap(bare_va + SIZE, SIZE, 0, 0, 0), runtime_vmm_map(va + SIZE, SIZE, 0, 0, 0)},
        {cuMemMap(bare_va + SIZE, SIZE, SIZE, bare_other, 0),
         runtime_vmm_map(va + SIZE, SIZE, SIZE, other, 0)}, /* past the handle's end */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK_EQ_U64(cases[i].offload, cases[i].bare);
        CHECK(cases[i].bare != CUDA_SUCCESS);
    }
    CHECK(registry_find(&rt->registry, va)->state == ALLOC_EVICTED); /* none restored it */
    /* released twice, and mapped once released */
    CHECK_CU(cuMemUnmap(bare_va, SIZE));
    CHECK_CU(runtime_vmm_unmap(va, SIZE));
    CHECK_CU(cuMemRelease(bare_h));
    CHECK_CU(runtime_vmm_release(h));
    CHECK_EQ_U64(runtime_vmm_release(h), cuMemRelease(bare_h));
    CHECK_EQ_U64(runtime_vmm_map(va, SIZE, 0, h, 0), cuMemMap(bare_va, SIZE, 0, bare_h, 0));
    CHECK_CU(cuMemRelease(bare_other));
    CHECK_CU(runtime_vmm_release(other));
    CHECK_EQ_U64(runtime_vmm_release(other), cuMemRelease(bare_other));
    CHECK_CU(cuMemAddressFree(bare_va, 2 * SIZE));
    CHECK_CU(runtime_vmm_address_free(va, 2 * SIZE));
}

TEST(unmapped_with_the_handle_kept_the_bytes_stay_with_the_handle) {
    CUdeviceptr va, vb;
    CHECK_CU(cuMemAddressReserve(&va, SIZE, 0, 0, 0));
    CHECK_CU(cuMemAddressReserve(&vb, SIZE, 0, 0, 0));
    uint64_t untracked = rt->budget.untracked, resident = rt->budget.resident;
    CUmemGenericAllocationHandle h = mapped_at(va, 0x71);
    evict_now(registry_find(&rt->registry, va));
    CHECK_CU(runtime_vmm_unmap(va, SIZE));
    CHECK(registry_find(&rt->registry, va) == NULL);
    CHECK_EQ_U64(rt->budget.untracked, untracked + SIZE); /* the handle holds the memory */
    CHECK_EQ_U64(rt->budget.resident, resident);
    /* mapped again elsewhere: the driver's mapping of that memory, the bytes kept */
    CHECK_CU(runtime_vmm_map(vb, SIZE, 0, h, 0));
    CHECK_CU(cuMemSetAccess(vb, SIZE, &read_write, 1));
    CHECK(registry_find(&rt->registry, vb) == NULL);
    CHECK(holds(vb, SIZE, 0x71));
    CHECK_CU(runtime_vmm_unmap(vb, SIZE));
    CHECK_CU(runtime_vmm_release(h));
    CHECK_EQ_U64(rt->budget.untracked, untracked);
    CHECK_CU(cuMemAddressFree(va, SIZE));
    CHECK_CU(cuMemAddressFree(vb, SIZE));
}

TEST(an_exported_or_aliased_handle_is_never_moved) {
    CUdeviceptr va, vb;
    CHECK_CU(cuMemAddressReserve(&va, SIZE, 0, 0, 0));
    CHECK_CU(cuMemAddressReserve(&vb, SIZE, 0, 0, 0));
    CUmemGenericAllocationHandle h = mapped_at(va, 0x19);
    evict_now(registry_find(&rt->registry, va));
    /* the same handle mapped twice: both views share the bytes, so neither moves */
    CHECK_CU(runtime_vmm_map(vb, SIZE, 0, h, 0));
    CHECK(registry_find(&rt->registry, va) == NULL && registry_find(&rt->registry, vb) == NULL);
    CHECK_CU(cuMemSetAccess(vb, SIZE, &read_write, 1));
    CHECK(holds(va, SIZE, 0x19) && holds(vb, SIZE, 0x19));
    CHECK_CU(runtime_vmm_unmap(va, SIZE));
    CHECK_CU(runtime_vmm_unmap(vb, SIZE));
    CHECK_CU(runtime_vmm_release(h));

    /* an export: the simulator cannot export, but the handle went direct all the same */
    uint64_t kept = rt->stats.exported_kept;
    h = mapped_at(va, 0x20);
    int fd = -1;
    CUresult bare = cuMemExportToShareableHandle(&fd, h & ~VMM_HANDLE_TAG,
                                                 CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, 0);
    CHECK_EQ_U64(runtime_vmm_export(&fd, h, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, 0), bare);
    CHECK(registry_find(&rt->registry, va) == NULL);
    CHECK_EQ_U64(rt->stats.exported_kept, kept + (bare == CUDA_SUCCESS));
    CHECK(holds(va, SIZE, 0x20));
    CHECK_CU(runtime_vmm_release(h));
    CHECK_CU(runtime_vmm_unmap(va, SIZE));
    CHECK_CU(cuMemAddressFree(va, SIZE));
    CHECK_CU(cuMemAddressFree(vb, SIZE));
}

/* PyTorch's expandable segments ask for exportable memory: tracked all the same, and the
 * memory made at each restore is what the program asked for. */
TEST(an_exportable_request_is_tracked_with_its_properties) {
    CUdeviceptr va;
    CHECK_CU(cuMemAddressReserve(&va, SIZE, 0, 0, 0));
    CUmemAllocationProp prop = device_prop(), got;
    prop.requestedHandleTypes = CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR;
    CUmemGenericAllocationHandle h;
    CHECK_CU(runtime_vmm_create(&h, SIZE, &prop, 0));
    CHECK_CU(runtime_vmm_map(va, SIZE, 0, h, 0));
    struct allocation *a = registry_find(&rt->registry, va);
    CHECK(a && a->physical_prop);
    CHECK_CU(cuMemsetD8_v2(va, 0x66, SIZE));
    CHECK_CU(cuCtxSynchronize()); /* the memset was not made through liboffload */
    evict_now(a);
    CHECK(holds(va, SIZE, 0x66));
    CHECK_CU(cuMemGetAllocationPropertiesFromHandle(&got, a->handle)); /* the driver's view */
    CHECK_EQ_U64(got.requestedHandleTypes, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR);
    CHECK_CU(runtime_vmm_properties(&got, h)); /* the program's view */
    CHECK_EQ_U64(got.requestedHandleTypes, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR);
    CHECK_CU(runtime_vmm_unmap(va, SIZE));
    CHECK_CU(runtime_vmm_release(h));
    CHECK_CU(cuMemAddressFree(va, SIZE));
}

TEST(stream_ordered_memory_is_tracked_and_freed_in_stream_order) {
    CUdeviceptr d = 0, plain = 0;
    bool forward = true;
    CHECK_CU(runtime_stream_alloc(&d, SIZE, NULL, stream, &forward));
    CHECK(!forward);
    struct allocation *a = registry_find(&rt->registry, d);
    CHECK(a && a->origin == ALLOC_FROM_STREAM && a->state == ALLOC_RESIDENT);
    CHECK_CU(cuMemsetD8Async(d, 0x44, SIZE, stream));
    evict_now(a);
    CHECK(holds(d, SIZE, 0x44));
    /* the pool's usage counts it, as without liboffload */
    CUmemoryPool pool;
    CHECK_CU(cuDeviceGetDefaultMemPool(&pool, 0));
    cuuint64_t used = 0, used_alone = 0;
    CHECK_CU(cuMemPoolGetAttribute(pool, CU_MEMPOOL_ATTR_USED_MEM_CURRENT, &used_alone));
    used = used_alone;
    runtime_mem_pool_attribute(pool, CU_MEMPOOL_ATTR_USED_MEM_CURRENT, &used);
    CHECK_EQ_U64(used, used_alone + SIZE);
    CHECK_CU(runtime_stream_free(d, stream, &forward));
    CHECK(!forward);
    used = used_alone;
    runtime_mem_pool_attribute(pool, CU_MEMPOOL_ATTR_USED_MEM_CURRENT, &used);
    CHECK_EQ_U64(used, used_alone);
    CHECK_EQ_U64(runtime_stream_free(d, stream, &forward), CUDA_ERROR_INVALID_VALUE);
    CHECK_EQ_U64(runtime_mem_free(d), CUDA_ERROR_INVALID_VALUE); /* freed already */
    CHECK_CU(cuStreamSynchronize(stream));
    runtime_lock();
    rt->epoch++; /* as every entry point does: the last copy's protection is over */
    pools_reap_frees(rt);
    runtime_unlock();
    CHECK(registry_find(&rt->registry, d) == NULL);
    /* a cuMemAlloc allocation is not the stream's to free */
    CHECK_CU(runtime_mem_alloc(&plain, SIZE));
    CHECK_EQ_U64(runtime_stream_free(plain, stream, &forward), CUDA_ERROR_INVALID_VALUE);
    CHECK_CU(runtime_mem_free(plain));
}

static atomic_bool gate_open;

/* A host function holding its stream until the test opens the gate. */
static void CUDA_CB gate(void *unused) {
    (void)unused;
    while (!atomic_load(&gate_open))
        ;
}

/* Freed on a stream, reused on that stream at once (stream order puts the new user after
 * the free), never on another stream before the free ran. */
TEST(freed_memory_is_reused_in_stream_order_only) {
    CUstream other;
    CHECK_CU(cuStreamCreate(&other, CU_STREAM_NON_BLOCKING));
    CUdeviceptr d, again, elsewhere;
    bool forward;
    CHECK_CU(runtime_stream_alloc(&d, SIZE, NULL, stream, &forward));
    struct allocation *first = registry_find(&rt->registry, d);
    uint64_t ordinal = first->ordinal;
    first->readonly = true; /* as a readonly component would have said of its old life */
    atomic_store(&gate_open, false);
    CHECK_CU(cuLaunchHostFunc(stream, gate, NULL)); /* the free cannot run before we say */
    CHECK_CU(cuMemsetD8Async(d, 0x21, SIZE, stream));
    CHECK_CU(runtime_stream_free(d, stream, &forward));
    CHECK_CU(runtime_stream_alloc(&elsewhere, SIZE, NULL, other, &forward));
    CHECK(elsewhere != d);
    CHECK_CU(runtime_stream_alloc(&again, SIZE, NULL, stream, &forward));
    CHECK_EQ_U64(again, d);
    atomic_store(&gate_open, true);
    struct allocation *a = registry_find(&rt->registry, again);
    CHECK(a && !a->stream_freed && !a->keep && !a->readonly && a->ordinal > ordinal);
    CHECK_EQ_U64(rt->pools.free_count, 0);
    CHECK_CU(cuMemsetD8Async(again, 0x22, SIZE, stream));
    CHECK_CU(cuStreamSynchronize(stream));
    CHECK(holds(again, SIZE, 0x22));
    CHECK_CU(runtime_mem_free(again)); /* cuMemFree of stream-ordered memory: at once */
    CHECK_CU(runtime_stream_free(elsewhere, other, &forward));
    CHECK_CU(cuStreamSynchronize(other));
    CHECK_CU(cuStreamDestroy(other));
}

/* A stream destroyed with a free queued on it: the driver may give its handle to a new
 * stream, whose work is not ordered after that free. The memory is not taken back for
 * it before the free has run. (The simulator never reuses a handle: the old one stands
 * for the new stream here.) */
TEST(a_destroyed_stream_handle_does_not_order_a_reuse) {
    CUstream gone;
    CHECK_CU(cuStreamCreate(&gone, CU_STREAM_NON_BLOCKING));
    CUdeviceptr d, again;
    bool forward;
    CHECK_CU(runtime_stream_alloc(&d, SIZE, NULL, gone, &forward));
    atomic_store(&gate_open, false);
    CHECK_CU(cuLaunchHostFunc(gone, gate, NULL));
    CHECK_CU(cuMemsetD8Async(d, 0x31, SIZE, gone));
    CHECK_CU(runtime_stream_free(d, gone, &forward));
    runtime_stream_destroyed(gone); /* as the cuStreamDestroy hook says it */
    CHECK_CU(runtime_stream_alloc(&again, SIZE, NULL, gone, &forward));
    CHECK(again != d); /* the free has not run: the memset may still write d */
    atomic_store(&gate_open, true);
    CHECK_CU(cuStreamSynchronize(gone));
    CHECK_CU(runtime_stream_free(again, gone, &forward));
    CHECK_CU(cuStreamSynchronize(gone));
    CHECK_CU(cuStreamDestroy(gone));
}

/* A pool's unused reserve above the budget goes before any live data. */
TEST(pools_are_trimmed_before_live_data_moves) {
    CUmemoryPool pool;
    CHECK_CU(cuDeviceGetDefaultMemPool(&pool, 0));
    cuuint64_t keep = UINT64_MAX;
    CHECK_CU(cuMemPoolSetAttribute(pool, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &keep));
    /* below min_size: the driver's pool serves them, its reserve counted */
    enum { SMALL = 64 };
    CUdeviceptr small[SMALL];
    bool forward;
    for (int i = 0; i < SMALL; i++) {
        CHECK_CU(runtime_stream_alloc(&small[i], 512 << 10, NULL, stream, &forward));
        CHECK(forward);
        CHECK_CU(cuMemAllocAsync(&small[i], 512 << 10, stream));
        runtime_stream_alloc_forwarded();
    }
    for (int i = 0; i < SMALL; i++) {
        CHECK_CU(runtime_stream_free(small[i], stream, &forward));
        CHECK(forward);
        CHECK_CU(cuMemFreeAsync(small[i], stream));
    }
    CHECK_CU(cuStreamSynchronize(stream));
    cuuint64_t reserved = 0;
    CHECK_CU(cuMemPoolGetAttribute(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT, &reserved));
    CHECK(reserved >= 32 * MiB);
    size_t free_bytes, total;
    CHECK_CU(runtime_mem_get_info(&free_bytes, &total));
    CHECK_EQ_U64(free_bytes, total - budget_used(&rt->budget));
    CHECK(rt->budget.untracked >= reserved); /* counted */

    /* fill the budget with live tracked data, then ask for more */
    uint64_t evictions = rt->stats.total.evictions, trims = rt->stats.pool_trims;
    CUdeviceptr live[8];
    size_t n = 0;
    while (n < 8 && budget_used(&rt->budget) + SIZE <= rt->budget.limit)
        CHECK_CU(runtime_mem_alloc(&live[n++], SIZE));
    CUdeviceptr more;
    CHECK_CU(runtime_mem_alloc(&more, SIZE));
    CHECK(rt->stats.pool_trims > trims);
    CHECK_EQ_U64(rt->stats.total.evictions, evictions); /* the reserve went, not live data */
    CHECK(budget_used(&rt->budget) <= rt->budget.limit);
    CHECK_CU(runtime_mem_free(more));
    for (size_t i = 0; i < n; i++)
        CHECK_CU(runtime_mem_free(live[i]));
}

int main(void) {
    setenv("SIMCUDA_MEMORY", "256MiB", 1);
    setenv("OFFLOAD_BUDGET", "64MiB", 1);
    if (!sim_test_setup())
        return 1;
    runtime_early_init();
    if (cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING) != CUDA_SUCCESS)
        return 1;
    CUdeviceptr warm;
    if (runtime_mem_alloc(&warm, SIZE) != CUDA_SUCCESS || runtime_mem_free(warm) != CUDA_SUCCESS)
        return 1; /* the runtime set up */
    RUN(a_mapped_range_is_evicted_and_restored_at_its_address);
    RUN(misuses_get_the_bare_driver_answer_while_evicted);
    RUN(unmapped_with_the_handle_kept_the_bytes_stay_with_the_handle);
    RUN(an_exported_or_aliased_handle_is_never_moved);
    RUN(an_exportable_request_is_tracked_with_its_properties);
    RUN(stream_ordered_memory_is_tracked_and_freed_in_stream_order);
    RUN(freed_memory_is_reused_in_stream_order_only);
    RUN(a_destroyed_stream_handle_does_not_order_a_reuse);
    RUN(pools_are_trimmed_before_live_data_moves);
    return check_summary();
}
