/*
 * test_registry.c — the granule hash: interior pointers, boundaries, removal, many ranges.
 */
#include "runtime/memory/registry.h"
#include "tests/unit/check.h"

#include <stdlib.h>

#define SHIFT 21 /* 2 MiB granules */
#define GRAN (1ull << SHIFT)

static struct allocation *make(CUdeviceptr base, size_t size) {
    struct allocation *a = calloc(1, sizeof *a);
    a->base = base;
    a->size = size;
    a->mapped = (size + GRAN - 1) & ~(GRAN - 1);
    return a;
}

TEST(finds_interior_pointers_and_respects_boundaries) {
    struct registry reg;
    registry_init(&reg, SHIFT);
    struct allocation *a = make(0x7f0000000000ull, 5 * GRAN + 17); /* 6 granules */
    struct allocation *b = make(a->base + a->mapped, GRAN);        /* right after a */
    CHECK(registry_add(&reg, a) == 0);
    CHECK(registry_add(&reg, b) == 0);
    CHECK_EQ_U64(a->ordinal, 0);
    CHECK_EQ_U64(b->ordinal, 1);
    CHECK(registry_find(&reg, a->base) == a);
    CHECK(registry_find(&reg, a->base + 1) == a);
    CHECK(registry_find(&reg, a->base + 3 * GRAN + 12345) == a);
    CHECK(registry_find(&reg, a->base + a->mapped - 1) == a);
    CHECK(registry_find(&reg, a->base + a->mapped) == b);
    CHECK(registry_find(&reg, b->base + GRAN - 1) == b);
    CHECK(registry_find(&reg, b->base + GRAN) == NULL);
    CHECK(registry_find(&reg, a->base - 1) == NULL);
    CHECK(registry_find(&reg, 0) == NULL);
    CHECK(registry_find(&reg, UINT64_MAX) == NULL);
    registry_destroy(&reg);
    free(a);
    free(b);
}

TEST(removal_forgets_every_granule_and_keeps_others) {
    struct registry reg;
    registry_init(&reg, SHIFT);
    struct allocation *a = make(0x100000000ull, 4 * GRAN);
    struct allocation *b = make(0x200000000ull, 2 * GRAN);
    struct allocation *c = make(0x300000000ull, 1);
    CHECK(registry_add(&reg, a) == 0);
    CHECK(registry_add(&reg, b) == 0);
    CHECK(registry_add(&reg, c) == 0);
    registry_remove(&reg, a);
    CHECK_EQ_U64(reg.count, 2);
    for (uint64_t off = 0; off < 4 * GRAN; off += GRAN / 2)
        CHECK(registry_find(&reg, a->base + off) == NULL);
    CHECK(registry_find(&reg, b->base + GRAN) == b);
    CHECK(registry_find(&reg, c->base) == c);
    /* the flat list stays consistent after the swap-remove */
    for (size_t i = 0; i < reg.count; i++)
        CHECK_EQ_U64(reg.list[i]->list_index, i);
    /* ordinals keep counting, never reused */
    struct allocation *d = make(a->base, GRAN);
    CHECK(registry_add(&reg, d) == 0);
    CHECK_EQ_U64(d->ordinal, 3);
    CHECK(registry_find(&reg, a->base + GRAN / 2) == d);
    CHECK(registry_find(&reg, a->base + GRAN) == NULL);
    registry_destroy(&reg);
    free(a), free(b), free(c), free(d);
}

TEST(a_failed_set_up_gives_its_ordinal_back) {
    struct registry reg;
    registry_init(&reg, SHIFT);
    struct allocation *a = make(16 * GRAN, GRAN), *b = make(32 * GRAN, GRAN);
    struct allocation *c = make(48 * GRAN, GRAN);
    CHECK(registry_add(&reg, a) == 0);
    CHECK(registry_add(&reg, b) == 0);
    CHECK_EQ_U64(b->ordinal, 1);
    /* b's physical memory could not be had: the program never saw it */
    registry_remove(&reg, b);
    registry_unnumber_last(&reg, b);
    CHECK(registry_add(&reg, c) == 0);
    CHECK_EQ_U64(c->ordinal, 1); /* `allocs = 1` still names the program's second one */
    /* only the last ordinal can be given back */
    registry_unnumber_last(&reg, a);
    struct allocation *d = make(64 * GRAN, GRAN);
    CHECK(registry_add(&reg, d) == 0);
    CHECK_EQ_U64(d->ordinal, 2);
    registry_destroy(&reg);
    free(a), free(b), free(c), free(d);
}

TEST(many_allocations) {
    enum { N = 2000 };
    struct registry reg;
    registry_init(&reg, SHIFT);
    static struct allocation *all[N];
    /* sizes 1..4 granules, with a one-granule hole between neighbours */
    CUdeviceptr base = 0x10000000000ull;
    for (int i = 0; i < N; i++) {
        all[i] = make(base, (size_t)(i % 4 + 1) * GRAN - (size_t)i);
        CHECK(registry_add(&reg, all[i]) == 0);
        base += all[i]->mapped + GRAN;
    }
    CHECK_EQ_U64(reg.count, N);
    int wrong = 0;
    for (int i = 0; i < N; i++) {
        struct allocation *a = all[i];
        if (registry_find(&reg, a->base) != a ||
            registry_find(&reg, a->base + a->mapped - 8) != a ||
            registry_find(&reg, a->base + a->mapped) != NULL ||
            registry_find(&reg, a->base + a->mapped + GRAN - 1) != NULL)
            wrong++;
    }
    CHECK_EQ_U64(wrong, 0);
    for (int i = 0; i < N; i += 2)
        registry_remove(&reg, all[i]);
    wrong = 0;
    for (int i = 0; i < N; i++) {
        struct allocation *want = i % 2 ? all[i] : NULL;
        if (registry_find(&reg, all[i]->base + all[i]->mapped / 2) != want)
            wrong++;
    }
    CHECK_EQ_U64(wrong, 0);
    CHECK_EQ_U64(reg.count, N / 2);
    registry_destroy(&reg);
    for (int i = 0; i < N; i++)
        free(all[i]);
}

int main(void) {
    RUN(finds_interior_pointers_and_respects_boundaries);
    RUN(removal_forgets_every_granule_and_keeps_others);
    RUN(a_failed_set_up_gives_its_ordinal_back);
    RUN(many_allocations);
    return check_summary();
}
