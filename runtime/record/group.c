/*
 * group.c — record mode's grouping: from a trace to components and a sequence.
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
 * 3. Workspaces: an allocation referenced by more than half of all launches (a caching
 *    allocator's segment of small activations, a buffer every kernel reads) is no event of
 *    the program's control flow. It is set aside before anything merges, the visits on
 *    either side of it joined (p W p is one visit of p), unless nothing else would be left;
 *    at the end it joins the one group next to all its occurrences if there is one (step
 *    5's rule), else it is shared (keep = yes), whatever its size.
 *
 * 4. Straight runs merge, like basic blocks of a control-flow graph: X and Y become one
 *    group when every occurrence of X is immediately followed by Y and every occurrence
 *    of Y immediately preceded by X (the start and the end of the string count as
 *    neighbours). Repeated to a fixed point, this turns the string above into
 *        T U U ... U V
 *    A loop (U U) never merges with what enters or leaves it, because its head is then
 *    preceded by two different groups; so T, U and V stay apart. A program that runs its
 *    pipeline twice gives T U..U V T U..U V: the same three groups.
 *
 * 5. Interruptions and shared allocations: a group H that is not a loop (never repeats
 *    immediately) is set aside when taking it out of the string brings together groups
 *    at least twice its size: neighbours that then merge (T1 H T2 ... UA H UB; a weight
 *    read twice inside one layer: T1 W b W T2; a workspace read by every launch), or
 *    consecutive iterations of a loop it interrupts (B H B H B). The candidate bringing
 *    the most bytes together goes first, then step 4 resumes. Taking H out joins the
 *    visits of a group around it that were in consecutive launches (p H p: one visit),
 *    never loop iterations. When everything is settled, H joins the group that sits next
 *    to every one of its occurrences if there is one (it was an interruption of that
 *    group), else it is "shared": shared groups with the same neighbours become one
 *    component written with keep = yes. The size condition keeps a whole component that
 *    runs between two others (a -> b -> a -> c) from being taken for an interruption.
 *
 * 6. Stages (stages.c), for what steps 4 and 5 cannot undo: a caching allocator puts many
 *    tensors in one segment, so the use string revisits a segment inside one unet step
 *    (3 A 7 B C 3 14 7 B 7 B 7), and one stage's activations land in another stage's
 *    segments. Launches are compared whole, the kernel and its long-lived references. The
 *    cycle is the shortest period of the launch sequence when it repeats at least twice,
 *    else all of it; the loop is the stretch of the cycle repeating immediately over the
 *    most launches (the unet's steps, launch for launch: exact whatever the segments
 *    hold). A loop whose iteration is mostly an inner loop (a whole pipeline run repeated
 *    after a prologue) is folded like the cycle, and the inner loop taken. The cycle then
 *    reads BEFORE, LOOP, AFTER. A group's home is the stretch with most of the launches
 *    referencing it (ties: the earlier); it is large when at least an eighth of the
 *    largest group of its home. Then:
 *      - the loop is one stage: its large groups become one;
 *      - before and after it, large groups whose spans interleave (14 16 17 16 17 14)
 *        become one; ones read one after the other (A, then C) stay apart;
 *      - a large group met in another stage's stretch, anywhere in the loop, or before and
 *        after it between two of that stretch's own large groups, is a touch (a unet
 *        segment holding a vae activation): dropped from the string, the runtime restores
 *        it on demand; it is no visit, so the sequence stays T U V;
 *      - small groups are left to step 5: a buffer shared by stages stays shared.
 *    Steps 4 and 5 then resume. Where each allocation is one tensor (the default traces)
 *    steps 4 and 5 have already made every stretch one group and nothing changes.
 *
 * 7. Components are the groups, named c0, c1, ... by their first use; a group in the
 *    string by its first visit (touches before it, step 6, do not count). The sequence is
 *    the string of groups with immediate repeats collapsed, cut to its shortest period (a
 *    program running its pipeline several times gives one cycle) and with a last element
 *    equal to the first dropped (it is cyclic). Shared (keep) components are not in it.
 *
 * On `pipeline --like torch --scale 0.25` this gives the text encoder's two 20 MiB
 * segments, the unet's eleven, the vae's two with the unet's last (which holds vae weights
 * the vae reads more often than the unet its own), and two keep components: the 2 MiB
 * segment of small tensors (read by 190 of 194 launches) and the vae segment holding the
 * unet's activations (every unet and vae launch). Three stages in the sequence.
 *
 * Limits: a component used by a single pass with nothing distinguishing it from its
 * neighbours (no loop, no return) merges with them: a pipeline whose every stage runs once
 * and straight is one component (one unet step is not a loop; two are; with segments, one
 * step leaves step 6 no loop and the stages in pieces). An interruption of a loop is
 * recognised from three iterations on (B H B H B). On very long strings (HUB_WORK_LIMIT)
 * step 5 stops early: more, smaller components, still a valid config. Step 6 sees one loop
 * per cycle (another one is part of a straight stretch), takes a loop over whole stages
 * after a prologue (x, then a -> b -> a -> c repeated) for one stage, and weighs loops up
 * to LOOP_WORK_LIMIT launch comparisons. It owns a segment by use, not by what it holds
 * (the trace cannot tell weights from activations): a segment holding one stage's weights
 * that another stage's activations use more goes to the latter, and one met at the edge
 * of another stage's stretch stays a visit there. So at --scale 0.1, 0.15, 0.25 and 1 the
 * reference pipeline gives three stages in its sequence, at 0.35 and 0.5 (where the vae
 * reads text-encoder and unet segments more than their own stages) extra components.
 * Whether a large buffer used by several stages is kept or owned by one is decided by
 * size alone (an eighth of the stage).
 */
