/*
 * stream.c — streams and events.
 *
 * Every stream is a worker thread draining a FIFO of ops. An op may carry dependencies
 * (stream, seq): it starts only once that stream has completed op number seq. That one
 * mechanism gives cuStreamWaitEvent and the legacy default stream's semantics:
 *  - an op on the legacy stream depends on the last op submitted to every live blocking
 *    stream of its context;
 *  - an op on a blocking stream depends on the last op submitted to the legacy stream.
 * Non-blocking streams take neither. Stream structs are never freed (a destroyed stream's
 * worker exits once drained), so a dependency on one stays valid forever.
 */
#include "tests/sim/sim.h"
#include "tests/sim/strict.h"

#include <stdlib.h>
#include <string.h>

#define STREAM_MAGIC 0x5354524du
#define EVENT_MAGIC 0x45564e54u

/* The streams module's state: `lock` guards the live-stream list, `ev_lock` the events
 * (their record state and the free list). Order: ev_lock, then lock, then a stream's mu. */
static struct {
    pthread_mutex_t lock, ev_lock;
    struct sim_stream *live, *dead;
    struct sim_event *free_events;
    pthread_key_t per_thread_key;
    pthread_once_t once;
} st = {.lock = PTHREAD_MUTEX_INITIALIZER,
        .ev_lock = PTHREAD_MUTEX_INITIALIZER,
        .once = PTHREAD_ONCE_INIT};

/* The calling thread's per-thread default stream (and the context it belongs to). */
static __thread struct sim_stream *tls_stream;

/* ---- ops ------------------------------------------------------------------------- */

struct sim_op *sim_op_new(enum sim_op_kind kind) {
    struct sim_op *op = calloc(1, sizeof *op);
    if (op) {
        op->kind = kind;
        op->entry = sim_tls_entry;
        op->deps = op->dep_inline;
        op->dep_cap = sizeof op->dep_inline / sizeof op->dep_inline[0];
    }
    return op;
}

unsigned char *sim_argbuf_new(size_t size) {
    enum { PARAM_SPACE_ALIGN = 256 };
    size_t rounded = (size + PARAM_SPACE_ALIGN - 1) / PARAM_SPACE_ALIGN * PARAM_SPACE_ALIGN;
    return aligned_alloc(PARAM_SPACE_ALIGN, rounded ? rounded : PARAM_SPACE_ALIGN);
}

void sim_op_free(struct sim_op *op) {
    if (!op)
        return;
    if (op->deps != op->dep_inline)
        free(op->deps);
    if (op->kind == SIM_OP_COPY)
        free(op->u.copy.staging);
    if (op->kind == SIM_OP_KERNEL)
        free(op->u.kernel.argbuf);
    if (op->kind == SIM_OP_GRAPH) {
        sim_graph_exec_release(op->u.graph.exec);
        for (uint32_t i = 0; i < op->u.graph.nwaits; i++)
            free(op->u.graph.waits[i].vc);
        free(op->u.graph.waits);
    }
    sim_race_op_free(op);
    free(op);
}

int sim_op_add_dep(struct sim_op *op, struct sim_stream *stream, uint64_t seq) {
    if (op->ndeps == op->dep_cap) {
        unsigned ncap = op->dep_cap * 2;
        struct sim_dep *d = malloc(ncap * sizeof *d);
        if (!d)
            return -1;
        memcpy(d, op->deps, op->ndeps * sizeof *d);
        if (op->deps != op->dep_inline)
            free(op->deps);
        op->deps = d;
        op->dep_cap = ncap;
    }
    op->deps[op->ndeps++] = (struct sim_dep){stream, seq};
    return 0;
}

static void fail_async(struct sim_op *op, const char *what) {
    sim_log("simcuda: asynchronous %s touched unmapped device memory", what);
    op->result = CUDA_ERROR_ILLEGAL_ADDRESS;
    atomic_fetch_add(&sim_stats.faults, 1);
    sim_set_sticky(CUDA_ERROR_ILLEGAL_ADDRESS);
}

static void execute_memset(struct sim_op *op) {
    size_t w = op->u.memset.width, h = op->u.memset.height, pitch = op->u.memset.pitch;
    unsigned e = op->u.memset.elem, v = op->u.memset.value;
    uintptr_t d = (uintptr_t)op->u.memset.dst;
    size_t span = h ? pitch * (h - 1) + w * e : 0;
    sim_mem_read_lock();
    if (sim_mem_check_locked(d, span, 1) != CUDA_SUCCESS) {
        sim_mem_read_unlock();
        fail_async(op, "memset");
        return;
    }
    for (size_t r = 0; r < h; r++) {
        unsigned char *row = (unsigned char *)(d + r * pitch);
        if (e == 1) {
            memset(row, (int)(v & 0xff), w);
        } else if (e == 2) {
            uint16_t x = (uint16_t)v;
            for (size_t i = 0; i < w; i++)
                memcpy(row + 2 * i, &x, 2);
        } else {
            uint32_t x = v;
            for (size_t i = 0; i < w; i++)
                memcpy(row + 4 * i, &x, 4);
        }
        sim_shadow_written((uintptr_t)row, w * e);
    }
    sim_mem_read_unlock();
}

