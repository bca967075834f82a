/*
 * plot.c — `offload plot TRACE.json [-o FILE.svg]`: the timeline as one self-contained
 * SVG (no script, no font or style sheet from elsewhere): the resident bytes per
 * component stacked under the budget, then one row per track of the trace (components,
 * copy streams, stalls, launch turns) with every span drawn at its time, nested spans
 * inset, and each one's details in a tooltip (<title>).
 *
 * It reads any Chrome trace-event JSON made of "X" (complete) spans, "M" thread names
 * and "C" counters, which is what liboffload writes (runtime/report/trace.h).
 */
#include "cli/cli.h"

#include "base/atomic_file.h"
#include "base/strbuf.h"
#include "cli/json.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define WIDTH 1280
#define LABEL_W 250
#define PLOT_X (LABEL_W + 10)
#define PLOT_W (WIDTH - PLOT_X - 20)
#define ROW_H 22
#define CHART_H 140

struct span {
    double ts, dur; /* microseconds */
    const struct json *event;
    int depth;
};

struct track {
    long tid;
    long sort;
    const char *name;
    struct span *spans;
    size_t count, cap;
};

struct plot {
    struct track *tracks;
    size_t ntracks;
    const struct json **samples; /* "C" events of the first counter name */
    size_t nsamples;
    const char *counter;
    double t0, t1;
    double elapsed; /* otherData.elapsed_us, 0 if absent */
    const char *process;
    struct strbuf *svg;
};

/* Text inside an element or an attribute. */
static void put_text(struct strbuf *o, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '&':
            strbuf_put(o, "&amp;");
            break;
        case '<':
            strbuf_put(o, "&lt;");
            break;
        case '>':
            strbuf_put(o, "&gt;");
            break;
        case '"':
            strbuf_put(o, "&quot;");
            break;
        default:
            strbuf_put(o, "%c", *s);
        }
    }
}

/* --- reading the trace -------------------------------------------------------------- */

static struct track *track_for(struct plot *p, long tid) {
    for (size_t i = 0; i < p->ntracks; i++)
        if (p->tracks[i].tid == tid)
            return &p->tracks[i];
    struct track *t = realloc(p->tracks, (p->ntracks + 1) * sizeof *t);
    if (!t)
        return NULL;
    p->tracks = t;
    t = &p->tracks[p->ntracks++];
    *t = (struct track){.tid = tid, .sort = tid};
    return t;
}

static bool add_span(struct track *t, const struct json *e) {
    if (t->count == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        struct span *s = realloc(t->spans, cap * sizeof *s);
        if (!s)
            return false;
        t->spans = s;
        t->cap = cap;
    }
    t->spans[t->count++] = (struct span){json_double(e, "ts", 0), json_double(e, "dur", 0), e, 0};
    return true;
}

static void widen(struct plot *p, double a, double b) {
    if (a < p->t0)
        p->t0 = a;
    if (b > p->t1)
        p->t1 = b;
}

static void read_metadata(struct plot *p, const struct json *e, const char *name) {
    const struct json *args = json_get(e, "args");
    if (strcmp(name, "process_name") == 0) {
        p->process = json_str(args, "name", p->process);
        return;
    }
    struct track *t = track_for(p, (long)json_double(e, "tid", 0));
    if (!t)
        return;
    if (strcmp(name, "thread_name") == 0)
        t->name = json_str(args, "name", t->name);
    else if (strcmp(name, "thread_sort_index") == 0)
        t->sort = (long)json_double(args, "sort_index", (double)t->sort);
}

