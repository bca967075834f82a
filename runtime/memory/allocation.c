/*
 * allocation.c — the transition table and the one function that changes a state.
 */
#include "runtime/memory/allocation.h"

#include "base/log.h"

#include <stdlib.h>

/* allowed[from][to], the table of allocation.h */
static const bool allowed[ALLOC_STATE_COUNT][ALLOC_STATE_COUNT] = {
    [ALLOC_RESERVED] = {[ALLOC_RESIDENT] = true},
    [ALLOC_RESIDENT] = {[ALLOC_EVICTING] = true},
    [ALLOC_RESTORING] = {[ALLOC_EVICTING] = true, [ALLOC_RESIDENT] = true},
    [ALLOC_EVICTING] = {[ALLOC_EVICTED] = true, [ALLOC_RESIDENT] = true, [ALLOC_RESTORING] = true},
    [ALLOC_EVICTED] = {[ALLOC_RESTORING] = true},
};

static const char *const names[ALLOC_STATE_COUNT] = {
    [ALLOC_RESERVED] = "reserved", [ALLOC_RESIDENT] = "resident", [ALLOC_RESTORING] = "restoring",
    [ALLOC_EVICTING] = "evicting", [ALLOC_EVICTED] = "evicted",
};

struct allocation *allocation_new(size_t size, size_t granularity) {
    struct allocation *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->size = size;
    a->mapped = (size + granularity - 1) & ~(granularity - 1);
    a->state = ALLOC_RESERVED;
    a->component = -1;
    a->fp_slot = -1;
    return a;
}

void allocation_free(struct allocation *a) {
    if (a)
        free(a->stored);
    free(a);
}

bool allocation_transition_allowed(enum alloc_state from, enum alloc_state to) {
    return (unsigned)from < ALLOC_STATE_COUNT && (unsigned)to < ALLOC_STATE_COUNT &&
           allowed[from][to];
}

const char *allocation_state_name(enum alloc_state s) {
    return (unsigned)s < ALLOC_STATE_COUNT ? names[s] : "invalid";
}

static void illegal(const struct allocation *a, const char *from, const char *to) {
    log_error("internal error: allocation #%llu went from %s to %s, which the state "
              "machine does not allow",
              (unsigned long long)a->ordinal, from, to);
#ifdef OFFLOAD_DEBUG
    abort();
#endif
}

bool allocation_set_state(struct allocation *a, enum alloc_state to) {
    bool legal = allocation_transition_allowed(a->state, to);
    if (!legal)
        illegal(a, allocation_state_name(a->state), allocation_state_name(to));
    a->state = to;
    if (to == ALLOC_EVICTING)
        a->evict_step = EVICT_COPYING;
    return legal;
}

static const char *step_name(enum evict_step step) {
    return step == EVICT_CHECKING ? "evicting (checking)" : "evicting (copying)";
}

bool allocation_set_evict_step(struct allocation *a, enum evict_step step) {
    if (a->state != ALLOC_EVICTING) {
        bool legal = allocation_set_state(a, ALLOC_EVICTING);
        a->evict_step = step;
        return legal;
    }
    bool legal = a->evict_step == EVICT_CHECKING && step == EVICT_COPYING;
    if (!legal)
        illegal(a, step_name(a->evict_step), step_name(step));
    a->evict_step = step;
    return legal;
}
