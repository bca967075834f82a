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
 *   - what to restore ahead: the nearest members not on the device, within
 *     STREAM_AHEAD_POSITIONS, into room that is free now; when there is none, the
 *     farthest member is evicted for it, if its next use is farther than the one coming
 *     (the restore then goes ahead at a later launch, once that eviction has landed: the
 *     launch path never waits for it).
 */
#include "runtime/components/members.h"

#include "base/log.h"

/* How far along the order a restore starts ahead of its use. */
#define STREAM_AHEAD_POSITIONS 4

static struct component_state *active_state(struct runtime *rt) {
    struct components *cs = rt->components;
    return cs && cs->active >= 0 ? &cs->c[cs->active] : NULL;
}

/* The position moves forward only: an allocation every launch uses (an activation, a
 * buffer read by the whole step) sits early in the order, and touching it again must not
 * pull the position back. A touch at most half the order ahead is progress (the wrap
 * from the step's end to its start included); one farther ahead is behind. */
static void advance(struct component_state *s, size_t to) {
    size_t len = order_length(&s->order);
    if (s->position == ORDER_NONE || s->position >= len) {
        s->position = to;
        return;
    }
    size_t ahead = (to + len - s->position) % len;
    if (ahead <= len / 2)
        s->position = to;
}

void stream_observe(struct runtime *rt, struct allocation **refs, size_t n) {
    struct component_state *s = active_state(rt);
    if (!s)
        return;
    s->clock_before_previous = s->clock_before_last;
    s->clock_before_last = rt->clock;
    int active = rt->components->active;
    for (size_t i = 0; i < n; i++) {
        const struct allocation *a = refs[i];
        if (a->component == active && order_touch(&s->order, s->turns, a->ordinal) == 0)
            advance(s, order_position(&s->order, a->ordinal));
    }
}

/* Distance of a's next use from the component's position (ORDER_NONE: unknown, farthest). */
static size_t distance(const struct component_state *s, const struct allocation *a) {
    return order_next_use(&s->order, s->position, a->ordinal);
}

/* A member used by this launch or the one before is hot whatever the order says: an
 * activation every launch reads sits at one position of the order, but its next use is
 * the next launch. */
static bool may_go(const struct runtime *rt, const struct component_state *s,
                   const struct allocation *a) {
    return allocation_evictable_state(a) && a->protect_epoch != rt->epoch && !a->keep &&
           a->last_use <= s->clock_before_previous;
}

/* The member to evict: farthest next use; NULL when none may go or no order is known. */
static struct allocation *farthest(struct runtime *rt, const struct component_state *s,
                                   size_t *its_distance) {
    struct allocation *best = NULL;
    size_t best_d = 0;
    for (size_t i = 0; i < s->count; i++) {
        struct allocation *a = s->members[i];
        if (!may_go(rt, s, a))
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
    const struct component_state *s = active_state(rt);
    if (!s || s->position == ORDER_NONE)
        return NULL;
    size_t d;
    struct allocation *v = farthest(rt, s, &d);
    if (v)
        log_debug("stream: victim #%llu at distance %zu from position %zu of %zu",
                  (unsigned long long)v->ordinal, d, s->position, order_length(&s->order));
    return v;
}

/* The nearest member not on the device (or leaving it) within the look-ahead, skipping
 * those already chosen; NULL when none. */
static struct allocation *nearest_away(const struct component_state *s,
                                       const struct stream_plan *plan, size_t *its_distance) {
    struct allocation *best = NULL;
    size_t best_d = STREAM_AHEAD_POSITIONS + 1;
    for (size_t i = 0; i < s->count; i++) {
        struct allocation *a = s->members[i];
        if (a->state != ALLOC_EVICTED && a->state != ALLOC_EVICTING)
            continue;
        bool chosen = false;
        for (size_t k = 0; k < plan->prefetch_count; k++)
            chosen |= plan->prefetch[k] == a;
        size_t d = distance(s, a);
        if (!chosen && d < best_d) {
            best = a;
            best_d = d;
        }
    }
    *its_distance = best_d;
    return best;
}

bool components_stream_plan(struct runtime *rt, struct stream_plan *plan) {
    memset(plan, 0, sizeof *plan);
    const struct component_state *s = active_state(rt);
    if (!s || s->position == ORDER_NONE || order_length(&s->order) < 2)
        return false;
    /* room now, and room coming: evictions in flight free their bytes once they land, and
     * evicting more for the same restore would throw out what stays */
    uint64_t room = budget_free(&rt->budget) + rt->pool.bytes;
    uint64_t coming = rt->evicting_bytes;
    while (plan->prefetch_count < STREAM_AHEAD_MAX) {
        size_t d;
        struct allocation *next = nearest_away(s, plan, &d);
        if (!next)
            break;
        /* taking back an eviction in flight needs no room */
        uint64_t needs = next->state == ALLOC_EVICTING ? 0 : next->mapped;
        if (needs <= room) {
            plan->prefetch[plan->prefetch_count++] = next;
            room -= needs;
            continue;
        }
        if (plan->prefetch_count == 0 && needs > room + coming) {
            size_t victim_d;
            struct allocation *victim = farthest(rt, s, &victim_d);
            if (victim && victim_d > d) {
                plan->evict = victim;
                log_debug("stream: evict #%llu (next use in %zu) for #%llu (in %zu), position %zu",
                          (unsigned long long)victim->ordinal, victim_d,
                          (unsigned long long)next->ordinal, d, s->position);
            }
        }
        break;
    }
    return plan->evict || plan->prefetch_count;
}