void sim_op_execute(struct sim_op *op) {
    if (sim_sticky() && op->kind != SIM_OP_RECORD && op->kind != SIM_OP_NOP) {
        op->result = sim_sticky(); /* a dead context runs nothing more */
        return;
    }
    if (sim_race_check_op(op) != 0) {
        op->result = CUDA_ERROR_ILLEGAL_ADDRESS; /* a race: reported, not run */
        return;
    }
    switch (op->kind) {
    case SIM_OP_NOP:
        break;
    case SIM_OP_COPY:
        sim_copy_land(op);
        break;
    case SIM_OP_MEMSET:
        execute_memset(op);
        break;
    case SIM_OP_KERNEL:
        op->result = sim_kernel_run(op);
        break;
    case SIM_OP_HOSTFN:
        op->u.hostfn.fn(op->u.hostfn.data);
        break;
    case SIM_OP_CALLBACK:
        op->u.callback.fn(op->u.callback.handle, sim_sticky(), op->u.callback.data);
        break;
    case SIM_OP_GRAPH:
        sim_graph_execute(op->u.graph.exec, op);
        break;
    case SIM_OP_WAIT_EVENT:
        break; /* its graph run waited before running it (graph_run.c run_node) */
    case SIM_OP_RECORD: {
        struct sim_event *e = op->u.record.event;
        pthread_mutex_lock(&st.ev_lock);
        if (e->gen == op->u.record.gen) {
            e->time_ms = sim_now_ms();
            e->has_time = 1;
        }
        pthread_mutex_unlock(&st.ev_lock);
        break;
    }
    }
}

/* ---- streams --------------------------------------------------------------------- */

void sim_stream_wait_seq(struct sim_stream *s, uint64_t seq) {
    if (atomic_load(&s->completed) >= seq)
        return;
    pthread_mutex_lock(&s->mu);
    while (atomic_load(&s->completed) < seq)
        pthread_cond_wait(&s->done_cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
}

static void *worker(void *arg) {
    struct sim_stream *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->head && s->alive)
            pthread_cond_wait(&s->work_cv, &s->mu);
        if (!s->head)
            break; /* destroyed and drained */
        struct sim_op *op = s->head;
        s->head = op->next;
        if (!s->head)
            s->tail = NULL;
        pthread_mutex_unlock(&s->mu);
        for (unsigned i = 0; i < op->ndeps; i++)
            sim_stream_wait_seq(op->deps[i].stream, op->deps[i].seq);
        sim_jitter(s);
        sim_op_execute(op);
        uint64_t seq = op->seq;
        if (!op->keep)
            sim_op_free(op);
        pthread_mutex_lock(&s->mu);
        atomic_store(&s->completed, seq);
        pthread_cond_broadcast(&s->done_cv);
    }
    pthread_mutex_unlock(&s->mu);
    pthread_mutex_lock(&st.lock);
    if (s->prev)
        s->prev->next = s->next;
    else
        st.live = s->next;
    if (s->next)
        s->next->prev = s->prev;
    /* kept forever: dependencies and events may still name it */
    s->prev = NULL;
    s->next = st.dead;
    st.dead = s;
    pthread_mutex_unlock(&st.lock);
    return NULL;
}

static void per_thread_exit(void *p) {
    struct sim_stream *s = p;
    pthread_mutex_lock(&s->mu);
    s->alive = 0;
    pthread_cond_signal(&s->work_cv);
    pthread_mutex_unlock(&s->mu);
}

/* fork(): the child has no worker threads. Work queued in the parent stays the parent's:
 * the child counts it complete and drops it; a stream gets a new worker when the child
 * first queues work on it (so a child that never uses CUDA starts no thread). Prepare
 * holds the events, the live list and every live stream (a synchronous call may hold its
 * stream while it copies, hence streams before the memory map in the lock order). */
