/*
 * components.h — named groups of allocations from the config, the active component and
 * the offload sequence (issue 5).
 *
 * Ownership: `allocs` ordinals at allocation time; else a launch of a kernel matching a
 * component's `kernels` claims the unowned allocations it references; else the active
 * component at first use; else unowned (plain LRU). A launch whose component differs from
 * the active one is a switch: policy_on_switch (policy.h) says what to evict and what to
 * prefetch. Callers hold the runtime lock; with no components in the config every function
 * here is a cheap no-op.
 */
#ifndef OFFLOAD_COMPONENTS_H
#define OFFLOAD_COMPONENTS_H

#include "runtime/state.h"

/* Builds rt->components from rt->cfg (NULL when the config has none). 0 or -1. */
int components_init(struct runtime *rt);

/* A new tracked allocation: owner from `allocs`. */
void components_on_alloc(struct runtime *rt, struct allocation *a);

/* An allocation is being freed. */
void components_forget(struct runtime *rt, struct allocation *a);

/* A launch of `layout` referencing allocations refs[0..n) (all distinct, protected by the
 * current epoch, not yet restored): claims ownership, switches the active component,
 * applies the policy (evictions, prefetches). Never fails the launch. */
void components_on_launch(struct runtime *rt, struct func_layout *layout, struct allocation **refs,
                          size_t n);

/* Prefetches the last switch decided wait until its evictions have landed: true while
 * some wait; components_poll issues them when they can go (context current). */
bool components_pending(const struct runtime *rt);
void components_poll(struct runtime *rt);

/* Under pressure: starts evicting whole components (policy order) worth at least `bytes`;
 * returns the bytes started, 0 when none may go. Components of the current plan's window
 * (active, prefetched) only when window_too. */
uint64_t components_relieve(struct runtime *rt, uint64_t bytes, bool window_too);

/* The per-component counters of component c, or NULL (c < 0, no components). */
struct move_stats *components_moves(struct runtime *rt, int c);

/* keep = yes. */
bool components_keep(const struct runtime *rt, int c);

/* readonly = yes. */
bool components_readonly(const struct runtime *rt, int c);

/* For an out-of-memory message: what each component holds. */
void components_log_holders(struct runtime *rt);

/* Per-component lines for the exit report; *out is malloc'd (caller frees). */
size_t components_report(struct runtime *rt, struct stats_component **out, uint64_t *unowned);

/* For the start line: writes the sequence "a -> b -> c" (or "") and returns the number of
 * components in effect. */
size_t components_describe(const struct runtime *rt, char *buf, size_t len);

#endif /* OFFLOAD_COMPONENTS_H */
