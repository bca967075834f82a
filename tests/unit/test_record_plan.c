/* test_record_plan.c — record mode's grouping on synthetic traces shaped like the reference
 * pipeline (and harder ones), and the written config read back by config_parse_string. */
#include "config/config.h"
#include "runtime/record/record.h"
#include "tests/unit/check.h"

#include <stdlib.h>

#define MAX_ALLOCS 256

/* A synthetic program: weights of named parts, a builder that hands out ordinals. */
struct prog {
    struct record_trace t;
    uint64_t next;
};

static uint64_t alloc(struct prog *p, uint64_t bytes) {
    uint64_t o = p->next++;
    CHECK(record_trace_alloc(&p->t, o, bytes) == 0);
    return o;
}

static void launch2(struct prog *p, const char *k, uint64_t a, uint64_t b) {
    uint64_t refs[2] = {a, b};
    CHECK(record_trace_launch(&p->t, k, refs, 2) == 0);
}

static void launch1(struct prog *p, const char *k, uint64_t a) {
    CHECK(record_trace_launch(&p->t, k, &a, 1) == 0);
}

/* One straight pass of a part: each weight read once, with the activation. */
static void pass(struct prog *p, const uint64_t *w, size_t n, uint64_t act) {
    for (size_t i = 0; i < n; i++)
        launch2(p, i % 2 ? "bias_act" : "matmul", w[i], act);
}

static bool same_set(const uint64_t *got, size_t got_n, const uint64_t *want, size_t want_n) {
    if (got_n != want_n)
        return false;
    uint64_t *sorted = malloc(want_n * sizeof *sorted);
    memcpy(sorted, want, want_n * sizeof *sorted);
    for (size_t i = 1; i < want_n; i++) /* insertion sort */
        for (size_t j = i; j > 0 && sorted[j - 1] > sorted[j]; j--) {
            uint64_t x = sorted[j];
            sorted[j] = sorted[j - 1];
            sorted[j - 1] = x;
        }
    bool ok = memcmp(got, sorted, want_n * sizeof *sorted) == 0;
    free(sorted);
    return ok;
}

/* The order parsed back for component k is the plan's order restricted to the ordinals
 * the parsed component owns, whole or (a line holds no more) a prefix of it. */
static bool order_read_back(const struct config *cfg, size_t k, const struct record_component *c) {
    const struct config_component *got = &cfg->components[k];
    size_t j = 0, owned = 0;
    bool ok = true;
    for (size_t i = 0; i < c->order_count; i++) {
        if (config_component_for_ordinal(cfg, c->order[i]) != (int)k)
            continue;
        owned++;
        if (j < got->order_count)
            ok &= got->order[j++] == c->order[i];
    }
    ok &= j == got->order_count && (got->order_count > 0) == (owned > 0);
    if (!ok)
        fprintf(stderr, "  component %s: order of %zu read back as %zu\n", c->name, c->order_count,
                got->order_count);
    return ok;
}

/* Writes the plan, parses it back, checks every ordinal's component, the orders and the
 * sequence. */
static void check_round_trip(const struct record_plan *plan, size_t alloc_count) {
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    CHECK(f != NULL);
    CHECK(record_plan_write(f, plan) == 0);
    fclose(f);
    if (getenv("TEST_RECORD_DUMP")) /* to see what a user would get */
        fputs(text, stderr);
    /* a text file: every line ends with a newline, the last one too, and no blank tail */
    CHECK(size > 0 && text[size - 1] == '\n');
    CHECK(size < 2 || text[size - 2] != '\n');
    struct config cfg;
    struct config_error err = {{0}};
    int rc = config_parse_string(&cfg, text, "recorded.conf", &err);
    if (rc != 0)
        fprintf(stderr, "parse failed: %s\n---\n%s---\n", err.text, text);
    CHECK(rc == 0);
    if (rc == 0) {
        CHECK_EQ_U64(cfg.component_count, plan->component_count);
        for (size_t k = 0; k < plan->component_count && k < cfg.component_count; k++) {
            CHECK_STR(cfg.components[k].name, plan->components[k].name);
            CHECK(cfg.components[k].keep == plan->components[k].keep);
        }
        int *want = malloc((alloc_count + 1) * sizeof *want);
        for (size_t o = 0; o < alloc_count; o++)
            want[o] = -1;
        for (size_t k = 0; k < plan->component_count; k++)
            for (size_t i = 0; i < plan->components[k].alloc_count; i++)
                want[plan->components[k].allocs[i]] = (int)k;
        for (size_t o = 0; o < alloc_count; o++)
            CHECK(config_component_for_ordinal(&cfg, o) == want[o]);
        free(want);
        for (size_t k = 0; k < plan->component_count && k < cfg.component_count; k++)
            CHECK(order_read_back(&cfg, k, &plan->components[k]));
        CHECK_EQ_U64(cfg.sequence_length, plan->sequence_length);
        for (size_t i = 0; i < plan->sequence_length && i < cfg.sequence_length; i++)
            CHECK_EQ_U64(cfg.sequence[i], plan->sequence[i]);
        if (plan->sequence_length) {
            CHECK(cfg.policy == CONFIG_POLICY_SEQUENCE);
            CHECK_EQ_U64(cfg.prefetch, 1);
        }
        config_free(&cfg);
    }
    free(text);
}

