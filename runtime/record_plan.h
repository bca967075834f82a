/*
 * record_plan.h — record mode: from a trace of allocations and launches to components,
 * a sequence and a ready-to-edit offload.conf.
 *
 * Pure code: the trace is a plain growable structure the runtime appends to (under its
 * own lock); record_plan_build is a function of the trace; record_plan_write prints to
 * a FILE* the caller opened. Nothing here touches the driver or keeps global state.
 *
 * Use (runtime, OFFLOAD_MODE=record):
 *   struct record_trace t; record_trace_init(&t);
 *   on a tracked allocation:  record_trace_alloc(&t, ordinal, bytes)   (ordinals 0, 1, ...)
 *   on its free:              record_trace_free(&t, ordinal)
 *   on a launch:              record_trace_launch(&t, kernel_name, ordinals, n)
 *                             (the tracked allocations the launch references, any order,
 *                             duplicates allowed; n may be 0)
 *   at exit:                  struct record_plan p; record_plan_build(&t, &p);
 *                             record_plan_write(f, &p, &t); record_plan_free(&p);
 *                             record_trace_destroy(&t);
 * Every event gets the next tick of the trace's own clock, so the runtime passes none.
 * Cost: 32 bytes per launch + 8 per reference (a million launches: tens of MiB).
 */
#ifndef OFFLOAD_RECORD_PLAN_H
#define OFFLOAD_RECORD_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

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
 * Definitions (the full rule is at the top of record_plan.c):
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

/*
 * Writes a complete offload.conf: a header comment, [offload] with sequence (when there
 * is one), policy = sequence and prefetch = 1, then one [component cN] per component with
 * `allocs = 0-11, 14, 20-25` and comments ("# 37.5 MiB in 12 allocations, first used by
 * launch 3 (kernel matmul)"). The text parses with config_parse_string. Returns 0, or -1
 * if writing failed (ferror).
 */
int record_plan_write(FILE *out, const struct record_plan *plan);

/* Writes `ordinals` (ascending) as ranges "0-11, 14, 20-25" — exposed for tests. */
int record_write_ranges(FILE *out, const uint64_t *ordinals, size_t count);

#endif /* OFFLOAD_RECORD_PLAN_H */
