/*
 * components.c — components, the active component and the sequence policy.
 * (first cut: no components; everything is unowned and evicted least recently used)
 */
#include "runtime/components.h"

#include <stdio.h>
#include <stdlib.h>

int components_init(struct runtime *rt) {
    rt->components = NULL;
    return 0;
}

void components_on_alloc(struct runtime *rt, struct allocation *a) {
    (void)rt;
    a->component = -1;
}

void components_forget(struct runtime *rt, struct allocation *a) {
    (void)rt, (void)a;
}

void components_on_launch(struct runtime *rt, struct func_layout *layout, struct allocation **refs,
                          size_t n) {
    (void)rt, (void)layout, (void)refs, (void)n;
}

uint64_t components_relieve(struct runtime *rt, uint64_t bytes) {
    (void)rt, (void)bytes;
    return 0;
}

struct move_stats *components_moves(struct runtime *rt, int c) {
    (void)rt, (void)c;
    return NULL;
}

bool components_keep(const struct runtime *rt, int c) {
    (void)rt, (void)c;
    return false;
}

bool components_readonly(const struct runtime *rt, int c) {
    (void)rt, (void)c;
    return false;
}

void components_log_holders(struct runtime *rt) {
    (void)rt;
}

size_t components_report(struct runtime *rt, struct stats_component **out, uint64_t *unowned) {
    *out = NULL;
    *unowned = rt->stats.tracked_bytes;
    return 0;
}

void components_describe(const struct runtime *rt, char *buf, size_t len) {
    (void)rt;
    snprintf(buf, len, "no components");
}
