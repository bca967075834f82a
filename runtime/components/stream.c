/*
 * stream.c — a component larger than what the budget leaves it, streamed allocation by
 * allocation along its learnt order (policy/order.h).
 *
 * Each launch in the active component touches the order (stream_observe) and moves the
 * component's position. Distances are along the cyclic order from that position: the
 * allocation used next has distance 1, the one just used the whole order's length. Two
 * decisions follow, Belady's rule on the cyclic order:
 *   - the victim, when room is needed: the member whose next use is farthest (a stable
 *     subset emerges: what is used soon stays, what was just used goes first);
 *   - what to restore ahead: the members not on the device within the look-ahead, nearest
 *     first, into room that is free now; for the ones that do not fit, the farthest
 *     members are evicted (if their next use is farther than the one coming), several if
 *     needed, and the restore goes ahead once that room has landed. The one needed next
 *     (distance 1 or 2) is restored at once, its room's evictions waited for here: the
 *     launch after would wait for them anyway, on demand, with its copy not yet queued.
 *
 * How far ahead, measured: the look-ahead starts at STREAM_AHEAD_START positions and grows
 * by one each time a launch finds a member of the active component still away or its
 * copy not landed (the copy rate against the time between uses said it was late), up to
 * half the order; after a whole order's length of launches with nothing late it shrinks
 * by one, so it settles where copies just hide behind compute.
 *
 * Per component it also measures, for the report: the bytes restored while it was active
 * (streamed), and the bytes that stayed on the device through the last complete cycle of
 * its order (resident across turns: the stable subset).
 */
#include "runtime/components/members.h"

#include "base/log.h"
#include "driver/driver.h"

/* Positions restored ahead to begin with, and at least. */
#define STREAM_AHEAD_START 4
#define STREAM_AHEAD_FLOOR 2
/* The nearest ones (distance at most this) are restored at once, waiting for their room. */
#ifndef STREAM_AHEAD_NOW
#define STREAM_AHEAD_NOW 2
#endif
/* The window restored ahead: this many times the largest member that streams. */
#ifndef STREAM_WINDOW_LARGEST
#define STREAM_WINDOW_LARGEST 1
#endif

/* Per-member marks in the order (order_flags). */
#define MARK_RESIDENT_AT_CYCLE 1u /* on the device when the current cycle began */
#define MARK_MOVED 2u             /* evicted or restored since the current cycle began */
#define MARK_HOT 4u               /* used by several launches in the last cycle */
#define MARK_USES_SHIFT 3         /* launches that used it in this cycle, saturating */
#define MARK_USES_MAX 3u

static struct component_state *active_state(struct runtime *rt) {
    struct components *cs = rt->components;
    return cs && cs->active >= 0 ? &cs->c[cs->active] : NULL;
}

static bool on_device(const struct allocation *a) {
    return a->state == ALLOC_RESIDENT || a->state == ALLOC_RESTORING;
}

/* A cycle of the order completed: what stayed on the device through it is its stable
 * subset; the marks start the next cycle. */
static void end_cycle(struct component_state *s) {
    uint64_t stayed = 0;
    for (size_t i = 0; i < s->count; i++) {
        const struct allocation *a = s->members[i];
        unsigned f = order_flags(&s->order, a->ordinal);
        if (on_device(a) && (f & MARK_RESIDENT_AT_CYCLE) && !(f & MARK_MOVED))
            stayed += a->mapped;
        bool hot = (f >> MARK_USES_SHIFT) >= 2;
        order_set_flags(&s->order, a->ordinal,
                        (on_device(a) ? MARK_RESIDENT_AT_CYCLE : 0) | (hot ? MARK_HOT : 0));
    }
    if (s->cycled)
        s->stable_bytes = stayed;
    s->cycled = true;
}

static void mark_moved(struct component_state *s, const struct allocation *a) {
    if (!s)
        return;
    order_set_flags(&s->order, a->ordinal, order_flags(&s->order, a->ordinal) | MARK_MOVED);
}

static void count_use(struct component_state *s, const struct allocation *a) {
    unsigned f = order_flags(&s->order, a->ordinal);
    unsigned uses = f >> MARK_USES_SHIFT;
    if (uses < MARK_USES_MAX)
        order_set_flags(&s->order, a->ordinal,
                        (f & ((1u << MARK_USES_SHIFT) - 1)) | ((uses + 1) << MARK_USES_SHIFT));
}

