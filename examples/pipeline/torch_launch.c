/* torch_launch.c — see torch_launch.h. */
#include "examples/pipeline/torch_launch.h"

#include "examples/pipeline/cuda_check.h"
#include "examples/pipeline/engine.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK_THREADS 256
#define MAP_CACHE_SLOTS 1024 /* open addressing; the pipeline has under 200 weights */
#define MAP_BOX_INNER 64     /* elements of a weight row in one TMA box */

_Static_assert(sizeof(struct gemm_params) == 256, "gemm_params is 256 bytes, as GemmParams");
_Static_assert(offsetof(struct gemm_params, w_map) == 128, "the map at offset 128");

struct map_slot {
    CUdeviceptr w;
    int cols, inner;
    CUtensorMap map;
};

struct tensor_map_cache {
    struct map_slot slots[MAP_CACHE_SLOTS];
    bool unsupported; /* the driver cannot encode maps: said once, then plain pointers */
};

static bool simulated(const struct engine *e) {
    return strncmp(e->device_name, ENGINE_SIM_PREFIX, strlen(ENGINE_SIM_PREFIX)) == 0;
}

/* The module's bytes, as a program carries its fatbin. */
static void *read_image(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    void *data = NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long n = ftell(f);
        if (n > 0 && fseek(f, 0, SEEK_SET) == 0 && (data = malloc((size_t)n)) &&
            fread(data, 1, (size_t)n, f) != (size_t)n) {
            free(data);
            data = NULL;
        }
        *size = n > 0 ? (size_t)n : 0;
    }
    fclose(f);
    return data;
}

static const struct {
    size_t offset;
    const char *name;
} kernel_table[] = {
    {offsetof(struct torch_kernels, bias_act), "bias_act_array"},
    {offsetof(struct torch_kernels, layernorm), "layernorm_array"},
    {offsetof(struct torch_kernels, residual_bias_act), "residual_bias_act_array"},
    {offsetof(struct torch_kernels, axpby), "axpby_array"},
    {offsetof(struct torch_kernels, mean_rows), "mean_rows_array"},
    {offsetof(struct torch_kernels, embed), "embed_array"},
    {offsetof(struct torch_kernels, conv3x3_depthwise), "conv3x3_depthwise_array"},
    {offsetof(struct torch_kernels, upsample2x), "upsample2x_array"},
    {offsetof(struct torch_kernels, to_rgb), "to_rgb_array"},
    {offsetof(struct torch_kernels, gemm), "gemm_params"},
    {offsetof(struct torch_kernels, gemm_grouped), "gemm_grouped"},
};

/* A driver without cuLibrary*: the same kernels as CUfunction handles from a module. */
static void open_as_module(struct engine *e, const void *image) {
    fprintf(stderr, "pipeline: cuLibraryLoadData: CUDA_ERROR_NOT_SUPPORTED; --like torch loads "
                    "its kernels with cuModuleLoadData instead\n");
    CU_CALL(cuModuleLoadData, (&e->module, image), "loading the kernels (module fallback)", "none");
    for (size_t i = 0; i < sizeof kernel_table / sizeof kernel_table[0]; i++) {
        CUfunction f;
        CU_CALL(cuModuleGetFunction, (&f, e->module, kernel_table[i].name), kernel_table[i].name,
                "none");
        *(CUkernel *)((char *)&e->torch + kernel_table[i].offset) = (CUkernel)f;
    }
}

void torch_open(struct engine *e) {
    size_t size = 0;
    void *image = read_image(e->module_path, &size);
    if (!image) {
        fprintf(stderr, "pipeline: cannot read the kernel library %s\n", e->module_path);
        exit(1);
    }
    CUresult r = cuLibraryLoadData(&e->library, image, NULL, NULL, 0, NULL, NULL, 0);
    if (r == CUDA_ERROR_NOT_SUPPORTED) {
        open_as_module(e, image);
    } else {
        char what[PATH_MAX + 16];
        snprintf(what, sizeof what, "loading %s", e->module_path);
        cuda_check(r, "cuLibraryLoadData", what, "none");
        for (size_t i = 0; i < sizeof kernel_table / sizeof kernel_table[0]; i++) {
            snprintf(what, sizeof what, "kernel %s in %s", kernel_table[i].name, e->module_path);
            CU_CALL(cuLibraryGetKernel,
                    ((CUkernel *)((char *)&e->torch + kernel_table[i].offset), e->library,
                     kernel_table[i].name),
                    what, "none");
        }
    }
    free(image); /* the driver keeps its own copy of the code */
    /* The maps inside must keep CUtensorMap's alignment (the driver checks 64 bytes). */
    size_t bytes = (sizeof *e->maps + _Alignof(struct tensor_map_cache) - 1) /
                   _Alignof(struct tensor_map_cache) * _Alignof(struct tensor_map_cache);
    e->maps = aligned_alloc(_Alignof(struct tensor_map_cache), bytes);
    if (e->maps)
        memset(e->maps, 0, sizeof *e->maps);
    if (!e->maps) {
        fprintf(stderr, "pipeline: out of host memory for the tensor maps\n");
        exit(1);
    }
}

void torch_close(struct engine *e) {
    if (e->library)
        CU_CALL(cuLibraryUnload, (e->library), "unloading the kernel library", "none");
    e->library = NULL;
    free(e->maps);
    e->maps = NULL;
}