static int read_events(struct plot *p, const struct json *events) {
    p->t0 = INFINITY;
    p->t1 = -INFINITY;
    p->samples = calloc(events->count + 1, sizeof *p->samples);
    if (!p->samples)
        return -1;
    for (size_t i = 0; i < events->count; i++) {
        const struct json *e = &events->items[i];
        const char *ph = json_str(e, "ph", ""), *name = json_str(e, "name", "");
        if (strcmp(ph, "M") == 0) {
            read_metadata(p, e, name);
        } else if (strcmp(ph, "X") == 0) {
            struct track *t = track_for(p, (long)json_double(e, "tid", 0));
            if (!t || !add_span(t, e))
                return -1;
            widen(p, t->spans[t->count - 1].ts,
                  t->spans[t->count - 1].ts + t->spans[t->count - 1].dur);
        } else if (strcmp(ph, "C") == 0) {
            if (!p->counter)
                p->counter = name;
            if (strcmp(p->counter, name) == 0) {
                p->samples[p->nsamples++] = e;
                double ts = json_double(e, "ts", 0);
                widen(p, ts, ts);
            }
        }
    }
    if (p->elapsed > 0) /* the run's whole length, from liboffload's trace */
        widen(p, 0, p->elapsed);
    if (p->t0 > p->t1)
        p->t0 = 0, p->t1 = 1;
    if (p->t1 - p->t0 < 1)
        p->t1 = p->t0 + 1;
    return 0;
}

static int by_sort(const void *a, const void *b) {
    const struct track *x = a, *y = b;
    return x->sort < y->sort ? -1 : x->sort > y->sort ? 1 : (x->tid > y->tid) - (x->tid < y->tid);
}

static int by_start(const void *a, const void *b) {
    const struct span *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    return x->dur > y->dur ? -1 : x->dur < y->dur; /* the enclosing one first */
}

/* Depth of each span: how many spans on its track enclose it. */
static void nest(struct track *t) {
    qsort(t->spans, t->count, sizeof *t->spans, by_start);
    double ends[16];
    int depth = 0;
    for (size_t i = 0; i < t->count; i++) {
        struct span *s = &t->spans[i];
        while (depth > 0 && ends[depth - 1] <= s->ts)
            depth--;
        s->depth = depth;
        if (depth < 16)
            ends[depth++] = s->ts + s->dur;
    }
}

/* --- drawing ------------------------------------------------------------------------ */

static const char *const palette[] = {"#7e57c2", "#26a69a", "#ec407a", "#8d6e63",
                                      "#5c6bc0", "#9ccc65", "#ffa726", "#78909c"};

static double x_of(const struct plot *p, double ts) {
    return PLOT_X + (ts - p->t0) / (p->t1 - p->t0) * PLOT_W;
}

/* The colour of component `name`: its place among the counter's series, else a hash. */
static const char *component_colour(const struct plot *p, const char *name) {
    const struct json *args = p->nsamples ? json_get(p->samples[0], "args") : NULL;
    for (size_t i = 0; args && i < args->count; i++)
        if (strcmp(args->keys[i], name) == 0)
            return palette[i % 8];
    unsigned h = 0;
    for (; *name; name++)
        h = h * 31 + (unsigned char)*name;
    return palette[h % 8];
}

static const char *span_colour(const struct plot *p, const struct json *e) {
    const char *cat = json_str(e, "cat", ""), *name = json_str(e, "name", "");
    static const char *const states[][2] = {{"resident", "#43a047"},
                                            {"evicting", "#fb8c00"},
                                            {"evicted", "#cfd8dc"},
                                            {"restoring", "#1e88e5"}};
    for (size_t i = 0; i < 4; i++)
        if (strcmp(name, states[i][0]) == 0)
            return states[i][1];
    if (strcmp(cat, "evict") == 0)
        return "#ef6c00";
    if (strcmp(cat, "restore") == 0)
        return "#1565c0";
    if (strcmp(cat, "stall") == 0)
        return "#e53935";
    if (strcmp(cat, "turn") == 0)
        return component_colour(p, name);
    return "#90a4ae";
}

static void put_time(struct strbuf *o, double us) {
    if (us >= 1e6)
        strbuf_put(o, "%.3f s", us / 1e6);
    else if (us >= 1e3)
        strbuf_put(o, "%.3f ms", us / 1e3);
    else
        strbuf_put(o, "%.3f us", us);
}

static void put_tooltip(struct plot *p, const struct span *s) {
    struct strbuf *o = p->svg;
    strbuf_put(o, "<title>");
    put_text(o, json_str(s->event, "name", ""));
    strbuf_put(o, ": at ");
    put_time(o, s->ts - p->t0);
    strbuf_put(o, " for ");
    put_time(o, s->dur);
    const struct json *args = json_get(s->event, "args");
    for (size_t i = 0; args && i < args->count; i++) {
        const struct json *v = &args->items[i];
        strbuf_put(o, "&#10;");
        put_text(o, args->keys[i]);
        if (v->type == JSON_STRING) {
            strbuf_put(o, ": ");
            put_text(o, v->string);
        } else if (v->type == JSON_NUMBER) {
            strbuf_put(o, ": %.15g", v->number);
        }
    }
    strbuf_put(o, "</title>");
}