/*
 * The reference pipeline: text_encoder, unet, vae weights loaded one after another; per
 * run: the text encoder once, `steps` unet steps (a per-run activation reused across
 * steps plus a per-step one), the vae once; activations freed within the run.
 */
struct pipeline {
    uint64_t te[8], unet[12], vae[6];
};

static void load_pipeline(struct prog *p, struct pipeline *m) {
    for (size_t i = 0; i < 8; i++)
        m->te[i] = alloc(p, (2 + i % 3) << 20);
    for (size_t i = 0; i < 12; i++)
        m->unet[i] = alloc(p, (4 + i % 5) << 20);
    for (size_t i = 0; i < 6; i++)
        m->vae[i] = alloc(p, (3 + i % 2) << 20);
}

static void run_pipeline(struct prog *p, const struct pipeline *m, int steps) {
    uint64_t h = alloc(p, 2 << 20);
    pass(p, m->te, 8, h);
    uint64_t context = alloc(p, 1 << 20);
    launch2(p, "copy", h, context);
    CHECK(record_trace_free(&p->t, h) == 0);

    uint64_t latent = alloc(p, 1 << 20); /* reused across steps */
    uint64_t hidden = alloc(p, 5 << 20); /* reused across steps */
    launch1(p, "noise", latent);
    for (int s = 0; s < steps; s++) {
        uint64_t tmp = alloc(p, 3 << 20); /* per step */
        launch2(p, "copy", context, tmp);
        pass(p, m->unet, 12, hidden);
        launch2(p, "axpby", latent, tmp);
        CHECK(record_trace_free(&p->t, tmp) == 0);
    }
    CHECK(record_trace_free(&p->t, hidden) == 0);
    CHECK(record_trace_free(&p->t, context) == 0);

    uint64_t map = alloc(p, 8 << 20);
    launch2(p, "upsample", latent, map);
    pass(p, m->vae, 6, map);
    CHECK(record_trace_free(&p->t, latent) == 0);
    CHECK(record_trace_free(&p->t, map) == 0);
}

static void expect_pipeline(const struct record_plan *plan, const struct pipeline *m) {
    CHECK_EQ_U64(plan->component_count, 3);
    if (plan->component_count != 3)
        return;
    CHECK(same_set(plan->components[0].allocs, plan->components[0].alloc_count, m->te, 8));
    CHECK(same_set(plan->components[1].allocs, plan->components[1].alloc_count, m->unet, 12));
    CHECK(same_set(plan->components[2].allocs, plan->components[2].alloc_count, m->vae, 6));
    CHECK_STR(plan->components[0].name, "c0");
    CHECK_STR(plan->components[2].name, "c2");
    for (size_t k = 0; k < 3; k++)
        CHECK(!plan->components[k].keep);
    CHECK_EQ_U64(plan->sequence_length, 3);
    for (size_t i = 0; i < 3 && i < plan->sequence_length; i++)
        CHECK_EQ_U64(plan->sequence[i], i);
    /* each part reads its weights in the order they were made */
    const uint64_t *used[3] = {m->te, m->unet, m->vae};
    const size_t count[3] = {8, 12, 6};
    for (size_t k = 0; k < 3; k++) {
        const struct record_component *c = &plan->components[k];
        CHECK_EQ_U64(c->order_count, count[k]);
        CHECK(c->order_count == count[k] &&
              memcmp(c->order, used[k], count[k] * sizeof *c->order) == 0);
    }
}

TEST(reference_pipeline_gives_three_components_in_order) {
    struct prog p = {0};
    record_trace_init(&p.t);
    struct pipeline m;
    load_pipeline(&p, &m);
    run_pipeline(&p, &m, 4);
    struct record_plan plan;
    CHECK(record_plan_build(&p.t, &plan) == 0);
    expect_pipeline(&plan, &m);
    uint64_t te_bytes = 0;
    for (size_t i = 0; i < 8; i++)
        te_bytes += p.t.allocs[m.te[i]].bytes;
    CHECK_EQ_U64(plan.components[0].bytes, te_bytes);
    CHECK_EQ_U64(plan.components[0].first_launch, 0);
    CHECK_STR(plan.components[0].first_kernel, "matmul");
    CHECK_EQ_U64(plan.short_lived_count, 9); /* h, context, latent, hidden, map, 4 tmp */
    check_round_trip(&plan, p.t.alloc_count);
    record_plan_free(&plan);
    record_trace_destroy(&p.t);
}

TEST(pipeline_run_three_times_gives_one_cycle) {
    struct prog p = {0};
    record_trace_init(&p.t);
    struct pipeline m;
    load_pipeline(&p, &m);
    for (int r = 0; r < 3; r++)
        run_pipeline(&p, &m, 3);
    struct record_plan plan;
    CHECK(record_plan_build(&p.t, &plan) == 0);
    expect_pipeline(&plan, &m);
    check_round_trip(&plan, p.t.alloc_count);
    record_plan_free(&plan);
    record_trace_destroy(&p.t);
}

/*
 * A denoiser whose blocks run in another order than they were loaded (block 3 first, then
 * the rest backwards: a pipeline that loads its blocks in reverse): the order written is
 * the one used, with runs going down, and a run reads it back.
 */
