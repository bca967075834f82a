/*
 * capture.c — stream capture.
 *
 * While a stream captures, the ops its entry points build (kernels, copies, memsets,
 * host functions) become graph nodes instead of queued work; each node depends on the
 * stream's current node set, then becomes it. Events recorded during capture carry node
 * sets, so cuStreamWaitEvent forks other streams into the capture and joins them back.
 * Nodes are kept in creation order, which is a topological order (graph.c instantiates
 * graphs in it).
 *
 * Capture modes are enforced as the driver documents them (cuThreadExchangeStreamCaptureMode):
 * a thread whose own capture was not begun RELAXED, or (in GLOBAL mode) any thread while
 * another has a GLOBAL capture, may not make potentially unsafe calls: they fail with
 * CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED and invalidate the capture.
 */
#include "tests/sim/graph_internal.h"
#include "tests/sim/sim.h"

#include <stdlib.h>
#include <string.h>

struct sim_capture {
    uint64_t id;
    struct sim_graph *graph;
    struct sim_stream *origin;
    CUstreamCaptureMode mode;
    pthread_t owner; /* the thread that began it */
    int invalidated;
    int blocking;             /* a blocking stream takes part: the legacy stream is unusable */
    struct sim_capture *next; /* gr.all */
    struct sim_capture *active_next; /* gr.active, until it ends */
};

/* One lock for all capture state (capture structs, streams' dependency sets). */
static struct {
    pthread_mutex_t lock;
    uint64_t next_id;
    struct sim_capture *all;    /* every capture, kept: streams and events may name one */
    struct sim_capture *active; /* the captures not ended yet */
    atomic_int strict;          /* how many of them were not begun RELAXED */
    atomic_int blocking;        /* how many of them have a blocking stream */
} gr = {.lock = PTHREAD_MUTEX_INITIALIZER};

void sim_graph_atfork(enum sim_fork_phase phase) {
    if (phase == SIM_FORK_PREPARE)
        pthread_mutex_lock(&gr.lock);
    else if (phase == SIM_FORK_PARENT)
        pthread_mutex_unlock(&gr.lock);
    else
        pthread_mutex_init(&gr.lock, NULL);
    graph_queue_atfork(phase);
}

static __thread CUstreamCaptureMode tls_capture_mode = CU_STREAM_CAPTURE_MODE_GLOBAL;

/* ---- captured ops become nodes --------------------------------------------------- */

static CUgraphNodeType node_type(const struct sim_op *op) {
    switch (op->kind) {
    case SIM_OP_KERNEL:
        return CU_GRAPH_NODE_TYPE_KERNEL;
    case SIM_OP_COPY:
        return CU_GRAPH_NODE_TYPE_MEMCPY;
    case SIM_OP_MEMSET:
        return CU_GRAPH_NODE_TYPE_MEMSET;
    case SIM_OP_HOSTFN:
        return CU_GRAPH_NODE_TYPE_HOST;
    case SIM_OP_WAIT_EVENT:
        return CU_GRAPH_NODE_TYPE_WAIT_EVENT;
    default:
        return CU_GRAPH_NODE_TYPE_EMPTY;
    }
}

/* With gr.lock held: s takes part in c; a blocking stream makes the legacy stream
 * unusable while c lasts. */
static void mark_blocking(struct sim_capture *c, const struct sim_stream *s) {
    if (c->blocking || (s->flags & CU_STREAM_NON_BLOCKING))
        return;
    c->blocking = 1;
    atomic_fetch_add(&gr.blocking, 1);
}

/* With gr.lock held. */
static int set_deps(struct sim_stream *s, struct sim_node *const *nodes, size_t n) {
    if (n > s->cap_deps_cap) {
        struct sim_node **d = realloc(s->cap_deps, n * sizeof *d);
        if (!d)
            return -1;
        s->cap_deps = d;
        s->cap_deps_cap = n;
    }
    if (n)
        memmove(s->cap_deps, nodes, n * sizeof *nodes);
    s->ncap_deps = n;
    return 0;
}

