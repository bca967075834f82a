/*
 * record_plan.c — record mode: the trace, the grouping, the config writer.
 *
 * The grouping rule
 * -----------------
 * 1. Long-lived allocations: referenced by at least one launch and either never freed and
 *    alive during more than half of the launches, or alive during every launch (made
 *    before the first, freed after the last: weights a program releases at exit). The
 *    rest stays unowned: activations allocated and freed per run, and buffers made while
 *    the program runs and freed at its end (a latent handed from one stage to the next).
 *
 * 2. The use string: the launches in order, each replaced by the long-lived allocations it
 *    references (ascending ordinal), with immediate repeats of the same allocation
 *    collapsed. For the reference pipeline it reads
 *        t1 t2 ... tk  (u1 u2 ... um)^steps  v1 ... vj
 *
 * 3. Straight runs merge, like basic blocks of a control-flow graph: X and Y become one
 *    group when every occurrence of X is immediately followed by Y and every occurrence
 *    of Y immediately preceded by X (the start and the end of the string count as
 *    neighbours). Repeated to a fixed point, this turns the string above into
 *        T U U ... U V
 *    A loop (U U) never merges with what enters or leaves it, because its head is then
 *    preceded by two different groups; so T, U and V stay apart. A program that runs its
 *    pipeline twice gives T U..U V T U..U V: the same three groups.
 *
 * 4. Interruptions and shared allocations: a group H that is not a loop (never repeats
 *    immediately) is set aside when taking it out of the string brings together groups
 *    at least twice its size: neighbours that then merge (T1 H T2 ... UA H UB; a weight
 *    read twice inside one layer: T1 W b W T2; a workspace read by every launch), or
 *    consecutive iterations of a loop it interrupts (B H B H B). The candidate bringing
 *    the most bytes together goes first, then step 3 resumes. Taking H out joins the
 *    visits of a group around it that were in consecutive launches (p H p: one visit),
 *    never loop iterations. When everything is settled, H joins the group that sits next
 *    to every one of its occurrences if there is one (it was an interruption of that
 *    group), else it is "shared": shared groups with the same neighbours become one
 *    component written with keep = yes. The size condition keeps a whole component that
 *    runs between two others (a -> b -> a -> c) from being taken for an interruption.
 *
 * 5. Components are the groups, named c0, c1, ... by their first use. The sequence is the
 *    string of groups with immediate repeats collapsed, cut to its shortest period (a
 *    program running its pipeline several times gives one cycle) and with a last element
 *    equal to the first dropped (it is cyclic). Shared (keep) components are not in it.
 *
 * Limits: a component used by a single pass with nothing distinguishing it from its
 * neighbours (no loop, no return) merges with them: a pipeline whose every stage runs once
 * and straight is one component (one unet step is not a loop; two are). An interruption
 * of a loop is recognised from three iterations on (B H B H B). On very long strings
 * (HUB_WORK_LIMIT) step 4 stops early: more, smaller components, still a valid config.
 */
#include "runtime/record_plan.h"

#include <stdlib.h>
#include <string.h>

/* ---- the trace ---------------------------------------------------------------------- */

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 16;
    while (n < need)
        n *= 2;
    void *q = realloc(*p, n * elem);
    if (!q)
        return -1;
    *p = q;
    *cap = n;
    return 0;
}

void record_trace_init(struct record_trace *t) {
    memset(t, 0, sizeof *t);
}

void record_trace_destroy(struct record_trace *t) {
    for (size_t i = 0; i < t->kernel_name_count; i++)
        free(t->kernel_names[i]);
    free(t->kernel_names);
    free(t->kernel_slots);
    free(t->allocs);
    free(t->launches);
    free(t->refs);
    memset(t, 0, sizeof *t);
}

int record_trace_alloc(struct record_trace *t, uint64_t ordinal, uint64_t bytes) {
    if (ordinal < t->alloc_count || ordinal - t->alloc_count > (1u << 20))
        return -1;
    if (grow((void **)&t->allocs, &t->alloc_cap, (size_t)ordinal + 1, sizeof *t->allocs))
        return -1;
    /* Ordinals the caller skipped (an allocation that failed after getting one) stay as
     * empty entries, so later ordinals keep their meaning. */
    while (t->alloc_count < ordinal) {
        uint64_t now = ++t->clock;
        t->allocs[t->alloc_count++] =
            (struct record_alloc){.bytes = 0, .alloc_tick = now, .free_tick = now};
    }
    t->allocs[t->alloc_count++] =
        (struct record_alloc){.bytes = bytes, .alloc_tick = ++t->clock, .free_tick = RECORD_NEVER};
    return 0;
}

