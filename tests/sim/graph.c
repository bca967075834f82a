/*
 * graph.c — graphs and their nodes, node params, instantiation, exec update and destroy.
 *
 * A graph comes from stream capture (capture.c) or is cuGraphCreate's empty one; its nodes
 * are in creation order, which is a topological order. An instantiated graph
 * (cuGraphInstantiate*) is a copy of the nodes' ops and of their edges (and of what happens
 * before what, for the race detector), shared by the exec handle and every launch queued
 * from it (graph_run.c runs them), so cuGraphExecUpdate/Destroy never pull ops from under
 * a launch.
 */
#include "tests/sim/graph_internal.h"
#include "tests/sim/sim.h"

#include <stdlib.h>
#include <string.h>

#define GRAPH_MAGIC 0x47524150u
#define EXEC_MAGIC 0x47455845u

/* ---- graphs and nodes ------------------------------------------------------------ */

struct sim_graph *graph_new(void) {
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

void graph_free(struct sim_graph *g) {
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
    /* A node made from a CUkernel names only that: func is NULL and kern set, as the v2
     * struct allows ("kern ... will only be referenced if func is NULL"); a caller must
     * take either (liboffload's graph walk once skipped such nodes). The v1 struct has
     * no kern: it gets the module's function. */
    const struct sim_op *op = node_of(hNode)->op;
    nodeParams->kern = (CUkernel)op->u.kernel.kernel;
    if (op->u.kernel.kernel)
        nodeParams->func = NULL;
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

struct graph_exec_handle *exec_of(CUgraphExec h) {
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
