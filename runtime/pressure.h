/*
 * pressure.h — what goes when room is needed: the runtime's victim source for
 * residency_make_room (residency.h).
 *
 * Order: components outside the current plan's window (the policy's Belady order), then
 * unowned allocations (least recently used first), then the window's components, then any
 * allocation not in a keep component and not needed by the current call: correctness
 * before the plan.
 */
#ifndef OFFLOAD_PRESSURE_H
#define OFFLOAD_PRESSURE_H

#include "runtime/memory/residency.h"

extern const struct victim_source pressure_victims;

#endif /* OFFLOAD_PRESSURE_H */
