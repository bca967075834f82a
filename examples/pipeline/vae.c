/* vae.c — the decoder: latent -> spatial blocks at 64, 128 and 256 pixels, modulated by a
 * global MLP stack over the latent's pooled features -> 8-bit RGB. See model.h. */
#include "examples/pipeline/model.h"

#include "examples/pipeline/cuda_check.h"
#include "examples/pipeline/device_memory.h"

#include <stdio.h>
#include <string.h>

static const int block_weights[VAE_BLOCKS] = {3, 4, 4, 5};
static const int stage_channels[VAE_STAGES] = {48, 24, 12};

static int mod_floats(void) {
    int n = 0;
    for (int s = 0; s < VAE_STAGES; s++)
        n += 2 * stage_channels[s];
    return n;
}

static void layout_with(struct vae *m, const int *hidden) {
    memset(m, 0, sizeof *m);
    struct component *c = &m->c;
    c->name = "vae";
    int c0 = stage_channels[0];
    m->w_in = component_add_matrix(c, "w_in", c0, LATENT_CHANNELS, 1.0f);
    m->b_in = component_add(c, "b_in", (size_t)c0, 0.0f, 0.05f);
    m->w_global = component_add_matrix(c, "w_global", MODEL_WIDTH, c0, 1.0f);
    m->b_global = component_add(c, "b_global", MODEL_WIDTH, 0.0f, 0.05f);
    for (int i = 0; i < VAE_BLOCKS; i++)
        mlp_block_layout(&m->blocks[i], c, i, MODEL_WIDTH, hidden[i]);
    m->final_gamma = component_add(c, "final_gamma", MODEL_WIDTH, 1.0f, 0.1f);
    m->final_beta = component_add(c, "final_beta", MODEL_WIDTH, 0.0f, 0.05f);
    m->w_head = component_add_matrix(c, "w_head", mod_floats(), MODEL_WIDTH, 0.3f);
    m->b_head = component_add(c, "b_head", (size_t)mod_floats(), 0.0f, 0.05f);
    for (int s = 0; s < VAE_STAGES; s++) {
        char name[32];
        if (s > 0) {
            snprintf(name, sizeof name, "stage%d.w_reduce", s);
            m->w_reduce[s] =
                component_add_matrix(c, name, stage_channels[s], stage_channels[s - 1], 1.0f);
            snprintf(name, sizeof name, "stage%d.b_reduce", s);
            m->b_reduce[s] = component_add(c, name, (size_t)stage_channels[s], 0.0f, 0.05f);
        }
        snprintf(name, sizeof name, "stage%d", s);
        spatial_block_layout(&m->spatial[s], c, name, stage_channels[s]);
    }
    int last = stage_channels[VAE_STAGES - 1];
    m->w_rgb = component_add_matrix(c, "w_rgb", 3, last, 0.6f);
    m->b_rgb = component_add(c, "b_rgb", 3, 0.0f, 0.1f);
}

void vae_layout(struct vae *m, double scale) {
    int hidden[VAE_BLOCKS] = {0};
    layout_with(m, hidden);
    double fixed = (double)component_bytes(&m->c);
    double total =
        (VAE_MIB * MIB * scale - fixed) / (double)mlp_block_bytes_per_hidden(MODEL_WIDTH);
    split_hidden(hidden, block_weights, VAE_BLOCKS, total);
    layout_with(m, hidden);
}

