/*
 * graph.c — stream capture and graphs.
 *
 * While a stream captures, the ops its entry points build (kernels, copies, memsets,
 * host functions) become graph nodes instead of queued work; each node depends on the
 * stream's current node set, then becomes it. Events recorded during capture carry node
 * sets, so cuStreamWaitEvent forks other streams into the capture and joins them back.
 * Nodes are kept in creation order, which is a topological order: an instantiated graph
 * (cuGraphInstantiate*) is a copy of the nodes' ops and of their edges, and cuGraphLaunch
 * queues one op whose worker runs the nodes as their edges allow: a node starts once its
 * dependencies are done, and independent nodes run at the same time on a few helper
 * threads, as independent branches do on a GPU.
 *
 * Capture modes are enforced as the driver documents them (cuThreadExchangeStreamCaptureMode):
 * a thread whose own capture was not begun RELAXED, or (in GLOBAL mode) any thread while
 * another has a GLOBAL capture, may not make potentially unsafe calls: they fail with
 * CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED and invalidate the capture.
 */
#include "tests/sim/sim.h"

#include "tests/sim/strict.h"

#include <stdlib.h>
#include <string.h>

#define GRAPH_MAGIC 0x47524150u
#define NODE_MAGIC 0x4e4f4445u
#define EXEC_MAGIC 0x47455845u

struct sim_node {
    unsigned magic;
    CUgraphNodeType type;
    struct sim_op *op;
    struct sim_graph *graph;
    struct sim_node **deps;
    size_t ndeps;
    uint32_t index; /* in its graph's nodes */
};

struct sim_graph {
    unsigned magic;
    struct sim_node **nodes;
    size_t n, cap;
};

/* What a launch runs: an instantiated graph's ops, shared by the exec handle and every
 * queued launch, so cuGraphExecUpdate/Destroy never pull ops from under a launch. */
struct sim_graph_exec {
    atomic_int refs;
    struct sim_op **ops;
    size_t n;
    unsigned kernels;
    /* the edges: node i has ndeps[i] dependencies; its successors are
     * succ[succ_start[i] .. succ_start[i + 1]) */
    uint32_t *ndeps, *succ_start, *succ;
    /* before[i * words ..]: a bit per node that happens before node i */
    uint64_t *before;
    size_t words;
};

/* The graphExec. Its launches are ordered after each other, whatever their streams ("each
 * launch is ordered behind ... any previous launches of graphExec"): each depends on the
 * last one, and the race detector orders it after that one's clock. `lock` guards current
 * and the last launch, and is held across a launch's submission. */
struct graph_exec_handle {
    unsigned magic;
    struct sim_graph_exec *current;
    pthread_mutex_t lock;
    struct sim_stream *last_stream; /* the last launch: (stream, seq), NULL before the first */
    uint64_t last_seq;
    struct sim_vc *last_vc; /* its clock (race.c), NULL with the detector off */
};

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

static void graph_queue_atfork(enum sim_fork_phase phase);

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

/* ---- graphs and nodes ------------------------------------------------------------ */

static struct sim_graph *graph_new(void) {
    struct sim_graph *g = calloc(1, sizeof *g);
    if (g)
        g->magic = GRAPH_MAGIC;
    return g;
}

static struct sim_graph *graph_of(CUgraph h) {
    struct sim_graph *g = (struct sim_graph *)h;
    return g && g->magic == GRAPH_MAGIC ? g : NULL;
}

static struct sim_node *node_of(CUgraphNode h) {
    struct sim_node *n = (struct sim_node *)h;
    return n && n->magic == NODE_MAGIC ? n : NULL;
}

static void graph_free(struct sim_graph *g) {
    for (size_t i = 0; i < g->n; i++) {
        sim_op_free(g->nodes[i]->op);
        free(g->nodes[i]->deps);
        g->nodes[i]->magic = 0;
        free(g->nodes[i]);
    }
    free(g->nodes);
    g->magic = 0;
    free(g);
}

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

