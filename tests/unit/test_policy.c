/* test_policy.c — eviction and prefetch decisions (runtime/policy.h): Belady's choice
 * against a brute-force optimum, switch plans under both policies, the LRU helper. */
#include "runtime/policy/policy.h"
#include "tests/unit/check.h"

#include <stdlib.h>

#define MAXC 8

/* ---- a small view builder ----------------------------------------------------------- */

struct world {
    struct policy_component comp[MAXC];
    size_t seq[32];
    struct policy_view view;
    size_t evict[MAXC], prefetch[MAXC];
    bool protect[MAXC];
    struct policy_plan plan;
};

/* n components of the given sizes, all fully resident; the given sequence. */
static void world_init(struct world *w, size_t n, const uint64_t *sizes, const size_t *seq,
                       size_t seq_len, enum config_policy policy, uint64_t budget) {
    memset(w, 0, sizeof *w);
    for (size_t i = 0; i < n; i++)
        w->comp[i] = (struct policy_component){.bytes = sizes[i], .resident_bytes = sizes[i]};
    memcpy(w->seq, seq, seq_len * sizeof *seq);
    w->view = (struct policy_view){.components = w->comp,
                                   .component_count = n,
                                   .sequence = w->seq,
                                   .sequence_length = seq_len,
                                   .active = -1,
                                   .active_pos = POLICY_NO_POSITION,
                                   .budget = budget,
                                   .prefetch = 1,
                                   .wraps = true, /* the steady state: a program that loops */
                                   .policy = policy};
    w->plan =
        (struct policy_plan){.evict = w->evict, .prefetch = w->prefetch, .protect = w->protect};
}

static void activate(struct world *w, size_t c, size_t pos) {
    w->view.active = (int)c;
    w->view.active_pos = pos;
}

static bool in_list(const size_t *list, size_t n, size_t c) {
    for (size_t i = 0; i < n; i++)
        if (list[i] == c)
            return true;
    return false;
}

/* ---- positions and distances --------------------------------------------------------- */

TEST(distance_and_next_position_with_repeats) {
    size_t seq[] = {0, 1, 0, 2}; /* a -> b -> a -> c */
    CHECK_EQ_U64(policy_distance(seq, 4, 0, 1), 1);
    CHECK_EQ_U64(policy_distance(seq, 4, 0, 0), 2); /* a's next turn is position 2 */
    CHECK_EQ_U64(policy_distance(seq, 4, 2, 0), 2); /* from the second a: position 0 */
    CHECK_EQ_U64(policy_distance(seq, 4, 2, 1), 3);
    CHECK_EQ_U64(policy_distance(seq, 4, 3, 2), 4); /* itself: a full cycle */
    CHECK_EQ_U64(policy_distance(seq, 4, 1, 5), POLICY_NEVER);
    CHECK_EQ_U64(policy_distance(seq, 4, POLICY_NO_POSITION, 2), 4);
    CHECK_EQ_U64(policy_distance(seq, 0, 0, 0), POLICY_NEVER);
    CHECK_EQ_U64(policy_next_position(seq, 4, POLICY_NO_POSITION, 0), 0);
    CHECK_EQ_U64(policy_next_position(seq, 4, 0, 1), 1);
    CHECK_EQ_U64(policy_next_position(seq, 4, 1, 0), 2); /* the second a, not the first */
    CHECK_EQ_U64(policy_next_position(seq, 4, 2, 2), 3);
    CHECK_EQ_U64(policy_next_position(seq, 4, 3, 0), 0); /* wraps */
    CHECK_EQ_U64(policy_next_position(seq, 4, 3, 7), 3); /* not in it: stays */
    CHECK_EQ_U64(policy_next_position(seq, 4, POLICY_NO_POSITION, 7), POLICY_NO_POSITION);
    size_t one[] = {4};
    CHECK_EQ_U64(policy_next_position(one, 1, 0, 4), 0);
}

