/*
 * trace.c — the timeline recorder (trace.h): open spans live in small tables, completed
 * ones in a ring of records, and trace_finish turns the ring into Chrome trace-event JSON.
 */
#include "runtime/report/trace_internal.h"

#include "base/atomic_file.h"
#include "base/lock.h"
#include "base/log.h"
#include "base/vec.h"
#include "runtime/report/status.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

_Atomic bool trace_active;

/* Guards tr (trace_internal.h). */
static struct offload_lock trace_lock = OFFLOAD_LOCK_INITIALIZER;

struct trace_recorder tr;

static uint64_t monotonic_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

uint64_t trace_now(void) {
    uint64_t t = tr.clock();
    return t > tr.t0 ? t - tr.t0 : 0;
}

bool trace_valid_component(int c) {
    return c >= 0 && (size_t)c < tr.ncomp;
}

/* --- the ring ------------------------------------------------------------------------- */

/* A dropped counter sample still tells what its component held from then on. */
static void fold_dropped(const struct rec *r) {
    if (r->kind == REC_COUNTER && trace_valid_component(r->component))
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
    free(tr.uses);
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
    uint64_t t = trace_now();
    if (trace_valid_component(component)) {
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
    uint64_t t = trace_now();
    close_move(ordinal, t, MOVE_UNFINISHED); /* a begin without its end: superseded */
    struct open_move *m = move_slot(ordinal);
    if (m)
        *m = (struct open_move){true, restore, component, stream_track(stream), t, bytes};
    leave(t);
}

static void move_end(bool restore, uint64_t ordinal, bool ok) {
    if (!enter())
        return;
    uint64_t t = trace_now();
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

void trace_evict_copies(uint64_t ordinal, uint64_t bytes) {
    if (!enter())
        return;
    uint64_t t = trace_now();
    if (ordinal < tr.nmoves && tr.moves[ordinal].open && !tr.moves[ordinal].restore)
        tr.moves[ordinal].bytes = bytes;
    leave(t);
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
    uint64_t t = trace_now();
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
    uint64_t t = trace_now();
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
    uint64_t t = trace_now();
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

void trace_use_slow(uint64_t ordinal, int component, uint64_t bytes, uint64_t mapped, bool first) {
    if (!atomic_load_explicit(&trace_active, memory_order_relaxed))
        return;
    offload_lock_acquire(&trace_lock);
    if (tr.recording) {
        tr.calls += first || tr.calls == 0;
        if (tr.nuses >= TRACE_USES_MAX || VEC_RESERVE(tr.uses, tr.uses_cap, tr.nuses + 1))
            tr.uses_dropped++;
        else
            tr.uses[tr.nuses++] = (struct use_rec){tr.calls, ordinal, bytes, mapped, component};
    }
    offload_lock_release(&trace_lock);
}

char *trace_json(uint64_t budget_bytes) {
    offload_lock_acquire(&trace_lock);
    char *json = tr.recording ? trace_build_json(budget_bytes) : NULL;
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
        close_everything(trace_now());
        char *json = trace_build_json(budget_bytes);
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