void sim_stream_atfork(enum sim_fork_phase phase) {
    if (phase == SIM_FORK_PREPARE) {
        pthread_mutex_lock(&st.ev_lock);
        pthread_mutex_lock(&st.lock);
        for (struct sim_stream *s = st.live; s; s = s->next)
            pthread_mutex_lock(&s->mu);
        return;
    }
    if (phase == SIM_FORK_PARENT) {
        for (struct sim_stream *s = st.live; s; s = s->next)
            pthread_mutex_unlock(&s->mu);
        pthread_mutex_unlock(&st.lock);
        pthread_mutex_unlock(&st.ev_lock);
        return;
    }
    pthread_mutex_init(&st.lock, NULL);
    pthread_mutex_init(&st.ev_lock, NULL);
    tls_stream = NULL;
    for (struct sim_stream *s = st.live; s; s = s->next) {
        pthread_mutex_init(&s->mu, NULL);
        pthread_cond_init(&s->work_cv, NULL);
        pthread_cond_init(&s->done_cv, NULL);
        s->head = s->tail = NULL;
        atomic_store(&s->completed, atomic_load(&s->submitted));
        s->worker_missing = 1;
    }
}

/* With s->mu held. */
static void ensure_worker(struct sim_stream *s) {
    if (!s->worker_missing)
        return;
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &attr, worker, s) == 0)
        s->worker_missing = 0;
    pthread_attr_destroy(&attr);
}

static void make_key(void) {
    pthread_key_create(&st.per_thread_key, per_thread_exit);
}

struct sim_stream *sim_stream_create(struct sim_ctx *ctx, enum sim_stream_kind kind, unsigned flags,
                                     int priority) {
    struct sim_stream *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->magic = STREAM_MAGIC;
    s->kind = kind;
    s->alive = 1;
    s->flags = flags;
    s->priority = priority;
    s->ctx = ctx;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->work_cv, NULL);
    pthread_cond_init(&s->done_cv, NULL);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_mutex_lock(&st.lock);
    pthread_t t;
    if (pthread_create(&t, &attr, worker, s) != 0) {
        pthread_mutex_unlock(&st.lock);
        pthread_attr_destroy(&attr);
        free(s);
        return NULL;
    }
    s->next = st.live;
    if (st.live)
        st.live->prev = s;
    st.live = s;
    pthread_mutex_unlock(&st.lock);
    pthread_attr_destroy(&attr);
    return s;
}

static struct sim_stream *per_thread_stream(struct sim_ctx *ctx) {
    if (tls_stream && tls_stream->ctx == ctx && tls_stream->alive)
        return tls_stream;
    pthread_once(&st.once, make_key);
    if (tls_stream)
        per_thread_exit(tls_stream);
    tls_stream = sim_stream_create(ctx, SIM_STREAM_PER_THREAD, 0, 0);
    pthread_setspecific(st.per_thread_key, tls_stream);
    return tls_stream;
}

CUresult sim_stream_resolve(CUstream h, int per_thread, struct sim_stream **out) {
    CUresult r = sim_stream_lookup(h, per_thread, out);
    return r != CUDA_SUCCESS ? r : sim_capture_legacy_use(*out, 1);
}

CUresult sim_stream_lookup(CUstream h, int per_thread, struct sim_stream **out) {
    if (!h)
        h = per_thread ? CU_STREAM_PER_THREAD : CU_STREAM_LEGACY;
    if (h == CU_STREAM_LEGACY || h == CU_STREAM_PER_THREAD) {
        struct sim_ctx *c = sim_ctx_current();
        if (!c)
            return CUDA_ERROR_INVALID_CONTEXT;
        *out = h == CU_STREAM_LEGACY ? c->legacy : per_thread_stream(c);
        return *out ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
    }
    struct sim_stream *s = (struct sim_stream *)h;
    if (s->magic != STREAM_MAGIC || !s->alive || !s->ctx->alive)
        return CUDA_ERROR_INVALID_HANDLE;
    *out = s;
    return CUDA_SUCCESS;
}

static void add_default_stream_deps(struct sim_stream *s, struct sim_op *op) {
    if (s->kind == SIM_STREAM_LEGACY) {
        pthread_mutex_lock(&st.lock);
        for (struct sim_stream *t = st.live; t; t = t->next) {
            if (t == s || t->ctx != s->ctx || (t->flags & CU_STREAM_NON_BLOCKING) ||
                t->kind == SIM_STREAM_LEGACY)
                continue;
            sim_race_op_join_stream(op, t); /* ordered even if t is done */
            uint64_t sub = atomic_load(&t->submitted);
            if (atomic_load(&t->completed) < sub)
                sim_op_add_dep(op, t, sub);
        }
        pthread_mutex_unlock(&st.lock);
    } else if (!(s->flags & CU_STREAM_NON_BLOCKING) && s->ctx->legacy) {
        struct sim_stream *l = s->ctx->legacy;
        sim_race_op_join_stream(op, l);
        uint64_t sub = atomic_load(&l->submitted);
        if (atomic_load(&l->completed) < sub)
            sim_op_add_dep(op, l, sub);
    }
}

