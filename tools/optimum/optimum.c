/*
 * optimum.c — the bytes a clairvoyant policy moves to the device for a recorded trace of
 * uses under a budget: farthest next use with sizes (Belady's rule, variable sizes).
 *
 *   jq -r '.uses.records[] | @tsv' trace.json | optimum --budget BYTES
 *
 * Input: one use a line, "call ordinal bytes mapped component" (whitespace-separated), in
 * the order the program made them: the "uses" of liboffload's trace file (OFFLOAD_TRACE,
 * runtime/report/trace.h). Uses with one call number belong to one launch, copy or
 * memset and must be on the device together. Output: one JSON object on stdout (README).
 *
 * The rule, per call in order: each allocation the call uses that is not resident is
 * brought in (its `bytes` count as moved to the device, except at its first use: that is
 * its allocation, nothing to copy); while the resident `mapped` bytes exceed the budget,
 * the resident allocation whose next use is farthest (never used again: farthest of all)
 * and which this call does not use is evicted. Evictions cost nothing here: the figure is
 * bytes to the device.
 *
 * --ahead BYTES: the same with a look-ahead, the bound for a policy that restores ahead
 * (liboffload streams this way): after each call, the allocations the next calls use are
 * brought in too, nearest first, as long as those brought in ahead and not yet used hold
 * at most BYTES; they are not victims until their use. The room they hold is taken from
 * what could stay, which is what restoring ahead costs.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NEVER UINT64_MAX /* next use of an allocation never used again */
#define COMPONENTS_MAX 64

struct use {
    uint64_t call, ordinal, bytes, mapped;
    int component;
    uint64_t next; /* index of the next use of the same ordinal, NEVER if none */
};

/* One allocation seen in the trace (dense index by first appearance). */
struct alloc {
    uint64_t ordinal, bytes, mapped, next_use;
    int component;
    bool seen, resident;
    bool ahead;       /* brought in ahead of its use (--ahead), not used since */
    uint64_t protect; /* the call that uses it now: not a victim during that call */
};

struct trace {
    struct use *uses;
    size_t n, cap;
};

struct result {
    uint64_t to_device, misses, first_uses, hits, evictions, overcommitted_calls;
    uint64_t peak_resident;
    uint64_t
        component_bytes[COMPONENTS_MAX + 1]; /* [COMPONENTS_MAX]: component -1 or out of range */
};

static int read_trace(FILE *in, struct trace *t) {
    char line[256];
    unsigned long lineno = 0;
    while (fgets(line, sizeof line, in)) {
        lineno++;
        struct use u = {0};
        int n = sscanf(line, "%" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %d", &u.call,
                       &u.ordinal, &u.bytes, &u.mapped, &u.component);
        if (line[strspn(line, " \t\r\n")] == '\0')
            continue; /* a blank line */
        if (n != 5) {
            fprintf(stderr, "optimum: line %lu: expected call ordinal bytes mapped component\n",
                    lineno);
            return -1;
        }
        if (t->n == t->cap) {
            size_t cap = t->cap ? t->cap * 2 : 1024;
            struct use *p = realloc(t->uses, cap * sizeof *p);
            if (!p)
                return -1;
            t->uses = p;
            t->cap = cap;
        }
        t->uses[t->n++] = u;
    }
    return 0;
}

static int cmp_ordinal(const void *a, const void *b) {
    uint64_t x = ((const struct alloc *)a)->ordinal, y = ((const struct alloc *)b)->ordinal;
    return (x > y) - (x < y);
}

static struct alloc *find(struct alloc *allocs, size_t count, uint64_t ordinal) {
    struct alloc key = {.ordinal = ordinal};
    return bsearch(&key, allocs, count, sizeof *allocs, cmp_ordinal);
}

/* The distinct allocations, sorted by ordinal; and each use's next use (a backward scan
 * keeping the latest index seen per allocation). */