static void draw_track(struct plot *p, const struct track *t, double y, size_t row) {
    struct strbuf *o = p->svg;
    if (row % 2 == 0)
        strbuf_put(o, "<rect x=\"%d\" y=\"%.1f\" width=\"%d\" height=\"%d\" fill=\"#f5f5f5\"/>\n",
                   PLOT_X, y, PLOT_W, ROW_H);
    strbuf_put(o, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">", LABEL_W, y + ROW_H - 7);
    char fallback[32];
    snprintf(fallback, sizeof fallback, "track %ld", t->tid);
    put_text(o, t->name ? t->name : fallback);
    strbuf_put(o, "</text>\n");
    for (size_t i = 0; i < t->count; i++) {
        const struct span *s = &t->spans[i];
        double x = x_of(p, s->ts), w = x_of(p, s->ts + s->dur) - x;
        double inset = 2 + 4.0 * (s->depth < 4 ? s->depth : 4);
        strbuf_put(o,
                   "<rect x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" height=\"%.1f\" fill=\"%s\" "
                   "stroke=\"white\" stroke-width=\"0.3\">",
                   x, y + inset, w < 0.5 ? 0.5 : w, ROW_H - 2 * inset, span_colour(p, s->event));
        put_tooltip(p, s);
        strbuf_put(o, "</rect>\n");
    }
}

/* The counter: each series stacked on the ones before it, as steps; the budget dashed. */
static void draw_chart(struct plot *p, double y, uint64_t budget) {
    struct strbuf *o = p->svg;
    const struct json *first = json_get(p->samples[0], "args");
    size_t series = first ? first->count : 0;
    double top = (double)budget;
    for (size_t i = 0; i < p->nsamples; i++) {
        const struct json *a = json_get(p->samples[i], "args");
        double sum = 0;
        for (size_t k = 0; a && k < a->count; k++)
            sum += a->items[k].number;
        if (sum > top)
            top = sum;
    }
    if (top <= 0)
        top = 1;
    strbuf_put(o, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">", LABEL_W, y + 14);
    put_text(o, p->counter);
    strbuf_put(
        o, "</text>\n<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\" fill=\"#666\">%.1f MiB</text>\n",
        LABEL_W, y + 30, top / 1048576.0);
    strbuf_put(o,
               "<rect x=\"%d\" y=\"%.1f\" width=\"%d\" height=\"%d\" fill=\"none\" "
               "stroke=\"#bbb\"/>\n",
               PLOT_X, y, PLOT_W, CHART_H);
    for (size_t k = series; k-- > 0;) { /* the topmost band first, the lower ones over it */
        strbuf_put(o, "<path fill=\"%s\" fill-opacity=\"0.8\" d=\"M%.2f %.1f", palette[k % 8],
                   x_of(p, p->t0), y + CHART_H);
        double last_y = y + CHART_H;
        for (size_t i = 0; i < p->nsamples; i++) {
            const struct json *a = json_get(p->samples[i], "args");
            double sum = 0;
            for (size_t j = 0; a && j <= k && j < a->count; j++)
                sum += a->items[j].number;
            double sy = y + CHART_H - sum / top * CHART_H;
            double sx = x_of(p, json_double(p->samples[i], "ts", 0));
            strbuf_put(o, " L%.2f %.1f L%.2f %.1f", sx, last_y, sx, sy);
            last_y = sy;
        }
        strbuf_put(o, " L%.2f %.1f L%.2f %.1f Z\"><title>", x_of(p, p->t1), last_y, x_of(p, p->t1),
                   y + CHART_H);
        put_text(o, first->keys[k]);
        strbuf_put(o, "</title></path>\n");
    }
    if (budget) {
        double by = y + CHART_H - (double)budget / top * CHART_H;
        strbuf_put(o,
                   "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#d32f2f\" "
                   "stroke-dasharray=\"6 4\"/>\n<text x=\"%d\" y=\"%.1f\" fill=\"#d32f2f\">budget "
                   "%.1f MiB</text>\n",
                   PLOT_X, by, PLOT_X + PLOT_W, by, PLOT_X + 4, by - 3, (double)budget / 1048576.0);
    }
}

