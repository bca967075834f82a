/*
 * graphs.c — walking a graph's nodes for tracked allocations.
 */
#include "runtime/launch/graphs.h"

#include "driver/driver.h"

#include <stdlib.h>

#define GRAPH_MAX_DEPTH 8

struct walk {
    struct graph_record *rec;
    struct registry *reg;
    struct launch_cache *layouts;
    bool oom;
};

/* Some node may use memory the walk cannot see: the launch prepares as for a kernel whose
 * parameters cannot be read (graphs.h). The first reason is kept for the warning. */
static void opaque(struct walk *w, const char *why) {
    if (!w->rec->opaque)
        w->rec->opaque = why;
}

static void remember_address(void *ctx, CUdeviceptr value) {
    struct walk *w = ctx;
    const struct allocation *a = registry_find(w->reg, value);
    if (!a)
        return;
    struct graph_record *rec = w->rec;
    for (size_t i = 0; i < rec->count; i++)
        if (rec->bases[i] == a->base)
            return;
    if (rec->count == rec->capacity) {
        size_t cap = rec->capacity ? rec->capacity * 2 : 8;
        CUdeviceptr *bases = realloc(rec->bases, cap * sizeof *bases);
        if (!bases) {
            w->oom = true;
            return;
        }
        rec->bases = bases;
        rec->capacity = cap;
    }
    rec->bases[rec->count++] = a->base;
}

static void walk_node(struct walk *w, CUgraphNode node, int depth);

static void walk_graph(struct walk *w, CUgraph graph, int depth) {
    const struct driver_table *d = driver();
    size_t n = 0;
    if (depth > GRAPH_MAX_DEPTH) {
        opaque(w, "child graphs nested too deep");
        return;
    }
    if (!d->cuGraphGetNodes || d->cuGraphGetNodes(graph, NULL, &n) != CUDA_SUCCESS) {
        opaque(w, "cuGraphGetNodes failed");
        return;
    }
    if (n == 0)
        return;
    CUgraphNode *nodes = calloc(n, sizeof *nodes);
    if (!nodes) {
        w->oom = true;
        return;
    }
    if (d->cuGraphGetNodes(graph, nodes, &n) == CUDA_SUCCESS)
        for (size_t i = 0; i < n; i++)
            walk_node(w, nodes[i], depth);
    else
        opaque(w, "cuGraphGetNodes failed");
    free(nodes);
}

static void walk_node(struct walk *w, CUgraphNode node, int depth) {
    const struct driver_table *d = driver();
    CUgraphNodeType type;
    if (!d->cuGraphNodeGetType || d->cuGraphNodeGetType(node, &type) != CUDA_SUCCESS) {
        opaque(w, "cuGraphNodeGetType failed");
        return;
    }
    switch (type) {
    case CU_GRAPH_NODE_TYPE_KERNEL: {
        CUDA_KERNEL_NODE_PARAMS p;
        memset(&p, 0, sizeof p);
        if (!d->cuGraphKernelNodeGetParams_v2 ||
            d->cuGraphKernelNodeGetParams_v2(node, &p) != CUDA_SUCCESS) {
            opaque(w, "cuGraphKernelNodeGetParams failed");
            return;
        }
        /* a node made from a CUkernel may name only that (func NULL); the layout cache
         * takes either handle (kernel_info.h) */
        CUfunction f = p.func ? p.func : (CUfunction)p.kern;
        struct func_layout *layout = f ? launch_layout(w->layouts, f) : NULL;
        if (!layout || !launch_scan(layout, p.kernelParams, p.extra, remember_address, w)) {
            if (!w->rec->opaque_kernel)
                w->rec->opaque_kernel = layout;
            opaque(w, "a kernel node's parameters cannot be read");
        }
        break;
    }
    case CU_GRAPH_NODE_TYPE_MEMSET: {
        CUDA_MEMSET_NODE_PARAMS p;
        if (d->cuGraphMemsetNodeGetParams && d->cuGraphMemsetNodeGetParams(node, &p) == 0)
            remember_address(w, p.dst);
        else
            opaque(w, "cuGraphMemsetNodeGetParams failed");
        break;
    }
    case CU_GRAPH_NODE_TYPE_MEMCPY: {
        CUDA_MEMCPY3D p;
        if (d->cuGraphMemcpyNodeGetParams && d->cuGraphMemcpyNodeGetParams(node, &p) == 0) {
            /* unified addresses name device memory too (cuMemcpy, cuMemcpy2D/3D) */
            if (p.srcMemoryType == CU_MEMORYTYPE_DEVICE || p.srcMemoryType == CU_MEMORYTYPE_UNIFIED)
                remember_address(w, p.srcDevice);
            if (p.dstMemoryType == CU_MEMORYTYPE_DEVICE || p.dstMemoryType == CU_MEMORYTYPE_UNIFIED)
                remember_address(w, p.dstDevice);
        } else {
            opaque(w, "cuGraphMemcpyNodeGetParams failed");
        }
        break;
    }
    case CU_GRAPH_NODE_TYPE_GRAPH: {
        CUgraph child;
        if (d->cuGraphChildGraphNodeGetGraph &&
            d->cuGraphChildGraphNodeGetGraph(node, &child) == CUDA_SUCCESS)
            walk_graph(w, child, depth + 1);
        else
            opaque(w, "cuGraphChildGraphNodeGetGraph failed");
        break;
    }
    case CU_GRAPH_NODE_TYPE_EMPTY:
    case CU_GRAPH_NODE_TYPE_HOST: /* host functions may not call the driver */
    case CU_GRAPH_NODE_TYPE_WAIT_EVENT:
    case CU_GRAPH_NODE_TYPE_EVENT_RECORD:
    case CU_GRAPH_NODE_TYPE_EXT_SEMAS_SIGNAL:
    case CU_GRAPH_NODE_TYPE_EXT_SEMAS_WAIT:
    case CU_GRAPH_NODE_TYPE_MEM_ALLOC: /* the graph's own memory, not tracked */
    case CU_GRAPH_NODE_TYPE_MEM_FREE:
        break;
    default: /* memory operations, conditional bodies, types newer than this code */
        opaque(w, "a node of a type liboffload does not read");
        break;
    }
}

const struct graph_record *graphs_remember(struct graph_table *t, struct launch_cache *layouts,
                                           struct registry *reg, CUgraphExec exec, CUgraph graph) {
    graphs_forget(t, exec); /* a handle may be reused after destroy */
    struct graph_record *rec = calloc(1, sizeof *rec);
    if (!rec)
        return NULL;
    rec->exec = exec;
    struct walk w = {rec, reg, layouts, false};
    walk_graph(&w, graph, 0);
    bool hash_oom = w.oom;
    if (!hash_oom)
        HASH_ADD(hh, t->by_exec, exec, sizeof rec->exec, rec);
    if (hash_oom) {
        free(rec->bases);
        free(rec);
        return NULL;
    }
    return rec;
}

const struct graph_record *graphs_find(const struct graph_table *t, CUgraphExec exec) {
    struct graph_record *rec;
    HASH_FIND(hh, t->by_exec, &exec, sizeof exec, rec);
    return rec;
}

void graphs_forget(struct graph_table *t, CUgraphExec exec) {
    struct graph_record *rec;
    HASH_FIND(hh, t->by_exec, &exec, sizeof exec, rec);
    if (rec) {
        HASH_DELETE(hh, t->by_exec, rec);
        free(rec->bases);
        free(rec);
    }
}