uint64_t sim_submit(struct sim_stream *s, struct sim_op *op) {
    add_default_stream_deps(s, op);
    pthread_mutex_lock(&s->mu);
    uint64_t seq = atomic_load(&s->submitted) + 1;
    op->seq = seq;
    sim_race_submit(s, op);
    op->next = NULL;
    if (s->tail)
        s->tail->next = op;
    else
        s->head = op;
    s->tail = op;
    atomic_store(&s->submitted, seq);
    ensure_worker(s);
    pthread_cond_signal(&s->work_cv);
    pthread_mutex_unlock(&s->mu);
    return seq;
}

CUresult sim_submit_sync(struct sim_stream *s, struct sim_op *op) {
    op->keep = 1;
    add_default_stream_deps(s, op);
    pthread_mutex_lock(&s->mu);
    if (op->ndeps == 0 && !s->head && atomic_load(&s->completed) == atomic_load(&s->submitted)) {
        /* An idle stream with nothing to wait for: run it here, holding the stream so
         * nothing can overtake it. Saves two thread switches per synchronous call. */
        uint64_t seq = atomic_load(&s->submitted) + 1;
        op->seq = seq;
        sim_race_submit(s, op);
        atomic_store(&s->submitted, seq);
        sim_op_execute(op);
        atomic_store(&s->completed, seq);
        pthread_cond_broadcast(&s->done_cv);
        pthread_mutex_unlock(&s->mu);
    } else {
        /* queued behind the stream's work (its deps are already added) */
        uint64_t seq = atomic_load(&s->submitted) + 1;
        op->seq = seq;
        sim_race_submit(s, op);
        op->next = NULL;
        if (s->tail)
            s->tail->next = op;
        else
            s->head = op;
        s->tail = op;
        atomic_store(&s->submitted, seq);
        ensure_worker(s);
        pthread_cond_signal(&s->work_cv);
        pthread_mutex_unlock(&s->mu);
        sim_stream_wait_seq(s, seq);
    }
    sim_race_host_join_op(op); /* the caller waited for it */
    CUresult r = op->result;
    sim_op_free(op);
    return r;
}

/* Everything submitted to the legacy stream so far, and to the blocking streams before
 * it: a no-op on the legacy stream carries exactly those dependencies. */
static CUresult sync_stream(struct sim_stream *s) {
    uint64_t seq;
    if (s->kind == SIM_STREAM_LEGACY) {
        struct sim_op *op = sim_op_new(SIM_OP_NOP);
        if (!op)
            return CUDA_ERROR_OUT_OF_MEMORY;
        seq = sim_submit(s, op);
    } else {
        seq = atomic_load(&s->submitted);
    }
    sim_stream_wait_seq(s, seq);
    /* the host's clock first: a free the pool now lets any stream reuse must already be
     * ordered before whatever another thread submits next */
    sim_race_host_join_stream(s);
    sim_pool_synced(s, seq); /* pool.c: frees seen by the host, release threshold */
    return sim_sticky();
}

CUresult sim_stream_sync(struct sim_stream *s) {
    return sync_stream(s);
}

void sim_sync_all(struct sim_ctx *ctx) {
    /* What was submitted when the call came; work queued later by other threads is not
     * waited for (so a busy program cannot keep this from returning). */
    struct sim_dep *snap = NULL;
    size_t n = 0, cap = 0;
    pthread_mutex_lock(&st.lock);
    for (struct sim_stream *t = st.live; t; t = t->next) {
        if (ctx && t->ctx != ctx)
            continue;
        uint64_t seq = atomic_load(&t->submitted);
        if (atomic_load(&t->completed) >= seq)
            continue;
        if (n == cap) {
            size_t ncap = cap ? 2 * cap : 16;
            struct sim_dep *d = realloc(snap, ncap * sizeof *d);
            if (!d)
                break;
            snap = d;
            cap = ncap;
        }
        snap[n++] = (struct sim_dep){t, seq};
    }
    /* the caller is ordered after everything submitted so far, done or not */
    for (struct sim_stream *t = st.live; t; t = t->next)
        if (!ctx || t->ctx == ctx)
            sim_race_host_join_stream(t);
    for (struct sim_stream *t = st.dead; t; t = t->next)
        if (!ctx || t->ctx == ctx)
            sim_race_host_join_stream(t);
    pthread_mutex_unlock(&st.lock);
    for (size_t i = 0; i < n; i++)
        sim_stream_wait_seq(snap[i].stream, snap[i].seq);
    free(snap);
    sim_pool_synced(NULL, 0); /* pool.c: frees seen by the host, release threshold */
}

