/*
 * components.c — components, the active component and the sequence policy.
 *
 * Decisions come from policy.h (pure); this file keeps the members of each component,
 * builds the policy's view from them and carries the plan out through residency.h.
 */
#include "runtime/components/components.h"

#include "base/log.h"
#include "runtime/memory/residency.h"
#include "runtime/policy/policy.h"
#include "runtime/setup.h"

#include <stdio.h>
#include <stdlib.h>

struct component_state {
    struct allocation **members;
    size_t count, capacity;
    uint64_t bytes, peak_bytes; /* owned (mapped sizes of alive members) */
    struct move_stats moves;
};

struct components {
    size_t count;
    struct component_state *c;
    int active;
    size_t active_pos;
    /* the last plan's window: kept out of pressure evictions while others can go */
    bool *window;
    /* scratch for policy calls, count entries each */
    struct policy_component *view;
    size_t *evict, *prefetch, *victims;
    bool *protect;
    /* the last plan's prefetches, issued once its evictions have landed (components_poll) */
    size_t *pending;
    size_t pending_count;
};

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
    cs->pending = calloc(n, sizeof *cs->pending);
    if (!cs->c || !cs->window || !cs->view || !cs->evict || !cs->prefetch || !cs->victims ||
        !cs->protect || !cs->pending) {
        free(cs->c), free(cs->window), free(cs->view), free(cs->evict), free(cs->prefetch);
        free(cs->victims), free(cs->protect), free(cs->pending), free(cs);
        return -1;
    }
    rt->components = cs;
    return 0;
}

static bool valid(const struct runtime *rt, int c) {
    return rt->components && c >= 0 && (size_t)c < rt->components->count;
}

static void switch_to(struct runtime *rt, int x);
static void plan_switch(struct runtime *rt, int x);

/* --- membership ----------------------------------------------------------------------- */

/* `declared`: named by the component's `allocs`. Only those take its `readonly`: an
 * allocation claimed at a launch (an activation, a buffer a kernel writes) is not covered
 * by the user's promise that the component's weights are never written, and treating it
 * as read-only would skip the copy back of its later writes. */
static void set_owner(struct runtime *rt, struct allocation *a, int c, bool declared) {
    struct component_state *s = &rt->components->c[c];
    if (s->count == s->capacity) {
        size_t cap = s->capacity ? s->capacity * 2 : 16;
        struct allocation **m = realloc(s->members, cap * sizeof *m);
        if (!m)
            return; /* stays unowned: LRU still covers it */
        s->members = m;
        s->capacity = cap;
    }
    s->members[s->count++] = a;
    s->bytes += a->mapped;
    if (s->bytes > s->peak_bytes)
        s->peak_bytes = s->bytes;
    a->component = c;
    a->readonly = declared && cfg_component(rt, c)->readonly == CONFIG_READONLY_YES;
}

void components_on_alloc(struct runtime *rt, struct allocation *a) {
    a->component = -1;
    if (!rt->components)
        return;
    int c = config_component_for_ordinal(&rt->cfg, a->ordinal);
    if (!valid(rt, c))
        return;
    set_owner(rt, a, c, true);
    /* Loading a component is its turn too under policy = sequence (diffusers loads each
     * model on the host and moves it to the device on its turn): without this, loading
     * every model before the first launch would hold them all at once. */
    if (rt->cfg.policy == CONFIG_POLICY_SEQUENCE && c != rt->components->active)
        switch_to(rt, c);
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
    a->component = -1;
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
            if (a->state != EVICTED)
                pc->resident_bytes += a->mapped;
            if (a->state == RESIDENT && a->restore_pending)
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
        .policy = rt->cfg.policy,
    };
}

/* Starts evicting every member of c the current call does not need; bytes started. */
static uint64_t evict_component(struct runtime *rt, size_t c) {
    struct component_state *s = &rt->components->c[c];
    uint64_t started = 0;
    for (size_t i = 0; i < s->count; i++) {
        struct allocation *a = s->members[i];
        if (a->state == RESIDENT && a->protect_epoch != rt->epoch &&
            residency_evict(rt, a) == CUDA_SUCCESS)
            started += a->mapped;
    }
    return started;
}