/* ---- victims ------------------------------------------------------------------------- */

TEST(victim_is_unsequenced_first_then_farthest) {
    struct world w;
    uint64_t sizes[] = {10, 20, 30, 40, 5};
    size_t seq[] = {0, 1, 2, 3}; /* 4 is not in the sequence */
    world_init(&w, 5, sizes, seq, 4, CONFIG_POLICY_BUDGET, 100);
    activate(&w, 1, 1);
    CHECK(policy_choose_victim(&w.view, NULL) == 4); /* never needed by the plan */
    w.comp[4].resident_bytes = 0;
    CHECK(policy_choose_victim(&w.view, NULL) == 0); /* distance 3 > c3's 2 > c2's 1 */
    w.comp[0].keep = true;
    CHECK(policy_choose_victim(&w.view, NULL) == 3);
    w.comp[3].in_use = true;
    CHECK(policy_choose_victim(&w.view, NULL) == 2);
    bool excluded[MAXC] = {[2] = true};
    CHECK(policy_choose_victim(&w.view, excluded) == -1); /* active 1 never goes */
    /* the loop form: in order until enough */
    w.comp[0].keep = w.comp[3].in_use = false;
    size_t out[MAXC];
    uint64_t freed = 0;
    CHECK_EQ_U64(policy_choose_victims(&w.view, NULL, 45, out, MAXC, &freed), 2);
    CHECK_EQ_U64(out[0], 0);
    CHECK_EQ_U64(out[1], 3);
    CHECK_EQ_U64(freed, 50);
    CHECK_EQ_U64(policy_choose_victims(&w.view, NULL, 1000, out, MAXC, &freed), 3);
    CHECK_EQ_U64(freed, 80); /* not enough: the caller sees freed < needed */
}

TEST(victim_ties_larger_first_then_lower_index) {
    struct world w;
    uint64_t sizes[] = {10, 30, 30, 5};
    size_t seq[] = {0}; /* 1, 2, 3 all unsequenced: equal distance */
    world_init(&w, 4, sizes, seq, 1, CONFIG_POLICY_BUDGET, 100);
    activate(&w, 0, 0);
    CHECK(policy_choose_victim(&w.view, NULL) == 1);
    bool excluded[MAXC] = {[1] = true};
    CHECK(policy_choose_victim(&w.view, excluded) == 2);
    excluded[2] = true;
    CHECK(policy_choose_victim(&w.view, excluded) == 3);
}

TEST(victim_with_repeated_component_uses_its_next_turn) {
    struct world w;
    uint64_t sizes[] = {10, 10, 10, 10};
    size_t seq[] = {0, 1, 0, 2, 3}; /* a b a c d */
    world_init(&w, 4, sizes, seq, 5, CONFIG_POLICY_BUDGET, 100);
    activate(&w, 1, 1);                              /* at b: a is next (distance 1) */
    CHECK(policy_choose_victim(&w.view, NULL) == 3); /* d: distance 3 */
    activate(&w, 2, 3);                              /* at c: d (1), a (2), b (3) */
    CHECK(policy_choose_victim(&w.view, NULL) == 1);
}

/* ---- Belady against the optimum ------------------------------------------------------- */

/* Access sequence: `cycles` turns of the cyclic sequence; cost: bytes restored. Demand
 * restores only (prefetching moves the same bytes earlier). Starts with nothing resident. */
struct sim {
    size_t k, seq_len, cycles;
    size_t seq[12];
    uint64_t size[MAXC], budget;
};

enum rule { RULE_POLICY, RULE_LRU, RULE_FIFO, RULE_MRU };