/* ---- stream entry points --------------------------------------------------------- */

static CUresult stream_create(CUstream *ph, unsigned flags, int priority) {
    if (!ph || (flags & ~(unsigned)CU_STREAM_NON_BLOCKING))
        return CUDA_ERROR_INVALID_VALUE;
    struct sim_ctx *c = sim_ctx_current();
    if (!c)
        return CUDA_ERROR_INVALID_CONTEXT;
    if (priority > 0)
        priority = 0;
    if (priority < -5)
        priority = -5;
    struct sim_stream *s = sim_stream_create(c, SIM_STREAM_USER, flags, priority);
    if (!s)
        return CUDA_ERROR_OUT_OF_MEMORY;
    *ph = (CUstream)s;
    return CUDA_SUCCESS;
}

SIM_API CUresult cuStreamCreate(CUstream *phStream, unsigned int Flags) {
    SIM_ENTER("cuStreamCreate");
    return stream_create(phStream, Flags, 0);
}

SIM_API CUresult cuStreamCreateWithPriority(CUstream *phStream, unsigned int flags, int priority) {
    SIM_ENTER("cuStreamCreateWithPriority");
    return stream_create(phStream, flags, priority);
}

SIM_API CUresult cuStreamDestroy_v2(CUstream hStream) {
    SIM_ENTER("cuStreamDestroy_v2");
    struct sim_stream *s = (struct sim_stream *)hStream;
    if (!s || hStream == CU_STREAM_LEGACY || hStream == CU_STREAM_PER_THREAD ||
        s->magic != STREAM_MAGIC || !s->alive || s->kind != SIM_STREAM_USER)
        return CUDA_ERROR_INVALID_HANDLE;
    /* queued work still runs, then the worker leaves */
    pthread_mutex_lock(&s->mu);
    s->alive = 0;
    pthread_cond_signal(&s->work_cv);
    pthread_mutex_unlock(&s->mu);
    return CUDA_SUCCESS;
}

#define RESOLVE(h, pt, s)                                                                          \
    struct sim_stream *s;                                                                          \
    do {                                                                                           \
        CUresult r_ = sim_stream_resolve((h), (pt), &s);                                           \
        if (r_ != CUDA_SUCCESS)                                                                    \
            return r_;                                                                             \
    } while (0)
/* Attribute queries: no work, no dependency, allowed on the legacy stream during capture. */
#define LOOKUP(h, pt, s)                                                                           \
    struct sim_stream *s;                                                                          \
    do {                                                                                           \
        CUresult r_ = sim_stream_lookup((h), (pt), &s);                                            \
        if (r_ != CUDA_SUCCESS)                                                                    \
            return r_;                                                                             \
    } while (0)

static CUresult stream_synchronize(CUstream h, int pt) {
    RESOLVE(h, pt, s);
    CUresult r = sim_capture_conflict_stream(s);
    if (r == CUDA_SUCCESS)
        r = sim_capture_unsafe_call();
    return r != CUDA_SUCCESS ? r : sync_stream(s);
}

SIM_API CUresult cuStreamSynchronize(CUstream hStream) {
    SIM_ENTER("cuStreamSynchronize");
    return stream_synchronize(hStream, 0);
}
SIM_API CUresult cuStreamSynchronize_ptsz(CUstream hStream) {
    SIM_ENTER("cuStreamSynchronize_ptsz");
    return stream_synchronize(hStream, 1);
}

static CUresult stream_query(CUstream h, int pt) {
    RESOLVE(h, pt, s);
    CUresult r = sim_capture_conflict_stream(s);
    if (r == CUDA_SUCCESS)
        r = sim_capture_unsafe_call();
    if (r != CUDA_SUCCESS)
        return r;
    if (atomic_load(&s->completed) < atomic_load(&s->submitted))
        return CUDA_ERROR_NOT_READY;
    sim_race_host_join_stream(s); /* a successful query orders the caller after it */
    return CUDA_SUCCESS;
}

SIM_API CUresult cuStreamQuery(CUstream hStream) {
    SIM_ENTER("cuStreamQuery");
    return stream_query(hStream, 0);
}
SIM_API CUresult cuStreamQuery_ptsz(CUstream hStream) {
    SIM_ENTER("cuStreamQuery_ptsz");
    return stream_query(hStream, 1);
}

static struct sim_event *event_of(CUevent h) {
    struct sim_event *e = (struct sim_event *)h;
    return e && e->magic == EVENT_MAGIC && e->alive ? e : NULL;
}