static struct alloc *index_allocations(struct trace *t, size_t *count) {
    struct alloc *a = calloc(t->n ? t->n : 1, sizeof *a);
    if (!a)
        return NULL;
    for (size_t i = 0; i < t->n; i++)
        a[i].ordinal = t->uses[i].ordinal;
    qsort(a, t->n, sizeof *a, cmp_ordinal);
    size_t k = 0;
    for (size_t i = 0; i < t->n; i++)
        if (k == 0 || a[k - 1].ordinal != a[i].ordinal)
            a[k++] = a[i];
    for (size_t i = 0; i < k; i++)
        a[i].next_use = NEVER;
    for (size_t i = t->n; i-- > 0;) {
        struct alloc *x = find(a, k, t->uses[i].ordinal);
        t->uses[i].next = x->next_use;
        x->next_use = i;
    }
    *count = k;
    return a;
}

/* The resident allocation to evict: farthest next use, not used by this call. */
/* The resident allocation to evict: farthest next use, not used by this call; one brought
 * in ahead only when no other may go. */
static struct alloc *victim(struct alloc *allocs, size_t count, uint64_t call) {
    struct alloc *best = NULL;
    for (size_t i = 0; i < count; i++) {
        struct alloc *x = &allocs[i];
        if (x->resident && x->protect != call &&
            (!best || (best->ahead && !x->ahead) ||
             (best->ahead == x->ahead && x->next_use > best->next_use)))
            best = x;
    }
    return best;
}

/* Bytes that may go without touching what was brought in ahead. */
static uint64_t evictable_bytes(const struct alloc *allocs, size_t count) {
    uint64_t sum = 0;
    for (size_t i = 0; i < count; i++)
        if (allocs[i].resident && !allocs[i].ahead)
            sum += allocs[i].mapped;
    return sum;
}

static void count_component(struct result *r, int component, uint64_t bytes) {
    r->component_bytes[component >= 0 && component < COMPONENTS_MAX ? component : COMPONENTS_MAX] +=
        bytes;
}

/* Brings u's allocation in, evicting farthest-next-use ones for the room. */
static void bring_in(const struct use *u, struct alloc *x, struct alloc *allocs, size_t count,
                     uint64_t budget, struct result *r, uint64_t *resident) {
    if (x->seen) {
        r->misses++;
        r->to_device += u->bytes;
        count_component(r, u->component, u->bytes);
    } else {
        r->first_uses++;
        x->seen = true;
    }
    x->mapped = u->mapped;
    x->resident = true;
    *resident += x->mapped;
    while (*resident > budget) {
        struct alloc *v = victim(allocs, count, u->call + 1);
        if (!v) { /* this call alone needs more than the budget */
            r->overcommitted_calls++;
            break;
        }
        v->resident = false;
        *resident -= v->mapped;
        r->evictions++;
    }
}

/* How many calls ahead it looks at most (liboffload restores at most 8 positions
 * ahead, components.h STREAM_AHEAD_MAX). */
#define AHEAD_CALLS 8

/* --ahead: the allocations the calls from uses[from] on use, nearest first, brought in
 * while those brought in ahead and not yet used hold at most `ahead` bytes. One the
 * trace has not used yet (its first use allocates it) cannot be brought in before. */
static void bring_in_ahead(const struct trace *t, size_t from, struct alloc *allocs, size_t count,
                           uint64_t budget, uint64_t ahead, struct result *r, uint64_t *resident) {
    uint64_t held = 0;
    size_t calls = 0;
    for (size_t k = from; k < t->n && held < ahead; k++) {
        const struct use *u = &t->uses[k];
        if ((k == from || u->call != t->uses[k - 1].call) && ++calls > AHEAD_CALLS)
            return;
        struct alloc *x = find(allocs, count, u->ordinal);
        if (x->resident && x->ahead) {
            held += x->mapped;
        } else if (!x->resident && x->seen) {
            if (held + u->mapped > ahead ||
                *resident + u->mapped > budget + evictable_bytes(allocs, count))
                return;
            held += u->mapped;
            x->next_use = k; /* its next use is this one */
            bring_in(u, x, allocs, count, budget, r, resident);
            x->ahead = true;
        }
    }
}