TEST(learnt_order_is_the_order_of_use_not_of_allocation) {
    struct prog p = {0};
    record_trace_init(&p.t);
    uint64_t enc[4], den[10], dec[3];
    for (size_t i = 0; i < 4; i++)
        enc[i] = alloc(&p, 2 << 20);
    for (size_t i = 0; i < 10; i++)
        den[i] = alloc(&p, 4 << 20);
    for (size_t i = 0; i < 3; i++)
        dec[i] = alloc(&p, 3 << 20);
    static const size_t used[10] = {3, 9, 8, 7, 6, 5, 4, 2, 1, 0};
    uint64_t h = alloc(&p, 1 << 20);
    pass(&p, enc, 4, h);
    uint64_t latent = alloc(&p, 1 << 20);
    for (int step = 0; step < 3; step++) {
        uint64_t tmp = alloc(&p, 1 << 20);
        for (size_t i = 0; i < 10; i++)
            launch2(&p, "block", den[used[i]], tmp);
        launch2(&p, "axpby", latent, tmp);
        CHECK(record_trace_free(&p.t, tmp) == 0);
    }
    CHECK(record_trace_free(&p.t, h) == 0);
    pass(&p, dec, 3, latent);
    CHECK(record_trace_free(&p.t, latent) == 0);
    struct record_plan plan;
    CHECK(record_plan_build(&p.t, &plan) == 0);
    CHECK_EQ_U64(plan.component_count, 3);
    if (plan.component_count == 3) {
        const struct record_component *c = &plan.components[1];
        CHECK(same_set(c->allocs, c->alloc_count, den, 10));
        CHECK_EQ_U64(c->order_count, 10);
        bool same = c->order_count == 10;
        for (size_t i = 0; same && i < 10; i++)
            same = c->order[i] == den[used[i]];
        CHECK(same);
    }
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    CHECK(record_plan_write(f, &plan) == 0);
    fclose(f);
    char want[96];
    snprintf(want, sizeof want, "\norder = %llu, %llu-%llu, %llu-%llu\n",
             (unsigned long long)den[3], (unsigned long long)den[9], (unsigned long long)den[4],
             (unsigned long long)den[2], (unsigned long long)den[0]);
    CHECK(strstr(text, want) != NULL);
    free(text);
    check_round_trip(&plan, p.t.alloc_count);
    record_plan_free(&plan);
    record_trace_destroy(&p.t);
}

/* Two unet steps are the least that shows a loop; with one step every stage runs straight
 * once and nothing tells them apart: one component (a documented limit). */
TEST(straight_single_pass_is_one_component) {
    struct prog p = {0};
    record_trace_init(&p.t);
    struct pipeline m;
    load_pipeline(&p, &m);
    run_pipeline(&p, &m, 1);
    struct record_plan plan;
    CHECK(record_plan_build(&p.t, &plan) == 0);
    CHECK_EQ_U64(plan.component_count, 1);
    CHECK_EQ_U64(plan.sequence_length, 1);
    CHECK_EQ_U64(plan.components[0].alloc_count, 26);
    check_round_trip(&plan, p.t.alloc_count);
    record_plan_free(&plan);
    record_trace_destroy(&p.t);
}

/*
 * Harder: weights of a, b, c allocated interleaved (a shuffled order); per cycle
 * a -> b (loop) -> a -> c; a weight of `a` read twice within one layer (W bias W); an
 * allocation `shared` read inside a's pass and inside every b step; a long-lived buffer
 * `carry` read by b's steps and by c (like a latent kept to the end). Two cycles.
 */
TEST(interleaved_repeated_and_shared) {
    struct prog p = {0};
    record_trace_init(&p.t);
    uint64_t a[6], b[10], c[5], shared = 0, carry = 0;
    size_t na = 0, nb = 0, nc = 0;
    /* allocation order: deterministic shuffle of 21 weights + shared + carry */
    unsigned seed = 12345;
    size_t left_a = 6, left_b = 10, left_c = 5, left_extra = 2;
    while (left_a + left_b + left_c + left_extra) {
        seed = seed * 1103515245u + 12345u;
        unsigned pick = (seed >> 16) % (unsigned)(left_a + left_b + left_c + left_extra);
        if (pick < left_a)
            a[na++] = alloc(&p, 2 << 20), left_a--;
        else if ((pick -= (unsigned)left_a) < left_b)
            b[nb++] = alloc(&p, 3 << 20), left_b--;
        else if ((pick -= (unsigned)left_b) < left_c)
            c[nc++] = alloc(&p, 1 << 20), left_c--;
        else if (left_extra-- == 2)
            shared = alloc(&p, 1 << 20);
        else
            carry = alloc(&p, 1 << 20);
    }
    for (int cycle = 0; cycle < 2; cycle++) {
        for (int again = 0; again < 2; again++) {
            uint64_t h = alloc(&p, 2 << 20);
            pass(&p, a, 3, h);
            launch2(&p, "gather", shared, h);
            launch2(&p, "matmul", a[3], h);
            launch2(&p, "bias", a[4], h);
            launch2(&p, "matmul_t", a[3], h); /* W bias W */
            launch2(&p, "norm", a[5], h);
            CHECK(record_trace_free(&p.t, h) == 0);
            if (again == 0) {
                uint64_t act = alloc(&p, 4 << 20);
                for (int s = 0; s < 3; s++) {
                    pass(&p, b, 5, act);
                    launch2(&p, "gather", shared, act);
                    pass(&p, b + 5, 5, act);
                    launch2(&p, "axpby", carry, act);
                }
                CHECK(record_trace_free(&p.t, act) == 0);
            }
        }
        uint64_t map = alloc(&p, 4 << 20);
        launch2(&p, "upsample", carry, map);
        pass(&p, c, 5, map);
        CHECK(record_trace_free(&p.t, map) == 0);
    }
    struct record_plan plan;
    CHECK(record_plan_build(&p.t, &plan) == 0);
    /* first uses: a (c0), shared (c1, keep), b (c2), carry (c3, keep), c (c4) */
    CHECK_EQ_U64(plan.component_count, 5);
    if (plan.component_count == 5) {
        const struct record_component *k = plan.components;
        CHECK(same_set(k[0].allocs, k[0].alloc_count, a, 6) && !k[0].keep);
        CHECK(same_set(k[1].allocs, k[1].alloc_count, &shared, 1) && k[1].keep);
        CHECK(same_set(k[2].allocs, k[2].alloc_count, b, 10) && !k[2].keep);
        CHECK(same_set(k[3].allocs, k[3].alloc_count, &carry, 1) && k[3].keep);
        CHECK(same_set(k[4].allocs, k[4].alloc_count, c, 5) && !k[4].keep);
        size_t want[] = {0, 2, 0, 4};
        CHECK_EQ_U64(plan.sequence_length, 4);
        for (size_t i = 0; i < 4 && i < plan.sequence_length; i++)
            CHECK_EQ_U64(plan.sequence[i], want[i]);
    }
    check_round_trip(&plan, p.t.alloc_count);
    record_plan_free(&plan);
    record_trace_destroy(&p.t);
}