#include "runtime/record/grouping.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int grouping_init(struct grouping *g, const struct record_trace *t) {
    size_t n = t->alloc_count, refs = t->ref_count;
    *g = (struct grouping){.t = t, .n = n};
    g->long_lived = calloc(n + 1, sizeof *g->long_lived);
    g->first_launch = calloc(n + 1, sizeof *g->first_launch);
    g->uses = calloc(n + 1, sizeof *g->uses);
    g->parent = calloc(n + 1, sizeof *g->parent);
    g->succ = calloc(n + 1, sizeof *g->succ);
    g->pred = calloc(n + 1, sizeof *g->pred);
    g->gbytes = calloc(n + 1, sizeof *g->gbytes);
    g->tail = calloc(n + 1, sizeof *g->tail);
    g->hub = calloc(n + 1, sizeof *g->hub);
    g->shared = calloc(n + 1, sizeof *g->shared);
    g->hub_order = calloc(n + 1, sizeof *g->hub_order);
    g->comp_of = calloc(n + 1, sizeof *g->comp_of);
    g->str = calloc(refs + 1, sizeof *g->str);
    g->first = calloc(refs + 1, sizeof *g->first);
    g->last = calloc(refs + 1, sizeof *g->last);
    bool ok = g->long_lived && g->first_launch && g->uses && g->parent && g->succ && g->pred &&
              g->gbytes && g->tail && g->hub && g->shared && g->hub_order && g->comp_of && g->str &&
              g->first && g->last;
    return ok ? 0 : -1;
}

static void grouping_free(struct grouping *g) {
    free(g->long_lived), free(g->first_launch), free(g->uses), free(g->parent);
    free(g->succ), free(g->pred), free(g->gbytes), free(g->tail), free(g->hub);
    free(g->shared), free(g->hub_order), free(g->comp_of), free(g->str), free(g->first);
    free(g->last), free(g->seen);
}

/* ---- step 1: long-lived allocations ----------------------------------------------------- */

