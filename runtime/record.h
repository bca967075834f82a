/*
 * record.h — record mode (OFFLOAD_MODE=record): the trace of tracked allocations and the
 * launches that reference them, turned at exit into an offload.conf (record_plan.h) written
 * atomically to the record path. Callers hold the runtime lock. Without record mode every
 * function is a no-op.
 */
#ifndef OFFLOAD_RECORD_H
#define OFFLOAD_RECORD_H

#include "runtime/state.h"

void record_init(struct runtime *rt);
void record_alloc(struct runtime *rt, const struct allocation *a);
void record_free(struct runtime *rt, const struct allocation *a);
void record_launch(struct runtime *rt, const struct func_layout *layout,
                   struct allocation *const *refs, size_t n);

/* At exit (no driver call): writes the config file. */
void record_finish(struct runtime *rt);

#endif /* OFFLOAD_RECORD_H */
