/*
 * trace.c — the timeline recorder (trace.h): open spans live in small tables, completed
 * ones in a ring of records, and trace_finish turns the ring into Chrome trace-event JSON.
 */
#include "runtime/report/trace.h"

#include "base/atomic_file.h"
#include "base/lock.h"
#include "base/log.h"
#include "runtime/report/status.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TRACE_STREAMS_MAX 8          /* copy-stream tracks; more streams share the last one */
#define TRACE_STALL_DEPTH 8          /* nested stalls kept; deeper ones are counted, not drawn */
#define TRACE_ORDINAL_MAX (1u << 22) /* allocations beyond this ordinal are not traced */

/* Track ids ("tid") in the file, which is also their order on screen. */
#define TID_COMPONENT 1 /* + component index */
#define TID_STREAM 1000 /* + stream track index */
#define TID_STALLS 2000
#define TID_LAUNCHES 2001

enum rec_kind { REC_STATE, REC_EVICT, REC_RESTORE, REC_STALL, REC_TURN, REC_COUNTER };
enum move_end { MOVE_OK, MOVE_FAILED, MOVE_UNFINISHED };

/* One completed span or counter sample: 56 bytes. */
struct rec {
    uint64_t ts, dur; /* ns since start */
    uint64_t bytes;   /* moved (copies), on the device (state, counter), launches (turn) */
    uint64_t ordinal; /* copies and stalls */
    uint64_t queued;  /* copies: when queued */
    int32_t component;
    int32_t other; /* stall: on whom; copy: stream track */
    uint8_t kind;
    uint8_t detail; /* state: enum trace_state; copy: enum move_end */
};

struct open_state {
    bool open;
    enum trace_state state;
    uint64_t since, bytes;
};

struct open_move {
    bool open, restore;
    int component;
    unsigned track;
    uint64_t queued, bytes;
};

struct stream_track {
    const void *stream;
    uint64_t last_end;
    uint64_t evictions, restores;
};

struct open_stall {
    uint64_t since, ordinal;
    int component, on;
};

_Atomic bool trace_active;

/* Apart from tr, which free_all clears whole. */
static struct offload_lock trace_lock = OFFLOAD_LOCK_INITIALIZER;

static struct {
    bool recording;
    char path[CONFIG_PATH_MAX];
    uint64_t (*clock)(void);
    uint64_t t0;

    struct rec *ring;
    size_t capacity, first, len;
    uint64_t dropped;

    size_t ncomp;
    char **names;
    struct open_state *comp;
    uint64_t *baseline; /* resident bytes per component as of the oldest record kept */

    struct open_move *moves; /* by ordinal */
    size_t nmoves;
    struct stream_track streams[TRACE_STREAMS_MAX];
    unsigned nstreams;

    struct open_stall stalls[TRACE_STALL_DEPTH];
    size_t nstalls, stall_overflow;

    struct {
        bool open;
        int component;
        uint64_t first, last, count;
    } turn;
    unsigned launches_since_tick;
} tr;

static uint64_t monotonic_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static uint64_t now(void) {
    uint64_t t = tr.clock();
    return t > tr.t0 ? t - tr.t0 : 0;
}

static bool valid_component(int c) {
    return c >= 0 && (size_t)c < tr.ncomp;
}

/* --- the ring ------------------------------------------------------------------------- */

/* A dropped counter sample still tells what its component held from then on. */
static void fold_dropped(const struct rec *r) {
    if (r->kind == REC_COUNTER && valid_component(r->component))
        tr.baseline[r->component] = r->bytes;
    tr.dropped++;
}

static void push(const struct rec *r) {
    if (!tr.recording || tr.capacity == 0)
        return;
    if (tr.len < tr.capacity) {
        tr.ring[(tr.first + tr.len++) % tr.capacity] = *r;
        return;
    }
    fold_dropped(&tr.ring[tr.first]);
    tr.ring[tr.first] = *r;
    tr.first = (tr.first + 1) % tr.capacity;
}

/* --- start and stop ------------------------------------------------------------------- */

static void free_all(void) {
    for (size_t i = 0; tr.names && i < tr.ncomp; i++)
        free(tr.names[i]);
    free(tr.names);
    free(tr.comp);
    free(tr.baseline);
    free(tr.ring);
    free(tr.moves);
    memset(&tr, 0, sizeof tr);
}

static bool copy_names(const struct config *cfg) {
    tr.ncomp = cfg->component_count;
    size_t n = tr.ncomp ? tr.ncomp : 1;
    tr.names = calloc(n, sizeof *tr.names);
    tr.comp = calloc(n, sizeof *tr.comp);
    tr.baseline = calloc(n, sizeof *tr.baseline);
    if (!tr.names || !tr.comp || !tr.baseline)
        return false;
    for (size_t i = 0; i < tr.ncomp; i++)
        if (!(tr.names[i] = strdup(cfg->components[i].name)))
            return false;
    return true;
}