int record_trace_free(struct record_trace *t, uint64_t ordinal) {
    if (ordinal >= t->alloc_count || t->allocs[ordinal].free_tick != RECORD_NEVER)
        return -1;
    t->allocs[ordinal].free_tick = ++t->clock;
    return 0;
}

static uint64_t hash_name(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* The trace's own copy of name, stored once; NULL on NULL or out of memory. */
static const char *intern(struct record_trace *t, const char *name) {
    if (!name)
        return NULL;
    if (t->kernel_name_count * 2 >= t->kernel_slot_count) {
        size_t n = t->kernel_slot_count ? t->kernel_slot_count * 2 : 64;
        size_t *slots = calloc(n, sizeof *slots);
        if (!slots)
            return NULL;
        for (size_t i = 0; i < t->kernel_name_count; i++) {
            size_t s = hash_name(t->kernel_names[i]) & (n - 1);
            while (slots[s])
                s = (s + 1) & (n - 1);
            slots[s] = i + 1;
        }
        free(t->kernel_slots);
        t->kernel_slots = slots;
        t->kernel_slot_count = n;
    }
    size_t mask = t->kernel_slot_count - 1, s = hash_name(name) & mask;
    for (; t->kernel_slots[s]; s = (s + 1) & mask)
        if (strcmp(t->kernel_names[t->kernel_slots[s] - 1], name) == 0)
            return t->kernel_names[t->kernel_slots[s] - 1];
    if (grow((void **)&t->kernel_names, &t->kernel_name_cap, t->kernel_name_count + 1,
             sizeof *t->kernel_names))
        return NULL;
    char *copy = strdup(name);
    if (!copy)
        return NULL;
    t->kernel_names[t->kernel_name_count++] = copy;
    t->kernel_slots[s] = t->kernel_name_count;
    return copy;
}

int record_trace_launch(struct record_trace *t, const char *kernel, const uint64_t *ordinals,
                        size_t count) {
    if (grow((void **)&t->launches, &t->launch_cap, t->launch_count + 1, sizeof *t->launches) ||
        grow((void **)&t->refs, &t->ref_cap, t->ref_count + count, sizeof *t->refs))
        return -1;
    const char *name = intern(t, kernel);
    if (kernel && !name)
        return -1;
    /* Insertion sort with duplicates dropped: a launch references a handful of pointers. */
    uint64_t *r = t->refs + t->ref_count;
    size_t n = 0;
    for (size_t i = 0; i < count; i++) {
        uint64_t o = ordinals[i];
        if (o >= t->alloc_count)
            continue;
        size_t j = n;
        while (j > 0 && r[j - 1] > o)
            j--;
        if (j > 0 && r[j - 1] == o)
            continue;
        memmove(r + j + 1, r + j, (n - j) * sizeof *r);
        r[j] = o;
        n++;
    }
    t->launches[t->launch_count++] = (struct record_launch){
        .tick = ++t->clock, .kernel = name, .first_ref = t->ref_count, .ref_count = n};
    t->ref_count += n;
    return 0;
}

/* ---- the grouping ------------------------------------------------------------------- */

/* Neighbour markers in the link arrays; real tokens are ordinals < alloc_count. */
#define LINK_NONE SIZE_MAX
#define LINK_MULTI (SIZE_MAX - 1)
#define LINK_EDGE (SIZE_MAX - 2) /* the start or the end of the string */

struct grouping {
    size_t n;       /* allocations in the trace */
    size_t *parent; /* union-find over ordinals: a group is named by its root */
    size_t *str;    /* the use string: group roots */
    size_t *first;  /* per string position: the first and last launch of that visit */
    size_t *last;
    size_t len;
    size_t *succ, *pred;
    const uint64_t *bytes; /* per ordinal */
    uint64_t *gbytes;      /* per root, refreshed by refresh_bytes */
    bool *tail;            /* merged into its predecessor this pass */
    bool *hub;             /* set aside by step 4 */
    bool *shared;          /* a shared component (keep) */
    /* step 4's record: for each set-aside group, its neighbours at removal */
    struct hub_seen {
        size_t hub, before, after;
    } * seen;
    size_t seen_count, seen_cap;
    size_t *hub_order; /* hubs in removal order */
    size_t hub_count;
};

static size_t find(size_t *parent, size_t a) {
    while (parent[a] != a) {
        parent[a] = parent[parent[a]];
        a = parent[a];
    }
    return a;
}

static void note(size_t *link, size_t value) {
    if (*link == LINK_NONE)
        *link = value;
    else if (*link != value)
        *link = LINK_MULTI;
}

/* Computes each group's unique successor and predecessor in the string (LINK_MULTI when
 * there are several, LINK_NONE for groups absent from it), ignoring the tokens equal to
 * skip (LINK_NONE: skip nothing). */
static void compute_links(struct grouping *g, size_t skip) {
    for (size_t i = 0; i < g->n; i++)
        g->succ[i] = g->pred[i] = LINK_NONE;
    size_t prev = LINK_EDGE;
    for (size_t i = 0; i < g->len; i++) {
        size_t t = g->str[i];
        if (t == skip)
            continue;
        note(&g->pred[t], prev);
        if (prev != LINK_EDGE)
            note(&g->succ[prev], t);
        prev = t;
    }
    if (prev != LINK_EDGE)
        note(&g->succ[prev], LINK_EDGE);
}

static bool mergeable(const struct grouping *g, size_t x) {
    size_t y = g->succ[x];
    return y < g->n && y != x && g->pred[y] == x;
}

/* One pass of step 3. Returns true if anything merged. */
static bool merge_pass(struct grouping *g) {
    compute_links(g, LINK_NONE);
    bool any = false;
    for (size_t x = 0; x < g->n; x++)
        g->tail[x] = false;
    for (size_t x = 0; x < g->n; x++)
        if (g->pred[x] != LINK_NONE && mergeable(g, x)) {
            g->tail[g->succ[x]] = true;
            any = true;
        }
    if (!any)
        return false;
    /* Every tail occurrence directly follows its predecessor's: drop it, join its group. */
    for (size_t x = 0; x < g->n; x++)
        if (g->tail[x])
            g->parent[x] = g->pred[x];
    size_t k = 0;
    for (size_t i = 0; i < g->len; i++) {
        if (g->tail[g->str[i]]) {
            g->last[k - 1] = g->last[i]; /* k > 0: a tail always follows its head */
            continue;
        }
        g->str[k] = find(g->parent, g->str[i]);
        g->first[k] = g->first[i];
        g->last[k++] = g->last[i];
    }
    g->len = k;
    return true;
}

static void refresh_bytes(struct grouping *g, const bool *long_lived) {
    for (size_t i = 0; i < g->n; i++)
        g->gbytes[i] = 0;
    for (size_t i = 0; i < g->n; i++)
        if (long_lived[i])
            g->gbytes[find(g->parent, i)] += g->bytes[i];
}

/* Step 4's test for group h (not a loop itself): how many bytes does taking it out of the
 * string bring together? Either groups that then merge (T1 h T2), or a loop whose
 * consecutive iterations h interrupts (B h B h B: h is read in every iteration of B).
 * Only groups at least twice h's size count, which keeps a whole component that runs
 * between two others (a -> b -> a -> c) from being taken for an interruption. 0: none. */
static uint64_t set_aside_gain(struct grouping *g, size_t h) {
    compute_links(g, h);
    uint64_t joined = 0;
    for (size_t x = 0; x < g->n; x++)
        if (x != h && g->pred[x] != LINK_NONE && mergeable(g, x))
            joined += g->gbytes[x] + g->gbytes[g->succ[x]];
    if (joined && g->gbytes[h] * 2 <= joined)
        return joined;
    for (size_t i = 4; i < g->len; i++) {
        size_t t = g->str[i];
        if (t != h && g->str[i - 1] == h && g->str[i - 2] == t && g->str[i - 3] == h &&
            g->str[i - 4] == t && g->gbytes[h] * 2 <= g->gbytes[t])
            return g->gbytes[t];
    }
    return 0;
}

/* Above this much work in total, step 4 stops (about a second): the result then has more,
 * smaller components, still a valid config. */
#define HUB_WORK_LIMIT 400000000ull

struct candidate {
    size_t occurrences, group;
};

static int by_occurrences(const void *a, const void *b) {
    const struct candidate *x = a, *y = b;
    if (x->occurrences != y->occurrences)
        return x->occurrences > y->occurrences ? -1 : 1;
    return x->group < y->group ? -1 : x->group > y->group;
}

/* How many candidates step 4 weighs once one qualifies. */
#define CANDIDATES_WEIGHED 16

/* Step 4: finds the group whose removal brings the most together and sets it aside.
 * Candidates are weighed most frequent first (a buffer read by every launch is both the
 * most frequent and the one bringing most together) until CANDIDATES_WEIGHED have been
 * weighed and one qualifies; the best of those wins (ties: the more frequent). Each
 * weighing adds (allocations + string length) to *work; past HUB_WORK_LIMIT it stops. */
static int set_aside_one(struct grouping *g, bool *found, unsigned long long *work) {
    *found = false;
    size_t *occurrences = g->succ; /* scratch until the first weighing */
    bool *loops = g->tail;         /* scratch: cleared by the next merge_pass */
    for (size_t x = 0; x < g->n; x++) {
        occurrences[x] = 0;
        loops[x] = false;
    }
    for (size_t i = 0; i < g->len; i++) {
        occurrences[g->str[i]]++;
        if (i > 0 && g->str[i] == g->str[i - 1])
            loops[g->str[i]] = true;
    }
    size_t count = 0;
    for (size_t x = 0; x < g->n; x++)
        count += occurrences[x] > 0 && !loops[x];
    struct candidate *c = malloc((count + 1) * sizeof *c);
    if (!c)
        return -1;
    count = 0;
    for (size_t x = 0; x < g->n; x++)
        if (occurrences[x] > 0 && !loops[x])
            c[count++] = (struct candidate){occurrences[x], x};
    qsort(c, count, sizeof *c, by_occurrences);
    size_t h = LINK_NONE, weighed = 0;
    uint64_t best = 0;
    for (size_t i = 0; i < count && *work <= HUB_WORK_LIMIT; i++) {
        if (best > 0 && weighed >= CANDIDATES_WEIGHED)
            break;
        *work += g->n + g->len;
        weighed++;
        uint64_t gain = set_aside_gain(g, c[i].group);
        if (gain > best) {
            best = gain;
            h = c[i].group;
        }
    }
    free(c);
    if (h != LINK_NONE) {
        /* record its neighbours, then drop it from the string; p h p where the two
         * visits of p are in consecutive launches (p read by launches i and i+1, h by
         * both) becomes one visit of p, while loop iterations (U x U) stay apart */
        size_t k = 0;
        bool join_next = false;
        for (size_t i = 0; i < g->len; i++) {
            if (g->str[i] != h) {
                if (join_next) {
                    g->last[k - 1] = g->last[i];
                    join_next = false;
                    continue;
                }
                g->str[k] = g->str[i];
                g->first[k] = g->first[i];
                g->last[k++] = g->last[i];
                continue;
            }
            size_t before = k > 0 ? g->str[k - 1] : LINK_EDGE;
            size_t after = LINK_EDGE;
            if (i + 1 < g->len) {
                after = g->str[i + 1]; /* h never follows itself */
                join_next = after == before && g->first[i + 1] <= g->last[k - 1] + 1;
            }
            if (grow((void **)&g->seen, &g->seen_cap, g->seen_count + 1, sizeof *g->seen))
                return -1;
            g->seen[g->seen_count++] = (struct hub_seen){h, before, after};
        }
        g->len = k;
        g->hub[h] = true;
        g->hub_order[g->hub_count++] = h;
        *found = true;
        return 0;
    }
    return 0;
}

/* Resolves set-aside groups, last removed first: join the one group they sat inside, or
 * become shared. Shared groups with the same neighbour set are merged. */
static int resolve_hubs(struct grouping *g) {
    /* the sorted neighbour set of each resolved shared hub, by removal index */
    size_t **set_of = calloc(g->hub_count + 1, sizeof *set_of);
    size_t *set_len = calloc(g->hub_count + 1, sizeof *set_len);
    int rc = set_of && set_len ? 0 : -1;
    for (size_t k = g->hub_count; rc == 0 && k-- > 0;) {
        size_t h = g->hub_order[k];
        size_t count = 0, cap = 0, *roots = NULL;
        for (size_t s = 0; s < g->seen_count && rc == 0; s++) {
            if (g->seen[s].hub != h)
                continue;
            size_t ends[2] = {g->seen[s].before, g->seen[s].after};
            for (int e = 0; e < 2; e++) {
                if (ends[e] >= g->n)
                    continue;
                size_t r = find(g->parent, ends[e]), i = count;
                bool have = false;
                for (size_t j = 0; j < count; j++)
                    have |= roots[j] == r;
                if (have)
                    continue;
                if (grow((void **)&roots, &cap, count + 1, sizeof *roots)) {
                    rc = -1;
                    break;
                }
                while (i > 0 && roots[i - 1] > r) { /* sorted, to compare sets */
                    roots[i] = roots[i - 1];
                    i--;
                }
                roots[i] = r;
                count++;
            }
        }
        /* An interruption of one group (every occurrence next to it) joins that group;
         * otherwise h is shared between groups. */
        size_t host = LINK_NONE;
        for (size_t j = 0; rc == 0 && j < count && host == LINK_NONE; j++) {
            bool everywhere = true;
            for (size_t s = 0; s < g->seen_count && everywhere; s++) {
                if (g->seen[s].hub != h)
                    continue;
                size_t b = g->seen[s].before, a = g->seen[s].after;
                everywhere = (b < g->n && find(g->parent, b) == roots[j]) ||
                             (a < g->n && find(g->parent, a) == roots[j]);
            }
            if (everywhere)
                host = roots[j];
        }
        if (host != LINK_NONE) {
            g->parent[h] = host;
            free(roots);
            continue;
        }
        g->shared[h] = true;
        for (size_t j = k + 1; j < g->hub_count; j++) {
            size_t o = g->hub_order[j];
            if (set_of[j] && set_len[j] == count && find(g->parent, o) == o &&
                memcmp(set_of[j], roots, count * sizeof *roots) == 0) {
                g->parent[h] = o; /* same neighbours as an earlier shared group */
                break;
            }
        }
        set_of[k] = roots;
        set_len[k] = count;
    }
    if (set_of)
        for (size_t k = 0; k < g->hub_count; k++)
            free(set_of[k]);
    free(set_of), free(set_len);
    return rc;
}

static void grouping_free(struct grouping *g) {
    free(g->parent), free(g->str), free(g->first), free(g->last), free(g->succ), free(g->pred);
    free(g->tail), free(g->gbytes), free(g->hub), free(g->shared), free(g->seen),
        free(g->hub_order);
}

struct comp_order {
    size_t root, first_launch, first_ordinal;
};

static int by_first_use(const void *a, const void *b) {
    const struct comp_order *x = a, *y = b;
    if (x->first_launch != y->first_launch)
        return x->first_launch < y->first_launch ? -1 : 1;
    return x->first_ordinal < y->first_ordinal ? -1 : x->first_ordinal > y->first_ordinal;
}

/* Shortest p such that seq[i] == seq[i % p] for every i. */
static size_t shortest_period(const size_t *seq, size_t len) {
    for (size_t p = 1; p < len; p++) {
        bool ok = true;
        for (size_t i = p; i < len && ok; i++)
            ok = seq[i] == seq[i % p];
        if (ok)
            return p;
    }
    return len;
}

int record_plan_build(const struct record_trace *t, struct record_plan *plan) {
    memset(plan, 0, sizeof *plan);
    size_t n = t->alloc_count, L = t->launch_count;
    plan->launch_count = L;

    struct grouping g = {.n = n};
    size_t *first_launch = calloc(n + 1, sizeof *first_launch);
    size_t *uses = calloc(n + 1, sizeof *uses);
    bool *long_lived = calloc(n + 1, sizeof *long_lived);
    size_t *comp_of = calloc(n + 1, sizeof *comp_of);
    struct comp_order *order = calloc(n + 1, sizeof *order);
    g.parent = calloc(n + 1, sizeof *g.parent);
    g.succ = calloc(n + 1, sizeof *g.succ);
    g.pred = calloc(n + 1, sizeof *g.pred);
    g.tail = calloc(n + 1, sizeof *g.tail);
    g.gbytes = calloc(n + 1, sizeof *g.gbytes);
    uint64_t *bytes = calloc(n + 1, sizeof *bytes);
    g.bytes = bytes;
    g.hub = calloc(n + 1, sizeof *g.hub);
    g.shared = calloc(n + 1, sizeof *g.shared);
    g.hub_order = calloc(n + 1, sizeof *g.hub_order);
    g.str = calloc(t->ref_count + 1, sizeof *g.str);
    g.first = calloc(t->ref_count + 1, sizeof *g.first);
    g.last = calloc(t->ref_count + 1, sizeof *g.last);
    int rc = -1;
    if (!first_launch || !uses || !long_lived || !comp_of || !order || !g.parent || !g.succ ||
        !g.pred || !g.tail || !g.gbytes || !bytes || !g.hub || !g.shared || !g.hub_order ||
        !g.str || !g.first || !g.last)
        goto out;

    /* step 1 */
    for (size_t i = 0; i < n; i++)
        first_launch[i] = SIZE_MAX;
    for (size_t l = 0; l < L; l++) {
        const struct record_launch *la = &t->launches[l];
        for (size_t r = 0; r < la->ref_count; r++) {
            size_t a = (size_t)t->refs[la->first_ref + r];
            if (first_launch[a] == SIZE_MAX)
                first_launch[a] = l;
            uses[a]++;
        }
    }
    uint64_t last_tick = L ? t->launches[L - 1].tick : 0;
    for (size_t i = 0; i < n; i++) {
        const struct record_alloc *al = &t->allocs[i];
        bool alive_at_end = al->free_tick == RECORD_NEVER || al->free_tick > last_tick;
        bool long_life;
        if (al->free_tick == RECORD_NEVER) {
            /* launches during its life: ticks increase, so find the first by bisection */
            size_t lo = 0, hi = L;
            while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                if (t->launches[mid].tick < al->alloc_tick)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            long_life = (L - lo) * 2 > L;
        } else {
            long_life = alive_at_end && L && al->alloc_tick < t->launches[0].tick;
        }
        if (al->bytes == 0 && al->free_tick == al->alloc_tick) {
            /* a skipped ordinal: nothing to report */
        } else if (uses[i] && long_life) {
            long_lived[i] = true;
        } else if (uses[i]) {
            plan->short_lived_count++;
            plan->short_lived_bytes += al->bytes;
        } else {
            plan->unused_count++;
            plan->unused_bytes += al->bytes;
        }
        g.parent[i] = i;
        bytes[i] = al->bytes;
    }

    /* step 2 */
    for (size_t l = 0; l < L; l++) {
        const struct record_launch *la = &t->launches[l];
        for (size_t r = 0; r < la->ref_count; r++) {
            size_t a = (size_t)t->refs[la->first_ref + r];
            if (!long_lived[a])
                continue;
            if (g.len > 0 && g.str[g.len - 1] == a) {
                g.last[g.len - 1] = l;
                continue;
            }
            g.first[g.len] = g.last[g.len] = l;
            g.str[g.len++] = a;
        }
    }

    /* steps 3 and 4 */
    unsigned long long work = 0;
    for (;;) {
        while (merge_pass(&g))
            ;
        refresh_bytes(&g, long_lived);
        bool found;
        if (set_aside_one(&g, &found, &work))
            goto out;
        if (!found)
            break;
    }
    if (resolve_hubs(&g))
        goto out;

    /* step 5: components by first use */
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        if (!long_lived[i])
            continue;
        size_t r = find(g.parent, i);
        size_t k = 0;
        while (k < count && order[k].root != r)
            k++;
        if (k == count)
            order[count++] = (struct comp_order){r, first_launch[i], i};
        else if (first_launch[i] < order[k].first_launch)
            order[k].first_launch = first_launch[i];
    }
    qsort(order, count, sizeof *order, by_first_use);
    plan->components = calloc(count + 1, sizeof *plan->components);
    plan->sequence = calloc(g.len + 1, sizeof *plan->sequence);
    if (!plan->components || !plan->sequence)
        goto out;
    plan->component_count = count;
    for (size_t k = 0; k < count; k++) {
        struct record_component *c = &plan->components[k];
        snprintf(c->name, sizeof c->name, "c%zu", k);
        c->first_launch = order[k].first_launch;
        c->first_kernel = t->launches[c->first_launch].kernel;
        c->keep = g.shared[order[k].root];
        for (size_t i = 0; i < n; i++)
            if (long_lived[i] && find(g.parent, i) == order[k].root)
                c->alloc_count++;
        c->allocs = calloc(c->alloc_count + 1, sizeof *c->allocs);
        if (!c->allocs)
            goto out;
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            if (long_lived[i] && find(g.parent, i) == order[k].root) {
                c->allocs[m++] = i;
                c->bytes += t->allocs[i].bytes;
                comp_of[i] = k;
            }
    }
    size_t s = 0;
    for (size_t i = 0; i < g.len; i++) {
        size_t k = comp_of[g.str[i]];
        if (plan->components[k].keep)
            continue;
        if (s == 0 || plan->sequence[s - 1] != k)
            plan->sequence[s++] = k;
    }
    s = shortest_period(plan->sequence, s);
    if (s > 1 && plan->sequence[s - 1] == plan->sequence[0])
        s--;
    plan->sequence_length = s;
    rc = 0;
out:
    if (rc)
        record_plan_free(plan);
    free(first_launch), free(uses), free(long_lived), free(comp_of), free(order), free(bytes);
    grouping_free(&g);
    return rc;
}