static void prefetch_component(struct runtime *rt, size_t c) {
    struct component_state *s = &rt->components->c[c];
    for (size_t i = 0; i < s->count; i++) {
        struct allocation *a = s->members[i];
        if (a->state != RESIDENT && residency_restore(rt, a, true) != CUDA_SUCCESS)
            break; /* no room now: the launch that needs it restores on demand */
    }
}

static void switch_to(struct runtime *rt, int x) {
    bool pushed = setup_context_enter(rt);
    plan_switch(rt, x);
    setup_context_leave(pushed);
}

static void plan_switch(struct runtime *rt, int x) {
    struct components *cs = rt->components;
    cs->active = x;
    cs->active_pos =
        policy_next_position(rt->cfg.sequence, rt->cfg.sequence_length, cs->active_pos, (size_t)x);
    struct policy_view v;
    build_view(rt, &v);
    struct policy_plan plan = {cs->evict, 0, cs->prefetch, 0, cs->protect};
    if (policy_on_switch(&v, &plan) != 0)
        return;
    memcpy(cs->window, plan.protect, cs->count * sizeof *cs->window);
    log_debug("active component: %s (evict %zu, prefetch %zu)", cfg_component(rt, x)->name,
              plan.evict_count, plan.prefetch_count);
    for (size_t i = 0; i < plan.evict_count; i++)
        evict_component(rt, plan.evict[i]);
    memcpy(cs->pending, plan.prefetch, plan.prefetch_count * sizeof *cs->pending);
    cs->pending_count = plan.prefetch_count;
    /* Prefetched memory is mapped only once the evicted memory is released, so the device
     * never holds the outgoing and the incoming components at once. The host does not wait
     * for that here: the evictions first wait (on the GPU) for the outgoing component's
     * last kernels, and X's first launch, this call, must not wait behind them. Each later
     * call polls; the first to find the evictions landed issues the prefetch, which then
     * runs on its own stream alongside X's kernels. */
    components_poll(rt);
}

bool components_pending(const struct runtime *rt) {
    return rt->components && rt->components->pending_count > 0;
}

void components_poll(struct runtime *rt) {
    struct components *cs = rt->components;
    if (!cs || cs->pending_count == 0)
        return;
    /* Issued by the first call that finds the switch's evictions landed (or retaken). */
    residency_reap(rt);
    if (rt->evicting_count)
        return;
    size_t n = cs->pending_count;
    cs->pending_count = 0;
    for (size_t i = 0; i < n; i++)
        prefetch_component(rt, cs->pending[i]);
}

/* --- launches --------------------------------------------------------------------------- */

void components_on_launch(struct runtime *rt, struct func_layout *layout, struct allocation **refs,
                          size_t n) {
    struct components *cs = rt->components;
    if (!cs)
        return;
    if (layout && layout->component == -2)
        layout->component = layout->name ? config_component_for_kernel(&rt->cfg, layout->name) : -1;
    int x = layout && valid(rt, layout->component) ? layout->component : -1;
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
    if (x >= 0 && x != cs->active)
        switch_to(rt, x);
    /* Unowned allocations used for the first time join the active component. */
    for (size_t i = 0; i < n; i++) {
        struct allocation *a = refs[i];
        if (!a->used && a->component < 0 && cs->active >= 0)
            set_owner(rt, a, cs->active, false);
        a->used = true;
    }
}

/* --- pressure ---------------------------------------------------------------------------- */

uint64_t components_relieve(struct runtime *rt, uint64_t bytes, bool window_too) {
    struct components *cs = rt->components;
    if (!cs)
        return 0;
    struct policy_view v;
    build_view(rt, &v);
    uint64_t freed = 0;
    size_t k = policy_choose_victims(&v, window_too ? NULL : cs->window, bytes, cs->victims,
                                     cs->count, &freed);
    uint64_t started = 0;
    for (size_t i = 0; i < k; i++)
        started += evict_component(rt, cs->victims[i]);
    return started;
}

struct move_stats *components_moves(struct runtime *rt, int c) {
    return valid(rt, c) ? &rt->components->c[c].moves : NULL;
}

bool components_keep(const struct runtime *rt, int c) {
    return valid(rt, c) && cfg_component(rt, c)->keep;
}

bool components_readonly(const struct runtime *rt, int c) {
    return valid(rt, c) && cfg_component(rt, c)->readonly == CONFIG_READONLY_YES;
}

static double mib(uint64_t bytes) {
    return (double)bytes / (1024.0 * 1024.0);
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
