/*
 * copy.c — offload streams, chunked copies, cross-stream events.
 */
#include "runtime/memory/copy.h"

#include "base/hash.h"
#include "base/log.h"
#include "driver/cuerr.h"
#include "driver/driver.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

/* Large enough to keep the copy engine at full speed, small enough that a restore's first
 * bytes land early and other work can interleave on the link. */
#define COPY_CHUNK_BYTES (16u << 20)

struct stream_event {
    CUstream stream;
    CUevent event;
    UT_hash_handle hh;
};

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

CUresult copy_engine_start(struct copy_engine *ce) {
    ce->chunk = COPY_CHUNK_BYTES;
    CUresult r = driver()->cuStreamCreate(&ce->to_host, CU_STREAM_NON_BLOCKING);
    if (r == CUDA_SUCCESS)
        r = driver()->cuStreamCreate(&ce->to_device, CU_STREAM_NON_BLOCKING);
    return r;
}

static CUstream stream_of(const struct copy_engine *ce, enum copy_direction dir) {
    return dir == COPY_TO_HOST ? ce->to_host : ce->to_device;
}

uint64_t copy_thread_id(CUstream stream) {
    return stream == CU_STREAM_PER_THREAD ? (uint64_t)(uintptr_t)pthread_self() : 0;
}

/* CAPTURING: the stream captures; UNUSABLE: the legacy stream while a blocking stream
 * captures (cuStreamIsCapturing answers CUDA_ERROR_STREAM_CAPTURE_IMPLICIT, and does not
 * invalidate anything: the one question that may be asked of it then). */
enum stream_capture { NOT_CAPTURING, CAPTURING, UNUSABLE };

static enum stream_capture stream_capture(CUstream stream) {
    CUstreamCaptureStatus status = CU_STREAM_CAPTURE_STATUS_NONE;
    if (!driver()->cuStreamIsCapturing)
        return NOT_CAPTURING;
    CUresult r = driver()->cuStreamIsCapturing(stream, &status);
    if (r == CUDA_ERROR_STREAM_CAPTURE_IMPLICIT)
        return UNUSABLE;
    if (r != CUDA_SUCCESS)
        return NOT_CAPTURING;
    return status != CU_STREAM_CAPTURE_STATUS_NONE ? CAPTURING : NOT_CAPTURING;
}

bool copy_stream_capturing(CUstream stream) {
    return stream_capture(stream) != NOT_CAPTURING;
}

int copy_legacy_fence = LEGACY_UNUSED;

static bool is_legacy(CUstream stream) {
    return stream == CU_STREAM_LEGACY || stream == NULL;
}

void copy_note_use(CUstream stream) {
    if (is_legacy(stream))
        copy_legacy_fence = LEGACY_USED;
}

/* The reusable event for a program stream. */
static CUresult stream_event(struct copy_engine *ce, CUstream stream, CUevent *out) {
    struct stream_event *se;
    HASH_FIND(hh, ce->events, &stream, sizeof stream, se);
    if (!se) {
        se = calloc(1, sizeof *se);
        if (!se)
            return CUDA_ERROR_OUT_OF_MEMORY;
        CUresult r = cuerr_note(&ce->failed_call, "cuEventCreate",
                                driver()->cuEventCreate(&se->event, CU_EVENT_DISABLE_TIMING));
        if (r != CUDA_SUCCESS) {
            free(se);
            return r;
        }
        se->stream = stream;
        bool hash_oom = false;
        HASH_ADD(hh, ce->events, stream, sizeof se->stream, se);
        if (hash_oom) {
            driver()->cuEventDestroy_v2(se->event);
            free(se);
            return CUDA_ERROR_OUT_OF_MEMORY;
        }
    }
    *out = se->event;
    return CUDA_SUCCESS;
}

/* A stream the calling thread can name: every stream but another thread's per-thread one. */
static bool nameable(const struct stream_use *u) {
    return u->stream != CU_STREAM_PER_THREAD || u->thread == copy_thread_id(CU_STREAM_PER_THREAD);
}

