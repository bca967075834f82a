/*
 * merge.c — steps 3 to 5 of record mode's grouping rule (written at the top of group.c):
 * workspaces are set aside, straight runs of the use string merge like basic blocks, and
 * interruptions or shared allocations are set aside, then join the group they interrupted
 * or become shared; grouping_settle runs them with step 6 (stages.c) in between.
 */
#include "runtime/record/grouping.h"

#include "base/vec.h"

#include <stdlib.h>
#include <string.h>

/* ---- step 4: straight runs merge ---------------------------------------------------------- */

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

/* Drops every tail occurrence (each directly follows its predecessor's), joining its
 * visit to the one before. */
static void drop_tails(struct grouping *g) {
    for (size_t x = 0; x < g->n; x++)
        if (g->tail[x])
            g->parent[x] = g->pred[x];
    size_t k = 0;
    for (size_t i = 0; i < g->len; i++) {
        if (g->tail[g->str[i]]) {
            g->last[k - 1] = g->last[i]; /* k > 0: a tail always follows its head */
            continue;
        }
        g->str[k] = grouping_find(g->parent, g->str[i]);
        g->first[k] = g->first[i];
        g->last[k++] = g->last[i];
    }
    g->len = k;
}

/* One pass of step 4. Returns true if anything merged. */
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
    if (any)
        drop_tails(g);
    return any;
}

static void refresh_bytes(struct grouping *g) {
    for (size_t i = 0; i < g->n; i++)
        g->gbytes[i] = 0;
    for (size_t i = 0; i < g->n; i++)
        if (g->long_lived[i])
            g->gbytes[grouping_find(g->parent, i)] += g->t->allocs[i].bytes;
}

/* ---- step 5: interruptions and shared allocations ----------------------------------------- */

/* Step 5's test for group h (not a loop itself): how many bytes does taking it out of the
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

/* Above this much work in total, step 5 stops (about a second): the result then has more,
 * smaller components, still a valid config. */
#define HUB_WORK_LIMIT 400000000ull

/* How many candidates step 5 weighs once one qualifies. */
#define CANDIDATES_WEIGHED 16

struct candidate {
    size_t occurrences, group;
};

static int by_occurrences(const void *a, const void *b) {
    const struct candidate *x = a, *y = b;
    if (x->occurrences != y->occurrences)
        return x->occurrences > y->occurrences ? -1 : 1;
    return x->group < y->group ? -1 : x->group > y->group;
}

/* Step 5's candidates: the groups in the string that never follow themselves (not
 * loops), most frequent first. *out is malloc'ed. */
static int list_candidates(struct grouping *g, struct candidate **out, size_t *count) {
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
    struct candidate *c = malloc((g->n + 1) * sizeof *c);
    if (!c)
        return -1;
    size_t n = 0;
    for (size_t x = 0; x < g->n; x++)
        if (occurrences[x] > 0 && !loops[x])
            c[n++] = (struct candidate){occurrences[x], x};
    qsort(c, n, sizeof *c, by_occurrences);
    *out = c;
    *count = n;
    return 0;
}

/* Candidates are weighed most frequent first (a buffer read by every launch is both the
 * most frequent and the one bringing most together) until CANDIDATES_WEIGHED have been
 * weighed and one qualifies; the best of those wins (ties: the more frequent). Each
 * weighing adds (allocations + string length) to *work; past HUB_WORK_LIMIT it stops.
 * Returns the winner or LINK_NONE. */
static size_t best_candidate(struct grouping *g, const struct candidate *c, size_t count,
                             unsigned long long *work) {
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
    return h;
}

/* Records h's neighbours at each occurrence, then drops it from the string; p h p where
 * the two visits of p are in consecutive launches (p read by launches i and i+1, h by
 * both) becomes one visit of p, while loop iterations (U x U) stay apart. A workspace
 * (`background`) is no event of the program: p h p is always one visit of p. */
static int remove_hub(struct grouping *g, size_t h, bool background) {
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
            join_next = after == before && (background || g->first[i + 1] <= g->last[k - 1] + 1);
        }
        if (VEC_PUSH(g->seen, g->seen_count, g->seen_cap, ((struct hub_seen){h, before, after})))
            return -1;
    }
    g->len = k;
    g->hub[h] = true;
    g->hub_order[g->hub_count++] = h;
    return 0;
}

/* Step 5: finds the group whose removal brings the most together and sets it aside. */
static int set_aside_one(struct grouping *g, bool *found, unsigned long long *work) {
    *found = false;
    struct candidate *c;
    size_t count;
    if (list_candidates(g, &c, &count))
        return -1;
    size_t h = best_candidate(g, c, count, work);
    free(c);
    if (h == LINK_NONE)
        return 0;
    *found = true;
    return remove_hub(g, h, false);
}

/* Adds group root r to the sorted set roots (no duplicates). 0, or -1 out of memory. */
static int add_root(size_t **roots, size_t *count, size_t *cap, size_t r) {
    size_t i = *count;
    for (size_t j = 0; j < *count; j++)
        if ((*roots)[j] == r)
            return 0;
    if (VEC_RESERVE(*roots, *cap, *count + 1))
        return -1;
    while (i > 0 && (*roots)[i - 1] > r) {
        (*roots)[i] = (*roots)[i - 1];
        i--;
    }
    (*roots)[i] = r;
    (*count)++;
    return 0;
}

