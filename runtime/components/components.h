/*
 * components.h — named groups of allocations from the config, the active component and
 * the offload sequence.
 *
 * Ownership: `allocs` ordinals at allocation time; else a launch of a kernel matching a
 * component's `kernels` claims the unowned allocations it references; else the active
 * component at first use; else unowned (plain LRU). A launch whose component differs from
 * the active one is a switch: policy_on_switch (policy.h) says what to evict and what to
 * prefetch, and the switch's plan goes back to the caller, which carries it out
 * (runtime/plan.h). Nothing here moves memory or calls the driver. Callers hold the
 * runtime lock; with no components in the config every function here is a cheap no-op.
 */
#ifndef OFFLOAD_COMPONENTS_H
#define OFFLOAD_COMPONENTS_H

#include "runtime/state.h"

/* What a switch decided: components (config indices) whose members to evict now, in this
 * order, and components to prefetch, nearest turn first, once those evictions have landed.
 * The arrays belong to the components module and stay valid until its next call. */
struct switch_plan {
    const size_t *evict;
    size_t evict_count;
    const size_t *prefetch;
    size_t prefetch_count;
};

/* Builds rt->components from rt->cfg (NULL when the config has none). 0 or -1. */
int components_init(struct runtime *rt);

/* A new tracked allocation: owner from `allocs` (sets a->component, moves, keep, readonly).
 * True when that made its component active (policy = sequence): *plan to carry out. */
bool components_on_alloc(struct runtime *rt, struct allocation *a, struct switch_plan *plan);

/* An allocation is being freed. */
void components_forget(struct runtime *rt, struct allocation *a);

/* A launch of `layout` referencing allocations refs[0..n) (all distinct, protected by the
 * current epoch, not yet restored): claims ownership, switches the active component. True
 * when it switched: *plan to carry out. */
bool components_on_launch(struct runtime *rt, struct func_layout *layout, struct allocation **refs,
                          size_t n, struct switch_plan *plan);

/* The component whose `kernels` name the launched kernel, or -1. */
int components_of_kernel(struct runtime *rt, struct func_layout *layout);

/* The component whose `indirect` names the launched kernel (it reaches that component's
 * memory through pointers stored in device memory), or -1. */
int components_indirect_of_kernel(struct runtime *rt, struct func_layout *layout);

/* The active component (config index), -1 when none is (or there are no components). */
int components_active(const struct runtime *rt);

/* The members of component c (alive allocations), *count of them. */
struct allocation *const *components_members(const struct runtime *rt, size_t c, size_t *count);

/* Under pressure: components to evict (policy order) until they free at least `bytes`;
 * *count of them (0: none may go). Components of the current plan's window (active,
 * prefetched) only when window_too. Valid until the next call. */
const size_t *components_victims(struct runtime *rt, uint64_t bytes, bool window_too,
                                 size_t *count);

/* Under pressure, member by member (policy budget and sequence): the member of a component
 * other than the active one and the switch plan's window whose next use is farthest over
 * the whole sequence (its component's turn, then its place in that component's learnt
 * order), or NULL. While a component larger than the budget loads, this keeps the one
 * that runs next and the first part of the big one, and lets the big one's later members
 * go, as a clairvoyant policy would, where evicting whole components would throw out the
 * one coming back first. */
struct allocation *components_far_member(struct runtime *rt);

/* Streaming (components/stream.c): the active component's members along its learnt order.
 * What to evict now and what to restore ahead after a launch in it; false when nothing. */
#define STREAM_AHEAD_MAX 8
#define STREAM_EVICT_MAX 16
struct stream_plan {
    struct allocation *evict[STREAM_EVICT_MAX]; /* next uses farther than what comes */
    size_t evict_count;
    struct allocation *prefetch[STREAM_AHEAD_MAX]; /* nearest first */
    size_t prefetch_count; /* a near one may wait for the evictions that make its room */
};
bool components_stream_plan(struct runtime *rt, struct stream_plan *plan);

/* Component c's streaming figures for the report: bytes restored while it was active,
 * bytes on the device through the last complete cycle of its order. */
void components_stream_report(const struct runtime *rt, size_t c, uint64_t *streamed,
                              uint64_t *stable);

/* The active component's member whose next use is farthest and that may go now, or NULL
 * (no active component, no order learnt yet, none may go). */
struct allocation *components_stream_victim(struct runtime *rt);

/* For an out-of-memory message: what each component holds. */
void components_log_holders(struct runtime *rt);

/* Per-component lines for the exit report; *out is malloc'd (caller frees). */
size_t components_report(struct runtime *rt, struct stats_component **out, uint64_t *unowned);

/* For the start line: writes the sequence "a -> b -> c" (or "") and returns the number of
 * components in effect. */
size_t components_describe(const struct runtime *rt, char *buf, size_t len);

#endif /* OFFLOAD_COMPONENTS_H */
