/*
 * copy.c — cuMemcpy* and cuMemset* entry points.
 *
 * Every copy is validated twice against the memory map: when called (an error is
 * returned, nothing is queued) and when the stream's worker runs it (a failure then is
 * asynchronous: the context gets the sticky CUDA_ERROR_ILLEGAL_ADDRESS). A copy never
 * touches device memory that is not mapped with access.
 *
 * Synchronous calls run on the legacy stream (the per-thread stream for _ptds) and,
 * like the driver's, return when done except device-to-device copies and memsets of
 * device memory (queued) and host-to-device copies from pageable memory (the stream
 * synchronised, the source staged). Asynchronous ones follow the real driver on pageable memory:
 * host-to-device stages the source at call time; device-to-host into pageable memory
 * is synchronous. With pinned memory they happen later, on the worker.
 */
#include "tests/sim/sim.h"

#include <stdlib.h>
#include <string.h>

enum { DIR_H2H = 0, DIR_H2D = 1, DIR_D2H = 2, DIR_D2D = 3 };

/* A pitched 3D region: z slices of h rows of w bytes. */
struct shape {
    size_t w, h, z, dpitch, spitch, dslice, sslice;
};

/* A synchronous copy or memset: a conflict on a capturing stream, and potentially unsafe
 * (it waits for the device) in every capture mode but RELAXED. */
static CUresult sync_call_allowed(struct sim_stream *s) {
    CUresult r = sim_capture_conflict_stream(s);
    return r != CUDA_SUCCESS ? r : sim_capture_unsafe_call();
}

