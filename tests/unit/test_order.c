/* test_order.c — runtime/policy/order.c driven by synthetic touch sequences: the first
 * turn, the refinement rule (one odd turn changes nothing, two agreeing turns re-sort,
 * untouched ordinals keep their place), insertion of new ordinals, the repetition rule,
 * forgetting, and the next-use queries the streaming policy needs. */
#include "runtime/policy/order.h"
#include "tests/unit/check.h"

#include <stdbool.h>
#include <stdlib.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Is the learnt order exactly want[0..n), with positions consistent? */
static bool order_is(const struct order *o, const uint64_t *want, size_t n) {
    bool ok = order_length(o) == n;
    for (size_t p = 0; ok && p < n; p++)
        ok = order_at(o, p) == want[p] && order_position(o, want[p]) == p;
    if (!ok) {
        fprintf(stderr, "  order is:");
        for (size_t p = 0; p < order_length(o); p++)
            fprintf(stderr, " %llu", (unsigned long long)order_at(o, p));
        fprintf(stderr, "\n");
    }
    return ok;
}

/* One turn: every ordinal of touches[] in turn `turn`, in order. */
static void turn_of(struct order *o, uint64_t turn, const uint64_t *touches, size_t n) {
    for (size_t i = 0; i < n; i++)
        CHECK(order_touch(o, turn, touches[i]) == 0);
}

TEST(first_turn_is_the_order_of_first_touches) {
    struct order o;
    order_init(&o);
    const uint64_t touches[] = {5, 3, 5, 9, 3, 5, 12};
    turn_of(&o, 0, touches, ARRAY_LEN(touches));
    const uint64_t want[] = {5, 3, 9, 12};
    CHECK(order_is(&o, want, ARRAY_LEN(want)));
    CHECK(order_end_turn(&o) == 0);
    CHECK(order_is(&o, want, ARRAY_LEN(want)));
    CHECK_EQ_U64(o.turns_ended, 1);
    CHECK_EQ_U64(o.adoptions, 0);
    order_destroy(&o);
}

TEST(one_odd_turn_changes_nothing_two_agreeing_turns_resort) {
    struct order o;
    order_init(&o);
    const uint64_t first[] = {1, 2, 3, 4}, later[] = {1, 3, 2, 4};
    turn_of(&o, 0, first, 4);
    turn_of(&o, 1, later, 4); /* ends turn 0 */
    CHECK(order_is(&o, first, 4));
    turn_of(&o, 2, first, 4); /* ends turn 1: disagrees with turn 0 */
    CHECK(order_is(&o, first, 4));
    turn_of(&o, 3, later, 4);
    turn_of(&o, 4, later, 4); /* ends turn 3: disagrees with turn 2 */
    CHECK(order_is(&o, first, 4));
    CHECK_EQ_U64(o.adoptions, 0);
    CHECK(order_end_turn(&o) == 0); /* turn 4 agrees with turn 3: adopted */
    CHECK(order_is(&o, later, 4));
    CHECK_EQ_U64(o.adoptions, 1);
    CHECK_EQ_U64(o.turns_ended, 5);
    order_destroy(&o);
}

TEST(a_warm_up_turn_is_replaced_once_the_program_settles) {
    struct order o;
    order_init(&o);
    const uint64_t warm[] = {1, 2, 3, 4, 5}, steady[] = {5, 4, 3, 2, 1};
    turn_of(&o, 0, warm, 5);
    turn_of(&o, 1, steady, 5);
    turn_of(&o, 2, steady, 5); /* ends turn 1: only one steady turn so far */
    CHECK(order_is(&o, warm, 5));
    turn_of(&o, 3, steady, 5); /* ends turn 2: the second in a row */
    CHECK(order_is(&o, steady, 5));
    order_end_turn(&o);
    CHECK(order_is(&o, steady, 5));
    CHECK_EQ_U64(o.adoptions, 1);
    order_destroy(&o);
}

