/*
 * status.h — the live status line of a long run: with log level info and stderr a
 * terminal, at most once per interval (3 s) one line on stderr,
 *
 *   offload: status 12 s: resident MiB text_encoder 0.0, unet 195.0, vae 0.0 (195.0 in
 *   all); 66 evictions, 50 restores, 880.7 MiB moved
 *
 * (on one line; at most 8 components by name, the rest summed as "others"). Nothing before the
 * first interval has passed: short runs stay quiet. A line is one write(2), so it never interleaves
 * with the program's own output mid-line; it is a new line each time, never a rewrite with '\r'
 * (that would garble the program's lines).
 *
 * Fed by trace.c (every trace_* event), so it needs no wiring of its own: see the
 * Wiring paragraph of trace.h. Not thread-safe by itself: trace.c calls it under its lock.
 */
#ifndef OFFLOAD_STATUS_H
#define OFFLOAD_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Turns the line on when fd is a terminal (isatty) and info is enabled; returns whether
 * it is on. names: the components' names, copied. now: the clock at start (ns). */
bool status_start(const char *const *names, size_t count, int fd, uint64_t interval_ns,
                  uint64_t now);

bool status_on(void);

/* Component `component` now holds `bytes` on the device. */
void status_resident(int component, uint64_t bytes);

/* One eviction (to_host) or restore completed, of `bytes`. */
void status_moved(bool to_host, uint64_t bytes);

/* Prints the line when the interval has passed since the last one (or the start). */
void status_tick(uint64_t now);

/* The line as status_tick would print it, without the trailing newline, into buf. */
void status_format(char *buf, size_t len, uint64_t now);

void status_stop(void);

#endif /* OFFLOAD_STATUS_H */
