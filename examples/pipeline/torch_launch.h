/*
 * torch_launch.h — --like torch: the kernels of kernels.cu driven the way PyTorch drives
 * the driver. The library is loaded with cuLibraryLoadData (as cudart 12+ loads the
 * kernels embedded in a program), each kernel is a CUkernel from cuLibraryGetKernel,
 * launched with cuLaunchKernelEx with the handle cast to CUfunction, as cudart does.
 *
 * Parameter shapes (kernels.cu has the device side):
 *  - elementwise and normalisation kernels: their pointers in one Array<char*, N>-style
 *    struct by value (N CUdeviceptr in a row), their sizes as separate parameters;
 *  - gemm_params: one 256-byte struct gemm_params; the weight operand is a tensor map at
 *    offset 128 (cuTensorMapEncodeTiled, encoded once per weight and shape);
 *  - gemm_grouped: the operands' addresses in arrays in device memory (a table the caller
 *    uploads: torch_gemm_table_*), like cuBLAS's batched GEMM.
 * launch_* in launch.h call these when the engine runs --like torch.
 */
#ifndef PIPELINE_TORCH_LAUNCH_H
#define PIPELINE_TORCH_LAUNCH_H

#include <cuda.h>
#include <stddef.h>

struct engine;

struct torch_kernels {
    CUkernel bias_act, layernorm, residual_bias_act, axpby, mean_rows, embed, conv3x3_depthwise,
        upsample2x, to_rgb, gemm, gemm_grouped;
};

/* The host side of kernels.cu's GemmParams: the same layout, 256 bytes. */
struct gemm_params {
    CUdeviceptr x, y;
    int rows, cols, inner;
    int w_from_map;      /* 1: the kernel reads w through w_map */
    CUdeviceptr w_plain; /* set where no map could be encoded, and on a real GPU */
    unsigned char reserved[88];
    CUtensorMap w_map;
};

/* Loads the library from e->module_path and finds every kernel; exits on failure. When
 * the driver has no cuLibraryLoadData (CUDA_ERROR_NOT_SUPPORTED: a driver older than 12.0)
 * falls back to cuModuleLoadData and CUfunction handles, and says so on stderr. */
void torch_open(struct engine *e);
void torch_close(struct engine *e);

void torch_launch_gemm(struct engine *e, CUdeviceptr x, CUdeviceptr w, CUdeviceptr y, int rows,
                       int cols, int inner);
/* ptrs[] as the kernel's Array: see each launch_* in launch.h for the order. */
void torch_launch_array(struct engine *e, CUkernel k, const char *name, long long threads,
                        void **params);

/* A grouped GEMM: `count` problems y[g] = x[g] . w[g]^T of sizes rows[g] x cols[g] x
 * inner[g]. The table (pointer arrays and sizes) is uploaded to device memory the caller
 * allocated with torch_gemm_table_bytes(count) bytes; the host copy in `host` (the same
 * size) must live until the stream is synchronised. */
#define TORCH_GEMM_GROUP_MAX 4
struct torch_gemm_problem {
    CUdeviceptr x, w, y;
    int rows, cols, inner;
};
size_t torch_gemm_table_bytes(int count);
void torch_gemm_table_upload(struct engine *e, CUdeviceptr table, void *host,
                             const struct torch_gemm_problem *problems, int count);
void torch_launch_gemm_grouped(struct engine *e, CUdeviceptr table,
                               const struct torch_gemm_problem *problems, int count);

#endif /* PIPELINE_TORCH_LAUNCH_H */