#define RESOLVE(h, pt, s)                                                                          \
    struct sim_stream *s;                                                                          \
    do {                                                                                           \
        CUresult r_ = sim_stream_resolve((h), (pt), &s);                                           \
        if (r_ != CUDA_SUCCESS)                                                                    \
            return r_;                                                                             \
    } while (0)

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

/* ---- graph entry points ---------------------------------------------------------- */

SIM_API CUresult cuGraphCreate(CUgraph *phGraph, unsigned int flags) {
    SIM_ENTER("cuGraphCreate");
    if (!phGraph || flags)
        return CUDA_ERROR_INVALID_VALUE;
    struct sim_graph *g = graph_new();
    if (!g)
        return CUDA_ERROR_OUT_OF_MEMORY;
    *phGraph = (CUgraph)g;
    return CUDA_SUCCESS;
}

SIM_API CUresult cuGraphDestroy(CUgraph hGraph) {
    SIM_ENTER("cuGraphDestroy");
    struct sim_graph *g = graph_of(hGraph);
    if (!g)
        return CUDA_ERROR_INVALID_VALUE;
    graph_free(g);
    return CUDA_SUCCESS;
}

SIM_API CUresult cuGraphGetNodes(CUgraph hGraph, CUgraphNode *nodes, size_t *numNodes) {
    SIM_ENTER("cuGraphGetNodes");
    struct sim_graph *g = graph_of(hGraph);
    if (!g || !numNodes)
        return CUDA_ERROR_INVALID_VALUE;
    if (nodes) {
        for (size_t i = 0; i < *numNodes; i++)
            nodes[i] = i < g->n ? (CUgraphNode)g->nodes[i] : NULL;
    }
    *numNodes = g->n;
    return CUDA_SUCCESS;
}

SIM_API CUresult cuGraphNodeGetType(CUgraphNode hNode, CUgraphNodeType *type) {
    SIM_ENTER("cuGraphNodeGetType");
    struct sim_node *n = node_of(hNode);
    if (!n || !type)
        return CUDA_ERROR_INVALID_VALUE;
    *type = n->type;
    return CUDA_SUCCESS;
}

static CUresult kernel_params(CUgraphNode hNode, CUDA_KERNEL_NODE_PARAMS_v1 *p) {
    struct sim_node *n = node_of(hNode);
    if (!n || !p || n->type != CU_GRAPH_NODE_TYPE_KERNEL)
        return CUDA_ERROR_INVALID_VALUE;
    struct sim_op *op = n->op;
    p->func = (CUfunction)op->u.kernel.func;
    p->gridDimX = op->u.kernel.grid.x;
    p->gridDimY = op->u.kernel.grid.y;
    p->gridDimZ = op->u.kernel.grid.z;
    p->blockDimX = op->u.kernel.block.x;
    p->blockDimY = op->u.kernel.block.y;
    p->blockDimZ = op->u.kernel.block.z;
    p->sharedMemBytes = 0;
    p->kernelParams = op->u.kernel.args;
    p->extra = NULL;
    return CUDA_SUCCESS;
}

SIM_API CUresult cuGraphKernelNodeGetParams_v2(CUgraphNode hNode,
                                               CUDA_KERNEL_NODE_PARAMS *nodeParams) {
    SIM_ENTER("cuGraphKernelNodeGetParams_v2");
    if (!nodeParams)
        return CUDA_ERROR_INVALID_VALUE;
    CUDA_KERNEL_NODE_PARAMS_v1 v1;
    CUresult r = kernel_params(hNode, &v1);
    if (r != CUDA_SUCCESS)
        return r;
    memcpy(nodeParams, &v1, sizeof v1);
    nodeParams->kern = NULL;
    nodeParams->ctx = (CUcontext)sim_ctx_current();
    return CUDA_SUCCESS;
}

