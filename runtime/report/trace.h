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
 * Beside the events, a top-level "uses" key (not a trace event; viewers ignore it): every
 * launch's, copy's and memset's tracked allocations in program order, as records
 * [call, ordinal, bytes, mapped, component], at most TRACE_USES_MAX (2^20, 40 bytes each
 * in memory; later ones counted in "dropped"). tools/optimum replays them.
 * Times are host CLOCK_MONOTONIC since trace_start, in microseconds (ns precision). A
 * copy's span starts when it was queued or when the previous copy on its stream ended,
 * whichever is later (a stream runs its copies in order), and ends when liboffload saw it
 * complete: spans on a stream never overlap, and on every track they nest.
 * "otherData" holds budget_bytes, the span capacity, dropped_spans and elapsed_us (from
 * trace_start to the writing).
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
 * Wiring (the calls the runtime makes; runtime/lifetime.c calls trace_start in
 * runtime_early_init and trace_finish in runtime_shutdown). All in runtime/memory/
 * residency.c and evict.c unless said otherwise:
 *   - trace_evict_begin: residency_evict, once `a->state = EVICTING` (bytes: the bytes
 *     copied, 0 when the backup is still current or a clean check decides first;
 *     stream: the eviction stream). trace_evict_copies: the check found the bytes
 *     changed and the copy is queued after all (evict.c decide).
 *   - trace_evict_end(ok = true): finish_eviction (reached from residency_reap and
 *     residency_reap_oldest) once the memory is unmapped and released. ok = false: its cuMemUnmap
 *     failure, reap_oldest's failed copy, and residency_restore taking an EVICTING
 *     allocation back (the data never left the device).
 *   - trace_restore_begin: residency_restore once the copy back is queued — only when
 *     there is one (a->backup): a first mapping is not a restore. Demand restores and the
 *     prefetches of runtime/components/components.c both come through here.
 *   - trace_restore_end: where liboffload learns the copy back is done: residency_use
 *     when cuEventQuery(a->ready) succeeds and it becomes RESIDENT, or when it
 *     orders a user's stream after a->ready (copy_order_stream: from then on the GPU
 *     waits, the host never looks again); residency_evict of a RESTORING one (its
 *     copy out is ordered after the restore); residency_destroy after its
 *     copy_sync_event. A restore still pending at exit stays "unfinished".
 *   - trace_component_state: after each of the calls above and in residency_map_new and
 *     residency_destroy, for the allocation's component: EVICTING while one of its
 *     allocations is EVICTING, else RESTORING while a restore of one is pending, else
 *     RESIDENT while one is resident, else EVICTED; resident_bytes: the mapped bytes of
 *     its allocations that are not EVICTED. (A scan of the registry does it; counters kept
 *     per component in components.c would make it O(1).)
 *   - trace_stall_begin / trace_stall_end: around the two waits count_stall measures in
 *     residency_use (residency_restore of a non-resident allocation, copy_order_stream),
 *     with on_component / on_ordinal the allocation waited for, and around
 *     residency_reap_oldest in residency_make_room (memory/room.c) with the allocation
 *     being evicted. component: the active one
 *     (-1 if none).
 *   - trace_use: call_use_collected (runtime/call.c), for each tracked allocation of the
 *     call before residency acts on it, first = true for the call's first one.
 *   - trace_launch: runtime_begin_launch (runtime/work.c), after components_on_launch,
 *     with components_active() (-1 without components). One call per launch:
 *     the recorder aggregates turns itself.
 * Components are indices into cfg->components; ordinals are struct allocation's
 * `ordinal`; stream is the CUstream the copy was queued on (each distinct one is a
 * track, the first TRACE_STREAMS_MAX of them).
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
 * `stream`; then seen complete, its device memory released (ok), or abandoned (!ok: the
 * copy failed, or the eviction was taken back; either way the data stayed on the device).
 * A begin for an ordinal whose previous copy never ended closes that one "unfinished". */
void trace_evict_begin(uint64_t ordinal, int component, uint64_t bytes, const void *stream);
void trace_evict_end(uint64_t ordinal, bool ok);
/* An open eviction's copy was queued after its begin (a clean check that found the bytes
 * changed, memory/evict.c decide): it moves BYTES after all. */
void trace_evict_copies(uint64_t ordinal, uint64_t bytes);

/* The same for the copy back to the device (a restore after an eviction, never a first
 * mapping). */
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

/* A call (launch, copy, memset) uses tracked allocation `ordinal` of `component` (-1:
 * none), `bytes` long, `mapped` bytes of device memory; first: the first allocation of
 * this call (the ones after it, up to the next first, belong to the same call: they must
 * be on the device together). Kept in order for "uses" in the file, the per-use record
 * tools/optimum replays; only while recording. */
void trace_use_slow(uint64_t ordinal, int component, uint64_t bytes, uint64_t mapped, bool first);
static inline void trace_use(uint64_t ordinal, int component, uint64_t bytes, uint64_t mapped,
                             bool first) {
    if (__builtin_expect(atomic_load_explicit(&trace_active, memory_order_relaxed), 0))
        trace_use_slow(ordinal, component, bytes, mapped, first);
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
