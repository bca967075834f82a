/*
 * stats.c — the exit report: a summary table on stderr, a JSON document in a file.
 */
#include "runtime/report/stats.h"

#include "base/atomic_file.h"
#include "base/log.h"
#include "base/strbuf.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void put_moves(struct strbuf *b, const struct move_stats *m) {
    strbuf_put(b,
               "\"evictions\": %" PRIu64 ", \"restores\": %" PRIu64 ", \"bytes_to_host\": %" PRIu64
               ", \"bytes_to_device\": %" PRIu64 ", \"prefetch_hits\": %" PRIu64
               ", \"demand_restores\": %" PRIu64 ", \"stall_ns\": %" PRIu64,
               m->evictions, m->restores, m->bytes_to_host, m->bytes_to_device, m->prefetch_hits,
               m->demand_restores, m->stall_ns);
}

char *stats_json(const struct stats_report *r) {
    struct strbuf b;
    strbuf_init(&b, 4096);
    if (!b.data)
        return NULL;
    const struct stats *s = r->stats;
    strbuf_put(&b, "{\n  \"budget_bytes\": %" PRIu64 ",\n", r->budget_bytes);
    strbuf_put(&b, "  \"tracked_bytes\": %" PRIu64 ",\n", s->tracked_bytes);
    strbuf_put(&b, "  \"peak_tracked_bytes\": %" PRIu64 ",\n", s->peak_tracked_bytes);
    strbuf_put(&b, "  \"tracked_allocations\": %" PRIu64 ",\n", s->tracked_allocations);
    strbuf_put(&b, "  \"peak_resident_bytes\": %" PRIu64 ",\n", r->peak_resident_bytes);
    strbuf_put(&b, "  \"peak_used_bytes\": %" PRIu64 ",\n", r->peak_used_bytes);
    strbuf_put(&b, "  \"launches\": %" PRIu64 ",\n", s->launches);
    strbuf_put(&b, "  \"backup_reads\": %" PRIu64 ",\n", s->backup_reads);
    strbuf_put(&b, "  \"failed_evictions\": %" PRIu64 ",\n", s->failed_evictions);
    strbuf_put(&b, "  \"fingerprints\": %" PRIu64 ",\n", s->fingerprints);
    strbuf_put(&b, "  \"clean_checks\": %" PRIu64 ",\n", s->clean_checks);
    strbuf_put(&b, "  \"clean_evictions\": %" PRIu64 ",\n", s->clean_evictions);
    strbuf_put(&b, "  \"clean_bytes\": %" PRIu64 ",\n", s->clean_bytes);
    strbuf_put(&b, "  \"exported_kept\": %" PRIu64 ",\n", s->exported_kept);
    strbuf_put(&b, "  \"pool_trims\": %" PRIu64 ",\n", s->pool_trims);
    strbuf_put(&b, "  \"wait_ns\": %" PRIu64 ",\n  ", r->wait_ns);
    put_moves(&b, &s->total);
    strbuf_put(&b, ",\n  \"unowned_bytes\": %" PRIu64 ",\n  \"components\": [", r->unowned_bytes);
    for (size_t i = 0; i < r->component_count; i++) {
        const struct stats_component *c = &r->components[i];
        strbuf_put(&b, "%s\n    {\"name\": ", i ? "," : "");
        strbuf_put_json_string(&b, c->name);
        strbuf_put(&b, ", \"bytes\": %" PRIu64 ", ", c->bytes);
        put_moves(&b, &c->moves);
        strbuf_put(
            &b, ", \"streamed_bytes\": %" PRIu64 ", \"resident_across_turns_bytes\": %" PRIu64 "}",
            c->streamed_bytes, c->resident_across_turns_bytes);
    }
    strbuf_put(&b, "%s]\n}\n", r->component_count ? "\n  " : "");
    if (b.failed) {
        free(b.data);
        return NULL;
    }
    return b.data;
}

void stats_write_file(const struct stats_report *r, const char *path) {
    char *json = stats_json(r);
    if (!json) {
        log_warn("cannot write %s: out of memory", path);
        return;
    }
    if (atomic_file_write(path, json, strlen(json)) != 0)
        log_warn("cannot write %s: %s", path, strerror(errno));
    free(json);
}

static double mib(uint64_t bytes) {
    return (double)bytes / (1024.0 * 1024.0);
}

void stats_log_summary(const struct stats_report *r) {
    if (!log_enabled(LOG_INFO))
        return;
    const struct stats *s = r->stats;
    log_info("summary: budget %.1f MiB, tracked %.1f MiB (peak %.1f MiB, %" PRIu64
             " allocations), peak resident %.1f MiB, peak used %.1f MiB",
             mib(r->budget_bytes), mib(s->tracked_bytes), mib(s->peak_tracked_bytes),
             s->tracked_allocations, mib(r->peak_resident_bytes), mib(r->peak_used_bytes));
    log_info("summary: %" PRIu64 " evictions, %" PRIu64 " restores (%" PRIu64
             " on demand), %" PRIu64 " reads from host backups, %.1f MiB to host, %.1f MiB to "
             "device, %" PRIu64 " launches, waited %.3f s",
             s->total.evictions, s->total.restores, s->total.demand_restores, s->backup_reads,
             mib(s->total.bytes_to_host), mib(s->total.bytes_to_device), s->launches,
             (double)r->wait_ns / 1e9);
    if (s->fingerprints)
        log_info("summary: %" PRIu64 " clean evictions (%.1f MiB not copied to host: unchanged "
                 "since their backup) of %" PRIu64 " checked, %" PRIu64
                 " fingerprints taken on the device",
                 s->clean_evictions, mib(s->clean_bytes), s->clean_checks, s->fingerprints);
    if (r->component_count)
        log_info("%-16s %10s %9s %9s %12s %12s %9s %10s %12s %12s", "component", "MiB", "evictions",
                 "restores", "MiB to host", "MiB to dev", "prefetch", "stall s", "MiB streamed",
                 "MiB stayed");
    for (size_t i = 0; i < r->component_count; i++) {
        const struct stats_component *c = &r->components[i];
        log_info("%-16s %10.1f %9" PRIu64 " %9" PRIu64 " %12.1f %12.1f %9" PRIu64
                 " %10.3f %12.1f %12.1f",
                 c->name, mib(c->bytes), c->moves.evictions, c->moves.restores,
                 mib(c->moves.bytes_to_host), mib(c->moves.bytes_to_device), c->moves.prefetch_hits,
                 (double)c->moves.stall_ns / 1e9, mib(c->streamed_bytes),
                 mib(c->resident_across_turns_bytes));
    }
}