#undef cuGraphKernelNodeGetParams
SIM_API CUresult cuGraphKernelNodeGetParams(CUgraphNode hNode,
                                            CUDA_KERNEL_NODE_PARAMS_v1 *nodeParams) {
    SIM_ENTER("cuGraphKernelNodeGetParams");
    return kernel_params(hNode, nodeParams);
}

SIM_API CUresult cuGraphMemcpyNodeGetParams(CUgraphNode hNode, CUDA_MEMCPY3D *p) {
    SIM_ENTER("cuGraphMemcpyNodeGetParams");
    struct sim_node *n = node_of(hNode);
    if (!n || !p || n->type != CU_GRAPH_NODE_TYPE_MEMCPY)
        return CUDA_ERROR_INVALID_VALUE;
    const struct sim_op *op = n->op;
    memset(p, 0, sizeof *p);
    p->srcMemoryType = p->dstMemoryType = CU_MEMORYTYPE_UNIFIED;
    p->srcDevice = (CUdeviceptr)(uintptr_t)op->u.copy.src;
    p->dstDevice = (CUdeviceptr)(uintptr_t)op->u.copy.dst;
    p->srcPitch = op->u.copy.spitch;
    p->dstPitch = op->u.copy.dpitch;
    p->srcHeight = op->u.copy.spitch ? op->u.copy.sslice / op->u.copy.spitch : 0;
    p->dstHeight = op->u.copy.dpitch ? op->u.copy.dslice / op->u.copy.dpitch : 0;
    p->WidthInBytes = op->u.copy.width;
    p->Height = op->u.copy.height;
    p->Depth = op->u.copy.depth;
    return CUDA_SUCCESS;
}

SIM_API CUresult cuGraphMemsetNodeGetParams(CUgraphNode hNode, CUDA_MEMSET_NODE_PARAMS *p) {
    SIM_ENTER("cuGraphMemsetNodeGetParams");
    struct sim_node *n = node_of(hNode);
    if (!n || !p || n->type != CU_GRAPH_NODE_TYPE_MEMSET)
        return CUDA_ERROR_INVALID_VALUE;
    const struct sim_op *op = n->op;
    p->dst = (CUdeviceptr)(uintptr_t)op->u.memset.dst;
    p->pitch = op->u.memset.pitch;
    p->value = op->u.memset.value;
    p->elementSize = op->u.memset.elem;
    p->width = op->u.memset.width;
    p->height = op->u.memset.height;
    return CUDA_SUCCESS;
}

static struct sim_op *op_clone(const struct sim_op *src) {
    struct sim_op *op = sim_op_new(src->kind);
    if (!op)
        return NULL;
    op->u = src->u;
    op->entry = src->entry; /* the entry point that captured it, for race reports */
    if (src->kind == SIM_OP_KERNEL) {
        const struct simkernel_desc *d = src->u.kernel.desc;
        size_t size = 1;
        for (unsigned i = 0; i < d->param_count; i++)
            if (d->param_offset[i] + d->param_size[i] > size)
                size = d->param_offset[i] + d->param_size[i];
        op->u.kernel.argbuf = sim_argbuf_new(size);
        if (!op->u.kernel.argbuf) {
            free(op);
            return NULL;
        }
        memcpy(op->u.kernel.argbuf, src->u.kernel.argbuf, size);
        for (unsigned i = 0; i < d->param_count; i++)
            op->u.kernel.args[i] = op->u.kernel.argbuf + d->param_offset[i];
    }
    if (src->kind == SIM_OP_COPY)
        op->u.copy.staging = NULL; /* captured copies are never staged */
    return op;
}

