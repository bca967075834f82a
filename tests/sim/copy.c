/*
 * copy.c — cuMemcpy* and cuMemset* entry points.
 *
 * Every copy is validated twice against the memory map: when called (an error is
 * returned, nothing is queued) and when the stream's worker runs it (a failure then is
 * asynchronous: the context gets the sticky CUDA_ERROR_ILLEGAL_ADDRESS). A copy never
 * touches device memory that is not mapped with access.
 *
 * Synchronous calls run on the legacy stream (the per-thread stream for _ptds) and
 * return when done. Asynchronous ones follow the real driver on pageable memory:
 * host-to-device stages the source at call time; device-to-host into pageable memory
 * is synchronous. With pinned memory they happen later, on the worker.
 */
#include "tests/sim/sim.h"

#include <stdlib.h>
#include <string.h>

enum { DIR_H2H = 0, DIR_H2D = 1, DIR_D2H = 2, DIR_D2D = 3 };

/* A 2D copy: h rows of w bytes; a 1D copy is one row. */
static CUresult copy2d(void *dst, size_t dpitch, const void *src, size_t spitch, size_t w, size_t h,
                       CUstream hs, int async, int pt) {
    struct sim_stream *s;
    CUresult r = sim_stream_resolve(hs, pt, &s);
    if (r != CUDA_SUCCESS)
        return r;
    if (w == 0 || h == 0)
        return CUDA_SUCCESS;
    if (h > 1 && (dpitch < w || spitch < w))
        return CUDA_ERROR_INVALID_VALUE;
    uintptr_t d = (uintptr_t)dst, sr = (uintptr_t)src;
    size_t dspan = dpitch * (h - 1) + w, sspan = spitch * (h - 1) + w;
    if (sim_mem_check(d, dspan, 1) != CUDA_SUCCESS || sim_mem_check(sr, sspan, 0) != CUDA_SUCCESS)
        return CUDA_ERROR_INVALID_VALUE;
    int dir = (sim_is_device(sr) ? 2 : 0) | (sim_is_device(d) ? 1 : 0);
    dir = dir == 3 ? DIR_D2D : dir == 2 ? DIR_D2H : dir == 1 ? DIR_H2D : DIR_H2H;
    int capturing = sim_stream_is_capturing(s);
    if (!async && capturing)
        return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;

    struct sim_op *op = sim_op_new(SIM_OP_COPY);
    if (!op)
        return CUDA_ERROR_OUT_OF_MEMORY;
    op->u.copy.dst = dst;
    op->u.copy.src = src;
    op->u.copy.width = w;
    op->u.copy.height = h;
    op->u.copy.dpitch = dpitch;
    op->u.copy.spitch = spitch;
    op->u.copy.dir = dir;
    if (capturing)
        return sim_capture_op(s, op);

    int wait = !async;
    if (async && (dir == DIR_H2D || dir == DIR_H2H) && !sim_is_pinned(sr, sspan)) {
        if (dir == DIR_H2H && !sim_is_pinned(d, dspan)) {
            wait = 1;
        } else {
            /* pageable source: staged now, so the caller may reuse it on return */
            unsigned char *stage = malloc(w * h);
            if (!stage) {
                sim_op_free(op);
                return CUDA_ERROR_OUT_OF_MEMORY;
            }
            for (size_t i = 0; i < h; i++)
                memcpy(stage + i * w, (const unsigned char *)src + i * spitch, w);
            op->u.copy.staging = stage;
            op->u.copy.src = stage;
            op->u.copy.spitch = w;
        }
    }
    if (async && dir == DIR_D2H && !sim_is_pinned(d, dspan))
        wait = 1; /* pageable destination: synchronous, like the real driver */
    if (!wait) {
        sim_submit(s, op);
        return CUDA_SUCCESS;
    }
    return sim_submit_sync(s, op);
}

