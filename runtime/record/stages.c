/*
 * stages.c — step 6 of record mode's grouping rule (written at the top of group.c): the
 * program's loop cuts its cycle into stages (before the loop, the loop, after it), and
 * the groups steps 4 and 5 left of one stage become one.
 *
 * The loop is found on the launches themselves, not on the use string: a stretch of
 * launches that repeats immediately, launch for launch the same kernel with the same
 * long-lived references (a unet step), is a loop whatever its allocations' order inside
 * it. Segments a caching allocator fills with several tensors make the use string
 * revisit them inside a step (3 A 7 B C 3 14 7 B 7 B 7), which no straight-run merge
 * undoes; the repetition of whole steps stays exact.
 */
#include "runtime/record/grouping.h"

#include <stdlib.h>

/* The loop search weighs candidate periods, the distances at which a launch recurs, most
 * frequent first, each at the cost of one pass over the launches; past this many launch
 * comparisons it keeps the best loop weighed so far (a loop missed: more components,
 * still a valid config). */
#define LOOP_WORK_LIMIT 200000000ull

/* A group smaller than 1/SMALL_FRACTION of the largest group of its stretch is left to
 * step 5 (a buffer shared by stages: a keep component), never merged into the stage. */
#define SMALL_FRACTION 8

/* Folds of the timeline: a stretch of launches that repeats (the program's cycle, an
 * outer loop) is folded onto its first iteration. More levels than this are not weighed. */
#define FOLDS_MAX 4

enum stretch { BEFORE, LOOP, AFTER, STRETCHES };

/* Launches [start, end) repeating with `period`: a loop (end - start >= 2 * period), or a
 * program's cycle that may come once (period == end - start); none when period is 0. */
struct loop {
    size_t start, end, period;
};

/* A candidate period and how many launches recur at that distance. */
struct period {
    size_t period, count;
};

struct stages {
    struct grouping *g;
    uint64_t *hash;         /* per launch: its kernel and long-lived references */
    struct period *periods; /* candidate periods, most frequent first */
    size_t period_count;
    unsigned long long work;
    struct loop fold[FOLDS_MAX]; /* applied in order; the cycle first */
    size_t folds;
    struct loop loop; /* in folded launch numbers */
    size_t *home;     /* per group root: the stretch with most of its launches */
    bool *large;      /* per group root: not small next to its stage (SMALL_FRACTION) */
    size_t *last_at;  /* scratch per group root: its last position in a run */
};

/* ---- launches and their repetition ------------------------------------------------------ */

/* The long-lived references of launch l, one after another: *i steps to the next one. */
static bool next_long_lived(const struct grouping *g, const struct record_launch *la, size_t *i,
                            uint64_t *a) {
    while (*i < la->ref_count && !g->long_lived[g->t->refs[la->first_ref + *i]])
        (*i)++;
    if (*i == la->ref_count)
        return false;
    *a = g->t->refs[la->first_ref + (*i)++];
    return true;
}

static void hash_launches(struct stages *s) {
    const struct grouping *g = s->g;
    for (size_t l = 0; l < g->t->launch_count; l++) {
        const struct record_launch *la = &g->t->launches[l];
        uint64_t h = (uint64_t)(uintptr_t)la->kernel * 0x9E3779B97F4A7C15ull, a;
        for (size_t i = 0; next_long_lived(g, la, &i, &a);)
            h = (h ^ (a + 1)) * 0x100000001B3ull;
        s->hash[l] = h;
    }
}

/* Launches x and y: the same kernel (interned names: the same pointer) with the same
 * long-lived references. */
static bool same_launch(const struct stages *s, size_t x, size_t y) {
    if (s->hash[x] != s->hash[y])
        return false;
    const struct record_launch *a = &s->g->t->launches[x], *b = &s->g->t->launches[y];
    if (a->kernel != b->kernel)
        return false;
    size_t i = 0, j = 0;
    uint64_t u, v;
    for (;;) {
        bool more_a = next_long_lived(s->g, a, &i, &u), more_b = next_long_lived(s->g, b, &j, &v);
        if (!more_a || !more_b)
            return more_a == more_b;
        if (u != v)
            return false;
    }
}

/* The program's cycle: the shortest period of the whole launch sequence when it repeats
 * at least twice (a program running its pipeline several times), else every launch. */