/* The exec's copy of g's edges, as node indices, and what happens before what. */
static int edges_from(struct sim_graph_exec *x, const struct sim_graph *g) {
    size_t n = g->n, total = 0;
    for (size_t i = 0; i < n; i++)
        total += g->nodes[i]->ndeps;
    x->words = (n + 63) / 64;
    x->ndeps = calloc(n ? n : 1, sizeof *x->ndeps);
    x->succ_start = calloc(n + 1, sizeof *x->succ_start);
    x->succ = calloc(total ? total : 1, sizeof *x->succ);
    x->before = calloc(n ? n * x->words : 1, sizeof *x->before);
    if (!x->ndeps || !x->succ_start || !x->succ || !x->before)
        return -1;
    for (size_t i = 0; i < n; i++) {
        x->ndeps[i] = (uint32_t)g->nodes[i]->ndeps;
        for (size_t k = 0; k < g->nodes[i]->ndeps; k++)
            x->succ_start[g->nodes[i]->deps[k]->index + 1]++;
    }
    for (size_t i = 0; i < n; i++)
        x->succ_start[i + 1] += x->succ_start[i];
    uint32_t *fill = calloc(n ? n : 1, sizeof *fill);
    if (!fill)
        return -1;
    /* creation order is topological: a dependency's row is complete before its user's */
    for (size_t i = 0; i < n; i++) {
        uint64_t *row = x->before + i * x->words;
        for (size_t k = 0; k < g->nodes[i]->ndeps; k++) {
            uint32_t d = g->nodes[i]->deps[k]->index;
            x->succ[x->succ_start[d] + fill[d]++] = (uint32_t)i;
            const uint64_t *drow = x->before + (size_t)d * x->words;
            for (size_t w = 0; w < x->words; w++)
                row[w] |= drow[w];
            row[d / 64] |= 1ull << (d % 64);
        }
    }
    free(fill);
    return 0;
}

int sim_graph_node_before(const struct sim_graph_exec *x, uint32_t a, uint32_t b) {
    return a < x->n && b < x->n && (x->before[(size_t)b * x->words + a / 64] >> (a % 64) & 1);
}

/* A fresh op set cloned from the graph's nodes (one reference), or NULL. */
static struct sim_graph_exec *ops_from(struct sim_graph *g) {
    struct sim_graph_exec *x = calloc(1, sizeof *x);
    if (!x || !(x->ops = calloc(g->n ? g->n : 1, sizeof *x->ops))) {
        free(x);
        return NULL;
    }
    atomic_init(&x->refs, 1);
    for (size_t i = 0; i < g->n; i++) {
        if (!(x->ops[i] = op_clone(g->nodes[i]->op))) {
            x->n = i;
            sim_graph_exec_release(x);
            return NULL;
        }
        x->kernels += x->ops[i]->kind == SIM_OP_KERNEL;
    }
    x->n = g->n;
    if (edges_from(x, g) != 0) {
        sim_graph_exec_release(x);
        return NULL;
    }
    return x;
}

static CUresult instantiate(CUgraphExec *out, CUgraph hGraph) {
    struct sim_graph *g = graph_of(hGraph);
    if (!out || !g)
        return CUDA_ERROR_INVALID_VALUE;
    struct graph_exec_handle *h = calloc(1, sizeof *h);
    struct sim_graph_exec *x = h ? ops_from(g) : NULL;
    if (!x) {
        free(h);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    h->magic = EXEC_MAGIC;
    h->current = x;
    pthread_mutex_init(&h->lock, NULL);
    *out = (CUgraphExec)h;
    return CUDA_SUCCESS;
}

static struct graph_exec_handle *exec_of(CUgraphExec h) {
    struct graph_exec_handle *x = (struct graph_exec_handle *)h;
    return x && x->magic == EXEC_MAGIC ? x : NULL;
}

/* The graph replaces the exec's ops if it has the same nodes, of the same types. */
static CUresult exec_update(CUgraphExec hx, CUgraph hg, CUgraphExecUpdateResult *result,
                            CUgraphNode *error_node) {
    struct graph_exec_handle *h = exec_of(hx);
    struct sim_graph *g = graph_of(hg);
    *result = CU_GRAPH_EXEC_UPDATE_ERROR;
    *error_node = NULL;
    if (!h || !g)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&h->lock);
    struct sim_graph_exec *old = h->current;
    CUresult r = CUDA_SUCCESS;
    if (old->n != g->n) {
        *result = CU_GRAPH_EXEC_UPDATE_ERROR_TOPOLOGY_CHANGED;
        r = CUDA_ERROR_GRAPH_EXEC_UPDATE_FAILURE;
    }
    for (size_t i = 0; r == CUDA_SUCCESS && i < g->n; i++)
        if (old->ops[i]->kind != g->nodes[i]->op->kind) {
            *result = CU_GRAPH_EXEC_UPDATE_ERROR_NODE_TYPE_CHANGED;
            *error_node = (CUgraphNode)g->nodes[i];
            r = CUDA_ERROR_GRAPH_EXEC_UPDATE_FAILURE;
        }
    struct sim_graph_exec *x = r == CUDA_SUCCESS ? ops_from(g) : NULL;
    if (r == CUDA_SUCCESS && !x)
        r = CUDA_ERROR_OUT_OF_MEMORY;
    if (x) {
        h->current = x;
        *result = CU_GRAPH_EXEC_UPDATE_SUCCESS;
    }
    pthread_mutex_unlock(&h->lock);
    if (x)
        sim_graph_exec_release(old);
    return r;
}