static CUresult stream_wait_event(CUstream h, CUevent ev, unsigned flags, int pt) {
    RESOLVE(h, pt, s);
    struct sim_event *e = event_of(ev);
    if (!e)
        return CUDA_ERROR_INVALID_HANDLE;
    if (flags & ~(unsigned)CU_EVENT_WAIT_EXTERNAL)
        return CUDA_ERROR_INVALID_VALUE;
    struct sim_op *op = sim_op_new(SIM_OP_NOP);
    if (!op)
        return CUDA_ERROR_OUT_OF_MEMORY;
    pthread_mutex_lock(&st.ev_lock);
    struct sim_stream *on = e->stream;
    uint64_t seq = e->seq;
    sim_race_op_join_event(op, e);
    pthread_mutex_unlock(&st.ev_lock);
    CUresult r;
    if (sim_capture_wait(s, e, flags, on != NULL, &r)) {
        sim_op_free(op); /* a fork, a join, a wait node, or an error of the capture rules */
        return r;
    }
    if (on && sim_op_add_dep(op, on, seq) != 0) {
        sim_op_free(op);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    sim_submit(s, op);
    if (on)
        sim_pool_note_wait(s, on, seq); /* pool.c: reuse that follows event dependencies */
    return CUDA_SUCCESS;
}

SIM_API CUresult cuStreamWaitEvent(CUstream hStream, CUevent hEvent, unsigned int Flags) {
    SIM_ENTER("cuStreamWaitEvent");
    return stream_wait_event(hStream, hEvent, Flags, 0);
}
SIM_API CUresult cuStreamWaitEvent_ptsz(CUstream hStream, CUevent hEvent, unsigned int Flags) {
    SIM_ENTER("cuStreamWaitEvent_ptsz");
    return stream_wait_event(hStream, hEvent, Flags, 1);
}

static CUresult launch_host_func(CUstream h, CUhostFn fn, void *data, int pt) {
    if (!fn)
        return CUDA_ERROR_INVALID_VALUE;
    RESOLVE(h, pt, s);
    struct sim_op *op = sim_op_new(SIM_OP_HOSTFN);
    if (!op)
        return CUDA_ERROR_OUT_OF_MEMORY;
    op->u.hostfn.fn = fn;
    op->u.hostfn.data = data;
    CUresult r;
    if (sim_capture_op(s, op, &r))
        return r;
    sim_submit(s, op);
    return CUDA_SUCCESS;
}

SIM_API CUresult cuLaunchHostFunc(CUstream hStream, CUhostFn fn, void *userData) {
    SIM_ENTER("cuLaunchHostFunc");
    return launch_host_func(hStream, fn, userData, 0);
}
SIM_API CUresult cuLaunchHostFunc_ptsz(CUstream hStream, CUhostFn fn, void *userData) {
    SIM_ENTER("cuLaunchHostFunc_ptsz");
    return launch_host_func(hStream, fn, userData, 1);
}

static CUresult add_callback(CUstream h, CUstreamCallback fn, void *data, unsigned flags, int pt) {
    if (!fn || flags != 0)
        return CUDA_ERROR_INVALID_VALUE;
    RESOLVE(h, pt, s);
    if (sim_stream_is_capturing(s))
        return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    struct sim_op *op = sim_op_new(SIM_OP_CALLBACK);
    if (!op)
        return CUDA_ERROR_OUT_OF_MEMORY;
    op->u.callback.fn = fn;
    op->u.callback.data = data;
    op->u.callback.handle = h;
    sim_submit(s, op);
    return CUDA_SUCCESS;
}

SIM_API CUresult cuStreamAddCallback(CUstream hStream, CUstreamCallback callback, void *userData,
                                     unsigned int flags) {
    SIM_ENTER("cuStreamAddCallback");
    return add_callback(hStream, callback, userData, flags, 0);
}
SIM_API CUresult cuStreamAddCallback_ptsz(CUstream hStream, CUstreamCallback callback,
                                          void *userData, unsigned int flags) {
    SIM_ENTER("cuStreamAddCallback_ptsz");
    return add_callback(hStream, callback, userData, flags, 1);
}

static CUresult stream_get_flags(CUstream h, unsigned *flags, int pt) {
    if (!flags)
        return CUDA_ERROR_INVALID_VALUE;
    LOOKUP(h, pt, s);
    *flags = s->flags;
    return CUDA_SUCCESS;
}
SIM_API CUresult cuStreamGetFlags(CUstream hStream, unsigned int *flags) {
    SIM_ENTER("cuStreamGetFlags");
    return stream_get_flags(hStream, flags, 0);
}
SIM_API CUresult cuStreamGetFlags_ptsz(CUstream hStream, unsigned int *flags) {
    SIM_ENTER("cuStreamGetFlags_ptsz");
    return stream_get_flags(hStream, flags, 1);
}

static CUresult stream_get_priority(CUstream h, int *priority, int pt) {
    if (!priority)
        return CUDA_ERROR_INVALID_VALUE;
    LOOKUP(h, pt, s);
    *priority = s->priority;
    return CUDA_SUCCESS;
}
SIM_API CUresult cuStreamGetPriority(CUstream hStream, int *priority) {
    SIM_ENTER("cuStreamGetPriority");
    return stream_get_priority(hStream, priority, 0);
}
SIM_API CUresult cuStreamGetPriority_ptsz(CUstream hStream, int *priority) {
    SIM_ENTER("cuStreamGetPriority_ptsz");
    return stream_get_priority(hStream, priority, 1);
}

static CUresult stream_get_ctx(CUstream h, CUcontext *pctx, int pt) {
    if (!pctx)
        return CUDA_ERROR_INVALID_VALUE;
    LOOKUP(h, pt, s);
    *pctx = (CUcontext)s->ctx;
    return CUDA_SUCCESS;
}
SIM_API CUresult cuStreamGetCtx(CUstream hStream, CUcontext *pctx) {
    SIM_ENTER("cuStreamGetCtx");
    return stream_get_ctx(hStream, pctx, 0);
}
SIM_API CUresult cuStreamGetCtx_ptsz(CUstream hStream, CUcontext *pctx) {
    SIM_ENTER("cuStreamGetCtx_ptsz");
    return stream_get_ctx(hStream, pctx, 1);
}

/* ---- events ---------------------------------------------------------------------- */

void sim_event_snapshot(struct sim_event *e, struct sim_stream **on, uint64_t *seq,
                        struct sim_vc **vc) {
    pthread_mutex_lock(&st.ev_lock);
    *on = e->stream;
    *seq = e->seq;
    *vc = sim_race_event_clock(e);
    pthread_mutex_unlock(&st.ev_lock);
}

SIM_API CUresult cuEventCreate(CUevent *phEvent, unsigned int Flags) {
    SIM_ENTER("cuEventCreate");
    if (!phEvent || (Flags & ~(unsigned)(CU_EVENT_BLOCKING_SYNC | CU_EVENT_DISABLE_TIMING |
                                         CU_EVENT_INTERPROCESS)))
        return CUDA_ERROR_INVALID_VALUE;
    if (!sim_ctx_current())
        return CUDA_ERROR_INVALID_CONTEXT;
    pthread_mutex_lock(&st.ev_lock);
    struct sim_event *e = st.free_events;
    if (e)
        st.free_events = e->next_free;
    pthread_mutex_unlock(&st.ev_lock);
    if (!e && !(e = calloc(1, sizeof *e)))
        return CUDA_ERROR_OUT_OF_MEMORY;
    pthread_mutex_lock(&st.ev_lock);
    uint64_t gen = e->gen + 1; /* orphan any record still queued from a former life */
    free(e->cap_nodes);
    *e = (struct sim_event){.magic = EVENT_MAGIC, .alive = 1, .flags = Flags, .gen = gen};
    pthread_mutex_unlock(&st.ev_lock);
    *phEvent = (CUevent)e;
    return CUDA_SUCCESS;
}

/* Events are recycled, never freed: a queued record may still point at one. */
static CUresult event_destroy(CUevent h) {
    struct sim_event *e = event_of(h);
    if (!e)
        return CUDA_ERROR_INVALID_HANDLE;
    pthread_mutex_lock(&st.ev_lock);
    e->alive = 0;
    e->gen++;
    free(e->race_vc); /* the race detector's clock (race.c): a reused event starts afresh */
    e->race_vc = NULL;
    e->next_free = st.free_events;
    st.free_events = e;
    pthread_mutex_unlock(&st.ev_lock);
    return CUDA_SUCCESS;
}

SIM_API CUresult cuEventDestroy_v2(CUevent hEvent) {
    SIM_ENTER("cuEventDestroy_v2");
    return event_destroy(hEvent);
}

static CUresult event_record(CUevent h, CUstream hs, int pt) {
    struct sim_event *e = event_of(h);
    if (!e)
        return CUDA_ERROR_INVALID_HANDLE;
    RESOLVE(hs, pt, s);
    CUresult r;
    if (sim_capture_record(s, e, &r))
        return r;
    struct sim_op *op = sim_op_new(SIM_OP_RECORD);
    if (!op)
        return CUDA_ERROR_OUT_OF_MEMORY;
    op->u.record.event = e;
    /* the lock spans the submit so a query never sees the stream without the seq */
    pthread_mutex_lock(&st.ev_lock);
    op->u.record.gen = ++e->gen;
    e->has_time = 0;
    e->cap = NULL;
    e->stream = s;
    e->seq = sim_submit(s, op);
    sim_race_event_record(e, op); /* the worker frees op only after taking ev_lock */
    pthread_mutex_unlock(&st.ev_lock);
    return CUDA_SUCCESS;
}

SIM_API CUresult cuEventRecord(CUevent hEvent, CUstream hStream) {
    SIM_ENTER("cuEventRecord");
    return event_record(hEvent, hStream, 0);
}
SIM_API CUresult cuEventRecord_ptsz(CUevent hEvent, CUstream hStream) {
    SIM_ENTER("cuEventRecord_ptsz");
    return event_record(hEvent, hStream, 1);
}
SIM_API CUresult cuEventRecordWithFlags(CUevent hEvent, CUstream hStream, unsigned int flags) {
    SIM_ENTER("cuEventRecordWithFlags");
    (void)flags;
    return event_record(hEvent, hStream, 0);
}
SIM_API CUresult cuEventRecordWithFlags_ptsz(CUevent hEvent, CUstream hStream, unsigned int flags) {
    SIM_ENTER("cuEventRecordWithFlags_ptsz");
    (void)flags;
    return event_record(hEvent, hStream, 1);
}

static int event_done(struct sim_event *e, struct sim_stream **s, uint64_t *seq) {
    pthread_mutex_lock(&st.ev_lock);
    *s = e->stream;
    *seq = e->seq;
    int done = !*s || atomic_load(&(*s)->completed) >= *seq;
    if (done) /* seeing it complete orders the caller after it */
        sim_race_host_join_event(e);
    pthread_mutex_unlock(&st.ev_lock);
    return done;
}

SIM_API CUresult cuEventQuery(CUevent hEvent) {
    SIM_ENTER("cuEventQuery");
    struct sim_event *e = event_of(hEvent);
    if (!e)
        return CUDA_ERROR_INVALID_HANDLE;
    CUresult r = sim_capture_conflict_event(e);
    if (r == CUDA_SUCCESS)
        r = sim_capture_unsafe_call();
    if (r != CUDA_SUCCESS)
        return r;
    struct sim_stream *s;
    uint64_t seq;
    return event_done(e, &s, &seq) ? CUDA_SUCCESS : CUDA_ERROR_NOT_READY;
}

SIM_API CUresult cuEventSynchronize(CUevent hEvent) {
    SIM_ENTER("cuEventSynchronize");
    struct sim_event *e = event_of(hEvent);
    if (!e)
        return CUDA_ERROR_INVALID_HANDLE;
    CUresult r = sim_capture_conflict_event(e);
    if (r == CUDA_SUCCESS)
        r = sim_capture_unsafe_call();
    if (r != CUDA_SUCCESS)
        return r;
    struct sim_stream *s;
    uint64_t seq;
    if (!event_done(e, &s, &seq)) {
        sim_stream_wait_seq(s, seq);
        event_done(e, &s, &seq);
    }
    if (s)
        sim_pool_synced(s, seq); /* pool.c: frees seen by the host, release threshold */
    return sim_sticky();
}

static CUresult elapsed(float *ms, CUevent a, CUevent b) {
    struct sim_event *ea = event_of(a), *eb = event_of(b);
    if (!ms)
        return CUDA_ERROR_INVALID_VALUE;
    if (!ea || !eb)
        return CUDA_ERROR_INVALID_HANDLE;
    if ((ea->flags | eb->flags) & CU_EVENT_DISABLE_TIMING)
        return CUDA_ERROR_INVALID_HANDLE;
    struct sim_stream *s;
    uint64_t seq;
    if (!event_done(ea, &s, &seq) || !event_done(eb, &s, &seq))
        return CUDA_ERROR_NOT_READY;
    CUresult r = CUDA_SUCCESS;
    pthread_mutex_lock(&st.ev_lock);
    if (!ea->stream || !eb->stream || !ea->has_time || !eb->has_time)
        r = CUDA_ERROR_INVALID_HANDLE;
    else
        *ms = (float)(eb->time_ms - ea->time_ms);
    pthread_mutex_unlock(&st.ev_lock);
    return r;
}

SIM_API CUresult cuEventElapsedTime_v2(float *pMilliseconds, CUevent hStart, CUevent hEnd) {
    SIM_ENTER("cuEventElapsedTime_v2");
    return elapsed(pMilliseconds, hStart, hEnd);
}

#undef cuEventElapsedTime
SIM_API CUresult cuEventElapsedTime(float *pMilliseconds, CUevent hStart, CUevent hEnd) {
    SIM_ENTER("cuEventElapsedTime");
    return elapsed(pMilliseconds, hStart, hEnd);
}