CUresult sim_capture_op(struct sim_stream *s, struct sim_op *op) {
    /* order inside a graph comes from its edges; the op's stream deps do not apply */
    if (op->deps != op->dep_inline)
        free(op->deps);
    op->deps = op->dep_inline;
    op->ndeps = 0;
    op->dep_cap = sizeof op->dep_inline / sizeof op->dep_inline[0];
    struct sim_node *n = calloc(1, sizeof *n);
    pthread_mutex_lock(&gr.lock);
    struct sim_capture *c = s->capture;
    struct sim_graph *g = c ? c->graph : NULL;
    CUresult r = CUDA_SUCCESS;
    if (!c || c->invalidated || !g)
        r = CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
    else if (!n || (s->ncap_deps && !(n->deps = malloc(s->ncap_deps * sizeof *n->deps))))
        r = CUDA_ERROR_OUT_OF_MEMORY;
    else if (g->n == g->cap) {
        size_t cap = g->cap ? 2 * g->cap : 16;
        struct sim_node **nodes = realloc(g->nodes, cap * sizeof *nodes);
        if (!nodes)
            r = CUDA_ERROR_OUT_OF_MEMORY;
        else {
            g->nodes = nodes;
            g->cap = cap;
        }
    }
    if (r == CUDA_SUCCESS) {
        n->magic = NODE_MAGIC;
        n->type = node_type(op);
        n->op = op;
        n->graph = g;
        n->ndeps = s->ncap_deps;
        n->index = (uint32_t)g->n;
        if (n->ndeps)
            memcpy(n->deps, s->cap_deps, n->ndeps * sizeof *n->deps);
        g->nodes[g->n++] = n;
        set_deps(s, &n, 1); /* never grows past 1 after the first node: cannot fail */
    }
    pthread_mutex_unlock(&gr.lock);
    if (r != CUDA_SUCCESS) {
        if (n)
            free(n->deps);
        free(n);
        sim_op_free(op);
        if (c && r == CUDA_ERROR_OUT_OF_MEMORY)
            c->invalidated = 1;
    }
    return r;
}

CUresult sim_capture_record(struct sim_stream *s, struct sim_event *e) {
    pthread_mutex_lock(&gr.lock);
    struct sim_node **nodes = s->ncap_deps ? malloc(s->ncap_deps * sizeof *nodes) : NULL;
    CUresult r = CUDA_SUCCESS;
    if (s->ncap_deps && !nodes) {
        r = CUDA_ERROR_OUT_OF_MEMORY;
    } else {
        if (s->ncap_deps)
            memcpy(nodes, s->cap_deps, s->ncap_deps * sizeof *nodes);
        free(e->cap_nodes);
        e->cap_nodes = nodes;
        e->ncap_nodes = s->ncap_deps;
        e->cap = s->capture;
    }
    pthread_mutex_unlock(&gr.lock);
    return r;
}

CUresult sim_capture_wait(struct sim_stream *s, struct sim_event *e) {
    CUresult r = CUDA_SUCCESS;
    pthread_mutex_lock(&gr.lock);
    if (s->capture && !s->capture->graph)
        s->capture = NULL;
    if (!e->cap || !e->cap->graph) {
        r = CUDA_SUCCESS; /* recorded in a capture that has ended: nothing to join */
    } else if (s->capture && s->capture != e->cap) {
        /* two separate captures would merge: invalid, both are invalidated */
        s->capture->invalidated = 1;
        e->cap->invalidated = 1;
        r = CUDA_ERROR_STREAM_CAPTURE_MERGE;
    } else if (!s->capture) {
        /* fork: s joins the capture, after the event's nodes */
        if (set_deps(s, e->cap_nodes, e->ncap_nodes) != 0) {
            r = CUDA_ERROR_OUT_OF_MEMORY;
        } else {
            s->capture = e->cap;
            mark_blocking(e->cap, s);
        }
    } else {
        /* join: s's next node also depends on the event's nodes */
        size_t n = s->ncap_deps + e->ncap_nodes;
        struct sim_node **all = malloc((n ? n : 1) * sizeof *all);
        if (!all) {
            r = CUDA_ERROR_OUT_OF_MEMORY;
        } else {
            size_t k = 0;
            for (size_t i = 0; i < s->ncap_deps; i++)
                all[k++] = s->cap_deps[i];
            for (size_t i = 0; i < e->ncap_nodes; i++) {
                int dup = 0;
                for (size_t j = 0; j < k; j++)
                    dup |= all[j] == e->cap_nodes[i];
                if (!dup)
                    all[k++] = e->cap_nodes[i];
            }
            if (set_deps(s, all, k) != 0)
                r = CUDA_ERROR_OUT_OF_MEMORY;
            free(all);
        }
    }
    pthread_mutex_unlock(&gr.lock);
    return r;
}

