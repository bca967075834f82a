/*
 * record.h — record mode (OFFLOAD_MODE=record): what it observes, how it groups, what it
 * writes. The module's whole contract; runtime/record/README.md is the map.
 *
 *   trace.c   what record mode observes: every tracked allocation, its free, and per launch
 *             the tracked allocations it references, into a struct record_trace
 *   group.c   the trace into components and a sequence (struct record_plan), a pure
 *             function; the rule is written at the top of group.c
 *   write.c   the plan as a ready-to-edit offload.conf, and at exit the file itself
 *
 * Two layers of API:
 *
 * 1. The runtime's hooks (callers hold the runtime lock; without record mode each is a
 *    no-op, and record_init leaves rt->record NULL):
 *        setup:             record_init(rt)
 *        tracked alloc:     record_alloc(rt, a)       free: record_free(rt, a)
 *        every launch:      record_launch(rt, layout, refs, n)
 *        exit (no driver):  record_finish(rt)   builds the plan, writes the file atomically
 *
 * 2. The pure code underneath (no driver, no global state; the unit tests use it):
 *        struct record_trace t; record_trace_init(&t);
 *        on a tracked allocation:  record_trace_alloc(&t, ordinal, bytes)   (ordinals 0, 1, ...)
 *        on its free:              record_trace_free(&t, ordinal)
 *        on a launch:              record_trace_launch(&t, kernel_name, ordinals, n)
 *                                  (the tracked allocations the launch references, any order,
 *                                  duplicates allowed; n may be 0)
 *        at exit:                  struct record_plan p; record_plan_build(&t, &p);
 *                                  record_plan_write(f, &p); record_plan_free(&p);
 *                                  record_trace_destroy(&t);
 *    Every event gets the next tick of the trace's own clock, so the runtime passes none.
 *    Cost: 32 bytes per launch + 8 per reference (a million launches: tens of MiB).
 */
#ifndef OFFLOAD_RECORD_H
#define OFFLOAD_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct runtime;
struct allocation;
struct func_layout;

/* ---- 1. the runtime's hooks (trace.c, write.c) ---------------------------------------- */

/* The 64-reference cap: record_launch keeps at most this many of a launch's references
 * (the first ones the launch scan found), so that recording needs no allocation per
 * launch. A kernel referencing more tracked allocations than this is rare (a fused
 * optimizer step); the ones past the cap are missed for that launch only, which can at
 * worst leave an allocation out of the recorded components (the runtime's first-use rule
 * then gives it to the component active when it is first used). */
#define RECORD_LAUNCH_REFS_MAX 64

void record_init(struct runtime *rt);
void record_alloc(struct runtime *rt, const struct allocation *a);
void record_free(struct runtime *rt, const struct allocation *a);
void record_launch(struct runtime *rt, const struct func_layout *layout,
                   struct allocation *const *refs, size_t n);

/* At exit (no driver call): builds the plan and writes the config file to the record path
 * (config `record`, default offload.recorded.conf) atomically. */
void record_finish(struct runtime *rt);

/* ---- 2. the trace (trace.c) ------------------------------------------------------------ */

#define RECORD_NEVER UINT64_MAX

struct record_alloc {
    uint64_t bytes;
    uint64_t alloc_tick;
    uint64_t free_tick; /* RECORD_NEVER while alive */
};

struct record_launch {
    uint64_t tick;
    const char *kernel; /* owned by the trace (interned copy), or NULL */
    size_t first_ref;   /* its ordinals are refs[first_ref .. first_ref + ref_count) */
    size_t ref_count;   /* sorted ascending, no duplicates */
};

struct record_trace {
    struct record_alloc *allocs; /* indexed by ordinal */
    size_t alloc_count, alloc_cap;
    struct record_launch *launches; /* in tick order */
    size_t launch_count, launch_cap;
    uint64_t *refs;
    size_t ref_count, ref_cap;
    char **kernel_names; /* interned names, so a name is stored once */
    size_t kernel_name_count, kernel_name_cap;
    size_t *kernel_slots; /* open-addressing index into kernel_names (+1; 0 = empty) */
    size_t kernel_slot_count;
    uint64_t clock;
};