static CUresult copy3d(void *dst, const void *src, struct shape sh, CUstream hs, int async,
                       int pt) {
    struct sim_stream *s;
    CUresult r = sim_stream_resolve(hs, pt, &s);
    if (r == CUDA_SUCCESS && !async)
        r = sync_call_allowed(s);
    if (r != CUDA_SUCCESS)
        return r;
    if (sh.w == 0 || sh.h == 0 || sh.z == 0)
        return CUDA_SUCCESS;
    if ((sh.h > 1 && (sh.dpitch < sh.w || sh.spitch < sh.w)) ||
        (sh.z > 1 &&
         (sh.dslice < sh.dpitch * (sh.h - 1) + sh.w || sh.sslice < sh.spitch * (sh.h - 1) + sh.w)))
        return CUDA_ERROR_INVALID_VALUE;
    uintptr_t d = (uintptr_t)dst, sr = (uintptr_t)src;
    size_t dspan = sim_span(sh.w, sh.h, sh.z, sh.dpitch, sh.dslice);
    size_t sspan = sim_span(sh.w, sh.h, sh.z, sh.spitch, sh.sslice);
    if (sim_mem_check(d, dspan, 1) != CUDA_SUCCESS || sim_mem_check(sr, sspan, 0) != CUDA_SUCCESS)
        return CUDA_ERROR_INVALID_VALUE;
    int dir = (sim_is_device(sr) ? 2 : 0) | (sim_is_device(d) ? 1 : 0);
    dir = dir == 3 ? DIR_D2D : dir == 2 ? DIR_D2H : dir == 1 ? DIR_H2D : DIR_H2H;

    struct sim_op *op = sim_op_new(SIM_OP_COPY);
    if (!op)
        return CUDA_ERROR_OUT_OF_MEMORY;
    op->u.copy.dst = dst;
    op->u.copy.src = src;
    op->u.copy.width = sh.w;
    op->u.copy.height = sh.h;
    op->u.copy.depth = sh.z;
    op->u.copy.dpitch = sh.dpitch;
    op->u.copy.spitch = sh.spitch;
    op->u.copy.dslice = sh.dslice;
    op->u.copy.sslice = sh.sslice;
    op->u.copy.dir = dir;
    if (sim_capture_op(s, op, &r))
        return r;

    /* The driver's "API synchronization behavior": a synchronous device-to-device copy
     * returns before it is done; a synchronous copy from pageable memory to the device
     * syncs the stream, stages the source and returns. */
    int wait = !async && dir != DIR_D2D;
    int pageable_src = !sim_is_pinned(sr, sspan);
    if (!async && dir == DIR_H2D && pageable_src) {
        sim_stream_sync(s);
        wait = 0;
    }
    if ((async || dir == DIR_H2D) && (dir == DIR_H2D || dir == DIR_H2H) && pageable_src) {
        if (dir == DIR_H2H && !sim_is_pinned(d, dspan)) {
            wait = 1;
        } else {
            /* pageable source: staged now, so the caller may reuse it on return */
            size_t bytes = sh.w * sh.h * sh.z;
            unsigned char *stage = malloc(bytes ? bytes : 1);
            if (!stage) {
                sim_op_free(op);
                return CUDA_ERROR_OUT_OF_MEMORY;
            }
            for (size_t k = 0; k < sh.z; k++)
                for (size_t i = 0; i < sh.h; i++)
                    memcpy(stage + (k * sh.h + i) * sh.w,
                           (const unsigned char *)src + k * sh.sslice + i * sh.spitch, sh.w);
            op->u.copy.staging = stage;
            op->u.copy.src = stage;
            op->u.copy.spitch = sh.w;
            op->u.copy.sslice = sh.w * sh.h;
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

static CUresult copy2d(void *dst, size_t dpitch, const void *src, size_t spitch, size_t w, size_t h,
                       CUstream hs, int async, int pt) {
    struct shape sh = {w, h, 1, dpitch, spitch, 0, 0};
    return copy3d(dst, src, sh, hs, async, pt);
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

/* ---- 3D, peer and batched copies ----------------------------------------------- */

static CUresult copy_3d_desc(const CUDA_MEMCPY3D *p, CUstream hs, int async, int pt) {
    if (!p)
        return CUDA_ERROR_INVALID_VALUE;
    uintptr_t d, s;
    size_t dslice = p->dstPitch * p->dstHeight, sslice = p->srcPitch * p->srcHeight;
    CUresult r = side(p->dstMemoryType, p->dstHost, p->dstDevice, p->dstXInBytes,
                      p->dstY + p->dstZ * p->dstHeight, p->dstPitch, &d);
    if (r == CUDA_SUCCESS)
        r = side(p->srcMemoryType, p->srcHost, p->srcDevice, p->srcXInBytes,
                 p->srcY + p->srcZ * p->srcHeight, p->srcPitch, &s);
    if (r != CUDA_SUCCESS)
        return r;
    struct shape sh = {p->WidthInBytes,
                       p->Height,
                       p->Depth,
                       p->Height > 1 || p->Depth > 1 ? p->dstPitch : p->WidthInBytes,
                       p->Height > 1 || p->Depth > 1 ? p->srcPitch : p->WidthInBytes,
                       dslice,
                       sslice};
    return copy3d((void *)d, (const void *)s, sh, hs, async, pt);
}

SIM_API CUresult cuMemcpy3D_v2(const CUDA_MEMCPY3D *pCopy) {
    SIM_ENTER("cuMemcpy3D_v2");
    return copy_3d_desc(pCopy, NULL, 0, 0);
}
SIM_API CUresult cuMemcpy3D_v2_ptds(const CUDA_MEMCPY3D *pCopy) {
    SIM_ENTER("cuMemcpy3D_v2_ptds");
    return copy_3d_desc(pCopy, NULL, 0, 1);
}
SIM_API CUresult cuMemcpy3DAsync_v2(const CUDA_MEMCPY3D *pCopy, CUstream hStream) {
    SIM_ENTER("cuMemcpy3DAsync_v2");
    return copy_3d_desc(pCopy, hStream, 1, 0);
}
SIM_API CUresult cuMemcpy3DAsync_v2_ptsz(const CUDA_MEMCPY3D *pCopy, CUstream hStream) {
    SIM_ENTER("cuMemcpy3DAsync_v2_ptsz");
    return copy_3d_desc(pCopy, hStream, 1, 1);
}

static CUresult copy_3d_peer(const CUDA_MEMCPY3D_PEER *p, CUstream hs, int async, int pt) {
    if (!p)
        return CUDA_ERROR_INVALID_VALUE;
    if ((p->srcContext && !sim_ctx_valid(p->srcContext)) ||
        (p->dstContext && !sim_ctx_valid(p->dstContext)))
        return CUDA_ERROR_INVALID_CONTEXT;
    CUDA_MEMCPY3D c = {0};
    c.srcXInBytes = p->srcXInBytes;
    c.srcY = p->srcY;
    c.srcZ = p->srcZ;
    c.srcMemoryType = p->srcMemoryType;
    c.srcHost = p->srcHost;
    c.srcDevice = p->srcDevice;
    c.srcArray = p->srcArray;
    c.srcPitch = p->srcPitch;
    c.srcHeight = p->srcHeight;
    c.dstXInBytes = p->dstXInBytes;
    c.dstY = p->dstY;
    c.dstZ = p->dstZ;
    c.dstMemoryType = p->dstMemoryType;
    c.dstHost = p->dstHost;
    c.dstDevice = p->dstDevice;
    c.dstArray = p->dstArray;
    c.dstPitch = p->dstPitch;
    c.dstHeight = p->dstHeight;
    c.WidthInBytes = p->WidthInBytes;
    c.Height = p->Height;
    c.Depth = p->Depth;
    return copy_3d_desc(&c, hs, async, pt);
}

SIM_API CUresult cuMemcpy3DPeer(const CUDA_MEMCPY3D_PEER *pCopy) {
    SIM_ENTER("cuMemcpy3DPeer");
    return copy_3d_peer(pCopy, NULL, 0, 0);
}
SIM_API CUresult cuMemcpy3DPeer_ptds(const CUDA_MEMCPY3D_PEER *pCopy) {
    SIM_ENTER("cuMemcpy3DPeer_ptds");
    return copy_3d_peer(pCopy, NULL, 0, 1);
}
SIM_API CUresult cuMemcpy3DPeerAsync(const CUDA_MEMCPY3D_PEER *pCopy, CUstream hStream) {
    SIM_ENTER("cuMemcpy3DPeerAsync");
    return copy_3d_peer(pCopy, hStream, 1, 0);
}
SIM_API CUresult cuMemcpy3DPeerAsync_ptsz(const CUDA_MEMCPY3D_PEER *pCopy, CUstream hStream) {
    SIM_ENTER("cuMemcpy3DPeerAsync_ptsz");
    return copy_3d_peer(pCopy, hStream, 1, 1);
}

/* One device: a peer copy is a device-to-device copy between valid contexts. */
static CUresult copy_peer(CUdeviceptr dst, CUcontext dc, CUdeviceptr src, CUcontext sc, size_t n,
                          CUstream hs, int async, int pt) {
    if (!sim_ctx_valid(dc) || !sim_ctx_valid(sc))
        return CUDA_ERROR_INVALID_CONTEXT;
    return copy2d((void *)(uintptr_t)dst, n, (const void *)(uintptr_t)src, n, n, 1, hs, async, pt);
}

SIM_API CUresult cuMemcpyPeer(CUdeviceptr dstDevice, CUcontext dstContext, CUdeviceptr srcDevice,
                              CUcontext srcContext, size_t ByteCount) {
    SIM_ENTER("cuMemcpyPeer");
    return copy_peer(dstDevice, dstContext, srcDevice, srcContext, ByteCount, NULL, 0, 0);
}
SIM_API CUresult cuMemcpyPeer_ptds(CUdeviceptr dstDevice, CUcontext dstContext,
                                   CUdeviceptr srcDevice, CUcontext srcContext, size_t ByteCount) {
    SIM_ENTER("cuMemcpyPeer_ptds");
    return copy_peer(dstDevice, dstContext, srcDevice, srcContext, ByteCount, NULL, 0, 1);
}
SIM_API CUresult cuMemcpyPeerAsync(CUdeviceptr dstDevice, CUcontext dstContext,
                                   CUdeviceptr srcDevice, CUcontext srcContext, size_t ByteCount,
                                   CUstream hStream) {
    SIM_ENTER("cuMemcpyPeerAsync");
    return copy_peer(dstDevice, dstContext, srcDevice, srcContext, ByteCount, hStream, 1, 0);
}
SIM_API CUresult cuMemcpyPeerAsync_ptsz(CUdeviceptr dstDevice, CUcontext dstContext,
                                        CUdeviceptr srcDevice, CUcontext srcContext,
                                        size_t ByteCount, CUstream hStream) {
    SIM_ENTER("cuMemcpyPeerAsync_ptsz");
    return copy_peer(dstDevice, dstContext, srcDevice, srcContext, ByteCount, hStream, 1, 1);
}

static CUresult copy_batch(CUdeviceptr *dsts, CUdeviceptr *srcs, size_t *sizes, size_t count,
                           size_t *fail_idx, CUstream hs, int pt) {
    if (!dsts || !srcs || !sizes || count == 0)
        return CUDA_ERROR_INVALID_VALUE;
    if (fail_idx)
        *fail_idx = SIZE_MAX;
    for (size_t i = 0; i < count; i++) {
        CUresult r = copy2d((void *)(uintptr_t)dsts[i], sizes[i], (const void *)(uintptr_t)srcs[i],
                            sizes[i], sizes[i], 1, hs, 1, pt);
        if (r != CUDA_SUCCESS) {
            if (fail_idx)
                *fail_idx = i;
            return r;
        }
    }
    return CUDA_SUCCESS;
}

SIM_API CUresult cuMemcpyBatchAsync_v2(CUdeviceptr *dsts, CUdeviceptr *srcs, size_t *sizes,
                                       size_t count, CUmemcpyAttributes *attrs, size_t *attrsIdxs,
                                       size_t numAttrs, CUstream hStream) {
    SIM_ENTER("cuMemcpyBatchAsync_v2");
    (void)attrs, (void)attrsIdxs, (void)numAttrs;
    return copy_batch(dsts, srcs, sizes, count, NULL, hStream, 0);
}
SIM_API CUresult cuMemcpyBatchAsync_v2_ptsz(CUdeviceptr *dsts, CUdeviceptr *srcs, size_t *sizes,
                                            size_t count, CUmemcpyAttributes *attrs,
                                            size_t *attrsIdxs, size_t numAttrs, CUstream hStream) {
    SIM_ENTER("cuMemcpyBatchAsync_v2_ptsz");
    (void)attrs, (void)attrsIdxs, (void)numAttrs;
    return copy_batch(dsts, srcs, sizes, count, NULL, hStream, 1);
}
#undef cuMemcpyBatchAsync
SIM_API CUresult cuMemcpyBatchAsync(CUdeviceptr *dsts, CUdeviceptr *srcs, size_t *sizes,
                                    size_t count, CUmemcpyAttributes *attrs, size_t *attrsIdxs,
                                    size_t numAttrs, size_t *failIdx, CUstream hStream) {
    SIM_ENTER("cuMemcpyBatchAsync");
    (void)attrs, (void)attrsIdxs, (void)numAttrs;
    return copy_batch(dsts, srcs, sizes, count, failIdx, hStream, 0);
}
SIM_API CUresult cuMemcpyBatchAsync_ptsz(CUdeviceptr *dsts, CUdeviceptr *srcs, size_t *sizes,
                                         size_t count, CUmemcpyAttributes *attrs, size_t *attrsIdxs,
                                         size_t numAttrs, size_t *failIdx, CUstream hStream) {
    SIM_ENTER("cuMemcpyBatchAsync_ptsz");
    (void)attrs, (void)attrsIdxs, (void)numAttrs;
    return copy_batch(dsts, srcs, sizes, count, failIdx, hStream, 1);
}

/* Pointer operands only (no arrays); rowLength/layerHeight 0 mean tightly packed. */
static CUresult copy_3d_batch(size_t n, CUDA_MEMCPY3D_BATCH_OP *ops, size_t *fail_idx, CUstream hs,
                              int pt) {
    if (!ops || n == 0)
        return CUDA_ERROR_INVALID_VALUE;
    if (fail_idx)
        *fail_idx = SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        const CUDA_MEMCPY3D_BATCH_OP *o = &ops[i];
        CUresult r = CUDA_ERROR_NOT_SUPPORTED;
        if (o->src.type == CU_MEMCPY_OPERAND_TYPE_POINTER &&
            o->dst.type == CU_MEMCPY_OPERAND_TYPE_POINTER) {
            size_t w = o->extent.width, h = o->extent.height;
            size_t sp = o->src.op.ptr.rowLength ? o->src.op.ptr.rowLength : w;
            size_t dp = o->dst.op.ptr.rowLength ? o->dst.op.ptr.rowLength : w;
            size_t sl = (o->src.op.ptr.layerHeight ? o->src.op.ptr.layerHeight : h) * sp;
            size_t dl = (o->dst.op.ptr.layerHeight ? o->dst.op.ptr.layerHeight : h) * dp;
            struct shape sh = {w, h, o->extent.depth, dp, sp, dl, sl};
            r = copy3d((void *)(uintptr_t)o->dst.op.ptr.ptr,
                       (const void *)(uintptr_t)o->src.op.ptr.ptr, sh, hs, 1, pt);
        }
        if (r != CUDA_SUCCESS) {
            if (fail_idx)
                *fail_idx = i;
            return r;
        }
    }
    return CUDA_SUCCESS;
}

SIM_API CUresult cuMemcpy3DBatchAsync_v2(size_t numOps, CUDA_MEMCPY3D_BATCH_OP *opList,
                                         unsigned long long flags, CUstream hStream) {
    SIM_ENTER("cuMemcpy3DBatchAsync_v2");
    (void)flags;
    return copy_3d_batch(numOps, opList, NULL, hStream, 0);
}
SIM_API CUresult cuMemcpy3DBatchAsync_v2_ptsz(size_t numOps, CUDA_MEMCPY3D_BATCH_OP *opList,
                                              unsigned long long flags, CUstream hStream) {
    SIM_ENTER("cuMemcpy3DBatchAsync_v2_ptsz");
    (void)flags;
    return copy_3d_batch(numOps, opList, NULL, hStream, 1);
}
#undef cuMemcpy3DBatchAsync
SIM_API CUresult cuMemcpy3DBatchAsync(size_t numOps, CUDA_MEMCPY3D_BATCH_OP *opList,
                                      size_t *failIdx, unsigned long long flags, CUstream hStream) {
    SIM_ENTER("cuMemcpy3DBatchAsync");
    (void)flags;
    return copy_3d_batch(numOps, opList, failIdx, hStream, 0);
}
SIM_API CUresult cuMemcpy3DBatchAsync_ptsz(size_t numOps, CUDA_MEMCPY3D_BATCH_OP *opList,
                                           size_t *failIdx, unsigned long long flags,
                                           CUstream hStream) {
    SIM_ENTER("cuMemcpy3DBatchAsync_ptsz");
    (void)flags;
    return copy_3d_batch(numOps, opList, failIdx, hStream, 1);
}

/* ---- memset ---------------------------------------------------------------------- */

static CUresult set2d(CUdeviceptr dst, size_t pitch, unsigned value, unsigned elem, size_t w,
                      size_t h, CUstream hs, int async, int pt) {
    struct sim_stream *s;
    CUresult r = sim_stream_resolve(hs, pt, &s);
    if (r == CUDA_SUCCESS && !async)
        r = sync_call_allowed(s);
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
    struct sim_op *op = sim_op_new(SIM_OP_MEMSET);
    if (!op)
        return CUDA_ERROR_OUT_OF_MEMORY;
    op->u.memset.dst = (void *)(uintptr_t)dst;
    op->u.memset.pitch = pitch;
    op->u.memset.width = w;
    op->u.memset.height = h;
    op->u.memset.elem = elem;
    op->u.memset.value = value;
    if (sim_capture_op(s, op, &r))
        return r;
    /* like the driver: a synchronous memset of device memory returns before it is done */
    if (async || sim_is_device(dst)) {
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