static bool hot(const struct component_state *s, const struct allocation *a) {
    return order_flags(&s->order, a->ordinal) & MARK_HOT;
}

/* The position follows the launches along the order (order_advance): forward only, and
 * only on members used once per pass. One the launch before used too, one two launches of
 * this pass used, or one hot in the last pass is shared (an activation, a buffer read by
 * the whole step): it sits at one position however often it is touched, and touched late
 * in a pass it would look like the wrap to the next (tests/unit/test_order.c). */
static void advance(struct component_state *s, const struct allocation *a) {
    size_t to = order_position(&s->order, a->ordinal);
    if (to == ORDER_NONE)
        return;
    unsigned uses = order_flags(&s->order, a->ordinal) >> MARK_USES_SHIFT;
    bool shared = uses >= 2 || hot(s, a) || a->last_use > s->clock_before_previous;
    bool wrapped;
    s->position = order_advance(order_length(&s->order), s->position, to, shared, &wrapped);
    if (wrapped)
        end_cycle(s); /* one pass over the order is done */
}

/* A launch that finds a member away, or its copy still in flight, was not served in time:
 * look farther ahead. A whole order of launches served in time: a little less far. */
static void adapt_lookahead(struct component_state *s, bool late) {
    size_t len = order_length(&s->order);
    size_t most = len / 2 > STREAM_AHEAD_FLOOR ? len / 2 : STREAM_AHEAD_FLOOR;
    if (s->lookahead == 0)
        s->lookahead = STREAM_AHEAD_START;
    if (late) {
        s->on_time = 0;
        if (s->lookahead < most)
            s->lookahead++;
    } else if (++s->on_time >= len && s->lookahead > STREAM_AHEAD_FLOOR) {
        s->on_time = 0;
        s->lookahead--;
    }
}

static bool late_for(const struct allocation *a) {
    return a->state == ALLOC_EVICTED || a->state == ALLOC_EVICTING ||
           (a->state == ALLOC_RESTORING && driver()->cuEventQuery(a->ready) != CUDA_SUCCESS);
}

/* The bytes restored for this component since its last launch count as streamed, unless
 * this launch begins its turn (what came before was the switch's doing). */
static void count_streamed(struct component_state *s) {
    uint64_t now = s->moves.bytes_to_device;
    if (s->observed_turn == s->turns + 1)
        s->streamed_bytes += now - s->to_device_mark;
    s->observed_turn = s->turns + 1;
    s->to_device_mark = now;
}

void stream_observe(struct runtime *rt, struct allocation **refs, size_t n) {
    struct component_state *s = active_state(rt);
    if (!s)
        return;
    count_streamed(s);
    s->clock_before_previous = s->clock_before_last;
    s->clock_before_last = rt->clock;
    int active = rt->components->active;
    bool late = false, mine = false;
    for (size_t i = 0; i < n; i++) {
        const struct allocation *a = refs[i];
        if (a->component != active)
            continue;
        mine = true;
        late |= s->position != ORDER_NONE && late_for(a);
        if (order_touch(&s->order, s->turns, a->ordinal) == 0)
            advance(s, a);
        count_use(s, a);
    }
    if (mine)
        adapt_lookahead(s, late);
}

/* Before the order has seen a member (its first pass is still under way), allocation
 * order is the guess: programs mostly create weights in the order they use them. A member
 * the order does not know yet, made after the one at the position, is guessed to come
 * after the known order's end, as many positions on as its ordinal is past that one's
 * (other allocations made in between only make it look farther); others are unknown
 * (farthest). O(1): this runs for every member on every launch of the first pass. */
static size_t guessed_distance(const struct component_state *s, const struct allocation *a) {
    uint64_t here = order_at(&s->order, s->position);
    if (a->ordinal <= here)
        return ORDER_NONE;
    uint64_t past = a->ordinal - here;
    size_t to_end = order_length(&s->order) - s->position;
    return past > SIZE_MAX - to_end ? ORDER_NONE : to_end + (size_t)past - 1;
}

/* Distance of a's next use from the component's position (ORDER_NONE: unknown, farthest). */
static size_t distance(const struct component_state *s, const struct allocation *a) {
    size_t d = order_next_use(&s->order, s->position, a->ordinal);
    return d == ORDER_NONE && s->position < order_length(&s->order) ? guessed_distance(s, a) : d;
}

