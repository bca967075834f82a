/*
 * jitter.c — SIMCUDA_JITTER=SEED: random delays before stream work.
 *
 * Two cores give one schedule, over and over; a missing wait can pass every time. With
 * a seed, every stream's worker sleeps a random 0..200 us (half the time not at all)
 * before each op it runs, so operations that are not ordered come in different orders.
 * Each worker draws from its own generator, seeded from SEED and the order in which the
 * workers first drew, so a seed gives the same delays for the same program.
 */
#include "tests/sim/strict.h"

#include <stdlib.h>
#include <time.h>

#define JITTER_MAX_US 200

static struct {
    int on;
    uint64_t seed;
    atomic_uint_fast64_t workers;
} jit;

static __thread uint64_t tls_state;

void sim_jitter_init(void) {
    const char *v = getenv("SIMCUDA_JITTER");
    if (v && *v) {
        jit.on = 1;
        jit.seed = strtoull(v, NULL, 10);
    }
}

static uint64_t next(void) {
    uint64_t x = tls_state; /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    tls_state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

void sim_jitter(struct sim_stream *s) {
    (void)s;
    if (!jit.on)
        return;
    if (!tls_state)
        tls_state = (jit.seed + 1) * 0x9E3779B97F4A7C15ULL ^
                    (atomic_fetch_add(&jit.workers, 1) + 1) * 0xBF58476D1CE4E5B9ULL;
    if (!tls_state)
        tls_state = 1;
    uint64_t r = next();
    if (r & 1)
        return;
    long us = (long)((r >> 8) % JITTER_MAX_US);
    struct timespec ts = {0, us * 1000};
    nanosleep(&ts, NULL);
}
