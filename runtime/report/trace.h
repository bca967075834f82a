/*
 * trace.h — the timeline: what liboffload did and when, as the Chrome trace-event JSON
 * that Perfetto (ui.perfetto.dev) and chrome://tracing open, written at exit to the path
 * of `trace =` / OFFLOAD_TRACE / `offload run --trace`. The same events feed the live
 * status line (status.h) when it is on.
 *
 * What the file shows (one "thread" track each, in this order):
 *   - one track per component of the config: "resident", "evicting", "evicted",
 *     "restoring" spans, back to back from the component's first state change, and a
 *     counter "resident bytes" with every component's bytes on the device (stacked);
 *   - one track per copy stream: every eviction ("evict NAME#ORDINAL") and restore
 *     ("restore NAME#ORDINAL") with bytes, GB/s and when it was queued;
 *   - "stalls": where a call waited, and on whom (the component and allocation);
 *   - "launches": the program's launches aggregated per component turn (a span from the
 *     turn's first launch to its last, with the count), never one event per launch.
 * Times are host CLOCK_MONOTONIC since trace_start, in microseconds (ns precision). A
 * copy's span starts when it was queued or when the previous copy on its stream ended,
 * whichever is later (a stream runs its copies in order), and ends when liboffload saw it
 * complete: spans on a stream never overlap, and on every track they nest.
 * "otherData" holds budget_bytes, the span capacity and dropped_spans.
 *
 * Bounded in size: completed spans and counter samples go into a ring of `capacity`
 * records (TRACE_DEFAULT_CAPACITY: 65536 records of 56 bytes, 3.5 MiB, allocated once at
 * start; the file is then at most ~300 bytes a record). A long run keeps its most recent
 * records; the oldest are dropped whole (never half a span) and counted in dropped_spans.
 * The counter samples dropped are folded into a baseline, so every "resident bytes"
 * sample in the file is the complete picture at its instant. Spans still open at exit
 * (the current state of each component, a copy never seen complete) are closed at
 * trace_finish, a copy marked "unfinished".
 *
 * Written once, at exit, atomically (base/atomic_file.h: a temporary file renamed into
 * place), like the stats file. Thread-safe (an internal lock; never calls the driver,
 * never calls back into the runtime). Every event function costs one predictable branch
 * when neither the trace nor the status line is on.
 *
 * Wiring (the calls the runtime makes; runtime/runtime.c already calls trace_start in
 * runtime_early_init and trace_finish in runtime_shutdown):
 *   - trace_component_state: wherever a component's state or its resident bytes change —
 *     in runtime/components/components.c when a switch starts evicting a component
 *     (EVICTING) or queues its prefetch (RESTORING), and in runtime/memory/residency.c
 *     where an allocation's state changes: residency_map_new (the first mapping: RESIDENT
 *     with the new bytes), the eviction being queued (residency_evict: EVICTING), its
 *     completion being reaped (residency_reap: EVICTED once the component holds no
 *     device bytes, else the same state with the lower bytes), a restore being queued and
 *     completing (residency_use's restore path: RESTORING, then RESIDENT when every
 *     allocation of the component is resident), residency_destroy (the lower bytes);
 *   - trace_evict_begin / trace_evict_end: residency_evict after the copy to the host is
 *     queued on the eviction stream; residency_reap when that copy is seen complete and
 *     the physical memory released (ok = true), or where a failed eviction is abandoned
 *     and the data left on the device (ok = false);
 *   - trace_restore_begin / trace_restore_end: where residency_use (demand) or the
 *     prefetch in components.c queues the copy to the device on the restore stream; where
 *     the restore's event is seen complete (the reap in residency.c, or its first user
 *     waiting for it; ok = false where it fails);
 *   - trace_stall_begin / trace_stall_end: around the part of use_collected
 *     (runtime/runtime.c) and residency_make_room (runtime/memory/residency.c) in which a
 *     call waits for an allocation that is not ready — component: the component of the
 *     call (the active one, -1 if none), on_component / on_ordinal: the allocation waited
 *     for (being restored, or evicted to make room);
 *   - trace_launch: in runtime_begin_launch (runtime/runtime.c), once per launch, with
 *     the component active after components_on_launch (-1 if none).
 * Components are indices into cfg->components; ordinals are the allocation's ordinal
 * (struct allocation .ordinal); stream is the CUstream the copy was queued on.
 */
#ifndef OFFLOAD_TRACE_H
#define OFFLOAD_TRACE_H

#include "config/config.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TRACE_DEFAULT_CAPACITY 65536
#define TRACE_STATUS_INTERVAL_NS 3000000000ull /* the live status line: every 3 s at most */

enum trace_state { TRACE_RESIDENT, TRACE_EVICTING, TRACE_EVICTED, TRACE_RESTORING };

/* At library start, after the config is loaded: records when cfg->trace_path is set,
 * prints the status line when the log level is info and stderr is a terminal. Neither:
 * every event below returns at once. */
void trace_start(const struct config *cfg);

/* The same with everything a test needs to choose: the ring's capacity (records), the
 * status line's fd (-1: none; it still prints only if the fd is a terminal) and interval,
 * the clock (NULL: CLOCK_MONOTONIC), in nanoseconds. record: whether to keep a trace at
 * all (cfg->trace_path may be empty when only the status line is wanted). */
void trace_start_with(const struct config *cfg, bool record, size_t capacity, int status_fd,
                      uint64_t status_interval_ns, uint64_t (*clock_ns)(void));

/* Component `component` is now in `state` and holds resident_bytes of device memory (what
 * the budget counts). The same state again only updates the bytes (a counter sample);
 * the span goes on. */
void trace_component_state(int component, enum trace_state state, uint64_t resident_bytes);

/* The copy of allocation `ordinal` (of `component`, -1 if none) to the host was queued on
 * `stream`; then seen complete, its device memory released (ok), or abandoned (!ok). */
void trace_evict_begin(uint64_t ordinal, int component, uint64_t bytes, const void *stream);
void trace_evict_end(uint64_t ordinal, bool ok);

/* The same for the copy back to the device. */
void trace_restore_begin(uint64_t ordinal, int component, uint64_t bytes, const void *stream);
void trace_restore_end(uint64_t ordinal, bool ok);

/* A call of `component` (-1: none) waits for allocation on_ordinal of on_component (-1:
 * none); stalls nest (an end closes the innermost). */
void trace_stall_begin(int component, int on_component, uint64_t on_ordinal);
void trace_stall_end(void);

/* One kernel launch while `component` is active (-1: none). Consecutive launches of one
 * component are one turn. Inline: it is on every launch's path. */
extern _Atomic bool trace_active;
void trace_launch_slow(int component);
static inline void trace_launch(int component) {
    if (__builtin_expect(atomic_load_explicit(&trace_active, memory_order_relaxed), 0))
        trace_launch_slow(component);
}

/* At exit: closes the open spans, writes the file atomically (a warning on failure),
 * stops. budget_bytes goes into otherData. Returns 0, or -1 if the file was not written. */
int trace_finish(uint64_t budget_bytes);

/* The document as trace_finish would write it (malloc'd), or NULL (not recording, or out
 * of memory); closes nothing. For tests. */
char *trace_json(uint64_t budget_bytes);

/* Forgets everything and stops (tests start again with trace_start_with). */
void trace_stop(void);

#endif /* OFFLOAD_TRACE_H */
