/*
 * parse.c — the INI layer: offload.conf's text into struct config, with a
 * "PATH:LINE: message" for the first thing wrong.
 *
 * Debian's inih (libinih-dev) splits "key = value" lines and calls on_key. What it
 * cannot do as built is done by read_line, the reader we hand to ini_parse_stream:
 *   - line numbers: the handler has none (INI_HANDLER_LINENO is off in ini.h), so the
 *     reader counts the lines it hands over; inih calls on_key for a line before it
 *     asks for the next one, so p->line is always the line being handled;
 *   - section headers: inih never calls the handler for a header, so an empty or a
 *     repeated [component NAME] would be invisible. The reader handles header lines
 *     itself and hands inih a blank line in their place;
 *   - comments: '#' or ';' anywhere starts one (inih's own inline comments need a
 *     process-wide setting changed); the reader cuts them, and leading blanks, so
 *     inih's multi-line continuation never joins an indented key to the previous one;
 *   - long lines: inih's fixed buffer would split them silently; the reader rejects
 *     them by name.
 * inih's own globals (ini_allow_*, ini_max_line, ...) are never changed.
 */
#include "config/state.h"

#include "config/suggest.h"

#include <ini.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum section { SECTION_NONE, SECTION_OFFLOAD, SECTION_COMPONENT };

static const char *const component_keys[] = {"allocs", "indirect", "kernels",
                                             "keep",   "order",    "readonly"};
enum { COMPONENT_KEY_COUNT = sizeof component_keys / sizeof component_keys[0] };

#define SECTION_KEYS_MAX 16

struct parser {
    struct config_state *st;
    const char *path;
    const char *next; /* the text not handed to inih yet */
    int line;         /* the line last handed to inih */
    enum section section;
    int offload_line;                /* line of [offload], 0 until seen */
    size_t component;                /* the current [component], when SECTION_COMPONENT */
    size_t component_capacity;       /* allocated length of cfg->components */
    int key_lines[SECTION_KEYS_MAX]; /* per key of the current section: where it was set */
};