static int program_cycle(struct stages *s) {
    size_t L = s->g->t->launch_count;
    size_t *border = calloc(L + 1, sizeof *border);
    if (!border)
        return -1;
    for (size_t i = 1; i < L; i++) { /* the prefix function (Knuth–Morris–Pratt) */
        size_t k = border[i - 1];
        while (k > 0 && !same_launch(s, i, k))
            k = border[k - 1];
        border[i] = same_launch(s, i, k) ? k + 1 : k;
    }
    size_t period = L - border[L - 1];
    free(border);
    s->fold[0] = (struct loop){0, L, period * 2 <= L ? period : L};
    s->folds = 1;
    return 0;
}

static int by_count(const void *a, const void *b) {
    const struct period *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return x->period < y->period ? -1 : x->period > y->period;
}

/* The candidate periods: for each launch, the distance to the next launch equal to it (by
 * hash; an open-addressing table of the last index of each), counted. A loop of period p
 * has launches recurring at p: the ones met once per iteration. */
static int list_periods(struct stages *s) {
    size_t L = s->g->t->launch_count, slots = 16;
    while (slots < 2 * L)
        slots *= 2;
    size_t *last = malloc(slots * sizeof *last);
    size_t *count = calloc(L / 2 + 1, sizeof *count);
    int rc = last && count ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < slots; i++)
        last[i] = SIZE_MAX;
    for (size_t l = 0; rc == 0 && l < L; l++) {
        size_t slot = (size_t)(s->hash[l] * 0x9E3779B97F4A7C15ull >> 20) & (slots - 1);
        while (last[slot] != SIZE_MAX && s->hash[last[slot]] != s->hash[l])
            slot = (slot + 1) & (slots - 1);
        if (last[slot] != SIZE_MAX && l - last[slot] <= L / 2)
            count[l - last[slot]]++;
        last[slot] = l;
    }
    s->periods = rc == 0 ? malloc((L / 2 + 1) * sizeof *s->periods) : NULL;
    rc = s->periods ? rc : -1;
    for (size_t p = 1; rc == 0 && p <= L / 2; p++)
        if (count[p])
            s->periods[s->period_count++] = (struct period){p, count[p]};
    if (rc == 0)
        qsort(s->periods, s->period_count, sizeof *s->periods, by_count);
    free(last), free(count);
    return rc;
}

/* Launches [lo, hi) repeating immediately with period p over the most launches. */
static struct loop longest_repeat(struct stages *s, size_t lo, size_t hi, size_t p) {
    struct loop best = {0, 0, 0};
    size_t run = 0; /* launches l with l == l + p, consecutively */
    for (size_t l = lo; l + p < hi; l++) {
        run = same_launch(s, l, l + p) ? run + 1 : 0;
        if (run >= p && run + p > best.end - best.start)
            best = (struct loop){l + 1 - run, l + 1 + p, p};
    }
    s->work += hi - lo;
    return best;
}

/* The loop inside launches [lo, hi): the immediate repetition covering most launches,
 * the shortest period on a tie. */
static struct loop find_loop(struct stages *s, size_t lo, size_t hi) {
    struct loop best = {0, 0, 0};
    for (size_t i = 0; i < s->period_count && s->work <= LOOP_WORK_LIMIT; i++) {
        size_t p = s->periods[i].period;
        if (2 * p > hi - lo)
            continue;
        struct loop found = longest_repeat(s, lo, hi, p);
        size_t got = found.end - found.start, had = best.end - best.start;
        if (found.period && (got > had || (got == had && p < best.period)))
            best = found;
    }
    return best;
}

/* The loop of the cycle. A loop whose iteration is mostly an inner loop (a whole pipeline
 * repeated after a prologue, its unet steps inside) is folded like the cycle and the
 * inner loop taken. */
static void choose_loop(struct stages *s) {
    const struct loop *cycle = &s->fold[0];
    s->loop = find_loop(s, 0, cycle->period);
    while (s->loop.period >= 2 && s->folds < FOLDS_MAX) {
        struct loop inner = find_loop(s, s->loop.start, s->loop.start + s->loop.period);
        if (inner.period == 0 || 2 * (inner.end - inner.start) < s->loop.period)
            break;
        s->fold[s->folds++] = s->loop;
        s->loop = inner;
    }
}

/* Launch l folded onto the first iteration of every fold it lies in. */
static size_t fold_launch(const struct stages *s, size_t l) {
    for (size_t f = 0; f < s->folds; f++)
        if (l >= s->fold[f].start && l < s->fold[f].end)
            l = s->fold[f].start + (l - s->fold[f].start) % s->fold[f].period;
    return l;
}