SIM_API CUresult cuGraphExecUpdate_v2(CUgraphExec hGraphExec, CUgraph hGraph,
                                      CUgraphExecUpdateResultInfo *resultInfo) {
    SIM_ENTER("cuGraphExecUpdate_v2");
    if (!resultInfo)
        return CUDA_ERROR_INVALID_VALUE;
    resultInfo->errorFromNode = NULL;
    return exec_update(hGraphExec, hGraph, &resultInfo->result, &resultInfo->errorNode);
}

#undef cuGraphExecUpdate
SIM_API CUresult cuGraphExecUpdate(CUgraphExec hGraphExec, CUgraph hGraph,
                                   CUgraphNode *hErrorNode_out,
                                   CUgraphExecUpdateResult *updateResult_out) {
    SIM_ENTER("cuGraphExecUpdate");
    if (!hErrorNode_out || !updateResult_out)
        return CUDA_ERROR_INVALID_VALUE;
    return exec_update(hGraphExec, hGraph, updateResult_out, hErrorNode_out);
}

SIM_API CUresult cuGraphChildGraphNodeGetGraph(CUgraphNode hNode, CUgraph *phGraph) {
    SIM_ENTER("cuGraphChildGraphNodeGetGraph");
    (void)phGraph;
    /* capture never makes child-graph nodes */
    return node_of(hNode) ? CUDA_ERROR_INVALID_VALUE : CUDA_ERROR_INVALID_HANDLE;
}

SIM_API CUresult cuGraphInstantiateWithFlags(CUgraphExec *phGraphExec, CUgraph hGraph,
                                             unsigned long long flags) {
    SIM_ENTER("cuGraphInstantiateWithFlags");
    (void)flags;
    return instantiate(phGraphExec, hGraph);
}

static CUresult instantiate_with_params(CUgraphExec *out, CUgraph g,
                                        CUDA_GRAPH_INSTANTIATE_PARAMS *p) {
    if (!p)
        return CUDA_ERROR_INVALID_VALUE;
    p->result_out = CUDA_GRAPH_INSTANTIATE_SUCCESS;
    p->hErrNode_out = NULL;
    CUresult r = instantiate(out, g);
    if (r != CUDA_SUCCESS)
        p->result_out = CUDA_GRAPH_INSTANTIATE_ERROR;
    return r;
}

#undef cuGraphInstantiateWithParams
SIM_API CUresult cuGraphInstantiateWithParams(CUgraphExec *phGraphExec, CUgraph hGraph,
                                              CUDA_GRAPH_INSTANTIATE_PARAMS *params) {
    SIM_ENTER("cuGraphInstantiateWithParams");
    return instantiate_with_params(phGraphExec, hGraph, params);
}
SIM_API CUresult cuGraphInstantiateWithParams_ptsz(CUgraphExec *phGraphExec, CUgraph hGraph,
                                                   CUDA_GRAPH_INSTANTIATE_PARAMS *params) {
    SIM_ENTER("cuGraphInstantiateWithParams_ptsz");
    return instantiate_with_params(phGraphExec, hGraph, params);
}