static bool needs_context_sync(const struct allocation *a) {
    if (a->streams_overflow)
        return true;
    for (unsigned i = 0; i < a->stream_count; i++)
        if (!nameable(&a->streams[i]))
            return true;
    return false;
}

atomic_int copy_captures;

static CUresult context_sync(struct copy_engine *ce) {
    if (atomic_load_explicit(&copy_captures, memory_order_acquire) > 0) {
        ce->failed_call = "cuCtxSynchronize (a stream capture is in progress)";
        return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    }
    uint64_t t0 = now_ns();
    CUresult r = cuerr_note(&ce->failed_call, "cuCtxSynchronize", driver()->cuCtxSynchronize());
    ce->wait_ns += now_ns() - t0;
    return r;
}

/* The legacy stream is unusable and its fence event stands for all its work. */
static bool fenced(enum stream_capture c) {
    return c == UNUSABLE && copy_legacy_fence == LEGACY_FENCED;
}

CUresult copy_after_users(struct copy_engine *ce, const struct allocation *a) {
    enum stream_capture cap[ALLOCATION_MAX_STREAMS];
    for (unsigned i = 0; i < a->stream_count; i++) {
        cap[i] = nameable(&a->streams[i]) ? stream_capture(a->streams[i].stream) : NOT_CAPTURING;
        if (cap[i] != NOT_CAPTURING && !fenced(cap[i]))
            return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    }
    if (needs_context_sync(a)) {
        /* A user we cannot record an event on: wait for the whole context, rare. */
        return context_sync(ce);
    }
    for (unsigned i = 0; i < a->stream_count; i++) {
        CUevent ev;
        CUresult r = stream_event(ce, a->streams[i].stream, &ev);
        if (r == CUDA_SUCCESS && cap[i] == NOT_CAPTURING) /* else the fence, as recorded */
            r = cuerr_note(&ce->failed_call, "cuEventRecord",
                           driver()->cuEventRecord(ev, a->streams[i].stream));
        if (r == CUDA_SUCCESS)
            r = cuerr_note(&ce->failed_call, "cuStreamWaitEvent",
                           driver()->cuStreamWaitEvent(ce->to_host, ev, 0));
        if (r != CUDA_SUCCESS)
            return r;
    }
    return CUDA_SUCCESS;
}

CUresult copy_sync_users(struct copy_engine *ce, const struct allocation *a) {
    if (needs_context_sync(a))
        return context_sync(ce);
    for (unsigned i = 0; i < a->stream_count; i++) {
        CUstream s = a->streams[i].stream;
        enum stream_capture c = stream_capture(s);
        if (c == CAPTURING)
            continue; /* nothing of it runs until the graph is launched */
        CUevent ev;
        if (c == UNUSABLE && !fenced(c))
            return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
        CUresult r = c == UNUSABLE ? stream_event(ce, s, &ev) : copy_sync_stream(ce, s);
        if (r == CUDA_SUCCESS && c == UNUSABLE)
            r = copy_sync_event(ce, ev);
        if (r != CUDA_SUCCESS)
            return r;
    }
    return CUDA_SUCCESS;
}

CUresult copy_sync_stream(struct copy_engine *ce, CUstream stream) {
    CUevent ev;
    CUresult r = stream_event(ce, stream, &ev);
    if (r == CUDA_SUCCESS)
        r = cuerr_note(&ce->failed_call, "cuEventRecord", driver()->cuEventRecord(ev, stream));
    if (r == CUDA_SUCCESS)
        r = copy_sync_event(ce, ev);
    return r;
}

