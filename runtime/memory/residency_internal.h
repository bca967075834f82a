/*
 * residency_internal.h — what residency.c and evict.c share (memory/ only).
 */
#ifndef OFFLOAD_RESIDENCY_INTERNAL_H
#define OFFLOAD_RESIDENCY_INTERNAL_H

#include "runtime/memory/residency.h"

/* The driver call that failed last, for messages. */
const char *residency_failed_call(const struct runtime *rt);

/* Counts a move: an eviction (to_host) or a restore, with its bytes. */
void residency_count_move(struct runtime *rt, const struct allocation *a, bool to_host,
                          uint64_t bytes);

/* Bytes copied to the host for an eviction already counted (a check that failed). */
void residency_count_bytes_to_host(struct runtime *rt, const struct allocation *a, uint64_t bytes);

/* The component's state on the timeline (when one is being written). */
void residency_trace_component(struct runtime *rt, int component);

/* Takes a out of the EVICTING list. */
void evict_drop(struct runtime *rt, struct allocation *a);

/* EVICTING -> RESTORING: an eviction still in flight taken back (evict.c). */
void evict_take_back(struct runtime *rt, struct allocation *a);

#endif /* OFFLOAD_RESIDENCY_INTERNAL_H */