/* The pre-11.4 ABIs: (exec, graph, error node, log buffer, its size). */
#undef cuGraphInstantiate
SIM_API CUresult cuGraphInstantiate(CUgraphExec *phGraphExec, CUgraph hGraph,
                                    CUgraphNode *phErrorNode, char *logBuffer, size_t bufferSize) {
    SIM_ENTER("cuGraphInstantiate");
    if (phErrorNode)
        *phErrorNode = NULL;
    if (logBuffer && bufferSize)
        logBuffer[0] = 0;
    return instantiate(phGraphExec, hGraph);
}
SIM_API CUresult cuGraphInstantiate_v2(CUgraphExec *phGraphExec, CUgraph hGraph,
                                       CUgraphNode *phErrorNode, char *logBuffer,
                                       size_t bufferSize) {
    SIM_ENTER("cuGraphInstantiate_v2");
    if (phErrorNode)
        *phErrorNode = NULL;
    if (logBuffer && bufferSize)
        logBuffer[0] = 0;
    return instantiate(phGraphExec, hGraph);
}

void sim_graph_exec_release(struct sim_graph_exec *x) {
    if (atomic_fetch_sub(&x->refs, 1) != 1)
        return;
    for (size_t i = 0; i < x->n; i++)
        sim_op_free(x->ops[i]);
    free(x->ops);
    free(x->ndeps);
    free(x->succ_start);
    free(x->succ);
    free(x->before);
    free(x);
}

/* ---- running a launched graph ---------------------------------------------------- */

/* Independent nodes run on these threads (and on the launching stream's worker). */
#define GRAPH_HELPERS 3

/* One launch being run: what its nodes still wait for. Lives on its worker's stack. */
struct graph_run {
    struct sim_graph_exec *x;
    const struct sim_op *launch;
    uint32_t *waiting; /* per node: dependencies not done yet */
    size_t left;       /* nodes not done yet */
};

struct graph_task {
    struct graph_run *run;
    uint32_t node;
};

