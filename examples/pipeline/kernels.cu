/*
 * kernels.cu — every kernel the reference pipeline launches, one CUDA C source for two
 * targets: nvcc builds it into a cubin for a real GPU; the host C++ compiler builds it into
 * a shared object for the simulated driver, through tests/sim/cuda_host.h.
 *
 * The kernels are generic building blocks (matmul, bias + activation, normalisation,
 * residual add, upsample, ...). The same kernels serve the text encoder, the U-Net and the
 * VAE, as in real inference engines, so no kernel name says which component launched it.
 *
 * Rules that keep results bit-identical run to run, on any stream, on both targets:
 *  - one thread computes one output element (or one row) with a fixed loop order: no
 *    atomics, no cooperation between threads (the simulator runs threads one after
 *    another, so __syncthreads() and shared memory are not available anyway);
 *  - only +, -, *, /, sqrtf, fabsf, floorf, fminf, fmaxf: all correctly rounded in IEEE
 *    single precision on both targets (no expf/tanhf, whose last bits differ). Built with
 *    contraction off (nvcc --fmad=false, host -ffp-contract=off), the GPU and the
 *    simulator should compute the same bits (not yet checked on a GPU: tests/gpu/run.sh).
 *
 * Layouts: matrices are row-major; a weight matrix is [N][K] (one row per output), so the
 * inner loop of matmul walks both operands contiguously. Feature maps are [pixel][channel].
 */

#define KERNEL extern "C" __global__ void

/* Under nvcc nothing is force-included: a descriptor is only the simulator's business. */
#ifndef SIM_KERNEL
#define SIM_KERNEL(name)
#endif
#ifndef SIM_READ_ONLY_FIELDS
#define SIM_READ_ONLY_FIELDS(type, ...)
#endif

/* The global index of the calling thread over a 1-D launch. */
__device__ long long thread_index(void) {
    return (long long)blockIdx.x * blockDim.x + threadIdx.x;
}

/* The activation: a softsign-gated linear unit, x * (0.5 + 0.5 * x / (1 + |x|)). Smooth,
 * GELU-shaped, and made of correctly rounded operations only. */
__device__ float gated_linear(float x) {
    return x * (0.5f + 0.5f * (x / (1.0f + fabsf(x))));
}

/* y[m][n] = sum_k x[m][k] * w[n][k]. One thread per output element; consecutive threads
 * share the weight row n (m varies fastest), so a weight row is read once per launch while
 * it is hot in cache. Eight partial sums, combined in a fixed order: a short dependency
 * chain for the CPU, the same bits everywhere. */
__device__ void matmul_at(long long i, const float *__restrict__ x, const float *__restrict__ w,
                          float *__restrict__ y, int rows, int cols, int inner) {
    if (i >= (long long)rows * cols)
        return;
    int m = (int)(i % rows);
    int n = (int)(i / rows);
    const float *xr = x + (long long)m * inner;
    const float *wr = w + (long long)n * inner;
    float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f, a4 = 0.0f, a5 = 0.0f, a6 = 0.0f, a7 = 0.0f;
    int k = 0;
    for (; k + 8 <= inner; k += 8) {
        a0 += xr[k + 0] * wr[k + 0];
        a1 += xr[k + 1] * wr[k + 1];
        a2 += xr[k + 2] * wr[k + 2];
        a3 += xr[k + 3] * wr[k + 3];
        a4 += xr[k + 4] * wr[k + 4];
        a5 += xr[k + 5] * wr[k + 5];
        a6 += xr[k + 6] * wr[k + 6];
        a7 += xr[k + 7] * wr[k + 7];
    }
    for (; k < inner; k++)
        a0 += xr[k] * wr[k];
    y[(long long)m * cols + n] = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7));
}

KERNEL matmul(const float *__restrict__ x, const float *__restrict__ w, float *__restrict__ y,
              int rows, int cols, int inner) {
    matmul_at(thread_index(), x, w, y, rows, cols, inner);
}
SIM_KERNEL(matmul)

