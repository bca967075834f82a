/*
 * blocks.h — the two layer types every component is a stack of.
 *
 * mlp_block (pre-norm residual MLP on rows of width `width`):
 *     h = h + W_down . act(W_up . layernorm(h) + b_up) + b_down
 * It holds nearly all the weights: W_up and W_down are [hidden][width] and [width][hidden].
 *
 * spatial_block (on a [height*width][channels] feature map, modulated by a conditioning
 * vector, like the adaptive group norm of a U-Net resblock):
 *     n = layernorm(h) * (1 + scale) + shift;  h = h + act(W_mix . conv3x3_dw(n) + b_mix)
 * Its weights are small (under 1 MiB); its activations are the large ones.
 */
#ifndef PIPELINE_BLOCKS_H
#define PIPELINE_BLOCKS_H

#include "examples/pipeline/engine.h"
#include "examples/pipeline/weights.h"

struct mlp_block {
    int width, hidden;
    struct tensor *norm_gamma, *norm_beta, *w_up, *b_up, *w_down, *b_down;
};

/* Scratch rows for an mlp_block stack: normed [rows][width], up [rows][max hidden]. */
struct mlp_scratch {
    CUdeviceptr normed, up, down;
};

void mlp_block_layout(struct mlp_block *b, struct component *c, int index, int width, int hidden);

/* h[rows][width] goes through the block in place. */
void mlp_block_forward(struct engine *e, const struct mlp_block *b, CUdeviceptr h, int rows,
                       const struct mlp_scratch *s);

/* Bytes of one mlp_block of the given width, per unit of hidden and fixed. */
size_t mlp_block_bytes_per_hidden(int width);
size_t mlp_block_fixed_bytes(int width);

struct spatial_block {
    int channels;
    struct tensor *depthwise, *w_mix, *b_mix;
};

/* Scratch maps for a spatial block, each [pixels][channels]. */
struct spatial_scratch {
    CUdeviceptr normed, mixed, out;
};

void spatial_block_layout(struct spatial_block *b, struct component *c, const char *prefix,
                          int channels);

/* h[height*width][channels] in place; scale and shift point at `channels` floats each. */
void spatial_block_forward(struct engine *e, const struct spatial_block *b, CUdeviceptr h,
                           int height, int width, CUdeviceptr scale, CUdeviceptr shift,
                           const struct spatial_scratch *s);

/* Splits `total` into hidden widths proportional to weights[0..count), each a multiple
 * of 8 and at least 8. */
void split_hidden(int *hidden, const int *weights, int count, double total);

#endif /* PIPELINE_BLOCKS_H */