/* Three straight parts, the first used twice per cycle (a -> b -> a -> c), two cycles:
 * no loop anywhere, yet the return to `a` keeps the three apart. */
TEST(straight_parts_with_a_return) {
    struct prog p = {0};
    record_trace_init(&p.t);
    uint64_t a[4], b[4], c[2];
    for (size_t i = 0; i < 4; i++)
        a[i] = alloc(&p, 4 << 20);
    for (size_t i = 0; i < 4; i++)
        b[i] = alloc(&p, 4 << 20);
    for (size_t i = 0; i < 2; i++)
        c[i] = alloc(&p, 1 << 20); /* small: must not be taken for an interruption */
    for (int cycle = 0; cycle < 2; cycle++) {
        uint64_t h = alloc(&p, 2 << 20);
        pass(&p, a, 4, h);
        pass(&p, b, 4, h);
        pass(&p, a, 4, h);
        pass(&p, c, 2, h);
        CHECK(record_trace_free(&p.t, h) == 0);
    }
    struct record_plan plan;
    CHECK(record_plan_build(&p.t, &plan) == 0);
    CHECK_EQ_U64(plan.component_count, 3);
    if (plan.component_count == 3) {
        CHECK(same_set(plan.components[0].allocs, plan.components[0].alloc_count, a, 4));
        CHECK(same_set(plan.components[1].allocs, plan.components[1].alloc_count, b, 4));
        CHECK(same_set(plan.components[2].allocs, plan.components[2].alloc_count, c, 2));
        size_t want[] = {0, 1, 0, 2};
        CHECK_EQ_U64(plan.sequence_length, 4);
        for (size_t i = 0; i < 4 && i < plan.sequence_length; i++)
            CHECK_EQ_U64(plan.sequence[i], want[i]);
    }
    check_round_trip(&plan, p.t.alloc_count);
    record_plan_free(&plan);
    record_trace_destroy(&p.t);
}

/* Inside the loop: a weight read only in the first step, and a buffer read at the end of
 * every step and by the next launch when the loop exits: both belong to the loop's
 * component. A buffer `h` read by every launch of the whole run (a workspace made at start
 * and freed at exit) is shared by all: kept resident, out of the sequence. */
TEST(loop_members_join_the_loop_and_a_workspace_is_kept) {
    struct prog p = {0};
    record_trace_init(&p.t);
    uint64_t a[3], b[6], c[3];
    for (size_t i = 0; i < 3; i++)
        a[i] = alloc(&p, 4 << 20);
    for (size_t i = 0; i < 4; i++)
        b[i] = alloc(&p, 8 << 20);
    b[4] = alloc(&p, 1 << 20); /* first step only */
    b[5] = alloc(&p, 1 << 20); /* every step's end and the exit */
    for (size_t i = 0; i < 3; i++)
        c[i] = alloc(&p, 4 << 20);
    uint64_t h = alloc(&p, 2 << 20);
    pass(&p, a, 3, h);
    for (int s = 0; s < 4; s++) {
        launch2(&p, "matmul", b[0], h);
        if (s == 0)
            launch2(&p, "embed", b[4], h);
        pass(&p, b + 1, 3, h);
        launch2(&p, "axpby", b[5], h);
    }
    launch2(&p, "final", b[5], h);
    pass(&p, c, 3, h);
    CHECK(record_trace_free(&p.t, h) == 0); /* after the last launch */
    struct record_plan plan;
    CHECK(record_plan_build(&p.t, &plan) == 0);
    CHECK_EQ_U64(plan.component_count, 4);
    if (plan.component_count == 4) {
        const struct record_component *k = plan.components;
        CHECK(same_set(k[0].allocs, k[0].alloc_count, a, 3) && !k[0].keep);
        CHECK(same_set(k[1].allocs, k[1].alloc_count, &h, 1) && k[1].keep);
        CHECK(same_set(k[2].allocs, k[2].alloc_count, b, 6) && !k[2].keep);
        CHECK(same_set(k[3].allocs, k[3].alloc_count, c, 3) && !k[3].keep);
        size_t want[] = {0, 2, 3};
        CHECK_EQ_U64(plan.sequence_length, 3);
        for (size_t i = 0; i < 3 && i < plan.sequence_length; i++)
            CHECK_EQ_U64(plan.sequence[i], want[i]);
    }
    check_round_trip(&plan, p.t.alloc_count);
    record_plan_free(&plan);
    record_trace_destroy(&p.t);
}

