/*
 * grouping.h — what group.c (steps 1, 2 and 7 of the grouping rule), merge.c (steps 3
 * to 5), stages.c (step 6) and learn.c (the order) share while record_plan_build runs.
 * Internal to runtime/record/.
 */
#ifndef OFFLOAD_RECORD_GROUPING_H
#define OFFLOAD_RECORD_GROUPING_H

#include "runtime/record/record.h"

/* Neighbour markers in the link arrays; real tokens are ordinals < alloc_count. */
#define LINK_NONE SIZE_MAX
#define LINK_MULTI (SIZE_MAX - 1)
#define LINK_EDGE (SIZE_MAX - 2) /* the start or the end of the string */

/* Step 4's record: a set-aside group and its neighbours at one of its occurrences. */
struct hub_seen {
    size_t hub, before, after;
};

struct grouping {
    const struct record_trace *t;
    size_t n; /* allocations in the trace */
    /* step 1, per ordinal */
    bool *long_lived;
    size_t *first_launch; /* SIZE_MAX: never used */
    size_t *uses;         /* launches referencing it */
    /* steps 2 to 6 */
    size_t *parent; /* union-find over ordinals: a group is named by its root */
    size_t *str;    /* the use string: group roots */
    size_t *first;  /* per string position: the first and last launch of that visit */
    size_t *last;
    size_t len;
    size_t *succ, *pred;
    uint64_t *gbytes; /* per root, refreshed by refresh_bytes */
    bool *tail;       /* merged into its predecessor this pass */
    bool *hub;        /* set aside by step 3 or 5 */
    bool *shared;     /* a shared component (keep) */
    struct hub_seen *seen;
    size_t seen_count, seen_cap;
    size_t *hub_order; /* hubs in removal order */
    size_t hub_count;
    /* step 7, per ordinal: the index of its component (long-lived ones only) */
    size_t *comp_of;
};

/* The root of a's group (union-find with path halving). */
static inline size_t grouping_find(size_t *parent, size_t a) {
    while (parent[a] != a) {
        parent[a] = parent[parent[a]];
        a = parent[a];
    }
    return a;
}

/* Steps 3 to 6, then the set-aside groups find their place (merge.c, stages.c).
 * Needs the use string of step 2; leaves every long-lived ordinal's group in parent and
 * the string of groups in str[0..len). 0, or -1 out of memory. */
int grouping_settle(struct grouping *g);

/* Step 6 (stages.c): cuts the program's cycle at its loop into stages and merges the groups
 * steps 4 and 5 left of one stage; sets *changed when it did. Needs gbytes refreshed.
 * 0, or -1 out of memory. */
int grouping_stages(struct grouping *g, bool *changed);

/* Once the components and the sequence are in the plan (step 7): each component's learnt
 * order into plan->components[k].order (learn.c). 0, or -1 out of memory. */
int grouping_learn_orders(struct grouping *g, struct record_plan *plan);

#endif /* OFFLOAD_RECORD_GROUPING_H */