void copy_fence_legacy(struct copy_engine *ce) {
    CUevent ev;
    if (copy_legacy_fence != LEGACY_USED || stream_capture(CU_STREAM_LEGACY) != NOT_CAPTURING)
        return; /* nothing to fence, or unusable already: the fence of that capture stands */
    if (stream_event(ce, CU_STREAM_LEGACY, &ev) == CUDA_SUCCESS &&
        driver()->cuEventRecord(ev, CU_STREAM_LEGACY) == CUDA_SUCCESS)
        copy_legacy_fence = LEGACY_FENCED;
}

CUresult copy_to_host(struct copy_engine *ce, void *dst, CUdeviceptr src, size_t bytes) {
    for (size_t done = 0; done < bytes; done += ce->chunk) {
        size_t n = bytes - done < ce->chunk ? bytes - done : ce->chunk;
        CUresult r = cuerr_note(
            &ce->failed_call, "cuMemcpyDtoHAsync_v2",
            driver()->cuMemcpyDtoHAsync_v2((char *)dst + done, src + done, n, ce->to_host));
        if (r != CUDA_SUCCESS)
            return r;
    }
    return CUDA_SUCCESS;
}

CUresult copy_to_device(struct copy_engine *ce, CUdeviceptr dst, const void *src, size_t bytes) {
    for (size_t done = 0; done < bytes; done += ce->chunk) {
        size_t n = bytes - done < ce->chunk ? bytes - done : ce->chunk;
        CUresult r = cuerr_note(
            &ce->failed_call, "cuMemcpyHtoDAsync_v2",
            driver()->cuMemcpyHtoDAsync_v2(dst + done, (const char *)src + done, n, ce->to_device));
        if (r != CUDA_SUCCESS)
            return r;
    }
    return CUDA_SUCCESS;
}

CUresult copy_record(struct copy_engine *ce, enum copy_direction dir, CUevent *ev) {
    if (!*ev) {
        CUresult r = cuerr_note(&ce->failed_call, "cuEventCreate",
                                driver()->cuEventCreate(ev, CU_EVENT_DISABLE_TIMING));
        if (r != CUDA_SUCCESS) {
            *ev = NULL;
            return r;
        }
    }
    return cuerr_note(&ce->failed_call, "cuEventRecord",
                      driver()->cuEventRecord(*ev, stream_of(ce, dir)));
}

CUresult copy_after_event(struct copy_engine *ce, enum copy_direction dir, CUevent ev) {
    return cuerr_note(&ce->failed_call, "cuStreamWaitEvent",
                      driver()->cuStreamWaitEvent(stream_of(ce, dir), ev, 0));
}

CUresult copy_drain(struct copy_engine *ce, enum copy_direction dir) {
    uint64_t t0 = now_ns();
    CUresult r = cuerr_note(&ce->failed_call, "cuStreamSynchronize",
                            driver()->cuStreamSynchronize(stream_of(ce, dir)));
    ce->wait_ns += now_ns() - t0;
    return r;
}

CUresult copy_sync_event(struct copy_engine *ce, CUevent ev) {
    if (driver()->cuEventQuery(ev) == CUDA_SUCCESS)
        return CUDA_SUCCESS;
    uint64_t t0 = now_ns();
    CUresult r =
        cuerr_note(&ce->failed_call, "cuEventSynchronize", driver()->cuEventSynchronize(ev));
    ce->wait_ns += now_ns() - t0;
    return r;
}

CUresult copy_order_stream(struct copy_engine *ce, CUstream stream, CUevent ev) {
    if (stream == ce->to_device || stream == ce->to_host)
        return CUDA_SUCCESS;
    if (copy_stream_capturing(stream))
        return copy_sync_event(ce, ev);
    return cuerr_note(&ce->failed_call, "cuStreamWaitEvent",
                      driver()->cuStreamWaitEvent(stream, ev, 0));
}

void copy_forget_stream(struct copy_engine *ce, CUstream stream) {
    struct stream_event *se;
    HASH_FIND(hh, ce->events, &stream, sizeof stream, se);
    if (se) {
        HASH_DELETE(hh, ce->events, se);
        driver()->cuEventDestroy_v2(se->event);
        free(se);
    }
}