CUresult sim_capture_wait_external(struct sim_stream *s, struct sim_event *e) {
    struct sim_op *op = sim_op_new(SIM_OP_WAIT_EVENT);
    if (!op)
        return CUDA_ERROR_OUT_OF_MEMORY;
    op->u.wait.event = e;
    return sim_capture_op(s, op);
}

int sim_capture_active(struct sim_capture *c) {
    pthread_mutex_lock(&gr.lock);
    int active = c && c->graph != NULL;
    pthread_mutex_unlock(&gr.lock);
    return active;
}

/* ---- capture modes --------------------------------------------------------------- */

CUresult sim_capture_unsafe_call(void) {
    if (!atomic_load_explicit(&gr.strict, memory_order_acquire) ||
        tls_capture_mode == CU_STREAM_CAPTURE_MODE_RELAXED)
        return CUDA_SUCCESS;
    pthread_t self = pthread_self();
    int prohibited = 0;
    pthread_mutex_lock(&gr.lock);
    for (struct sim_capture *c = gr.active; c; c = c->active_next) {
        if (c->mode == CU_STREAM_CAPTURE_MODE_RELAXED)
            continue;
        /* the thread's own capture; in GLOBAL mode, any other thread's GLOBAL one */
        if (pthread_equal(c->owner, self) || (tls_capture_mode == CU_STREAM_CAPTURE_MODE_GLOBAL &&
                                              c->mode == CU_STREAM_CAPTURE_MODE_GLOBAL)) {
            c->invalidated = 1;
            prohibited = 1;
        }
    }
    pthread_mutex_unlock(&gr.lock);
    if (prohibited)
        sim_log("simcuda: %s: a potentially unsafe call during stream capture: refused, the "
                "capture invalidated",
                sim_tls_entry);
    return prohibited ? CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED : CUDA_SUCCESS;
}

int sim_capture_invalidate_stream(struct sim_stream *s) {
    if (!sim_stream_is_capturing(s))
        return 0;
    pthread_mutex_lock(&gr.lock);
    if (s->capture)
        s->capture->invalidated = 1;
    pthread_mutex_unlock(&gr.lock);
    return 1;
}

CUresult sim_capture_conflict_stream(struct sim_stream *s) {
    if (!sim_capture_invalidate_stream(s))
        return CUDA_SUCCESS;
    sim_log("simcuda: %s: conflicts with the stream's capture: refused, the capture invalidated",
            sim_tls_entry);
    return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
}

CUresult sim_capture_conflict_ctx(struct sim_ctx *ctx) {
    int conflict = 0;
    pthread_mutex_lock(&gr.lock);
    for (struct sim_capture *c = gr.active; c; c = c->active_next)
        if (c->origin->ctx == ctx) {
            c->invalidated = 1;
            conflict = 1;
        }
    pthread_mutex_unlock(&gr.lock);
    if (conflict)
        sim_log("simcuda: %s: the context has a capturing stream: refused, the capture "
                "invalidated",
                sim_tls_entry);
    return conflict ? CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED : CUDA_SUCCESS;
}