void record_plan_free(struct record_plan *plan) {
    if (plan->components)
        for (size_t k = 0; k < plan->component_count; k++)
            free(plan->components[k].allocs);
    free(plan->components);
    free(plan->sequence);
    memset(plan, 0, sizeof *plan);
}

/* ---- the writer --------------------------------------------------------------------- */

static void write_size(FILE *out, uint64_t bytes) {
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB"};
    if (bytes < 1024) {
        fprintf(out, "%llu B", (unsigned long long)bytes);
        return;
    }
    double v = (double)bytes / 1024.0;
    int u = 0;
    while (v >= 1024.0 && u < 3) {
        v /= 1024.0;
        u++;
    }
    fprintf(out, "%.1f %s", v, units[u]);
}

int record_write_ranges(FILE *out, const uint64_t *ordinals, size_t count) {
    for (size_t i = 0; i < count;) {
        size_t j = i;
        while (j + 1 < count && ordinals[j + 1] == ordinals[j] + 1)
            j++;
        fprintf(out, "%s%llu", i ? ", " : "", (unsigned long long)ordinals[i]);
        if (j > i)
            fprintf(out, "-%llu", (unsigned long long)ordinals[j]);
        i = j + 1;
    }
    return ferror(out) ? -1 : 0;
}

/* A kernel name in a comment: printable ASCII only, so no name can end the comment. */
static void write_name(FILE *out, const char *name) {
    int n = 0;
    for (; *name && n < 120; name++, n++)
        fputc(*name >= 0x20 && *name < 0x7f ? *name : '?', out);
    if (*name)
        fputs("...", out);
}

