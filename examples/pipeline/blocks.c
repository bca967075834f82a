/* blocks.c — see blocks.h. */
#include "examples/pipeline/blocks.h"

#include <stdio.h>

void mlp_block_layout(struct mlp_block *b, struct component *c, int index, int width, int hidden) {
    char name[TENSOR_NAME_MAX];
    b->width = width;
    b->hidden = hidden;
#define NAME(suffix) (snprintf(name, sizeof name, "block%d." suffix, index), name)
    b->norm_gamma = component_add(c, NAME("norm_gamma"), (size_t)width, 1.0f, 0.1f);
    b->norm_beta = component_add(c, NAME("norm_beta"), (size_t)width, 0.0f, 0.05f);
    b->w_up = component_add_matrix(c, NAME("w_up"), hidden, width, 1.0f);
    b->b_up = component_add(c, NAME("b_up"), (size_t)hidden, 0.0f, 0.05f);
    /* A small residual branch keeps the stream's scale steady through the stack. */
    b->w_down = component_add_matrix(c, NAME("w_down"), width, hidden, 0.5f);
    b->b_down = component_add(c, NAME("b_down"), (size_t)width, 0.0f, 0.02f);
#undef NAME
}

size_t mlp_block_bytes_per_hidden(int width) {
    return (2 * (size_t)width + 1) * sizeof(float);
}

size_t mlp_block_fixed_bytes(int width) {
    return 3 * (size_t)width * sizeof(float);
}

void mlp_block_forward(struct engine *e, const struct mlp_block *b, CUdeviceptr h, int rows,
                       const struct mlp_scratch *s) {
    launch_layernorm(e, h, s->normed, b->norm_gamma->ptr, b->norm_beta->ptr, 0, 0, rows, b->width);
    launch_matmul(e, s->normed, b->w_up->ptr, s->up, rows, b->hidden, b->width);
    launch_bias_act(e, s->up, b->b_up->ptr, rows, b->hidden, ACT_GATED_LINEAR);
    launch_matmul(e, s->up, b->w_down->ptr, s->down, rows, b->width, b->hidden);
    launch_residual_bias_act(e, h, s->down, b->b_down->ptr, rows, b->width, ACT_NONE);
}

void spatial_block_layout(struct spatial_block *b, struct component *c, const char *prefix,
                          int channels) {
    char name[TENSOR_NAME_MAX];
    b->channels = channels;
    snprintf(name, sizeof name, "%s.depthwise", prefix);
    /* Centred on a 3x3 box blur: the picture gets smooth shapes, not pixel noise. */
    b->depthwise = component_add(c, name, (size_t)channels * 9, 1.0f / 9.0f, 0.08f);
    snprintf(name, sizeof name, "%s.w_mix", prefix);
    b->w_mix = component_add_matrix(c, name, channels, channels, 1.0f);
    snprintf(name, sizeof name, "%s.b_mix", prefix);
    b->b_mix = component_add(c, name, (size_t)channels, 0.0f, 0.05f);
}

void spatial_block_forward(struct engine *e, const struct spatial_block *b, CUdeviceptr h,
                           int height, int width, CUdeviceptr scale, CUdeviceptr shift,
                           const struct spatial_scratch *s) {
    int pixels = height * width, ch = b->channels;
    launch_layernorm(e, h, s->normed, 0, 0, scale, shift, pixels, ch);
    launch_conv3x3_depthwise(e, s->normed, s->mixed, b->depthwise->ptr, height, width, ch);
    launch_matmul(e, s->mixed, b->w_mix->ptr, s->out, pixels, ch, ch);
    launch_residual_bias_act(e, h, s->out, b->b_mix->ptr, pixels, ch, ACT_GATED_LINEAR);
}

void split_hidden(int *hidden, const int *weights, int count, double total) {
    double sum = 0;
    for (int i = 0; i < count; i++)
        sum += weights[i];
    for (int i = 0; i < count; i++) {
        int h = (int)(total * weights[i] / sum / 8.0 + 0.5) * 8;
        hidden[i] = h < 8 ? 8 : h;
    }
}