static void launch_ex(struct engine *e, CUkernel k, const char *name, long long threads,
                      void **params) {
    if (threads <= 0)
        return;
    CUlaunchConfig config = {
        .gridDimX = (unsigned)((threads + BLOCK_THREADS - 1) / BLOCK_THREADS),
        .gridDimY = 1,
        .gridDimZ = 1,
        .blockDimX = BLOCK_THREADS,
        .blockDimY = 1,
        .blockDimZ = 1,
        .hStream = e->stream,
    };
    char what[64];
    snprintf(what, sizeof what, "launching %s", name);
    CU_CALL(cuLaunchKernelEx, (&config, (CUfunction)k, params, NULL), what, e->component);
}

void torch_launch_array(struct engine *e, CUkernel k, const char *name, long long threads,
                        void **params) {
    launch_ex(e, k, name, threads, params);
}

/* w[cols][inner] as a 2-D float tensor map; false if the driver cannot encode one. */
static bool encode_weights(struct engine *e, CUtensorMap *map, CUdeviceptr w, int cols, int inner) {
    if (e->maps->unsupported || (inner * sizeof(float)) % 16 != 0)
        return false;
    cuuint64_t dims[2] = {(cuuint64_t)inner, (cuuint64_t)cols};
    cuuint64_t strides[1] = {(cuuint64_t)inner * sizeof(float)};
    cuuint32_t box[2] = {(cuuint32_t)(inner < MAP_BOX_INNER ? inner : MAP_BOX_INNER), 1};
    cuuint32_t element_strides[2] = {1, 1};
    CUresult r = cuTensorMapEncodeTiled(
        map, CU_TENSOR_MAP_DATA_TYPE_FLOAT32, 2, (void *)(uintptr_t)w, dims, strides, box,
        element_strides, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_NONE,
        CU_TENSOR_MAP_L2_PROMOTION_NONE, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
    if (r == CUDA_ERROR_NOT_SUPPORTED) {
        fprintf(stderr, "pipeline: cuTensorMapEncodeTiled: CUDA_ERROR_NOT_SUPPORTED; the GEMM "
                        "reads its weights through a plain pointer\n");
        e->maps->unsupported = true;
        return false;
    }
    cuda_check(r, "cuTensorMapEncodeTiled", "encoding a weight's tensor map", e->component);
    return true;
}

/* The cached map of (w, cols, inner), encoded on first use; NULL if none can be. */
static const CUtensorMap *weight_map(struct engine *e, CUdeviceptr w, int cols, int inner) {
    size_t h = (size_t)((w >> 9) * 0x9E3779B97F4A7C15ull >> 32) % MAP_CACHE_SLOTS;
    for (size_t probe = 0; probe < MAP_CACHE_SLOTS; probe++) {
        struct map_slot *s = &e->maps->slots[(h + probe) % MAP_CACHE_SLOTS];
        if (s->w == w && s->cols == cols && s->inner == inner)
            return &s->map;
        if (s->w == 0) {
            if (!encode_weights(e, &s->map, w, cols, inner))
                return NULL;
            s->w = w, s->cols = cols, s->inner = inner;
            return &s->map;
        }
    }
    static _Thread_local CUtensorMap uncached; /* a full cache: encode every time */
    return encode_weights(e, &uncached, w, cols, inner) ? &uncached : NULL;
}

void torch_launch_gemm(struct engine *e, CUdeviceptr x, CUdeviceptr w, CUdeviceptr y, int rows,
                       int cols, int inner) {
    struct gemm_params p;
    memset(&p, 0, sizeof p);
    p.x = x, p.y = y, p.rows = rows, p.cols = cols, p.inner = inner;
    const CUtensorMap *map = weight_map(e, w, cols, inner);
    if (map) {
        p.w_map = *map;
        p.w_from_map = 1;
    }
    if (!map || !simulated(e))
        p.w_plain = w; /* the cubin reads this one: see gemm_weights in kernels.cu */
    void *params[] = {&p};
    launch_ex(e, e->torch.gemm, "gemm_params", (long long)rows * cols, params);
}

/* Table layout: x[count], w[count], y[count] (8 bytes each), then sizes[count][3] (int). */
size_t torch_gemm_table_bytes(int count) {
    return (size_t)count * (3 * sizeof(CUdeviceptr) + 3 * sizeof(int));
}

void torch_gemm_table_upload(struct engine *e, CUdeviceptr table, void *host,
                             const struct torch_gemm_problem *problems, int count) {
    CUdeviceptr *ptrs = host;
    int *sizes = (int *)(ptrs + 3 * count);
    for (int g = 0; g < count; g++) {
        ptrs[g] = problems[g].x;
        ptrs[count + g] = problems[g].w;
        ptrs[2 * count + g] = problems[g].y;
        sizes[3 * g] = problems[g].rows;
        sizes[3 * g + 1] = problems[g].cols;
        sizes[3 * g + 2] = problems[g].inner;
    }
    CU_CALL(cuMemcpyHtoDAsync, (table, host, torch_gemm_table_bytes(count), e->stream),
            "uploading the grouped GEMM's table", e->component);
}

void torch_launch_gemm_grouped(struct engine *e, CUdeviceptr table,
                               const struct torch_gemm_problem *problems, int count) {
    CUdeviceptr x = table, w = table + (size_t)count * sizeof(CUdeviceptr);
    CUdeviceptr y = w + (size_t)count * sizeof(CUdeviceptr);
    CUdeviceptr sizes = y + (size_t)count * sizeof(CUdeviceptr);
    long long threads = 0;
    for (int g = 0; g < count; g++)
        threads += (long long)problems[g].rows * problems[g].cols;
    void *params[] = {&x, &w, &y, &sizes, &count};
    launch_ex(e, e->torch.gemm_grouped, "gemm_grouped", threads, params);
}
