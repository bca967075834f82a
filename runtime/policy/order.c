/*
 * order.c — the learnt order and its refinement rule (order.h has the rule and the calls).
 *
 * An ordinal's entry lives in a uthash by ordinal and is pointed to from the learnt order
 * (`at`), so moving entries fixes their positions without a lookup; `touched` points to
 * the entries first-touched in the current turn, each marked with the turn's serial
 * number so that a repeated touch is recognised in O(1).
 */
#include "runtime/policy/order.h"

#include "base/hash.h"
#include "base/vec.h"

#include <stdlib.h>
#include <string.h>

struct order_entry {
    uint64_t ordinal;
    size_t position;  /* in o->at */
    uint64_t serial;  /* the turn that touched it last (0: none) */
    size_t turn_rank; /* its index in o->touched, when serial is the current turn's */
    unsigned flags;   /* the caller's (order_flags) */
    UT_hash_handle hh;
};

void order_init(struct order *o) {
    memset(o, 0, sizeof *o);
}

static void clear_entries(struct order *o) {
    struct order_entry *e, *tmp;
    HASH_ITER(hh, o->by_ordinal, e, tmp) {
        HASH_DEL(o->by_ordinal, e);
        free(e);
    }
    o->length = 0;
}

void order_destroy(struct order *o) {
    clear_entries(o);
    free(o->at);
    free(o->touched);
    free(o->previous);
    memset(o, 0, sizeof *o);
}

static struct order_entry *find_entry(const struct order *o, uint64_t ordinal) {
    struct order_entry *e, *head = o->by_ordinal;
    HASH_FIND(hh, head, &ordinal, sizeof ordinal, e);
    return e;
}

/* A new entry at `position`, the ones from there on moved one place up. NULL: OOM. */
static struct order_entry *insert_at(struct order *o, uint64_t ordinal, size_t position) {
    if (VEC_RESERVE(o->at, o->cap, o->length + 1))
        return NULL;
    struct order_entry *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->ordinal = ordinal;
    bool hash_oom = false;
    HASH_ADD(hh, o->by_ordinal, ordinal, sizeof e->ordinal, e);
    if (hash_oom) {
        free(e);
        return NULL;
    }
    memmove(o->at + position + 1, o->at + position, (o->length - position) * sizeof *o->at);
    o->at[position] = e;
    o->length++;
    for (size_t p = position; p < o->length; p++)
        o->at[p]->position = p;
    return e;
}

int order_seed(struct order *o, const uint64_t *ordinals, size_t count) {
    clear_entries(o);
    o->touched_count = o->previous_count = 0;
    o->in_turn = false;
    for (size_t i = 0; i < count; i++)
        if (!find_entry(o, ordinals[i]) && !insert_at(o, ordinals[i], o->length)) {
            clear_entries(o);
            return -1;
        }
    return 0;
}

/* ---- turns -------------------------------------------------------------------------------- */

static void begin_turn(struct order *o, uint64_t turn) {
    o->in_turn = true;
    o->turn = turn;
    o->serial++;
    o->touched_count = 0;
}

static bool touched_now(const struct order *o, const struct order_entry *e) {
    return o->in_turn && e->serial == o->serial;
}

static bool same_as_previous(const struct order *o) {
    if (o->touched_count != o->previous_count)
        return false;
    for (size_t i = 0; i < o->touched_count; i++)
        if (o->touched[i]->ordinal != o->previous[i])
            return false;
    return true;
}

/*
 * Rule 2's re-sort into `out` (o->length entries): the touched entries in turn order,
 * each followed by the untouched ones that followed it in the old order; untouched ones
 * before any touched one go first. A counting sort on the touched entry each untouched
 * one is attached to (its "anchor", 0 for the front, rank + 1 after touched[rank]).
 */
static int resorted(const struct order *o, struct order_entry **out) {
    size_t t = o->touched_count;
    size_t *start = calloc(t + 2, sizeof *start); /* per anchor: where its group begins */
    if (!start)
        return -1;
    size_t anchor = 0;
    for (size_t p = 0; p < o->length; p++) {
        const struct order_entry *e = o->at[p];
        if (touched_now(o, e))
            anchor = e->turn_rank + 1;
        else
            start[anchor + 1]++;
    }
    /* group a (a >= 1) is touched[a - 1] then its attached ones */
    for (size_t a = 1; a <= t + 1; a++)
        start[a] += start[a - 1] + (a >= 2 ? 1 : 0);
    for (size_t r = 0; r < t; r++)
        out[start[r + 1]++] = o->touched[r];
    anchor = 0;
    for (size_t p = 0; p < o->length; p++) {
        struct order_entry *e = o->at[p];
        if (touched_now(o, e))
            anchor = e->turn_rank + 1;
        else
            out[start[anchor]++] = e;
    }
    free(start);
    return 0;
}

/* Rule 2 on the turn that just ended: re-sort when it agrees with the previous one. */
static int adopt_if_confirmed(struct order *o) {
    if (!same_as_previous(o))
        return 0;
    struct order_entry **out = malloc((o->length + 1) * sizeof *out);
    if (!out || resorted(o, out)) {
        free(out);
        return -1;
    }
    if (memcmp(out, o->at, o->length * sizeof *out) != 0) {
        memcpy(o->at, out, o->length * sizeof *out);
        for (size_t p = 0; p < o->length; p++)
            o->at[p]->position = p;
        o->adoptions++;
    }
    free(out);
    return 0;
}

