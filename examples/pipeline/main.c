/*
 * main.c — the reference pipeline's main flow, shaped like a diffusion pipeline:
 *
 *   open the driver -> load text_encoder, unet, vae one after another (from_pretrained)
 *   -> per run: encode the prompt, denoise N steps, decode -> checksum
 *   -> write the last image as PNG -> free everything.
 *
 * Written against the CUDA Driver API only; it knows nothing about liboffload.
 */
#include "examples/pipeline/args.h"
#include "examples/pipeline/caching_alloc.h"
#include "examples/pipeline/checksum.h"
#include "examples/pipeline/cuda_check.h"
#include "examples/pipeline/device_memory.h"
#include "examples/pipeline/engine.h"
#include "examples/pipeline/model.h"
#include "examples/pipeline/png.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

struct models {
    struct text_encoder text_encoder;
    struct unet unet;
    struct vae vae;
};

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void layout_models(struct models *m, double scale) {
    text_encoder_layout(&m->text_encoder, scale);
    unet_layout(&m->unet, scale);
    vae_layout(&m->vae, scale);
}

/* --tensors: every weight allocation in the order the pipeline makes them, then each
 * component's total (what it needs resident to run). */
static void print_tensors(struct component *const components[3]) {
    size_t index = 0, total = 0;
    printf("%-6s %-40s %12s\n", "index", "component/tensor", "bytes");
    for (int i = 0; i < 3; i++)
        for (size_t k = 0; k < components[i]->tensor_count; k++) {
            const struct tensor *t = &components[i]->tensors[k];
            char name[96];
            snprintf(name, sizeof name, "%s/%s", components[i]->name, t->name);
            printf("%-6zu %-40s %12zu\n", index++, name, t->count * sizeof(float));
        }
    for (int i = 0; i < 3; i++) {
        size_t bytes = component_bytes(components[i]), tracked = 0, large = 0;
        for (size_t k = 0; k < components[i]->tensor_count; k++) {
            size_t b = components[i]->tensors[k].count * sizeof(float);
            if (b >= ((size_t)1 << 20))
                tracked += b, large++;
        }
        char b1[32];
        printf("component %-13s %12zu bytes (%s) in %zu allocations, %zu of them >= 1 MiB "
               "(%zu bytes)\n",
               components[i]->name, bytes, format_bytes(bytes, b1, sizeof b1),
               components[i]->tensor_count, large, tracked);
        total += bytes;
    }
    char b2[32];
    printf("total %zu bytes (%s) in %zu allocations\n", total, format_bytes(total, b2, sizeof b2),
           index);
}

static void load(struct engine *e, struct component *c, uint64_t seed, bool quiet) {
    double start = now_seconds();
    struct caching_stats before = {0}, after = {0};
    if (e->cache)
        caching_alloc_stats(e->cache, &before);
    component_load(e, c, seed);
    if (e->cache)
        caching_alloc_stats(e->cache, &after);
    if (quiet)
        return;
    size_t small = 0;
    for (size_t i = 0; i < c->tensor_count; i++)
        small += c->tensors[i].count * sizeof(float) < ((size_t)1 << 20);
    char b[32];
    printf("load %-13s %10s in %3zu allocations (%zu under 1 MiB), %.2f s\n", c->name,
           format_bytes(component_bytes(c), b, sizeof b), c->tensor_count, small,
           now_seconds() - start);
    /* Which driver allocations (cuMemAlloc segments, or cuMemCreate pages) the load made,
     * numbered from 0 in the order the allocator made them: what `allocs =` counts. */
    if (after.segment_allocs > before.segment_allocs)
        printf("     %-13s segments %zu-%zu, %zu bytes reserved in all\n", c->name,
               before.segment_allocs, after.segment_allocs - 1, after.reserved);
    else if (e->cache)
        printf("     %-13s no new segment, %zu bytes reserved in all\n", c->name, after.reserved);
}

