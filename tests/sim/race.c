/*
 * race.c — a happens-before race detector over device memory (SIMCUDA_RACECHECK=0: off).
 *
 * CUDA orders work by API calls alone: stream order, events, the legacy default
 * stream's implicit waits, and host synchronisation. Whether two accesses to the same
 * device bytes are ordered is therefore known when the work is *submitted*, whatever the
 * timing, so the detector computes vector clocks at submission and checks accesses when
 * the work runs:
 *  - every stream has a slot, and so has the host; a stream's op is the epoch
 *    (slot, seq), the host's clock counts submissions and host writes;
 *  - an op's clock joins its stream's last op, the host's clock, the
 *    streams the legacy semantics make it wait for, and, for cuStreamWaitEvent, the
 *    event's clock; a record gives the event its op's clock;
 *  - the host joins a stream's clock when a thread synchronises with it (stream or
 *    context synchronisation, a synchronous call, an event synchronisation or a
 *    successful query).
 * Shadow state keeps, per range of device bytes, the last write and a few reads since.
 * Copies and memsets access their exact ranges (pitched ones from first to last byte),
 * kernels every allocation their parameter words point into, whole: a read through a
 * word the kernel's descriptor says is read-only (a `const T *`, simkernel.h), a write
 * through any other; cuMemUnmap and cuMemFree are host writes. An access races with a
 * recorded one unless both are reads or the recorded one happens before it (its epoch
 * is covered by the accessing op's clock). Since both orders of execution check against
 * each other, detection does not depend on which ran first. A race prints one
 * `simcuda: race:` line naming both operations, makes the later one fail (it does not
 * run) and breaks the context (sticky CUDA_ERROR_ILLEGAL_ADDRESS).
 *
 * One clock stands for all host threads: they order each other by means the simulator
 * cannot see (pthread_join, mutexes), and a clock per thread would report races that
 * are not. So a thread's synchronisation orders every thread's later calls: a race
 * between two host threads that never synchronise with each other is missed. Also not
 * seen: accesses through pointers stored in device memory.
 */
#include "tests/sim/strict.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int sim_race_on = 1;

/* ---- vector clocks --------------------------------------------------------------- */

struct sim_vc {
    uint32_t n;
    uint32_t c[];
};

static atomic_uint next_slot = 1; /* slot 0: nobody */

static uint32_t vc_get(const struct sim_vc *v, uint32_t slot) {
    return v && slot < v->n ? v->c[slot] : 0;
}

/* *dst grows to n entries (never past the slots that exist); 0 or -1. */
static int vc_grow(struct sim_vc **dst, uint32_t n) {
    uint32_t have = *dst ? (*dst)->n : 0;
    if (have >= n)
        return 0;
    struct sim_vc *v = realloc(*dst, sizeof *v + n * sizeof v->c[0]);
    if (!v)
        return -1;
    memset(v->c + have, 0, (n - have) * sizeof v->c[0]);
    v->n = n;
    *dst = v;
    return 0;
}

static void vc_join(struct sim_vc **dst, const struct sim_vc *src) {
    if (!src || vc_grow(dst, src->n) != 0)
        return;
    for (uint32_t i = 0; i < src->n; i++)
        if (src->c[i] > (*dst)->c[i])
            (*dst)->c[i] = src->c[i];
}

static void vc_set(struct sim_vc **dst, uint32_t slot, uint32_t value) {
    if (vc_grow(dst, slot + 1) == 0 && (*dst)->c[slot] < value)
        (*dst)->c[slot] = value;
}

static struct sim_vc *vc_copy(const struct sim_vc *src) {
    struct sim_vc *v = NULL;
    vc_join(&v, src);
    return v;
}

/* ---- per-thread, per-stream, per-event, per-op state ------------------------------ */

/* The host: one clock for all host threads (see the top: host threads order each other
 * by means the simulator cannot see, such as pthread_join and mutexes, so a clock per
 * host thread would report races that are not). Guarded by its lock; taken after a
 * stream's mu and the memory map, never before them. */
