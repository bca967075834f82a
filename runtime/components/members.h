/*
 * members.h — internal to runtime/components: the state components.c keeps per component,
 * shared with stream.c. Everyone else uses components.h.
 */
#ifndef OFFLOAD_COMPONENTS_MEMBERS_H
#define OFFLOAD_COMPONENTS_MEMBERS_H

#include "runtime/components/components.h"
#include "runtime/policy/order.h"
#include "runtime/policy/policy.h"

struct component_state {
    struct allocation **members;
    size_t count, capacity;
    uint64_t bytes, peak_bytes; /* owned (mapped sizes of alive members) */
    struct move_stats moves;
    struct order order; /* the order its members are first touched in each turn */
    uint64_t turns;     /* times it became active: the order's turn number */
    size_t position;    /* where in `order` its last launch was; ORDER_NONE before any */
    /* rt->clock before its previous launch: what was used since is hot (stream.c) */
    uint64_t clock_before_previous, clock_before_last;
    /* streaming (stream.c) */
    /* measured (stream.c): host time per position of the order, the restore copy rate */
    uint64_t moved_ns;        /* when the position last moved (0: not this turn) */
    double ns_per_position;   /* 0 until measured */
    double bytes_per_ns;      /* 0 until measured */
    struct allocation *probe; /* a restore being timed: the last of a plan's, or NULL */
    uint64_t probe_bytes;     /* copied on the restore stream from probe_ns until it lands */
    uint64_t probe_ns;        /* when it was queued */
    uint64_t probe_seen_ns;   /* when it was last seen still in flight */
    uint64_t observed_turn;   /* the turn stream_observe last saw (turns + 1; 0: none) */
    uint64_t to_device_mark;  /* moves.bytes_to_device at the last launch in its turn */
    uint64_t streamed_bytes;  /* restored while it was active (its own turns) */
    uint64_t stable_bytes;    /* on the device through the last complete cycle of its order */
    bool cycled;              /* a cycle of its order completed at least once */
};

struct components {
    size_t count;
    struct component_state *c;
    int active;
    size_t active_pos;
    bool wrapped; /* a turn came back to the sequence's start (or stayed at one position) */
    /* the last plan's window: kept out of pressure evictions while others can go */
    bool *window;
    /* scratch for policy calls, count entries each; a switch plan points into them */
    struct policy_component *view;
    size_t *evict, *prefetch, *victims;
    bool *protect;
};

/* A launch in the active component touched refs[0..n): the learnt order follows. */
void stream_observe(struct runtime *rt, struct allocation **refs, size_t n);

/* A member is being freed: the stream forgets it. */
void stream_forget(struct component_state *s, const struct allocation *a);

#endif /* OFFLOAD_COMPONENTS_MEMBERS_H */