/* Ticks at 1, 2 or 5 times a power of ten, about eight of them, labelled in one unit. */
static void draw_axis(struct plot *p, double y) {
    struct strbuf *o = p->svg;
    double range = p->t1 - p->t0, raw = range / 8, step = pow(10, floor(log10(raw)));
    if (raw / step >= 5)
        step *= 5;
    else if (raw / step >= 2)
        step *= 2;
    const char *unit = range >= 2e6 ? "s" : range >= 2e3 ? "ms" : "us";
    double per = range >= 2e6 ? 1e6 : range >= 2e3 ? 1e3 : 1;
    strbuf_put(o, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#333\"/>\n", PLOT_X,
               y, PLOT_X + PLOT_W, y);
    for (double t = 0; t <= range + step / 1e6; t += step) {
        double x = x_of(p, p->t0 + t);
        strbuf_put(o, "<line x1=\"%.2f\" y1=\"%.1f\" x2=\"%.2f\" y2=\"%.1f\" stroke=\"#333\"/>\n",
                   x, y, x, y + 5);
        strbuf_put(o, "<text x=\"%.2f\" y=\"%.1f\" text-anchor=\"middle\">%g %s</text>\n", x,
                   y + 18, t / per, unit);
    }
}

static double legend_item(struct strbuf *o, double x, double y, const char *colour,
                          const char *what) {
    strbuf_put(o,
               "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"12\" fill=\"%s\"/>"
               "<text x=\"%.1f\" y=\"%.1f\">",
               x, y, colour, x + 16, y + 11);
    put_text(o, what);
    strbuf_put(o, "</text>\n");
    return x + 16 + 7 * (double)strlen(what) + 18;
}

/* The span colours, then each component's (its band in the chart, its launch turns). */
static void draw_legend(struct plot *p, double y) {
    static const char *const items[][2] = {
        {"resident", "#43a047"},  {"evicting", "#fb8c00"},      {"evicted", "#cfd8dc"},
        {"restoring", "#1e88e5"}, {"eviction copy", "#ef6c00"}, {"restore copy", "#1565c0"},
        {"stall", "#e53935"}};
    double x = PLOT_X;
    for (size_t i = 0; i < sizeof items / sizeof items[0]; i++)
        x = legend_item(p->svg, x, y, items[i][1], items[i][0]);
    const struct json *args = p->nsamples ? json_get(p->samples[0], "args") : NULL;
    x = PLOT_X;
    for (size_t i = 0; args && i < args->count && x < WIDTH - 100; i++)
        x = legend_item(p->svg, x, y + 20, palette[i % 8], args->keys[i]);
}

static void draw(struct plot *p, const struct json *trace) {
    struct strbuf *o = p->svg;
    const struct json *other = json_get(trace, "otherData");
    uint64_t budget = json_u64(other, "budget_bytes", 0);
    double y = 60;
    double height = y + (p->nsamples ? CHART_H + 20 : 0) + (double)p->ntracks * ROW_H + 100;
    strbuf_put(o,
               "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%.0f\" "
               "viewBox=\"0 0 %d %.0f\" font-family=\"sans-serif\" font-size=\"12\">\n"
               "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
               WIDTH, height, WIDTH, height);
    strbuf_put(o, "<text x=\"10\" y=\"24\" font-size=\"16\" font-weight=\"bold\">");
    put_text(o, p->process ? p->process : "timeline");
    strbuf_put(o, "</text>\n<text x=\"10\" y=\"44\" fill=\"#555\">");
    put_time(o, p->t1 - p->t0);
    strbuf_put(o, " of host time");
    if (budget)
        strbuf_put(o, ", budget %.1f MiB", (double)budget / 1048576.0);
    uint64_t dropped = json_u64(other, "dropped_spans", 0);
    if (dropped)
        strbuf_put(o, ", the oldest %" PRIu64 " records dropped (ring full)", dropped);
    size_t spans = 0;
    for (size_t i = 0; i < p->ntracks; i++)
        spans += p->tracks[i].count;
    strbuf_put(o, ", %zu spans%s</text>\n", spans, spans ? "" : " (nothing was recorded)");
    if (p->nsamples) {
        draw_chart(p, y, budget);
        y += CHART_H + 20;
    }
    for (size_t i = 0; i < p->ntracks; i++)
        draw_track(p, &p->tracks[i], y + (double)i * ROW_H, i);
    y += (double)p->ntracks * ROW_H + 4;
    draw_axis(p, y);
    draw_legend(p, y + 34);
    strbuf_put(o, "</svg>\n");
}