/* Where a launch lies: which repetition of the folds (the offset folding took off), which
 * stretch of it, and in the loop which iteration. Launches with the same place are in one
 * visit of a stage. */
struct place {
    size_t repetition;
    enum stretch stretch;
    size_t iteration;
};

static struct place place_of(const struct stages *s, size_t l) {
    size_t q = fold_launch(s, l);
    struct place p = {l - q, AFTER, 0};
    if (q < s->loop.start)
        p.stretch = BEFORE;
    else if (q < s->loop.end)
        p = (struct place){l - q, LOOP, (q - s->loop.start) / s->loop.period};
    return p;
}

static bool same_stretch(struct place a, struct place b) {
    return a.repetition == b.repetition && a.stretch == b.stretch;
}

static bool same_visit(struct place a, struct place b) {
    return same_stretch(a, b) && a.iteration == b.iteration;
}

/* ---- stages ------------------------------------------------------------------------------ */

/* Each group's home: the stretch holding most of the launches that reference it. */
static int find_homes(struct stages *s) {
    struct grouping *g = s->g;
    size_t *count = calloc((g->n + 1) * STRETCHES, sizeof *count);
    if (!count)
        return -1;
    for (size_t l = 0; l < g->t->launch_count; l++) {
        const struct record_launch *la = &g->t->launches[l];
        enum stretch st = place_of(s, l).stretch;
        uint64_t a;
        for (size_t i = 0; next_long_lived(g, la, &i, &a);) {
            size_t r = grouping_find(g->parent, a);
            if (!g->hub[r])
                count[r * STRETCHES + st]++;
        }
    }
    for (size_t r = 0; r < g->n; r++) {
        size_t best = BEFORE;
        for (size_t st = BEFORE + 1; st < STRETCHES; st++)
            if (count[r * STRETCHES + st] > count[r * STRETCHES + best])
                best = st;
        s->home[r] = count[r * STRETCHES + best] ? best : STRETCHES;
    }
    free(count);
    return 0;
}

/* A group is large when it is at least 1/SMALL_FRACTION of the largest group of its home. */
static void find_large(struct stages *s) {
    struct grouping *g = s->g;
    uint64_t largest[STRETCHES] = {0};
    for (size_t r = 0; r < g->n; r++)
        if (s->home[r] < STRETCHES && g->gbytes[r] > largest[s->home[r]])
            largest[s->home[r]] = g->gbytes[r];
    for (size_t r = 0; r < g->n; r++) {
        s->large[r] = s->home[r] < STRETCHES &&
                      g->gbytes[r] * SMALL_FRACTION >= largest[s->home[r]] && g->gbytes[r] > 0;
    }
}

static bool own_large(const struct stages *s, size_t root, enum stretch st) {
    return s->large[root] && s->home[root] == st;
}

/* The end of the run of positions from i in the same stretch of the same repetition. */
static size_t run_end(const struct stages *s, size_t i) {
    const struct grouping *g = s->g;
    struct place here = place_of(s, g->first[i]);
    size_t end = i + 1;
    while (end < g->len && same_stretch(place_of(s, g->first[end]), here))
        end++;
    return end;
}

/* Joins the groups of x and y; returns whether they were apart. */
static bool unite(struct grouping *g, size_t x, size_t y) {
    x = grouping_find(g->parent, x);
    y = grouping_find(g->parent, y);
    if (x == y)
        return false;
    if (y < x) {
        size_t z = x;
        x = y;
        y = z;
    }
    g->parent[y] = x;
    return true;
}

/* In one straight run [i, end): the stage's large groups whose spans overlap (read in
 * turn: 14 16 17 16 17 14) become one; ones in sequence (A then C) stay apart. */
static bool merge_interleaved(struct stages *s, const size_t *old_root, size_t i, size_t end,
                              enum stretch st) {
    for (size_t j = i; j < end; j++)
        s->last_at[old_root[j]] = j;
    bool merged = false;
    size_t block = LINK_NONE, block_end = 0; /* the span of the groups merged so far */
    for (size_t j = i; j < end; j++) {
        size_t r = old_root[j];
        if (!own_large(s, r, st))
            continue;
        if (block != LINK_NONE && j < block_end) {
            merged |= unite(s->g, block, r);
            block_end = s->last_at[r] > block_end ? s->last_at[r] : block_end;
        } else {
            block = r;
            block_end = s->last_at[r];
        }
    }
    return merged;
}