static uint64_t simulate(const struct sim *s, enum rule rule) {
    bool res[MAXC] = {0};
    uint64_t used = 0, cost = 0, last[MAXC] = {0}, loaded[MAXC] = {0};
    struct policy_component comp[MAXC];
    for (size_t t = 0; t < s->seq_len * s->cycles; t++) {
        size_t pos = t % s->seq_len, c = s->seq[pos];
        if (!res[c]) {
            while (used + s->size[c] > s->budget) {
                int v = -1;
                if (rule == RULE_POLICY) {
                    for (size_t i = 0; i < s->k; i++)
                        comp[i] = (struct policy_component){
                            .bytes = s->size[i], .resident_bytes = res[i] ? s->size[i] : 0};
                    struct policy_view view = {.components = comp,
                                               .component_count = s->k,
                                               .sequence = s->seq,
                                               .sequence_length = s->seq_len,
                                               .active = (int)c,
                                               .active_pos = pos,
                                               .budget = s->budget,
                                               .policy = CONFIG_POLICY_BUDGET};
                    v = policy_choose_victim(&view, NULL);
                } else if (rule == RULE_MRU) {
                    /* most recently used first; ties: the larger, then the lower index */
                    for (size_t i = 0; i < s->k; i++) {
                        bool better = v < 0 || last[i] > last[v] ||
                                      (last[i] == last[v] && s->size[i] > s->size[v]);
                        if (res[i] && i != c && better)
                            v = (int)i;
                    }
                } else {
                    for (size_t i = 0; i < s->k; i++) {
                        const uint64_t *key = rule == RULE_LRU ? last : loaded;
                        if (res[i] && i != c && (v < 0 || key[i] < key[v]))
                            v = (int)i;
                    }
                }
                if (v < 0)
                    return UINT64_MAX;
                res[v] = false;
                used -= s->size[v];
            }
            res[c] = true;
            used += s->size[c];
            cost += s->size[c];
            loaded[c] = t + 1;
        }
        last[c] = t + 1;
    }
    return cost;
}

/* Exhaustive: the least cost over every choice of evicted set at every miss. */
static uint64_t optimum(const struct sim *s) {
    uint64_t best[1 << MAXC], next[1 << MAXC];
    size_t states = (size_t)1 << s->k;
    for (size_t m = 0; m < states; m++)
        best[m] = UINT64_MAX;
    best[0] = 0;
    for (size_t t = 0; t < s->seq_len * s->cycles; t++) {
        size_t c = s->seq[t % s->seq_len];
        for (size_t m = 0; m < states; m++)
            next[m] = UINT64_MAX;
        for (size_t m = 0; m < states; m++) {
            if (best[m] == UINT64_MAX)
                continue;
            if (m & ((size_t)1 << c)) {
                if (best[m] < next[m])
                    next[m] = best[m];
                continue;
            }
            for (size_t keep = m;; keep = (keep - 1) & m) { /* every subset kept */
                uint64_t used = 0;
                for (size_t i = 0; i < s->k; i++)
                    if (keep & ((size_t)1 << i))
                        used += s->size[i];
                size_t to = keep | ((size_t)1 << c);
                if (used + s->size[c] <= s->budget && best[m] + s->size[c] < next[to])
                    next[to] = best[m] + s->size[c];
                if (keep == 0)
                    break;
            }
        }
        memcpy(best, next, states * sizeof *best);
    }
    uint64_t min = UINT64_MAX;
    for (size_t m = 0; m < states; m++)
        if (best[m] < min)
            min = best[m];
    return min;
}

static unsigned rng_state = 2463534242u;
static unsigned rnd(unsigned n) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state % n;
}

/* A random cyclic sequence over k components: each appears, no component follows itself
 * (also across the wrap), some appear twice. */