/* The ended turn's first touches become the previous turn's. */
static int keep_as_previous(struct order *o) {
    if (VEC_RESERVE(o->previous, o->previous_cap, o->touched_count))
        return -1;
    for (size_t i = 0; i < o->touched_count; i++)
        o->previous[i] = o->touched[i]->ordinal;
    o->previous_count = o->touched_count;
    return 0;
}

int order_end_turn(struct order *o) {
    if (!o->in_turn)
        return 0;
    int rc = adopt_if_confirmed(o);
    if (rc == 0)
        rc = keep_as_previous(o);
    if (rc)
        o->previous_count = 0; /* cannot compare: the next turn starts afresh */
    o->in_turn = false;
    o->touched_count = 0;
    o->turns_ended++;
    return rc;
}

/* ---- touches ------------------------------------------------------------------------------ */

/* The first touch of ordinal in the current turn (rule 1 for an unknown one). */
static int first_touch(struct order *o, uint64_t ordinal, struct order_entry *e) {
    if (VEC_RESERVE(o->touched, o->touched_cap, o->touched_count + 1))
        return -1;
    if (!e) {
        size_t at = o->touched_count ? o->touched[o->touched_count - 1]->position + 1 : 0;
        e = insert_at(o, ordinal, at);
        if (!e)
            return -1;
    }
    e->serial = o->serial;
    e->turn_rank = o->touched_count;
    o->touched[o->touched_count++] = e;
    return 0;
}

int order_touch(struct order *o, uint64_t turn, uint64_t ordinal) {
    int rc = 0;
    if (o->in_turn && o->turn != turn)
        rc = order_end_turn(o);
    if (!o->in_turn)
        begin_turn(o, turn);
    struct order_entry *e = find_entry(o, ordinal);
    if (e && touched_now(o, e))
        return rc;
    return first_touch(o, ordinal, e) ? -1 : rc;
}

int order_touch_cyclic(struct order *o, uint64_t ordinal) {
    uint64_t turn = o->in_turn ? o->turn : o->turn + 1;
    if (o->in_turn && o->touched_count > 1 && o->touched[0]->ordinal == ordinal &&
        o->touched_count * 2 >= o->length)
        turn++;
    return order_touch(o, turn, ordinal);
}

/* Drops entry e from the current turn's list (ranks of the later ones move down). */
static void untouch(struct order *o, const struct order_entry *e) {
    if (!touched_now(o, e))
        return;
    size_t r = e->turn_rank;
    memmove(o->touched + r, o->touched + r + 1, (o->touched_count - r - 1) * sizeof *o->touched);
    o->touched_count--;
    for (size_t i = r; i < o->touched_count; i++)
        o->touched[i]->turn_rank = i;
}

void order_forget(struct order *o, uint64_t ordinal) {
    struct order_entry *e = find_entry(o, ordinal);
    if (!e)
        return;
    untouch(o, e);
    size_t k = 0;
    for (size_t i = 0; i < o->previous_count; i++)
        if (o->previous[i] != ordinal)
            o->previous[k++] = o->previous[i];
    o->previous_count = k;
    size_t p = e->position;
    memmove(o->at + p, o->at + p + 1, (o->length - p - 1) * sizeof *o->at);
    o->length--;
    for (; p < o->length; p++)
        o->at[p]->position = p;
    HASH_DEL(o->by_ordinal, e);
    free(e);
}

/* ---- the caller's flags ------------------------------------------------------------------- */

unsigned order_flags(const struct order *o, uint64_t ordinal) {
    const struct order_entry *e = find_entry(o, ordinal);
    return e ? e->flags : 0;
}

void order_set_flags(struct order *o, uint64_t ordinal, unsigned flags) {
    struct order_entry *e = find_entry(o, ordinal);
    if (e)
        e->flags = flags;
}

/* ---- passes ------------------------------------------------------------------------------ */

size_t order_advance(size_t length, size_t position, size_t to, bool shared, bool *wrapped) {
    *wrapped = false;
    if (position == ORDER_NONE || position >= length)
        return to;
    size_t ahead = to < length ? (to + length - position) % length : 0;
    if (ahead == 0 || ahead > length / 2 || (shared && to < position))
        return position;
    *wrapped = to < position;
    return to;
}

/* ---- queries ------------------------------------------------------------------------------ */

size_t order_length(const struct order *o) {
    return o->length;
}

uint64_t order_at(const struct order *o, size_t position) {
    return o->at[position]->ordinal;
}

size_t order_position(const struct order *o, uint64_t ordinal) {
    const struct order_entry *e = find_entry(o, ordinal);
    return e ? e->position : ORDER_NONE;
}

size_t order_next_use(const struct order *o, size_t position, uint64_t ordinal) {
    const struct order_entry *e = find_entry(o, ordinal);
    if (!e || position >= o->length)
        return ORDER_NONE;
    return e->position > position ? e->position - position : e->position + o->length - position;
}

size_t order_farthest(const struct order *o, size_t position, const uint64_t *candidates,
                      size_t count) {
    size_t best = ORDER_NONE, best_distance = 0;
    for (size_t i = 0; i < count; i++) {
        size_t d = order_next_use(o, position, candidates[i]); /* ORDER_NONE: farthest */
        if (best == ORDER_NONE || d > best_distance) {
            best = i;
            best_distance = d;
        }
    }
    return best;
}