void trace_start_with(const struct config *cfg, bool record, size_t capacity, int status_fd,
                      uint64_t status_interval_ns, uint64_t (*clock_ns)(void)) {
    trace_stop();
    offload_lock_acquire(&trace_lock);
    tr.clock = clock_ns ? clock_ns : monotonic_ns;
    tr.t0 = tr.clock();
    bool ok = copy_names(cfg);
    if (ok && record) {
        tr.capacity = capacity;
        tr.ring = calloc(capacity ? capacity : 1, sizeof *tr.ring);
        ok = tr.ring != NULL;
        snprintf(tr.path, sizeof tr.path, "%s", cfg->trace_path);
        tr.recording = ok;
    }
    if (!ok)
        log_warn("no timeline: out of memory");
    if (ok && status_fd >= 0)
        status_start((const char *const *)tr.names, tr.ncomp, status_fd, status_interval_ns, 0);
    if (!tr.recording && !status_on())
        free_all();
    atomic_store(&trace_active, tr.recording || status_on());
    offload_lock_release(&trace_lock);
}

void trace_start(const struct config *cfg) {
    bool record = cfg->trace_path[0] != '\0';
    trace_start_with(cfg, record, TRACE_DEFAULT_CAPACITY, STDERR_FILENO, TRACE_STATUS_INTERVAL_NS,
                     NULL);
}

void trace_stop(void) {
    offload_lock_acquire(&trace_lock);
    atomic_store(&trace_active, false);
    status_stop();
    free_all();
    offload_lock_release(&trace_lock);
}

/* Every event: the lock, and whether anything listens. */
static bool enter(void) {
    if (!atomic_load_explicit(&trace_active, memory_order_relaxed))
        return false;
    offload_lock_acquire(&trace_lock);
    if (tr.recording || status_on())
        return true;
    offload_lock_release(&trace_lock);
    return false;
}

static void leave(uint64_t t) {
    status_tick(t);
    offload_lock_release(&trace_lock);
}

/* --- component states ----------------------------------------------------------------- */

static void close_state(int c, uint64_t t) {
    struct open_state *s = &tr.comp[c];
    if (!s->open)
        return;
    push(&(struct rec){.ts = s->since,
                       .dur = t - s->since,
                       .bytes = s->bytes,
                       .component = c,
                       .kind = REC_STATE,
                       .detail = (uint8_t)s->state});
    s->open = false;
}

void trace_component_state(int component, enum trace_state state, uint64_t resident_bytes) {
    if (!enter())
        return;
    uint64_t t = now();
    if (valid_component(component)) {
        struct open_state *s = &tr.comp[component];
        if (!s->open || s->state != state) {
            close_state(component, t);
            *s = (struct open_state){true, state, t, resident_bytes};
        }
        push(&(struct rec){
            .ts = t, .bytes = resident_bytes, .component = component, .kind = REC_COUNTER});
        status_resident(component, resident_bytes);
    }
    leave(t);
}

/* --- copies --------------------------------------------------------------------------- */

static unsigned stream_track(const void *stream) {
    for (unsigned i = 0; i < tr.nstreams; i++)
        if (tr.streams[i].stream == stream)
            return i;
    if (tr.nstreams < TRACE_STREAMS_MAX) {
        tr.streams[tr.nstreams].stream = stream;
        return tr.nstreams++;
    }
    return TRACE_STREAMS_MAX - 1;
}

static struct open_move *move_slot(uint64_t ordinal) {
    if (ordinal >= TRACE_ORDINAL_MAX)
        return NULL;
    if (ordinal >= tr.nmoves) {
        size_t n = tr.nmoves ? tr.nmoves : 64;
        while (n <= ordinal)
            n *= 2;
        struct open_move *m = realloc(tr.moves, n * sizeof *m);
        if (!m)
            return NULL;
        memset(m + tr.nmoves, 0, (n - tr.nmoves) * sizeof *m);
        tr.moves = m;
        tr.nmoves = n;
    }
    return &tr.moves[ordinal];
}

/* Closes the copy of `ordinal` at t: its span starts when it was queued or when the
 * stream's previous copy ended, whichever is later. */
static void close_move(uint64_t ordinal, uint64_t t, enum move_end how) {
    struct open_move *m = ordinal < tr.nmoves ? &tr.moves[ordinal] : NULL;
    if (!m || !m->open)
        return;
    struct stream_track *s = &tr.streams[m->track];
    uint64_t start = m->queued > s->last_end ? m->queued : s->last_end;
    uint64_t end = t > start ? t : start;
    s->last_end = end;
    if (m->restore)
        s->restores++;
    else
        s->evictions++;
    push(&(struct rec){.ts = start,
                       .dur = end - start,
                       .bytes = m->bytes,
                       .ordinal = ordinal,
                       .queued = m->queued,
                       .component = m->component,
                       .other = (int32_t)m->track,
                       .kind = m->restore ? REC_RESTORE : REC_EVICT,
                       .detail = (uint8_t)how});
    if (how == MOVE_OK)
        status_moved(!m->restore, m->bytes);
    m->open = false;
}