TEST(untouched_ordinals_stay_after_the_one_they_followed) {
    struct order o;
    order_init(&o);
    const uint64_t seed[] = {1, 2, 3, 4, 5}, touches[] = {1, 4, 3};
    CHECK(order_seed(&o, seed, 5) == 0);
    turn_of(&o, 0, touches, 3);
    turn_of(&o, 1, touches, 3);
    CHECK(order_end_turn(&o) == 0);
    /* 2 followed 1 and 5 followed 4 in the old order */
    const uint64_t want[] = {1, 2, 4, 5, 3};
    CHECK(order_is(&o, want, 5));

    /* untouched ones ahead of every touched one stay at the front */
    const uint64_t seed2[] = {7, 1, 2}, touches2[] = {2, 1};
    CHECK(order_seed(&o, seed2, 3) == 0);
    turn_of(&o, 0, touches2, 2);
    turn_of(&o, 1, touches2, 2);
    order_end_turn(&o);
    const uint64_t want2[] = {7, 2, 1};
    CHECK(order_is(&o, want2, 3));
    order_destroy(&o);
}

TEST(a_new_ordinal_takes_its_place_at_once) {
    struct order o;
    order_init(&o);
    const uint64_t seed[] = {1, 2, 3};
    CHECK(order_seed(&o, seed, 3) == 0);
    CHECK(order_touch(&o, 0, 1) == 0);
    CHECK(order_touch(&o, 0, 9) == 0); /* right after 1, before the turn ends */
    const uint64_t want[] = {1, 9, 2, 3};
    CHECK(order_is(&o, want, 4));
    CHECK(order_touch(&o, 1, 8) == 0); /* the first touch of a turn: at the front */
    const uint64_t want2[] = {8, 1, 9, 2, 3};
    CHECK(order_is(&o, want2, 5));
    order_destroy(&o);
}

TEST(seed_ignores_duplicates_and_a_turn_agreeing_with_it_changes_nothing) {
    struct order o;
    order_init(&o);
    const uint64_t seed[] = {4, 6, 4, 8, 6};
    CHECK(order_seed(&o, seed, 5) == 0);
    const uint64_t want[] = {4, 6, 8};
    CHECK(order_is(&o, want, 3));
    for (uint64_t t = 0; t < 3; t++)
        turn_of(&o, t, want, 3);
    order_end_turn(&o);
    CHECK(order_is(&o, want, 3));
    CHECK_EQ_U64(o.adoptions, 0);
    order_destroy(&o);
}

TEST(next_use_and_farthest_over_the_cyclic_order) {
    struct order o;
    order_init(&o);
    const uint64_t seed[] = {10, 20, 30, 40};
    CHECK(order_seed(&o, seed, 4) == 0);
    size_t p = order_position(&o, 20);
    CHECK_EQ_U64(p, 1);
    CHECK_EQ_U64(order_next_use(&o, p, 30), 1);
    CHECK_EQ_U64(order_next_use(&o, p, 40), 2);
    CHECK_EQ_U64(order_next_use(&o, p, 10), 3); /* next turn */
    CHECK_EQ_U64(order_next_use(&o, p, 20), 4); /* itself: a whole turn away */
    CHECK_EQ_U64(order_next_use(&o, p, 99), ORDER_NONE);
    CHECK_EQ_U64(order_next_use(&o, 4, 10), ORDER_NONE);
    CHECK_EQ_U64(order_position(&o, 99), ORDER_NONE);

    const uint64_t resident[] = {30, 10, 40};
    CHECK_EQ_U64(order_farthest(&o, p, resident, 3), 1); /* 10: used next turn */
    const uint64_t with_unknown[] = {30, 77, 10};
    CHECK_EQ_U64(order_farthest(&o, p, with_unknown, 3), 1); /* unknown: farthest */
    const uint64_t tie[] = {40, 40};
    CHECK_EQ_U64(order_farthest(&o, p, tie, 2), 0);
    CHECK_EQ_U64(order_farthest(&o, p, resident, 0), ORDER_NONE);
    /* from the last position, the first one is next */
    CHECK_EQ_U64(order_next_use(&o, 3, 10), 1);
    order_destroy(&o);
}

TEST(forget_removes_an_ordinal_everywhere) {
    struct order o;
    order_init(&o);
    const uint64_t first[] = {1, 2, 3, 4};
    turn_of(&o, 0, first, 4);
    order_forget(&o, 2);
    const uint64_t want[] = {1, 3, 4};
    CHECK(order_is(&o, want, 3));
    CHECK_EQ_U64(order_position(&o, 2), ORDER_NONE);
    order_forget(&o, 2); /* unknown: ignored */
    order_forget(&o, 55);
    /* turn 0's list no longer names 2: turn 1 (1 3 4) agrees with it */
    turn_of(&o, 1, want, 3);
    CHECK(order_touch(&o, 2, 4) == 0); /* ends turn 1 */
    CHECK(order_touch(&o, 2, 3) == 0);
    order_forget(&o, 3);               /* mid-turn: out of the order and of turn 2 */
    CHECK(order_touch(&o, 2, 3) == 0); /* now a new ordinal: right after 4 */
    const uint64_t want2[] = {1, 4, 3};
    CHECK(order_is(&o, want2, 3));
    order_destroy(&o);
}