static bool is_blank(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static void trim(const char **begin, const char **end) {
    while (*begin < *end && is_blank(**begin))
        (*begin)++;
    while (*end > *begin && is_blank((*end)[-1]))
        (*end)--;
}

/* Line n of text with its comment cut and blanks trimmed, into buf. */
static void line_content(const char *text, int n, char *buf, size_t size) {
    for (int i = 1; i < n && text; i++) {
        text = strchr(text, '\n');
        if (text)
            text++;
    }
    if (!text) {
        buf[0] = '\0';
        return;
    }
    if (n == 1 && strncmp(text, "\xEF\xBB\xBF", 3) == 0)
        text += 3;
    const char *end = text;
    while (*end && *end != '\n' && *end != '#' && *end != ';')
        end++;
    trim(&text, &end);
    snprintf(buf, size, "%.*s", (int)(end - text), text);
}

/* --- section headers ------------------------------------------------------------------ */

static int add_component(struct parser *p, const char *name) {
    struct config *cfg = p->st->cfg;
    if (cfg->component_count == p->component_capacity) {
        size_t capacity = p->component_capacity ? 2 * p->component_capacity : 4;
        struct config_component *grown =
            realloc(cfg->components, capacity * sizeof *cfg->components);
        if (!grown)
            return state_fail(p->st, p->path, p->line, "out of memory");
        cfg->components = grown;
        p->component_capacity = capacity;
    }
    struct config_component *c = &cfg->components[cfg->component_count];
    memset(c, 0, sizeof *c);
    size_t length = strlen(name); /* < CONFIG_NAME_MAX: checked by value_check_name */
    memcpy(c->name, name, length + 1);
    c->line = p->line;
    c->readonly = CONFIG_READONLY_NO;
    p->component = cfg->component_count++;
    return 0;
}

/* [offload], [component NAME]: `inner` is the trimmed text between the brackets. */
static int open_section(struct parser *p, const char *inner) {
    struct config *cfg = p->st->cfg;
    char kind[256];
    const char *name = inner;
    while (*name && !is_blank(*name))
        name++;
    snprintf(kind, sizeof kind, "%.*s", (int)(name - inner), inner);
    while (is_blank(*name))
        name++;

    memset(p->key_lines, 0, sizeof p->key_lines);
    if (strcmp(kind, "offload") == 0) {
        if (*name)
            return state_fail(p->st, p->path, p->line, "section [offload] takes no name, got '%s'",
                              name);
        if (p->offload_line)
            return state_fail(p->st, p->path, p->line,
                              "duplicate section [offload] (first at line %d)", p->offload_line);
        p->offload_line = p->line;
        p->section = SECTION_OFFLOAD;
        return 0;
    }
    if (strcmp(kind, "component") == 0) {
        struct value_msg msg = {{0}};
        if (!*name)
            return state_fail(p->st, p->path, p->line,
                              "missing component name in [component] (expected [component "
                              "NAME])");
        if (value_check_name(name, &msg) < 0)
            return state_fail(p->st, p->path, p->line, "%s", msg.text);
        for (size_t i = 0; i < cfg->component_count; i++)
            if (strcmp(cfg->components[i].name, name) == 0)
                return state_fail(p->st, p->path, p->line,
                                  "duplicate component '%s' (first declared at line %d)", name,
                                  cfg->components[i].line);
        p->section = SECTION_COMPONENT;
        return add_component(p, name);
    }
    static const char *const kinds[] = {"offload", "component"};
    const char *close = suggest_closest(kind, kinds, 2);
    if (close && strcmp(close, "offload") == 0)
        return state_fail(p->st, p->path, p->line, "unknown section [%s] (did you mean [offload]?)",
                          inner);
    if (close)
        return state_fail(p->st, p->path, p->line,
                          "unknown section [%s] (did you mean [component %s]?)", inner,
                          *name ? name : "NAME");
    return state_fail(p->st, p->path, p->line,
                      "unknown section [%s] (expected [offload] or [component NAME])", inner);
}

/* --- the reader handed to inih -------------------------------------------------------- */

static char *read_line(char *buf, int size, void *stream) {
    struct parser *p = stream;
    if (p->st->failed || !*p->next)
        return NULL;
    const char *begin = p->next, *end = strchr(begin, '\n');
    if (!end)
        end = begin + strlen(begin);
    p->next = *end ? end + 1 : end;
    p->line++;
    if (p->line == 1 && strncmp(begin, "\xEF\xBB\xBF", 3) == 0) /* UTF-8 byte order mark */
        begin += 3;
    const char *stop = begin;
    while (stop < end && *stop != '#' && *stop != ';')
        stop++;
    trim(&begin, &stop);
    size_t length = (size_t)(stop - begin);
    if (size < 3 || length > (size_t)size - 3) {
        state_fail(p->st, p->path, p->line, "line longer than %d characters", size - 3);
        return NULL;
    }
    if (length && *begin == '[') {
        const char *close = memchr(begin, ']', length);
        if (!close) {
            state_fail(p->st, p->path, p->line, "unterminated section header (missing ']')");
            return NULL;
        }
        if (close + 1 != stop) {
            state_fail(p->st, p->path, p->line, "unexpected text after ']'");
            return NULL;
        }
        const char *inner = begin + 1, *inner_end = close;
        trim(&inner, &inner_end);
        char header[256];
        snprintf(header, sizeof header, "%.*s", (int)(inner_end - inner), inner);
        if (open_section(p, header) < 0)
            return NULL;
        length = 0; /* inih gets a blank line: the section is ours */
    }
    memcpy(buf, begin, length);
    buf[length] = '\n';
    buf[length + 1] = '\0';
    return buf;
}

/* --- keys ----------------------------------------------------------------------------- */

static bool is_offload_key(const char *name) {
    for (size_t i = 0; i < offload_key_count; i++)
        if (offload_keys[i].name && strcmp(offload_keys[i].name, name) == 0)
            return true;
    return false;
}

static bool is_component_key(const char *name) {
    for (size_t i = 0; i < COMPONENT_KEY_COUNT; i++)
        if (strcmp(component_keys[i], name) == 0)
            return true;
    return false;
}

/* Marks key i of the current section as set; fails on the second time. */
static int first_time(struct parser *p, size_t i, const char *name, const char *section) {
    if (p->key_lines[i])
        return state_fail(p->st, p->path, p->line,
                          "duplicate key '%s' in %s (first set at line %d)", name, section,
                          p->key_lines[i]);
    p->key_lines[i] = p->line;
    return 0;
}

static int offload_key(struct parser *p, const char *name, const char *value) {
    const char *names[SECTION_KEYS_MAX];
    size_t count = 0, i;
    for (i = 0; i < offload_key_count; i++)
        if (offload_keys[i].name)
            names[count++] = offload_keys[i].name;
    for (i = 0; i < offload_key_count; i++)
        if (offload_keys[i].name && strcmp(offload_keys[i].name, name) == 0)
            break;
    if (i == offload_key_count) {
        if (is_component_key(name))
            return state_fail(p->st, p->path, p->line,
                              "key '%s' belongs in [component NAME], not in [offload]", name);
        const char *close = suggest_closest(name, names, count);
        if (close)
            return state_fail(p->st, p->path, p->line,
                              "unknown key '%s' in [offload] (did you mean '%s'?)", name, close);
        return state_fail(p->st, p->path, p->line,
                          "unknown key '%s' in [offload] (expected sequence, policy, budget, "
                          "prefetch, min_size, log, stats, trace, record, mode or fingerprint)",
                          name);
    }
    if (first_time(p, i, name, "[offload]") < 0)
        return -1;
    char origin[CONFIG_ORIGIN_MAX];
    snprintf(origin, sizeof origin, "%s:%d", p->path, p->line);
    struct value_msg msg = {{0}};
    if (offload_keys[i].apply(p->st, value, origin, &msg) < 0)
        return state_fail(p->st, p->path, p->line, "%s", msg.text);
    return 0;
}

static int component_key(struct parser *p, const char *name, const char *value) {
    struct config_component *c = &p->st->cfg->components[p->component];
    char section[CONFIG_NAME_MAX + 16];
    snprintf(section, sizeof section, "[component %s]", c->name);
    size_t i = 0;
    while (i < COMPONENT_KEY_COUNT && strcmp(component_keys[i], name) != 0)
        i++;
    if (i == COMPONENT_KEY_COUNT) {
        if (is_offload_key(name))
            return state_fail(p->st, p->path, p->line, "key '%s' belongs in [offload], not in %s",
                              name, section);
        const char *close = suggest_closest(name, component_keys, COMPONENT_KEY_COUNT);
        if (close)
            return state_fail(p->st, p->path, p->line,
                              "unknown key '%s' in %s (did you mean '%s'?)", name, section, close);
        return state_fail(
            p->st, p->path, p->line,
            "unknown key '%s' in %s (expected allocs, indirect, kernels, keep, order or readonly)",
            name, section);
    }
    if (first_time(p, i, name, section) < 0)
        return -1;
    struct value_msg msg = {{0}};
    int rc = 0, v;
    switch (i) {
    case 0:
        rc = value_parse_ranges(value, &c->allocs, &c->alloc_range_count, &msg);
        c->allocs_line = p->line;
        break;
    case 1:
        rc = value_parse_globs(value, &c->indirect, &c->indirect_count, &msg);
        break;
    case 2:
        rc = value_parse_globs(value, &c->kernels, &c->kernel_count, &msg);
        break;
    case 3:
        rc = value_parse_enum(value, &value_enum_bool, &v, &msg);
        c->keep = rc == 0 && v;
        break;
    case 4:
        rc = value_parse_order(value, &c->order, &c->order_count, &msg);
        c->order_line = p->line;
        break;
    default:
        rc = value_parse_enum(value, &value_enum_readonly, &v, &msg);
        c->readonly = rc == 0 ? (enum config_readonly)v : CONFIG_READONLY_NO;
        break;
    }
    if (rc < 0)
        return state_fail(p->st, p->path, p->line, "%s", msg.text);
    return 0;
}

static int on_key(void *user, const char *section, const char *name, const char *value) {
    struct parser *p = user;
    (void)section; /* always "": headers never reach inih (see read_line) */
    if (!*name)
        state_fail(p->st, p->path, p->line, "missing key name before '='");
    else if (p->section == SECTION_NONE)
        state_fail(p->st, p->path, p->line,
                   "key '%s' outside any section (put it under [offload] or [component NAME])",
                   name);
    else if (p->section == SECTION_OFFLOAD)
        offload_key(p, name, value);
    else
        component_key(p, name, value);
    return !p->st->failed;
}

/* --- checks once every component is known --------------------------------------------- */

static bool overlap(const struct config_range *a, const struct config_range *b) {
    return a->first <= b->last && b->first <= a->last;
}

/* Two components claiming one ordinal would make ownership depend on the order of the
 * file: reported at the later `allocs` line, naming the earlier one. */
static int check_overlaps(struct parser *p) {
    const struct config *cfg = p->st->cfg;
    for (size_t j = 0; j < cfg->component_count; j++) {
        const struct config_component *cj = &cfg->components[j];
        for (size_t r = 0; r < cj->alloc_range_count; r++) {
            for (size_t i = 0; i <= j; i++) {
                const struct config_component *ci = &cfg->components[i];
                size_t end = i == j ? r : ci->alloc_range_count;
                for (size_t q = 0; q < end; q++) {
                    if (!overlap(&cj->allocs[r], &ci->allocs[q]))
                        continue;
                    char a[48], b[48];
                    value_format_range(&cj->allocs[r], a, sizeof a);
                    value_format_range(&ci->allocs[q], b, sizeof b);
                    return state_fail(p->st, p->path, cj->allocs_line,
                                      "allocs %s of '%s' overlap allocs %s of '%s' (line %d)", a,
                                      cj->name, b, ci->name, ci->allocs_line);
                }
            }
        }
    }
    return 0;
}

static bool owns(const struct config_component *c, uint64_t ordinal) {
    for (size_t r = 0; r < c->alloc_range_count; r++)
        if (c->allocs[r].first <= ordinal && ordinal <= c->allocs[r].last)
            return true;
    return false;
}

/* An order names allocations of its own component only (its `allocs`, wherever in the
 * section they are written): reported at the `order` line, naming the first stranger. */
static int check_orders(struct parser *p) {
    const struct config *cfg = p->st->cfg;
    for (size_t j = 0; j < cfg->component_count; j++) {
        const struct config_component *c = &cfg->components[j];
        for (size_t i = 0; i < c->order_count; i++)
            if (!owns(c, c->order[i]))
                return state_fail(p->st, p->path, c->order_line,
                                  "order of '%s' names allocation %" PRIu64
                                  ", which its allocs do not own",
                                  c->name, c->order[i]);
    }
    return 0;
}

int parse_text(struct config_state *st, const char *text, const char *path) {
    struct parser p = {.st = st, .path = path, .next = text};
    int rc = ini_parse_stream(read_line, &p, on_key, &p);
    /* inih reports a line it could not split (no '=' or ':') only through its result,
     * the first failing line: earlier than ours, it is the one to report. */
    if (rc > 0 && (!st->failed || rc < st->fail_line)) {
        char content[256];
        line_content(text, rc, content, sizeof content);
        st->failed = false;
        return state_fail(st, path, rc, "expected 'key = value' or a [section] header, got '%s'",
                          content);
    }
    if (rc < 0 && !st->failed)
        return state_fail(st, path, p.line, "out of memory");
    if (st->failed)
        return -1;
    if (check_overlaps(&p) < 0)
        return -1;
    return check_orders(&p);
}