static void move_begin(bool restore, uint64_t ordinal, int component, uint64_t bytes,
                       const void *stream) {
    if (!enter())
        return;
    uint64_t t = now();
    close_move(ordinal, t, MOVE_UNFINISHED); /* a begin without its end: superseded */
    struct open_move *m = move_slot(ordinal);
    if (m)
        *m = (struct open_move){true, restore, component, stream_track(stream), t, bytes};
    leave(t);
}

static void move_end(bool restore, uint64_t ordinal, bool ok) {
    if (!enter())
        return;
    uint64_t t = now();
    if (ordinal < tr.nmoves && tr.moves[ordinal].open && tr.moves[ordinal].restore == restore)
        close_move(ordinal, t, ok ? MOVE_OK : MOVE_FAILED);
    leave(t);
}

void trace_evict_begin(uint64_t ordinal, int component, uint64_t bytes, const void *stream) {
    move_begin(false, ordinal, component, bytes, stream);
}

void trace_evict_end(uint64_t ordinal, bool ok) {
    move_end(false, ordinal, ok);
}

void trace_restore_begin(uint64_t ordinal, int component, uint64_t bytes, const void *stream) {
    move_begin(true, ordinal, component, bytes, stream);
}

void trace_restore_end(uint64_t ordinal, bool ok) {
    move_end(true, ordinal, ok);
}

/* --- stalls and launches -------------------------------------------------------------- */

void trace_stall_begin(int component, int on_component, uint64_t on_ordinal) {
    if (!enter())
        return;
    uint64_t t = now();
    if (tr.nstalls < TRACE_STALL_DEPTH)
        tr.stalls[tr.nstalls++] = (struct open_stall){t, on_ordinal, component, on_component};
    else
        tr.stall_overflow++;
    leave(t);
}

static void close_stall(uint64_t t) {
    struct open_stall *s = &tr.stalls[--tr.nstalls];
    push(&(struct rec){.ts = s->since,
                       .dur = t - s->since,
                       .ordinal = s->ordinal,
                       .component = s->component,
                       .other = s->on,
                       .kind = REC_STALL});
}

void trace_stall_end(void) {
    if (!enter())
        return;
    uint64_t t = now();
    if (tr.stall_overflow)
        tr.stall_overflow--;
    else if (tr.nstalls)
        close_stall(t);
    leave(t);
}

static void close_turn(void) {
    if (!tr.turn.open)
        return;
    push(&(struct rec){.ts = tr.turn.first,
                       .dur = tr.turn.last - tr.turn.first,
                       .bytes = tr.turn.count,
                       .component = tr.turn.component,
                       .kind = REC_TURN});
    tr.turn.open = false;
}

void trace_launch_slow(int component) {
    if (!enter())
        return;
    uint64_t t = now();
    if (!tr.turn.open || tr.turn.component != component) {
        close_turn();
        tr.turn.open = true;
        tr.turn.component = component;
        tr.turn.first = t;
        tr.turn.count = 0;
    }
    tr.turn.last = t;
    tr.turn.count++;
    leave(t);
}

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
    return valid_component(c) ? tr.names[c] : "(none)";
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
        valid_component(r->component) ? tr.names[r->component] : "", r->ordinal);
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
    if (valid_component(r->other)) {
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

static char *build_json(uint64_t budget_bytes) {
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
    put_us(&b, "elapsed_us", now()); /* the whole run, whatever was recorded */
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

char *trace_json(uint64_t budget_bytes) {
    offload_lock_acquire(&trace_lock);
    char *json = tr.recording ? build_json(budget_bytes) : NULL;
    offload_lock_release(&trace_lock);
    return json;
}

/* Whatever is still open ends now. */
static void close_everything(uint64_t t) {
    for (size_t c = 0; c < tr.ncomp; c++)
        close_state((int)c, t);
    for (size_t o = 0; o < tr.nmoves; o++)
        close_move(o, t, MOVE_UNFINISHED);
    while (tr.nstalls)
        close_stall(t);
    close_turn();
}

int trace_finish(uint64_t budget_bytes) {
    offload_lock_acquire(&trace_lock);
    int rc = 0;
    if (tr.recording) {
        close_everything(now());
        char *json = build_json(budget_bytes);
        if (!json) {
            log_warn("cannot write %s: out of memory", tr.path);
            rc = -1;
        } else if (atomic_file_write(tr.path, json, strlen(json)) != 0) {
            log_warn("cannot write %s: %s", tr.path, strerror(errno));
            rc = -1;
        }
        free(json);
    }
    offload_lock_release(&trace_lock);
    trace_stop();
    return rc;
}
