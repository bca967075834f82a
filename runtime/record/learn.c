/*
 * learn.c — the order record mode writes: per component, the order in which its
 * allocations are first used in each of its turns, learnt by replaying the trace through
 * the runtime's own learner (runtime/policy/order.h) exactly as the launch path would
 * feed it. A component's turns are its visits in the use string (each loop iteration is
 * one: a unet step), so the order is the one a turn of the sequence shows. Components
 * that are not in the string (keep ones, shared by several phases) have no turns of their
 * own: the repetition rule (order_touch_cyclic) finds them.
 */
#include "runtime/policy/order.h"
#include "runtime/record/grouping.h"

#include <stdlib.h>
#include <string.h>

/* Feeds every launch's long-lived references to their component's order. */
static int replay(struct grouping *g, const struct record_plan *plan, struct order *orders,
                  uint64_t *turn) {
    const struct record_trace *t = g->t;
    size_t visit = 0; /* the next string position to begin */
    for (size_t l = 0; l < t->launch_count; l++) {
        for (; visit < g->len && g->first[visit] <= l; visit++)
            turn[g->comp_of[g->str[visit]]]++;
        const struct record_launch *la = &t->launches[l];
        for (size_t r = 0; r < la->ref_count; r++) {
            uint64_t a = t->refs[la->first_ref + r];
            if (!g->long_lived[a])
                continue;
            size_t k = g->comp_of[a];
            int rc = plan->components[k].keep ? order_touch_cyclic(&orders[k], a)
                                              : order_touch(&orders[k], turn[k], a);
            if (rc)
                return -1;
        }
    }
    return 0;
}

/* The learnt order of component k into the plan. */
static int copy_order(struct order *o, struct record_component *c) {
    if (order_end_turn(o))
        return -1;
    c->order_count = order_length(o);
    c->order = calloc(c->order_count + 1, sizeof *c->order);
    if (!c->order)
        return -1;
    for (size_t p = 0; p < c->order_count; p++)
        c->order[p] = order_at(o, p);
    return 0;
}

int grouping_learn_orders(struct grouping *g, struct record_plan *plan) {
    size_t count = plan->component_count;
    struct order *orders = calloc(count + 1, sizeof *orders);
    uint64_t *turn = calloc(count + 1, sizeof *turn);
    int rc = orders && turn ? 0 : -1;
    for (size_t k = 0; rc == 0 && k < count; k++)
        order_init(&orders[k]);
    if (rc == 0)
        rc = replay(g, plan, orders, turn);
    for (size_t k = 0; rc == 0 && k < count; k++)
        rc = copy_order(&orders[k], &plan->components[k]);
    for (size_t k = 0; orders && k < count; k++)
        order_destroy(&orders[k]);
    free(orders), free(turn);
    return rc;
}