static void count_uses(struct grouping *g) {
    const struct record_trace *t = g->t;
    for (size_t i = 0; i < g->n; i++)
        g->first_launch[i] = SIZE_MAX;
    for (size_t l = 0; l < t->launch_count; l++) {
        const struct record_launch *la = &t->launches[l];
        for (size_t r = 0; r < la->ref_count; r++) {
            size_t a = (size_t)t->refs[la->first_ref + r];
            if (g->first_launch[a] == SIZE_MAX)
                g->first_launch[a] = l;
            g->uses[a]++;
        }
    }
}

/* How many launches came at or after `tick` (ticks increase: bisection). */
static size_t launches_since(const struct record_trace *t, uint64_t tick) {
    size_t lo = 0, hi = t->launch_count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (t->launches[mid].tick < tick)
            lo = mid + 1;
        else
            hi = mid;
    }
    return t->launch_count - lo;
}

/* Never freed and alive for more than half of the launches, or alive during every one. */
static bool lives_long(const struct record_trace *t, const struct record_alloc *al) {
    size_t L = t->launch_count;
    if (al->free_tick == RECORD_NEVER)
        return launches_since(t, al->alloc_tick) * 2 > L;
    return L && al->free_tick > t->launches[L - 1].tick && al->alloc_tick < t->launches[0].tick;
}

/* Marks the long-lived allocations; counts the others for the file's header. */
static void classify(struct grouping *g, struct record_plan *plan) {
    for (size_t i = 0; i < g->n; i++) {
        const struct record_alloc *al = &g->t->allocs[i];
        g->parent[i] = i;
        if (al->bytes == 0 && al->free_tick == al->alloc_tick) {
            /* a skipped ordinal: nothing to report */
        } else if (g->uses[i] && lives_long(g->t, al)) {
            g->long_lived[i] = true;
        } else if (g->uses[i]) {
            plan->short_lived_count++;
            plan->short_lived_bytes += al->bytes;
        } else {
            plan->unused_count++;
            plan->unused_bytes += al->bytes;
        }
    }
}

/* ---- step 2: the use string -------------------------------------------------------------- */

static void build_use_string(struct grouping *g) {
    const struct record_trace *t = g->t;
    for (size_t l = 0; l < t->launch_count; l++) {
        const struct record_launch *la = &t->launches[l];
        for (size_t r = 0; r < la->ref_count; r++) {
            size_t a = (size_t)t->refs[la->first_ref + r];
            if (!g->long_lived[a])
                continue;
            if (g->len > 0 && g->str[g->len - 1] == a) {
                g->last[g->len - 1] = l;
                continue;
            }
            g->first[g->len] = g->last[g->len] = l;
            g->str[g->len++] = a;
        }
    }
}

/* ---- step 7: components and the sequence --------------------------------------------------- */

struct comp_order {
    size_t root, first_launch, first_ordinal;
    size_t named_at; /* what names it: its first visit in the string, else its first use */
};

static int by_first_use(const void *a, const void *b) {
    const struct comp_order *x = a, *y = b;
    if (x->named_at != y->named_at)
        return x->named_at < y->named_at ? -1 : 1;
    return x->first_ordinal < y->first_ordinal ? -1 : x->first_ordinal > y->first_ordinal;
}

/* The final groups into order[], sorted by first use, a group in the string by its first
 * visit (step 6's touches of a stage's segments before it runs do not name it); returns
 * how many. first_visit: scratch, one entry per ordinal. */
static size_t order_groups(struct grouping *g, struct comp_order *order, size_t *first_visit) {
    for (size_t i = 0; i < g->n; i++)
        first_visit[i] = SIZE_MAX;
    for (size_t i = g->len; i-- > 0;)
        first_visit[g->str[i]] = g->first[i];
    size_t count = 0;
    for (size_t i = 0; i < g->n; i++) {
        if (!g->long_lived[i])
            continue;
        size_t r = grouping_find(g->parent, i), k = 0;
        while (k < count && order[k].root != r)
            k++;
        if (k == count)
            order[count++] = (struct comp_order){r, g->first_launch[i], i, 0};
        else if (g->first_launch[i] < order[k].first_launch)
            order[k].first_launch = g->first_launch[i];
    }
    for (size_t k = 0; k < count; k++)
        order[k].named_at = first_visit[order[k].root] != SIZE_MAX ? first_visit[order[k].root]
                                                                   : order[k].first_launch;
    qsort(order, count, sizeof *order, by_first_use);
    return count;
}