#define COPY_SYNC(name, pt, DST_T, SRC_T, DCAST, SCAST)                                            \
    SIM_API CUresult name(DST_T dst, SRC_T src, size_t n) {                                        \
        SIM_ENTER(#name);                                                                          \
        return copy2d(DCAST dst, n, SCAST src, n, n, 1, NULL, 0, pt);                              \
    }
#define COPY_ASYNC(name, pt, DST_T, SRC_T, DCAST, SCAST)                                           \
    SIM_API CUresult name(DST_T dst, SRC_T src, size_t n, CUstream hs) {                           \
        SIM_ENTER(#name);                                                                          \
        return copy2d(DCAST dst, n, SCAST src, n, n, 1, hs, 1, pt);                                \
    }

#define DPTR (void *)(uintptr_t)
#define CDPTR (const void *)(uintptr_t)
#define HPTR (void *)
#define CHPTR (const void *)

COPY_SYNC(cuMemcpyHtoD_v2, 0, CUdeviceptr, const void *, DPTR, CHPTR)
COPY_SYNC(cuMemcpyHtoD_v2_ptds, 1, CUdeviceptr, const void *, DPTR, CHPTR)
COPY_SYNC(cuMemcpyDtoH_v2, 0, void *, CUdeviceptr, HPTR, CDPTR)
COPY_SYNC(cuMemcpyDtoH_v2_ptds, 1, void *, CUdeviceptr, HPTR, CDPTR)
COPY_SYNC(cuMemcpyDtoD_v2, 0, CUdeviceptr, CUdeviceptr, DPTR, CDPTR)
COPY_SYNC(cuMemcpyDtoD_v2_ptds, 1, CUdeviceptr, CUdeviceptr, DPTR, CDPTR)
COPY_SYNC(cuMemcpy, 0, CUdeviceptr, CUdeviceptr, DPTR, CDPTR)
COPY_SYNC(cuMemcpy_ptds, 1, CUdeviceptr, CUdeviceptr, DPTR, CDPTR)
COPY_ASYNC(cuMemcpyHtoDAsync_v2, 0, CUdeviceptr, const void *, DPTR, CHPTR)
COPY_ASYNC(cuMemcpyHtoDAsync_v2_ptsz, 1, CUdeviceptr, const void *, DPTR, CHPTR)
COPY_ASYNC(cuMemcpyDtoHAsync_v2, 0, void *, CUdeviceptr, HPTR, CDPTR)
COPY_ASYNC(cuMemcpyDtoHAsync_v2_ptsz, 1, void *, CUdeviceptr, HPTR, CDPTR)
COPY_ASYNC(cuMemcpyDtoDAsync_v2, 0, CUdeviceptr, CUdeviceptr, DPTR, CDPTR)
COPY_ASYNC(cuMemcpyDtoDAsync_v2_ptsz, 1, CUdeviceptr, CUdeviceptr, DPTR, CDPTR)
COPY_ASYNC(cuMemcpyAsync, 0, CUdeviceptr, CUdeviceptr, DPTR, CDPTR)
COPY_ASYNC(cuMemcpyAsync_ptsz, 1, CUdeviceptr, CUdeviceptr, DPTR, CDPTR)

/* ---- 2D copies ------------------------------------------------------------------- */

static CUresult side(CUmemorytype type, const void *host, CUdeviceptr dev, size_t x, size_t y,
                     size_t pitch, uintptr_t *out) {
    uintptr_t base;
    switch (type) {
    case CU_MEMORYTYPE_HOST:
        base = (uintptr_t)host;
        break;
    case CU_MEMORYTYPE_DEVICE:
    case CU_MEMORYTYPE_UNIFIED:
        base = (uintptr_t)dev;
        break;
    default:
        return CUDA_ERROR_NOT_SUPPORTED; /* arrays */
    }
    *out = base + y * pitch + x;
    return CUDA_SUCCESS;
}

static CUresult copy_2d_desc(const CUDA_MEMCPY2D *p, CUstream hs, int async, int pt) {
    if (!p)
        return CUDA_ERROR_INVALID_VALUE;
    uintptr_t d, s;
    CUresult r =
        side(p->dstMemoryType, p->dstHost, p->dstDevice, p->dstXInBytes, p->dstY, p->dstPitch, &d);
    if (r == CUDA_SUCCESS)
        r = side(p->srcMemoryType, p->srcHost, p->srcDevice, p->srcXInBytes, p->srcY, p->srcPitch,
                 &s);
    if (r != CUDA_SUCCESS)
        return r;
    size_t dp = p->Height > 1 ? p->dstPitch : p->WidthInBytes;
    size_t sp = p->Height > 1 ? p->srcPitch : p->WidthInBytes;
    return copy2d((void *)d, dp, (const void *)s, sp, p->WidthInBytes, p->Height, hs, async, pt);
}

SIM_API CUresult cuMemcpy2D_v2(const CUDA_MEMCPY2D *pCopy) {
    SIM_ENTER("cuMemcpy2D_v2");
    return copy_2d_desc(pCopy, NULL, 0, 0);
}
SIM_API CUresult cuMemcpy2D_v2_ptds(const CUDA_MEMCPY2D *pCopy) {
    SIM_ENTER("cuMemcpy2D_v2_ptds");
    return copy_2d_desc(pCopy, NULL, 0, 1);
}
SIM_API CUresult cuMemcpy2DUnaligned_v2(const CUDA_MEMCPY2D *pCopy) {
    SIM_ENTER("cuMemcpy2DUnaligned_v2");
    return copy_2d_desc(pCopy, NULL, 0, 0);
}
SIM_API CUresult cuMemcpy2DUnaligned_v2_ptds(const CUDA_MEMCPY2D *pCopy) {
    SIM_ENTER("cuMemcpy2DUnaligned_v2_ptds");
    return copy_2d_desc(pCopy, NULL, 0, 1);
}
SIM_API CUresult cuMemcpy2DAsync_v2(const CUDA_MEMCPY2D *pCopy, CUstream hStream) {
    SIM_ENTER("cuMemcpy2DAsync_v2");
    return copy_2d_desc(pCopy, hStream, 1, 0);
}
SIM_API CUresult cuMemcpy2DAsync_v2_ptsz(const CUDA_MEMCPY2D *pCopy, CUstream hStream) {
    SIM_ENTER("cuMemcpy2DAsync_v2_ptsz");
    return copy_2d_desc(pCopy, hStream, 1, 1);
}

/* ---- memset ---------------------------------------------------------------------- */

static CUresult set2d(CUdeviceptr dst, size_t pitch, unsigned value, unsigned elem, size_t w,
                      size_t h, CUstream hs, int async, int pt) {
    struct sim_stream *s;
    CUresult r = sim_stream_resolve(hs, pt, &s);
    if (r != CUDA_SUCCESS)
        return r;
    if (w == 0 || h == 0)
        return CUDA_SUCCESS;
    if (dst % elem || (h > 1 && (pitch < w * elem || pitch % elem)))
        return CUDA_ERROR_INVALID_VALUE;
    if (h == 1)
        pitch = w * elem;
    if (sim_mem_check(dst, pitch * (h - 1) + w * elem, 1) != CUDA_SUCCESS)
        return CUDA_ERROR_INVALID_VALUE;
    if (!async && sim_stream_is_capturing(s))
        return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    struct sim_op *op = sim_op_new(SIM_OP_MEMSET);
    if (!op)
        return CUDA_ERROR_OUT_OF_MEMORY;
    op->u.memset.dst = (void *)(uintptr_t)dst;
    op->u.memset.pitch = pitch;
    op->u.memset.width = w;
    op->u.memset.height = h;
    op->u.memset.elem = elem;
    op->u.memset.value = value;
    if (sim_stream_is_capturing(s))
        return sim_capture_op(s, op);
    if (async) {
        sim_submit(s, op);
        return CUDA_SUCCESS;
    }
    return sim_submit_sync(s, op);
}

#define SET_SYNC(name, pt, T, elem)                                                                \
    SIM_API CUresult name(CUdeviceptr dst, T v, size_t n) {                                        \
        SIM_ENTER(#name);                                                                          \
        return set2d(dst, 0, v, elem, n, 1, NULL, 0, pt);                                          \
    }
#define SET_ASYNC(name, pt, T, elem)                                                               \
    SIM_API CUresult name(CUdeviceptr dst, T v, size_t n, CUstream hs) {                           \
        SIM_ENTER(#name);                                                                          \
        return set2d(dst, 0, v, elem, n, 1, hs, 1, pt);                                            \
    }
#define SET2D_SYNC(name, pt, T, elem)                                                              \
    SIM_API CUresult name(CUdeviceptr dst, size_t pitch, T v, size_t w, size_t h) {                \
        SIM_ENTER(#name);                                                                          \
        return set2d(dst, pitch, v, elem, w, h, NULL, 0, pt);                                      \
    }
#define SET2D_ASYNC(name, pt, T, elem)                                                             \
    SIM_API CUresult name(CUdeviceptr dst, size_t pitch, T v, size_t w, size_t h, CUstream hs) {   \
        SIM_ENTER(#name);                                                                          \
        return set2d(dst, pitch, v, elem, w, h, hs, 1, pt);                                        \
    }

SET_SYNC(cuMemsetD8_v2, 0, unsigned char, 1)
SET_SYNC(cuMemsetD8_v2_ptds, 1, unsigned char, 1)
SET_SYNC(cuMemsetD16_v2, 0, unsigned short, 2)
SET_SYNC(cuMemsetD16_v2_ptds, 1, unsigned short, 2)
SET_SYNC(cuMemsetD32_v2, 0, unsigned int, 4)
SET_SYNC(cuMemsetD32_v2_ptds, 1, unsigned int, 4)
SET_ASYNC(cuMemsetD8Async, 0, unsigned char, 1)
SET_ASYNC(cuMemsetD8Async_ptsz, 1, unsigned char, 1)
SET_ASYNC(cuMemsetD16Async, 0, unsigned short, 2)
SET_ASYNC(cuMemsetD16Async_ptsz, 1, unsigned short, 2)
SET_ASYNC(cuMemsetD32Async, 0, unsigned int, 4)
SET_ASYNC(cuMemsetD32Async_ptsz, 1, unsigned int, 4)
SET2D_SYNC(cuMemsetD2D8_v2, 0, unsigned char, 1)
SET2D_SYNC(cuMemsetD2D8_v2_ptds, 1, unsigned char, 1)
SET2D_SYNC(cuMemsetD2D16_v2, 0, unsigned short, 2)
SET2D_SYNC(cuMemsetD2D16_v2_ptds, 1, unsigned short, 2)
SET2D_SYNC(cuMemsetD2D32_v2, 0, unsigned int, 4)
SET2D_SYNC(cuMemsetD2D32_v2_ptds, 1, unsigned int, 4)
SET2D_ASYNC(cuMemsetD2D8Async, 0, unsigned char, 1)
SET2D_ASYNC(cuMemsetD2D8Async_ptsz, 1, unsigned char, 1)
SET2D_ASYNC(cuMemsetD2D16Async, 0, unsigned short, 2)
SET2D_ASYNC(cuMemsetD2D16Async_ptsz, 1, unsigned short, 2)
SET2D_ASYNC(cuMemsetD2D32Async, 0, unsigned int, 4)
SET2D_ASYNC(cuMemsetD2D32Async_ptsz, 1, unsigned int, 4)
