/*
 * runtime.h — the contract between interpose/ (the hooks) and runtime/ (the policy
 * and state). A hook normalises its arguments, calls one of these, then forwards the
 * call to the real driver through the entry-point table (interpose/driver.h).
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

/* cuMemGetAddressRange_v2 for tracked allocations: true and base/size filled when
 * dptr lies inside one (resident or not); false to let the driver answer. */
bool runtime_address_range(CUdeviceptr dptr, CUdeviceptr *base, size_t *size);

/* Before a kernel launch reaches the driver: every tracked allocation referenced by
 * the parameters (kernelParams or `extra`) is resident or being restored, and
 * `stream` is ordered after those restores. */
CUresult runtime_before_launch(CUfunction f, CUstream stream, void **params, void **extra);

/* Before a memcpy/memset touching [ptr, ptr+bytes) reaches the driver. */
CUresult runtime_before_access(CUdeviceptr ptr, size_t bytes, CUstream stream);

/* The same for a copy touching two device ranges (either size may be 0): both are made
 * resident in one call, so making room for one can never evict the other. Prefer it to two
 * runtime_before_access calls. */
CUresult runtime_before_access2(CUdeviceptr ptr, size_t bytes, CUdeviceptr ptr2, size_t bytes2,
                                CUstream stream);

/* cuGraphInstantiate*: remember the tracked allocations the graph's kernel nodes use. */
void runtime_graph_instantiated(CUgraphExec exec, CUgraph graph);

/* cuGraphLaunch: make those allocations resident, `stream` ordered after. */
CUresult runtime_before_graph_launch(CUgraphExec exec, CUstream stream);

/*
 * Multi-threaded programs: between a runtime_before_* and the driver call that follows,
 * another thread could evict what the call needs (its eviction cannot wait for work not
 * yet queued). The begin/end pairs close that window: runtime_begin_* does what the
 * matching runtime_before_* does and, when it returns CUDA_SUCCESS, keeps the runtime
 * locked; the hook makes the driver call and then calls runtime_end_call() — always, on
 * every path (it is a no-op when nothing is held). Hold time: one driver call. Several
 * begins for one driver call (a copy's two ranges) nest: the first takes the lock, all of
 * them share one protection, one runtime_end_call releases it.
 */
CUresult runtime_begin_launch(CUfunction f, CUstream stream, void **params, void **extra);
CUresult runtime_begin_access(CUdeviceptr ptr, size_t bytes, CUdeviceptr ptr2, size_t bytes2,
                              CUstream stream);
CUresult runtime_begin_graph_launch(CUgraphExec exec, CUstream stream);
void runtime_end_call(void);

/* cuGraphExecDestroy / cuStreamDestroy: forget the handle. */
void runtime_graph_exec_destroyed(CUgraphExec exec);
void runtime_stream_destroyed(CUstream stream);

#endif /* OFFLOAD_RUNTIME_H */