/* config/README.md: a line holds at most 197 characters once its comment is cut. */
#define CONFIG_LINE_MAX 197

struct range {
    uint64_t first, last;
};

/* The ordinals as ranges; returns how many (out has room for count). */
static size_t to_ranges(const uint64_t *ordinals, size_t count, struct range *out) {
    size_t n = 0;
    for (size_t i = 0; i < count; i++) {
        if (n && out[n - 1].last + 1 == ordinals[i])
            out[n - 1].last = ordinals[i];
        else
            out[n++] = (struct range){ordinals[i], ordinals[i]};
    }
    return n;
}

static size_t range_text_length(const struct range *r, size_t n) {
    size_t len = 0;
    char buf[48];
    for (size_t i = 0; i < n; i++)
        len +=
            (size_t)(r[i].first == r[i].last
                         ? snprintf(buf, sizeof buf, "%s%llu", i ? ", " : "",
                                    (unsigned long long)r[i].first)
                         : snprintf(buf, sizeof buf, "%s%llu-%llu", i ? ", " : "",
                                    (unsigned long long)r[i].first, (unsigned long long)r[i].last));
    return len;
}

static void print_ranges(FILE *out, const struct range *r, size_t n) {
    for (size_t i = 0; i < n; i++) {
        fprintf(out, "%s%llu", i ? ", " : "", (unsigned long long)r[i].first);
        if (r[i].last != r[i].first)
            fprintf(out, "-%llu", (unsigned long long)r[i].last);
    }
}

