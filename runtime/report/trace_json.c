/*
 * trace_json.c — the timeline recorder's ring as Chrome trace-event JSON (the document
 * trace_finish writes; Perfetto and chrome://tracing open it).
 */
#include "runtime/report/trace_internal.h"

#include "base/strbuf.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- the document --------------------------------------------------------------------- */

static const char *component_name(int c) {
    return trace_valid_component(c) ? tr.names[c] : "(none)";
}

/* Microseconds with nanosecond precision: what the format's "ts" and "dur" are in. */
static void put_us(struct strbuf *b, const char *key, uint64_t ns) {
    strbuf_put(b, "\"%s\": %" PRIu64 ".%03u", key, ns / 1000, (unsigned)(ns % 1000));
}

static void put_span_head(struct strbuf *b, const char *cat, int tid, const struct rec *r) {
    strbuf_put(b, ",\n{\"cat\": \"%s\", \"ph\": \"X\", \"pid\": 1, \"tid\": %d, ", cat, tid);
    put_us(b, "ts", r->ts);
    strbuf_put(b, ", ");
    put_us(b, "dur", r->dur);
    strbuf_put(b, ", ");
}

static const char *const state_names[] = {"resident", "evicting", "evicted", "restoring"};
/* Colours of chrome://tracing's palette (Perfetto picks its own). */
static const char *const state_colours[] = {"good", "yellow", "grey", "olive"};

static void put_state(struct strbuf *b, const struct rec *r) {
    put_span_head(b, "state", TID_COMPONENT + r->component, r);
    strbuf_put(b, "\"name\": \"%s\", \"cname\": \"%s\", \"args\": {\"component\": ",
               state_names[r->detail], state_colours[r->detail]);
    strbuf_put_json_string(b, component_name(r->component));
    strbuf_put(b, ", \"resident_bytes\": %" PRIu64 "}}", r->bytes);
}

static void put_move(struct strbuf *b, const struct rec *r) {
    bool restore = r->kind == REC_RESTORE;
    put_span_head(b, restore ? "restore" : "evict", TID_STREAM + r->other, r);
    strbuf_put(b, "\"name\": \"%s %s#%" PRIu64 "\", ", restore ? "restore" : "evict",
               trace_valid_component(r->component) ? tr.names[r->component] : "", r->ordinal);
    strbuf_put(b, "\"args\": {\"alloc\": %" PRIu64 ", \"component\": ", r->ordinal);
    strbuf_put_json_string(b, component_name(r->component));
    strbuf_put(b, ", \"bytes\": %" PRIu64 ", ", r->bytes);
    if (r->dur)
        strbuf_put(b, "\"GBps\": %.3f, ", (double)r->bytes / (double)r->dur);
    put_us(b, "queued_us", r->queued);
    static const char *const outcome[] = {"ok", "failed", "unfinished"};
    strbuf_put(b, ", \"outcome\": \"%s\"}}", outcome[r->detail]);
}

static void put_stall(struct strbuf *b, const struct rec *r) {
    put_span_head(b, "stall", TID_STALLS, r);
    strbuf_put(b, "\"name\": ");
    if (trace_valid_component(r->other)) {
        char name[CONFIG_NAME_MAX + 16];
        snprintf(name, sizeof name, "stall on %s", tr.names[r->other]);
        strbuf_put_json_string(b, name);
    } else {
        strbuf_put(b, "\"stall\"");
    }
    strbuf_put(b, ", \"cname\": \"bad\", \"args\": {\"component\": ");
    strbuf_put_json_string(b, component_name(r->component));
    strbuf_put(b, ", \"on\": ");
    strbuf_put_json_string(b, component_name(r->other));
    strbuf_put(b, ", \"alloc\": %" PRIu64 "}}", r->ordinal);
}

static void put_turn(struct strbuf *b, const struct rec *r) {
    put_span_head(b, "turn", TID_LAUNCHES, r);
    strbuf_put(b, "\"name\": ");
    strbuf_put_json_string(b, component_name(r->component));
    strbuf_put(b, ", \"args\": {\"launches\": %" PRIu64 "}}", r->bytes);
}

/* A full snapshot: every component's resident bytes at this instant. */
static void put_counter(struct strbuf *b, const struct rec *r, const uint64_t *resident) {
    strbuf_put(b, ",\n{\"name\": \"resident bytes\", \"ph\": \"C\", \"pid\": 1, ");
    put_us(b, "ts", r->ts);
    strbuf_put(b, ", \"args\": {");
    for (size_t i = 0; i < tr.ncomp; i++) {
        strbuf_put(b, "%s", i ? ", " : "");
        strbuf_put_json_string(b, tr.names[i]);
        strbuf_put(b, ": %" PRIu64, resident[i]);
    }
    strbuf_put(b, "}}");
}