/* One image: prompt -> context -> latent -> rgb. Returns its checksum. */
static uint64_t generate(struct engine *e, struct models *m, const struct pipeline_args *a, int run,
                         unsigned char *rgb) {
    double t0 = now_seconds();
    CUdeviceptr context = text_encoder_forward(e, &m->text_encoder, a->prompt);
    double t1 = now_seconds();
    CUdeviceptr latent = unet_forward(e, &m->unet, context, a->steps, a->seed);
    double t2 = now_seconds();
    vae_forward(e, &m->vae, latent, rgb);
    double t3 = now_seconds();
    engine_free(e, context, m->text_encoder.c.name, "act.context");
    engine_free(e, latent, m->unet.c.name, "act.latent");
    e->component = NULL;
    if (!a->quiet) {
        char prefix[32] = "";
        if (a->runs > 1)
            snprintf(prefix, sizeof prefix, "run %d: ", run + 1);
        printf("%stext_encoder %.3f s\n", prefix, t1 - t0);
        printf("%sunet         %.3f s (%d steps)\n", prefix, t2 - t1, a->steps);
        printf("%svae          %.3f s\n", prefix, t3 - t2);
    }
    uint64_t sum = checksum_fnv1a64(rgb, (size_t)IMAGE_SIDE * IMAGE_SIDE * 3);
    printf("checksum: 0x%016" PRIx64 "\n", sum);
    fflush(stdout);
    return sum;
}

int main(int argc, char **argv) {
    /* Line by line even into a pipe or file: progress shows as it happens, in order with
     * what the driver (or a library in front of it) writes to stderr. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct pipeline_args a;
    switch (args_parse(argc, argv, &a)) {
    case ARGS_EXIT_OK:
        return 0;
    case ARGS_USAGE_ERROR:
        return 2;
    case ARGS_RUN:
        break;
    }
    struct models *m = calloc(1, sizeof *m);
    unsigned char *rgb = malloc((size_t)IMAGE_SIDE * IMAGE_SIDE * 3);
    if (!m || !rgb) {
        fprintf(stderr, "pipeline: out of host memory\n");
        return 1;
    }
    layout_models(m, a.scale);
    struct component *const components[3] = {&m->text_encoder.c, &m->unet.c, &m->vae.c};
    if (a.tensors) {
        print_tensors(components);
        free(m), free(rgb);
        return 0;
    }
    int32_t tokens[TEXT_TOKENS];
    int dropped = text_tokenize(a.prompt, m->text_encoder.vocab, tokens);
    if (dropped)
        fprintf(stderr, "pipeline: the prompt is longer than %d words; the last %d are ignored\n",
                TEXT_TOKENS - 2, dropped);

    double start = now_seconds();
    struct engine e;
    engine_open(&e, &a);
    if (!a.quiet) {
        char b[32];
        printf("device %s (%s), kernels %s%s%s\n", e.device_name,
               format_bytes(e.device_bytes, b, sizeof b), e.module_path,
               a.like_torch ? ", like torch, allocator " : "",
               a.like_torch ? allocator_name(a.allocator) : "");
    }
    for (int i = 0; i < 3; i++)
        load(&e, components[i], a.seed, a.quiet);

    uint64_t first = 0;
    int mismatches = 0;
    for (int run = 0; run < a.runs; run++) {
        uint64_t sum = generate(&e, m, &a, run, rgb);
        if (run == 0)
            first = sum;
        else if (sum != first)
            mismatches++;
    }
    if (png_write_rgb(a.out, rgb, IMAGE_SIDE, IMAGE_SIDE) != 0)
        return 1;
    for (int i = 2; i >= 0; i--)
        component_free(&e, components[i]);
    engine_close(&e);
    if (!a.quiet)
        printf("wrote %s (%dx%d RGB), %.2f s in all\n", a.out, IMAGE_SIDE, IMAGE_SIDE,
               now_seconds() - start);
    free(m), free(rgb);
    if (mismatches) {
        fprintf(stderr, "pipeline: %d of %d runs gave a different checksum than the first\n",
                mismatches, a.runs);
        return 1;
    }
    return 0;
}