void record_trace_init(struct record_trace *t);
void record_trace_destroy(struct record_trace *t);

/* Returns 0, or -1 on a wrong ordinal or out of memory; the trace stays usable either
 * way. record_trace_alloc takes ordinals in increasing order; skipped ones (an allocation
 * that failed after getting its ordinal) are kept as empty entries. record_trace_free
 * refuses unknown or already freed ordinals. */
int record_trace_alloc(struct record_trace *t, uint64_t ordinal, uint64_t bytes);
int record_trace_free(struct record_trace *t, uint64_t ordinal);
/* Unknown ordinals (>= alloc_count) are ignored. */
int record_trace_launch(struct record_trace *t, const char *kernel, const uint64_t *ordinals,
                        size_t count);

/* ---- 3. the plan (group.c) ------------------------------------------------------------- */

#define RECORD_NAME_MAX 24

struct record_component {
    char name[RECORD_NAME_MAX]; /* c0, c1, ... in order of first use */
    uint64_t *allocs;           /* ordinals, ascending */
    size_t alloc_count;
    uint64_t bytes;
    size_t first_launch;      /* index of the first launch that uses it */
    const char *first_kernel; /* that launch's kernel (points into the trace: write the
                                 plan before record_trace_destroy), or NULL */
    bool keep;                /* shared by several phases: written with keep = yes */
    uint64_t *order;          /* its allocs in their learnt order of first use per turn */
    size_t order_count;       /* (runtime/policy/order.h; learn.c) */
};

struct record_plan {
    struct record_component *components;
    size_t component_count;
    size_t *sequence; /* component indices, one cycle, consecutive repeats collapsed */
    size_t sequence_length;
    /* what was left out, for the file's header comment */
    size_t launch_count;
    size_t short_lived_count; /* used by launches, not long-lived: activations */
    uint64_t short_lived_bytes;
    size_t unused_count; /* never referenced by a launch */
    uint64_t unused_bytes;
};

/*
 * Groups the trace's long-lived allocations into components and finds the sequence.
 * Definitions (the full rule is at the top of group.c):
 *   long-lived  referenced by at least one launch and either never freed and alive
 *               for more than half of the launches, or alive during every launch
 *               (allocated before the first, freed after the last). The rest are
 *               activations and stay unowned.
 *   phase       a stretch of consecutive launches working on one set of long-lived
 *               allocations; components are the groups of allocations used in exactly
 *               the same phases, named in order of first use; the sequence is the order
 *               of the phases' components (consecutive repeats collapsed, and a repeated
 *               whole cycle, e.g. a program running its pipeline twice, written once).
 * Returns 0, or -1 out of memory (plan then needs no record_plan_free).
 */
int record_plan_build(const struct record_trace *trace, struct record_plan *plan);

void record_plan_free(struct record_plan *plan);

/* ---- 4. the config (write.c) ----------------------------------------------------------- */

/*
 * Writes a complete offload.conf: a header comment, [offload] with sequence (when there
 * is one), policy = sequence and prefetch = 1, then one [component cN] per component with
 * `allocs = 0-11, 14, 20-25`, `order = 0-5, 11-6, 14, 20-25` (its learnt order: runs up or
 * down; as much of it as a line holds, restricted to what the allocs line lists) and
 * comments ("# 37.5 MiB in 12 allocations, first used by launch 3 (kernel matmul)").
 * Every line ends with a newline, the last one included. The text parses with
 * config_parse_string. Returns 0, or -1 if writing failed (ferror).
 */
int record_plan_write(FILE *out, const struct record_plan *plan);

/* Writes `ordinals` (ascending) as ranges "0-11, 14, 20-25" — exposed for tests. */
int record_write_ranges(FILE *out, const uint64_t *ordinals, size_t count);

#endif /* OFFLOAD_RECORD_H */
