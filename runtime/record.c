/*
 * record.c — record mode (first cut: not wired yet; the trace and plan land with
 * runtime/record_plan.c).
 */
#include "runtime/record.h"

#include "runtime/log.h"

void record_init(struct runtime *rt) {
    if (rt->cfg.mode == CONFIG_MODE_RECORD)
        log_warn("record mode is not available in this build");
}

void record_alloc(struct runtime *rt, const struct allocation *a) {
    (void)rt, (void)a;
}

void record_free(struct runtime *rt, const struct allocation *a) {
    (void)rt, (void)a;
}

void record_launch(struct runtime *rt, const struct func_layout *layout,
                   struct allocation *const *refs, size_t n) {
    (void)rt, (void)layout, (void)refs, (void)n;
}

void record_finish(struct runtime *rt) {
    (void)rt;
}
