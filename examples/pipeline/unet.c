/* unet.c — the denoiser: per step, a global MLP stack turns [context, timestep] into the
 * modulation of spatial blocks that estimate the latent's noise. See model.h. */
#include "examples/pipeline/model.h"

#include "examples/pipeline/cuda_check.h"
#include "examples/pipeline/device_memory.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GLOBAL_ROWS 2 /* row 0: the text context; row 1: the timestep embedding */
#define MOD_FLOATS (UNET_SPATIAL_BLOCKS * 2 * UNET_CHANNELS)
#define LATENT_PIXELS (LATENT_SIDE * LATENT_SIDE)

static const int block_weights[UNET_BLOCKS] = {2, 3, 4, 5, 5, 4, 3, 2};

static void layout_with(struct unet *m, const int *hidden) {
    memset(m, 0, sizeof *m);
    struct component *c = &m->c;
    c->name = "unet";
    for (int i = 0; i < UNET_BLOCKS; i++)
        mlp_block_layout(&m->blocks[i], c, i, MODEL_WIDTH, hidden[i]);
    m->final_gamma = component_add(c, "final_gamma", MODEL_WIDTH, 1.0f, 0.1f);
    m->final_beta = component_add(c, "final_beta", MODEL_WIDTH, 0.0f, 0.05f);
    /* Modulation stays moderate: scale and shift of about +-0.3. */
    m->w_head = component_add_matrix(c, "w_head", MOD_FLOATS, MODEL_WIDTH, 0.3f);
    m->b_head = component_add(c, "b_head", MOD_FLOATS, 0.0f, 0.05f);
    m->w_in = component_add_matrix(c, "w_in", UNET_CHANNELS, LATENT_CHANNELS, 1.0f);
    m->b_in = component_add(c, "b_in", UNET_CHANNELS, 0.0f, 0.05f);
    for (int i = 0; i < UNET_SPATIAL_BLOCKS; i++) {
        char prefix[32];
        snprintf(prefix, sizeof prefix, "spatial%d", i);
        spatial_block_layout(&m->spatial[i], c, prefix, UNET_CHANNELS);
    }
    m->w_out = component_add_matrix(c, "w_out", LATENT_CHANNELS, UNET_CHANNELS, 1.0f);
    m->b_out = component_add(c, "b_out", LATENT_CHANNELS, 0.0f, 0.05f);
}

void unet_layout(struct unet *m, double scale) {
    int hidden[UNET_BLOCKS] = {0};
    layout_with(m, hidden);
    double fixed = (double)component_bytes(&m->c);
    double total =
        (UNET_MIB * MIB * scale - fixed) / (double)mlp_block_bytes_per_hidden(MODEL_WIDTH);
    split_hidden(hidden, block_weights, UNET_BLOCKS, total);
    layout_with(m, hidden);
}

