/*
 * graph_run.c — running a launched graph.
 *
 * cuGraphLaunch queues one op whose worker runs the nodes of the instantiated graph
 * (graph.c) as their edges allow: a node starts once its dependencies are done, and
 * independent nodes run at the same time on a few helper threads, as independent branches
 * do on a GPU.
 */
#include "tests/sim/graph_internal.h"
#include "tests/sim/sim.h"
#include "tests/sim/strict.h"

#include <stdlib.h>
#include <string.h>

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
void graph_queue_atfork(enum sim_fork_phase phase) {
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

/* ---- graph launch ---------------------------------------------------------------- */

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
