/*
 * trace.c — what record mode observes: the tracked allocations with their life (alloc and
 * free ticks) and, per launch, its kernel and the tracked allocations it references. The
 * runtime's hooks (record_init, record_alloc, record_free, record_launch) feed the pure
 * trace builder (record_trace_*). See record.h.
 */
#include "runtime/record/record.h"

#include "base/log.h"
#include "base/vec.h"
#include "runtime/state.h"

#include <stdlib.h>
#include <string.h>

/* ---- the runtime's hooks ------------------------------------------------------------- */

void record_init(struct runtime *rt) {
    if (rt->cfg.mode != CONFIG_MODE_RECORD || rt->record)
        return;
    rt->record = calloc(1, sizeof *rt->record);
    if (!rt->record) {
        log_error("record mode: out of memory; nothing will be recorded");
        return;
    }
    record_trace_init(rt->record);
}

void record_alloc(struct runtime *rt, const struct allocation *a) {
    if (rt->record)
        record_trace_alloc(rt->record, a->ordinal, a->size);
}

void record_free(struct runtime *rt, const struct allocation *a) {
    if (rt->record)
        record_trace_free(rt->record, a->ordinal);
}

void record_launch(struct runtime *rt, const struct func_layout *layout,
                   struct allocation *const *refs, size_t n) {
    if (!rt->record)
        return;
    uint64_t ordinals[RECORD_LAUNCH_REFS_MAX];
    size_t k = n < RECORD_LAUNCH_REFS_MAX ? n : RECORD_LAUNCH_REFS_MAX;
    for (size_t i = 0; i < k; i++)
        ordinals[i] = refs[i]->ordinal;
    record_trace_launch(rt->record, layout ? layout->name : NULL, ordinals, k);
}

/* ---- the trace ------------------------------------------------------------------------ */

/* How far past the last ordinal record_trace_alloc accepts one: a caller handing a wild
 * ordinal must not make the trace allocate gigabytes of empty entries. */
#define RECORD_ORDINAL_SKIP_MAX (1u << 20)

void record_trace_init(struct record_trace *t) {
    memset(t, 0, sizeof *t);
}

void record_trace_destroy(struct record_trace *t) {
    for (size_t i = 0; i < t->kernel_name_count; i++)
        free(t->kernel_names[i]);
    free(t->kernel_names);
    free(t->kernel_slots);
    free(t->allocs);
    free(t->launches);
    free(t->refs);
    memset(t, 0, sizeof *t);
}

int record_trace_alloc(struct record_trace *t, uint64_t ordinal, uint64_t bytes) {
    if (ordinal < t->alloc_count || ordinal - t->alloc_count > RECORD_ORDINAL_SKIP_MAX)
        return -1;
    if (VEC_RESERVE(t->allocs, t->alloc_cap, (size_t)ordinal + 1))
        return -1;
    /* Ordinals the caller skipped (an allocation that failed after getting one) stay as
     * empty entries, so later ordinals keep their meaning. */
    while (t->alloc_count < ordinal) {
        uint64_t now = ++t->clock;
        t->allocs[t->alloc_count++] =
            (struct record_alloc){.bytes = 0, .alloc_tick = now, .free_tick = now};
    }
    t->allocs[t->alloc_count++] =
        (struct record_alloc){.bytes = bytes, .alloc_tick = ++t->clock, .free_tick = RECORD_NEVER};
    return 0;
}

int record_trace_free(struct record_trace *t, uint64_t ordinal) {
    if (ordinal >= t->alloc_count || t->allocs[ordinal].free_tick != RECORD_NEVER)
        return -1;
    t->allocs[ordinal].free_tick = ++t->clock;
    return 0;
}

static uint64_t hash_name(const char *s) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* Keeps the name index at most half full: doubles it and reinserts every name. */
static int grow_name_index(struct record_trace *t) {
    if (t->kernel_name_count * 2 < t->kernel_slot_count)
        return 0;
    size_t n = t->kernel_slot_count ? t->kernel_slot_count * 2 : 64;
    size_t *slots = calloc(n, sizeof *slots);
    if (!slots)
        return -1;
    for (size_t i = 0; i < t->kernel_name_count; i++) {
        size_t s = hash_name(t->kernel_names[i]) & (n - 1);
        while (slots[s])
            s = (s + 1) & (n - 1);
        slots[s] = i + 1;
    }
    free(t->kernel_slots);
    t->kernel_slots = slots;
    t->kernel_slot_count = n;
    return 0;
}

/* The trace's own copy of name, stored once; NULL on NULL or out of memory. */
static const char *intern(struct record_trace *t, const char *name) {
    if (!name || grow_name_index(t))
        return NULL;
    size_t mask = t->kernel_slot_count - 1, s = hash_name(name) & mask;
    for (; t->kernel_slots[s]; s = (s + 1) & mask)
        if (strcmp(t->kernel_names[t->kernel_slots[s] - 1], name) == 0)
            return t->kernel_names[t->kernel_slots[s] - 1];
    char *copy = strdup(name);
    if (!copy || VEC_PUSH(t->kernel_names, t->kernel_name_count, t->kernel_name_cap, copy)) {
        free(copy);
        return NULL;
    }
    t->kernel_slots[s] = t->kernel_name_count;
    return copy;
}

/* Writes ordinals into r ascending, duplicates and unknown ones dropped; returns how
 * many. Insertion sort: a launch references a handful of allocations. */
static size_t sorted_known(const struct record_trace *t, const uint64_t *ordinals, size_t count,
                           uint64_t *r) {
    size_t n = 0;
    for (size_t i = 0; i < count; i++) {
        uint64_t o = ordinals[i];
        if (o >= t->alloc_count)
            continue;
        size_t j = n;
        while (j > 0 && r[j - 1] > o)
            j--;
        if (j > 0 && r[j - 1] == o)
            continue;
        memmove(r + j + 1, r + j, (n - j) * sizeof *r);
        r[j] = o;
        n++;
    }
    return n;
}

int record_trace_launch(struct record_trace *t, const char *kernel, const uint64_t *ordinals,
                        size_t count) {
    if (VEC_RESERVE(t->launches, t->launch_cap, t->launch_count + 1) ||
        VEC_RESERVE(t->refs, t->ref_cap, t->ref_count + count))
        return -1;
    const char *name = intern(t, kernel);
    if (kernel && !name)
        return -1;
    size_t n = sorted_known(t, ordinals, count, t->refs + t->ref_count);
    t->launches[t->launch_count++] = (struct record_launch){
        .tick = ++t->clock, .kernel = name, .first_ref = t->ref_count, .ref_count = n};
    t->ref_count += n;
    return 0;
}
