/*
 * trace_json.c — the timeline recorder's ring as Chrome trace-event JSON (the document
 * trace_finish writes; Perfetto and chrome://tracing open it).
 */
#include "runtime/report/trace_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- the document --------------------------------------------------------------------- */

struct buf {
    char *data;
    size_t len, cap;
    bool failed;
};

__attribute__((format(printf, 2, 3))) static void put(struct buf *b, const char *fmt, ...) {
    while (!b->failed) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = true;
        } else if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        } else {
            size_t cap = (b->cap + (size_t)n + 1) * 2;
            char *data = realloc(b->data, cap);
            if (!data)
                b->failed = true;
            else
                b->data = data, b->cap = cap;
        }
    }
}

/* Names come from the config grammar (identifiers), but escape anyway. */
static void put_string(struct buf *b, const char *s) {
    put(b, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            put(b, "\\%c", c);
        else if (c < 0x20)
            put(b, "\\u%04x", c);
        else
            put(b, "%c", c);
    }
    put(b, "\"");
}

static const char *component_name(int c) {
    return trace_valid_component(c) ? tr.names[c] : "(none)";
}

/* Microseconds with nanosecond precision: what the format's "ts" and "dur" are in. */
static void put_us(struct buf *b, const char *key, uint64_t ns) {
    put(b, "\"%s\": %" PRIu64 ".%03u", key, ns / 1000, (unsigned)(ns % 1000));
}

static void put_span_head(struct buf *b, const char *cat, int tid, const struct rec *r) {
    put(b, ",\n{\"cat\": \"%s\", \"ph\": \"X\", \"pid\": 1, \"tid\": %d, ", cat, tid);
    put_us(b, "ts", r->ts);
    put(b, ", ");
    put_us(b, "dur", r->dur);
    put(b, ", ");
}

static const char *const state_names[] = {"resident", "evicting", "evicted", "restoring"};
/* Colours of chrome://tracing's palette (Perfetto picks its own). */
static const char *const state_colours[] = {"good", "yellow", "grey", "olive"};

static void put_state(struct buf *b, const struct rec *r) {
    put_span_head(b, "state", TID_COMPONENT + r->component, r);
    put(b,
        "\"name\": \"%s\", \"cname\": \"%s\", \"args\": {\"component\": ", state_names[r->detail],
        state_colours[r->detail]);
    put_string(b, component_name(r->component));
    put(b, ", \"resident_bytes\": %" PRIu64 "}}", r->bytes);
}

static void put_move(struct buf *b, const struct rec *r) {
    bool restore = r->kind == REC_RESTORE;
    put_span_head(b, restore ? "restore" : "evict", TID_STREAM + r->other, r);
    put(b, "\"name\": \"%s %s#%" PRIu64 "\", ", restore ? "restore" : "evict",
        trace_valid_component(r->component) ? tr.names[r->component] : "", r->ordinal);
    put(b, "\"args\": {\"alloc\": %" PRIu64 ", \"component\": ", r->ordinal);
    put_string(b, component_name(r->component));
    put(b, ", \"bytes\": %" PRIu64 ", ", r->bytes);
    if (r->dur)
        put(b, "\"GBps\": %.3f, ", (double)r->bytes / (double)r->dur);
    put_us(b, "queued_us", r->queued);
    static const char *const outcome[] = {"ok", "failed", "unfinished"};
    put(b, ", \"outcome\": \"%s\"}}", outcome[r->detail]);
}

static void put_stall(struct buf *b, const struct rec *r) {
    put_span_head(b, "stall", TID_STALLS, r);
    put(b, "\"name\": ");
    if (trace_valid_component(r->other)) {
        char name[CONFIG_NAME_MAX + 16];
        snprintf(name, sizeof name, "stall on %s", tr.names[r->other]);
        put_string(b, name);
    } else {
        put(b, "\"stall\"");
    }
    put(b, ", \"cname\": \"bad\", \"args\": {\"component\": ");
    put_string(b, component_name(r->component));
    put(b, ", \"on\": ");
    put_string(b, component_name(r->other));
    put(b, ", \"alloc\": %" PRIu64 "}}", r->ordinal);
}

static void put_turn(struct buf *b, const struct rec *r) {
    put_span_head(b, "turn", TID_LAUNCHES, r);
    put(b, "\"name\": ");
    put_string(b, component_name(r->component));
    put(b, ", \"args\": {\"launches\": %" PRIu64 "}}", r->bytes);
}

/* A full snapshot: every component's resident bytes at this instant. */
static void put_counter(struct buf *b, const struct rec *r, const uint64_t *resident) {
    put(b, ",\n{\"name\": \"resident bytes\", \"ph\": \"C\", \"pid\": 1, ");
    put_us(b, "ts", r->ts);
    put(b, ", \"args\": {");
    for (size_t i = 0; i < tr.ncomp; i++) {
        put(b, "%s", i ? ", " : "");
        put_string(b, tr.names[i]);
        put(b, ": %" PRIu64, resident[i]);
    }
    put(b, "}}");
}

static void put_track(struct buf *b, int tid, const char *name) {
    put(b,
        ",\n{\"name\": \"thread_name\", \"ph\": \"M\", \"pid\": 1, \"tid\": %d, "
        "\"args\": {\"name\": ",
        tid);
    put_string(b, name);
    put(b,
        "}},\n{\"name\": \"thread_sort_index\", \"ph\": \"M\", \"pid\": 1, \"tid\": %d, "
        "\"args\": {\"sort_index\": %d}}",
        tid, tid);
}

static void put_tracks(struct buf *b) {
    char process[256];
    snprintf(process, sizeof process, "liboffload: %s", program_invocation_short_name);
    put(b, "{\"name\": \"process_name\", \"ph\": \"M\", \"pid\": 1, \"args\": {\"name\": ");
    put_string(b, process);
    put(b, "}}");
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

char *trace_build_json(uint64_t budget_bytes) {
    struct buf b = {malloc(1 << 16), 0, 1 << 16, false};
    uint64_t *resident = calloc(tr.ncomp ? tr.ncomp : 1, sizeof *resident);
    if (!b.data || !resident) {
        free(b.data);
        free(resident);
        return NULL;
    }
    memcpy(resident, tr.baseline, tr.ncomp * sizeof *resident);
    put(&b,
        "{\"displayTimeUnit\": \"ms\",\n\"otherData\": {\"budget_bytes\": %" PRIu64
        ", \"capacity\": %zu, \"dropped_spans\": %" PRIu64
        ", \"clock\": \"host CLOCK_MONOTONIC\", ",
        budget_bytes, tr.capacity, tr.dropped);
    put_us(&b, "elapsed_us", trace_now()); /* the whole run, whatever was recorded */
    put(&b, "},\n\"traceEvents\": [\n");
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
    put(&b, "\n]}\n");
    free(resident);
    if (b.failed) {
        free(b.data);
        return NULL;
    }
    return b.data;
}
