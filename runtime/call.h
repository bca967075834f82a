/*
 * call.h — the bracket around every hooked driver call that touches tracked memory, and
 * the call's set of allocations. Internal to runtime/ (the entry points in alloc.c,
 * work.c, lifetime.c).
 *
 * A "prepare" (runtime_begin_*) takes the runtime lock, collects the tracked allocations
 * the call touches into rt->scratch (each once, protected by the call's epoch so nothing
 * the call needs is evicted for it), makes them usable on the call's stream, and keeps the
 * lock until runtime_end_call, after the driver call was made: no eviction can slip in
 * between a restore and the work that needs it.
 */
#ifndef OFFLOAD_CALL_H
#define OFFLOAD_CALL_H

#include "runtime/state.h"

/* The allocations collected so far for the current call (in rt->scratch). */
struct collect {
    size_t count;
    bool oom; /* the scratch array could not grow: some were not collected */
};

/* Adds the tracked allocation containing value (once per call) to rt->scratch, and with a
 * program mapping the mappings a buffer at value may go on into (memory/mapped.h). */
void call_collect_value(void *collect, CUdeviceptr value);

/* Collects the tracked allocations [ptr, ptr+bytes) touches, allocation by allocation (a
 * copy may span adjacent ranges), and nothing beyond. */
void call_collect_range(struct collect *c, CUdeviceptr ptr, size_t bytes);

/* Makes every collected allocation usable on stream; reaps evictions, polls the plan's
 * prefetches, releases the call's pooled memory. */
CUresult call_use_collected(size_t n, CUstream stream);

/* liboffload's own driver work during a program's call (restores, evictions, their host
 * waits, prefetches) is not the program's, and stream capture cannot see it anyway: it
 * runs in RELAXED capture mode, so that a thread capturing in GLOBAL or THREAD_LOCAL mode
 * (or any thread while another captures in GLOBAL mode) does not have its capture
 * invalidated by a cuMemCreate or cuEventSynchronize it never made, as PyTorch's
 * allocator runs its own under CUDAStreamCaptureModeGuard. The thread's mode is restored
 * by call_relax_end. Brackets nest (the outermost exchanges); they never enclose the
 * program's own driver call, which keeps the program's mode and fails as it would
 * without liboffload. */
void call_relax_begin(void);
void call_relax_end(void);

/* Whether the calling thread's capture mode allows a potentially unsafe call now: asked
 * with one that changes nothing (cuEventQuery of an event never recorded), in the
 * program's mode. A program call that liboffload carries out with several unsafe driver
 * calls (cuMemFree: unmap, release, address free; cuMemAlloc: room, reserve, create, map)
 * then fails as the driver's own would, before anything is done:
 * CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, and the capture invalidated. Lock held. */
CUresult call_unsafe_allowed(void);

/* Fast out without the lock: nothing tracked, nothing recorded. */
static inline bool call_nothing_to_do(void) {
    return atomic_load_explicit(&offload_runtime.tracked_count, memory_order_relaxed) == 0;
}

/* Whether the calling thread holds the lock between a runtime_begin_* and its
 * runtime_end_call (per-thread, so a thread's end never releases another's call).
 * initial-exec: read up to three times per launch, and the default model for a shared
 * object calls __tls_get_addr each time (~11 instructions). One byte of static TLS, which
 * glibc's surplus covers even when liboffload is dlopen'd rather than preloaded. Inline
 * with the two functions below: they are on every launch's path. */
extern _Thread_local bool call_holds_lock __attribute__((tls_model("initial-exec")));

/* The start of a prepare: takes the lock unless this thread's begun call holds it already
 * (a hook preparing several ranges for one driver call); returns whether it was held. */
static inline bool call_prepare_lock(void) {
    if (call_holds_lock)
        return true;
    runtime_lock();
    return false;
}

/* The end of a prepare: keep the lock for the driver call when it may go on, else release
 * it. A nested prepare leaves the lock to its outer call. Returns r. */
static inline CUresult call_prepare_unlock(CUresult r, bool keep, bool nested) {
    if (nested)
        return r;
    if (keep && r == CUDA_SUCCESS)
        call_holds_lock = true;
    else
        runtime_unlock();
    return r;
}

/* A new call's epoch; a nested prepare shares its outer call's (its allocations stay
 * protected from the nested one's evictions). */
static inline void call_prepare_epoch(bool nested) {
    if (!nested)
        offload_runtime.epoch++;
}

/* Whether this thread is between a prepare and its runtime_end_call (holds the lock). */
bool call_in_progress(void);

#endif /* OFFLOAD_CALL_H */
