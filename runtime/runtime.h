/*
 * runtime.h — the contract between interpose/ (the hooks) and runtime/ (the policy
 * and state). A hook normalises its arguments, calls one of these, then forwards the
 * call to the real driver through the entry-point table (driver/driver.h); calls that
 * use device memory are bracketed by a runtime_begin_* and runtime_end_call().
 *
 * Streams: the hook passes the stream the driver will run the work on. A NULL stream
 * from a legacy entry point is passed as CU_STREAM_LEGACY, from a per-thread (_ptsz,
 * _ptds) entry point as CU_STREAM_PER_THREAD, so the runtime never guesses.
 *
 * Every function returns the driver's own error codes; CUDA_SUCCESS means "go on and
 * forward the call". All are thread-safe.
 */
#ifndef OFFLOAD_RUNTIME_H
#define OFFLOAD_RUNTIME_H

#include <cuda.h>
#include <stdbool.h>
#include <stddef.h>

/* Library constructor: reads the configuration, makes no CUDA call. On a config error
 * prints "PATH:LINE: message" and exits with status 2, before main. */
void runtime_early_init(void);

/* Library destructor / exit: summary line, stats file, record file. */
void runtime_shutdown(void);

/* cuMemAlloc_v2: tracked (VMM-backed, stable address) at or above min_size, else
 * passed through and counted against the budget. */
CUresult runtime_mem_alloc(CUdeviceptr *dptr, size_t bytes);

/* cuMemFree_v2. Unknown pointers pass through so the driver returns its own error. */
CUresult runtime_mem_free(CUdeviceptr dptr);

/* cuMemGetInfo_v2: the budget as total, what is left of it as free. */
CUresult runtime_mem_get_info(size_t *free_bytes, size_t *total_bytes);

/* cuDeviceTotalMem_v2 (cudaDeviceProp.totalGlobalMem): for liboffload's device, what
 * liboffload can hold for the program, the device's memory and as much again as the host
 * has, up to four times the device's (vmm.c says why); the driver's answer otherwise. */
CUresult runtime_device_total_mem(size_t *bytes, CUdevice dev);

/* cuMemGetAddressRange_v2 for tracked allocations: true and base/size filled when
 * dptr lies inside one (resident or not); false to let the driver answer. */
bool runtime_address_range(CUdeviceptr dptr, CUdeviceptr *base, size_t *size);

/* cuGraphInstantiate*: remember the tracked allocations the graph's kernel nodes use. */
void runtime_graph_instantiated(CUgraphExec exec, CUgraph graph);

/*
 * Calls that use device memory are bracketed: runtime_begin_* prepares the call and, when
 * it returns CUDA_SUCCESS, keeps the runtime locked; the hook makes the driver call and
 * then calls runtime_end_call() — always, on every path (it is a no-op when nothing is
 * held; interpose/hook.h's HOOK_BRACKETED does both). Holding the lock over the driver
 * call closes the window in which another thread could evict what the call is about to
 * use (its eviction cannot wait for work not yet queued). Hold time: one driver call.
 * Several begins for one driver call (a batch's operations) nest: the first takes the
 * lock, all of them share one protection, one runtime_end_call releases it.
 *
 * runtime_begin_launch: every tracked allocation referenced by the parameters
 *   (kernelParams or `extra`) is resident or being restored, `stream` ordered after.
 * runtime_begin_access: the same for a memcpy/memset touching [ptr, ptr+bytes) and
 *   [ptr2, ptr2+bytes2) (either size may be 0). A copy's two ranges go in one call, so
 *   making room for one can never evict the other.
 * runtime_begin_upload: runtime_begin_access for a host-to-device copy of `bytes` from
 *   `host` to dst; a small one is also read for the tracked addresses it stores, which
 *   later launches passing dst's allocation reach (runtime/launch/stored_pointers.h).
 * runtime_begin_copy: the same for a copy between unified addresses (cuMemcpy), either of
 *   which may be host memory.
 * runtime_begin_graph_launch: the allocations remembered for `exec`.
 */
CUresult runtime_begin_launch(CUfunction f, CUstream stream, void **params, void **extra);
CUresult runtime_begin_access(CUdeviceptr ptr, size_t bytes, CUdeviceptr ptr2, size_t bytes2,
                              CUstream stream);
CUresult runtime_begin_upload(CUdeviceptr dst, const void *host, size_t bytes, CUstream stream);
CUresult runtime_begin_copy(CUdeviceptr dst, CUdeviceptr src, size_t bytes, CUstream stream);
CUresult runtime_begin_graph_launch(CUgraphExec exec, CUstream stream);
void runtime_end_call(void);

/* A synchronous device-to-host copy of [src, src+bytes) on `stream` (CU_STREAM_LEGACY or
 * CU_STREAM_PER_THREAD), served from the host backup when the range lies in one evicted
 * allocation: *served is set and the bytes are in dst, after the host waited for the
 * stream as the driver's copy would. Restoring instead would copy the bytes twice and
 * evict something else for them. Otherwise *served stays false: make the call as usual.
 * Returns a driver error of the wait, as the copy would have. */
CUresult runtime_read_evicted(void *dst, CUdeviceptr src, size_t bytes, CUstream stream,
                              bool *served);