static void random_sim(struct sim *s, bool equal_sizes) {
    memset(s, 0, sizeof *s);
    s->k = 3 + rnd(4); /* 3..6 */
    s->cycles = 3;
    for (;;) {
        s->seq_len = s->k + rnd(4);
        size_t perm[MAXC];
        for (size_t i = 0; i < s->k; i++)
            perm[i] = i;
        for (size_t i = s->k; i-- > 1;) {
            size_t j = rnd((unsigned)i + 1), x = perm[i];
            perm[i] = perm[j];
            perm[j] = x;
        }
        for (size_t i = 0; i < s->seq_len; i++)
            s->seq[i] = i < s->k ? perm[i] : rnd((unsigned)s->k);
        bool ok = true;
        for (size_t i = 0; i < s->seq_len; i++)
            ok &= s->seq[i] != s->seq[(i + 1) % s->seq_len];
        if (ok)
            break;
    }
    uint64_t total = 0, max = 0;
    for (size_t i = 0; i < s->k; i++) {
        s->size[i] = equal_sizes ? 1 : 1 + rnd(8);
        total += s->size[i];
        max = s->size[i] > max ? s->size[i] : max;
    }
    /* from "only the largest fits" to "all but a little" */
    s->budget = max + rnd((unsigned)(total - max));
}

TEST(belady_is_optimal_for_equal_sizes) {
    for (int trial = 0; trial < 400; trial++) {
        struct sim s;
        random_sim(&s, true);
        uint64_t got = simulate(&s, RULE_POLICY), opt = optimum(&s);
        if (got != opt)
            fprintf(stderr, "trial %d: k=%zu len=%zu budget=%llu: policy %llu, optimum %llu\n",
                    trial, s.k, s.seq_len, (unsigned long long)s.budget, (unsigned long long)got,
                    (unsigned long long)opt);
        CHECK_EQ_U64(got, opt);
    }
}

/*
 * With varied sizes, minimising bytes moved is knapsack-like and Belady's rule is not
 * optimal in general. What holds and is checked: never below the optimum (the brute force
 * is right), never worse than LRU or FIFO on the same trace, and a bounded total gap to the
 * optimum, which is printed.
 */
TEST(belady_with_varied_sizes_beats_lru_and_fifo) {
    uint64_t sum_policy = 0, sum_opt = 0, sum_lru = 0, sum_fifo = 0;
    int optimal = 0, trials = 400, worse_than_lru = 0, worse_than_fifo = 0;
    double worst = 1.0;
    for (int trial = 0; trial < trials; trial++) {
        struct sim s;
        random_sim(&s, false);
        uint64_t got = simulate(&s, RULE_POLICY), opt = optimum(&s);
        uint64_t lru = simulate(&s, RULE_LRU), fifo = simulate(&s, RULE_FIFO);
        CHECK(got >= opt);
        worse_than_lru += got > lru;
        worse_than_fifo += got > fifo;
        optimal += got == opt;
        if ((double)got / (double)opt > worst)
            worst = (double)got / (double)opt;
        sum_policy += got, sum_opt += opt, sum_lru += lru, sum_fifo += fifo;
    }
    printf("# varied sizes, %d traces: optimal in %d; bytes moved: policy %llu, optimum %llu, "
           "LRU %llu, FIFO %llu; worst ratio to optimum %.3f; worse than LRU in %d, than "
           "FIFO in %d\n",
           trials, optimal, (unsigned long long)sum_policy, (unsigned long long)sum_opt,
           (unsigned long long)sum_lru, (unsigned long long)sum_fifo, worst, worse_than_lru,
           worse_than_fifo);
    CHECK(worse_than_lru == 0);
    CHECK(worse_than_fifo == 0);
    CHECK(sum_policy <= sum_opt + sum_opt / 10); /* within 10% of the optimum overall */
}

/* Inside one component that is larger than the budget and loops (every allocation once
 * per step, same order): most-recently-used is Belady there, so optimal for equal sizes,
 * and LRU is the worst case (every access misses). */
TEST(mru_is_optimal_for_a_loop_over_one_component) {
    for (size_t k = 3; k <= 7; k++) {
        for (uint64_t budget = 1; budget < k; budget++) {
            struct sim s = {.k = k, .seq_len = k, .cycles = 4, .budget = budget};
            for (size_t i = 0; i < k; i++) {
                s.seq[i] = i;
                s.size[i] = 1;
            }
            uint64_t mru = simulate(&s, RULE_MRU), opt = optimum(&s);
            CHECK_EQ_U64(mru, opt);
            CHECK_EQ_U64(simulate(&s, RULE_LRU), k * 4);
            CHECK(budget == 1 || mru < k * 4); /* one slot: every access misses */
        }
    }
}

