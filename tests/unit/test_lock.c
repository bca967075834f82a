/*
 * test_lock.c — the runtime's futex lock: mutual exclusion under contention, the timed
 * acquire used at exit, and the reset a fork child needs.
 */
#include "base/lock.h"
#include "tests/unit/check.h"

#include <pthread.h>

#define THREADS 4
#define ROUNDS 200000

static struct offload_lock counter_lock = OFFLOAD_LOCK_INITIALIZER;
static unsigned long counter; /* guarded by counter_lock; plain on purpose */

static void *hammer(void *arg) {
    (void)arg;
    for (int i = 0; i < ROUNDS; i++) {
        offload_lock_acquire(&counter_lock);
        unsigned long seen = counter;
        if (i % 1024 == 0)
            sched_yield(); /* a holder that sleeps: waiters take the futex path */
        counter = seen + 1;
        offload_lock_release(&counter_lock);
    }
    return NULL;
}

/* Every increment is a read-modify-write split by a yield: any lost mutual exclusion
 * shows as a short count. */
TEST(contended_increments_are_all_kept) {
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        CHECK(pthread_create(&t[i], NULL, hammer, NULL) == 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    CHECK_EQ_U64(counter, (uint64_t)THREADS * ROUNDS);
    CHECK_EQ_U64(atomic_load(&counter_lock.state), 0); /* released, no waiter marked */
}

static struct timespec in_ms(long ms) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    t.tv_nsec += ms * 1000000;
    t.tv_sec += t.tv_nsec / 1000000000;
    t.tv_nsec %= 1000000000;
    return t;
}

static double elapsed_ms(const struct timespec *since) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - since->tv_sec) * 1e3 +
           (double)(now.tv_nsec - since->tv_nsec) / 1e6;
}

TEST(timed_acquire_gives_up_at_the_deadline) {
    struct offload_lock l = OFFLOAD_LOCK_INITIALIZER;
    struct timespec deadline = in_ms(50);
    CHECK(offload_lock_acquire_until(&l, &deadline)); /* free: taken at once */
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    deadline = in_ms(50);
    CHECK(!offload_lock_acquire_until(&l, &deadline)); /* held by us: times out */
    CHECK(elapsed_ms(&start) >= 49.0);
    offload_lock_release(&l);
    deadline = in_ms(50);
    CHECK(offload_lock_acquire_until(&l, &deadline));
    offload_lock_release(&l);
}

static void *release_later(void *arg) {
    struct timespec pause = {0, 20 * 1000000};
    nanosleep(&pause, NULL);
    offload_lock_release(arg);
    return NULL;
}

/* A waiter sleeping in the kernel is woken by the release, well before its deadline. */
TEST(timed_acquire_is_woken_by_release) {
    struct offload_lock l = OFFLOAD_LOCK_INITIALIZER;
    offload_lock_acquire(&l);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, release_later, &l) == 0);
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    struct timespec deadline = in_ms(5000);
    CHECK(offload_lock_acquire_until(&l, &deadline));
    CHECK(elapsed_ms(&start) < 4000.0);
    pthread_join(t, NULL);
    offload_lock_release(&l);
}

TEST(reset_frees_a_lock_whose_holder_is_gone) {
    struct offload_lock l = OFFLOAD_LOCK_INITIALIZER;
    offload_lock_acquire(&l);
    offload_lock_reset(&l);
    struct timespec deadline = in_ms(50);
    CHECK(offload_lock_acquire_until(&l, &deadline));
    offload_lock_release(&l);
}

int main(void) {
    RUN(contended_increments_are_all_kept);
    RUN(timed_acquire_gives_up_at_the_deadline);
    RUN(timed_acquire_is_woken_by_release);
    RUN(reset_frees_a_lock_whose_holder_is_gone);
    return check_summary();
}