/* y[m][n] = act(y[m][n] + b[n]); act 0 is the identity, 1 the gated linear unit. */
__device__ void bias_act_at(long long i, float *y, const float *b, int rows, int cols, int act) {
    if (i >= (long long)rows * cols)
        return;
    float v = y[i] + b[i % cols];
    y[i] = act ? gated_linear(v) : v;
}

KERNEL bias_act(float *y, const float *b, int rows, int cols, int act) {
    bias_act_at(thread_index(), y, b, rows, cols, act);
}
SIM_KERNEL(bias_act)

/* Layer normalisation of each row of x into y, then y = y * gamma + beta when gamma is
 * given, then y = y * (1 + scale) + shift when scale is given (the adaptive normalisation
 * of conditioned blocks, per column). A null pointer skips its stage. One thread per row. */
__device__ void layernorm_at(long long r, const float *__restrict__ x, float *__restrict__ y,
                             const float *gamma, const float *beta, const float *scale,
                             const float *shift, int rows, int cols) {
    if (r >= rows)
        return;
    const float *xr = x + r * cols;
    float *yr = y + r * cols;
    float sum = 0.0f;
    for (int c = 0; c < cols; c++)
        sum += xr[c];
    float mean = sum / (float)cols;
    float var = 0.0f;
    for (int c = 0; c < cols; c++) {
        float d = xr[c] - mean;
        var += d * d;
    }
    float inv = 1.0f / sqrtf(var / (float)cols + 1e-5f);
    for (int c = 0; c < cols; c++) {
        float v = (xr[c] - mean) * inv;
        if (gamma)
            v = v * gamma[c] + beta[c];
        if (scale)
            v = v * (1.0f + scale[c]) + shift[c];
        yr[c] = v;
    }
}

KERNEL layernorm(const float *__restrict__ x, float *__restrict__ y, const float *gamma,
                 const float *beta, const float *scale, const float *shift, int rows, int cols) {
    layernorm_at(thread_index(), x, y, gamma, beta, scale, shift, rows, cols);
}
SIM_KERNEL(layernorm)

/* The residual connection of a branch: h[m][n] += act(y[m][n] + b[n]). */
__device__ void residual_bias_act_at(long long i, float *h, const float *y, const float *b,
                                     int rows, int cols, int act) {
    if (i >= (long long)rows * cols)
        return;
    float v = y[i] + b[i % cols];
    h[i] = h[i] + (act ? gated_linear(v) : v);
}

KERNEL residual_bias_act(float *h, const float *y, const float *b, int rows, int cols, int act) {
    residual_bias_act_at(thread_index(), h, y, b, rows, cols, act);
}
SIM_KERNEL(residual_bias_act)

/* y[i] = a * y[i] + b * x[i]: the scheduler's update of the latent. */
__device__ void axpby_at(long long i, float *y, const float *x, float a, float b, long long count) {
    if (i >= count)
        return;
    y[i] = a * y[i] + b * x[i];
}

KERNEL axpby(float *y, const float *x, float a, float b, long long count) {
    axpby_at(thread_index(), y, x, a, b, count);
}
SIM_KERNEL(axpby)

/* y[n] = mean over m of x[m][n], summed in row order. One thread per column. */
__device__ void mean_rows_at(long long n, const float *__restrict__ x, float *__restrict__ y,
                             int rows, int cols) {
    if (n >= cols)
        return;
    float sum = 0.0f;
    for (int m = 0; m < rows; m++)
        sum += x[(long long)m * cols + n];
    y[n] = sum / (float)rows;
}

KERNEL mean_rows(const float *__restrict__ x, float *__restrict__ y, int rows, int cols) {
    mean_rows_at(thread_index(), x, y, rows, cols);
}
SIM_KERNEL(mean_rows)