/* Component k of the plan: the long-lived allocations of group `root`. */
static int fill_component(struct grouping *g, struct record_plan *plan, size_t k,
                          const struct comp_order *o) {
    struct record_component *c = &plan->components[k];
    snprintf(c->name, sizeof c->name, "c%zu", k);
    c->first_launch = o->first_launch;
    c->first_kernel = g->t->launches[c->first_launch].kernel;
    c->keep = g->shared[o->root];
    for (size_t i = 0; i < g->n; i++)
        if (g->long_lived[i] && grouping_find(g->parent, i) == o->root)
            c->alloc_count++;
    c->allocs = calloc(c->alloc_count + 1, sizeof *c->allocs);
    if (!c->allocs)
        return -1;
    size_t m = 0;
    for (size_t i = 0; i < g->n; i++)
        if (g->long_lived[i] && grouping_find(g->parent, i) == o->root) {
            c->allocs[m++] = i;
            c->bytes += g->t->allocs[i].bytes;
            g->comp_of[i] = k;
        }
    return 0;
}

static int collect_components(struct grouping *g, struct record_plan *plan) {
    struct comp_order *order = calloc(g->n + 1, sizeof *order);
    size_t *first_visit = calloc(g->n + 1, sizeof *first_visit);
    if (!order || !first_visit) {
        free(order), free(first_visit);
        return -1;
    }
    size_t count = order_groups(g, order, first_visit);
    free(first_visit);
    plan->components = calloc(count + 1, sizeof *plan->components);
    int rc = plan->components ? 0 : -1;
    if (rc == 0)
        plan->component_count = count;
    for (size_t k = 0; rc == 0 && k < count; k++)
        rc = fill_component(g, plan, k, &order[k]);
    free(order);
    return rc;
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

/* The string of components, keep ones left out, repeats collapsed, one cycle. */
static int build_sequence(const struct grouping *g, struct record_plan *plan) {
    plan->sequence = calloc(g->len + 1, sizeof *plan->sequence);
    if (!plan->sequence)
        return -1;
    size_t s = 0;
    for (size_t i = 0; i < g->len; i++) {
        size_t k = g->comp_of[g->str[i]];
        if (plan->components[k].keep)
            continue;
        if (s == 0 || plan->sequence[s - 1] != k)
            plan->sequence[s++] = k;
    }
    s = shortest_period(plan->sequence, s);
    if (s > 1 && plan->sequence[s - 1] == plan->sequence[0])
        s--;
    plan->sequence_length = s;
    return 0;
}

int record_plan_build(const struct record_trace *t, struct record_plan *plan) {
    memset(plan, 0, sizeof *plan);
    plan->launch_count = t->launch_count;
    struct grouping g;
    int rc = grouping_init(&g, t);
    if (rc == 0) {
        count_uses(&g);
        classify(&g, plan);
        build_use_string(&g);
        rc = grouping_settle(&g);
    }
    if (rc == 0)
        rc = collect_components(&g, plan);
    if (rc == 0)
        rc = build_sequence(&g, plan);
    if (rc == 0)
        rc = grouping_learn_orders(&g, plan);
    if (rc)
        record_plan_free(plan);
    grouping_free(&g);
    return rc;
}

void record_plan_free(struct record_plan *plan) {
    if (plan->components)
        for (size_t k = 0; k < plan->component_count; k++) {
            free(plan->components[k].allocs);
            free(plan->components[k].order);
        }
    free(plan->components);
    free(plan->sequence);
    memset(plan, 0, sizeof *plan);
}