TEST(cyclic_turns_follow_the_repetitions_of_the_pattern) {
    struct order o;
    order_init(&o);
    /* a layer reads its weight w twice (a w b w c), and a weight read by two launches in
     * a row (c c): neither ends the turn */
    const uint64_t pattern[] = {1, 2, 3, 2, 4, 4, 5};
    for (int rep = 0; rep < 4; rep++)
        for (size_t i = 0; i < ARRAY_LEN(pattern); i++)
            CHECK(order_touch_cyclic(&o, pattern[i]) == 0);
    CHECK_EQ_U64(o.turns_ended, 3); /* the fourth is still open */
    const uint64_t want[] = {1, 2, 3, 4, 5};
    CHECK(order_is(&o, want, 5));
    CHECK_EQ_U64(o.adoptions, 0);
    order_destroy(&o);
}

TEST(cyclic_tied_embeddings_keep_the_order) {
    struct order o;
    order_init(&o);
    /* E L1 L2 L3 E per turn: E opens and closes every pass */
    const uint64_t pass[] = {0, 1, 2, 3, 0};
    for (int rep = 0; rep < 5; rep++)
        for (size_t i = 0; i < ARRAY_LEN(pass); i++)
            CHECK(order_touch_cyclic(&o, pass[i]) == 0);
    order_end_turn(&o);
    const uint64_t want[] = {0, 1, 2, 3};
    CHECK(order_is(&o, want, 4));
    CHECK_EQ_U64(o.adoptions, 0);
    CHECK_EQ_U64(o.turns_ended, 6); /* the last E opened a sixth turn */
    order_destroy(&o);
}

TEST(cyclic_order_adopts_a_changed_pattern_after_two_repetitions) {
    struct order o;
    order_init(&o);
    const uint64_t a[] = {1, 2, 3, 4}, b[] = {1, 3, 2, 4};
    for (int rep = 0; rep < 2; rep++)
        for (size_t i = 0; i < 4; i++)
            order_touch_cyclic(&o, a[i]);
    for (int rep = 0; rep < 3; rep++)
        for (size_t i = 0; i < 4; i++)
            order_touch_cyclic(&o, b[i]);
    order_touch_cyclic(&o, 1); /* ends the third repetition of b */
    CHECK(order_is(&o, b, 4));
    CHECK_EQ_U64(o.adoptions, 1);
    order_destroy(&o);
}

/* Random touches, forgets and turn ends: the order stays a permutation of what is known,
 * positions stay consistent, and every touched ordinal is in it. */
TEST(random_operations_keep_the_order_consistent) {
    struct order o;
    order_init(&o);
    srand(12345);
    bool known[64] = {false};
    uint64_t turn = 0;
    bool ok = true;
    for (int step = 0; step < 20000 && ok; step++) {
        int what = rand() % 100;
        uint64_t ordinal = (uint64_t)(rand() % 64);
        if (what < 80) {
            ok &= order_touch(&o, turn, ordinal) == 0;
            known[ordinal] = true;
        } else if (what < 88) {
            order_forget(&o, ordinal);
            known[ordinal] = false;
        } else if (what < 96) {
            turn++;
        } else {
            ok &= order_end_turn(&o) == 0;
        }
        size_t count = 0;
        for (size_t i = 0; i < 64; i++) {
            count += known[i];
            size_t p = order_position(&o, i);
            ok &= known[i] ? p < order_length(&o) && order_at(&o, p) == i : p == ORDER_NONE;
        }
        ok &= count == order_length(&o);
    }
    CHECK(ok);
    order_destroy(&o);
}

/* A pass of launches over A W1 .. W10, each launch touching the activation A and one
 * weight (A first or last), four passes in one turn, with the streaming's bookkeeping
 * (components/stream.c: shared = used by the launch before, by two launches in this
 * pass so far, or by two in the last). The position follows the weights and each pass ends once:
 * without `shared`, A touched past the middle of a pass looked like the wrap to the next one
 * (position 6 -> 0, a pass end), and the weights after it were then "behind" and left the position
 * there, corrupting every next-use distance for the rest of the pass. */