/* Is any ordinal in [first, last] owned by a component other than k? */
static bool gap_taken(const struct record_plan *p, size_t k, uint64_t first, uint64_t last) {
    for (size_t j = 0; j < p->component_count; j++) {
        const struct record_component *c = &p->components[j];
        if (j == k)
            continue;
        /* ordinals are ascending: bisect for the first >= first */
        size_t lo = 0, hi = c->alloc_count;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (c->allocs[mid] < first)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo < c->alloc_count && c->allocs[lo] <= last)
            return true;
    }
    return false;
}

/*
 * `allocs = ...` for component k within CONFIG_LINE_MAX: when the ranges do not fit,
 * the smallest gaps that no other component owns are bridged (the component then also
 * owns the activations allocated there); if that is not enough, the ranges that do not
 * fit are listed in a comment instead (the runtime's first-use rule still gives them to
 * the component active when they are first used). Returns -1 out of memory.
 */
static int write_allocs(FILE *out, const struct record_plan *p, size_t k) {
    const struct record_component *c = &p->components[k];
    struct range *r = malloc((c->alloc_count + 1) * sizeof *r);
    if (!r)
        return -1;
    size_t n = to_ranges(c->allocs, c->alloc_count, r);
    const size_t room = CONFIG_LINE_MAX - strlen("allocs = ");
    uint64_t bridged = 0;
    while (n > 1 && range_text_length(r, n) > room) {
        size_t best = SIZE_MAX; /* the smallest free gap, between r[best] and r[best+1] */
        for (size_t i = 0; i + 1 < n; i++) {
            uint64_t gap = r[i + 1].first - r[i].last - 1;
            if ((best == SIZE_MAX || gap < r[best + 1].first - r[best].last - 1) &&
                !gap_taken(p, k, r[i].last + 1, r[i + 1].first - 1))
                best = i;
        }
        if (best == SIZE_MAX)
            break;
        bridged += r[best + 1].first - r[best].last - 1;
        r[best].last = r[best + 1].last;
        memmove(r + best + 1, r + best + 2, (n - best - 2) * sizeof *r);
        n--;
    }
    /* what still does not fit: keep the widest ranges on the line, ascending */
    bool *listed = calloc(n + 1, sizeof *listed);
    struct range *line = malloc((n + 1) * sizeof *line), *rest = malloc((n + 1) * sizeof *rest);
    if (!listed || !line || !rest) {
        free(listed), free(line), free(rest), free(r);
        return -1;
    }
    size_t used = 0;
    for (;;) {
        size_t best = SIZE_MAX;
        for (size_t i = 0; i < n; i++)
            if (!listed[i] &&
                (best == SIZE_MAX || r[i].last - r[i].first > r[best].last - r[best].first))
                best = i;
        if (best == SIZE_MAX)
            break;
        size_t cost = range_text_length(&r[best], 1) + (used ? 2 : 0);
        if (used && used + cost > room)
            break;
        listed[best] = true;
        used += cost;
    }
    size_t on_line = 0, left = 0;
    for (size_t i = 0; i < n; i++) {
        if (listed[i])
            line[on_line++] = r[i];
        else
            rest[left++] = r[i];
    }
    if (bridged)
        fprintf(out,
                "# allocs also covers %llu allocation%s between its own, so that the "
                "line fits\n",
                (unsigned long long)bridged, bridged == 1 ? "" : "s");
    if (left) {
        fprintf(out, "# not listed (longer than a line): ");
        print_ranges(out, rest, left);
        fputc('\n', out);
    }
    fprintf(out, "allocs = ");
    print_ranges(out, line, on_line);
    fputc('\n', out);
    free(listed), free(line), free(rest);
    free(r);
    return 0;
}

