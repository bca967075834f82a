/*
 * copy.c — offload streams, chunked copies, cross-stream events.
 */
#include "runtime/memory/copy.h"

#include "base/hash.h"
#include "base/log.h"
#include "driver/cuerr.h"
#include "driver/driver.h"

#include <stdlib.h>
#include <time.h>

/* Large enough to keep the copy engine at full speed, small enough that a restore's first
 * bytes land early and other work can interleave on the link. */
#define COPY_CHUNK_BYTES (16u << 20)

/* The work a stream had queued when it began capturing (copy_mark_before_capture): what
 * an eviction waits for instead of the stream while it captures. Valid for capture `id`
 * only, once that capture has begun. */
struct capture_mark {
    CUevent event;
    uint64_t id;
    bool valid;
};

struct stream_event {
    CUstream stream;
    CUevent event;
    struct capture_mark mark;
    UT_hash_handle hh;
};

/* CU_STREAM_PER_THREAD names the calling thread's stream: its mark is the thread's. */
static _Thread_local struct capture_mark per_thread_mark;

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

static _Atomic uint64_t threads_named;
static _Thread_local uint64_t thread_id __attribute__((tls_model("initial-exec")));

uint64_t copy_thread_id(CUstream stream) {
    if (stream != CU_STREAM_PER_THREAD)
        return 0;
    if (!thread_id) /* this thread's first per-thread use: the next number, from 1 */
        thread_id = atomic_fetch_add_explicit(&threads_named, 1, memory_order_relaxed) + 1;
    return thread_id;
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

/* The stream's entry (created when `create`), NULL when there is none or no memory. */
static struct stream_event *entry_of(struct copy_engine *ce, CUstream stream, bool create) {
    struct stream_event *se;
    HASH_FIND(hh, ce->events, &stream, sizeof stream, se);
    if (se || !create)
        return se;
    CUevent ev;
    if (stream_event(ce, stream, &ev) != CUDA_SUCCESS)
        return NULL;
    HASH_FIND(hh, ce->events, &stream, sizeof stream, se);
    return se;
}

static struct capture_mark *mark_of(struct copy_engine *ce, CUstream stream, bool create) {
    if (stream == CU_STREAM_PER_THREAD)
        return &per_thread_mark;
    struct stream_event *se = entry_of(ce, stream, create);
    return se ? &se->mark : NULL;
}

/* The id of the capture `stream` is in (active or invalidated); false when it is in
 * none, or the driver cannot tell which. */
static bool capture_id_of(CUstream stream, uint64_t *id) {
    CUstreamCaptureStatus status = CU_STREAM_CAPTURE_STATUS_NONE;
    cuuint64_t got = 0;
    if (!driver()->cuStreamGetCaptureInfo_v3 ||
        driver()->cuStreamGetCaptureInfo_v3(stream, &status, &got, NULL, NULL, NULL, NULL) !=
            CUDA_SUCCESS ||
        status == CU_STREAM_CAPTURE_STATUS_NONE)
        return false;
    *id = got;
    return true;
}

CUresult copy_mark_before_capture(struct copy_engine *ce, CUstream stream) {
    if (stream == CU_STREAM_LEGACY || copy_stream_capturing(stream))
        return CUDA_SUCCESS; /* the capture cannot begin: nothing to mark */
    struct capture_mark *m = mark_of(ce, stream, true);
    if (!m)
        return CUDA_ERROR_OUT_OF_MEMORY;
    m->valid = false;
    if (!m->event) {
        CUresult r = cuerr_note(&ce->failed_call, "cuEventCreate",
                                driver()->cuEventCreate(&m->event, CU_EVENT_DISABLE_TIMING));
        if (r != CUDA_SUCCESS) {
            m->event = NULL;
            return r;
        }
    }
    return cuerr_note(&ce->failed_call, "cuEventRecord", driver()->cuEventRecord(m->event, stream));
}

void copy_capture_begun(struct copy_engine *ce, CUstream stream) {
    struct capture_mark *m = mark_of(ce, stream, false);
    if (m && m->event)
        m->valid = capture_id_of(stream, &m->id);
}

/* The mark of the capture `stream` is in now, or NULL: it joined a capture (waiting on an
 * event recorded in one) or began one liboffload did not see begin. */
static CUevent current_mark(struct copy_engine *ce, CUstream stream) {
    struct capture_mark *m = mark_of(ce, stream, false);
    uint64_t id;
    if (!m || !m->valid || !capture_id_of(stream, &id) || id != m->id)
        return NULL;
    return m->event;
}

/* --- per-thread default streams of other threads ------------------------------------ */

/* The last work that used tracked memory on a thread's per-thread default stream: an event
 * the thread records after each such call, its own work (copy_note_per_thread_work).
 * Another thread cannot name that stream; it waits for this instead of the context. A
 * tail outlives its thread (what the thread queued still runs after it exits, and the
 * allocations it used still name it): one event per thread that ever used one. */
struct thread_tail {
    uint64_t thread;
    CUevent event;
    bool valid; /* recorded after every such call so far */
    UT_hash_handle hh;
};

_Thread_local bool copy_per_thread_used __attribute__((tls_model("initial-exec")));

void copy_note_use(CUstream stream) {
    if (is_legacy(stream))
        copy_legacy_fence = LEGACY_USED;
    else if (stream == CU_STREAM_PER_THREAD)
        copy_per_thread_used = true;
}

static struct thread_tail *tail_of(struct copy_engine *ce, uint64_t thread) {
    struct thread_tail *t;
    HASH_FIND(hh, ce->tails, &thread, sizeof thread, t);
    return t && t->valid ? t : NULL;
}

void copy_note_per_thread_work(struct copy_engine *ce, bool same_context) {
    copy_per_thread_used = false;
    if (copy_stream_capturing(CU_STREAM_PER_THREAD))
        return; /* captured work runs at cuGraphLaunch: the tail stays its last real work */
    uint64_t id = copy_thread_id(CU_STREAM_PER_THREAD);
    struct thread_tail *t;
    HASH_FIND(hh, ce->tails, &id, sizeof id, t);
    if (!same_context) { /* the stream is not the one our event would name: no tail */
        if (t)
            t->valid = false;
        return;
    }
    if (!t && (t = calloc(1, sizeof *t)) != NULL) {
        t->thread = id;
        if (driver()->cuEventCreate(&t->event, CU_EVENT_DISABLE_TIMING) != CUDA_SUCCESS) {
            free(t);
            return; /* no tail: other threads wait for the context */
        }
        bool hash_oom = false;
        HASH_ADD(hh, ce->tails, thread, sizeof t->thread, t);
        if (hash_oom) {
            driver()->cuEventDestroy_v2(t->event);
            free(t);
            return;
        }
    }
    if (t) /* a failed record leaves no tail: other threads wait for the context */
        t->valid = driver()->cuEventRecord(t->event, CU_STREAM_PER_THREAD) == CUDA_SUCCESS;
}

/* A stream the calling thread can name: every stream but another thread's per-thread one. */
static bool nameable(const struct stream_use *u) {
    return u->stream != CU_STREAM_PER_THREAD || u->thread == copy_thread_id(CU_STREAM_PER_THREAD);
}

/* Whether a user of a can only be waited for with the whole context: more users than an
 * allocation keeps, or another thread's per-thread stream without a tail. */
static bool needs_context_sync(struct copy_engine *ce, const struct allocation *a) {
    if (a->streams_overflow)
        return true;
    for (unsigned i = 0; i < a->stream_count; i++)
        if (!nameable(&a->streams[i]) && !tail_of(ce, a->streams[i].thread))
            return true;
    return false;
}

atomic_int copy_captures;

CUresult copy_sync_context(struct copy_engine *ce) {
    if (atomic_load_explicit(&copy_captures, memory_order_acquire) > 0) {
        ce->failed_call = "cuCtxSynchronize (a stream capture is in progress)";
        return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    }
    uint64_t t0 = now_ns();
    CUresult r = cuerr_note(&ce->failed_call, "cuCtxSynchronize", driver()->cuCtxSynchronize());
    ce->wait_ns += now_ns() - t0;
    return r;
}

/* The legacy stream's fence, when it stands for all the legacy stream's work: the legacy
 * stream is unusable (a blocking stream captures) and was fenced before (copy.h). */
static CUevent legacy_fence(struct copy_engine *ce) {
    CUevent ev;
    if (copy_legacy_fence != LEGACY_FENCED ||
        stream_event(ce, CU_STREAM_LEGACY, &ev) != CUDA_SUCCESS)
        return NULL;
    return ev;
}

/* What stands for the real work of a user's stream when nothing may be recorded on it:
 * while it captures, what it had queued when its capture began (its mark: what it
 * captured runs only at cuGraphLaunch, which makes the graph's memory resident again);
 * the legacy stream while a blocking stream captures, its fence. *ev is NULL when the
 * stream is usable (record on it). Fails, naming why, when neither stands for it. */
static CUresult standing_event(struct copy_engine *ce, CUstream stream, CUevent *ev) {
    *ev = NULL;
    switch (stream_capture(stream)) {
    case CAPTURING:
        if ((*ev = current_mark(ce, stream)) != NULL)
            return CUDA_SUCCESS;
        ce->failed_call = "a stream in a capture that liboffload did not see begin";
        return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    case UNUSABLE:
        if ((*ev = legacy_fence(ce)) != NULL)
            return CUDA_SUCCESS;
        ce->failed_call = "the legacy stream while a blocking stream captures (not fenced)";
        return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    case NOT_CAPTURING:
        break;
    }
    return CUDA_SUCCESS;
}

/* A user's real work, what an eviction waits for: the work queued on it so far, or what
 * stands for it (above). Nothing is ever recorded on a capturing stream: it would join
 * the eviction into the capture. */
static CUresult real_work_of(struct copy_engine *ce, const struct stream_use *u, CUevent *ev) {
    if (!nameable(u)) {
        *ev = tail_of(ce, u->thread)->event; /* needs_context_sync said it has one */
        return CUDA_SUCCESS;
    }
    CUresult r = standing_event(ce, u->stream, ev);
    if (r != CUDA_SUCCESS || *ev)
        return r;
    r = stream_event(ce, u->stream, ev);
    if (r == CUDA_SUCCESS)
        r = cuerr_note(&ce->failed_call, "cuEventRecord", driver()->cuEventRecord(*ev, u->stream));
    return r;
}

CUresult copy_after_users(struct copy_engine *ce, const struct allocation *a) {
    for (unsigned i = 0; i < a->stream_count; i++) {
        CUevent ev;
        CUresult r =
            nameable(&a->streams[i]) ? standing_event(ce, a->streams[i].stream, &ev) : CUDA_SUCCESS;
        if (r != CUDA_SUCCESS)
            return r; /* before anything is queued */
    }
    if (needs_context_sync(ce, a)) {
        /* A user we cannot record an event on: wait for the whole context, rare. */
        return copy_sync_context(ce);
    }
    for (unsigned i = 0; i < a->stream_count; i++) {
        CUevent ev;
        CUresult r = real_work_of(ce, &a->streams[i], &ev);
        if (r == CUDA_SUCCESS)
            r = cuerr_note(&ce->failed_call, "cuStreamWaitEvent",
                           driver()->cuStreamWaitEvent(ce->to_host, ev, 0));
        if (r != CUDA_SUCCESS)
            return r;
    }
    return CUDA_SUCCESS;
}

CUresult copy_sync_users(struct copy_engine *ce, const struct allocation *a) {
    if (needs_context_sync(ce, a))
        return copy_sync_context(ce);
    for (unsigned i = 0; i < a->stream_count; i++) {
        CUstream s = a->streams[i].stream;
        CUresult r;
        CUevent ev;
        if (!nameable(&a->streams[i])) {
            r = copy_sync_event(ce, tail_of(ce, a->streams[i].thread)->event);
        } else if ((r = standing_event(ce, s, &ev)) == CUDA_SUCCESS) {
            r = ev ? copy_sync_event(ce, ev) : copy_sync_stream(ce, s);
        } else if (stream_capture(s) == CAPTURING) {
            /* a capture liboffload did not see begin: its earlier work has no name, and
             * what it captured runs only when the graph is launched */
            r = CUDA_SUCCESS;
        }
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
        if (se->mark.event)
            driver()->cuEventDestroy_v2(se->mark.event);
        driver()->cuEventDestroy_v2(se->event);
        free(se);
    }
}