static size_t passes_over_weights(bool a_first, bool use_shared, bool *positions_ok) {
    struct order o;
    order_init(&o);
    enum { W = 10, A = 100 };
    unsigned uses[W + 1] = {0}, hot[W + 1] = {0}; /* index 0: A */
    int last[W + 1];                              /* the launch that used it last */
    for (size_t i = 0; i <= W; i++)
        last[i] = -2;
    size_t position = ORDER_NONE, wraps = 0;
    int launch = 0;
    *positions_ok = true;
    for (int pass = 0; pass < 4; pass++) {
        for (uint64_t w = 1; w <= W; w++) {
            uint64_t refs[2] = {a_first ? A : w, a_first ? w : A};
            for (int r = 0; r < 2; r++) {
                uint64_t ord = refs[r];
                size_t k = ord == A ? 0 : (size_t)ord;
                CHECK(order_touch(&o, 0, ord) == 0);
                bool shared = use_shared && (last[k] == launch - 1 || uses[k] >= 2 || hot[k]);
                bool wrapped;
                position = order_advance(order_length(&o), position, order_position(&o, ord),
                                         shared, &wrapped);
                if (wrapped) {
                    wraps++;
                    for (size_t i = 0; i <= W; i++)
                        hot[i] = uses[i] >= 2, uses[i] = 0;
                }
                uses[k]++;
                last[k] = launch;
            }
            launch++;
            /* at w, or at A when A sits right after it (first touched after w) */
            size_t at_w = order_position(&o, w), at_a = order_position(&o, A);
            *positions_ok &=
                position == at_w || (position == at_a && at_a == at_w + 1) || (w == 1 && pass == 0);
        }
    }
    order_destroy(&o);
    return wraps;
}

TEST(a_pass_ends_once_when_every_launch_touches_an_activation) {
    bool ok;
    CHECK_EQ_U64(passes_over_weights(true, true, &ok), 3);
    CHECK(ok);
    CHECK_EQ_U64(passes_over_weights(false, true, &ok), 3);
    CHECK(ok);
    /* the rule without `shared` (the streaming before this test): extra pass ends */
    CHECK(passes_over_weights(true, false, &ok) > 3);
    CHECK(!ok);
}

TEST(advance_moves_forward_only_and_wraps_at_the_end) {
    bool wrapped;
    CHECK_EQ_U64(order_advance(10, ORDER_NONE, 3, false, &wrapped), 3);
    CHECK(!wrapped);
    CHECK_EQ_U64(order_advance(10, 3, 5, false, &wrapped), 5); /* progress */
    CHECK(!wrapped);
    CHECK_EQ_U64(order_advance(10, 5, 2, false, &wrapped), 5); /* behind */
    CHECK_EQ_U64(order_advance(10, 9, 0, false, &wrapped), 0); /* the next pass */
    CHECK(wrapped);
    CHECK_EQ_U64(order_advance(10, 9, 0, true, &wrapped), 9); /* shared: never wraps */
    CHECK(!wrapped);
    CHECK_EQ_U64(order_advance(10, 6, 8, true, &wrapped), 8); /* but moves forward */
    CHECK(!wrapped);
    CHECK_EQ_U64(order_advance(10, 4, 4, false, &wrapped), 4);
    CHECK(!wrapped);
}

int main(void) {
    RUN(first_turn_is_the_order_of_first_touches);
    RUN(one_odd_turn_changes_nothing_two_agreeing_turns_resort);
    RUN(a_warm_up_turn_is_replaced_once_the_program_settles);
    RUN(untouched_ordinals_stay_after_the_one_they_followed);
    RUN(a_new_ordinal_takes_its_place_at_once);
    RUN(seed_ignores_duplicates_and_a_turn_agreeing_with_it_changes_nothing);
    RUN(next_use_and_farthest_over_the_cyclic_order);
    RUN(forget_removes_an_ordinal_everywhere);
    RUN(cyclic_turns_follow_the_repetitions_of_the_pattern);
    RUN(cyclic_tied_embeddings_keep_the_order);
    RUN(cyclic_order_adopts_a_changed_pattern_after_two_repetitions);
    RUN(random_operations_keep_the_order_consistent);
    RUN(a_pass_ends_once_when_every_launch_touches_an_activation);
    RUN(advance_moves_forward_only_and_wraps_at_the_end);
    return check_summary();
}
