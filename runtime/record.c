/*
 * record.c — collecting the trace and writing the recorded config.
 */
#include "runtime/record.h"

#include "base/atomic_file.h"
#include "base/log.h"
#include "runtime/record_plan.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

void record_init(struct runtime *rt) {
    if (rt->cfg.mode != CONFIG_MODE_RECORD || rt->record)
        return;
    rt->record = calloc(1, sizeof *rt->record);
    if (!rt->record) {
        log_error("record mode: out of memory; nothing will be recorded");
        return;
    }
    record_trace_init(rt->record);
}

void record_alloc(struct runtime *rt, const struct allocation *a) {
    if (rt->record)
        record_trace_alloc(rt->record, a->ordinal, a->size);
}

void record_free(struct runtime *rt, const struct allocation *a) {
    if (rt->record)
        record_trace_free(rt->record, a->ordinal);
}

void record_launch(struct runtime *rt, const struct func_layout *layout,
                   struct allocation *const *refs, size_t n) {
    if (!rt->record)
        return;
    uint64_t ordinals[64];
    size_t k = n < 64 ? n : 64;
    for (size_t i = 0; i < k; i++)
        ordinals[i] = refs[i]->ordinal;
    record_trace_launch(rt->record, layout ? layout->name : NULL, ordinals, k);
}

void record_finish(struct runtime *rt) {
    if (!rt->record)
        return;
    const char *path = rt->cfg.record_path[0] ? rt->cfg.record_path : "offload.recorded.conf";
    struct record_plan plan;
    if (record_plan_build(rt->record, &plan) != 0) {
        log_error("record mode: out of memory building the plan");
        return;
    }
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    int bad = !f || record_plan_write(f, &plan) != 0;
    if (f)
        bad |= fclose(f) != 0;
    if (!bad && atomic_file_write(path, text, len) != 0)
        log_error("record mode: cannot write %s: %s", path, strerror(errno));
    else if (bad)
        log_error("record mode: cannot format the recorded config");
    else
        log_warn("recorded %zu components to %s", plan.component_count, path);
    free(text);
    record_plan_free(&plan);
}