void vae_forward(struct engine *e, const struct vae *m, CUdeviceptr latent, unsigned char *rgb) {
    const char *name = m->c.name;
    e->component = name;
    int max_hidden = 0;
    for (int i = 0; i < VAE_BLOCKS; i++)
        if (m->blocks[i].hidden > max_hidden)
            max_hidden = m->blocks[i].hidden;
    size_t row = MODEL_WIDTH * sizeof(float);
    int side[VAE_STAGES];
    size_t map_bytes[VAE_STAGES], largest_map = 0, largest_narrowed = 0;
    for (int s = 0; s < VAE_STAGES; s++) {
        side[s] = LATENT_SIDE << s;
        map_bytes[s] = (size_t)side[s] * side[s] * stage_channels[s] * sizeof(float);
        if (map_bytes[s] > largest_map)
            largest_map = map_bytes[s];
        if (s > 0) {
            size_t narrowed = (size_t)side[s - 1] * side[s - 1] * stage_channels[s] * sizeof(float);
            if (narrowed > largest_narrowed)
                largest_narrowed = narrowed;
        }
    }
    size_t image_bytes = (size_t)IMAGE_SIDE * IMAGE_SIDE * 3;

    CUdeviceptr pooled =
        engine_alloc(e, (size_t)stage_channels[0] * sizeof(float), name, "act.pooled");
    CUdeviceptr global = engine_alloc(e, row, name, "act.global");
    CUdeviceptr mod = engine_alloc(e, (size_t)mod_floats() * sizeof(float), name, "act.modulation");
    struct mlp_scratch mlp = {
        .normed = engine_alloc(e, row, name, "act.normed"),
        .up = engine_alloc(e, (size_t)max_hidden * sizeof(float), name, "act.up"),
        .down = engine_alloc(e, row, name, "act.down"),
    };
    CUdeviceptr maps[VAE_STAGES];
    for (int s = 0; s < VAE_STAGES; s++) {
        char tensor[32];
        snprintf(tensor, sizeof tensor, "act.stage%d", s);
        maps[s] = engine_alloc(e, map_bytes[s], name, tensor);
    }
    CUdeviceptr narrowed = engine_alloc(e, largest_narrowed, name, "act.narrowed");
    /* One set of scratch maps, sized for the largest stage, serves every stage. */
    struct spatial_scratch scratch = {
        .normed = engine_alloc(e, largest_map, name, "act.map_normed"),
        .mixed = engine_alloc(e, largest_map, name, "act.map_mixed"),
        .out = engine_alloc(e, largest_map, name, "act.map_out"),
    };
    CUdeviceptr image = engine_alloc(e, image_bytes, name, "act.image");

    /* Global path: pooled features of the latent -> MLP stack -> per-stage modulation. */
    int c0 = stage_channels[0], pixels0 = side[0] * side[0];
    launch_matmul(e, latent, m->w_in->ptr, maps[0], pixels0, c0, LATENT_CHANNELS);
    launch_bias_act(e, maps[0], m->b_in->ptr, pixels0, c0, ACT_NONE);
    launch_mean_rows(e, maps[0], pooled, pixels0, c0);
    launch_matmul(e, pooled, m->w_global->ptr, global, 1, MODEL_WIDTH, c0);
    launch_bias_act(e, global, m->b_global->ptr, 1, MODEL_WIDTH, ACT_NONE);
    for (int i = 0; i < VAE_BLOCKS; i++)
        mlp_block_forward(e, &m->blocks[i], global, 1, &mlp);
    launch_layernorm(e, global, mlp.normed, m->final_gamma->ptr, m->final_beta->ptr, 0, 0, 1,
                     MODEL_WIDTH);
    launch_matmul(e, mlp.normed, m->w_head->ptr, mod, 1, mod_floats(), MODEL_WIDTH);
    launch_bias_act(e, mod, m->b_head->ptr, 1, mod_floats(), ACT_NONE);

    /* Spatial path: a block per stage; between stages, narrow the channels, then upsample
     * (in that order the upsampling moves half the data). */
    size_t mod_offset = 0;
    for (int s = 0; s < VAE_STAGES; s++) {
        int ch = stage_channels[s];
        if (s > 0) {
            int below = side[s - 1] * side[s - 1];
            launch_matmul(e, maps[s - 1], m->w_reduce[s]->ptr, narrowed, below, ch,
                          stage_channels[s - 1]);
            launch_bias_act(e, narrowed, m->b_reduce[s]->ptr, below, ch, ACT_NONE);
            launch_upsample2x(e, narrowed, maps[s], side[s - 1], side[s - 1], ch);
        }
        CUdeviceptr scale = mod + mod_offset * sizeof(float);
        CUdeviceptr shift = scale + (size_t)ch * sizeof(float);
        mod_offset += 2 * (size_t)ch;
        spatial_block_forward(e, &m->spatial[s], maps[s], side[s], side[s], scale, shift, &scratch);
    }
    int last = VAE_STAGES - 1;
    launch_to_rgb(e, maps[last], m->w_rgb->ptr, m->b_rgb->ptr, image, IMAGE_SIDE * IMAGE_SIDE,
                  stage_channels[last]);
    CU_CALL(cuMemcpyDtoHAsync, (rgb, image, image_bytes, e->stream), "copying the image back",
            name);
    engine_sync(e);

    CUdeviceptr to_free[] = {pooled,   global,         mod,           mlp.normed,  mlp.up, mlp.down,
                             narrowed, scratch.normed, scratch.mixed, scratch.out, image};
    for (size_t i = 0; i < sizeof to_free / sizeof to_free[0]; i++)
        engine_free(e, to_free[i], name, "activation");
    for (int s = 0; s < VAE_STAGES; s++)
        engine_free(e, maps[s], name, "activation");
}
