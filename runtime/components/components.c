/*
 * components.c — components, the active component and the sequence policy.
 *
 * Decisions come from policy.h (pure); this file keeps the members of each component,
 * builds the policy's view from them and hands the decisions back as switch plans:
 * runtime/plan.c carries them out.
 */
#include "runtime/components/components.h"
#include "runtime/components/members.h"

#include "base/log.h"
#include "base/units.h"
#include "base/vec.h"

#include <stdio.h>
#include <stdlib.h>

static const struct config_component *cfg_component(const struct runtime *rt, int c) {
    return &rt->cfg.components[c];
}

int components_init(struct runtime *rt) {
    rt->components = NULL;
    size_t n = rt->cfg.component_count;
    if (n == 0 || rt->cfg.mode == CONFIG_MODE_RECORD)
        return 0;
    struct components *cs = calloc(1, sizeof *cs);
    if (!cs)
        return -1;
    cs->count = n;
    cs->active = -1;
    cs->active_pos = POLICY_NO_POSITION;
    cs->c = calloc(n, sizeof *cs->c);
    cs->window = calloc(n, sizeof *cs->window);
    cs->view = calloc(n, sizeof *cs->view);
    cs->evict = calloc(n, sizeof *cs->evict);
    cs->prefetch = calloc(n, sizeof *cs->prefetch);
    cs->victims = calloc(n, sizeof *cs->victims);
    cs->protect = calloc(n, sizeof *cs->protect);
    if (!cs->c || !cs->window || !cs->view || !cs->evict || !cs->prefetch || !cs->victims ||
        !cs->protect) {
        free(cs->c), free(cs->window), free(cs->view), free(cs->evict), free(cs->prefetch);
        free(cs->victims), free(cs->protect), free(cs);
        return -1;
    }
    for (size_t c = 0; c < n; c++) {
        struct component_state *s = &cs->c[c];
        order_init(&s->order);
        s->position = ORDER_NONE;
        const struct config_component *cc = &rt->cfg.components[c];
        if (cc->order_count && order_seed(&s->order, cc->order, cc->order_count) != 0)
            log_warn("component %s: out of memory for its order; it is learnt instead", cc->name);
    }
    rt->components = cs;
    return 0;
}

static bool valid(const struct runtime *rt, int c) {
    return rt->components && c >= 0 && (size_t)c < rt->components->count;
}

static bool switch_to(struct runtime *rt, int x, struct switch_plan *plan);

/* --- membership ----------------------------------------------------------------------- */

/* `declared`: named by the component's `allocs`. Only those take its `readonly`: an
 * allocation claimed at a launch (an activation, a buffer a kernel writes) is not covered
 * by the user's promise that the component's weights are never written, and treating it
 * as read-only would skip the copy back of its later writes. */
static void set_owner(struct runtime *rt, struct allocation *a, int c, bool declared) {
    struct component_state *s = &rt->components->c[c];
    if (VEC_RESERVE(s->members, s->capacity, s->count + 1) != 0)
        return; /* stays unowned: LRU still covers it */
    s->members[s->count++] = a;
    s->bytes += a->mapped;
    if (s->bytes > s->peak_bytes)
        s->peak_bytes = s->bytes;
    a->component = c;
    a->moves = &s->moves;
    a->keep = cfg_component(rt, c)->keep;
    a->readonly = declared && cfg_component(rt, c)->readonly == CONFIG_READONLY_YES;
}

bool components_on_alloc(struct runtime *rt, struct allocation *a, struct switch_plan *plan) {
    if (!rt->components)
        return false;
    int c = config_component_for_ordinal(&rt->cfg, a->ordinal);
    if (!valid(rt, c))
        return false;
    set_owner(rt, a, c, true);
    /* Loading a component is its turn too under policy = sequence (diffusers loads each
     * model on the host and moves it to the device on its turn): without this, loading
     * every model before the first launch would hold them all at once. */
    return rt->cfg.policy == CONFIG_POLICY_SEQUENCE && c != rt->components->active &&
           switch_to(rt, c, plan);
}

void components_forget(struct runtime *rt, struct allocation *a) {
    if (!valid(rt, a->component))
        return;
    struct component_state *s = &rt->components->c[a->component];
    for (size_t i = 0; i < s->count; i++) {
        if (s->members[i] == a) {
            s->members[i] = s->members[--s->count];
            s->bytes -= a->mapped;
            break;
        }
    }
    order_forget(&s->order, a->ordinal);
    stream_forget(s, a);
    a->component = -1;
    a->moves = NULL;
    a->keep = false;
}

/* --- the policy's view ---------------------------------------------------------------- */

