/*
 * graph_internal.h — the contract between the graph files (not a public contract):
 *
 *   capture.c    stream capture: captured ops become nodes, events fork and join streams,
 *                capture modes and conflicts, the cuStreamBeginCapture/EndCapture/
 *                GetCaptureInfo/IsCapturing and cuThreadExchangeStreamCaptureMode entry points
 *   graph.c      graphs and nodes, node params, instantiation, exec update and destroy
 *   graph_run.c  running a launched graph (the worker and the helper threads), cuGraphLaunch
 *
 * Shared state and its locks:
 *   - a graph (struct sim_graph) and its nodes: capture.c appends nodes while its capture is
 *     active, under capture.c's one lock for all capture state (which also guards each
 *     stream's capture, cap_next and cap_deps and each event's cap and cap_nodes; the end
 *     of a capture detaches its graph and its streams in one hold of it); the graph entry points
 * (graph.c) read them without it, as the program's CUgraph, and cuGraphDestroy or the end of an
 *     invalidated capture frees them;
 *   - an instantiated op set (struct sim_graph_exec) is not changed once built: the exec
 *     handle and every queued launch hold a reference (refs, atomic), and the last one
 *     frees it (sim_graph_exec_release);
 *   - an exec handle (struct graph_exec_handle): its `lock` guards `current` and the last
 *     launch, and is held across a launch's submission (graph_run.c);
 *   - the queue of ready nodes and the helper threads are graph_run.c's alone, under its
 *     own leaf lock.
 */
#ifndef SIM_GRAPH_INTERNAL_H
#define SIM_GRAPH_INTERNAL_H

#include "tests/sim/sim.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define NODE_MAGIC 0x4e4f4445u

struct sim_node {
    unsigned magic;
    CUgraphNodeType type;
    struct sim_op *op;
    struct sim_graph *graph;
    struct sim_node **deps;
    size_t ndeps;
    uint32_t index; /* in its graph's nodes */
    int joined;     /* capture.c's scratch mark, under its lock, while a capture ends */
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

#define RESOLVE(h, pt, s)                                                                          \
    struct sim_stream *s;                                                                          \
    do {                                                                                           \
        CUresult r_ = sim_stream_resolve((h), (pt), &s);                                           \
        if (r_ != CUDA_SUCCESS)                                                                    \
            return r_;                                                                             \
    } while (0)

/* graph.c: an empty graph (cuGraphCreate, cuStreamBeginCapture), or NULL; freeing one frees
 * its nodes and their ops (cuGraphDestroy, the end of an invalidated capture). */
struct sim_graph *graph_new(void);
void graph_free(struct sim_graph *g);
/* graph.c: the live exec handle behind h, or NULL. */
struct graph_exec_handle *exec_of(CUgraphExec h);

/* graph_run.c: its part of sim_graph_atfork (capture.c), the queue of ready nodes. */
void graph_queue_atfork(enum sim_fork_phase phase);

#endif /* SIM_GRAPH_INTERNAL_H */