/* ---- switch plans ------------------------------------------------------------------- */

TEST(sequence_plan_evicts_all_but_active_and_next) {
    struct world w;
    uint64_t sizes[] = {10, 20, 30, 40};
    size_t seq[] = {0, 1, 2, 3};
    world_init(&w, 4, sizes, seq, 4, CONFIG_POLICY_SEQUENCE, 1000);
    w.comp[2].resident_bytes = 0; /* c, the next one, is offloaded */
    activate(&w, 1, 1);
    CHECK(policy_on_switch(&w.view, &w.plan) == 0);
    CHECK_EQ_U64(w.plan.prefetch_count, 1);
    CHECK_EQ_U64(w.prefetch[0], 2);
    CHECK_EQ_U64(w.plan.evict_count, 2);
    CHECK_EQ_U64(w.evict[0], 0); /* farther first: a (distance 3) before d (distance 2) */
    CHECK_EQ_U64(w.evict[1], 3);
    CHECK(w.protect[1] && w.protect[2] && !w.protect[0] && !w.protect[3]);

    /* prefetch = 2: d is kept too, and being resident it is not restored */
    w.view.prefetch = 2;
    CHECK(policy_on_switch(&w.view, &w.plan) == 0);
    CHECK_EQ_U64(w.plan.prefetch_count, 1);
    CHECK_EQ_U64(w.plan.evict_count, 1);
    CHECK_EQ_U64(w.evict[0], 0);
    CHECK(w.protect[3]);

    /* prefetch = 0: everything else goes */
    w.view.prefetch = 0;
    CHECK(policy_on_switch(&w.view, &w.plan) == 0);
    CHECK_EQ_U64(w.plan.prefetch_count, 0);
    CHECK_EQ_U64(w.plan.evict_count, 2); /* a and d; c holds nothing */
}

TEST(sequence_plan_keeps_keep_in_use_and_skips_them_in_the_window) {
    struct world w;
    uint64_t sizes[] = {10, 20, 30, 40};
    size_t seq[] = {0, 1, 2, 3};
    world_init(&w, 4, sizes, seq, 4, CONFIG_POLICY_SEQUENCE, 1000);
    w.comp[2].keep = true; /* resident keep: not a window slot */
    w.comp[0].in_use = true;
    w.comp[3].resident_bytes = 0;
    activate(&w, 1, 1);
    CHECK(policy_on_switch(&w.view, &w.plan) == 0);
    CHECK_EQ_U64(w.plan.prefetch_count, 1);
    CHECK_EQ_U64(w.prefetch[0], 3);      /* the next non-keep component */
    CHECK_EQ_U64(w.plan.evict_count, 0); /* a is in use, c is keep */
}

TEST(prefetch_is_limited_by_the_budget) {
    struct world w;
    uint64_t sizes[] = {50, 40, 30, 20};
    size_t seq[] = {0, 1, 2, 3};
    world_init(&w, 4, sizes, seq, 4, CONFIG_POLICY_SEQUENCE, 100);
    for (size_t i = 0; i < 4; i++)
        w.comp[i].resident_bytes = 0;
    w.view.other_resident_bytes = 5;
    w.view.prefetch = 3;
    activate(&w, 0, 0);
    /* a (50) + other (5) + b (40) = 95 fits; + c (30) does not: stop there, even though
     * d (20) alone would fit — a farther component never takes a nearer one's room */
    CHECK(policy_on_switch(&w.view, &w.plan) == 0);
    CHECK_EQ_U64(w.plan.prefetch_count, 1);
    CHECK_EQ_U64(w.prefetch[0], 1);
    w.view.other_resident_bytes = 11; /* now b does not fit either */
    CHECK(policy_on_switch(&w.view, &w.plan) == 0);
    CHECK_EQ_U64(w.plan.prefetch_count, 0);
    CHECK(!w.protect[1]);
}