/* The loop is one stage: its large groups become one. Before and after it, groups read in
 * turn become one. Returns whether anything merged. */
static bool merge_stages(struct stages *s, const size_t *old_root) {
    struct grouping *g = s->g;
    bool merged = false;
    size_t loop_root = LINK_NONE;
    for (size_t r = 0; r < g->n; r++)
        if (grouping_find(g->parent, r) == r && own_large(s, r, LOOP)) {
            if (loop_root == LINK_NONE)
                loop_root = r;
            else
                merged |= unite(g, loop_root, r);
        }
    for (size_t i = 0, end; i < g->len; i = end) {
        end = run_end(s, i);
        enum stretch st = place_of(s, g->first[i]).stretch;
        if (st != LOOP)
            merged |= merge_interleaved(s, old_root, i, end, st);
    }
    return merged;
}

/* Whether position j of a run in stretch st, whose own large groups lie from own_first to
 * own_last, is a touch: a large group of another stage met anywhere in the loop, or before
 * and after it between two of the stretch's own large groups (a unet segment holding a vae
 * activation). The runtime restores it on demand; it is no visit. */
static bool is_touch(const struct stages *s, size_t r, size_t j, enum stretch st, size_t own_first,
                     size_t own_last) {
    if (!s->large[r] || s->home[r] == st)
        return false;
    return st == LOOP || (own_first < j && j < own_last);
}

/* Appends position j of the old string as the group `token` at k (its visit joined to the
 * previous one when that is the same group in the same visit of a stage); returns k. */
static size_t append_visit(struct grouping *g, const struct stages *s, size_t k, size_t j,
                           size_t token) {
    if (k > 0 && g->str[k - 1] == token &&
        same_visit(place_of(s, g->first[k - 1]), place_of(s, g->first[j]))) {
        g->last[k - 1] = g->last[j];
        return k;
    }
    g->str[k] = token;
    g->first[k] = g->first[j];
    g->last[k] = g->last[j];
    return k + 1;
}

/* Rebuilds the string: touches dropped, tokens renamed to their merged group, neighbours
 * in one visit of a stage joined. Returns whether any touch was dropped. */
static bool rebuild_string(struct stages *s, const size_t *old_root) {
    struct grouping *g = s->g;
    size_t k = 0;
    bool dropped = false;
    for (size_t i = 0, end; i < g->len; i = end) {
        end = run_end(s, i);
        enum stretch st = place_of(s, g->first[i]).stretch;
        size_t own_first = end, own_last = 0;
        for (size_t j = i; j < end; j++)
            if (own_large(s, old_root[j], st)) {
                own_first = own_first == end ? j : own_first;
                own_last = j;
            }
        for (size_t j = i; j < end; j++) {
            if (is_touch(s, old_root[j], j, st, own_first, own_last)) {
                dropped = true;
                continue;
            }
            k = append_visit(g, s, k, j, grouping_find(g->parent, old_root[j]));
        }
    }
    g->len = k;
    return dropped;
}

static void stages_free(struct stages *s) {
    free(s->hash), free(s->periods), free(s->home), free(s->large), free(s->last_at);
}

int grouping_stages(struct grouping *g, bool *changed) {
    *changed = false;
    if (g->t->launch_count < 4 || g->len == 0)
        return 0;
    struct stages s = {.g = g};
    s.hash = calloc(g->t->launch_count, sizeof *s.hash);
    s.home = calloc(g->n + 1, sizeof *s.home);
    s.large = calloc(g->n + 1, sizeof *s.large);
    s.last_at = calloc(g->n + 1, sizeof *s.last_at);
    size_t *old_root = calloc(g->len + 1, sizeof *old_root);
    int rc = s.hash && s.home && s.large && s.last_at && old_root ? 0 : -1;
    if (rc == 0) {
        hash_launches(&s);
        rc = program_cycle(&s);
    }
    if (rc == 0)
        rc = list_periods(&s);
    if (rc == 0) {
        choose_loop(&s);
        if (s.loop.period > 0)
            rc = find_homes(&s);
    }
    if (rc == 0 && s.loop.period > 0) {
        find_large(&s);
        for (size_t i = 0; i < g->len; i++)
            old_root[i] = grouping_find(g->parent, g->str[i]);
        bool merged = merge_stages(&s, old_root);
        size_t len = g->len;
        bool dropped = rebuild_string(&s, old_root);
        *changed = merged || dropped || g->len != len;
    }
    free(old_root);
    stages_free(&s);
    return rc;
}
