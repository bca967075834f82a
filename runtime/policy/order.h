/*
 * order.h — the learnt order: in which order a set of tracked allocations (named by their
 * allocation ordinals, as a component's `allocs` names them) is first touched in each
 * turn, kept as one cyclic order and refined as the program runs. The streaming policy
 * asks it for the next use of an allocation after a position (farthest next use over the
 * cyclic order) and for what comes next (what to restore ahead).
 *
 * Pure code: no driver, no global state, no lock of its own (the caller's lock guards it).
 * One struct order per set of allocations that is streamed as a unit: one per component,
 * or one for the whole program when there are no components.
 *
 * Words
 *   turn         one pass of the program over the set: a turn of the component in the
 *                sequence (the time from its becoming active to the next switch), or,
 *                without a sequence, one repetition of the launch pattern.
 *   first touch  the first time an ordinal is touched in a turn; later touches in the
 *                same turn do not change anything.
 *   position     an index into the learnt order, 0 .. order_length() - 1. The order is
 *                cyclic: after the last position comes position 0 (the next turn).
 *
 * The refinement rule
 *   1. An ordinal the order does not know yet is inserted at its first touch, right after
 *      the ordinal the turn touched just before it (at position 0 when it is the turn's
 *      first touch). So the first turn, or an order seeded from the config, grows by what
 *      the turn shows as it happens, and a query never waits for a turn to end.
 *   2. When a turn ends, its list of first touches T is compared with the previous turn's.
 *      When the two are equal (two turns in a row agree) the learnt order is re-sorted
 *      to follow T: the ordinals of T in T's order, each ordinal T did not touch kept
 *      right after the ordinal it followed in the old order (ahead of everything when no
 *      touched ordinal precedes it). One odd turn (a warm-up, a branch taken once) never
 *      changes the order; a change the program keeps is adopted after its second turn.
 *   3. order_forget removes an ordinal (its allocation was freed: ordinals are never
 *      reused) from the order and from the turn lists.
 *   The order is therefore always a permutation of the ordinals seen (or seeded) and not
 *   forgotten, and between two turn ends it only grows.
 *
 * Where the runtime calls it (the launch path owns it; nothing here is called yet):
 *   components set-up   order_init per component; order_seed with the component's
 *                       `order` key (config_component.order) when the config has one.
 *   every launch        after the launch's references are known and the active component
 *                       is decided (components_on_launch), before residency chooses what
 *                       to evict or restore: for each tracked allocation the launch
 *                       references that the component owns, in the order the launch scan
 *                       found them, order_touch(order, turn, ordinal) with turn = how many
 *                       times the component has become active (with a sequence), or
 *                       order_touch_cyclic(order, ordinal) (without one). Copies and
 *                       memsets are not touches: loading weights is not a turn.
 *   a switch away       order_end_turn on the component left, so rule 2 applies at once
 *                       (otherwise it applies at the next turn's first touch).
 *   a tracked free      order_forget(order, ordinal).
 *   exit                order_destroy.
 * All under the runtime lock. The streaming policy then reads: p = order_position(o, the
 * ordinal being touched now); order_farthest(o, p, resident, n) is the victim (farthest
 * next use); order_at(o, (p + i) % order_length(o)), i = 1, 2, ... are the ones to restore
 * ahead.
 *
 * Cost: a touch is one hash lookup, plus O(length) when it inserts an ordinal; a turn end
 * is O(length) (O(length) extra memory while re-sorting); queries are O(1) (order_position,
 * order_next_use: one hash lookup) and O(n) for order_farthest over n candidates.
 */
#ifndef OFFLOAD_ORDER_H
#define OFFLOAD_ORDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "No position": an ordinal the order does not know. */
#define ORDER_NONE SIZE_MAX

struct order_entry; /* per ordinal: its position and its last touch (order.c) */

