/*
 * config.h — liboffload's configuration: offload.conf plus environment overrides,
 * parsed into one plain struct. This module never touches the driver.
 *
 * Sources, later ones winning key by key:
 *   1. defaults;
 *   2. the file named by OFFLOAD_CONFIG, else ./offload.conf if it exists, else none;
 *   3. environment overrides for every [offload] key: OFFLOAD_SEQUENCE, OFFLOAD_POLICY,
 *      OFFLOAD_BUDGET, OFFLOAD_PREFETCH, OFFLOAD_MIN_SIZE, OFFLOAD_LOG, OFFLOAD_STATS,
 *      OFFLOAD_TRACE, OFFLOAD_MODE, OFFLOAD_RECORD, OFFLOAD_FINGERPRINT, plus OFFLOAD_DRIVER and
 *      OFFLOAD_SUMMARY (environment only). A variable
 *      set to "" counts as unset.
 * Environment variables are read with secure_getenv: a setuid program gets none, and
 * does not look for ./offload.conf either.
 *
 * The grammar of every key is documented in config/README.md.
 */
#ifndef OFFLOAD_CONFIG_H
#define OFFLOAD_CONFIG_H

#include "base/log.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_NAME_MAX 64
#define CONFIG_PATH_MAX 4096
#define CONFIG_ORDER_MAX 65536 /* ordinals one `order` key may list */

enum config_policy {
    CONFIG_POLICY_LRU,      /* no sequence: least recently used allocations go first */
    CONFIG_POLICY_SEQUENCE, /* on a switch to X, evict all but X and its prefetches */
    CONFIG_POLICY_BUDGET,   /* evict only over budget, farthest next turn first */
};

enum config_mode { CONFIG_MODE_RUN, CONFIG_MODE_RECORD };

enum config_readonly { CONFIG_READONLY_NO, CONFIG_READONLY_YES, CONFIG_READONLY_AUTO };

/* A size is either absolute or a percentage of the device's memory, resolved later
 * (the config is read before any CUDA call). */
struct config_size {
    bool set;
    bool is_percent;
    uint64_t bytes; /* when !is_percent */
    double percent; /* when is_percent: 0 < percent <= 100 */
};

/* allocs = 0-11, 14, 20-   ->  {0,11} {14,14} {20,UINT64_MAX} */
struct config_range {
    uint64_t first, last; /* inclusive; last == UINT64_MAX for an open range */
};

struct config_component {
    char name[CONFIG_NAME_MAX];
    int line;        /* line of its [component NAME] header, for diagnostics */
    int allocs_line; /* line of its `allocs` key, 0 if none */
    struct config_range *allocs;
    size_t alloc_range_count;
    char **kernels; /* fnmatch(3) globs */
    size_t kernel_count;
    /* `indirect`: globs of kernels that reach this component's memory through pointers
     * stored in device memory (a batched GEMM's pointer array) */
    char **indirect;
    size_t indirect_count;
    uint64_t *order; /* `order`: the ordinals in the order they are first used per turn */
    size_t order_count;
    int order_line; /* line of its `order` key, 0 if none */
    bool keep;
    enum config_readonly readonly;
};

struct config {
    char path[CONFIG_PATH_MAX]; /* the file read, "" if none */
    enum config_policy policy;
    struct config_size budget;        /* unset: the device's free memory at first use */
    struct config_size min_size;      /* default 1 MiB */
    int prefetch;                     /* default 1 */
    enum log_level log_level;         /* default warn */
    char stats_path[CONFIG_PATH_MAX]; /* "" if none */
    char trace_path[CONFIG_PATH_MAX]; /* the timeline (Chrome trace JSON); "" if none */
    bool summary;                     /* the exit summary at info; default yes */
    bool fingerprint; /* clean evictions decided by a device fingerprint; default yes */
    enum config_mode mode;
    char record_path[CONFIG_PATH_MAX]; /* record mode output; default offload.recorded.conf */
    char driver_path[CONFIG_PATH_MAX]; /* default "libcuda.so.1" */

    struct config_component *components;
    size_t component_count;
    size_t *sequence; /* indices into components, in run order (cyclic) */
    size_t sequence_length;
};

/* A diagnostic: "PATH:LINE: MESSAGE" (or "OFFLOAD_X: MESSAGE" for the environment). */
struct config_error {
    char text[CONFIG_PATH_MAX + 512];
};

/* Reads defaults, the file and the environment into *cfg. Returns 0, or -1 with
 * err->text set (cfg is then left empty and needs no config_free). */
int config_load(struct config *cfg, struct config_error *err);

/* Same, from an explicit file (NULL: none) and an environment lookup function
 * (NULL: secure_getenv). For tests and the fuzz target. */
int config_load_from(struct config *cfg, const char *path, const char *(*getenv_fn)(const char *),
                     struct config_error *err);

/* config_load with the environment lookup injected (NULL: secure_getenv): the file is
 * getenv_fn("OFFLOAD_CONFIG") (set but empty: no file at all), else ./offload.conf when it
 * exists and the process is not setuid/setgid (AT_SECURE), else none. */
int config_load_with(struct config *cfg, const char *(*getenv_fn)(const char *),
                     struct config_error *err);

/* Parses a config held in memory (no environment); `path` is only used in diagnostics. */
int config_parse_string(struct config *cfg, const char *text, const char *path,
                        struct config_error *err);

/* Resolves a size against the device's total memory. */
uint64_t config_size_bytes(const struct config_size *size, uint64_t device_total);

/* Index of the component that `allocs` assigns ordinal n to, or -1. */
int config_component_for_ordinal(const struct config *cfg, uint64_t ordinal);

/* Index of the first component whose `kernels` glob matches name, or -1. */
int config_component_for_kernel(const struct config *cfg, const char *kernel_name);

/* Index of the first component whose `indirect` glob matches name, or -1. */
int config_component_indirect_for_kernel(const struct config *cfg, const char *kernel_name);

void config_free(struct config *cfg);

#endif /* OFFLOAD_CONFIG_H */
