/*
 * plan.h — carrying out what the component policy decided.
 *
 * components.h decides (a switch plan: components to evict, components to prefetch); this
 * module executes: it starts the evictions at once, and queues the prefetches until those
 * evictions have landed, so the device never holds the outgoing and the incoming
 * components at once. The host does not wait for that: the evictions first wait (on the
 * GPU) for the outgoing component's last kernels, and the incoming component's first
 * launch, the call that switched, must not wait behind them. Each later call polls; the
 * first to find the evictions landed issues the prefetches, which then run on the restore
 * stream alongside the kernels.
 *
 * Callers hold the runtime lock.
 */
#ifndef OFFLOAD_PLAN_H
#define OFFLOAD_PLAN_H

#include "runtime/components/components.h"
#include "runtime/state.h"

/* Carries out a switch plan (enters liboffload's context for it). */
void plan_carry_out(struct runtime *rt, const struct switch_plan *plan);

/* Starts evicting every member of component c the current call does not need; returns the
 * bytes started. The caller has the context current. */
uint64_t plan_evict_component(struct runtime *rt, size_t c);

/* Prefetches of the last plan still wait for its evictions to land. */
bool plan_pending(const struct runtime *rt);

/* Issues the waiting prefetches if the evictions have landed (never waits). The caller has
 * the context current. */
void plan_poll(struct runtime *rt);

/* Makes component c resident as far as free room allows, never evicting and never
 * failing (its members beyond that stay where they are), and orders `stream` after every
 * restore of its members: for a launch that may reach them through pointers stored in
 * device memory. */
void plan_fill_component(struct runtime *rt, size_t c, CUstream stream);

/* After a launch in the active component: carries out components_stream_plan (evict the
 * farthest member, restore the next ones ahead), never waiting. */
void plan_stream(struct runtime *rt);

#endif /* OFFLOAD_PLAN_H */