/*
 * The reference pipeline as PyTorch's caching allocator shows it (`pipeline --like torch`):
 * what liboffload tracks are segments, each holding several tensors, and activations land
 * in whatever cached room is free, in any stage's segments. Shaped on a recorded trace:
 *   small    2 MiB: small weights of every stage and small activations, read by nearly
 *            every launch
 *   te[2]    20 MiB segments of text-encoder weights, read in turn (0 2 0 2)
 *   unet[12] 12 to 20 MiB of unet weights; unet[0] is read twice per step, unet[4] to [6]
 *            by the step's resblocks (4, 4 5, 5 6, 6, twice), and unet[4] holds room where
 *            vae activations land; unet[11] is read once per step and holds vae weights
 *            too, which the vae reads more often
 *   vae[3]   vae[0] holds vae weights and the unet's activations: read by every unet and
 *            every vae launch; vae[1], vae[2] vae weights
 *   late     a segment the vae's activations make, freed at exit: short-lived
 */
struct torch_model {
    uint64_t te[2], small, unet[12], vae[3];
};

static void load_torch(struct prog *p, struct torch_model *m) {
    m->te[0] = alloc(p, 20 << 20);
    m->small = alloc(p, 2 << 20);
    m->te[1] = alloc(p, 20 << 20);
    static const int unet_mib[12] = {20, 20, 12, 12, 16, 16, 16, 16, 12, 12, 20, 20};
    for (size_t i = 0; i < 12; i++)
        m->unet[i] = alloc(p, (uint64_t)unet_mib[i] << 20);
    for (size_t i = 0; i < 3; i++)
        m->vae[i] = alloc(p, 20 << 20);
}

static void launch_refs(struct prog *p, const char *k, const uint64_t *refs, size_t n) {
    CHECK(record_trace_launch(&p->t, k, refs, n) == 0);
}

static void torch_text_encoder(struct prog *p, const struct torch_model *m) {
    static const int layer_segment[6] = {0, 0, 1, 1, 0, 1};
    launch2(p, "embed_array", m->te[0], m->small);
    for (size_t layer = 0; layer < 6; layer++) {
        uint64_t w = m->te[layer_segment[layer]];
        launch1(p, "layernorm_array", m->small);
        launch2(p, "gemm_params", w, m->small);
        launch1(p, "bias_act_array", m->small);
        launch2(p, "gemm_params", w, m->small);
        launch1(p, "residual_bias_act_array", m->small);
    }
    launch1(p, "mean_rows_array", m->small);
}

static void torch_unet_step(struct prog *p, const struct torch_model *m) {
    static const int gemm_segment[] = {0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 10, 0, 11};
    for (size_t i = 0; i < sizeof gemm_segment / sizeof gemm_segment[0]; i++) {
        launch2(p, "layernorm_array", m->small, m->vae[0]);
        launch_refs(p, "gemm_params", (uint64_t[]){m->small, m->unet[gemm_segment[i]], m->vae[0]},
                    3);
        launch2(p, "bias_act_array", m->small, m->vae[0]);
    }
    for (int block = 0; block < 2; block++) {
        const uint64_t *u = m->unet;
        launch_refs(p, "layernorm_array", (uint64_t[]){m->small, u[4], m->vae[0]}, 3);
        launch_refs(p, "conv3x3_depthwise_array", (uint64_t[]){m->small, u[4], u[5], m->vae[0]}, 4);
        launch_refs(p, "gemm_params", (uint64_t[]){m->small, u[5], u[6], m->vae[0]}, 4);
        launch_refs(p, "residual_bias_act_array", (uint64_t[]){m->small, u[6], m->vae[0]}, 3);
    }
    launch2(p, "layernorm_array", m->unet[4], m->vae[0]);
    launch_refs(p, "gemm_params", (uint64_t[]){m->small, m->unet[4], m->vae[0]}, 3);
    launch2(p, "axpby_array", m->small, m->vae[0]);
}

