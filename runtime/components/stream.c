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
 *   - what to restore ahead: the members not on the device within half the order, nearest
 *     first, as far as the window says (below), into room that is free now; for the ones
 *     that do not fit, the farthest members are evicted (if their next use is farther
 *     than the one coming), several if needed, and the restore goes ahead once that room
 *     has landed. One needed within STREAM_AHEAD_NOW is restored at once, its room's
 *     evictions waited for here: the launch after would wait for them anyway, on demand,
 *     with its copy not yet queued.
 *
 * How far ahead, measured: the window is bytes, not a count of members. Each launch that
 * moves the position measures the host time per position of the order (from one
 * member's use to the next's), and restores are timed (a probe: a plan's restores whose
 * room was free, with what was queued before them, until the last has landed, seen at
 * the launches and taken half way between the last look that found it in flight and the
 * first that found it landed), which gives the copy rate. A member goes now when, queued
 * one launch later, it would land after its use: when copying what is queued ahead of it
 * and itself, and first copying out the victims its room needs (after the launch still
 * using them), takes longer than the d - 1 positions before its use. And no more is
 * queued while the restore stream already has more than it copies in one position: what
 * is queued at the next launch then starts as early. Everything else waits, and the room
 * it would hold stays with the subset that stays resident. Until both are measured, the
 * nearest STREAM_AHEAD_NOW go ahead (as -DSTREAM_JIT=0 does always: the comparison in
 * tests/bench/NOTES.md).
 *
 * Per component it also measures, for the report: the bytes restored while it was active
 * (streamed), and the bytes that stayed on the device through the last complete cycle of
 * its order (resident across turns: the stable subset).
 */
#include "runtime/components/members.h"

#include "base/log.h"
#include "driver/driver.h"

#include <time.h>

/* The nearest ones (distance at most this) are restored at once, waiting for their room. */
#ifndef STREAM_AHEAD_NOW
#define STREAM_AHEAD_NOW 2
#endif

/* 0: the nearest STREAM_AHEAD_NOW only, whatever was measured (for comparison). */
#ifndef STREAM_JIT
#define STREAM_JIT 1
#endif

/* 1: make room for the next member from idle members rather than wait for the kernel
 * still using the one just used (plan_evictions), at the cost of bytes. Off: on the
 * simulator it moved 5-7% more bytes and showed no gain, its copies and kernels sharing two
 * cores; tests/gpu/run.sh measures both ways on a GPU (tests/bench/NOTES.md). */
#ifndef STREAM_OVERLAP
#define STREAM_OVERLAP 0
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
    log_debug("stream: a pass done, %.1f MiB stayed, %.2f ms per position, %.2f GB/s copies",
              (double)stayed / (1 << 20), s->ns_per_position / 1e6, s->bytes_per_ns);
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

/* Used by this launch or the one before: its kernel may still be queued, so its
 * eviction would wait for it (by its event, or on the host when the room is needed now). */
static bool busy(const struct component_state *s, const struct allocation *a) {
    return a->last_use > s->clock_before_previous;
}

/* Used by several launches in this pass so far, or in the last: an activation, a buffer
 * the whole step reads. */