static void build_view(struct runtime *rt, struct policy_view *v) {
    struct components *cs = rt->components;
    uint64_t owned_resident = 0;
    for (size_t c = 0; c < cs->count; c++) {
        const struct component_state *s = &cs->c[c];
        struct policy_component *pc = &cs->view[c];
        memset(pc, 0, sizeof *pc);
        pc->bytes = s->bytes;
        pc->keep = cfg_component(rt, (int)c)->keep;
        for (size_t i = 0; i < s->count; i++) {
            const struct allocation *a = s->members[i];
            if (allocation_mapped(a))
                pc->resident_bytes += a->mapped;
            if (a->state == ALLOC_RESTORING)
                pc->in_flight = true;
            if (a->protect_epoch == rt->epoch)
                pc->in_use = true;
        }
        owned_resident += pc->resident_bytes;
    }
    uint64_t used = budget_used(&rt->budget);
    *v = (struct policy_view){
        .components = cs->view,
        .component_count = cs->count,
        .sequence = rt->cfg.sequence,
        .sequence_length = rt->cfg.sequence_length,
        .active = cs->active,
        .active_pos = cs->active_pos,
        .budget = rt->budget.limit,
        .other_resident_bytes = used > owned_resident ? used - owned_resident : 0,
        .prefetch = rt->cfg.prefetch,
        .wraps = cs->wrapped,
        .policy = rt->cfg.policy,
    };
}

/* x becomes the active component: the policy's plan for the switch, in *plan. */
static bool switch_to(struct runtime *rt, int x, struct switch_plan *plan) {
    struct components *cs = rt->components;
    if (cs->active >= 0)
        order_end_turn(&cs->c[cs->active].order);
    cs->c[x].turns++;
    cs->active = x;
    /* the turn crosses the sequence's end as policy_on_switch's window would */
    size_t L = rt->cfg.sequence_length, was = cs->active_pos;
    size_t d = policy_distance(rt->cfg.sequence, L, was, (size_t)x);
    if (d != POLICY_NEVER && was != POLICY_NO_POSITION && was % L + d >= L)
        cs->wrapped = true;
    cs->active_pos = policy_next_position(rt->cfg.sequence, L, was, (size_t)x);
    struct policy_view v;
    build_view(rt, &v);
    struct policy_plan p = {cs->evict, 0, cs->prefetch, 0, cs->protect};
    if (policy_on_switch(&v, &p) != 0)
        return false;
    memcpy(cs->window, p.protect, cs->count * sizeof *cs->window);
    log_debug("active component: %s (evict %zu, prefetch %zu)", cfg_component(rt, x)->name,
              p.evict_count, p.prefetch_count);
    *plan = (struct switch_plan){p.evict, p.evict_count, p.prefetch, p.prefetch_count};
    return true;
}

int components_of_kernel(struct runtime *rt, struct func_layout *layout) {
    if (!rt->components || !layout)
        return -1;
    if (layout->component == -2)
        layout->component = layout->name ? config_component_for_kernel(&rt->cfg, layout->name) : -1;
    return valid(rt, layout->component) ? layout->component : -1;
}

int components_indirect_of_kernel(struct runtime *rt, struct func_layout *layout) {
    if (!rt->components || !layout)
        return -1;
    if (layout->indirect == -2)
        layout->indirect =
            layout->name ? config_component_indirect_for_kernel(&rt->cfg, layout->name) : -1;
    return valid(rt, layout->indirect) ? layout->indirect : -1;
}

int components_active(const struct runtime *rt) {
    return rt->components ? rt->components->active : -1;
}

struct allocation *const *components_members(const struct runtime *rt, size_t c, size_t *count) {
    const struct component_state *s = &rt->components->c[c];
    *count = s->count;
    return s->members;
}

/* --- launches --------------------------------------------------------------------------- */

bool components_on_launch(struct runtime *rt, struct func_layout *layout, struct allocation **refs,
                          size_t n, struct switch_plan *plan) {
    struct components *cs = rt->components;
    if (!cs)
        return false;
    int x = components_of_kernel(rt, layout);
    if (x >= 0) {
        for (size_t i = 0; i < n; i++)
            if (refs[i]->component < 0)
                set_owner(rt, refs[i], x, false);
    } else {
        /* The component owning most of the bytes this launch references. */
        uint64_t best = 0;
        for (size_t i = 0; i < n; i++) {
            int c = refs[i]->component;
            if (c < 0)
                continue;
            uint64_t bytes = 0;
            for (size_t k = 0; k < n; k++)
                if (refs[k]->component == c)
                    bytes += refs[k]->mapped;
            if (bytes > best || (bytes == best && c < x)) {
                best = bytes;
                x = c;
            }
        }
    }
    bool switched = x >= 0 && x != cs->active && switch_to(rt, x, plan);
    /* Unowned allocations used for the first time join the active component, unless it
     * is kept: keep = yes promises that what its allocs name stays, not everything its
     * launches touch (a kept component that absorbed every activation outgrew the budget:
     * tests/fuzz/programs/corpus/keep-absorbs-unowned-oom). */
    for (size_t i = 0; i < n; i++) {
        struct allocation *a = refs[i];
        if (!a->used && a->component < 0 && cs->active >= 0 && !cfg_component(rt, cs->active)->keep)
            set_owner(rt, a, cs->active, false);
        a->used = true;
    }
    stream_observe(rt, refs, n);
    return switched;
}