struct host_clock {
    pthread_mutex_t lock;
    uint32_t slot, clock;
    struct sim_vc *vc;
};
static struct host_clock hostc = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* The op being run on this thread (graph nodes run under their launch's epoch). */
static __thread struct sim_race_op *tls_running;

struct sim_race_op {
    uint32_t slot, clock;   /* the epoch */
    struct sim_vc *vc;      /* covers every epoch that happens before it */
    struct sim_vc *pending; /* joined before submission */
    struct sim_vc *after;   /* joined into its stream's clock after it, not into it */
    const char *entry;
    const void *stream;
    /* a node of a launched graph: the nodes of one launch share its epoch, the graph's
     * edges order them (sim_graph_node_before) */
    const struct sim_graph_exec *graph;
    uint32_t node;
};

/* The host clock, locked. */
static struct host_clock *host_lock(void) {
    pthread_mutex_lock(&hostc.lock);
    if (!hostc.slot)
        hostc.slot = atomic_fetch_add(&next_slot, 1);
    return &hostc;
}
static void host_unlock(void) {
    pthread_mutex_unlock(&hostc.lock);
}

static struct sim_race_op *op_info(struct sim_op *op) {
    if (!op->race && (op->race = calloc(1, sizeof *op->race)))
        op->race->entry = op->entry;
    return op->race;
}

void sim_race_op_free(struct sim_op *op) {
    if (!op->race)
        return;
    free(op->race->vc);
    free(op->race->pending);
    free(op->race->after);
    free(op->race);
    op->race = NULL;
}

/* With t->mu NOT held by the caller. */
void sim_race_op_join_stream(struct sim_op *op, struct sim_stream *t) {
    if (!sim_race_on || !op_info(op))
        return;
    pthread_mutex_lock(&t->mu);
    vc_join(&op->race->pending, t->race_vc);
    pthread_mutex_unlock(&t->mu);
}

void sim_race_op_join_event(struct sim_op *op, const struct sim_event *e) {
    if (!sim_race_on || !op_info(op))
        return;
    vc_join(&op->race->pending, e->race_vc);
}

/* With s->mu held, op->seq assigned. */
void sim_race_submit(struct sim_stream *s, struct sim_op *op) {
    if (!sim_race_on || !op_info(op))
        return;
    if (!s->race_slot)
        s->race_slot = atomic_fetch_add(&next_slot, 1);
    struct sim_race_op *r = op->race;
    r->slot = s->race_slot;
    r->clock = (uint32_t)op->seq;
    r->stream = s;
    struct host_clock *h = host_lock();
    h->clock++;
    vc_set(&h->vc, h->slot, h->clock);
    vc_join(&r->vc, h->vc);
    host_unlock();
    vc_join(&r->vc, s->race_vc);
    vc_join(&r->vc, r->pending);
    vc_set(&r->vc, r->slot, r->clock);
    free(s->race_vc);
    s->race_vc = vc_copy(r->vc);
    vc_join(&s->race_vc, r->after);
    if (op->kind == SIM_OP_GRAPH && op->u.graph.clock_out) {
        free(*op->u.graph.clock_out); /* the launch, as the next one of its exec follows it */
        *op->u.graph.clock_out = vc_copy(s->race_vc);
    }
}

void sim_race_op_join_clock(struct sim_op *op, const struct sim_vc *vc) {
    if (!sim_race_on || !op_info(op))
        return;
    vc_join(&op->race->pending, vc);
}

struct sim_vc *sim_race_event_clock(const struct sim_event *e) {
    return sim_race_on ? vc_copy(e->race_vc) : NULL;
}

void sim_race_op_join_after(struct sim_op *op, const struct sim_vc *vc) {
    if (!sim_race_on || !op_info(op))
        return;
    vc_join(&op->race->after, vc);
}

/* With the events' lock held, after the record op was submitted. */
void sim_race_event_record(struct sim_event *e, const struct sim_op *op) {
    if (!sim_race_on)
        return;
    free(e->race_vc);
    e->race_vc = op->race ? vc_copy(op->race->vc) : NULL;
}

void sim_race_host_join_stream(struct sim_stream *s) {
    if (!sim_race_on)
        return;
    pthread_mutex_lock(&s->mu);
    struct host_clock *h = host_lock();
    vc_join(&h->vc, s->race_vc);
    host_unlock();
    pthread_mutex_unlock(&s->mu);
}

void sim_race_host_join_event(const struct sim_event *e) {
    if (!sim_race_on)
        return;
    struct host_clock *h = host_lock();
    vc_join(&h->vc, e->race_vc);
    host_unlock();
}

void sim_race_host_join_op(const struct sim_op *op) {
    if (!sim_race_on || !op->race)
        return;
    struct host_clock *h = host_lock();
    vc_join(&h->vc, op->race->vc);
    host_unlock();
}

/* ---- shadow state ---------------------------------------------------------------- */

#define MAX_READS 8

enum access_kind { ACCESS_READ, ACCESS_WRITE };

struct access {
    uint32_t slot, clock; /* 0: none */
    const char *entry;
    const void *stream;
    uintptr_t a, b; /* the whole range of the access, for the report */
    enum access_kind kind;
    const struct sim_graph_exec *graph; /* a graph node's: its launch's graph, and which */
    uint32_t node;
};

static int conflicts(enum access_kind x, enum access_kind y) {
    return x == ACCESS_WRITE || y == ACCESS_WRITE;
}

struct interval {
    uintptr_t a, b;
    struct access w;
    struct access r[MAX_READS];
    unsigned nr;
};

static struct {
    pthread_mutex_t lock;
    struct interval *v;
    size_t n, cap;
    atomic_uint_fast64_t races;
} shd = {.lock = PTHREAD_MUTEX_INITIALIZER};

uint64_t sim_races(void) {
    return atomic_load(&shd.races);
}

static size_t first_ending_after(uintptr_t p) {
    size_t lo = 0, hi = shd.n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (shd.v[mid].b <= p)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int insert_at(size_t i, const struct interval *iv) {
    if (shd.n == shd.cap) {
        size_t cap = shd.cap ? 2 * shd.cap : 256;
        struct interval *v = realloc(shd.v, cap * sizeof *v);
        if (!v)
            return -1;
        shd.v = v;
        shd.cap = cap;
    }
    memmove(shd.v + i + 1, shd.v + i, (shd.n - i) * sizeof *shd.v);
    shd.v[i] = *iv;
    shd.n++;
    return 0;
}

/* Makes p a boundary between intervals. */
static void split_at(uintptr_t p) {
    size_t i = first_ending_after(p);
    if (i < shd.n && shd.v[i].a < p) {
        struct interval tail = shd.v[i];
        tail.a = p;
        shd.v[i].b = p;
        insert_at(i + 1, &tail);
    }
}

/* Two accesses of one slot: in stream order, unless both are nodes of one graph launch,
 * which its edges order. */
static int slot_order_before(const struct access *prev, const struct access *now) {
    if (prev->graph && prev->graph == now->graph && prev->clock == now->clock)
        return prev->node == now->node || sim_graph_node_before(now->graph, prev->node, now->node);
    return 1;
}

static int ordered(const struct access *prev, const struct access *now,
                   const struct sim_race_op *r) {
    if (!prev->slot)
        return 1;
    if (prev->slot == now->slot)
        return slot_order_before(prev, now);
    return vc_get(r->vc, prev->slot) >= prev->clock;
}

static void describe(char *buf, size_t n, const struct access *x) {
    static const char *verb[] = {"reading", "writing"};
    char node[32] = "";
    if (x->graph)
        snprintf(node, sizeof node, ", graph node %u", x->node);
    snprintf(buf, n, "%s (stream %p, seq %u%s) %s [%#lx, %#lx)", x->entry ? x->entry : "?",
             x->stream, x->clock, node, verb[x->kind], (unsigned long)x->a, (unsigned long)x->b);
}

static void report(const struct access *now, const struct access *prev) {
    char a[256], b[256], line[600];
    describe(a, sizeof a, now);
    describe(b, sizeof b, prev);
    int len = snprintf(line, sizeof line, "simcuda: race: %s, unordered with %s\n", a, b);
    if (len > 0) {
        ssize_t w = write(2, line, (size_t)(len < (int)sizeof line ? len : (int)sizeof line - 1));
        (void)w;
    }
    atomic_fetch_add(&shd.races, 1);
}

/* With shd.lock held: checks [x->a, x->b) of access x (op r) against the shadow, then
 * records it. -1 on a race (nothing recorded). */
static int access_locked(const struct access *x, const struct sim_race_op *r) {
    size_t i = first_ending_after(x->a);
    for (size_t k = i; k < shd.n && shd.v[k].a < x->b; k++) {
        const struct interval *iv = &shd.v[k];
        if (!ordered(&iv->w, x, r)) {
            report(x, &iv->w);
            return -1;
        }
        for (unsigned j = 0; j < iv->nr; j++)
            if (conflicts(x->kind, iv->r[j].kind) && !ordered(&iv->r[j], x, r)) {
                report(x, &iv->r[j]);
                return -1;
            }
    }
    split_at(x->a);
    split_at(x->b);
    i = first_ending_after(x->a);
    if (x->kind == ACCESS_WRITE) {
        size_t j = i;
        while (j < shd.n && shd.v[j].a < x->b)
            j++;
        if (j > i) /* (never with an empty vector, whose v may be NULL) */
            memmove(shd.v + i, shd.v + j, (shd.n - j) * sizeof *shd.v);
        shd.n -= j - i;
        struct interval iv = {x->a, x->b, *x, {{0}}, 0};
        insert_at(i, &iv);
        return 0;
    }
    uintptr_t at = x->a;
    while (at < x->b) {
        if (i < shd.n && shd.v[i].a == at) {
            struct interval *iv = &shd.v[i];
            unsigned j = 0;
            /* a read replaces the one of its slot that happens before it */
            while (j < iv->nr && (iv->r[j].slot != x->slot || !slot_order_before(&iv->r[j], x)))
                j++;
            if (j == iv->nr) {
                if (iv->nr == MAX_READS) /* forget the oldest: fewer races seen, none false */
                    memmove(iv->r, iv->r + 1, --iv->nr * sizeof iv->r[0]);
                j = iv->nr++;
            }
            iv->r[j] = *x;
            at = iv->b;
            i++;
        } else {
            uintptr_t end = i < shd.n && shd.v[i].a < x->b ? shd.v[i].a : x->b;
            struct interval iv = {at, end, {0}, {*x}, 1};
            if (insert_at(i, &iv) != 0)
                return 0;
            at = end;
            i++;
        }
    }
    return 0;
}

static int access_range(const struct sim_race_op *r, const char *entry, uintptr_t a, size_t n,
                        enum access_kind kind) {
    if (!n || !sim_is_device(a))
        return 0;
    struct access x = {r->slot, r->clock, entry, r->stream, a, a + n, kind, r->graph, r->node};
    pthread_mutex_lock(&shd.lock);
    int bad = access_locked(&x, r);
    pthread_mutex_unlock(&shd.lock);
    return bad;
}

/* ---- checks ---------------------------------------------------------------------- */

/* The words a kernel's parameters hold (as sim_kernel_param_words scans them) and, for
 * each, whether the descriptor says the kernel only reads through it. */
static size_t kernel_words(const struct sim_op *op, uintptr_t *words, unsigned char *read_only) {
    const struct simkernel_desc *d = op->u.kernel.desc;
    size_t n = 0;
    for (unsigned i = 0; i < d->param_count; i++) {
        size_t start = (d->param_offset[i] + 7) & ~(size_t)7;
        size_t end = d->param_offset[i] + d->param_size[i];
        for (size_t at = start; at + 8 <= end && n < SIM_MAX_PARAM_WORDS; at += 8) {
            memcpy(&words[n], op->u.kernel.argbuf + at, 8);
            read_only[n++] = (unsigned char)simkernel_word_read_only(d, i, (at - start) / 8);
        }
    }
    return n;
}

/* The kernel accesses each extent its words point into, whole; one it reaches through a
 * read-only word and a writable one is written. */
static int check_kernel(const struct sim_race_op *r, const char *entry, struct sim_op *op) {
    uintptr_t words[SIM_MAX_PARAM_WORDS], lo[SIM_MAX_PARAM_WORDS], hi[SIM_MAX_PARAM_WORDS];
    unsigned char word_ro[SIM_MAX_PARAM_WORDS], extent_ro[SIM_MAX_PARAM_WORDS];
    size_t n = kernel_words(op, words, word_ro), m = 0;
    int bad = 0;
    sim_mem_read_lock();
    for (size_t i = 0; i < n; i++) {
        if (!sim_is_device(words[i]))
            continue;
        /* its extent; if not mapped (any more), the byte it points at, so that an unmap
         * before the kernel ran is still seen */
        uintptr_t a = words[i], b = a + 1;
        (void)sim_mem_extent_locked(words[i], &a, &b);
        size_t k = 0;
        while (k < m && (lo[k] != a || hi[k] != b))
            k++;
        if (k == m) {
            lo[m] = a;
            hi[m] = b;
            extent_ro[m++] = word_ro[i];
        } else {
            extent_ro[k] &= word_ro[i];
        }
    }
    for (size_t k = 0; k < m && !bad; k++)
        bad =
            access_range(r, entry, lo[k], hi[k] - lo[k], extent_ro[k] ? ACCESS_READ : ACCESS_WRITE);
    sim_mem_read_unlock();
    return bad;
}

static size_t span_of(size_t w, size_t h, size_t z, size_t pitch, size_t slice) {
    return sim_span(w, h, z, pitch, slice);
}

int sim_race_check_op(struct sim_op *op) {
    if (!sim_race_on)
        return 0;
    const struct sim_race_op *r = op->race ? op->race : tls_running;
    if (op->race)
        tls_running = op->race;
    if (!r || !r->slot)
        return 0;
    const char *entry = op->race ? r->entry : op->entry;
    int bad = 0;
    switch (op->kind) {
    case SIM_OP_COPY: {
        size_t w = op->u.copy.width, h = op->u.copy.height, z = op->u.copy.depth;
        bad = access_range(r, entry, (uintptr_t)op->u.copy.src,
                           span_of(w, h, z, op->u.copy.spitch, op->u.copy.sslice), ACCESS_READ) ||
              access_range(r, entry, (uintptr_t)op->u.copy.dst,
                           span_of(w, h, z, op->u.copy.dpitch, op->u.copy.dslice), ACCESS_WRITE);
        break;
    }
    case SIM_OP_MEMSET: {
        size_t h = op->u.memset.height;
        size_t span = h ? op->u.memset.pitch * (h - 1) + op->u.memset.width * op->u.memset.elem : 0;
        bad = access_range(r, entry, (uintptr_t)op->u.memset.dst, span, ACCESS_WRITE);
        break;
    }
    case SIM_OP_KERNEL:
        bad = check_kernel(r, entry, op);
        break;
    default:
        break;
    }
    if (bad) {
        atomic_fetch_add(&sim_stats.faults, 1);
        sim_set_sticky(CUDA_ERROR_ILLEGAL_ADDRESS);
    }
    return bad ? -1 : 0;
}

void sim_race_run_node(const struct sim_op *launch, const struct sim_graph_exec *x, uint32_t node,
                       struct sim_op *op) {
    if (!sim_race_on || !launch->race) {
        sim_op_execute(op);
        return;
    }
    /* the launch's epoch and clock (borrowed: the launch outlives its nodes), as node */
    struct sim_race_op r = *launch->race;
    r.graph = x;
    r.node = node;
    /* after an event wait node (or at it): the event's clock too, in a clock of its own */
    struct sim_vc *own = NULL;
    for (uint32_t i = 0; i < launch->u.graph.nwaits; i++) {
        const struct sim_graph_wait *w = &launch->u.graph.waits[i];
        if (!w->vc || (w->node != node && !sim_graph_node_before(x, w->node, node)))
            continue;
        if (!own)
            vc_join(&own, r.vc);
        vc_join(&own, w->vc);
    }
    if (own)
        r.vc = own;
    struct sim_race_op *saved = tls_running;
    tls_running = &r;
    sim_op_execute(op);
    tls_running = saved;
    free(own);
}

int sim_race_running_write(uintptr_t p, size_t n) {
    const struct sim_race_op *r = tls_running;
    if (!sim_race_on || !r || !r->slot)
        return 0;
    int bad = access_range(r, r->entry, p, n, ACCESS_WRITE);
    if (bad) {
        atomic_fetch_add(&sim_stats.faults, 1);
        sim_set_sticky(CUDA_ERROR_ILLEGAL_ADDRESS);
    }
    return bad ? -1 : 0;
}

int sim_race_host_write(const char *entry, uintptr_t p, size_t n) {
    if (!sim_race_on)
        return 0;
    struct host_clock *h = host_lock();
    h->clock++;
    vc_set(&h->vc, h->slot, h->clock);
    struct sim_race_op r = {
        .slot = h->slot, .clock = h->clock, .vc = vc_copy(h->vc), .entry = entry};
    host_unlock();
    int bad = access_range(&r, entry, p, n, ACCESS_WRITE);
    free(r.vc);
    if (bad) {
        atomic_fetch_add(&sim_stats.faults, 1);
        sim_set_sticky(CUDA_ERROR_ILLEGAL_ADDRESS);
    }
    return bad ? -1 : 0;
}

void sim_race_init(void) {
    const char *v = getenv("SIMCUDA_RACECHECK");
    if (v && strcmp(v, "0") == 0)
        sim_race_on = 0;
}