static void replay(const struct trace *t, struct alloc *allocs, size_t count, uint64_t budget,
                   uint64_t ahead, struct result *r) {
    uint64_t resident = 0;
    for (size_t i = 0, end; i < t->n; i = end) {
        uint64_t call = t->uses[i].call;
        /* everything this call uses is protected before any of it is brought in; call
         * numbers start at 1, protect 0 means none */
        for (end = i; end < t->n && t->uses[end].call == call; end++)
            find(allocs, count, t->uses[end].ordinal)->protect = call + 1;
        for (size_t k = i; k < end; k++) {
            const struct use *u = &t->uses[k];
            struct alloc *x = find(allocs, count, u->ordinal);
            x->next_use = u->next;
            x->bytes = u->bytes;
            x->component = u->component;
            x->ahead = false; /* used now: a victim again after this call */
            if (x->resident)
                r->hits++;
            else
                bring_in(u, x, allocs, count, budget, r, &resident);
        }
        if (ahead)
            bring_in_ahead(t, end, allocs, count, budget, ahead, r, &resident);
        if (resident > r->peak_resident)
            r->peak_resident = resident;
    }
}

static void print_result(const struct result *r, uint64_t budget, uint64_t ahead, size_t uses,
                         size_t allocs) {
    printf("{\"budget_bytes\": %" PRIu64 ", \"ahead_bytes\": %" PRIu64
           ", \"uses\": %zu, \"allocations\": %zu, "
           "\"bytes_to_device\": %" PRIu64 ", \"restores\": %" PRIu64 ", \"first_uses\": %" PRIu64
           ", \"hits\": %" PRIu64 ", \"evictions\": %" PRIu64 ", \"peak_resident_bytes\": %" PRIu64
           ", \"overcommitted_calls\": %" PRIu64 ", \"component_bytes_to_device\": {",
           budget, ahead, uses, allocs, r->to_device, r->misses, r->first_uses, r->hits,
           r->evictions, r->peak_resident, r->overcommitted_calls);
    bool first = true;
    for (int c = 0; c <= COMPONENTS_MAX; c++) {
        if (!r->component_bytes[c])
            continue;
        printf("%s\"%d\": %" PRIu64, first ? "" : ", ", c == COMPONENTS_MAX ? -1 : c,
               r->component_bytes[c]);
        first = false;
    }
    printf("}}\n");
}

static int usage(void) {
    fprintf(stderr, "usage: optimum --budget BYTES [--ahead BYTES] < uses.tsv\n"
                    "  uses.tsv: jq -r '.uses.records[] | @tsv' trace.json (see README.md)\n");
    return 2;
}

int main(int argc, char **argv) {
    uint64_t budget = 0, ahead = 0;
    bool have_budget = false;
    for (int i = 1; i < argc; i++) {
        char *end;
        if (strcmp(argv[i], "--budget") == 0 && i + 1 < argc) {
            budget = strtoull(argv[++i], &end, 10);
            have_budget = *argv[i] && !*end;
        } else if (strcmp(argv[i], "--ahead") == 0 && i + 1 < argc) {
            ahead = strtoull(argv[++i], &end, 10);
            if (!*argv[i] || *end)
                return usage();
        } else {
            return usage();
        }
    }
    if (!have_budget)
        return usage();
    struct trace t = {0};
    if (read_trace(stdin, &t)) {
        free(t.uses);
        return 1;
    }
    size_t count = 0;
    struct alloc *allocs = index_allocations(&t, &count);
    if (!allocs) {
        fprintf(stderr, "optimum: out of memory\n");
        free(t.uses);
        return 1;
    }
    struct result r = {0};
    replay(&t, allocs, count, budget, ahead, &r);
    print_result(&r, budget, ahead, t.n, count);
    free(allocs);
    free(t.uses);
    return 0;
}