/* The ready nodes of every run, and the helpers that take them; one lock. */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t cv; /* broadcast whenever a task is queued or a run finishes */
    struct graph_task *q;
    size_t n, cap;
    size_t reserved; /* the nodes of the runs in progress: q never needs more */
    int helpers;
} gq = {.lock = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

/* The queue's lock is a leaf (nothing is taken under it). The child has no helpers and
 * none of the parent's runs: its queue starts empty. */
static void graph_queue_atfork(enum sim_fork_phase phase) {
    if (phase == SIM_FORK_PREPARE) {
        pthread_mutex_lock(&gq.lock);
    } else if (phase == SIM_FORK_PARENT) {
        pthread_mutex_unlock(&gq.lock);
    } else {
        pthread_mutex_init(&gq.lock, NULL);
        pthread_cond_init(&gq.cv, NULL);
        gq.n = gq.reserved = 0;
        gq.helpers = 0;
    }
}

/* An event wait node waits here, on whichever thread runs it: only the nodes after it
 * wait for the event, as on a GPU; independent branches go on. */
static void wait_for_event(struct graph_run *run, uint32_t i) {
    const struct sim_op *launch = run->launch;
    for (uint32_t k = 0; k < launch->u.graph.nwaits; k++)
        if (launch->u.graph.waits[k].node == i && launch->u.graph.waits[k].on)
            sim_stream_wait_seq(launch->u.graph.waits[k].on, launch->u.graph.waits[k].seq);
}

static void run_node(struct graph_run *run, uint32_t i) {
    if (run->x->ops[i]->kind == SIM_OP_WAIT_EVENT)
        wait_for_event(run, i);
    sim_jitter(NULL);
    sim_race_run_node(run->launch, run->x, i, run->x->ops[i]);
}

/* With gq.lock held: room in the queue for every node of a new run of n nodes (a run
 * queues each of its nodes once at most), so queueing never fails; 0 or -1. */
static int reserve_tasks(size_t n) {
    size_t need = gq.reserved + n;
    if (need > gq.cap) {
        size_t cap = gq.cap ? gq.cap : 64;
        while (cap < need)
            cap *= 2;
        struct graph_task *q = realloc(gq.q, cap * sizeof *q);
        if (!q)
            return -1;
        gq.q = q;
        gq.cap = cap;
    }
    gq.reserved = need;
    return 0;
}

/* With gq.lock held, room reserved. */
static void queue_task(struct graph_run *run, uint32_t i) {
    gq.q[gq.n++] = (struct graph_task){run, i};
}

/* With gq.lock held: node i is done. Its successors that become ready are queued, but
 * one, returned (-1: none), which the caller runs next (a chain stays on one thread). */
static long node_done(struct graph_run *run, uint32_t i) {
    const struct sim_graph_exec *x = run->x;
    long next = -1;
    int queued = 0;
    run->left--;
    for (uint32_t k = x->succ_start[i]; k < x->succ_start[i + 1]; k++) {
        uint32_t j = x->succ[k];
        if (--run->waiting[j] != 0)
            continue;
        if (next < 0) {
            next = j;
        } else {
            queue_task(run, j);
            queued = 1;
        }
    }
    if (queued || run->left == 0)
        pthread_cond_broadcast(&gq.cv);
    return next;
}

static void *graph_helper(void *arg) {
    (void)arg;
    pthread_mutex_lock(&gq.lock);
    for (;;) {
        while (!gq.n)
            pthread_cond_wait(&gq.cv, &gq.lock);
        struct graph_task t = gq.q[--gq.n];
        for (long i = t.node; i >= 0;) {
            pthread_mutex_unlock(&gq.lock);
            run_node(t.run, (uint32_t)i);
            pthread_mutex_lock(&gq.lock);
            i = node_done(t.run, (uint32_t)i); /* t.run may be gone once left is 0 */
        }
    }
    return NULL;
}

/* With gq.lock held. */
static void start_helpers(void) {
    while (gq.helpers < GRAPH_HELPERS) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int ok = pthread_create(&t, &attr, graph_helper, NULL) == 0;
        pthread_attr_destroy(&attr);
        if (!ok)
            break;
        gq.helpers++;
    }
}

/* With gq.lock held: a queued node of this run, taken off the queue, or -1. */
static long take_own(struct graph_run *run) {
    for (size_t k = gq.n; k-- > 0;)
        if (gq.q[k].run == run) {
            long i = gq.q[k].node;
            gq.q[k] = gq.q[--gq.n];
            return i;
        }
    return -1;
}

void sim_graph_execute(struct sim_graph_exec *x, const struct sim_op *launch) {
    struct graph_run run = {x, launch, malloc((x->n ? x->n : 1) * sizeof *run.waiting), x->n};
    pthread_mutex_lock(&gq.lock);
    if (!run.waiting || reserve_tasks(x->n) != 0) {
        /* no memory: one node after the other, in creation order (a topological one) */
        pthread_mutex_unlock(&gq.lock);
        free(run.waiting);
        for (size_t i = 0; i < x->n; i++)
            run_node(&run, (uint32_t)i);
        return;
    }
    memcpy(run.waiting, x->ndeps, x->n * sizeof *run.waiting);
    long mine = -1;
    for (size_t i = 0; i < x->n; i++) {
        if (x->ndeps[i])
            continue;
        if (mine < 0)
            mine = (long)i;
        else
            queue_task(&run, (uint32_t)i);
    }
    if (gq.n)
        start_helpers();
    pthread_cond_broadcast(&gq.cv);
    while (run.left) {
        if (mine < 0)
            mine = take_own(&run);
        if (mine < 0) {
            pthread_cond_wait(&gq.cv, &gq.lock);
            continue;
        }
        pthread_mutex_unlock(&gq.lock);
        run_node(&run, (uint32_t)mine);
        pthread_mutex_lock(&gq.lock);
        mine = node_done(&run, (uint32_t)mine);
    }
    gq.reserved -= x->n;
    pthread_mutex_unlock(&gq.lock);
    free(run.waiting);
}

