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
    uint64_t wait_ns;            /* time the host spent waiting inside the engine */
    const char *failed_call;     /* the driver call that failed last, for messages */
};

/* The program's stream captures in progress (runtime_capture_begun): while any is, a
 * wait that needs the whole context fails with CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED
 * instead of calling cuCtxSynchronize, which would invalidate it. */
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
/* A tracked allocation's user is `stream` (residency.c). */
void copy_note_use(CUstream stream);
/* Before a cuStreamBeginCapture*: the fence above, when needed and possible. */
void copy_fence_legacy(struct copy_engine *ce);

/* Creates the two streams. */
CUresult copy_engine_start(struct copy_engine *ce);

/* The calling thread's id for stream_use.thread, when stream is CU_STREAM_PER_THREAD. */
uint64_t copy_thread_id(CUstream stream);

/* True when `stream` is capturing (or its capture was invalidated). */
bool copy_stream_capturing(CUstream stream);

/* Orders the eviction stream after the work queued so far on every stream that used a.
 * Fails with CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED when a user is capturing (the caller
 * then leaves a resident); falls back to a context sync for streams it cannot name. */
CUresult copy_after_users(struct copy_engine *ce, const struct allocation *a);

/* Host waits until the work queued so far on every stream that used a is done. */
CUresult copy_sync_users(struct copy_engine *ce, const struct allocation *a);

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
