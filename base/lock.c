/*
 * lock.c — the contended paths of the runtime's futex lock (lock.h).
 */
#include "base/lock.h"

#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

_Static_assert(sizeof(atomic_uint) == 4, "a futex word is 32 bits");

static long futex(atomic_uint *word, int op, unsigned value, const struct timespec *deadline) {
    return syscall(SYS_futex, word, op, value, deadline, NULL, FUTEX_BITSET_MATCH_ANY);
}

/* Marks the lock "waited for" (2) while taking it, so the holder's release wakes someone;
 * sleeps while it stays held. Returns false only when `deadline` passed. */
static bool wait_until(struct offload_lock *lock, const struct timespec *deadline) {
    while (atomic_exchange_explicit(&lock->state, 2, memory_order_acquire) != 0) {
        /* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline (NULL: none) and
         * returns at once if the word is no longer 2. */
        if (futex(&lock->state, FUTEX_WAIT_BITSET_PRIVATE, 2, deadline) == -1 && errno == ETIMEDOUT)
            return false;
    }
    return true;
}

void offload_lock_wait(struct offload_lock *lock) {
    wait_until(lock, NULL);
}

void offload_lock_wake(struct offload_lock *lock) {
    futex(&lock->state, FUTEX_WAKE_PRIVATE, 1, NULL);
}

bool offload_lock_acquire_until(struct offload_lock *lock, const struct timespec *deadline) {
    unsigned expected = 0;
    if (atomic_compare_exchange_strong_explicit(&lock->state, &expected, 1, memory_order_acquire,
                                                memory_order_relaxed))
        return true;
    return wait_until(lock, deadline);
}

void offload_lock_reset(struct offload_lock *lock) {
    atomic_store_explicit(&lock->state, 0, memory_order_relaxed);
}