TEST(sequence_plan_with_repeated_component) {
    struct world w;
    uint64_t sizes[] = {10, 20, 30};
    size_t seq[] = {0, 1, 0, 2}; /* a b a c */
    world_init(&w, 3, sizes, seq, 4, CONFIG_POLICY_SEQUENCE, 1000);
    w.comp[0].resident_bytes = 0;
    activate(&w, 1, 1); /* at b, a comes next */
    CHECK(policy_on_switch(&w.view, &w.plan) == 0);
    CHECK_EQ_U64(w.plan.prefetch_count, 1);
    CHECK_EQ_U64(w.prefetch[0], 0);
    CHECK_EQ_U64(w.plan.evict_count, 1);
    CHECK_EQ_U64(w.evict[0], 2);
    /* at the second a (position 2), c comes next; b is evicted */
    w.comp[0].resident_bytes = 10;
    w.comp[2].resident_bytes = 0;
    activate(&w, 0, 2);
    CHECK(policy_on_switch(&w.view, &w.plan) == 0);
    CHECK_EQ_U64(w.plan.prefetch_count, 1);
    CHECK_EQ_U64(w.prefetch[0], 2);
    CHECK_EQ_U64(w.plan.evict_count, 1);
    CHECK_EQ_U64(w.evict[0], 1);
    /* prefetch = 5 over a 3-component sequence: each other component once */
    w.view.prefetch = 5;
    CHECK(policy_on_switch(&w.view, &w.plan) == 0);
    CHECK_EQ_U64(w.plan.prefetch_count, 1); /* c; b is resident */
    CHECK_EQ_U64(w.plan.evict_count, 0);
}

/* Until the program has come back to the sequence's start, the window ends at the
 * sequence's end: after the last component a one-image program exits, and the first
 * component's restore would be bytes for nothing. */
TEST(prefetch_crosses_the_sequence_end_only_once_the_program_wrapped) {
    struct world w;
    uint64_t sizes[] = {10, 20, 30};
    size_t seq[] = {0, 1, 2};
    for (int policy = 0; policy < 2; policy++) {
        world_init(&w, 3, sizes, seq, 3, policy ? CONFIG_POLICY_BUDGET : CONFIG_POLICY_SEQUENCE,
                   1000);
        w.comp[0].resident_bytes = w.comp[2].resident_bytes = 0;
        w.view.wraps = false;
        w.view.prefetch = 2;
        activate(&w, 1, 1); /* b: c comes next, then (if the program loops) a */
        CHECK(policy_on_switch(&w.view, &w.plan) == 0);
        CHECK_EQ_U64(w.plan.prefetch_count, 1);
        CHECK_EQ_U64(w.prefetch[0], 2);
        CHECK(!w.protect[0]);
        activate(&w, 2, 2); /* the last: nothing ahead */
        w.comp[2].resident_bytes = 30;
        CHECK(policy_on_switch(&w.view, &w.plan) == 0);
        CHECK_EQ_U64(w.plan.prefetch_count, 0);
        w.view.wraps = true; /* the program came back to a once: a is worth restoring */
        CHECK(policy_on_switch(&w.view, &w.plan) == 0);
        CHECK_EQ_U64(w.plan.prefetch_count, 1);
        CHECK_EQ_U64(w.prefetch[0], 0);
    }
}

