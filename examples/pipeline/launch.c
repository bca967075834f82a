/* launch.c — see launch.h. */
#include "examples/pipeline/launch.h"

#include "examples/pipeline/cuda_check.h"
#include "examples/pipeline/engine.h"
#include "examples/pipeline/torch_launch.h"

#include <stdio.h>

#define BLOCK_THREADS 256

void kernels_lookup(struct engine *e) {
    struct {
        CUfunction *f;
        const char *name;
    } table[] = {
        {&e->kernels.matmul, "matmul"},
        {&e->kernels.bias_act, "bias_act"},
        {&e->kernels.layernorm, "layernorm"},
        {&e->kernels.residual_bias_act, "residual_bias_act"},
        {&e->kernels.axpby, "axpby"},
        {&e->kernels.mean_rows, "mean_rows"},
        {&e->kernels.embed, "embed"},
        {&e->kernels.conv3x3_depthwise, "conv3x3_depthwise"},
        {&e->kernels.upsample2x, "upsample2x"},
        {&e->kernels.to_rgb, "to_rgb"},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        char what[PATH_MAX + 64];
        snprintf(what, sizeof what, "kernel %s in %s", table[i].name, e->module_path);
        CU_CALL(cuModuleGetFunction, (table[i].f, e->module, table[i].name), what, "none");
    }
}

static void launch(struct engine *e, CUfunction f, const char *name, long long threads,
                   void **params) {
    if (threads <= 0)
        return;
    long long blocks = (threads + BLOCK_THREADS - 1) / BLOCK_THREADS;
    char what[64];
    snprintf(what, sizeof what, "launching %s", name);
    CU_CALL(cuLaunchKernel,
            (f, (unsigned)blocks, 1, 1, BLOCK_THREADS, 1, 1, 0, e->stream, params, NULL), what,
            e->component);
}

/* --like torch: the kernel's pointers travel as one Array struct, t[] (torch_launch.h). */
#define TORCH_LAUNCH(kernel, threads, params)                                                      \
    do {                                                                                           \
        torch_launch_array(e, e->torch.kernel, #kernel "_array", threads, params);                 \
        return;                                                                                    \
    } while (0)

void launch_matmul(struct engine *e, CUdeviceptr x, CUdeviceptr w, CUdeviceptr y, int rows,
                   int cols, int inner) {
    if (e->like_torch) {
        torch_launch_gemm(e, x, w, y, rows, cols, inner);
        return;
    }
    void *p[] = {&x, &w, &y, &rows, &cols, &inner};
    launch(e, e->kernels.matmul, "matmul", (long long)rows * cols, p);
}

void launch_bias_act(struct engine *e, CUdeviceptr y, CUdeviceptr b, int rows, int cols,
                     enum activation act) {
    int a = (int)act;
    if (e->like_torch) {
        CUdeviceptr t[] = {y, b};
        void *p[] = {t, &rows, &cols, &a};
        TORCH_LAUNCH(bias_act, (long long)rows * cols, p);
    }
    void *p[] = {&y, &b, &rows, &cols, &a};
    launch(e, e->kernels.bias_act, "bias_act", (long long)rows * cols, p);
}

void launch_layernorm(struct engine *e, CUdeviceptr x, CUdeviceptr y, CUdeviceptr gamma,
                      CUdeviceptr beta, CUdeviceptr scale, CUdeviceptr shift, int rows, int cols) {
    if (e->like_torch) {
        CUdeviceptr t[] = {x, y, gamma, beta, scale, shift};
        void *p[] = {t, &rows, &cols};
        TORCH_LAUNCH(layernorm, rows, p);
    }
    void *p[] = {&x, &y, &gamma, &beta, &scale, &shift, &rows, &cols};
    launch(e, e->kernels.layernorm, "layernorm", rows, p);
}

void launch_residual_bias_act(struct engine *e, CUdeviceptr h, CUdeviceptr y, CUdeviceptr b,
                              int rows, int cols, enum activation act) {
    int a = (int)act;
    if (e->like_torch) {
        CUdeviceptr t[] = {h, y, b};
        void *p[] = {t, &rows, &cols, &a};
        TORCH_LAUNCH(residual_bias_act, (long long)rows * cols, p);
    }
    void *p[] = {&h, &y, &b, &rows, &cols, &a};
    launch(e, e->kernels.residual_bias_act, "residual_bias_act", (long long)rows * cols, p);
}

void launch_axpby(struct engine *e, CUdeviceptr y, CUdeviceptr x, float a, float b,
                  long long count) {
    if (e->like_torch) {
        CUdeviceptr t[] = {y, x};
        void *p[] = {t, &a, &b, &count};
        TORCH_LAUNCH(axpby, count, p);
    }
    void *p[] = {&y, &x, &a, &b, &count};
    launch(e, e->kernels.axpby, "axpby", count, p);
}

void launch_mean_rows(struct engine *e, CUdeviceptr x, CUdeviceptr y, int rows, int cols) {
    if (e->like_torch) {
        CUdeviceptr t[] = {x, y};
        void *p[] = {t, &rows, &cols};
        TORCH_LAUNCH(mean_rows, cols, p);
    }
    void *p[] = {&x, &y, &rows, &cols};
    launch(e, e->kernels.mean_rows, "mean_rows", cols, p);
}

void launch_embed(struct engine *e, CUdeviceptr tokens, CUdeviceptr table, CUdeviceptr position,
                  CUdeviceptr out, int count, int cols, int vocab) {
    if (e->like_torch) {
        CUdeviceptr t[] = {tokens, table, position, out};
        void *p[] = {t, &count, &cols, &vocab};
        TORCH_LAUNCH(embed, (long long)count * cols, p);
    }
    void *p[] = {&tokens, &table, &position, &out, &count, &cols, &vocab};
    launch(e, e->kernels.embed, "embed", (long long)count * cols, p);
}

void launch_conv3x3_depthwise(struct engine *e, CUdeviceptr x, CUdeviceptr y, CUdeviceptr w,
                              int height, int width, int channels) {
    if (e->like_torch) {
        CUdeviceptr t[] = {x, y, w};
        void *p[] = {t, &height, &width, &channels};
        TORCH_LAUNCH(conv3x3_depthwise, (long long)height * width * channels, p);
    }
    void *p[] = {&x, &y, &w, &height, &width, &channels};
    launch(e, e->kernels.conv3x3_depthwise, "conv3x3_depthwise",
           (long long)height * width * channels, p);
}

void launch_upsample2x(struct engine *e, CUdeviceptr x, CUdeviceptr y, int height, int width,
                       int channels) {
    if (e->like_torch) {
        CUdeviceptr t[] = {x, y};
        void *p[] = {t, &height, &width, &channels};
        TORCH_LAUNCH(upsample2x, 4LL * height * width * channels, p);
    }
    void *p[] = {&x, &y, &height, &width, &channels};
    launch(e, e->kernels.upsample2x, "upsample2x", 4LL * height * width * channels, p);
}

void launch_to_rgb(struct engine *e, CUdeviceptr x, CUdeviceptr w, CUdeviceptr b, CUdeviceptr rgb,
                   int pixels, int channels) {
    if (e->like_torch) {
        CUdeviceptr t[] = {x, w, b, rgb};
        void *p[] = {t, &pixels, &channels};
        TORCH_LAUNCH(to_rgb, pixels, p);
    }
    void *p[] = {&x, &w, &b, &rgb, &pixels, &channels};
    launch(e, e->kernels.to_rgb, "to_rgb", pixels, p);
}
