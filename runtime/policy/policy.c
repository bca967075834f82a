/*
 * policy.c — eviction and prefetch decisions (see policy.h for the contract).
 *
 * Everything is a function of the view: no allocation, no state. Component counts are
 * small (a handful to a few dozen), so the quadratic selection loops below cost less
 * than sorting would in code and are easy to check.
 */
#include "runtime/policy/policy.h"

size_t policy_distance(const size_t *sequence, size_t sequence_length, size_t pos, size_t c) {
    if (sequence_length == 0)
        return POLICY_NEVER;
    if (pos == POLICY_NO_POSITION) {
        for (size_t i = 0; i < sequence_length; i++)
            if (sequence[i] == c)
                return i + 1;
        return POLICY_NEVER;
    }
    pos %= sequence_length;
    for (size_t d = 1; d <= sequence_length; d++)
        if (sequence[(pos + d) % sequence_length] == c)
            return d;
    return POLICY_NEVER;
}

size_t policy_next_position(const size_t *sequence, size_t sequence_length, size_t pos, size_t c) {
    size_t d = policy_distance(sequence, sequence_length, pos, c);
    if (d == POLICY_NEVER)
        return pos; /* not in the sequence: the turn stays where it was */
    if (pos == POLICY_NO_POSITION)
        return d - 1;
    return (pos % sequence_length + d) % sequence_length;
}

static size_t distance_of(const struct policy_view *v, size_t c) {
    return policy_distance(v->sequence, v->sequence_length, v->active_pos, c);
}

/* May c be evicted at all (ignoring the window)? */
static bool evictable(const struct policy_view *v, size_t c) {
    const struct policy_component *k = &v->components[c];
    return (int)c != v->active && !k->keep && !k->in_use && k->resident_bytes > 0;
}

/* Belady order: true when a should be evicted before b. Distances of components absent
 * from the sequence are POLICY_NEVER, the largest value, so they come first. */
static bool evict_before(const struct policy_view *v, size_t a, size_t b) {
    size_t da = distance_of(v, a), db = distance_of(v, b);
    if (da != db)
        return da > db;
    uint64_t ra = v->components[a].resident_bytes, rb = v->components[b].resident_bytes;
    if (ra != rb)
        return ra > rb;
    return a < b;
}

static bool listed(const size_t *list, size_t count, size_t c) {
    for (size_t i = 0; i < count; i++)
        if (list[i] == c)
            return true;
    return false;
}

/* The best candidate not excluded, not already in list[0..count), with distance greater
 * than min_distance (use 0 for "any"); -1 if none. */
static int best_victim(const struct policy_view *v, const bool *excluded, const size_t *list,
                       size_t count, size_t min_distance) {
    int best = -1;
    for (size_t c = 0; c < v->component_count; c++) {
        if (!evictable(v, c) || (excluded && excluded[c]) || listed(list, count, c))
            continue;
        if (min_distance && distance_of(v, c) <= min_distance)
            continue;
        if (best < 0 || evict_before(v, c, (size_t)best))
            best = (int)c;
    }
    return best;
}

int policy_choose_victim(const struct policy_view *view, const bool *excluded) {
    return best_victim(view, excluded, NULL, 0, 0);
}

size_t policy_choose_victims(const struct policy_view *view, const bool *excluded,
                             uint64_t needed_bytes, size_t *out, size_t cap, uint64_t *freed) {
    size_t n = 0;
    uint64_t sum = 0;
    while (sum < needed_bytes && n < cap) {
        int c = best_victim(view, excluded, out, n, 0);
        if (c < 0)
            break;
        out[n++] = (size_t)c;
        sum += view->components[c].resident_bytes;
    }
    if (freed)
        *freed = sum;
    return n;
}

static uint64_t missing_bytes(const struct policy_component *k) {
    return k->resident_bytes < k->bytes ? k->bytes - k->resident_bytes : 0;
}

/* policy = budget: make room for `need` more bytes on top of *projected by evicting
 * components farther than `distance`. Appends to plan->evict and returns true if that
 * suffices; otherwise leaves the plan as it was. */
static bool budget_make_room(const struct policy_view *v, struct policy_plan *plan,
                             uint64_t *projected, uint64_t need, size_t distance) {
    size_t start = plan->evict_count, n = start;
    uint64_t p = *projected;
    while (p + need > v->budget) {
        int c = best_victim(v, plan->protect, plan->evict, n, distance);
        if (c < 0) {
            plan->evict_count = start;
            return false;
        }
        plan->evict[n++] = (size_t)c;
        p -= v->components[c].resident_bytes;
    }
    plan->evict_count = n;
    *projected = p;
    return true;
}

int policy_on_switch(const struct policy_view *view, struct policy_plan *plan) {
    const struct policy_view *v = view;
    plan->evict_count = 0;
    plan->prefetch_count = 0;
    if (v->active < 0 || (size_t)v->active >= v->component_count)
        return -1;
    size_t active = (size_t)v->active;
    for (size_t c = 0; c < v->component_count; c++)
        plan->protect[c] = (c == active);
    if (v->policy == CONFIG_POLICY_LRU)
        return 0;

    /* projected: resident bytes once the plan (and the active component's demand
     * restore) is carried out, counting only what the plan cannot change. */
    uint64_t projected = v->other_resident_bytes + v->components[active].bytes;
    for (size_t c = 0; c < v->component_count; c++) {
        if (c == active)
            continue;
        const struct policy_component *k = &v->components[c];
        bool fixed = k->keep || k->in_use;
        if (v->policy == CONFIG_POLICY_BUDGET || fixed)
            projected += k->resident_bytes; /* budget: nothing goes unless needed */
    }

    size_t taken = 0, L = v->sequence_length;
    for (size_t d = 1; d <= L && taken < (size_t)(v->prefetch > 0 ? v->prefetch : 0); d++) {
        bool from_start = v->active_pos == POLICY_NO_POSITION;
        if (!from_start && !v->wraps && v->active_pos % L + d >= L)
            break; /* past the end: only once the program has been seen to come back */
        size_t w = from_start ? v->sequence[d - 1] : v->sequence[(v->active_pos + d) % L];
        if (w >= v->component_count || plan->protect[w])
            continue;
        const struct policy_component *k = &v->components[w];
        if (k->keep && missing_bytes(k) == 0)
            continue;
        uint64_t need;
        if (v->policy == CONFIG_POLICY_BUDGET) {
            need = missing_bytes(k);
            if (projected + need > v->budget &&
                !budget_make_room(v, plan, &projected, need, distance_of(v, w)))
                break;
        } else {
            need = (k->keep || k->in_use) ? missing_bytes(k) : k->bytes;
            if (projected + need > v->budget)
                break;
        }
        projected += need;
        plan->protect[w] = true;
        taken++;
        if (missing_bytes(k) > 0)
            plan->prefetch[plan->prefetch_count++] = w;
    }

    if (v->policy == CONFIG_POLICY_SEQUENCE) {
        for (;;) {
            int c = best_victim(v, plan->protect, plan->evict, plan->evict_count, 0);
            if (c < 0)
                break;
            plan->evict[plan->evict_count++] = (size_t)c;
        }
    }
    return 0;
}