struct order {
    struct order_entry **at; /* the learnt order: at[position] */
    size_t length, cap;
    struct order_entry *by_ordinal; /* uthash: ordinal -> entry */
    /* the turn being observed */
    bool in_turn;
    uint64_t turn;                /* the caller's number of it */
    uint64_t serial;              /* turns begun so far; an entry touched in this turn has it */
    struct order_entry **touched; /* this turn's first touches, in order */
    size_t touched_count, touched_cap;
    uint64_t *previous; /* the ordinals of the last ended turn's first touches */
    size_t previous_count, previous_cap;
    /* figures, for logs and tests */
    uint64_t turns_ended;
    uint64_t adoptions; /* times rule 2 changed the order */
};

void order_init(struct order *o);
void order_destroy(struct order *o);

/* Replaces the learnt order by `ordinals` (the config's `order`; duplicates after the
 * first are ignored) and forgets the turn lists. 0, or -1 out of memory (the order is
 * then empty). */
int order_seed(struct order *o, const uint64_t *ordinals, size_t count);

/* A touch of `ordinal` in turn `turn`: a turn number different from the current one ends
 * the current turn (rule 2) and begins turn `turn`. 0, or -1 out of memory (the touch is
 * then lost; the order stays consistent). */
int order_touch(struct order *o, uint64_t turn, uint64_t ordinal);

/* The same without turn numbers: the repetition rule decides where a turn ends. A touch
 * of the ordinal that began the current turn starts the next turn once the current one
 * has first-touched another ordinal and at least half of the ordinals the order knows.
 * Only the turn's first ordinal can end it, and only past half way: a weight read twice
 * inside a layer, or by two launches in a row, never ends a turn. The first ordinal read
 * again at the turn's end (tied embeddings: E L1 .. Ln E) ends the turn there; the next
 * turn then begins with that E and absorbs the one that really starts it, so the order
 * stays E L1 .. Ln. Use either this or order_touch on one order, not both. */
int order_touch_cyclic(struct order *o, uint64_t ordinal);

/* Ends the current turn now (rule 2); no-op outside a turn. 0, or -1 out of memory (the
 * learnt order is then unchanged). */
int order_end_turn(struct order *o);

/* Removes ordinal from the order and the turn lists (rule 3); unknown ones are ignored.
 * O(length). */
void order_forget(struct order *o, uint64_t ordinal);

/* Flags the caller keeps per ordinal (the streaming policy's per-cycle marks); 0 for an
 * ordinal just inserted, and order_flags returns 0 for one the order does not know.
 * order_set_flags on an unknown ordinal does nothing. O(1). */
unsigned order_flags(const struct order *o, uint64_t ordinal);
void order_set_flags(struct order *o, uint64_t ordinal, unsigned flags);

/* Where a pass over the order stands after a touch at position `to`, from `position`
 * (ORDER_NONE or out of range: no pass yet, the touch starts one). The position moves
 * forward only: a touch at most half the order ahead is progress (the wrap from the last
 * positions to the first included: *wrapped, one pass is done); one farther ahead is
 * behind and changes nothing. A `shared` allocation (used by several launches in a pass:
 * an activation, a buffer every layer reads) never wraps: touched late in a pass, an
 * activation at an early position would otherwise look like the wrap to the next pass
 * and pull the position back. It still moves the position forward (activations first
 * used at the end of a pass take the position there). */
size_t order_advance(size_t length, size_t position, size_t to, bool shared, bool *wrapped);

/* ---- queries ---------------------------------------------------------------------------- */

size_t order_length(const struct order *o);

/* The ordinal at `position` (< order_length). */
uint64_t order_at(const struct order *o, size_t position);

/* The position of ordinal, or ORDER_NONE. */
size_t order_position(const struct order *o, uint64_t ordinal);

/* How many positions forward from `position` the next use of ordinal is, along the cyclic
 * order: 1 .. order_length (order_length: ordinal is at `position` itself, so its next use
 * is in the next turn). ORDER_NONE for an unknown ordinal or a position out of range. */
size_t order_next_use(const struct order *o, size_t position, uint64_t ordinal);

/* Among candidates[0..count), the index of the one whose next use after `position` is
 * farthest (the one to evict); an ordinal the order does not know counts as farthest of
 * all. Ties: the first. ORDER_NONE when count is 0. */
size_t order_farthest(const struct order *o, size_t position, const uint64_t *candidates,
                      size_t count);

#endif /* OFFLOAD_ORDER_H */