/* The sequence line, or a shorter stand-in when it does not fit in a line. */
static void write_sequence(FILE *out, const struct record_plan *p) {
    size_t len = strlen("sequence = ");
    for (size_t i = 0; i < p->sequence_length; i++)
        len += strlen(p->components[p->sequence[i]].name) + (i ? 4 : 0);
    if (len <= CONFIG_LINE_MAX) {
        fprintf(out, "sequence = ");
        for (size_t i = 0; i < p->sequence_length; i++)
            fprintf(out, "%s%s", i ? " -> " : "", p->components[p->sequence[i]].name);
        fprintf(out, "\npolicy = sequence\nprefetch = 1\n");
        return;
    }
    fprintf(out, "# the order found is longer than a line holds:\n#  ");
    for (size_t i = 0, col = 3; i < p->sequence_length; i++) {
        const char *name = p->components[p->sequence[i]].name;
        if (col + strlen(name) + 4 > 96) {
            fprintf(out, "\n#  ");
            col = 3;
        }
        col += (size_t)fprintf(out, "%s%s", i ? " -> " : "", name);
    }
    /* each sequenced component once, in order of first use, if that fits */
    len = strlen("sequence = ");
    size_t listed = 0;
    for (size_t k = 0; k < p->component_count; k++)
        if (!p->components[k].keep) {
            len += strlen(p->components[k].name) + (listed ? 4 : 0);
            listed++;
        }
    if (len <= CONFIG_LINE_MAX && listed > 0) {
        fprintf(out, "\n# written below with each component once, in order of first use\n");
        fprintf(out, "sequence = ");
        listed = 0;
        for (size_t k = 0; k < p->component_count; k++)
            if (!p->components[k].keep)
                fprintf(out, "%s%s", listed++ ? " -> " : "", p->components[k].name);
        fprintf(out, "\npolicy = sequence\nprefetch = 1\n");
    } else {
        fprintf(out, "\n# too many components for a sequence line: least recently used first\n");
        fprintf(out, "policy = lru\n");
    }
}

