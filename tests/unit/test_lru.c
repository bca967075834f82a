/*
 * test_lru.c — which allocation goes first under pressure, and the budget arithmetic.
 */
#include "runtime/memory/budget.h"
#include "runtime/policy/lru.h"
#include "tests/unit/check.h"

#include <stdlib.h>

#define SHIFT 21
#define GRAN (1ull << SHIFT)

static struct allocation pool[8];

static struct registry setup(int n) {
    struct registry reg;
    registry_init(&reg, SHIFT);
    memset(pool, 0, sizeof pool);
    for (int i = 0; i < n; i++) {
        pool[i].base = 0x100000000ull + (uint64_t)i * 16 * GRAN;
        pool[i].size = pool[i].mapped = GRAN;
        pool[i].state = ALLOC_RESIDENT;
        pool[i].component = -1;
        pool[i].last_use = (uint64_t)(10 + i);
        registry_add(&reg, &pool[i]);
    }
    return reg;
}

TEST(oldest_use_goes_first) {
    struct registry reg = setup(4);
    pool[2].last_use = 3;
    CHECK(lru_choose(&reg, 99, LRU_NOT_KEPT) == &pool[2]);
    pool[2].last_use = 50;
    CHECK(lru_choose(&reg, 99, LRU_NOT_KEPT) == &pool[0]);
    registry_destroy(&reg);
}

TEST(skips_unmapped_evicting_protected_and_kept) {
    struct registry reg = setup(4);
    pool[0].state = ALLOC_EVICTED;
    pool[1].state = ALLOC_EVICTING;
    pool[2].protect_epoch = 7; /* needed by the current call */
    CHECK(lru_choose(&reg, 7, LRU_NOT_KEPT) == &pool[3]);
    CHECK(lru_choose(&reg, 8, LRU_NOT_KEPT) == &pool[2]); /* another call: not protected */
    pool[3].component = 1;
    pool[3].keep = true;
    CHECK(lru_choose(&reg, 7, LRU_NOT_KEPT) == NULL);
    pool[3].keep = false;
    CHECK(lru_choose(&reg, 7, LRU_NOT_KEPT) == &pool[3]);
    pool[3].used = true;
    CHECK(lru_choose(&reg, 7, LRU_UNOWNED_USED) == NULL); /* owned by component 1 */
    pool[3].component = -1;
    CHECK(lru_choose(&reg, 7, LRU_UNOWNED_USED) == &pool[3]);
    pool[3].state = ALLOC_RESTORING; /* mapped, copy in flight: may still go */
    CHECK(lru_choose(&reg, 7, LRU_UNOWNED_USED) == &pool[3]);
    pool[3].state = ALLOC_RESERVED;
    CHECK(lru_choose(&reg, 7, LRU_UNOWNED_USED) == NULL);
    registry_destroy(&reg);
}

/* An unowned allocation no launch has used yet is about to be: it goes only as a last
 * resort (LRU_NOT_KEPT), however old its last use, so a buffer allocated for the next
 * kernels is not evicted, and restored on demand, before they run. */
TEST(unowned_fresh_allocations_wait_for_the_last_resort) {
    struct registry reg = setup(2);
    pool[0].last_use = 1; /* fresh, allocated long ago */
    pool[1].last_use = 9;
    pool[1].used = true;
    CHECK(lru_choose(&reg, 99, LRU_UNOWNED_USED) == &pool[1]);
    CHECK(lru_choose(&reg, 99, LRU_NOT_KEPT) == &pool[0]);
    pool[1].used = false;
    CHECK(lru_choose(&reg, 99, LRU_UNOWNED_USED) == NULL);
    registry_destroy(&reg);
}

TEST(ties_prefer_the_larger_then_the_earlier) {
    struct registry reg = setup(3);
    for (int i = 0; i < 3; i++)
        pool[i].last_use = 5;
    CHECK(lru_choose(&reg, 99, LRU_NOT_KEPT) == &pool[0]);
    pool[1].mapped = 4 * GRAN;
    CHECK(lru_choose(&reg, 99, LRU_NOT_KEPT) == &pool[1]);
    registry_destroy(&reg);
}

TEST(budget_arithmetic) {
    struct budget b = {.limit = 100};
    CHECK_EQ_U64(budget_shortfall(&b, 100), 0);
    CHECK_EQ_U64(budget_shortfall(&b, 101), 1);
    budget_add_resident(&b, 60);
    budget_add_untracked(&b, 30);
    CHECK_EQ_U64(budget_free(&b), 10);
    CHECK_EQ_U64(budget_shortfall(&b, 10), 0);
    CHECK_EQ_U64(budget_shortfall(&b, 25), 15);
    CHECK_EQ_U64(budget_shortfall(&b, 150), 140); /* more than the whole budget */
    budget_sub_resident(&b, 60);
    CHECK_EQ_U64(b.peak_resident, 60);
    CHECK_EQ_U64(b.peak_used, 90);
    budget_add_resident(&b, 80); /* over budget is possible (pressure from outside) */
    CHECK_EQ_U64(budget_free(&b), 0);
    budget_sub_untracked(&b, 1000); /* never wraps */
    CHECK_EQ_U64(b.untracked, 0);
}

int main(void) {
    RUN(oldest_use_goes_first);
    RUN(skips_unmapped_evicting_protected_and_kept);
    RUN(unowned_fresh_allocations_wait_for_the_last_resort);
    RUN(ties_prefer_the_larger_then_the_earlier);
    RUN(budget_arithmetic);
    return check_summary();
}
