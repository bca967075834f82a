/*
 * lock.h — the runtime's one lock: a futex mutex whose uncontended path is one atomic
 * instruction each way, inlined.
 *
 * Why not pthread_mutex_t: every cuLaunchKernel takes and releases the lock once, and
 * glibc's pair (two PLT calls, mutex-type dispatch, lock-elision checks) cost 57 of the
 * ~400 instructions liboffload added per launch (callgrind; tests/bench/NOTES.md). This
 * is the third mutex of Drepper's "Futexes Are Tricky": state 0 free, 1 held, 2 held
 * and maybe waited for; only a release that finds 2 makes a system call.
 *
 * Acquire and release orderings on the state word are what make it a lock for the
 * compiler, the CPU and ThreadSanitizer alike (TSan derives happens-before from them).
 * Not recursive, no owner check: the runtime never re-enters its own lock (runtime.c
 * tracks a begun call per thread instead).
 */
#ifndef OFFLOAD_LOCK_H
#define OFFLOAD_LOCK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>

struct offload_lock {
    atomic_uint state; /* a futex word: 32 bits */
};

#define OFFLOAD_LOCK_INITIALIZER                                                                   \
    { 0 }

/* The contended halves, out of line. */
void offload_lock_wait(struct offload_lock *lock);
void offload_lock_wake(struct offload_lock *lock);

static inline void offload_lock_acquire(struct offload_lock *lock) {
    unsigned expected = 0;
    if (__builtin_expect(!atomic_compare_exchange_strong_explicit(&lock->state, &expected, 1,
                                                                  memory_order_acquire,
                                                                  memory_order_relaxed),
                         0))
        offload_lock_wait(lock);
}

static inline void offload_lock_release(struct offload_lock *lock) {
    if (__builtin_expect(atomic_exchange_explicit(&lock->state, 0, memory_order_release) == 2, 0))
        offload_lock_wake(lock);
}

/* Acquires the lock unless `deadline` (CLOCK_MONOTONIC) passes first; returns whether it
 * did. For exit paths, where the holder may never release it. */
bool offload_lock_acquire_until(struct offload_lock *lock, const struct timespec *deadline);

/* In a fork child: the holder may be a thread the child does not have. */
void offload_lock_reset(struct offload_lock *lock);

#endif /* OFFLOAD_LOCK_H */