int record_plan_write(FILE *out, const struct record_plan *p) {
    fprintf(out, "# offload.conf written by liboffload record mode (OFFLOAD_MODE=record).\n");
    fprintf(out, "# %zu launches, %zu components. Rename the components and edit the\n",
            p->launch_count, p->component_count);
    fprintf(out, "# sequence as you like (keys: config/README.md), then run with\n");
    fprintf(out, "# OFFLOAD_CONFIG=this-file. Left out (unowned, LRU): %zu short-lived\n",
            p->short_lived_count);
    fprintf(out, "# allocations (");
    write_size(out, p->short_lived_bytes);
    fprintf(out, ") and %zu never used by a launch (", p->unused_count);
    write_size(out, p->unused_bytes);
    fprintf(out, ").\n\n[offload]\n");
    if (p->sequence_length)
        write_sequence(out, p);
    else if (p->component_count)
        fprintf(out, "# no sequence: every component found is used throughout\n");
    else
        fprintf(out, "# no sequence: no component found\n");
    for (size_t k = 0; k < p->component_count; k++) {
        const struct record_component *c = &p->components[k];
        fprintf(out, "\n# ");
        write_size(out, c->bytes);
        fprintf(out, " in %zu allocation%s, first used by launch %zu", c->alloc_count,
                c->alloc_count == 1 ? "" : "s", c->first_launch);
        if (c->first_kernel) {
            fprintf(out, " (kernel ");
            write_name(out, c->first_kernel);
            fputc(')', out);
        }
        fputc('\n', out);
        if (c->keep)
            fprintf(out, "# used inside several components: kept resident (keep = no lets it "
                         "move, at the cost of demand restores)\n");
        fprintf(out, "[component %s]\n", c->name);
        if (write_allocs(out, p, k))
            return -1;
        if (c->keep)
            fprintf(out, "keep = yes\n");
    }
    return ferror(out) ? -1 : 0;
}
