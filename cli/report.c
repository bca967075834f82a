/*
 * report.c — `offload report FILE.json`: the statistics file (OFFLOAD_STATS, --stats) as
 * the table `offload run` prints at the end. Every figure is read from the file.
 */
#include "cli/cli.h"

#include "cli/json.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static double mib(uint64_t bytes) {
    return (double)bytes / (1024.0 * 1024.0);
}

static double seconds(uint64_t ns) {
    return (double)ns / 1e9;
}

static void print_table(const struct json *s, FILE *to) {
    fprintf(to,
            "budget %.1f MiB, peak resident %.1f MiB, peak used %.1f MiB, tracked %.1f MiB at "
            "peak in %" PRIu64 " allocations\n",
            mib(json_u64(s, "budget_bytes", 0)), mib(json_u64(s, "peak_resident_bytes", 0)),
            mib(json_u64(s, "peak_used_bytes", 0)), mib(json_u64(s, "peak_tracked_bytes", 0)),
            json_u64(s, "tracked_allocations", 0));
    fprintf(to,
            "%" PRIu64 " evictions, %" PRIu64 " restores (%" PRIu64 " on demand, %" PRIu64
            " prefetch hits), %.1f MiB to host, %.1f MiB to device\n",
            json_u64(s, "evictions", 0), json_u64(s, "restores", 0),
            json_u64(s, "demand_restores", 0), json_u64(s, "prefetch_hits", 0),
            mib(json_u64(s, "bytes_to_host", 0)), mib(json_u64(s, "bytes_to_device", 0)));
    uint64_t fingerprints = json_u64(s, "fingerprints", 0);
    if (fingerprints) /* only where the check ran: fingerprint = no, readonly or no GPU code */
        fprintf(to,
                "%" PRIu64 " clean evictions (%.1f MiB unchanged on the device, not copied to "
                "host), %" PRIu64 " fingerprints\n",
                json_u64(s, "clean_evictions", 0), mib(json_u64(s, "clean_bytes", 0)),
                fingerprints);
    fprintf(to,
            "%" PRIu64 " launches, stalled %.3f s, waited %.3f s, %" PRIu64
            " reads from host backups, %" PRIu64 " failed evictions\n",
            json_u64(s, "launches", 0), seconds(json_u64(s, "stall_ns", 0)),
            seconds(json_u64(s, "wait_ns", 0)), json_u64(s, "backup_reads", 0),
            json_u64(s, "failed_evictions", 0));
    const struct json *comps = json_get(s, "components");
    if (!comps || comps->type != JSON_ARRAY || comps->count == 0)
        return;
    fprintf(to, "%-16s %8s %9s %9s %11s %11s %8s %8s\n", "component", "MiB", "evictions",
            "restores", "MiB to host", "MiB to dev", "prefetch", "stall s");
    for (size_t i = 0; i < comps->count; i++) {
        const struct json *c = &comps->items[i];
        fprintf(to, "%-16s %8.1f %9" PRIu64 " %9" PRIu64 " %11.1f %11.1f %8" PRIu64 " %8.3f\n",
                json_str(c, "name", "?"), mib(json_u64(c, "bytes", 0)), json_u64(c, "evictions", 0),
                json_u64(c, "restores", 0), mib(json_u64(c, "bytes_to_host", 0)),
                mib(json_u64(c, "bytes_to_device", 0)), json_u64(c, "prefetch_hits", 0),
                seconds(json_u64(c, "stall_ns", 0)));
    }
    uint64_t unowned = json_u64(s, "unowned_bytes", 0);
    if (unowned)
        fprintf(to, "%-16s %8.1f (tracked bytes no component owns)\n", "(unowned)", mib(unowned));
}

int report_print_file(const char *path, FILE *to) {
    char *text = json_read_file(path);
    if (!text) {
        fprintf(stderr, "offload: cannot read %s: %s\n", path, strerror(errno));
        return 1;
    }
    char err[128];
    struct json *s = json_parse(text, err, sizeof err);
    free(text);
    if (!s || s->type != JSON_OBJECT || !json_get(s, "budget_bytes")) {
        fprintf(stderr, "offload: %s: %s\n", path,
                s ? "not a liboffload statistics file (no budget_bytes)" : err);
        json_free(s);
        return 1;
    }
    print_table(s, to);
    json_free(s);
    return 0;
}

int cmd_report(int argc, char **argv) {
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: offload report FILE.json\n"
               "\n"
               "Prints a statistics file (written by offload run --stats FILE, OFFLOAD_STATS or\n"
               "`stats =`) as the table offload run prints: budget and peaks, moves, stalls,\n"
               "then one line per component. Exit status 1 when FILE cannot be read.\n");
        return 0;
    }
    if (argc != 2)
        return usage_error("report", argc < 2 ? "missing the statistics file"
                                              : "one statistics file at a time");
    if (argv[1][0] == '-')
        return usage_error("report", "unknown option '%s'", argv[1]);
    return report_print_file(argv[1], stdout);
}