/* A member used by this launch or the one before is hot whatever the order says: an
 * activation every launch reads sits at one position of the order, but its next use is
 * the next launch. */
static bool may_go(const struct runtime *rt, const struct component_state *s,
                   const struct allocation *a) {
    return allocation_evictable_state(a) && a->protect_epoch != rt->epoch && !a->keep &&
           a->last_use <= s->clock_before_previous;
}

/* The member to evict: farthest next use, not among `skip`; NULL when none may go or no
 * order is known. */
static struct allocation *farthest(struct runtime *rt, const struct component_state *s,
                                   struct allocation *const *skip, size_t skip_count,
                                   bool spare_hot, size_t *its_distance) {
    struct allocation *best = NULL;
    size_t best_d = 0;
    for (size_t i = 0; i < s->count; i++) {
        struct allocation *a = s->members[i];
        bool skipped = spare_hot && hot(s, a);
        for (size_t k = 0; k < skip_count; k++)
            skipped |= skip[k] == a;
        if (skipped || !may_go(rt, s, a))
            continue;
        size_t d = distance(s, a);
        if (!best || d > best_d) {
            best = a;
            best_d = d;
        }
    }
    *its_distance = best_d;
    return best;
}

struct allocation *components_stream_victim(struct runtime *rt) {
    struct component_state *s = active_state(rt);
    if (!s || s->position == ORDER_NONE)
        return NULL;
    size_t d;
    struct allocation *v = farthest(rt, s, NULL, 0, true, &d);
    if (!v)
        v = farthest(rt, s, NULL, 0, false, &d); /* under pressure even the hot ones */
    if (v) {
        log_debug("stream: victim #%llu at distance %zu from position %zu of %zu",
                  (unsigned long long)v->ordinal, d, s->position, order_length(&s->order));
        mark_moved(s, v);
    }
    return v;
}

/* The members not on the device (or leaving it) within the look-ahead, nearest first:
 * up to STREAM_AHEAD_MAX into away[], their distances into dist[]; returns how many. */
static size_t nearest_away(const struct component_state *s, struct allocation **away,
                           size_t *dist) {
    size_t n = 0;
    for (size_t i = 0; i < s->count; i++) {
        struct allocation *a = s->members[i];
        if (a->state != ALLOC_EVICTED && a->state != ALLOC_EVICTING)
            continue;
        size_t d = distance(s, a);
        if (d > s->lookahead || (n == STREAM_AHEAD_MAX && d >= dist[n - 1]))
            continue;
        size_t k = n < STREAM_AHEAD_MAX ? n++ : n - 1; /* insertion, nearest first */
        while (k > 0 && dist[k - 1] > d) {
            away[k] = away[k - 1];
            dist[k] = dist[k - 1];
            k--;
        }
        away[k] = a;
        dist[k] = d;
    }
    return n;
}

/* Other components' memory that may go (outside the switch plan's window, in the
 * policy's order) comes first: the active one's stable subset is what streaming keeps. */
static uint64_t plan_other_evictions(struct runtime *rt, struct stream_plan *plan, uint64_t needs) {
    size_t nc;
    const size_t *victims = components_victims(rt, needs, false, &nc);
    uint64_t freed = 0;
    for (size_t v = 0; v < nc && freed < needs; v++) {
        if ((int)victims[v] == rt->components->active)
            continue;
        const struct component_state *o = &rt->components->c[victims[v]];
        for (size_t i = 0; i < o->count && freed < needs && plan->evict_count < STREAM_EVICT_MAX;
             i++) {
            struct allocation *a = o->members[i];
            bool planned = false; /* by an earlier call for the same plan */
            for (size_t k = 0; k < plan->evict_count; k++)
                planned |= plan->evict[k] == a;
            if (!planned && allocation_evictable_state(a) && a->protect_epoch != rt->epoch &&
                !a->keep) {
                plan->evict[plan->evict_count++] = a;
                freed += a->mapped;
            }
        }
    }
    return freed;
}

/* Evictions for `needs` more bytes than room and coming hold: other components' first,
 * then the active one's farthest, only members used later than distance d; into
 * plan->evict. Returns the bytes they free. */
