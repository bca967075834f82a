/*
 * copy.h — the copy engine: liboffload's own non-blocking streams, one per direction,
 * chunked asynchronous copies on them, and the events that order them against the
 * program's streams.
 *
 * Why two streams: a GPU has a copy engine per direction and PCIe is full duplex, so an
 * outgoing component's eviction and the next one's prefetch can move at the same time;
 * on one stream they would queue behind each other. Evictions stay ordered among
 * themselves (they complete oldest first, which the EVICTING list relies on), and so do
 * restores.
 *
 * Rules it keeps (runtime/README.md, "Ordering"): the eviction stream waits for the program's
 * streams with events, never with a device-wide sync; nothing is ever enqueued on a stream
 * that is capturing into a graph — when a capturing stream would have to wait, the host
 * waits instead. Callers hold the runtime lock.
 */
#ifndef OFFLOAD_COPY_H
#define OFFLOAD_COPY_H

#include "runtime/memory/registry.h"

#include <cuda.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct stream_event;

enum copy_direction { COPY_TO_HOST, COPY_TO_DEVICE };

struct copy_engine {
    CUstream to_host;            /* evictions (CU_STREAM_NON_BLOCKING) */
    CUstream to_device;          /* restores (CU_STREAM_NON_BLOCKING) */
    size_t chunk;                /* bytes per async copy */
    struct stream_event *events; /* one reusable event per program stream (uthash) */
    struct thread_tail *tails;   /* per thread: its per-thread stream's last work (uthash) */
    uint64_t wait_ns;            /* time the host spent waiting inside the engine */
    const char *failed_call;     /* the driver call that failed last, for messages */
};

/* The program's stream captures in progress (runtime_capture_begun): while any is, a
 * wait that needs the whole context fails with CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED
 * instead of calling cuCtxSynchronize, which would invalidate it. Captures begin with the
 * runtime lock held (runtime_capture_prepare), so a caller holding it sees no capture
 * begin between its look at the count and its cuCtxSynchronize. */
extern atomic_int copy_captures;

/* The legacy stream while a blocking stream captures: any use of it (an event record, a
 * wait, a query) is CUDA_ERROR_STREAM_CAPTURE_IMPLICIT and invalidates the program's
 * capture. So before each capture begins, if the program used tracked memory on the
 * legacy stream since the last time, its event is recorded (a fence): while the legacy
 * stream is unusable nothing new reaches it, and that event stands for all its work.
 * copy_legacy_fence is LEGACY_UNUSED (no tracked use), LEGACY_USED (used since the last
 * fence) or LEGACY_FENCED. Under the runtime lock. */
enum { LEGACY_UNUSED, LEGACY_USED, LEGACY_FENCED };
extern int copy_legacy_fence;
/* Before a cuStreamBeginCapture*: the fence above, when needed and possible. */
void copy_fence_legacy(struct copy_engine *ce);

/* Creates the two streams. */
CUresult copy_engine_start(struct copy_engine *ce);

/* The calling thread's id for stream_use.thread, when stream is CU_STREAM_PER_THREAD (0
 * otherwise): a number no other thread of the process ever had, never pthread_self(),
 * which a new thread inherits from one that exited while its per-thread stream may
 * still run what it queued (tests/progs/thread_reuse_evict). */
uint64_t copy_thread_id(CUstream stream);

/* True when `stream` is capturing (or its capture was invalidated). */
bool copy_stream_capturing(CUstream stream);

/* Before a cuStreamBeginCapture* on `stream` (the runtime lock held until the capture has
 * begun, so no eviction looks at the stream in between): records the stream's mark, an
 * event after the work it has queued so far. */
CUresult copy_mark_before_capture(struct copy_engine *ce, CUstream stream);

/* After the capture began on `stream`: its mark stands for this capture (its id). */
void copy_capture_begun(struct copy_engine *ce, CUstream stream);

/* A use of tracked memory on `stream` (residency.c, every user it notes): the legacy
 * stream's is fenced at the next capture's begin (above); the calling thread's per-thread
 * stream's makes the call's end record the thread's tail. */
void copy_note_use(CUstream stream);

/* Whether the calling thread's call noted a use on its per-thread stream since its last
 * copy_note_per_thread_work. Inline, initial-exec TLS: every call's end asks (a function
 * call and __tls_get_addr there cost launch_overhead_instr 18 instructions). */
extern _Thread_local bool copy_per_thread_used __attribute__((tls_model("initial-exec")));
static inline bool copy_per_thread_pending(void) {
    return copy_per_thread_used;
}

/* After such a call has reached the driver, lock held: records the thread's tail, an event
 * after its per-thread stream's work (not while that stream captures: the tail stays its
 * last real work). Other threads, which cannot name that stream, wait for the tail
 * instead of the whole context. `same_context`: the calling thread's current context is
 * the engine's (else the thread has no tail from here on). */
void copy_note_per_thread_work(struct copy_engine *ce, bool same_context);

/* Orders the eviction stream after the real work queued so far on every stream that used
 * a: for a capturing user, what it had queued when its capture began (its mark); what it
 * captured runs only at cuGraphLaunch, which makes the graph's memory resident. Fails
 * with CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED (the caller then leaves a resident) when a
 * user is in a capture that has no mark (it joined one by a cuStreamWaitEvent), or when
 * a user it cannot name (another thread's per-thread stream without a tail, more users
 * than an allocation keeps) needs a context sync while a capture is in progress. */
CUresult copy_after_users(struct copy_engine *ce, const struct allocation *a);

/* Host waits until the real work queued so far on every stream that used a is done (a
 * capturing user's: its mark, when it has one). */
CUresult copy_sync_users(struct copy_engine *ce, const struct allocation *a);

/* cuCtxSynchronize, or CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED while a capture is in
 * progress (it would invalidate it, in every capture mode). */
CUresult copy_sync_context(struct copy_engine *ce);

/* Host waits until the work queued so far on `stream` (not capturing) is done, as a
 * synchronous driver call on it would: an event recorded on CU_STREAM_LEGACY also waits
 * for the blocking streams' earlier work. */
CUresult copy_sync_stream(struct copy_engine *ce, CUstream stream);

/* Chunked asynchronous copies, each on its direction's stream. */
CUresult copy_to_host(struct copy_engine *ce, void *dst, CUdeviceptr src, size_t bytes);
CUresult copy_to_device(struct copy_engine *ce, CUdeviceptr dst, const void *src, size_t bytes);

/* Records ev on the stream of `dir` (creating it when *ev is NULL). */
CUresult copy_record(struct copy_engine *ce, enum copy_direction dir, CUevent *ev);

/* Orders the stream of `dir` after ev (recorded on the other one). */
CUresult copy_after_event(struct copy_engine *ce, enum copy_direction dir, CUevent ev);

/* Host waits for everything queued on the stream of `dir`. */
CUresult copy_drain(struct copy_engine *ce, enum copy_direction dir);

/* Host waits for ev; the time counts in wait_ns. */
CUresult copy_sync_event(struct copy_engine *ce, CUevent ev);

/* Orders `stream` after ev: cuStreamWaitEvent, or a host wait when stream is capturing. */
CUresult copy_order_stream(struct copy_engine *ce, CUstream stream, CUevent ev);

/* Forgets the event kept for a destroyed stream. */
void copy_forget_stream(struct copy_engine *ce, CUstream stream);

#endif /* OFFLOAD_COPY_H */