static void torch_vae(struct prog *p, const struct torch_model *m) {
    const uint64_t *v = m->vae, *u = m->unet, s = m->small;
    uint64_t late = alloc(p, 2 << 20);
    launch_refs(p, "gemm_params", (uint64_t[]){s, v[0], late}, 3);
    launch2(p, "bias_act_array", s, v[0]);
    for (int i = 0; i < 2; i++)
        launch_refs(p, "gemm_params", (uint64_t[]){s, u[11], v[0]}, 3);
    launch2(p, "gemm_params", s, v[0]);
    for (int i = 0; i < 2; i++) {
        launch_refs(p, "gemm_params", (uint64_t[]){s, v[0], v[1]}, 3);
        launch2(p, "residual_bias_act_array", s, v[0]);
    }
    launch_refs(p, "gemm_params", (uint64_t[]){s, v[0], v[2]}, 3);
    for (int block = 0; block < 2; block++) {
        launch_refs(p, "layernorm_array", (uint64_t[]){s, v[0], v[1], late}, 4);
        launch_refs(p, "gemm_params", (uint64_t[]){s, v[0], v[1], v[2]}, 4);
        launch2(p, "upsample2x_array", u[4], late); /* a vae activation in a unet segment */
        launch_refs(p, "layernorm_array", (uint64_t[]){s, u[4], v[0], v[1]}, 4);
        launch_refs(p, "residual_bias_act_array", (uint64_t[]){s, u[4], v[0], v[2]}, 4);
    }
    launch2(p, "upsample2x_array", u[11], late);
    launch_refs(p, "layernorm_array", (uint64_t[]){s, u[11], v[0], v[1]}, 4);
    launch_refs(p, "residual_bias_act_array", (uint64_t[]){s, u[11], v[0], v[2]}, 4);
    launch_refs(p, "to_rgb_array", (uint64_t[]){s, u[11], v[0]}, 3);
    launch2(p, "axpby_array", s, v[0]);
    launch_refs(p, "gemm_params", (uint64_t[]){s, v[0], late}, 3);
    CHECK(record_trace_free(&p->t, late) == 0);
}

static void run_torch(struct prog *p, const struct torch_model *m, int steps) {
    torch_text_encoder(p, m);
    for (int s = 0; s < steps; s++)
        torch_unet_step(p, m);
    torch_vae(p, m);
}

/* The components a user wants of it: the three stages in the sequence, the segments read
 * by every stage or by two stages throughout kept resident: c0 te, c1 small (keep), c2
 * vae[0] (keep), c3 unet[0..10], c4 the vae with unet[11], whose vae weights the vae
 * reads more than the unet its own; unet[4] stays the unet's (a vae activation touches
 * it). */
static void expect_torch(const struct record_plan *plan, const struct torch_model *m, size_t runs) {
    CHECK_EQ_U64(plan->component_count, 5);
    if (plan->component_count != 5)
        return;
    const struct record_component *k = plan->components;
    uint64_t vae[3] = {m->unet[11], m->vae[1], m->vae[2]};
    CHECK(same_set(k[0].allocs, k[0].alloc_count, m->te, 2) && !k[0].keep);
    CHECK(same_set(k[1].allocs, k[1].alloc_count, &m->small, 1) && k[1].keep);
    CHECK(same_set(k[2].allocs, k[2].alloc_count, &m->vae[0], 1) && k[2].keep);
    CHECK(same_set(k[3].allocs, k[3].alloc_count, m->unet, 11) && !k[3].keep);
    CHECK(same_set(k[4].allocs, k[4].alloc_count, vae, 3) && !k[4].keep);
    size_t want[] = {0, 3, 4};
    CHECK_EQ_U64(plan->sequence_length, 3);
    for (size_t i = 0; i < 3 && i < plan->sequence_length; i++)
        CHECK_EQ_U64(plan->sequence[i], want[i]);
    CHECK_EQ_U64(plan->short_lived_count, runs); /* late, once per run */
    /* the unet's order is a step's order of first use */
    static const size_t unet_order[11] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    CHECK_EQ_U64(k[3].order_count, 11);
    bool same = k[3].order_count == 11;
    for (size_t i = 0; same && i < 11; i++)
        same = k[3].order[i] == m->unet[unet_order[i]];
    CHECK(same);
}

TEST(torch_segments_give_the_three_stages_and_their_workspaces) {
    for (int steps = 2; steps <= 4; steps++) {
        struct prog p = {0};
        record_trace_init(&p.t);
        struct torch_model m;
        load_torch(&p, &m);
        run_torch(&p, &m, steps);
        struct record_plan plan;
        CHECK(record_plan_build(&p.t, &plan) == 0);
        expect_torch(&plan, &m, 1);
        check_round_trip(&plan, p.t.alloc_count);
        record_plan_free(&plan);
        record_trace_destroy(&p.t);
    }
}

/* The same program making two images: launch for launch the same cycle twice, one cycle
 * in the sequence. */
TEST(torch_pipeline_run_twice_gives_one_cycle) {
    struct prog p = {0};
    record_trace_init(&p.t);
    struct torch_model m;
    load_torch(&p, &m);
    for (int run = 0; run < 2; run++)
        run_torch(&p, &m, 3);
    struct record_plan plan;
    CHECK(record_plan_build(&p.t, &plan) == 0);
    expect_torch(&plan, &m, 2);
    check_round_trip(&plan, p.t.alloc_count);
    record_plan_free(&plan);
    record_trace_destroy(&p.t);
}

/* Before its runs the program casts every weight once (a prologue: each read by one
 * launch, in load order), then makes three images: the loop found is the images', its
 * iteration mostly the unet's steps, which are taken; the prologue's reads are touches. The
 * default mode's three components, and with segments the torch ones. */