TEST(unsequenced_and_unowned_bytes) {
    struct world w;
    uint64_t sizes[] = {10, 20, 30};
    size_t seq[] = {0, 1}; /* component 2 is declared but not in the sequence */
    world_init(&w, 3, sizes, seq, 2, CONFIG_POLICY_SEQUENCE, 1000);
    activate(&w, 0, 0);
    CHECK(policy_on_switch(&w.view, &w.plan) == 0);
    CHECK_EQ_U64(w.plan.evict_count, 1);
    CHECK_EQ_U64(w.evict[0], 2);
    /* the active component outside the sequence, no turn taken yet: the window starts
     * at the sequence's beginning */
    activate(&w, 2, POLICY_NO_POSITION);
    w.comp[0].resident_bytes = 0;
    CHECK(policy_on_switch(&w.view, &w.plan) == 0);
    CHECK_EQ_U64(w.plan.prefetch_count, 1);
    CHECK_EQ_U64(w.prefetch[0], 0);
    CHECK_EQ_U64(w.plan.evict_count, 1);
    CHECK_EQ_U64(w.evict[0], 1);
    /* unowned bytes count against the budget: no room for the prefetch */
    w.view.other_resident_bytes = 965;
    CHECK(policy_on_switch(&w.view, &w.plan) == 0);
    CHECK_EQ_U64(w.plan.prefetch_count, 0);
    /* bad active */
    w.view.active = 7;
    CHECK(policy_on_switch(&w.view, &w.plan) == -1);
    w.view.active = -1;
    CHECK(policy_on_switch(&w.view, &w.plan) == -1);
}

TEST(budget_plan_evicts_only_for_a_prefetch_and_only_farther) {
    struct world w;
    uint64_t sizes[] = {40, 30, 20, 10};
    size_t seq[] = {0, 1, 2, 3};
    world_init(&w, 4, sizes, seq, 4, CONFIG_POLICY_BUDGET, 100);
    /* a active and resident (40), b offloaded (30), c and d resident (20 + 10) */
    w.comp[1].resident_bytes = 0;
    activate(&w, 0, 0);
    CHECK(policy_on_switch(&w.view, &w.plan) == 0);
    CHECK_EQ_U64(w.plan.evict_count, 0); /* 70 + 30 fits exactly */
    CHECK_EQ_U64(w.plan.prefetch_count, 1);
    CHECK_EQ_U64(w.prefetch[0], 1);

    /* 5 bytes of unowned memory: b needs room; d (farthest) goes, not c */
    w.view.other_resident_bytes = 5;
    CHECK(policy_on_switch(&w.view, &w.plan) == 0);
    CHECK_EQ_U64(w.plan.evict_count, 1);
    CHECK_EQ_U64(w.evict[0], 3);
    CHECK_EQ_U64(w.plan.prefetch_count, 1);

    /* d is keep: c (farther than b) goes */
    w.comp[3].keep = true;
    CHECK(policy_on_switch(&w.view, &w.plan) == 0);
    CHECK_EQ_U64(w.plan.evict_count, 1);
    CHECK_EQ_U64(w.evict[0], 2);

    /* c in use as well: nothing farther may go; no prefetch, no eviction */
    w.comp[2].in_use = true;
    CHECK(policy_on_switch(&w.view, &w.plan) == 0);
    CHECK_EQ_U64(w.plan.evict_count, 0);
    CHECK_EQ_U64(w.plan.prefetch_count, 0);

    /* everything fits: nothing evicted even with prefetch covering all */
    w.comp[2].in_use = w.comp[3].keep = false;
    w.view.other_resident_bytes = 0;
    w.view.budget = 1000;
    w.view.prefetch = 3;
    CHECK(policy_on_switch(&w.view, &w.plan) == 0);
    CHECK_EQ_U64(w.plan.evict_count, 0);
    CHECK_EQ_U64(w.plan.prefetch_count, 1);
    CHECK(w.protect[1] && w.protect[2] && w.protect[3]);
}