SIM_API CUresult cuGraphExecDestroy(CUgraphExec hGraphExec) {
    SIM_ENTER("cuGraphExecDestroy");
    struct graph_exec_handle *h = exec_of(hGraphExec);
    if (!h)
        return CUDA_ERROR_INVALID_VALUE;
    h->magic = 0; /* queued launches keep their ops */
    sim_graph_exec_release(h->current);
    free(h->last_vc);
    pthread_mutex_destroy(&h->lock);
    free(h);
    return CUDA_SUCCESS;
}

/* The launch's external event waits: each event as it stands now (cuGraphLaunch time).
 * Its wait node waits for it when it runs; what follows the launch in its stream is
 * ordered after it (the launch completes after every node). 0, or -1 without memory. */
static int snapshot_waits(struct sim_op *op, const struct sim_graph_exec *x) {
    uint32_t n = 0;
    for (size_t i = 0; i < x->n; i++)
        n += x->ops[i]->kind == SIM_OP_WAIT_EVENT;
    if (!n)
        return 0;
    struct sim_graph_wait *w = calloc(n, sizeof *w);
    if (!w)
        return -1;
    op->u.graph.waits = w;
    for (size_t i = 0; i < x->n; i++) {
        if (x->ops[i]->kind != SIM_OP_WAIT_EVENT)
            continue;
        struct sim_graph_wait *wi = &w[op->u.graph.nwaits++];
        wi->node = (uint32_t)i;
        sim_event_snapshot(x->ops[i]->u.wait.event, &wi->on, &wi->seq, &wi->vc);
        sim_race_op_join_after(op, wi->vc);
    }
    return 0;
}

static CUresult graph_launch(CUgraphExec hx, CUstream hs, int pt) {
    struct graph_exec_handle *h = exec_of(hx);
    if (!h)
        return CUDA_ERROR_INVALID_VALUE;
    RESOLVE(hs, pt, s);
    if (sim_stream_is_capturing(s))
        return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    struct sim_op *op = sim_op_new(SIM_OP_GRAPH);
    if (!op)
        return CUDA_ERROR_OUT_OF_MEMORY;
    pthread_mutex_lock(&h->lock);
    struct sim_graph_exec *x = h->current;
    atomic_fetch_add(&x->refs, 1);
    op->u.graph.exec = x;
    if (snapshot_waits(op, x) != 0 ||
        (h->last_stream && sim_op_add_dep(op, h->last_stream, h->last_seq) != 0)) {
        pthread_mutex_unlock(&h->lock);
        sim_op_free(op);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    sim_race_op_join_clock(op, h->last_vc); /* after the exec's last launch */
    op->u.graph.clock_out = &h->last_vc;
    atomic_fetch_add(&sim_stats.launches, x->kernels);
    h->last_seq = sim_submit(s, op);
    h->last_stream = s;
    pthread_mutex_unlock(&h->lock);
    return CUDA_SUCCESS;
}

#undef cuGraphLaunch
SIM_API CUresult cuGraphLaunch(CUgraphExec hGraphExec, CUstream hStream) {
    SIM_ENTER("cuGraphLaunch");
    return graph_launch(hGraphExec, hStream, 0);
}
SIM_API CUresult cuGraphLaunch_ptsz(CUgraphExec hGraphExec, CUstream hStream) {
    SIM_ENTER("cuGraphLaunch_ptsz");
    return graph_launch(hGraphExec, hStream, 1);
}