static uint64_t plan_evictions(struct runtime *rt, const struct component_state *s,
                               struct stream_plan *plan, uint64_t needs, size_t d) {
    uint64_t freed = plan_other_evictions(rt, plan, needs);
    while (freed < needs && plan->evict_count < STREAM_EVICT_MAX) {
        size_t victim_d;
        struct allocation *victim =
            farthest(rt, s, plan->evict, plan->evict_count, true, &victim_d);
        /* only what this cycle has used already (its next use is in the next cycle): a
         * member still to come this cycle would be restored again before its end */
        size_t len = order_length(&s->order);
        if (!victim || victim_d <= d || victim_d + s->position < len)
            break;
        plan->evict[plan->evict_count++] = victim;
        freed += victim->mapped;
        log_debug("stream: evict #%llu (next use in %zu) for the one in %zu, position %zu",
                  (unsigned long long)victim->ordinal, victim_d, d, s->position);
    }
    return freed;
}

/* The window: STREAM_WINDOW_LARGEST times the largest member that streams (the next
 * arriving while the one before it is in use), less what is already restored ahead and not
 * yet used. The nearest STREAM_AHEAD_NOW go ahead whatever the window says. A wider window
 * hid no more copying on this machine and moved more: what it holds is taken from the
 * stable subset (tests/bench/NOTES.md, stream). */
static uint64_t window_left(const struct component_state *s) {
    uint64_t largest = 0, ahead = 0;
    for (size_t i = 0; i < s->count; i++) {
        const struct allocation *a = s->members[i];
        unsigned f = order_flags(&s->order, a->ordinal);
        if (!(f & MARK_HOT) && a->mapped > largest)
            largest = a->mapped;
        if (on_device(a) && (f & MARK_MOVED) && (f >> MARK_USES_SHIFT) == 0 &&
            distance(s, a) <= s->lookahead)
            ahead += a->mapped;
    }
    return STREAM_WINDOW_LARGEST * largest > ahead ? STREAM_WINDOW_LARGEST * largest - ahead : 0;
}

bool components_stream_plan(struct runtime *rt, struct stream_plan *plan) {
    memset(plan, 0, sizeof *plan);
    struct component_state *s = active_state(rt);
    if (!s || s->position == ORDER_NONE || order_length(&s->order) < 2)
        return false;
    struct allocation *away[STREAM_AHEAD_MAX];
    size_t dist[STREAM_AHEAD_MAX];
    size_t n = nearest_away(s, away, dist);
    /* room now, and room coming: evictions in flight free their bytes once they land */
    uint64_t room = budget_free(&rt->budget) + rt->pool.bytes;
    uint64_t coming = rt->evicting_bytes;
    uint64_t window = window_left(s);
    for (size_t i = 0; i < n; i++) {
        struct allocation *next = away[i];
        /* taking back an eviction in flight needs no room */
        uint64_t needs = next->state == ALLOC_EVICTING ? 0 : next->mapped;
        if (needs > window && dist[i] > STREAM_AHEAD_NOW)
            break; /* the window is full */
        window -= needs < window ? needs : window;
        if (needs <= room) {
            plan->prefetch[plan->prefetch_count++] = next;
            room -= needs;
            continue;
        }
        if (needs > room + coming)
            coming += plan_evictions(rt, s, plan, needs - room - coming, dist[i]);
        if (needs > room + coming)
            break; /* no room for it, nor for what comes after it */
        if (dist[i] <= STREAM_AHEAD_NOW) {
            plan->prefetch[plan->prefetch_count++] = next; /* waits for its room */
        }
        coming -= needs; /* promised to this one */
    }
    for (size_t i = 0; i < plan->evict_count; i++)
        mark_moved(s, plan->evict[i]);
    for (size_t i = 0; i < plan->prefetch_count; i++)
        mark_moved(s, plan->prefetch[i]);
    return plan->evict_count || plan->prefetch_count;
}

void components_stream_report(const struct runtime *rt, size_t c, uint64_t *streamed,
                              uint64_t *stable) {
    const struct component_state *s = &rt->components->c[c];
    *streamed =
        s->streamed_bytes + (s->observed_turn == s->turns + 1 && (int)c == rt->components->active
                                 ? s->moves.bytes_to_device - s->to_device_mark
                                 : 0);
    *stable = s->stable_bytes;
}
