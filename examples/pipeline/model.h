/*
 * model.h — the three components of the pipeline, shaped like a latent diffusion model,
 * and their forward passes.
 *
 *   text_encoder  prompt -> tokens -> embeddings -> 6 MLP blocks -> pooled context
 *   unet          per step: [context, timestep embedding] -> 8 MLP blocks -> modulation
 *                 of 2 spatial blocks on the 64x64x4 latent -> noise estimate -> update
 *   vae           latent -> 4 MLP blocks (global) + spatial blocks at 64, 128, 256 pixels
 *                 with bilinear upsampling -> 256x256 RGB
 *
 * Weight bytes at scale 1: text_encoder 150 MiB, unet 650 MiB, vae 200 MiB; every size
 * scales with --scale (hidden widths and the vocabulary grow with it). Activations are
 * allocated when a component runs and freed when the run ends; the latent is reused
 * across steps.
 */
#ifndef PIPELINE_MODEL_H
#define PIPELINE_MODEL_H

#include "examples/pipeline/blocks.h"
#include "examples/pipeline/engine.h"
#include "examples/pipeline/weights.h"

#include <stdint.h>

#define MODEL_WIDTH 512 /* the width of every MLP stack */
#define MIB (1024.0 * 1024.0)

#define TEXT_TOKENS 16
#define TEXT_BLOCKS 6
#define TEXT_MIB 150.0

#define UNET_BLOCKS 8
#define UNET_SPATIAL_BLOCKS 2
#define UNET_CHANNELS 80 /* a [4096][80] float map is 1.25 MiB: above liboffload's min_size */
#define LATENT_SIDE 64
#define LATENT_CHANNELS 4
#define UNET_MIB 650.0

#define VAE_BLOCKS 4
#define VAE_STAGES 3 /* 64, 128, 256 pixels */
#define VAE_MIB 200.0
#define IMAGE_SIDE (LATENT_SIDE << (VAE_STAGES - 1))

struct text_encoder {
    struct component c;
    int vocab;
    struct tensor *token_table, *position_table, *final_gamma, *final_beta;
    struct mlp_block blocks[TEXT_BLOCKS];
};

struct unet {
    struct component c;
    struct mlp_block blocks[UNET_BLOCKS];
    struct tensor *final_gamma, *final_beta, *w_head, *b_head;
    struct tensor *w_in, *b_in, *w_out, *b_out;
    struct spatial_block spatial[UNET_SPATIAL_BLOCKS];
};

struct vae {
    struct component c;
    struct tensor *w_in, *b_in, *w_global, *b_global;
    struct mlp_block blocks[VAE_BLOCKS];
    struct tensor *final_gamma, *final_beta, *w_head, *b_head;
    struct tensor *w_reduce[VAE_STAGES], *b_reduce[VAE_STAGES]; /* [0] unused */
    struct spatial_block spatial[VAE_STAGES];
    struct tensor *w_rgb, *b_rgb;
};

/* Layout only (no driver call): the tensors at this scale, in allocation order. */
void text_encoder_layout(struct text_encoder *m, double scale);
void unet_layout(struct unet *m, double scale);
void vae_layout(struct vae *m, double scale);

/* Tokens of a prompt: BOS, one id per word (FNV-1a of the word, modulo the vocabulary),
 * EOS, padding. Returns the number of words that did not fit (they are dropped). */
int text_tokenize(const char *prompt, int vocab, int32_t tokens[TEXT_TOKENS]);

/* Encodes the prompt; returns a new allocation of MODEL_WIDTH floats (the context), which
 * the caller frees. */
CUdeviceptr text_encoder_forward(struct engine *e, const struct text_encoder *m,
                                 const char *prompt);

/* Runs `steps` denoising steps from noise drawn from seed; returns a new allocation of
 * LATENT_SIDE^2 * LATENT_CHANNELS floats (the latent), which the caller frees. */
CUdeviceptr unet_forward(struct engine *e, const struct unet *m, CUdeviceptr context, int steps,
                         uint64_t seed);

/* Decodes the latent into IMAGE_SIDE^2 * 3 bytes of RGB at `rgb` (host memory). */
void vae_forward(struct engine *e, const struct vae *m, CUdeviceptr latent, unsigned char *rgb);

#endif /* PIPELINE_MODEL_H */