CUresult sim_capture_conflict_event(struct sim_event *e) {
    struct sim_capture *c = e->cap;
    if (!c)
        return CUDA_SUCCESS;
    pthread_mutex_lock(&gr.lock);
    int captured = c->graph != NULL;
    if (captured)
        c->invalidated = 1;
    pthread_mutex_unlock(&gr.lock);
    if (captured)
        sim_log("simcuda: %s: the event was recorded in an active capture: refused, the "
                "capture invalidated",
                sim_tls_entry);
    return captured ? CUDA_ERROR_CAPTURED_EVENT : CUDA_SUCCESS;
}

CUresult sim_capture_legacy_use(struct sim_stream *s, int invalidate) {
    if (s->kind != SIM_STREAM_LEGACY || !atomic_load_explicit(&gr.blocking, memory_order_acquire))
        return CUDA_SUCCESS;
    int implicit = 0;
    pthread_mutex_lock(&gr.lock);
    for (struct sim_capture *c = gr.active; c; c = c->active_next)
        if (c->blocking && c->origin->ctx == s->ctx) {
            implicit = 1;
            if (invalidate)
                c->invalidated = 1;
        }
    pthread_mutex_unlock(&gr.lock);
    if (implicit)
        sim_log("simcuda: %s: the legacy stream while a blocking stream captures: refused%s",
                sim_tls_entry, invalidate ? ", the capture invalidated" : "");
    return implicit ? CUDA_ERROR_STREAM_CAPTURE_IMPLICIT : CUDA_SUCCESS;
}

int sim_stream_is_capturing(struct sim_stream *s) {
    if (!s->capture)
        return 0; /* the fast path: one load */
    pthread_mutex_lock(&gr.lock);
    if (s->capture && !s->capture->graph)
        s->capture = NULL; /* joined a capture that has ended */
    int capturing = s->capture != NULL;
    pthread_mutex_unlock(&gr.lock);
    return capturing;
}

/* ---- capture entry points -------------------------------------------------------- */