TEST(budget_plan_never_evicts_the_active_or_an_earlier_prefetch) {
    struct world w;
    uint64_t sizes[] = {40, 30, 30, 30};
    size_t seq[] = {0, 1, 2, 3};
    world_init(&w, 4, sizes, seq, 4, CONFIG_POLICY_BUDGET, 90);
    w.comp[1].resident_bytes = w.comp[2].resident_bytes = w.comp[3].resident_bytes = 0;
    w.view.prefetch = 3;
    activate(&w, 0, 0);
    /* a 40 + b 30 = 70; c would need 30 more: only farther components (d, offloaded) could
     * go; b (nearer) and a (active) may not: stop after b */
    CHECK(policy_on_switch(&w.view, &w.plan) == 0);
    CHECK_EQ_U64(w.plan.prefetch_count, 1);
    CHECK_EQ_U64(w.prefetch[0], 1);
    CHECK_EQ_U64(w.plan.evict_count, 0);
    /* with d resident (a 40 + d 30), b pushes d out (d's turn is farther); then c finds
     * nothing farther than itself to evict */
    w.comp[3].resident_bytes = 30;
    CHECK(policy_on_switch(&w.view, &w.plan) == 0);
    CHECK_EQ_U64(w.plan.prefetch_count, 1);
    CHECK_EQ_U64(w.prefetch[0], 1);
    CHECK_EQ_U64(w.plan.evict_count, 1);
    CHECK_EQ_U64(w.evict[0], 3);
    w.comp[3].resident_bytes = 0;
    /* active not yet restored counts in full */
    w.comp[0].resident_bytes = 0;
    w.view.budget = 60;
    CHECK(policy_on_switch(&w.view, &w.plan) == 0);
    CHECK_EQ_U64(w.plan.prefetch_count, 0);
}

TEST(lru_policy_plans_nothing) {
    struct world w;
    uint64_t sizes[] = {10, 20};
    size_t seq[] = {0, 1};
    world_init(&w, 2, sizes, seq, 2, CONFIG_POLICY_LRU, 5);
    activate(&w, 0, 0);
    CHECK(policy_on_switch(&w.view, &w.plan) == 0);
    CHECK_EQ_U64(w.plan.evict_count, 0);
    CHECK_EQ_U64(w.plan.prefetch_count, 0);
}

TEST(in_flight_restores_count_as_resident) {
    struct world w;
    uint64_t sizes[] = {10, 20, 30};
    size_t seq[] = {0, 1, 2};
    world_init(&w, 3, sizes, seq, 3, CONFIG_POLICY_SEQUENCE, 1000);
    w.comp[1].in_flight = true; /* resident_bytes already 20 */
    activate(&w, 0, 0);
    CHECK(policy_on_switch(&w.view, &w.plan) == 0);
    CHECK_EQ_U64(w.plan.prefetch_count, 0); /* already coming */
    CHECK(w.protect[1]);
    CHECK(in_list(w.evict, w.plan.evict_count, 2));
}

int main(void) {
    RUN(distance_and_next_position_with_repeats);
    RUN(victim_is_unsequenced_first_then_farthest);
    RUN(victim_ties_larger_first_then_lower_index);
    RUN(victim_with_repeated_component_uses_its_next_turn);
    RUN(belady_is_optimal_for_equal_sizes);
    RUN(belady_with_varied_sizes_beats_lru_and_fifo);
    RUN(mru_is_optimal_for_a_loop_over_one_component);
    RUN(sequence_plan_evicts_all_but_active_and_next);
    RUN(sequence_plan_keeps_keep_in_use_and_skips_them_in_the_window);
    RUN(prefetch_is_limited_by_the_budget);
    RUN(sequence_plan_with_repeated_component);
    RUN(prefetch_crosses_the_sequence_end_only_once_the_program_wrapped);
    RUN(unsequenced_and_unowned_bytes);
    RUN(budget_plan_evicts_only_for_a_prefetch_and_only_farther);
    RUN(budget_plan_never_evicts_the_active_or_an_earlier_prefetch);
    RUN(lru_policy_plans_nothing);
    RUN(in_flight_restores_count_as_resident);
    return check_summary();
}
