/*
 * capture.c — stream capture.
 *
 * While a stream captures, the ops its entry points build (kernels, copies, memsets,
 * host functions) become graph nodes instead of queued work; each node depends on the
 * stream's current node set, then becomes it. Events recorded during capture carry node
 * sets, so cuStreamWaitEvent forks other streams into the capture and joins them back.
 * Nodes are kept in creation order, which is a topological order (graph.c instantiates
 * graphs in it). A capture ends in one hold of its lock: a fork the origin has not joined
 * back fails it (CUDA_ERROR_STREAM_CAPTURE_UNJOINED), and every stream of it leaves
 * capture mode there and then, so another thread's call on one of them is either
 * captured before the end or ordinary work after it.
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
    int blocking;               /* a blocking stream takes part: the legacy stream is unusable */
    struct sim_stream *members; /* the origin and the streams forked into it (cap_next) */
    struct sim_capture *next;   /* gr.all */
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

/* With gr.lock held, s a member of the active capture c: op becomes a node after s's
 * dependency set, and then is that set. On success the graph owns op; on failure the
 * caller frees it (after the lock). Out of memory loses a node the program was told of
 * in no other way: the capture is invalidated, under the lock its end reads it under. */
static CUresult add_node_locked(struct sim_stream *s, struct sim_capture *c, struct sim_op *op) {
    if (c->invalidated)
        return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
    struct sim_graph *g = c->graph;
    struct sim_node *n = calloc(1, sizeof *n);
    int ok = n && (!s->ncap_deps || (n->deps = malloc(s->ncap_deps * sizeof *n->deps)));
    if (ok && g->n == g->cap) {
        size_t cap = g->cap ? 2 * g->cap : 16;
        struct sim_node **nodes = realloc(g->nodes, cap * sizeof *nodes);
        if (!nodes) {
            ok = 0;
        } else {
            g->nodes = nodes;
            g->cap = cap;
        }
    }
    if (ok && !s->cap_deps_cap) { /* the one growth set_deps(s, &n, 1) below could need */
        struct sim_node **d = malloc(sizeof *d);
        if (!d) {
            ok = 0;
        } else {
            free(s->cap_deps);
            s->cap_deps = d;
            s->cap_deps_cap = 1;
        }
    }
    if (!ok) {
        if (n)
            free(n->deps);
        free(n);
        c->invalidated = 1;
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    /* order inside a graph comes from its edges; the op's stream deps do not apply */
    if (op->deps != op->dep_inline)
        free(op->deps);
    op->deps = op->dep_inline;
    op->ndeps = 0;
    op->dep_cap = sizeof op->dep_inline / sizeof op->dep_inline[0];
    n->magic = NODE_MAGIC;
    n->type = node_type(op);
    n->op = op;
    n->graph = g;
    n->ndeps = s->ncap_deps;
    n->index = (uint32_t)g->n;
    if (n->ndeps)
        memcpy(n->deps, s->cap_deps, n->ndeps * sizeof *n->deps);
    g->nodes[g->n++] = n;
    set_deps(s, &n, 1); /* room for one is there: cannot fail */
    return CUDA_SUCCESS;
}

int sim_capture_op(struct sim_stream *s, struct sim_op *op, CUresult *r) {
    if (!atomic_load_explicit(&s->capture, memory_order_relaxed))
        return 0; /* the fast path: one load */
    pthread_mutex_lock(&gr.lock);
    struct sim_capture *c = s->capture;
    if (c)
        *r = add_node_locked(s, c, op);
    pthread_mutex_unlock(&gr.lock);
    if (c && *r != CUDA_SUCCESS)
        sim_op_free(op);
    return c != NULL;
}

int sim_capture_record(struct sim_stream *s, struct sim_event *e, CUresult *r) {
    if (!atomic_load_explicit(&s->capture, memory_order_relaxed))
        return 0;
    pthread_mutex_lock(&gr.lock);
    struct sim_capture *c = s->capture;
    if (!c) {
        pthread_mutex_unlock(&gr.lock);
        return 0;
    }
    struct sim_node **nodes = NULL;
    if (c->invalidated) {
        /* the guide: "further use of any streams which are being captured ... is invalid
         * and will return an error" until the capture ends */
        *r = CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
    } else if (s->ncap_deps && !(nodes = malloc(s->ncap_deps * sizeof *nodes))) {
        *r = CUDA_ERROR_OUT_OF_MEMORY;
    } else {
        if (s->ncap_deps)
            memcpy(nodes, s->cap_deps, s->ncap_deps * sizeof *nodes);
        free(e->cap_nodes);
        e->cap_nodes = nodes;
        e->ncap_nodes = s->ncap_deps;
        atomic_store(&e->cap, c);
        *r = CUDA_SUCCESS;
    }
    pthread_mutex_unlock(&gr.lock);
    return 1;
}

/* With gr.lock held: s, not capturing, forks into the active capture c after `deps`. */
static CUresult fork_locked(struct sim_stream *s, struct sim_capture *c,
                            struct sim_node *const *deps, size_t n) {
    if (set_deps(s, deps, n) != 0)
        return CUDA_ERROR_OUT_OF_MEMORY;
    atomic_store(&s->capture, c);
    s->cap_next = c->members;
    c->members = s;
    mark_blocking(c, s);
    return CUDA_SUCCESS;
}

/* With gr.lock held: s's next node also depends on `deps`. */
static CUresult join_locked(struct sim_stream *s, struct sim_node *const *deps, size_t n) {
    size_t most = s->ncap_deps + n;
    struct sim_node **all = malloc((most ? most : 1) * sizeof *all);
    if (!all)
        return CUDA_ERROR_OUT_OF_MEMORY;
    size_t k = 0;
    for (size_t i = 0; i < s->ncap_deps; i++)
        all[k++] = s->cap_deps[i];
    for (size_t i = 0; i < n; i++) {
        int dup = 0;
        for (size_t j = 0; j < k; j++)
            dup |= all[j] == deps[i];
        if (!dup)
            all[k++] = deps[i];
    }
    CUresult r = set_deps(s, all, k) != 0 ? CUDA_ERROR_OUT_OF_MEMORY : CUDA_SUCCESS;
    free(all);
    return r;
}

int sim_capture_wait(struct sim_stream *s, struct sim_event *e, unsigned flags, int recorded,
                     CUresult *r) {
    int external = (flags & CU_EVENT_WAIT_EXTERNAL) != 0;
    if (!external && !atomic_load_explicit(&s->capture, memory_order_relaxed) &&
        !atomic_load_explicit(&e->cap, memory_order_relaxed))
        return 0;
    struct sim_op *wait = external ? sim_op_new(SIM_OP_WAIT_EVENT) : NULL;
    if (external && !wait) {
        *r = CUDA_ERROR_OUT_OF_MEMORY;
        return 1;
    }
    if (wait)
        wait->u.wait.event = e;
    int handled = 1, isolation = 0;
    pthread_mutex_lock(&gr.lock);
    struct sim_capture *c = s->capture, *ec = e->cap;
    if (ec && !ec->graph)
        ec = NULL; /* recorded in a capture that has ended: nothing to join */
    if (external) {
        if (!c)
            *r = CUDA_ERROR_INVALID_VALUE; /* "invalid outside of stream capture" */
        else if ((*r = add_node_locked(s, c, wait)) == CUDA_SUCCESS)
            wait = NULL; /* an event wait node, the graph's now */
    } else if (ec && c && c != ec) {
        /* two separate captures would merge: invalid, both are invalidated */
        c->invalidated = 1;
        ec->invalidated = 1;
        *r = CUDA_ERROR_STREAM_CAPTURE_MERGE;
    } else if ((c && c->invalidated) || (ec && ec->invalidated)) {
        /* the guide: "further use of any streams which are being captured or captured
         * events associated with the graph is invalid and will return an error" */
        *r = CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
    } else if (ec && !c) {
        *r = fork_locked(s, ec, e->cap_nodes, e->ncap_nodes);
    } else if (ec) {
        *r = join_locked(s, e->cap_nodes, e->ncap_nodes);
    } else if (c && !recorded) {
        *r = CUDA_SUCCESS; /* never recorded: it stands for no work */
    } else if (c) {
        /* The programming guide: "It is invalid to wait on a non-captured event from a
         * stream which is being captured without specifying the cudaEventWaitExternal
         * flag." The dependency would cross the capture's boundary: the capture is
         * invalidated. */
        c->invalidated = 1;
        *r = CUDA_ERROR_STREAM_CAPTURE_ISOLATION;
        isolation = 1;
    } else {
        handled = 0;
    }
    pthread_mutex_unlock(&gr.lock);
    sim_op_free(wait);
    if (isolation)
        sim_log("simcuda: %s: a capturing stream waits on an event recorded outside its "
                "capture (without CU_EVENT_WAIT_EXTERNAL)",
                sim_tls_entry);
    return handled;
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
    if (!atomic_load_explicit(&s->capture, memory_order_relaxed))
        return 0;
    pthread_mutex_lock(&gr.lock);
    struct sim_capture *c = s->capture;
    if (c)
        c->invalidated = 1;
    pthread_mutex_unlock(&gr.lock);
    return c != NULL;
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
    if (!atomic_load_explicit(&e->cap, memory_order_relaxed))
        return CUDA_SUCCESS;
    pthread_mutex_lock(&gr.lock);
    struct sim_capture *c = e->cap; /* read with the lock a captured record writes it under */
    int captured = c && c->graph != NULL;
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
    return atomic_load(&s->capture) != NULL; /* the end of a capture clears every member's */
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
    pthread_mutex_lock(&gr.lock);
    if (s->capture) {
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
        atomic_store(&s->capture, c);
        s->cap_next = NULL;
        c->members = s;
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

/* With gr.lock held, c active: whether a stream forked into c has captured work its origin
 * has not joined back, "a fork that was not joined to the primary stream": a node of a
 * member's dependency set that is neither one of the origin's nor before one of them.
 * Nodes are in creation order and depend only on earlier ones, so one sweep down from the
 * last node marks everything the origin's set depends on (no allocation: a failure here
 * could not say whether the capture ended). */
static int unjoined_locked(const struct sim_capture *c) {
    const struct sim_graph *g = c->graph;
    int forked_work = 0;
    for (const struct sim_stream *m = c->members; m; m = m->cap_next)
        forked_work |= m != c->origin && m->ncap_deps > 0;
    if (!forked_work)
        return 0;
    for (size_t i = 0; i < g->n; i++)
        g->nodes[i]->joined = 0;
    for (size_t i = 0; i < c->origin->ncap_deps; i++)
        c->origin->cap_deps[i]->joined = 1;
    for (size_t i = g->n; i-- > 0;)
        if (g->nodes[i]->joined)
            for (size_t d = 0; d < g->nodes[i]->ndeps; d++)
                g->nodes[i]->deps[d]->joined = 1;
    int found = 0;
    for (const struct sim_stream *m = c->members; m && !found; m = m->cap_next)
        for (size_t i = 0; i < m->ncap_deps && !found; i++)
            found = !m->cap_deps[i]->joined;
    return found;
}

/* Ends the capture in one hold of gr.lock: every member stream leaves it and the graph
 * leaves the capture before another thread's captured call can look, so such a call
 * comes wholly before the end (a node, or the capture's error) or after it (ordinary
 * work); the graph is the program's or freed only once nothing can reach it. */
static CUresult end_capture(CUstream h, CUgraph *out, int pt) {
    if (!out)
        return CUDA_ERROR_INVALID_VALUE;
    RESOLVE(h, pt, s);
    pthread_mutex_lock(&gr.lock);
    struct sim_capture *c = s->capture;
    if (!c) {
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
    CUresult r = CUDA_SUCCESS;
    if (c->invalidated) {
        r = CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
    } else if (unjoined_locked(c)) {
        r = CUDA_ERROR_STREAM_CAPTURE_UNJOINED;
        c->invalidated = 1;
    }
    struct sim_graph *g = c->graph;
    c->graph = NULL;
    /* the guide: ending a capture "will take the associated streams out of capture mode" */
    for (struct sim_stream *m = c->members, *next; m; m = next) {
        next = m->cap_next;
        atomic_store(&m->capture, NULL);
        m->cap_next = NULL;
        m->ncap_deps = 0;
    }
    c->members = NULL;
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
    /* Events recorded in the capture still point at c (kept, a few bytes): its graph NULL
     * marks it ended. Their node lists point into g, and are read only while it lasts. */
    if (r != CUDA_SUCCESS) {
        if (r == CUDA_ERROR_STREAM_CAPTURE_UNJOINED)
            sim_log("simcuda: %s: a stream forked into the capture has work the origin "
                    "stream did not join: the capture failed",
                    sim_tls_entry);
        graph_free(g);
        *out = NULL;
    } else {
        *out = (CUgraph)g;
    }
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
