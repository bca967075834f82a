/*
 * write.c — the plan as a ready-to-edit offload.conf (record_plan_write), and at exit the
 * recorded file itself (record_finish). Every line the writer emits fits the config's line
 * limit, so the file always parses; what does not fit goes into comments.
 */
#include "runtime/record/record.h"

#include "base/atomic_file.h"
#include "base/log.h"
#include "runtime/state.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* config/README.md: a line holds at most 197 characters once its comment is cut. */
#define CONFIG_LINE_MAX 197

/* Where a long sequence comment wraps. */
#define COMMENT_WIDTH 96

/* How much of a kernel name a comment quotes. */
#define KERNEL_NAME_SHOWN 120

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
    for (; *name && n < KERNEL_NAME_SHOWN; name++, n++)
        fputc(*name >= 0x20 && *name < 0x7f ? *name : '?', out);
    if (*name)
        fputs("...", out);
}

/* ---- allocs = ... ----------------------------------------------------------------------- */

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

static uint64_t gap_after(const struct range *r, size_t i) {
    return r[i + 1].first - r[i].last - 1;
}

/* While the ranges of component k do not fit in `room`, bridges the smallest gap between
 * two of them that no other component owns (the component then also owns the activations
 * allocated there). Returns how many ordinals were bridged; *n shrinks. */
static uint64_t bridge_gaps(const struct record_plan *p, size_t k, struct range *r, size_t *n,
                            size_t room) {
    uint64_t bridged = 0;
    while (*n > 1 && range_text_length(r, *n) > room) {
        size_t best = SIZE_MAX; /* the smallest free gap, between r[best] and r[best+1] */
        for (size_t i = 0; i + 1 < *n; i++)
            if ((best == SIZE_MAX || gap_after(r, i) < gap_after(r, best)) &&
                !gap_taken(p, k, r[i].last + 1, r[i + 1].first - 1))
                best = i;
        if (best == SIZE_MAX)
            break;
        bridged += gap_after(r, best);
        r[best].last = r[best + 1].last;
        memmove(r + best + 1, r + best + 2, (*n - best - 2) * sizeof *r);
        (*n)--;
    }
    return bridged;
}

/* Marks in listed[] the widest ranges that fit in `room` together, widest first. */
static void choose_listed(const struct range *r, size_t n, size_t room, bool *listed) {
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
}

/* The ranges split by listed[] into those on the line and the rest, both ascending;
 * returns how many are on the line. */
static size_t print_allocs(FILE *out, const struct range *r, size_t n, const bool *listed,
                           struct range *line, struct range *rest, uint64_t bridged) {
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
    return on_line;
}

/* ---- order = ... ------------------------------------------------------------------------ */

static bool in_ranges(const struct range *line, size_t n, uint64_t ordinal) {
    for (size_t i = 0; i < n; i++)
        if (line[i].first <= ordinal && ordinal <= line[i].last)
            return true;
    return false;
}

/* Does ordinal continue run r (one step up or down from its end, in its direction)? */
static bool continues(const struct range *r, uint64_t ordinal) {
    bool up = r->last + 1 == ordinal && r->last != UINT64_MAX;
    bool down = r->last == ordinal + 1;
    if (r->first == r->last)
        return up || down;
    return r->first < r->last ? up : down;
}

/* The order as runs of consecutive ordinals, up (first < last) or down; only the ordinals
 * the allocs line lists. Returns how many runs (runs has room for count). */
static size_t to_runs(const uint64_t *order, size_t count, const struct range *line,
                      size_t line_count, struct range *runs, size_t *kept) {
    size_t n = 0;
    *kept = 0;
    for (size_t i = 0; i < count; i++) {
        if (!in_ranges(line, line_count, order[i]))
            continue;
        (*kept)++;
        if (n && continues(&runs[n - 1], order[i]))
            runs[n - 1].last = order[i];
        else
            runs[n++] = (struct range){order[i], order[i]};
    }
    return n;
}

static uint64_t run_length(const struct range *r) {
    return (r->first <= r->last ? r->last - r->first : r->first - r->last) + 1;
}

/* `order = ...`: as many runs as a line holds; a comment says when that is not all. */
static int write_order(FILE *out, const struct record_component *c, const struct range *line,
                       size_t line_count) {
    struct range *runs = malloc((c->order_count + 1) * sizeof *runs);
    if (!runs)
        return -1;
    size_t kept, n = to_runs(c->order, c->order_count, line, line_count, runs, &kept);
    const size_t room = CONFIG_LINE_MAX - strlen("order = ");
    size_t fit = 0, used = 0;
    uint64_t listed = 0;
    for (; fit < n; fit++) {
        size_t cost = range_text_length(&runs[fit], 1) + (fit ? 2 : 0);
        if (used + cost > room)
            break;
        used += cost;
        listed += run_length(&runs[fit]);
    }
    if (listed < c->order_count)
        fprintf(out,
                "# order lists %llu of its %zu allocations (a line holds no more); the rest "
                "are placed as the program first uses them\n",
                (unsigned long long)listed, c->order_count);
    if (fit) {
        fprintf(out, "order = ");
        print_ranges(out, runs, fit);
        fputc('\n', out);
    }
    free(runs);
    return 0;
}

/*
 * `allocs = ...` for component k within CONFIG_LINE_MAX, then its `order = ...`. When the
 * ranges do not fit, the smallest gaps that no other component owns are bridged; if that
 * is not enough, the ranges that do not fit are listed in a comment instead (the
 * runtime's first-use rule still gives them to the component active when they are first
 * used), and the order leaves them out too. Returns -1 out of memory.
 */