/* The groups next to h's occurrences at its removal, as they are now: a sorted set,
 * malloc'ed into *roots (NULL when empty). */
static int hub_neighbours(struct grouping *g, size_t h, size_t **roots, size_t *count) {
    size_t cap = 0;
    *roots = NULL;
    *count = 0;
    for (size_t s = 0; s < g->seen_count; s++) {
        if (g->seen[s].hub != h)
            continue;
        size_t ends[2] = {g->seen[s].before, g->seen[s].after};
        for (int e = 0; e < 2; e++)
            if (ends[e] < g->n && add_root(roots, count, &cap, grouping_find(g->parent, ends[e]))) {
                free(*roots);
                return -1;
            }
    }
    return 0;
}

/* The one neighbour group that sits next to every occurrence of h (h interrupted it),
 * or LINK_NONE. */
static size_t hub_host(struct grouping *g, size_t h, const size_t *roots, size_t count) {
    for (size_t j = 0; j < count; j++) {
        bool everywhere = true;
        for (size_t s = 0; s < g->seen_count && everywhere; s++) {
            if (g->seen[s].hub != h)
                continue;
            size_t b = g->seen[s].before, a = g->seen[s].after;
            everywhere = (b < g->n && grouping_find(g->parent, b) == roots[j]) ||
                         (a < g->n && grouping_find(g->parent, a) == roots[j]);
        }
        if (everywhere)
            return roots[j];
    }
    return LINK_NONE;
}

/* The neighbour sets of the shared hubs resolved so far, by removal index. */
struct shared_sets {
    size_t **roots;
    size_t *count;
};

/* Hub k is shared: it joins an earlier-resolved shared group with the same neighbours. */
static void join_same_neighbours(struct grouping *g, const struct shared_sets *sets, size_t k,
                                 const size_t *roots, size_t count) {
    size_t h = g->hub_order[k];
    g->shared[h] = true;
    for (size_t j = k + 1; j < g->hub_count; j++) {
        size_t o = g->hub_order[j];
        if (sets->roots[j] && sets->count[j] == count && grouping_find(g->parent, o) == o &&
            memcmp(sets->roots[j], roots, count * sizeof *roots) == 0) {
            g->parent[h] = o;
            return;
        }
    }
}

/* Resolves set-aside groups, last removed first: join the one group they sat inside, or
 * become shared. Shared groups with the same neighbour set are merged. */
static int resolve_hubs(struct grouping *g) {
    struct shared_sets sets = {calloc(g->hub_count + 1, sizeof *sets.roots),
                               calloc(g->hub_count + 1, sizeof *sets.count)};
    int rc = sets.roots && sets.count ? 0 : -1;
    for (size_t k = g->hub_count; rc == 0 && k-- > 0;) {
        size_t h = g->hub_order[k], *roots, count;
        rc = hub_neighbours(g, h, &roots, &count);
        if (rc)
            break;
        size_t host = hub_host(g, h, roots, count);
        if (host != LINK_NONE) {
            g->parent[h] = host;
            free(roots);
            continue;
        }
        join_same_neighbours(g, &sets, k, roots, count);
        sets.roots[k] = roots;
        sets.count[k] = count;
    }
    for (size_t k = 0; sets.roots && k < g->hub_count; k++)
        free(sets.roots[k]);
    free(sets.roots), free(sets.count);
    return rc;
}

/* ---- step 3: workspaces ------------------------------------------------------------------ */

/* An allocation referenced by more than half of all launches. */
static bool is_workspace(const struct grouping *g, size_t a) {
    return g->long_lived[a] && g->uses[a] * 2 > g->t->launch_count;
}

/* Step 3: workspaces are set aside before anything merges, unless nothing else would be
 * left in the string. */
static int set_aside_workspaces(struct grouping *g) {
    bool others = false;
    for (size_t a = 0; a < g->n && !others; a++)
        others = g->long_lived[a] && !is_workspace(g, a);
    for (size_t a = 0; others && a < g->n; a++)
        if (is_workspace(g, a) && remove_hub(g, a, true))
            return -1;
    return 0;
}

/* Steps 4 and 5 to a fixed point. */
static int settle_runs(struct grouping *g, unsigned long long *work) {
    for (;;) {
        while (merge_pass(g))
            ;
        refresh_bytes(g);
        bool found;
        if (set_aside_one(g, &found, work))
            return -1;
        if (!found)
            return 0;
    }
}

/* Step 3, steps 4 and 5 to a fixed point, step 6 (stages.c) and, if it merged anything,
 * steps 4 and 5 again; then the set-aside groups find their place. */
int grouping_settle(struct grouping *g) {
    unsigned long long work = 0;
    bool changed = false;
    if (set_aside_workspaces(g) || settle_runs(g, &work) || grouping_stages(g, &changed))
        return -1;
    if (changed && settle_runs(g, &work))
        return -1;
    return resolve_hubs(g);
}
