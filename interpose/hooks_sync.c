/*
 * hooks_sync.c — the program's host waits: cuStreamSynchronize (and its per-thread
 * twin), cuEventSynchronize, cuCtxSynchronize (and its 13.0 ABI, cuCtxSynchronize_v2,
 * which waits for a given context: cudart 13 asks for it).
 *
 * Before blocking, each lets the runtime use the wait (runtime_before_host_wait): a
 * program that queues a component's kernels and then waits for them would otherwise
 * leave the next component's prefetch to its first launch, after the wait, with nothing
 * left to overlap it with. The driver's wait itself, and its result, are untouched.
 */
#include "driver/driver.h"
#include "interpose/export.h"
#include "interpose/hook.h"
#include "runtime/runtime.h"

OFFLOAD_EXPORT CUresult cuStreamSynchronize(CUstream hStream) {
    runtime_before_host_wait();
    return HOOK_FORWARD(cuStreamSynchronize, (hStream));
}

OFFLOAD_EXPORT CUresult cuStreamSynchronize_ptsz(CUstream hStream) {
    runtime_before_host_wait();
    return HOOK_FORWARD(cuStreamSynchronize_ptsz, (hStream));
}

OFFLOAD_EXPORT CUresult cuEventSynchronize(CUevent hEvent) {
    runtime_before_host_wait();
    return HOOK_FORWARD(cuEventSynchronize, (hEvent));
}

OFFLOAD_EXPORT CUresult cuCtxSynchronize(void) {
    runtime_before_host_wait();
    return HOOK_FORWARD(cuCtxSynchronize, ());
}

OFFLOAD_EXPORT CUresult cuCtxSynchronize_v2(CUcontext ctx) {
    runtime_before_host_wait();
    return HOOK_FORWARD(cuCtxSynchronize_v2, (ctx));
}
