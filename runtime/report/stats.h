/*
 * stats.h — what liboffload did, for the exit summary and the OFFLOAD_STATS JSON file.
 *
 * Counters are bumped under the runtime lock by the modules that do the work; at exit
 * stats_report() formats them. No driver call here: at exit the driver may be gone.
 */
#ifndef OFFLOAD_STATS_H
#define OFFLOAD_STATS_H

#include <stddef.h>
#include <stdint.h>

struct move_stats {
    uint64_t evictions, restores;
    uint64_t bytes_to_host, bytes_to_device;
    uint64_t prefetch_hits;   /* restores finished before their first use */
    uint64_t demand_restores; /* restores a launch/copy had to ask for */
    uint64_t stall_ns;        /* host time calls spent on it while it was not ready (room,
                                 mapping, queueing its restore, capture waits) */
};

struct stats {
    struct move_stats total;
    uint64_t launches;
    uint64_t backup_reads;     /* synchronous reads served from a host backup, no restore */
    uint64_t failed_evictions; /* evictions abandoned, data left on the device */
    uint64_t fingerprints;     /* fingerprints taken on the device (memory/fingerprint.h) */
    uint64_t clean_checks;     /* evictions decided by one instead of a copy */
    uint64_t clean_evictions;  /* evictions released with no copy: the fingerprint matched */
    uint64_t clean_bytes;      /* the bytes those did not copy to the host */
    uint64_t tracked_bytes;    /* currently tracked (mapped sizes) */
    uint64_t peak_tracked_bytes;
    uint64_t tracked_allocations; /* ever made */
    uint64_t exported_kept;       /* program handles exported: never evicted */
    uint64_t pool_trims;          /* driver pools trimmed to make room */
};

/* One component's line in the report. */
struct stats_component {
    const char *name;
    uint64_t bytes;
    struct move_stats moves;
    /* streaming (runtime/components/stream.c): bytes restored while it was the active
     * component, and bytes that stayed on the device through the last complete cycle of
     * its learnt order (its stable subset; 0 until one cycle has been seen whole) */
    uint64_t streamed_bytes, resident_across_turns_bytes;
};

/* Everything the report shows, gathered by the runtime at exit. */
struct stats_report {
    const struct stats *stats;
    uint64_t budget_bytes;
    uint64_t peak_resident_bytes; /* tracked physical bytes */
    uint64_t peak_used_bytes;     /* tracked + untracked */
    uint64_t wait_ns;             /* host time spent waiting inside liboffload */
    uint64_t unowned_bytes;
    const struct stats_component *components;
    size_t component_count;
};

/* The JSON document (malloc'd, NUL-terminated), or NULL when out of memory. */
char *stats_json(const struct stats_report *r);

/* Writes the JSON to path atomically; logs a warning on failure. */
void stats_write_file(const struct stats_report *r, const char *path);

/* The summary at info level. */
void stats_log_summary(const struct stats_report *r);

#endif /* OFFLOAD_STATS_H */