/* --- pressure ---------------------------------------------------------------------------- */

const size_t *components_victims(struct runtime *rt, uint64_t bytes, bool window_too,
                                 size_t *count) {
    struct components *cs = rt->components;
    *count = 0;
    if (!cs)
        return NULL;
    struct policy_view v;
    build_view(rt, &v);
    *count = policy_choose_victims(&v, window_too ? NULL : cs->window, bytes, cs->victims,
                                   cs->count, NULL);
    return cs->victims;
}

/* How far ahead a's next use is, over the whole sequence: its component's distance in the
 * cyclic sequence first (the active component's turn is 0: this function leaves it out),
 * then a's place in its component's learnt order, or, before that order knows a, after
 * every known place in allocation order (weights are mostly created in the order they
 * are used). Larger is farther. */
static void next_use_of(const struct runtime *rt, const struct component_state *s,
                        const struct allocation *a, size_t c, size_t *turns, uint64_t *place) {
    *turns =
        policy_distance(rt->cfg.sequence, rt->cfg.sequence_length, rt->components->active_pos, c);
    size_t p = order_position(&s->order, a->ordinal);
    *place = p != ORDER_NONE ? p : ((uint64_t)1 << 62) + a->ordinal;
}

struct allocation *components_far_member(struct runtime *rt) {
    struct components *cs = rt->components;
    if (!cs)
        return NULL;
    struct allocation *best = NULL;
    size_t best_turns = 0;
    uint64_t best_place = 0;
    for (size_t c = 0; c < cs->count; c++) {
        if ((int)c == cs->active || cs->window[c] || cfg_component(rt, (int)c)->keep)
            continue;
        const struct component_state *s = &cs->c[c];
        for (size_t i = 0; i < s->count; i++) {
            struct allocation *a = s->members[i];
            if (!allocation_evictable_state(a) || a->protect_epoch == rt->epoch || a->keep)
                continue;
            size_t turns;
            uint64_t place;
            next_use_of(rt, s, a, c, &turns, &place);
            if (!best || turns > best_turns || (turns == best_turns && place > best_place)) {
                best = a;
                best_turns = turns;
                best_place = place;
            }
        }
    }
    return best;
}

void components_log_holders(struct runtime *rt) {
    struct components *cs = rt->components;
    if (!cs)
        return;
    struct policy_view v;
    build_view(rt, &v);
    for (size_t c = 0; c < cs->count; c++)
        log_error("  component %s: %.1f MiB resident of %.1f MiB%s%s%s",
                  cfg_component(rt, (int)c)->name, mib(cs->view[c].resident_bytes),
                  mib(cs->view[c].bytes), cs->view[c].keep ? ", keep" : "",
                  (int)c == cs->active ? ", active" : "", cs->view[c].in_use ? ", in use" : "");
}

size_t components_report(struct runtime *rt, struct stats_component **out, uint64_t *unowned) {
    struct components *cs = rt->components;
    *out = NULL;
    *unowned = rt->stats.tracked_bytes;
    if (!cs)
        return 0;
    struct stats_component *r = calloc(cs->count, sizeof *r);
    if (!r)
        return 0;
    for (size_t c = 0; c < cs->count; c++) {
        r[c].name = cfg_component(rt, (int)c)->name;
        r[c].bytes = cs->c[c].peak_bytes;
        r[c].moves = cs->c[c].moves;
        components_stream_report(rt, c, &r[c].streamed_bytes, &r[c].resident_across_turns_bytes);
        *unowned -= cs->c[c].bytes < *unowned ? cs->c[c].bytes : *unowned;
    }
    *out = r;
    return cs->count;
}

size_t components_describe(const struct runtime *rt, char *buf, size_t len) {
    size_t n = rt->components ? rt->components->count : 0;
    int used = 0;
    buf[0] = '\0';
    for (size_t i = 0; n && i < rt->cfg.sequence_length && (size_t)used < len; i++) {
        int k = snprintf(buf + used, len - (size_t)used, "%s%s", i ? " -> " : "",
                         rt->cfg.components[rt->cfg.sequence[i]].name);
        if (k < 0)
            break;
        used += k;
    }
    return n;
}