/* out[t][n] = table[token[t]][n] + position[t][n]. One thread per output element. */
__device__ void embed_at(long long i, const int *tokens, const float *table, const float *position,
                         float *out, int count, int cols, int vocab) {
    if (i >= (long long)count * cols)
        return;
    int t = (int)(i / cols), n = (int)(i % cols);
    int id = tokens[t];
    if (id < 0 || id >= vocab)
        id = 0;
    out[i] = table[(long long)id * cols + n] + position[i];
}

KERNEL embed(const int *tokens, const float *table, const float *position, float *out, int count,
             int cols, int vocab) {
    embed_at(thread_index(), tokens, table, position, out, count, cols, vocab);
}
SIM_KERNEL(embed)

/* Depthwise 3x3 convolution with zero padding on a [height*width][channels] map:
 * y[p][c] = sum over the 3x3 neighbourhood q of x[q][c] * w[c][tap]. */
__device__ void conv3x3_depthwise_at(long long i, const float *__restrict__ x,
                                     float *__restrict__ y, const float *__restrict__ w, int height,
                                     int width, int channels) {
    if (i >= (long long)height * width * channels)
        return;
    int c = (int)(i % channels);
    long long p = i / channels;
    int row = (int)(p / width), col = (int)(p % width);
    /* The taps inside the map, found once: zero padding without a test per tap. */
    int dy0 = row > 0 ? -1 : 0, dy1 = row < height - 1 ? 1 : 0;
    int dx0 = col > 0 ? -1 : 0, dx1 = col < width - 1 ? 1 : 0;
    const float *wc = w + c * 9 + 4; /* the centre tap */
    float sum = 0.0f;
    for (int dy = dy0; dy <= dy1; dy++) {
        const float *xr = x + ((long long)(row + dy) * width + col) * channels + c;
        for (int dx = dx0; dx <= dx1; dx++)
            sum += xr[dx * channels] * wc[dy * 3 + dx];
    }
    y[i] = sum;
}

KERNEL conv3x3_depthwise(const float *__restrict__ x, float *__restrict__ y,
                         const float *__restrict__ w, int height, int width, int channels) {
    conv3x3_depthwise_at(thread_index(), x, y, w, height, width, channels);
}
SIM_KERNEL(conv3x3_depthwise)

/* Bilinear 2x upsampling (half-pixel centres, edges clamped) of a [height*width][channels]
 * map into [2*height*2*width][channels]. */
__device__ void upsample2x_at(long long i, const float *__restrict__ x, float *__restrict__ y,
                              int height, int width, int channels) {
    int oh = 2 * height, ow = 2 * width;
    if (i >= (long long)oh * ow * channels)
        return;
    int c = (int)(i % channels);
    long long p = i / channels;
    int orow = (int)(p / ow), ocol = (int)(p % ow);
    /* Output pixel o sits at source coordinate o/2 - 1/4: its neighbours are o/2 and the
     * one before (even o, weights 1/4 and 3/4) or after (odd o, weights 3/4 and 1/4). */
    int r0 = orow / 2, r1 = (orow & 1) ? r0 + 1 : r0 - 1;
    int c0 = ocol / 2, c1 = (ocol & 1) ? c0 + 1 : c0 - 1;
    r1 = r1 < 0 ? 0 : (r1 >= height ? height - 1 : r1);
    c1 = c1 < 0 ? 0 : (c1 >= width ? width - 1 : c1);
    float v00 = x[((long long)r0 * width + c0) * channels + c];
    float v01 = x[((long long)r0 * width + c1) * channels + c];
    float v10 = x[((long long)r1 * width + c0) * channels + c];
    float v11 = x[((long long)r1 * width + c1) * channels + c];
    float top = 0.75f * v00 + 0.25f * v01;
    float bottom = 0.75f * v10 + 0.25f * v11;
    y[i] = 0.75f * top + 0.25f * bottom;
}