static bool shared(const struct component_state *s, const struct allocation *a) {
    return (order_flags(&s->order, a->ordinal) >> MARK_USES_SHIFT) >= 2 || hot(s, a);
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A new sample into a running figure: an eighth of the way. */
static double smoothed(double old, double sample) {
    return old > 0 ? old + (sample - old) / 8 : sample;
}

/* The position moved `ahead` places: the host time it took is the time per position. */
static void time_positions(struct component_state *s, size_t ahead, uint64_t now) {
    if (s->moved_ns && ahead && now > s->moved_ns)
        s->ns_per_position = smoothed(s->ns_per_position, (double)(now - s->moved_ns) / ahead);
    s->moved_ns = now;
}

static bool landed(const struct allocation *a) {
    return a->state == ALLOC_RESIDENT ||
           (a->state == ALLOC_RESTORING && driver()->cuEventQuery(a->ready) == CUDA_SUCCESS);
}

/* The probe is looked at once per launch: it landed between the last look that found it
 * in flight and this one, taken as half way. Its bytes over that time are the copy rate. */
static void time_probe(struct component_state *s, uint64_t now) {
    if (!s->probe)
        return;
    if (s->probe->state == ALLOC_EVICTED || s->probe->state == ALLOC_EVICTING) {
        s->probe = NULL; /* gone again before it was seen landed: no sample */
        return;
    }
    if (!landed(s->probe)) {
        s->probe_seen_ns = now;
        return;
    }
    uint64_t at = s->probe_seen_ns + (now - s->probe_seen_ns) / 2;
    if (at > s->probe_ns)
        s->bytes_per_ns =
            smoothed(s->bytes_per_ns, (double)s->probe_bytes / (double)(at - s->probe_ns));
    s->probe = NULL;
}

void stream_forget(struct component_state *s, const struct allocation *a) {
    if (s->probe == a)
        s->probe = NULL;
}

/* The position follows the launches along the order (order_advance): forward only, and
 * a shared member never wraps it to the next pass. One the launch before used too, one
 * two launches of this pass used, or one hot in the last pass is shared (an activation,
 * a buffer read by the whole step): touched late in a pass, at its early position, it
 * would look like the wrap to the next (tests/unit/test_order.c). */
static void advance(struct component_state *s, const struct allocation *a) {
    size_t to = order_position(&s->order, a->ordinal);
    if (to == ORDER_NONE)
        return;
    bool wrapped;
    size_t len = order_length(&s->order), from = s->position;
    s->position = order_advance(len, from, to, shared(s, a) || busy(s, a), &wrapped);
    if (from < len && s->position != from)
        time_positions(s, (s->position + len - from) % len, now_ns());
    if (wrapped)
        end_cycle(s); /* one pass over the order is done */
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
    if (s->observed_turn != s->turns + 1)
        s->moved_ns = 0; /* the time between turns is not the time between uses */
    count_streamed(s);
    s->clock_before_previous = s->clock_before_last;
    s->clock_before_last = rt->clock;
    int active = rt->components->active;
    for (size_t i = 0; i < n; i++) {
        const struct allocation *a = refs[i];
        if (a->component != active)
            continue;
        if (order_touch(&s->order, s->turns, a->ordinal) == 0)
            advance(s, a);
        count_use(s, a);
    }
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

/* A member this launch uses stays. A shared one the launch before used is hot whatever the
 * order says: an activation sits at one position of the order, but its next use is the
 * next launch. A weight the launch before used is the best victim there is (its next use
 * is a whole pass away): its eviction waits for that launch by its event. */
static bool may_go(const struct runtime *rt, const struct component_state *s,
                   const struct allocation *a) {
    return allocation_evictable_state(a) && a->protect_epoch != rt->epoch && !a->keep &&
           (!busy(s, a) || !shared(s, a));
}

/* The member to evict: farthest next use, not among `skip` (nor hot ones when
 * `spare_hot`, nor busy ones when `spare_busy`); NULL when none may go or no order is
 * known. */
static struct allocation *farthest(struct runtime *rt, const struct component_state *s,
                                   struct allocation *const *skip, size_t skip_count,
                                   bool spare_hot, bool spare_busy, size_t *its_distance) {
    struct allocation *best = NULL;
    size_t best_d = 0;
    for (size_t i = 0; i < s->count; i++) {
        struct allocation *a = s->members[i];
        bool skipped = (spare_hot && hot(s, a)) || (spare_busy && busy(s, a));
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
    struct allocation *v = farthest(rt, s, NULL, 0, true, false, &d);
    if (!v)
        v = farthest(rt, s, NULL, 0, false, false, &d); /* under pressure even the hot ones */
    if (v) {
        log_debug("stream: victim #%llu at distance %zu from position %zu of %zu",
                  (unsigned long long)v->ordinal, d, s->position, order_length(&s->order));
        mark_moved(s, v);
    }
    return v;
}

/* How far ahead to look for what to restore: half the order (farther is the next pass's
 * business), at least STREAM_AHEAD_NOW. */
static size_t horizon(const struct component_state *s) {
    size_t half = order_length(&s->order) / 2;
    return half > STREAM_AHEAD_NOW ? half : STREAM_AHEAD_NOW;
}

/* The members not on the device (or leaving it) within the horizon, nearest first:
 * up to STREAM_AHEAD_MAX into away[], their distances into dist[]; returns how many. */
static size_t nearest_away(const struct component_state *s, struct allocation **away,
                           size_t *dist) {
    size_t n = 0;
    for (size_t i = 0; i < s->count; i++) {
        struct allocation *a = s->members[i];
        if (a->state != ALLOC_EVICTED && a->state != ALLOC_EVICTING)
            continue;
        size_t d = distance(s, a);
        if (d > horizon(s) || (n == STREAM_AHEAD_MAX && d >= dist[n - 1]))
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

/* A member whose next use is `its_d` away is used later than distance d, and in the next
 * cycle of the order (this cycle has used it already). */
static bool next_cycle_after(const struct component_state *s, size_t its_d, size_t d) {
    return its_d > d && its_d + s->position >= order_length(&s->order);
}

/* Evictions for `needs` more bytes than room and coming hold: other components' first,
 * then the active one's, only members used later than distance d; into plan->evict.
 * Returns the bytes they free.
 *
 * Among the active one's, only what this cycle has used already (its next use is in the
 * next cycle; a member still to come would be restored again before the cycle's end),
 * farthest first. With STREAM_OVERLAP, of those an idle one before a busy one: both come
 * back in the next cycle, but the busy one's eviction waits for the kernel still using
 * it. And when only a busy one would do and the member is needed next (d <= 1), waiting
 * for that kernel and then copying serializes the copy with the compute: an idle member
 * whose next use lies beyond the horizon goes instead, though it comes back later in
 * this cycle. That costs its bytes once a cycle, and buys a window of two, where the next
 * member copies in while the current one computes. */
static uint64_t plan_evictions(struct runtime *rt, const struct component_state *s,
                               struct stream_plan *plan, uint64_t needs, size_t d) {
    uint64_t freed = plan_other_evictions(rt, plan, needs);
    while (freed < needs && plan->evict_count < STREAM_EVICT_MAX) {
        size_t victim_d, idle_d = 0;
        struct allocation *victim =
            farthest(rt, s, plan->evict, plan->evict_count, true, false, &victim_d);
        struct allocation *idle =
            STREAM_OVERLAP ? farthest(rt, s, plan->evict, plan->evict_count, true, true, &idle_d)
                           : NULL;
        bool used_this_cycle = victim && next_cycle_after(s, victim_d, d);
        if (idle && next_cycle_after(s, idle_d, d)) {
            victim = idle;
            victim_d = idle_d;
        } else if (used_this_cycle && d <= 1 && idle && idle_d > horizon(s)) {
            log_debug("stream: evict #%llu (next use in %zu) to copy the next while "
                      "#%llu computes",
                      (unsigned long long)idle->ordinal, idle_d,
                      (unsigned long long)victim->ordinal);
            victim = idle;
            victim_d = idle_d;
        } else if (!used_this_cycle) {
            break;
        }
        plan->evict[plan->evict_count++] = victim;
        freed += victim->mapped;
        log_debug("stream: evict #%llu (next use in %zu) for the one in %zu, position %zu",
                  (unsigned long long)victim->ordinal, victim_d, d, s->position);
    }
    return freed;
}

/* Bytes on the restore stream not landed yet: this component's restores in flight. */
static uint64_t in_flight(const struct component_state *s) {
    uint64_t bytes = 0;
    for (size_t i = 0; i < s->count; i++) {
        const struct allocation *a = s->members[i];
        if (a->state == ALLOC_RESTORING && !landed(a))
            bytes += a->mapped;
    }
    return bytes;
}

/* Must the member at distance d be restored now? The window is bytes: what the restore
 * stream copies, at the measured rate, in the time of one position (until the next plan
 * can queue more). While more than that is queued, a restore queued at the next plan
 * starts as early as one queued now: it waits. Otherwise it goes now when, started one
 * launch later, it would land after its use: when what must happen first takes longer
 * than the d - 1 positions before its use. That is copying the `queued` bytes ahead of it
 * and its own `bytes`, and, for `short_of` bytes of room not free yet, copying victims
 * out first, after the launch still using them when their eviction has not begun
 * (`victims_in_use`). The nearest always; before the copy rate and the time per position
 * are measured, the nearest STREAM_AHEAD_NOW. */
static bool due(const struct component_state *s, size_t d, uint64_t queued, uint64_t bytes,
                uint64_t short_of, bool victims_in_use) {
    if (!STREAM_JIT || d <= 1 || s->bytes_per_ns <= 0 || s->ns_per_position <= 0)
        return d <= STREAM_AHEAD_NOW;
    double window = s->bytes_per_ns * s->ns_per_position;
    if ((double)queued >= window)
        return false;
    double lead = (double)(queued + bytes + short_of) / s->bytes_per_ns +
                  (victims_in_use ? s->ns_per_position : 0);
    return lead > (double)(d - 1) * s->ns_per_position;
}

/* Times the plan's last restore (with everything queued before it) if none is timed and
 * every restore of the plan had its room free: one that waits for an eviction would time
 * the eviction and the kernel still using its victim, not the copy. */
static void start_probe(struct component_state *s, const struct stream_plan *plan, uint64_t queued,
                        bool waits) {
    if (s->probe || plan->prefetch_count == 0 || waits)
        return;
    s->probe = plan->prefetch[plan->prefetch_count - 1];
    s->probe_bytes = queued;
    s->probe_ns = s->probe_seen_ns = now_ns();
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
    time_probe(s, now_ns());
    uint64_t queued = in_flight(s);
    bool waits = false;
    for (size_t i = 0; i < n; i++) {
        struct allocation *next = away[i];
        /* taking back an eviction in flight needs no room */
        uint64_t needs = next->state == ALLOC_EVICTING ? 0 : next->mapped;
        if (!due(s, dist[i], queued, next->mapped, needs > room ? needs - room : 0,
                 needs > room + coming))
            break; /* started later, it still lands in time */
        queued += next->mapped;
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
            waits = true;
        }
        coming -= needs; /* promised to this one */
    }
    for (size_t i = 0; i < plan->evict_count; i++)
        mark_moved(s, plan->evict[i]);
    for (size_t i = 0; i < plan->prefetch_count; i++)
        mark_moved(s, plan->prefetch[i]);
    start_probe(s, plan, queued, waits);
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
