/*
 * launch.h — one typed helper per kernel of kernels.cu. Each helper sizes a 1-D grid of
 * 256-thread blocks for its element count and launches on the engine's stream, checked.
 * With --like torch each launches the kernel's PyTorch-shaped twin instead (pointers in an
 * Array struct, the GEMM's Params and tensor map: torch_launch.h), same arithmetic.
 */
#ifndef PIPELINE_LAUNCH_H
#define PIPELINE_LAUNCH_H

#include <cuda.h>

struct engine;

/* Every kernel of kernels.cu, looked up once by name after the module is loaded. */
struct kernels {
    CUfunction matmul, bias_act, layernorm, residual_bias_act, axpby, mean_rows, embed,
        conv3x3_depthwise, upsample2x, to_rgb;
};

enum activation { ACT_NONE = 0, ACT_GATED_LINEAR = 1 };

/* Finds every kernel in e->module; exits naming the first one missing. */
void kernels_lookup(struct engine *e);

/* y[rows][cols] = x[rows][inner] . w[cols][inner]^T */
void launch_matmul(struct engine *e, CUdeviceptr x, CUdeviceptr w, CUdeviceptr y, int rows,
                   int cols, int inner);
/* y = act(y + b) row-wise */
void launch_bias_act(struct engine *e, CUdeviceptr y, CUdeviceptr b, int rows, int cols,
                     enum activation act);
/* y = layernorm(x) per row, then * gamma + beta if gamma is not 0, then * (1 + scale) + shift
 * if scale is not 0 */
void launch_layernorm(struct engine *e, CUdeviceptr x, CUdeviceptr y, CUdeviceptr gamma,
                      CUdeviceptr beta, CUdeviceptr scale, CUdeviceptr shift, int rows, int cols);
/* h += act(y + b) row-wise: a residual branch's bias, activation and sum in one pass */
void launch_residual_bias_act(struct engine *e, CUdeviceptr h, CUdeviceptr y, CUdeviceptr b,
                              int rows, int cols, enum activation act);
/* y = a * y + b * x */
void launch_axpby(struct engine *e, CUdeviceptr y, CUdeviceptr x, float a, float b,
                  long long count);
/* y[cols] = mean of the rows of x */
void launch_mean_rows(struct engine *e, CUdeviceptr x, CUdeviceptr y, int rows, int cols);
/* out[t] = table[tokens[t]] + position[t] */
void launch_embed(struct engine *e, CUdeviceptr tokens, CUdeviceptr table, CUdeviceptr position,
                  CUdeviceptr out, int count, int cols, int vocab);
/* depthwise 3x3, zero padded, on a [height*width][channels] map; w is [channels][9] */
void launch_conv3x3_depthwise(struct engine *e, CUdeviceptr x, CUdeviceptr y, CUdeviceptr w,
                              int height, int width, int channels);
/* bilinear 2x: [height*width][channels] -> [2height*2width][channels] */
void launch_upsample2x(struct engine *e, CUdeviceptr x, CUdeviceptr y, int height, int width,
                       int channels);
/* 8-bit RGB from a [pixels][channels] map and a [3][channels] projection */
void launch_to_rgb(struct engine *e, CUdeviceptr x, CUdeviceptr w, CUdeviceptr b, CUdeviceptr rgb,
                   int pixels, int channels);

#endif /* PIPELINE_LAUNCH_H */