static uint64_t splitmix(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* A uniform float in [-1, 1) from the next splitmix64 output. */
static float uniform(uint64_t *state) {
    return (float)(int32_t)(uint32_t)splitmix(state) * 0x1p-31f;
}

/* The initial latent, from seed: value noise (random values on a lattice, interpolated
 * smoothly) summed over three octaves, plus a little white noise. Smooth noise gives the
 * picture shapes a few dozen pixels wide instead of pixel grain. */
static void latent_noise(float *z, uint64_t seed) {
    static const int cells[] = {4, 8, 16};
    static const float weight[] = {1.0f, 0.5f, 0.25f};
    uint64_t state = seed ^ 0x6c6174656e74ull; /* "latent" */
    for (size_t i = 0; i < (size_t)LATENT_PIXELS * LATENT_CHANNELS; i++)
        z[i] = 0.15f * uniform(&state);
    float lattice[17 * 17];
    for (int o = 0; o < 3; o++) {
        int n = cells[o], span = LATENT_SIDE / n;
        for (int ch = 0; ch < LATENT_CHANNELS; ch++) {
            for (int k = 0; k < (n + 1) * (n + 1); k++)
                lattice[k] = 1.7f * uniform(&state); /* unit variance */
            for (int y = 0; y < LATENT_SIDE; y++)
                for (int x = 0; x < LATENT_SIDE; x++) {
                    int cy = y / span, cx = x / span;
                    float fy = (float)(y % span) / (float)span,
                          fx = (float)(x % span) / (float)span;
                    fy = fy * fy * (3.0f - 2.0f * fy); /* smoothstep */
                    fx = fx * fx * (3.0f - 2.0f * fx);
                    const float *l = lattice + cy * (n + 1) + cx;
                    float top = l[0] + (l[1] - l[0]) * fx;
                    float bottom = l[n + 1] + (l[n + 2] - l[n + 1]) * fx;
                    z[(y * LATENT_SIDE + x) * LATENT_CHANNELS + ch] +=
                        weight[o] * (top + (bottom - top) * fy);
                }
        }
    }
}

/* Sinusoidal embedding of t in [0, 1], as diffusion models embed the timestep. */
static void timestep_embedding(float *out, double t) {
    int half = MODEL_WIDTH / 2;
    for (int j = 0; j < half; j++) {
        double freq = exp(-log(10000.0) * j / half);
        out[j] = (float)sin(1000.0 * t * freq);
        out[half + j] = (float)cos(1000.0 * t * freq);
    }
}

struct unet_acts {
    CUdeviceptr rows, pooled, mod, hidden, eps;
    CUdeviceptr gemm_table; /* --like torch: the grouped GEMM's operands, in device memory */
    struct mlp_scratch mlp;
    struct spatial_scratch spatial;
};

/* The step's two independent products, as grouped GEMM problems. */
static void in_projections(const struct unet *m, const struct unet_acts *a, CUdeviceptr latent,
                           struct torch_gemm_problem problems[2]) {
    problems[0] =
        (struct torch_gemm_problem){a->pooled, m->w_head->ptr, a->mod, 1, MOD_FLOATS, MODEL_WIDTH};
    problems[1] = (struct torch_gemm_problem){latent,        m->w_in->ptr,  a->hidden,
                                              LATENT_PIXELS, UNET_CHANNELS, LATENT_CHANNELS};
}

static void step(struct engine *e, const struct unet *m, const struct unet_acts *a,
                 CUdeviceptr context, CUdeviceptr latent, const float *time_row, float decay,
                 float rate) {
    const char *name = m->c.name;
    size_t row = MODEL_WIDTH * sizeof(float);
    CU_CALL(cuMemcpyDtoDAsync, (a->rows, context, row, e->stream), "copying the context", name);
    CU_CALL(cuMemcpyHtoDAsync, (a->rows + row, time_row, row, e->stream),
            "uploading the timestep embedding", name);
    for (int i = 0; i < UNET_BLOCKS; i++)
        mlp_block_forward(e, &m->blocks[i], a->rows, GLOBAL_ROWS, &a->mlp);
    launch_layernorm(e, a->rows, a->mlp.normed, m->final_gamma->ptr, m->final_beta->ptr, 0, 0,
                     GLOBAL_ROWS, MODEL_WIDTH);
    launch_mean_rows(e, a->mlp.normed, a->pooled, GLOBAL_ROWS, MODEL_WIDTH);
    /* Two independent products: the modulation from the pooled rows, the latent's channels
     * lifted. --like torch computes both in one grouped GEMM that finds its operands in
     * a table in device memory (uploaded once per forward: the addresses do not change). */
    if (e->like_torch) {
        struct torch_gemm_problem problems[2];
        in_projections(m, a, latent, problems);
        torch_launch_gemm_grouped(e, a->gemm_table, problems, 2);
    } else {
        launch_matmul(e, a->pooled, m->w_head->ptr, a->mod, 1, MOD_FLOATS, MODEL_WIDTH);
        launch_matmul(e, latent, m->w_in->ptr, a->hidden, LATENT_PIXELS, UNET_CHANNELS,
                      LATENT_CHANNELS);
    }
    launch_bias_act(e, a->mod, m->b_head->ptr, 1, MOD_FLOATS, ACT_NONE);
    launch_bias_act(e, a->hidden, m->b_in->ptr, LATENT_PIXELS, UNET_CHANNELS, ACT_NONE);
    for (int i = 0; i < UNET_SPATIAL_BLOCKS; i++) {
        CUdeviceptr scale = a->mod + (size_t)(2 * i) * UNET_CHANNELS * sizeof(float);
        CUdeviceptr shift = scale + UNET_CHANNELS * sizeof(float);
        spatial_block_forward(e, &m->spatial[i], a->hidden, LATENT_SIDE, LATENT_SIDE, scale, shift,
                              &a->spatial);
    }
    launch_layernorm(e, a->hidden, a->spatial.normed, 0, 0, 0, 0, LATENT_PIXELS, UNET_CHANNELS);
    launch_matmul(e, a->spatial.normed, m->w_out->ptr, a->eps, LATENT_PIXELS, LATENT_CHANNELS,
                  UNET_CHANNELS);
    launch_bias_act(e, a->eps, m->b_out->ptr, LATENT_PIXELS, LATENT_CHANNELS, ACT_NONE);
    launch_axpby(e, latent, a->eps, decay, rate, (long long)LATENT_PIXELS * LATENT_CHANNELS);
}

CUdeviceptr unet_forward(struct engine *e, const struct unet *m, CUdeviceptr context, int steps,
                         uint64_t seed) {
    const char *name = m->c.name;
    e->component = name;
    int max_hidden = 0;
    for (int i = 0; i < UNET_BLOCKS; i++)
        if (m->blocks[i].hidden > max_hidden)
            max_hidden = m->blocks[i].hidden;
    size_t row = MODEL_WIDTH * sizeof(float);
    size_t latent_bytes = (size_t)LATENT_PIXELS * LATENT_CHANNELS * sizeof(float);
    size_t map_bytes = (size_t)LATENT_PIXELS * UNET_CHANNELS * sizeof(float);

    /* Host inputs stay alive until the stream is synchronised: their uploads are async. */
    float *noise = malloc(latent_bytes);
    float *time_rows = malloc((size_t)steps * row);
    if (!noise || !time_rows) {
        fprintf(stderr, "pipeline: out of host memory for the unet's inputs\n");
        exit(1);
    }
    latent_noise(noise, seed);
    for (int i = 0; i < steps; i++)
        timestep_embedding(time_rows + (size_t)i * MODEL_WIDTH, 1.0 - (double)i / steps);

    CUdeviceptr latent = engine_alloc(e, latent_bytes, name, "act.latent");
    struct unet_acts a = {
        .rows = engine_alloc(e, GLOBAL_ROWS * row, name, "act.rows"),
        .pooled = engine_alloc(e, row, name, "act.pooled"),
        .mod = engine_alloc(e, MOD_FLOATS * sizeof(float), name, "act.modulation"),
        .hidden = engine_alloc(e, map_bytes, name, "act.hidden"),
        .eps = engine_alloc(e, latent_bytes, name, "act.eps"),
        .mlp =
            {
                .normed = engine_alloc(e, GLOBAL_ROWS * row, name, "act.normed"),
                .up = engine_alloc(e, (size_t)GLOBAL_ROWS * max_hidden * sizeof(float), name,
                                   "act.up"),
                .down = engine_alloc(e, GLOBAL_ROWS * row, name, "act.down"),
            },
        .spatial =
            {
                .normed = engine_alloc(e, map_bytes, name, "act.map_normed"),
                .mixed = engine_alloc(e, map_bytes, name, "act.map_mixed"),
                .out = engine_alloc(e, map_bytes, name, "act.map_out"),
            },
    };
    CU_CALL(cuMemcpyHtoDAsync, (latent, noise, latent_bytes, e->stream),
            "uploading the initial noise", name);
    unsigned char table_host[512]; /* alive until engine_sync below */
    if (e->like_torch) {
        struct torch_gemm_problem problems[2];
        in_projections(m, &a, latent, problems);
        size_t bytes = torch_gemm_table_bytes(2);
        if (bytes > sizeof table_host)
            abort();
        a.gemm_table = engine_alloc(e, bytes, name, "act.gemm_table");
        torch_gemm_table_upload(e, a.gemm_table, table_host, problems, 2);
    }
    /* Each step removes a share of the estimated noise: after all steps the latent has
     * moved by about 0.8 of the average estimate, whatever the number of steps. */
    for (int i = 0; i < steps; i++)
        step(e, m, &a, context, latent, time_rows + (size_t)i * MODEL_WIDTH, 1.0f,
             -0.8f / (float)steps);
    engine_sync(e);

    free(noise);
    free(time_rows);
    CUdeviceptr to_free[] = {a.rows,          a.pooled,      a.mod,
                             a.hidden,        a.eps,         a.mlp.normed,
                             a.mlp.up,        a.mlp.down,    a.spatial.normed,
                             a.spatial.mixed, a.spatial.out, a.gemm_table};
    for (size_t i = 0; i < sizeof to_free / sizeof to_free[0]; i++)
        engine_free(e, to_free[i], name, "activation");
    return latent;
}