/* The program is about to block in a synchronize call. When a component switch left a
 * prefetch waiting for the outgoing component's evictions and they have landed, issue it
 * now: it then overlaps the program's wait instead of starting at the next component's
 * first launch. Never waits for the evictions itself: the program may be about to
 * release, from the host, work those evictions wait for. */
void runtime_before_host_wait(void);

/*
 * Program-mapped memory (runtime/vmm.c): each answers the whole call, the driver's own
 * answer wherever liboffload does not take part. cuMemCreate of device memory in
 * liboffload's context returns a liboffload handle; its first whole mapping is a tracked
 * allocation at the program's address; see vmm.c for what stays the driver's.
 */
CUresult runtime_vmm_create(CUmemGenericAllocationHandle *handle, size_t size,
                            const CUmemAllocationProp *prop, unsigned long long flags);
CUresult runtime_vmm_release(CUmemGenericAllocationHandle handle);
CUresult runtime_vmm_map(CUdeviceptr ptr, size_t size, size_t offset,
                         CUmemGenericAllocationHandle handle, unsigned long long flags);
CUresult runtime_vmm_unmap(CUdeviceptr ptr, size_t size);
CUresult runtime_vmm_get_access(unsigned long long *flags, const CUmemLocation *location,
                                CUdeviceptr ptr);
CUresult runtime_vmm_retain(CUmemGenericAllocationHandle *handle, void *addr);
CUresult runtime_vmm_properties(CUmemAllocationProp *prop, CUmemGenericAllocationHandle handle);
CUresult runtime_vmm_export(void *shareable, CUmemGenericAllocationHandle handle,
                            CUmemAllocationHandleType type, unsigned long long flags);
CUresult runtime_vmm_address_free(CUdeviceptr ptr, size_t size);

/* cuMemSetAccess, bracketed like a copy: the tracked mappings in [ptr, ptr+size) are mapped
 * (restored when evicted) for the driver call, which the hook then makes unchanged. */
CUresult runtime_begin_set_access(CUdeviceptr ptr, size_t size, const CUmemAccessDesc *desc,
                                  size_t count);

/*
 * Stream-ordered memory (runtime/stream_alloc.c). runtime_stream_alloc serves
 * cuMemAllocAsync (pool NULL: the device's current pool) or cuMemAllocFromPoolAsync from
 * liboffload's memory, or sets *forward: the hook then makes its driver call and tells
 * runtime_stream_alloc_forwarded. runtime_stream_free: *forward when the pointer is not
 * liboffload's.
 */
CUresult runtime_stream_alloc(CUdeviceptr *dptr, size_t bytes, CUmemoryPool pool, CUstream stream,
                              bool *forward);
void runtime_stream_alloc_forwarded(void);
CUresult runtime_stream_free(CUdeviceptr dptr, CUstream stream, bool *forward);

/* cuMemPoolGetAttribute answered `value`: the usage attributes gain what liboffload serves
 * in the pool's name. cuMemPoolSetAttribute succeeded (a high-water mark reset). */
void runtime_mem_pool_attribute(CUmemoryPool pool, CUmemPool_attribute attr, void *value);
void runtime_mem_pool_attribute_set(CUmemoryPool pool, CUmemPool_attribute attr);

/* cuMemPoolCreate succeeded / cuMemPoolDestroy is about to be made. */
void runtime_mem_pool_created(CUmemoryPool pool, const CUmemPoolProps *props);
void runtime_mem_pool_destroyed(CUmemoryPool pool);

/* cuGraphExecDestroy / cuStreamDestroy: forget the handle. */
void runtime_graph_exec_destroyed(CUgraphExec exec);
void runtime_stream_destroyed(CUstream stream);

/* Around a cuStreamBeginCapture* on `stream` (normalised as for a launch):
 * runtime_capture_prepare takes the runtime lock, marks the work the stream has queued
 * so far and fences the legacy stream (memory/copy.h: a blocking stream's capture makes
 * it unusable); the hook makes the driver call; runtime_capture_begun(stream, r) with
 * its answer counts the capture and releases the lock. While the stream captures, an
 * eviction of what it used waits for that mark, not for the stream (its captured work
 * runs at cuGraphLaunch). Beginning under the lock means no eviction or context wait of
 * another thread sees the stream, or the count, change under it.
 * A cuStreamEndCapture* answered r (it ended the capture when r is CUDA_SUCCESS,
 * CUDA_ERROR_STREAM_CAPTURE_INVALIDATED or CUDA_ERROR_STREAM_CAPTURE_UNJOINED). The runtime counts
 * the captures in progress: while one is, whatever its thread, it never synchronises the context
 * (cuCtxSynchronize conflicts with a capture in every mode and would invalidate it). No lock. */
void runtime_capture_prepare(CUstream stream);
void runtime_capture_begun(CUstream stream, CUresult r);

/* A cuStreamWaitEvent on `stream` while captures are in progress (no lock, one atomic
 * load): runtime_capture_prepare, the driver call, then runtime_capture_joined with its
 * answer: when the wait made the stream join a capture, its mark stands for it. Releases
 * the lock. */
bool runtime_captures_in_progress(void);
void runtime_capture_joined(CUstream stream, CUresult r);
void runtime_capture_ended(CUresult r);

#endif /* OFFLOAD_RUNTIME_H */