static CUresult begin_capture(CUstream h, CUstreamCaptureMode mode, int pt) {
    RESOLVE(h, pt, s);
    if (s->kind == SIM_STREAM_LEGACY)
        return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    if ((unsigned)mode > CU_STREAM_CAPTURE_MODE_RELAXED)
        return CUDA_ERROR_INVALID_VALUE;
    struct sim_capture *c = calloc(1, sizeof *c);
    struct sim_graph *g = graph_new();
    if (!c || !g) {
        free(c);
        free(g);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    CUresult r = CUDA_SUCCESS;
    int busy = sim_stream_is_capturing(s);
    pthread_mutex_lock(&gr.lock);
    if (busy) {
        r = CUDA_ERROR_ILLEGAL_STATE;
    } else {
        c->id = ++gr.next_id;
        c->graph = g;
        c->origin = s;
        c->mode = mode;
        c->owner = pthread_self();
        c->next = gr.all;
        gr.all = c;
        c->active_next = gr.active;
        gr.active = c;
        if (mode != CU_STREAM_CAPTURE_MODE_RELAXED)
            atomic_fetch_add(&gr.strict, 1);
        s->capture = c;
        s->ncap_deps = 0;
        mark_blocking(c, s);
    }
    pthread_mutex_unlock(&gr.lock);
    if (r != CUDA_SUCCESS) {
        free(c);
        free(g);
    }
    return r;
}

SIM_API CUresult cuStreamBeginCapture_v2(CUstream hStream, CUstreamCaptureMode mode) {
    SIM_ENTER("cuStreamBeginCapture_v2");
    return begin_capture(hStream, mode, 0);
}
SIM_API CUresult cuStreamBeginCapture_v2_ptsz(CUstream hStream, CUstreamCaptureMode mode) {
    SIM_ENTER("cuStreamBeginCapture_v2_ptsz");
    return begin_capture(hStream, mode, 1);
}
#undef cuStreamBeginCapture
SIM_API CUresult cuStreamBeginCapture(CUstream hStream) {
    SIM_ENTER("cuStreamBeginCapture");
    return begin_capture(hStream, CU_STREAM_CAPTURE_MODE_GLOBAL, 0);
}
SIM_API CUresult cuStreamBeginCapture_ptsz(CUstream hStream) {
    SIM_ENTER("cuStreamBeginCapture_ptsz");
    return begin_capture(hStream, CU_STREAM_CAPTURE_MODE_GLOBAL, 1);
}

static CUresult end_capture(CUstream h, CUgraph *out, int pt) {
    if (!out)
        return CUDA_ERROR_INVALID_VALUE;
    RESOLVE(h, pt, s);
    int capturing = sim_stream_is_capturing(s);
    pthread_mutex_lock(&gr.lock);
    struct sim_capture *c = s->capture;
    if (!capturing || !c) {
        pthread_mutex_unlock(&gr.lock);
        return CUDA_ERROR_ILLEGAL_STATE;
    }
    if (c->origin != s) {
        c->invalidated = 1;
        pthread_mutex_unlock(&gr.lock);
        return CUDA_ERROR_STREAM_CAPTURE_UNMATCHED;
    }
    if (c->mode != CU_STREAM_CAPTURE_MODE_RELAXED && !pthread_equal(c->owner, pthread_self())) {
        pthread_mutex_unlock(&gr.lock);
        return CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD;
    }
    s->capture = NULL;
    for (struct sim_capture **p = &gr.active; *p; p = &(*p)->active_next)
        if (*p == c) {
            *p = c->active_next;
            break;
        }
    if (c->mode != CU_STREAM_CAPTURE_MODE_RELAXED)
        atomic_fetch_sub(&gr.strict, 1);
    if (c->blocking)
        atomic_fetch_sub(&gr.blocking, 1);
    pthread_mutex_unlock(&gr.lock);
    CUresult r = CUDA_SUCCESS;
    if (c->invalidated) {
        graph_free(c->graph);
        *out = NULL;
        r = CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
    } else {
        *out = (CUgraph)c->graph;
    }
    /* Streams that joined the capture, and events recorded in it, still point at c:
     * it is kept (a few bytes) and marked ended; they drop it when they next look. */
    pthread_mutex_lock(&gr.lock);
    c->graph = NULL;
    pthread_mutex_unlock(&gr.lock);
    return r;
}

SIM_API CUresult cuStreamEndCapture(CUstream hStream, CUgraph *phGraph) {
    SIM_ENTER("cuStreamEndCapture");
    return end_capture(hStream, phGraph, 0);
}
SIM_API CUresult cuStreamEndCapture_ptsz(CUstream hStream, CUgraph *phGraph) {
    SIM_ENTER("cuStreamEndCapture_ptsz");
    return end_capture(hStream, phGraph, 1);
}

static CUresult capture_info(CUstream h, CUstreamCaptureStatus *status, cuuint64_t *id,
                             CUgraph *graph, const CUgraphNode **deps,
                             const CUgraphEdgeData **edges, size_t *ndeps, int pt) {
    if (!status)
        return CUDA_ERROR_INVALID_VALUE;
    struct sim_stream *s;
    CUresult r = sim_stream_lookup(h, pt, &s);
    if (r == CUDA_SUCCESS) /* the legacy stream's status is unspecified; not invalidated */
        r = sim_capture_legacy_use(s, 0);
    if (r != CUDA_SUCCESS)
        return r;
    pthread_mutex_lock(&gr.lock);
    struct sim_capture *c = s->capture;
    if (c && c->graph == NULL) {
        /* the capture ended on its origin; this joined stream is out of it */
        s->capture = NULL;
        c = NULL;
    }
    *status = !c               ? CU_STREAM_CAPTURE_STATUS_NONE
              : c->invalidated ? CU_STREAM_CAPTURE_STATUS_INVALIDATED
                               : CU_STREAM_CAPTURE_STATUS_ACTIVE;
    if (c && id)
        *id = c->id;
    if (c && graph)
        *graph = (CUgraph)c->graph;
    if (c && deps)
        *deps = (const CUgraphNode *)s->cap_deps;
    if (c && edges)
        *edges = NULL;
    if (c && ndeps)
        *ndeps = s->ncap_deps;
    pthread_mutex_unlock(&gr.lock);
    return CUDA_SUCCESS;
}

SIM_API CUresult cuStreamIsCapturing(CUstream hStream, CUstreamCaptureStatus *captureStatus) {
    SIM_ENTER("cuStreamIsCapturing");
    return capture_info(hStream, captureStatus, NULL, NULL, NULL, NULL, NULL, 0);
}
SIM_API CUresult cuStreamIsCapturing_ptsz(CUstream hStream, CUstreamCaptureStatus *captureStatus) {
    SIM_ENTER("cuStreamIsCapturing_ptsz");
    return capture_info(hStream, captureStatus, NULL, NULL, NULL, NULL, NULL, 1);
}

#undef cuStreamGetCaptureInfo
SIM_API CUresult cuStreamGetCaptureInfo(CUstream hStream, CUstreamCaptureStatus *status,
                                        cuuint64_t *id) {
    SIM_ENTER("cuStreamGetCaptureInfo");
    return capture_info(hStream, status, id, NULL, NULL, NULL, NULL, 0);
}
SIM_API CUresult cuStreamGetCaptureInfo_ptsz(CUstream hStream, CUstreamCaptureStatus *status,
                                             cuuint64_t *id) {
    SIM_ENTER("cuStreamGetCaptureInfo_ptsz");
    return capture_info(hStream, status, id, NULL, NULL, NULL, NULL, 1);
}
SIM_API CUresult cuStreamGetCaptureInfo_v2(CUstream hStream, CUstreamCaptureStatus *status,
                                           cuuint64_t *id, CUgraph *graph, const CUgraphNode **deps,
                                           size_t *ndeps) {
    SIM_ENTER("cuStreamGetCaptureInfo_v2");
    return capture_info(hStream, status, id, graph, deps, NULL, ndeps, 0);
}
SIM_API CUresult cuStreamGetCaptureInfo_v2_ptsz(CUstream hStream, CUstreamCaptureStatus *status,
                                                cuuint64_t *id, CUgraph *graph,
                                                const CUgraphNode **deps, size_t *ndeps) {
    SIM_ENTER("cuStreamGetCaptureInfo_v2_ptsz");
    return capture_info(hStream, status, id, graph, deps, NULL, ndeps, 1);
}
SIM_API CUresult cuStreamGetCaptureInfo_v3(CUstream hStream, CUstreamCaptureStatus *status,
                                           cuuint64_t *id, CUgraph *graph, const CUgraphNode **deps,
                                           const CUgraphEdgeData **edges, size_t *ndeps) {
    SIM_ENTER("cuStreamGetCaptureInfo_v3");
    return capture_info(hStream, status, id, graph, deps, edges, ndeps, 0);
}
SIM_API CUresult cuStreamGetCaptureInfo_v3_ptsz(CUstream hStream, CUstreamCaptureStatus *status,
                                                cuuint64_t *id, CUgraph *graph,
                                                const CUgraphNode **deps,
                                                const CUgraphEdgeData **edges, size_t *ndeps) {
    SIM_ENTER("cuStreamGetCaptureInfo_v3_ptsz");
    return capture_info(hStream, status, id, graph, deps, edges, ndeps, 1);
}

SIM_API CUresult cuThreadExchangeStreamCaptureMode(CUstreamCaptureMode *mode) {
    SIM_ENTER("cuThreadExchangeStreamCaptureMode");
    if (!mode || (unsigned)*mode > CU_STREAM_CAPTURE_MODE_RELAXED)
        return CUDA_ERROR_INVALID_VALUE;
    CUstreamCaptureMode old = tls_capture_mode;
    tls_capture_mode = *mode;
    *mode = old;
    return CUDA_SUCCESS;
}