static void put_track(struct strbuf *b, int tid, const char *name) {
    strbuf_put(b,
               ",\n{\"name\": \"thread_name\", \"ph\": \"M\", \"pid\": 1, \"tid\": %d, "
               "\"args\": {\"name\": ",
               tid);
    strbuf_put_json_string(b, name);
    strbuf_put(b,
               "}},\n{\"name\": \"thread_sort_index\", \"ph\": \"M\", \"pid\": 1, \"tid\": %d, "
               "\"args\": {\"sort_index\": %d}}",
               tid, tid);
}

static void put_tracks(struct strbuf *b) {
    char process[256];
    snprintf(process, sizeof process, "liboffload: %s", program_invocation_short_name);
    strbuf_put(b, "{\"name\": \"process_name\", \"ph\": \"M\", \"pid\": 1, \"args\": {\"name\": ");
    strbuf_put_json_string(b, process);
    strbuf_put(b, "}}");
    for (size_t i = 0; i < tr.ncomp; i++) {
        char name[CONFIG_NAME_MAX + 16];
        snprintf(name, sizeof name, "component %s", tr.names[i]);
        put_track(b, TID_COMPONENT + (int)i, name);
    }
    for (unsigned i = 0; i < tr.nstreams; i++) {
        const struct stream_track *s = &tr.streams[i];
        char name[64];
        snprintf(name, sizeof name, "copy stream %u (%s)", i + 1,
                 s->evictions && s->restores ? "to host and to device"
                 : s->restores               ? "to device"
                                             : "to host");
        put_track(b, TID_STREAM + (int)i, name);
    }
    put_track(b, TID_STALLS, "stalls");
    put_track(b, TID_LAUNCHES, "launches (per component turn)");
}

/* "uses": every call's tracked allocations in order, one array per use (the fields named
 * once), for tools/optimum. Not a trace event: Perfetto and chrome://tracing ignore
 * top-level keys they do not know. */
static void put_uses(struct strbuf *b) {
    strbuf_put(b,
               "\"uses\": {\"fields\": [\"call\", \"ordinal\", \"bytes\", \"mapped\", "
               "\"component\"], \"dropped\": %" PRIu64 ", \"records\": [",
               tr.uses_dropped);
    for (size_t i = 0; i < tr.nuses; i++) {
        const struct use_rec *u = &tr.uses[i];
        strbuf_put(b, "%s\n[%" PRIu64 ", %" PRIu64 ", %" PRIu64 ", %" PRIu64 ", %d]", i ? "," : "",
                   u->call, u->ordinal, u->bytes, u->mapped, (int)u->component);
    }
    strbuf_put(b, "\n]}\n");
}

char *trace_build_json(uint64_t budget_bytes) {
    struct strbuf b;
    strbuf_init(&b, 1 << 16);
    uint64_t *resident = calloc(tr.ncomp ? tr.ncomp : 1, sizeof *resident);
    if (!b.data || !resident) {
        free(b.data);
        free(resident);
        return NULL;
    }
    memcpy(resident, tr.baseline, tr.ncomp * sizeof *resident);
    strbuf_put(&b,
               "{\"displayTimeUnit\": \"ms\",\n\"otherData\": {\"budget_bytes\": %" PRIu64
               ", \"capacity\": %zu, \"dropped_spans\": %" PRIu64
               ", \"clock\": \"host CLOCK_MONOTONIC\", ",
               budget_bytes, tr.capacity, tr.dropped);
    put_us(&b, "elapsed_us", trace_now()); /* the whole run, whatever was recorded */
    strbuf_put(&b, "},\n\"traceEvents\": [\n");
    put_tracks(&b);
    for (size_t i = 0; i < tr.len; i++) {
        const struct rec *r = &tr.ring[(tr.first + i) % tr.capacity];
        switch (r->kind) {
        case REC_STATE:
            put_state(&b, r);
            break;
        case REC_EVICT:
        case REC_RESTORE:
            put_move(&b, r);
            break;
        case REC_STALL:
            put_stall(&b, r);
            break;
        case REC_TURN:
            put_turn(&b, r);
            break;
        case REC_COUNTER:
            resident[r->component] = r->bytes;
            put_counter(&b, r, resident);
            break;
        }
    }
    strbuf_put(&b, "\n],\n");
    put_uses(&b);
    strbuf_put(&b, "}\n");
    free(resident);
    if (b.failed) {
        free(b.data);
        return NULL;
    }
    return b.data;
}