TEST(a_prologue_then_several_runs_keeps_the_stages) {
    struct prog p = {0};
    record_trace_init(&p.t);
    struct pipeline m;
    load_pipeline(&p, &m);
    for (size_t i = 0; i < 26; i++)
        launch1(&p, "cast", i);
    for (int run = 0; run < 3; run++)
        run_pipeline(&p, &m, 3);
    struct record_plan plan;
    CHECK(record_plan_build(&p.t, &plan) == 0);
    expect_pipeline(&plan, &m);
    check_round_trip(&plan, p.t.alloc_count);
    record_plan_free(&plan);
    record_trace_destroy(&p.t);

    record_trace_init(&p.t);
    p.next = 0;
    struct torch_model t;
    load_torch(&p, &t);
    for (uint64_t i = 0; i < 18; i++)
        launch1(&p, "cast", i);
    for (int run = 0; run < 3; run++)
        run_torch(&p, &t, 2);
    CHECK(record_plan_build(&p.t, &plan) == 0);
    expect_torch(&plan, &t, 3);
    check_round_trip(&plan, p.t.alloc_count);
    record_plan_free(&plan);
    record_trace_destroy(&p.t);
}

/* Workspaces are set aside only when something else is left: a program whose every
 * allocation is read by every launch is one component, in the sequence, not kept. */
TEST(only_workspaces_is_one_component) {
    struct prog p = {0};
    record_trace_init(&p.t);
    uint64_t w = alloc(&p, 4 << 20), x = alloc(&p, 2 << 20);
    for (int i = 0; i < 10; i++)
        launch2(&p, i % 2 ? "odd" : "even", w, x);
    struct record_plan plan;
    CHECK(record_plan_build(&p.t, &plan) == 0);
    CHECK_EQ_U64(plan.component_count, 1);
    if (plan.component_count == 1) {
        uint64_t both[2] = {w, x};
        CHECK(same_set(plan.components[0].allocs, plan.components[0].alloc_count, both, 2));
        CHECK(!plan.components[0].keep);
    }
    CHECK_EQ_U64(plan.sequence_length, 1);
    check_round_trip(&plan, p.t.alloc_count);
    record_plan_free(&plan);
    record_trace_destroy(&p.t);
}

/* Lines have a limit in offload.conf (197 characters): long allocs lists bridge free gaps
 * or list the rest in a comment, long sequences fall back; the file always parses. */
static int parse_written(const struct record_plan *plan, struct config *cfg) {
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    CHECK(record_plan_write(f, plan) == 0);
    fclose(f);
    struct config_error err = {{0}};
    int rc = config_parse_string(cfg, text, "long.conf", &err);
    if (rc != 0 || getenv("TEST_RECORD_DUMP"))
        fprintf(stderr, "%s\n---\n%s---\n", err.text, text);
    free(text);
    return rc;
}

TEST(long_lines_still_parse) {
    static uint64_t even[100], odd[50];
    for (size_t i = 0; i < 100; i++)
        even[i] = 2 * i; /* 0, 2, ..., 198 */
    for (size_t i = 0; i < 50; i++)
        odd[i] = 2 * i + 1; /* 1, 3, ..., 99; the odd ones above 100 are nobody's */
    struct record_component comps[60] = {
        {.name = "c0", .allocs = even, .alloc_count = 100, .bytes = 100},
        {.name = "c1", .allocs = odd, .alloc_count = 50, .bytes = 50},
    };
    size_t seq2[] = {0, 1};
    struct record_plan plan = {
        .components = comps, .component_count = 2, .sequence = seq2, .sequence_length = 2};
    struct config cfg;
    CHECK(parse_written(&plan, &cfg) == 0);
    CHECK(config_component_for_ordinal(&cfg, 0) == 0);
    CHECK(config_component_for_ordinal(&cfg, 150) == 0);
    CHECK(config_component_for_ordinal(&cfg, 151) == 0); /* bridged: nobody's */
    CHECK(config_component_for_ordinal(&cfg, 1) == 1);
    CHECK(config_component_for_ordinal(&cfg, 200) == -1);
    config_free(&cfg);

    /* orders: c0 used in a scattered order (no runs: far longer than a line), c1 in its
     * own order, which names 97 and 99 that the allocs line leaves out */
    static uint64_t scattered[100];
    for (size_t i = 0; i < 100; i++)
        scattered[i] = even[(i * 37) % 100];
    comps[0].order = scattered;
    comps[0].order_count = 100;
    comps[1].order = odd;
    comps[1].order_count = 50;
    CHECK(parse_written(&plan, &cfg) == 0);
    if (cfg.component_count == 2) {
        CHECK(order_read_back(&cfg, 0, &comps[0]));
        CHECK(order_read_back(&cfg, 1, &comps[1]));
        CHECK(cfg.components[0].order_count > 10 && cfg.components[0].order_count < 100);
        CHECK_EQ_U64(cfg.components[1].order_count, 48); /* 1 .. 95 */
    }
    config_free(&cfg);
    comps[0].order = comps[1].order = NULL;
    comps[0].order_count = comps[1].order_count = 0;

    /* 10 components, a 50-turn order: each once instead */
    static uint64_t one[60];
    for (size_t k = 0; k < 60; k++) {
        one[k] = 1000 + k;
        comps[k] = (struct record_component){.allocs = &one[k], .alloc_count = 1, .bytes = 1};
        snprintf(comps[k].name, sizeof comps[k].name, "c%zu", k);
    }
    size_t seq[120];
    for (size_t i = 0; i < 50; i++)
        seq[i] = (i * 3) % 10;
    plan = (struct record_plan){
        .components = comps, .component_count = 10, .sequence = seq, .sequence_length = 50};
    CHECK(parse_written(&plan, &cfg) == 0);
    CHECK(cfg.policy == CONFIG_POLICY_SEQUENCE);
    CHECK_EQ_U64(cfg.sequence_length, 10);
    config_free(&cfg);

    /* 60 components: no sequence line can hold them: lru */
    for (size_t i = 0; i < 120; i++)
        seq[i] = i % 60;
    plan.component_count = 60;
    plan.sequence_length = 120;
    CHECK(parse_written(&plan, &cfg) == 0);
    CHECK(cfg.policy == CONFIG_POLICY_LRU);
    CHECK_EQ_U64(cfg.component_count, 60);
    config_free(&cfg);
}

