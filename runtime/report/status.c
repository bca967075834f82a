/*
 * status.c — the live status line (status.h).
 */
#include "runtime/report/status.h"

#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STATUS_NAMED_MAX 8 /* components shown by name; the rest summed as "others" */

static struct {
    bool on;
    int fd;
    uint64_t interval, start, last;
    char **names;
    uint64_t *resident;
    size_t count;
    uint64_t evictions, restores, moved;
} st;

bool status_start(const char *const *names, size_t count, int fd, uint64_t interval_ns,
                  uint64_t now) {
    status_stop();
    if (fd < 0 || !isatty(fd) || !log_enabled(LOG_INFO))
        return false;
    st.names = calloc(count ? count : 1, sizeof *st.names);
    st.resident = calloc(count ? count : 1, sizeof *st.resident);
    if (!st.names || !st.resident) {
        status_stop();
        return false;
    }
    for (size_t i = 0; i < count; i++) {
        st.names[i] = strdup(names[i]);
        if (!st.names[i]) {
            st.count = i;
            status_stop();
            return false;
        }
    }
    st.count = count;
    st.fd = fd;
    st.interval = interval_ns;
    st.start = st.last = now;
    st.on = true;
    return true;
}

bool status_on(void) {
    return st.on;
}

void status_resident(int component, uint64_t bytes) {
    if (st.on && component >= 0 && (size_t)component < st.count)
        st.resident[component] = bytes;
}

void status_moved(bool to_host, uint64_t bytes) {
    if (!st.on)
        return;
    if (to_host)
        st.evictions++;
    else
        st.restores++;
    st.moved += bytes;
}

static double mib(uint64_t bytes) {
    return (double)bytes / (1024.0 * 1024.0);
}

/* snprintf that never runs past the end: returns the new length, at most len - 1. */
__attribute__((format(printf, 4, 5))) static size_t append(char *buf, size_t len, size_t at,
                                                           const char *fmt, ...) {
    if (at + 1 >= len)
        return at;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + at, len - at, fmt, ap);
    va_end(ap);
    if (n < 0)
        return at;
    return at + (size_t)n < len ? at + (size_t)n : len - 1;
}

void status_format(char *buf, size_t len, uint64_t now) {
    if (len == 0)
        return;
    buf[0] = '\0';
    size_t at =
        append(buf, len, 0, "offload: status %.0f s: resident MiB", (double)(now - st.start) / 1e9);
    uint64_t all = 0, others = 0;
    for (size_t i = 0; i < st.count; i++) {
        all += st.resident[i];
        if (i < STATUS_NAMED_MAX)
            at = append(buf, len, at, "%s %s %.1f", i ? "," : "", st.names[i], mib(st.resident[i]));
        else
            others += st.resident[i];
    }
    if (st.count > STATUS_NAMED_MAX)
        at = append(buf, len, at, ", others %.1f", mib(others));
    if (st.count == 0)
        at = append(buf, len, at, " (no components)");
    append(buf, len, at, " (%.1f in all); %llu evictions, %llu restores, %.1f MiB moved", mib(all),
           (unsigned long long)st.evictions, (unsigned long long)st.restores, mib(st.moved));
}

void status_tick(uint64_t now) {
    if (!st.on || now - st.last < st.interval)
        return;
    st.last = now;
    char line[1024];
    status_format(line, sizeof line - 1, now);
    size_t n = strlen(line);
    line[n++] = '\n';
    /* one write: the line never splits around the program's own output */
    ssize_t w = write(st.fd, line, n);
    (void)w;
}

void status_stop(void) {
    for (size_t i = 0; st.names && i < st.count; i++)
        free(st.names[i]);
    free(st.names);
    free(st.resident);
    memset(&st, 0, sizeof st);
}