KERNEL upsample2x(const float *__restrict__ x, float *__restrict__ y, int height, int width,
                  int channels) {
    upsample2x_at(thread_index(), x, y, height, width, channels);
}
SIM_KERNEL(upsample2x)

/* The image: rgb[p][k] = clamp(round(127.5 + 127.5 * (w[k] . x[p] + b[k])), 0, 255) as
 * 8-bit, for a [pixels][channels] map and a [3][channels] weight. One thread per pixel. */
__device__ void to_rgb_at(long long p, const float *__restrict__ x, const float *__restrict__ w,
                          const float *b, unsigned char *__restrict__ rgb, int pixels,
                          int channels) {
    if (p >= pixels)
        return;
    const float *xp = x + p * channels;
    for (int k = 0; k < 3; k++) {
        float sum = b[k];
        for (int c = 0; c < channels; c++)
            sum += xp[c] * w[k * channels + c];
        float v = floorf(127.5f + 127.5f * sum + 0.5f);
        v = fminf(fmaxf(v, 0.0f), 255.0f);
        rgb[p * 3 + k] = (unsigned char)v;
    }
}

KERNEL to_rgb(const float *__restrict__ x, const float *__restrict__ w, const float *b,
              unsigned char *__restrict__ rgb, int pixels, int channels) {
    to_rgb_at(thread_index(), x, w, b, rgb, pixels, channels);
}
SIM_KERNEL(to_rgb)

/* --- --like torch: the same arithmetic, with parameters shaped as PyTorch's are ---------
 *
 * Elementwise kernels take their pointers in one struct passed by value, like
 * at::detail::Array<char*, N> in PyTorch's elementwise loops. The GEMM takes a 256-byte
 * Params struct, as CUTLASS and cuBLAS kernels do, with its weight operand as a tensor
 * map embedded at offset 128 (CUTLASS 3's TMA descriptors); gemm_grouped reads its
 * operands' addresses from arrays in device memory, as batched and grouped GEMMs do. Each
 * kernel calls the same *_at function as its plain twin, so both modes compute the same
 * bits. */

template <int N> struct Array { char *data[N]; };

#define AT(array, k, type) ((type *)(array).data[k])

/* t = {y, b} */
KERNEL bias_act_array(Array<2> t, int rows, int cols, int act) {
    bias_act_at(thread_index(), AT(t, 0, float), AT(t, 1, const float), rows, cols, act);
}
SIM_KERNEL(bias_act_array)

/* t = {x, y, gamma, beta, scale, shift} */
KERNEL layernorm_array(Array<6> t, int rows, int cols) {
    layernorm_at(thread_index(), AT(t, 0, const float), AT(t, 1, float), AT(t, 2, const float),
                 AT(t, 3, const float), AT(t, 4, const float), AT(t, 5, const float), rows, cols);
}
SIM_KERNEL(layernorm_array)

/* t = {h, y, b} */
KERNEL residual_bias_act_array(Array<3> t, int rows, int cols, int act) {
    residual_bias_act_at(thread_index(), AT(t, 0, float), AT(t, 1, const float),
                         AT(t, 2, const float), rows, cols, act);
}
SIM_KERNEL(residual_bias_act_array)

/* t = {y, x} */
KERNEL axpby_array(Array<2> t, float a, float b, long long count) {
    axpby_at(thread_index(), AT(t, 0, float), AT(t, 1, const float), a, b, count);
}
SIM_KERNEL(axpby_array)

/* t = {x, y} */
KERNEL mean_rows_array(Array<2> t, int rows, int cols) {
    mean_rows_at(thread_index(), AT(t, 0, const float), AT(t, 1, float), rows, cols);
}
SIM_KERNEL(mean_rows_array)