static void plot_help(void) {
    printf("usage: offload plot TRACE.json [-o FILE.svg]\n"
           "\n"
           "Renders a timeline written by offload run --trace (OFFLOAD_TRACE, `trace =`) as\n"
           "one self-contained SVG, for any browser or image viewer: the resident bytes of\n"
           "each component stacked under the budget, then a row per component (resident,\n"
           "evicting, evicted, restoring), per copy stream (every eviction and restore),\n"
           "the stalls and the launches per component turn. Hover a span for its details.\n"
           "\n"
           "  -o FILE.svg   where the picture goes (default: TRACE with .svg for .json)\n"
           "  --help        this text\n"
           "\n"
           "For zooming, open TRACE.json itself in https://ui.perfetto.dev or chrome://tracing.\n");
}

static void default_output(const char *in, char *out, size_t len) {
    size_t n = strlen(in);
    if (n > 5 && strcmp(in + n - 5, ".json") == 0)
        snprintf(out, len, "%.*s.svg", (int)(n - 5), in);
    else
        snprintf(out, len, "%s.svg", in);
}

int cmd_plot(int argc, char **argv) {
    const char *in = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            plot_help();
            return 0;
        } else if (strcmp(argv[i], "-o") == 0 || strcmp(argv[i], "--output") == 0) {
            if (++i == argc)
                return usage_error("plot", "%s needs a value", argv[i - 1]);
            out = argv[i];
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return usage_error("plot", "unknown option '%s'", argv[i]);
        } else if (in) {
            return usage_error("plot", "one trace at a time");
        } else {
            in = argv[i];
        }
    }
    if (!in)
        return usage_error("plot", "missing the trace file");
    char path[4096];
    if (!out) {
        default_output(in, path, sizeof path);
        out = path;
    }
    char *text = json_read_file(in);
    if (!text) {
        fprintf(stderr, "offload plot: cannot read %s: %s\n", in, strerror(errno));
        return 1;
    }
    char err[128];
    struct json *trace = json_parse(text, err, sizeof err);
    free(text);
    const struct json *events = json_get(trace, "traceEvents");
    if (!events || events->type != JSON_ARRAY) {
        fprintf(stderr, "offload plot: %s: %s\n", in,
                trace ? "not a trace (no traceEvents array)" : err);
        json_free(trace);
        return 1;
    }
    struct strbuf svg;
    strbuf_init(&svg, 1 << 16);
    struct plot p = {.svg = &svg,
                     .elapsed = json_double(json_get(trace, "otherData"), "elapsed_us", 0)};
    int rc = svg.data && read_events(&p, events) == 0 ? 0 : 1;
    if (rc == 0) {
        qsort(p.tracks, p.ntracks, sizeof *p.tracks, by_sort);
        for (size_t i = 0; i < p.ntracks; i++)
            nest(&p.tracks[i]);
        draw(&p, trace);
        if (svg.failed)
            rc = 1;
    }
    if (rc != 0)
        fprintf(stderr, "offload plot: out of memory\n");
    else if (atomic_file_write(out, svg.data, svg.len) != 0)
        rc = 1, fprintf(stderr, "offload plot: cannot write %s: %s\n", out, strerror(errno));
    else
        printf("%s\n", out);
    for (size_t i = 0; i < p.ntracks; i++)
        free(p.tracks[i].spans);
    free(p.tracks);
    free(p.samples);
    free(svg.data);
    json_free(trace);
    return rc;
}
