/*
 * check.h — the unit-test harness: one header, no library.
 *
 *   TEST(name) { CHECK(x == 1); CHECK_EQ_U64(a, b); }
 *   int main(void) { RUN(name); ...; return check_summary(); }
 *
 * A failed CHECK prints file:line and the expression and fails the current test
 * (the test goes on, so one run shows every broken expectation). check_summary()
 * prints "N passed, N failed" and returns the exit status.
 */
#ifndef CHECK_H
#define CHECK_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int check_passed, check_failed, check_current_failed;

#define TEST(name) static void test_##name(void)

#define CHECK(expr)                                                                                \
    do {                                                                                           \
        if (!(expr)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #expr);               \
            check_current_failed = 1;                                                              \
        }                                                                                          \
    } while (0)

#define CHECK_EQ_U64(a, b)                                                                         \
    do {                                                                                           \
        uint64_t check_a_ = (uint64_t)(a), check_b_ = (uint64_t)(b);                               \
        if (check_a_ != check_b_) {                                                                \
            fprintf(stderr, "%s:%d: check failed: %s == %s (%" PRIu64 " != %" PRIu64 ")\n",        \
                    __FILE__, __LINE__, #a, #b, check_a_, check_b_);                               \
            check_current_failed = 1;                                                              \
        }                                                                                          \
    } while (0)

#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *check_a_ = (a), *check_b_ = (b);                                               \
        if (!check_a_ || !check_b_ || strcmp(check_a_, check_b_) != 0) {                           \
            fprintf(stderr, "%s:%d: check failed: %s == %s (\"%s\" != \"%s\")\n", __FILE__,        \
                    __LINE__, #a, #b, check_a_ ? check_a_ : "(null)",                              \
                    check_b_ ? check_b_ : "(null)");                                               \
            check_current_failed = 1;                                                              \
        }                                                                                          \
    } while (0)

/* For driver calls: CHECK_CU(cuMemAlloc(&p, n)) fails the test unless CUDA_SUCCESS. */
#define CHECK_CU(call) CHECK_EQ_U64((call), 0)

#define RUN(name)                                                                                  \
    do {                                                                                           \
        check_current_failed = 0;                                                                  \
        test_##name();                                                                             \
        if (check_current_failed) {                                                                \
            check_failed++;                                                                        \
            fprintf(stderr, "not ok - %s\n", #name);                                               \
        } else {                                                                                   \
            check_passed++;                                                                        \
            printf("ok - %s\n", #name);                                                            \
        }                                                                                          \
        fflush(stdout);                                                                            \
    } while (0)

static inline int check_summary(void) {
    printf("%d passed, %d failed\n", check_passed, check_failed);
    return check_failed ? 1 : 0;
}

#endif /* CHECK_H */