/* t = {tokens, table, position, out} */
KERNEL embed_array(Array<4> t, int count, int cols, int vocab) {
    embed_at(thread_index(), AT(t, 0, const int), AT(t, 1, const float), AT(t, 2, const float),
             AT(t, 3, float), count, cols, vocab);
}
SIM_KERNEL(embed_array)

/* t = {x, y, w} */
KERNEL conv3x3_depthwise_array(Array<3> t, int height, int width, int channels) {
    conv3x3_depthwise_at(thread_index(), AT(t, 0, const float), AT(t, 1, float),
                         AT(t, 2, const float), height, width, channels);
}
SIM_KERNEL(conv3x3_depthwise_array)

/* t = {x, y} */
KERNEL upsample2x_array(Array<2> t, int height, int width, int channels) {
    upsample2x_at(thread_index(), AT(t, 0, const float), AT(t, 1, float), height, width, channels);
}
SIM_KERNEL(upsample2x_array)

/* t = {x, w, b, rgb} */
KERNEL to_rgb_array(Array<4> t, int pixels, int channels) {
    to_rgb_at(thread_index(), AT(t, 0, const float), AT(t, 1, const float), AT(t, 2, const float),
              AT(t, 3, unsigned char), pixels, channels);
}
SIM_KERNEL(to_rgb_array)

/* A CUtensorMap's bytes: 128, aligned to 128 as cuda.h declares it. */
struct alignas(128) TensorMap {
    unsigned long long opaque[16];
};

/* The GEMM's Params (the host's struct gemm_params in torch_launch.h is the same layout):
 * y[rows][cols] = x[rows][inner] . w[cols][inner]^T, w read through w_map. w_plain is only
 * set where the driver cannot encode a tensor map (w_from_map is then 0). */
struct GemmParams {
    const float *x;
    float *y;
    int rows, cols, inner;
    int w_from_map;
    const float *w_plain;
    char reserved[88]; /* where a CUTLASS kernel keeps epilogue and scheduler arguments */
    TensorMap w_map;
};
static_assert(sizeof(GemmParams) == 256, "GemmParams is 256 bytes");
static_assert(offsetof(GemmParams, w_map) == 128, "the tensor map sits at offset 128");
/* For the simulator's race detector: the operands are read (the Array structs say nothing,
 * as PyTorch's do not: their words count as writes). */
SIM_READ_ONLY_FIELDS(GemmParams, x, w_plain)

/* The weight operand's base address, through the tensor map. On a GPU a real kernel would
 * load tiles with TMA (cp.async.bulk.tensor); that path is not written (no GPU to check it
 * on), so the cubin reads w_plain, which the host fills on a real device. */
__device__ const float *gemm_weights(const GemmParams &p) {
#ifdef __CUDACC__
    return p.w_plain;
#else
    if (!p.w_from_map)
        return p.w_plain;
    /* Element (0, 0) of the map; a map the simulator did not encode traps. */
    static const long long origin[2] = {0, 0};
    return (const float *)sim_tensor_map_element(sim_tensor_map_read(&p.w_map), origin);
#endif
}

KERNEL gemm_params(GemmParams p) {
    matmul_at(thread_index(), p.x, gemm_weights(p), p.y, p.rows, p.cols, p.inner);
}
SIM_KERNEL(gemm_params)

/* count independent products y[g] = x[g] . w[g]^T in one launch; the operands' addresses
 * and sizes (rows, cols, inner per problem) are read from device memory. Threads are
 * numbered through the problems in order. */
KERNEL gemm_grouped(const float *const *x, const float *const *w, float *const *y, const int *sizes,
                    int count) {
    long long i = thread_index();
    for (int g = 0; g < count; g++) {
        int rows = sizes[3 * g], cols = sizes[3 * g + 1], inner = sizes[3 * g + 2];
        long long n = (long long)rows * cols;
        if (i < n) {
            matmul_at(i, x[g], w[g], y[g], rows, cols, inner);
            return;
        }
        i -= n;
    }
}
SIM_KERNEL(gemm_grouped)
