/* weights.c — see weights.h. */
#include "examples/pipeline/weights.h"

#include "examples/pipeline/cuda_check.h"
#include "examples/pipeline/device_memory.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Host staging for uploads: generated and copied a piece at a time, so it stays in cache
 * and a 40 MiB tensor needs no 40 MiB host buffer. */
#define UPLOAD_CHUNK_FLOATS (256 * 1024)

#define GOLDEN_GAMMA 0x9E3779B97F4A7C15ull

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t fnv1a(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

static uint64_t tensor_key(const char *component, const char *tensor, uint64_t seed) {
    return mix64(mix64(seed ^ fnv1a(component)) ^ fnv1a(tensor));
}

struct tensor *component_add(struct component *c, const char *name, size_t count, float center,
                             float amplitude) {
    if (c->tensor_count >= COMPONENT_MAX_TENSORS) {
        fprintf(stderr, "pipeline: %s has more than %d tensors\n", c->name, COMPONENT_MAX_TENSORS);
        abort();
    }
    struct tensor *t = &c->tensors[c->tensor_count++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->count = count;
    t->center = center;
    t->amplitude = amplitude;
    return t;
}

struct tensor *component_add_matrix(struct component *c, const char *name, int rows, int inner,
                                    float gain) {
    /* uniform(-a, a) has variance a^2/3: a = gain * sqrt(3 / inner) keeps the variance of
     * each output at gain^2 for unit-variance inputs. */
    float amplitude = gain * sqrtf(3.0f / (float)inner);
    return component_add(c, name, (size_t)rows * (size_t)inner, 0.0f, amplitude);
}

size_t component_bytes(const struct component *c) {
    size_t bytes = 0;
    for (size_t i = 0; i < c->tensor_count; i++)
        bytes += c->tensors[i].count * sizeof(float);
    return bytes;
}

/* Counter-based: word w is mix64(key + (w + 1) * gamma); element i is the low (even i) or
 * high (odd i) half of word i/2. Any range can be produced without what comes before it. */
static float element(const struct tensor *t, uint32_t bits) {
    return t->center + (float)(int32_t)bits * (t->amplitude * 0x1p-31f);
}

void tensor_values(const struct component *c, const struct tensor *t, uint64_t seed, size_t first,
                   float *out, size_t count) {
    uint64_t key = tensor_key(c->name, t->name, seed);
    size_t i = first, end = first + count;
    if (i < end && (i & 1)) {
        *out++ = element(t, (uint32_t)(mix64(key + (i / 2 + 1) * GOLDEN_GAMMA) >> 32));
        i++;
    }
    for (; i + 1 < end; i += 2) {
        uint64_t word = mix64(key + (i / 2 + 1) * GOLDEN_GAMMA);
        *out++ = element(t, (uint32_t)word);
        *out++ = element(t, (uint32_t)(word >> 32));
    }
    if (i < end)
        *out = element(t, (uint32_t)mix64(key + (i / 2 + 1) * GOLDEN_GAMMA));
}

void component_load(struct engine *e, struct component *c, uint64_t seed) {
    float *staging = malloc(UPLOAD_CHUNK_FLOATS * sizeof(float));
    if (!staging) {
        fprintf(stderr, "pipeline: out of host memory loading %s\n", c->name);
        exit(1);
    }
    for (size_t i = 0; i < c->tensor_count; i++) {
        struct tensor *t = &c->tensors[i];
        t->ptr = engine_alloc(e, t->count * sizeof(float), c->name, t->name);
        char what[128];
        snprintf(what, sizeof what, "uploading %s/%s", c->name, t->name);
        for (size_t done = 0; done < t->count; done += UPLOAD_CHUNK_FLOATS) {
            size_t n =
                t->count - done < UPLOAD_CHUNK_FLOATS ? t->count - done : UPLOAD_CHUNK_FLOATS;
            tensor_values(c, t, seed, done, staging, n);
            CU_CALL(cuMemcpyHtoD, (t->ptr + done * sizeof(float), staging, n * sizeof(float)), what,
                    c->name);
        }
    }
    free(staging);
}

void component_free(struct engine *e, struct component *c) {
    for (size_t i = 0; i < c->tensor_count; i++) {
        engine_free(e, c->tensors[i].ptr, c->name, c->tensors[i].name);
        c->tensors[i].ptr = 0;
    }
}