static int write_allocs_and_order(FILE *out, const struct record_plan *p, size_t k) {
    const struct record_component *c = &p->components[k];
    const size_t room = CONFIG_LINE_MAX - strlen("allocs = ");
    struct range *r = malloc((c->alloc_count + 1) * sizeof *r);
    struct range *line = malloc((c->alloc_count + 1) * sizeof *line);
    struct range *rest = malloc((c->alloc_count + 1) * sizeof *rest);
    bool *listed = calloc(c->alloc_count + 1, sizeof *listed);
    int rc = r && line && rest && listed ? 0 : -1;
    if (rc == 0) {
        size_t n = to_ranges(c->allocs, c->alloc_count, r);
        uint64_t bridged = bridge_gaps(p, k, r, &n, room);
        choose_listed(r, n, room, listed);
        size_t on_line = print_allocs(out, r, n, listed, line, rest, bridged);
        rc = write_order(out, c, line, on_line);
    }
    free(listed), free(line), free(rest), free(r);
    return rc;
}

/* ---- sequence = ... --------------------------------------------------------------------- */

static void write_policy(FILE *out) {
    fprintf(out, "\npolicy = sequence\nprefetch = 1\n");
}

/* The whole sequence as a comment, wrapped. */
static void comment_sequence(FILE *out, const struct record_plan *p) {
    fprintf(out, "# the order found is longer than a line holds:\n#  ");
    for (size_t i = 0, col = 3; i < p->sequence_length; i++) {
        const char *name = p->components[p->sequence[i]].name;
        if (col + strlen(name) + 4 > COMMENT_WIDTH) {
            fprintf(out, "\n#  ");
            col = 3;
        }
        col += (size_t)fprintf(out, "%s%s", i ? " -> " : "", name);
    }
}

/* Instead of a sequence too long for a line: each sequenced component once, in order of
 * first use, if that fits; else no sequence at all (LRU). */
static void write_sequence_stand_in(FILE *out, const struct record_plan *p) {
    size_t len = strlen("sequence = "), listed = 0;
    for (size_t k = 0; k < p->component_count; k++)
        if (!p->components[k].keep) {
            len += strlen(p->components[k].name) + (listed ? 4 : 0);
            listed++;
        }
    if (len > CONFIG_LINE_MAX || listed == 0) {
        fprintf(out, "\n# too many components for a sequence line: least recently used first\n");
        fprintf(out, "policy = lru\n");
        return;
    }
    fprintf(out, "\n# written below with each component once, in order of first use\n");
    fprintf(out, "sequence = ");
    listed = 0;
    for (size_t k = 0; k < p->component_count; k++)
        if (!p->components[k].keep)
            fprintf(out, "%s%s", listed++ ? " -> " : "", p->components[k].name);
    write_policy(out);
}

/* The sequence line, or a shorter stand-in when it does not fit in a line. */
static void write_sequence(FILE *out, const struct record_plan *p) {
    size_t len = strlen("sequence = ");
    for (size_t i = 0; i < p->sequence_length; i++)
        len += strlen(p->components[p->sequence[i]].name) + (i ? 4 : 0);
    if (len > CONFIG_LINE_MAX) {
        comment_sequence(out, p);
        write_sequence_stand_in(out, p);
        return;
    }
    fprintf(out, "sequence = ");
    for (size_t i = 0; i < p->sequence_length; i++)
        fprintf(out, "%s%s", i ? " -> " : "", p->components[p->sequence[i]].name);
    write_policy(out);
}

/* ---- the file ---------------------------------------------------------------------------- */

static void write_header(FILE *out, const struct record_plan *p) {
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
    fprintf(out, ").\n");
}

static int write_component(FILE *out, const struct record_plan *p, size_t k) {
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
    if (write_allocs_and_order(out, p, k))
        return -1;
    if (c->keep)
        fprintf(out, "keep = yes\n");
    return 0;
}

int record_plan_write(FILE *out, const struct record_plan *p) {
    write_header(out, p);
    fprintf(out, "\n[offload]\n");
    if (p->sequence_length)
        write_sequence(out, p);
    else if (p->component_count)
        fprintf(out, "# no sequence: every component found is used throughout\n");
    else
        fprintf(out, "# no sequence: no component found\n");
    for (size_t k = 0; k < p->component_count; k++)
        if (write_component(out, p, k))
            return -1;
    return ferror(out) ? -1 : 0;
}

/* ---- at exit ----------------------------------------------------------------------------- */

/* The plan as text in *text (malloc'ed). 0, or -1 when it could not be formatted. */
static int format_plan(const struct record_plan *plan, char **text, size_t *len) {
    *text = NULL;
    *len = 0;
    FILE *f = open_memstream(text, len);
    int bad = !f || record_plan_write(f, plan) != 0;
    if (f)
        bad |= fclose(f) != 0;
    return bad ? -1 : 0;
}

void record_finish(struct runtime *rt) {
    if (!rt->record)
        return;
    const char *path = rt->cfg.record_path[0] ? rt->cfg.record_path : "offload.recorded.conf";
    struct record_plan plan;
    if (record_plan_build(rt->record, &plan) != 0) {
        log_error("record mode: out of memory building the plan");
        return;
    }
    char *text;
    size_t len;
    if (format_plan(&plan, &text, &len) != 0)
        log_error("record mode: cannot format the recorded config");
    else if (atomic_file_write(path, text, len) != 0)
        log_error("record mode: cannot write %s: %s", path, strerror(errno));
    else
        log_warn("recorded %zu components to %s", plan.component_count, path);
    free(text);
    record_plan_free(&plan);
}
