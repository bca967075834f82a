/* test_vec.c — base/vec.h: growth, pushes, the overflow guard, failure leaves the array. */
#include "base/vec.h"
#include "tests/unit/check.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

struct pair {
    uint32_t a;
    uint64_t b;
};

TEST(push_grows_by_doubling_and_keeps_the_items) {
    struct pair *items = NULL;
    size_t count = 0, cap = 0;
    for (uint32_t i = 0; i < 1000; i++)
        CHECK(VEC_PUSH(items, count, cap, ((struct pair){i, (uint64_t)i * 3})) == 0);
    CHECK_EQ_U64(count, 1000);
    CHECK_EQ_U64(cap, 1024); /* 16, 32, ..., 1024 */
    bool ok = true;
    for (uint32_t i = 0; i < 1000; i++)
        ok &= items[i].a == i && items[i].b == (uint64_t)i * 3;
    CHECK(ok);
    free(items);
}

TEST(reserve_makes_room_without_changing_the_count) {
    uint64_t *v = NULL;
    size_t count = 0, cap = 0;
    CHECK(VEC_RESERVE(v, cap, 0) == 0);
    CHECK(v == NULL && cap == 0); /* nothing needed, nothing allocated */
    CHECK(VEC_RESERVE(v, cap, 17) == 0);
    CHECK_EQ_U64(cap, 32);
    CHECK_EQ_U64(count, 0);
    v[16] = 7; /* room really is there (ASan would say otherwise) */
    uint64_t *before = v;
    CHECK(VEC_RESERVE(v, cap, 32) == 0);
    CHECK(v == before && cap == 32); /* enough room already: no realloc */
    free(v);
}

TEST(a_size_that_would_overflow_fails_and_leaves_the_array) {
    uint64_t *v = NULL;
    size_t count = 0, cap = 0;
    CHECK(VEC_PUSH(v, count, cap, 42) == 0);
    uint64_t *before = v;
    CHECK(VEC_RESERVE(v, cap, SIZE_MAX / 4) == -1);
    CHECK(VEC_RESERVE(v, cap, SIZE_MAX) == -1);
    CHECK(v == before && cap == VEC_MIN_CAP && count == 1 && v[0] == 42);
    free(v);
}

int main(void) {
    RUN(push_grows_by_doubling_and_keeps_the_items);
    RUN(reserve_makes_room_without_changing_the_count);
    RUN(a_size_that_would_overflow_fails_and_leaves_the_array);
    return check_summary();
}
