/*
 * units.h — byte counts as people read them, for log messages.
 */
#ifndef OFFLOAD_UNITS_H
#define OFFLOAD_UNITS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define MIB (1024.0 * 1024.0)

/* bytes in MiB, for "%.1f MiB" */
static inline double mib(uint64_t bytes) {
    return (double)bytes / MIB;
}

/* "2.0 GiB", "160 MiB": a size for a one-line summary. */
static inline void format_size(char *buf, size_t len, uint64_t bytes) {
    if (bytes >= (1ull << 30))
        snprintf(buf, len, "%.1f GiB", (double)bytes / (1ull << 30));
    else
        snprintf(buf, len, "%.0f MiB", (double)bytes / MIB);
}

#endif /* OFFLOAD_UNITS_H */
