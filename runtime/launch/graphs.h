/*
 * graphs.h — the tracked allocations each instantiated graph uses.
 *
 * Graph replays never pass through cuLaunchKernel, so the allocations a graph touches are
 * found once, when it is instantiated, by walking its kernel, memset, memcpy and child-graph
 * nodes; cuGraphLaunch then makes them resident. Node types that touch no device memory
 * the program allocated are skipped; anything the walk cannot read makes the graph opaque.
 * Allocations are remembered by base address and looked up again at launch, so a freed one is
 * simply skipped. Callers hold the runtime lock.
 */
#ifndef OFFLOAD_GRAPHS_H
#define OFFLOAD_GRAPHS_H

#include "runtime/launch/launch.h"
#include "runtime/memory/registry.h"

#include <cuda.h>
#include <stddef.h>

struct graph_record {
    CUgraphExec exec;
    CUdeviceptr *bases; /* distinct tracked allocations the graph references */
    size_t count, capacity;
    /* Why the graph may use memory not in bases (a kernel node whose parameters cannot be
     * read, a failed query, a node type not read), or NULL. Its launches then prepare as
     * a launch of a kernel with unreadable parameters does: the active component made
     * resident, every later eviction of mapped memory ordered after the launch. */
    const char *opaque;
    /* the first kernel node with unreadable parameters (its component is made resident
     * rather than the active one, as for its own launches); NULL if none */
    struct func_layout *opaque_kernel;
    UT_hash_handle hh;
};

struct graph_table {
    struct graph_record *by_exec;
};

/* Walks graph and remembers, for exec, the tracked allocations it references. Returns the
 * record, or NULL when out of memory (the graph is then unknown: its launches prepare as an
 * opaque graph's do). */
const struct graph_record *graphs_remember(struct graph_table *t, struct launch_cache *layouts,
                                           struct registry *reg, CUgraphExec exec, CUgraph graph);

const struct graph_record *graphs_find(const struct graph_table *t, CUgraphExec exec);

void graphs_forget(struct graph_table *t, CUgraphExec exec);

#endif /* OFFLOAD_GRAPHS_H */