TEST(empty_trace_writes_a_valid_config) {
    struct record_trace t;
    record_trace_init(&t);
    CHECK(record_trace_alloc(&t, 0, 1 << 20) == 0);
    struct record_plan plan;
    CHECK(record_plan_build(&t, &plan) == 0);
    CHECK_EQ_U64(plan.component_count, 0);
    CHECK_EQ_U64(plan.sequence_length, 0);
    CHECK_EQ_U64(plan.unused_count, 1);
    check_round_trip(&plan, t.alloc_count);
    record_plan_free(&plan);
    record_trace_destroy(&t);
}

TEST(trace_builder_checks_ordinals_and_normalises_launches) {
    struct record_trace t;
    record_trace_init(&t);
    CHECK(record_trace_alloc(&t, 0, 10) == 0);
    CHECK(record_trace_alloc(&t, 0, 10) == -1); /* already taken */
    CHECK(record_trace_alloc(&t, 1, 20) == 0);
    CHECK(record_trace_free(&t, 5) == -1);
    uint64_t refs[] = {1, 0, 1, 7};
    CHECK(record_trace_launch(&t, "k", refs, 4) == 0);
    CHECK(record_trace_launch(&t, "k", refs, 0) == 0);
    CHECK_EQ_U64(t.launch_count, 2);
    CHECK_EQ_U64(t.launches[0].ref_count, 2); /* sorted, deduplicated, unknown dropped */
    CHECK_EQ_U64(t.refs[t.launches[0].first_ref], 0);
    CHECK_EQ_U64(t.refs[t.launches[0].first_ref + 1], 1);
    CHECK(t.launches[0].kernel == t.launches[1].kernel); /* interned */
    CHECK(t.launches[0].tick < t.launches[1].tick);
    CHECK(record_trace_free(&t, 0) == 0);
    CHECK(record_trace_free(&t, 0) == -1); /* twice */
    CHECK(t.allocs[0].free_tick > t.launches[1].tick);
    char name[32];
    for (int i = 0; i < 300; i++) { /* many names: the intern table grows */
        snprintf(name, sizeof name, "kernel_%d", i % 150);
        CHECK(record_trace_launch(&t, name, NULL, 0) == 0);
    }
    CHECK_EQ_U64(t.kernel_name_count, 151);
    /* a skipped ordinal (the allocation failed): later ones keep their number */
    CHECK(record_trace_alloc(&t, 3, 1 << 20) == 0);
    CHECK_EQ_U64(t.alloc_count, 4);
    CHECK_EQ_U64(t.allocs[2].bytes, 0);
    CHECK(record_trace_launch(&t, "k", (uint64_t[]){3}, 1) == 0);
    struct record_plan plan;
    CHECK(record_plan_build(&t, &plan) == 0);
    CHECK_EQ_U64(plan.component_count, 1); /* ordinal 1, alive and used throughout */
    CHECK_EQ_U64(plan.components[0].allocs[0], 1);
    CHECK_EQ_U64(plan.short_lived_count, 2); /* 0 (freed early), 3 (made late) */
    CHECK_EQ_U64(plan.unused_count, 0);      /* the skipped ordinal 2 is not counted */
    record_plan_free(&plan);
    record_trace_destroy(&t);
}

TEST(ranges_are_compressed) {
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    uint64_t o[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 14, 20, 21, 22, 23, 24, 25, 27, 28};
    CHECK(record_write_ranges(f, o, sizeof o / sizeof o[0]) == 0);
    fclose(f);
    CHECK_STR(text, "0-11, 14, 20-25, 27-28");
    free(text);
}

int main(void) {
    RUN(reference_pipeline_gives_three_components_in_order);
    RUN(pipeline_run_three_times_gives_one_cycle);
    RUN(learnt_order_is_the_order_of_use_not_of_allocation);
    RUN(straight_single_pass_is_one_component);
    RUN(interleaved_repeated_and_shared);
    RUN(straight_parts_with_a_return);
    RUN(loop_members_join_the_loop_and_a_workspace_is_kept);
    RUN(torch_segments_give_the_three_stages_and_their_workspaces);
    RUN(torch_pipeline_run_twice_gives_one_cycle);
    RUN(a_prologue_then_several_runs_keeps_the_stages);
    RUN(only_workspaces_is_one_component);
    RUN(long_lines_still_parse);
    RUN(empty_trace_writes_a_valid_config);
    RUN(trace_builder_checks_ordinals_and_normalises_launches);
    RUN(ranges_are_compressed);
    return check_summary();
}
