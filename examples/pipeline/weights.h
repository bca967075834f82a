/*
 * weights.h — a component's weight tensors: their layout, their deterministic values,
 * and their life on the device.
 *
 * A tensor's values are pseudo-random, from (seed, component name, tensor name) only:
 * uniform in [center - amplitude, center + amplitude], drawn with splitmix64. So the same
 * seed gives the same model in every process, whatever else the program did, and each
 * tensor is its own cuMemAlloc allocation, uploaded with cuMemcpyHtoD like a checkpoint
 * read by from_pretrained (its own allocation in the default mode, a block of the
 * allocator's with --like torch: device_memory.h).
 */
#ifndef PIPELINE_WEIGHTS_H
#define PIPELINE_WEIGHTS_H

#include <cuda.h>
#include <stddef.h>
#include <stdint.h>

struct engine;

#define TENSOR_NAME_MAX 48
#define COMPONENT_MAX_TENSORS 160

struct tensor {
    char name[TENSOR_NAME_MAX]; /* "block3.w_up" */
    size_t count;               /* float elements */
    float center, amplitude;    /* values are uniform in center +- amplitude */
    CUdeviceptr ptr;            /* 0 until loaded */
};

/* One loaded model: its tensors in allocation order. */
struct component {
    const char *name; /* "text_encoder", "unet", "vae" */
    struct tensor tensors[COMPONENT_MAX_TENSORS];
    size_t tensor_count;
};

/* Appends a tensor of `count` floats and returns it (the address stays valid: the array
 * never moves). The layout step only: nothing is allocated yet. */
struct tensor *component_add(struct component *c, const char *name, size_t count, float center,
                             float amplitude);

/* A weight matrix [rows][inner] initialised for unit-variance outputs times gain. */
struct tensor *component_add_matrix(struct component *c, const char *name, int rows, int inner,
                                    float gain);

size_t component_bytes(const struct component *c);

/* Allocates and uploads every tensor, in order. Exits with a message on failure. */
void component_load(struct engine *e, struct component *c, uint64_t seed);

/* Frees every tensor. */
void component_free(struct engine *e, struct component *c);

/* Writes the tensor's values into out[0..count), starting at element `first`: the same
 * numbers component_load uploads (for tests and --tensors). */
void tensor_values(const struct component *c, const struct tensor *t, uint64_t seed, size_t first,
                   float *out, size_t count);

#endif /* PIPELINE_WEIGHTS_H */
