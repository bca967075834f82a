/*
 * policy.h — what to evict and what to prefetch, as pure functions of a snapshot.
 *
 * The runtime fills a struct policy_view from its registry (under its own lock) and
 * asks; nothing here touches the driver, takes a lock, allocates or keeps state, so
 * unit tests drive every decision directly.
 *
 * Vocabulary
 *   component   an index into view->components (the same index as in struct config).
 *   sequence    view->sequence[0..sequence_length): component indices, cyclic; a
 *               component may appear several times (a -> b -> a -> c).
 *   position    an index into the sequence. The runtime keeps the position of the current
 *               turn: on a switch to X it moves to policy_next_position(..., X), which
 *               leaves it where it was when X is not in the sequence.
 *   distance    of component c from position p: the smallest d >= 1 with
 *               sequence[(p + d) % L] == c (so 1 = "next turn", L = "only after a full
 *               cycle", which is the distance of the active component to its own next
 *               turn). Components absent from the sequence have distance POLICY_NEVER
 *               (never needed by the plan). With p == POLICY_NO_POSITION (no turn taken
 *               yet) the distance is first_index + 1.
 *
 * Bytes: `bytes` is what a component owns (alive allocations); `resident_bytes` is the
 * physical memory it holds now, counting restores in flight (their memory is already
 * allocated). Budget accounting: total resident = other_resident_bytes + sum of
 * resident_bytes.
 */
#ifndef OFFLOAD_POLICY_H
#define OFFLOAD_POLICY_H

#include "config/config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define POLICY_NO_POSITION SIZE_MAX
#define POLICY_NEVER SIZE_MAX

struct policy_component {
    uint64_t bytes;          /* owned by the component (alive allocations) */
    uint64_t resident_bytes; /* mapped now, including restores in flight */
    bool keep;               /* keep = yes: never evicted */
    bool in_flight;          /* a restore was issued and has not completed (informative:
                                the decisions use resident_bytes, which counts it) */
    bool in_use;             /* the runtime forbids evicting it right now */
};

struct policy_view {
    const struct policy_component *components;
    size_t component_count;
    const size_t *sequence; /* component indices, cyclic; may be NULL when length 0 */
    size_t sequence_length;
    int active;                    /* component being run now, or -1 */
    size_t active_pos;             /* position of the current turn, or POLICY_NO_POSITION */
    uint64_t budget;               /* bytes */
    uint64_t other_resident_bytes; /* untracked pass-through + unowned tracked, resident */
    int prefetch;                  /* N: how many upcoming components to restore ahead */
    bool wraps;                    /* the program has come back to the sequence's start */
    enum config_policy policy;
};

/*
 * A plan: the caller provides the three arrays, each with room for component_count
 * entries (protect is required).
 *   evict     components to evict now, in this order (Belady order: farthest first).
 *   prefetch  components to restore asynchronously, nearest turn first; each listed one
 *             has resident_bytes < bytes (restores in flight count as resident, so a
 *             component already coming is not listed again). Restore them in this order.
 *   protect   the window: protect[c] is true for the active component and the components
 *             the plan keeps or brings in for the next turns (prefetch targets and ones
 *             already resident). Under pressure the runtime should pass it as `excluded`
 *             to policy_choose_victim so a demand restore does not throw out what the
 *             plan just decided to keep; if nothing else is left, call again with the
 *             active component's exclusion only (excluded = NULL): correctness wins.
 */
struct policy_plan {
    size_t *evict;
    size_t evict_count;
    size_t *prefetch;
    size_t prefetch_count;
    bool *protect;
};

/* Distance (see above) of component c from position pos; POLICY_NEVER if c is not in
 * the sequence. */
size_t policy_distance(const size_t *sequence, size_t sequence_length, size_t pos, size_t c);

/* The position of the next turn of component c after position pos, searching pos+1,
 * pos+2, ... cyclically (pos itself last, so a one-element sequence stays at 0);
 * from POLICY_NO_POSITION, c's first occurrence. If c is not in the sequence, pos is
 * returned unchanged: the current turn stays where it was. Call it on every switch to
 * keep view->active_pos. */
size_t policy_next_position(const size_t *sequence, size_t sequence_length, size_t pos, size_t c);

/*
 * Decide what to do when view->active has just become active at view->active_pos.
 * Fills *plan and returns 0 (-1 if view->active is out of range).
 *
 * Window: walk the sequence from active_pos+1 cyclically for one cycle, taking each
 * component not yet taken, skipping the active one and keep components that are fully
 * resident, until `prefetch` components are taken. Until view->wraps, the walk stops at
 * the sequence's end: a program that has not yet come back to the start may never do so
 * (one image, then exit), and restoring its first component then costs a component's
 * bytes for nothing, on the bus the last component's own restores need.
 * Each taken component w, in order, must fit, counting its full `bytes`:
 *   policy = sequence: base + bytes(w) <= budget, where base = other_resident_bytes +
 *     bytes(active) + resident bytes of everything the plan cannot evict (keep, in_use)
 *     + bytes of the window components accepted before w.
 *   policy = budget: the bytes w still needs (bytes - resident_bytes) must fit in what
 *     the budget has left after the active component is fully restored; if they do not,
 *     the plan may evict (Belady order) components whose distance is strictly greater
 *     than w's and which are not active, keep, in_use or already in the window, as far
 *     as that makes w fit; if even that does not make it fit, w is not taken.
 *   The walk stops at the first w that does not fit: a farther component never takes
 *   the room a nearer one needs, and no prefetch ever needs the eviction of the active
 *   component or of an earlier prefetch.
 * Accepted window components with resident_bytes < bytes become prefetch targets.
 *
 * Evictions:
 *   policy = sequence: every component with resident_bytes > 0 that is not active, not
 *     keep, not in_use and not in the window (farthest first, Belady order).
 *   policy = budget: only those a prefetch needed (see above); pressure is handled by
 *     the runtime with policy_choose_victim when an allocation or restore would exceed
 *     the budget.
 *   policy = lru: the plan is empty.
 */
int policy_on_switch(const struct policy_view *view, struct policy_plan *plan);

/*
 * Under pressure: the component to evict next, or -1 if none may go.
 * Candidates: resident_bytes > 0, not view->active, not keep, not in_use, and not
 * excluded[c] (excluded may be NULL). Order (Belady's rule on the cyclic sequence):
 * components absent from the sequence first, then the greatest distance from
 * view->active_pos; ties: larger resident_bytes first, then the lower index.
 * The choice does not depend on how many bytes are needed (see policy_choose_victims).
 */
int policy_choose_victim(const struct policy_view *view, const bool *excluded);

/*
 * The loop form: victims in eviction order until their resident_bytes add up to at
 * least needed_bytes. Writes up to `cap` indices to out and the bytes they free to
 * *freed (may be NULL). Returns how many; if *freed < needed_bytes, even evicting all of
 * them is not enough (the runtime then turns to unowned allocations or fails).
 */
size_t policy_choose_victims(const struct policy_view *view, const bool *excluded,
                             uint64_t needed_bytes, size_t *out, size_t cap, uint64_t *freed);

#endif /* OFFLOAD_POLICY_H */
