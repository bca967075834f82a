/*
 * hooks_copy.c — the cuMemcpy family: every entry point that may read or write device
 * memory. Each device range it touches is reported to the runtime (runtime_begin_access,
 * both ranges of a copy in one call), which makes tracked memory resident, orders the
 * copy's stream after any restore and holds it so until the driver has the copy. Host<->array and
 * array<->array copies touch no linear device memory and are not hooked.
 *
 * Sync entry points run on the legacy default stream, their _ptds variants on the
 * per-thread one; async ones on their stream, NULL meaning the same two.
 */
#include "interpose/hook.h"
#include "interpose/ranges.h"

/* One device range; runtime_begin_access ignores an empty one. */
static CUresult begin_one(CUdeviceptr ptr, size_t bytes, CUstream stream) {
    return runtime_begin_access(ptr, bytes, 0, 0, stream);
}

/* Two device ranges of one copy in one begin, so making one resident can never evict the
 * other (either may be host memory under unified addressing; the runtime ignores what it
 * does not track). */
static CUresult begin_both(CUdeviceptr dst, CUdeviceptr src, size_t bytes, CUstream stream) {
    return runtime_begin_access(src, bytes, dst, bytes, stream);
}

/* The device ranges of a 2D/3D copy: each side counts only when it is linear device
 * memory. */
static CUresult begin_ranges(bool src_device, const struct device_range *src, bool dst_device,
                             const struct device_range *dst, CUstream stream) {
    return runtime_begin_access(src->ptr, src_device ? src->bytes : 0, dst->ptr,
                                dst_device ? dst->bytes : 0, stream);
}

/* --- linear copies ------------------------------------------------------------------ */

/* For helpers that make several nested begins: the first error stops them (the hook's
 * HOOK_BRACKETED still ends the call). */
#define CHECKED(call)                                                                              \
    do {                                                                                           \
        CUresult checked_rc_ = (call);                                                             \
        if (checked_rc_ != CUDA_SUCCESS)                                                           \
            return checked_rc_;                                                                    \
    } while (0)

static CUresult copy_unified(__typeof__(&cuMemcpyAsync) real, CUdeviceptr dst, CUdeviceptr src,
                             size_t n, CUstream stream, CUstream runs_on) {
    if (!real)
        return driver_missing();
    return HOOK_BRACKETED(runtime_begin_copy(dst, src, n, runs_on), real(dst, src, n, stream));
}

OFFLOAD_EXPORT CUresult cuMemcpy(CUdeviceptr dst, CUdeviceptr src, size_t ByteCount) {
    if (!driver()->cuMemcpy)
        return driver_missing();
    return HOOK_BRACKETED(runtime_begin_copy(dst, src, ByteCount, CU_STREAM_LEGACY),
                          driver()->cuMemcpy(dst, src, ByteCount));
}

OFFLOAD_EXPORT CUresult cuMemcpy_ptds(CUdeviceptr dst, CUdeviceptr src, size_t ByteCount) {
    if (!driver()->cuMemcpy_ptds)
        return driver_missing();
    return HOOK_BRACKETED(runtime_begin_copy(dst, src, ByteCount, CU_STREAM_PER_THREAD),
                          driver()->cuMemcpy_ptds(dst, src, ByteCount));
}

OFFLOAD_EXPORT CUresult cuMemcpyAsync(CUdeviceptr dst, CUdeviceptr src, size_t ByteCount,
                                      CUstream hStream) {
    return copy_unified(driver()->cuMemcpyAsync, dst, src, ByteCount, hStream,
                        hook_legacy_stream(hStream));
}

OFFLOAD_EXPORT CUresult cuMemcpyAsync_ptsz(CUdeviceptr dst, CUdeviceptr src, size_t ByteCount,
                                           CUstream hStream) {
    return copy_unified(driver()->cuMemcpyAsync_ptsz, dst, src, ByteCount, hStream,
                        hook_per_thread_stream(hStream));
}

OFFLOAD_EXPORT CUresult cuMemcpyPeer(CUdeviceptr dstDevice, CUcontext dstContext,
                                     CUdeviceptr srcDevice, CUcontext srcContext,
                                     size_t ByteCount) {
    if (!driver()->cuMemcpyPeer)
        return driver_missing();
    return HOOK_BRACKETED(
        begin_both(dstDevice, srcDevice, ByteCount, CU_STREAM_LEGACY),
        driver()->cuMemcpyPeer(dstDevice, dstContext, srcDevice, srcContext, ByteCount));
}

OFFLOAD_EXPORT CUresult cuMemcpyPeer_ptds(CUdeviceptr dstDevice, CUcontext dstContext,
                                          CUdeviceptr srcDevice, CUcontext srcContext,
                                          size_t ByteCount) {
    if (!driver()->cuMemcpyPeer_ptds)
        return driver_missing();
    return HOOK_BRACKETED(
        begin_both(dstDevice, srcDevice, ByteCount, CU_STREAM_PER_THREAD),
        driver()->cuMemcpyPeer_ptds(dstDevice, dstContext, srcDevice, srcContext, ByteCount));
}

static CUresult copy_peer_async(__typeof__(&cuMemcpyPeerAsync) real, CUdeviceptr dst,
                                CUcontext dst_ctx, CUdeviceptr src, CUcontext src_ctx, size_t n,
                                CUstream stream, CUstream runs_on) {
    if (!real)
        return driver_missing();
    return HOOK_BRACKETED(begin_both(dst, src, n, runs_on),
                          real(dst, dst_ctx, src, src_ctx, n, stream));
}

OFFLOAD_EXPORT CUresult cuMemcpyPeerAsync(CUdeviceptr dstDevice, CUcontext dstContext,
                                          CUdeviceptr srcDevice, CUcontext srcContext,
                                          size_t ByteCount, CUstream hStream) {
    return copy_peer_async(driver()->cuMemcpyPeerAsync, dstDevice, dstContext, srcDevice,
                           srcContext, ByteCount, hStream, hook_legacy_stream(hStream));
}

OFFLOAD_EXPORT CUresult cuMemcpyPeerAsync_ptsz(CUdeviceptr dstDevice, CUcontext dstContext,
                                               CUdeviceptr srcDevice, CUcontext srcContext,
                                               size_t ByteCount, CUstream hStream) {
    return copy_peer_async(driver()->cuMemcpyPeerAsync_ptsz, dstDevice, dstContext, srcDevice,
                           srcContext, ByteCount, hStream, hook_per_thread_stream(hStream));
}

/* --- host <-> device, device <-> device ------------------------------------------- */

static CUresult copy_htod(__typeof__(&cuMemcpyHtoD_v2) real, CUdeviceptr dst, const void *src,
                          size_t n, CUstream runs_on) {
    if (!real)
        return driver_missing();
    return HOOK_BRACKETED(runtime_begin_upload(dst, src, n, runs_on), real(dst, src, n));
}

OFFLOAD_EXPORT CUresult cuMemcpyHtoD_v2(CUdeviceptr dstDevice, const void *srcHost,
                                        size_t ByteCount) {
    return copy_htod(driver()->cuMemcpyHtoD_v2, dstDevice, srcHost, ByteCount, CU_STREAM_LEGACY);
}

OFFLOAD_EXPORT CUresult cuMemcpyHtoD_v2_ptds(CUdeviceptr dstDevice, const void *srcHost,
                                             size_t ByteCount) {
    return copy_htod(driver()->cuMemcpyHtoD_v2_ptds, dstDevice, srcHost, ByteCount,
                     CU_STREAM_PER_THREAD);
}

static CUresult copy_htod_async(__typeof__(&cuMemcpyHtoDAsync_v2) real, CUdeviceptr dst,
                                const void *src, size_t n, CUstream stream, CUstream runs_on) {
    if (!real)
        return driver_missing();
    return HOOK_BRACKETED(runtime_begin_upload(dst, src, n, runs_on), real(dst, src, n, stream));
}

OFFLOAD_EXPORT CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dstDevice, const void *srcHost,
                                             size_t ByteCount, CUstream hStream) {
    return copy_htod_async(driver()->cuMemcpyHtoDAsync_v2, dstDevice, srcHost, ByteCount, hStream,
                           hook_legacy_stream(hStream));
}

OFFLOAD_EXPORT CUresult cuMemcpyHtoDAsync_v2_ptsz(CUdeviceptr dstDevice, const void *srcHost,
                                                  size_t ByteCount, CUstream hStream) {
    return copy_htod_async(driver()->cuMemcpyHtoDAsync_v2_ptsz, dstDevice, srcHost, ByteCount,
                           hStream, hook_per_thread_stream(hStream));
}

static CUresult copy_dtoh(__typeof__(&cuMemcpyDtoH_v2) real, void *dst, CUdeviceptr src, size_t n,
                          CUstream runs_on) {
    if (!real)
        return driver_missing();
    bool served = false;
    CUresult r = runtime_read_evicted(dst, src, n, runs_on, &served);
    if (served || r != CUDA_SUCCESS)
        return r;
    return HOOK_BRACKETED(begin_one(src, n, runs_on), real(dst, src, n));
}

OFFLOAD_EXPORT CUresult cuMemcpyDtoH_v2(void *dstHost, CUdeviceptr srcDevice, size_t ByteCount) {
    return copy_dtoh(driver()->cuMemcpyDtoH_v2, dstHost, srcDevice, ByteCount, CU_STREAM_LEGACY);
}

OFFLOAD_EXPORT CUresult cuMemcpyDtoH_v2_ptds(void *dstHost, CUdeviceptr srcDevice,
                                             size_t ByteCount) {
    return copy_dtoh(driver()->cuMemcpyDtoH_v2_ptds, dstHost, srcDevice, ByteCount,
                     CU_STREAM_PER_THREAD);
}

static CUresult copy_dtoh_async(__typeof__(&cuMemcpyDtoHAsync_v2) real, void *dst, CUdeviceptr src,
                                size_t n, CUstream stream, CUstream runs_on) {
    if (!real)
        return driver_missing();
    return HOOK_BRACKETED(begin_one(src, n, runs_on), real(dst, src, n, stream));
}

OFFLOAD_EXPORT CUresult cuMemcpyDtoHAsync_v2(void *dstHost, CUdeviceptr srcDevice, size_t ByteCount,
                                             CUstream hStream) {
    return copy_dtoh_async(driver()->cuMemcpyDtoHAsync_v2, dstHost, srcDevice, ByteCount, hStream,
                           hook_legacy_stream(hStream));
}

OFFLOAD_EXPORT CUresult cuMemcpyDtoHAsync_v2_ptsz(void *dstHost, CUdeviceptr srcDevice,
                                                  size_t ByteCount, CUstream hStream) {
    return copy_dtoh_async(driver()->cuMemcpyDtoHAsync_v2_ptsz, dstHost, srcDevice, ByteCount,
                           hStream, hook_per_thread_stream(hStream));
}

static CUresult copy_dtod(__typeof__(&cuMemcpyDtoD_v2) real, CUdeviceptr dst, CUdeviceptr src,
                          size_t n, CUstream runs_on) {
    if (!real)
        return driver_missing();
    return HOOK_BRACKETED(begin_both(dst, src, n, runs_on), real(dst, src, n));
}

OFFLOAD_EXPORT CUresult cuMemcpyDtoD_v2(CUdeviceptr dstDevice, CUdeviceptr srcDevice,
                                        size_t ByteCount) {
    return copy_dtod(driver()->cuMemcpyDtoD_v2, dstDevice, srcDevice, ByteCount, CU_STREAM_LEGACY);
}

OFFLOAD_EXPORT CUresult cuMemcpyDtoD_v2_ptds(CUdeviceptr dstDevice, CUdeviceptr srcDevice,
                                             size_t ByteCount) {
    return copy_dtod(driver()->cuMemcpyDtoD_v2_ptds, dstDevice, srcDevice, ByteCount,
                     CU_STREAM_PER_THREAD);
}

static CUresult copy_dtod_async(__typeof__(&cuMemcpyDtoDAsync_v2) real, CUdeviceptr dst,
                                CUdeviceptr src, size_t n, CUstream stream, CUstream runs_on) {
    if (!real)
        return driver_missing();
    return HOOK_BRACKETED(begin_both(dst, src, n, runs_on), real(dst, src, n, stream));
}

OFFLOAD_EXPORT CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dstDevice, CUdeviceptr srcDevice,
                                             size_t ByteCount, CUstream hStream) {
    return copy_dtod_async(driver()->cuMemcpyDtoDAsync_v2, dstDevice, srcDevice, ByteCount, hStream,
                           hook_legacy_stream(hStream));
}

OFFLOAD_EXPORT CUresult cuMemcpyDtoDAsync_v2_ptsz(CUdeviceptr dstDevice, CUdeviceptr srcDevice,
                                                  size_t ByteCount, CUstream hStream) {
    return copy_dtod_async(driver()->cuMemcpyDtoDAsync_v2_ptsz, dstDevice, srcDevice, ByteCount,
                           hStream, hook_per_thread_stream(hStream));
}

/* --- device <-> array -------------------------------------------------------------- */

static CUresult copy_dtoa(__typeof__(&cuMemcpyDtoA_v2) real, CUarray dst, size_t offset,
                          CUdeviceptr src, size_t n, CUstream runs_on) {
    if (!real)
        return driver_missing();
    return HOOK_BRACKETED(begin_one(src, n, runs_on), real(dst, offset, src, n));
}

OFFLOAD_EXPORT CUresult cuMemcpyDtoA_v2(CUarray dstArray, size_t dstOffset, CUdeviceptr srcDevice,
                                        size_t ByteCount) {
    return copy_dtoa(driver()->cuMemcpyDtoA_v2, dstArray, dstOffset, srcDevice, ByteCount,
                     CU_STREAM_LEGACY);
}

OFFLOAD_EXPORT CUresult cuMemcpyDtoA_v2_ptds(CUarray dstArray, size_t dstOffset,
                                             CUdeviceptr srcDevice, size_t ByteCount) {
    return copy_dtoa(driver()->cuMemcpyDtoA_v2_ptds, dstArray, dstOffset, srcDevice, ByteCount,
                     CU_STREAM_PER_THREAD);
}

static CUresult copy_atod(__typeof__(&cuMemcpyAtoD_v2) real, CUdeviceptr dst, CUarray src,
                          size_t offset, size_t n, CUstream runs_on) {
    if (!real)
        return driver_missing();
    return HOOK_BRACKETED(begin_one(dst, n, runs_on), real(dst, src, offset, n));
}

OFFLOAD_EXPORT CUresult cuMemcpyAtoD_v2(CUdeviceptr dstDevice, CUarray srcArray, size_t srcOffset,
                                        size_t ByteCount) {
    return copy_atod(driver()->cuMemcpyAtoD_v2, dstDevice, srcArray, srcOffset, ByteCount,
                     CU_STREAM_LEGACY);
}

OFFLOAD_EXPORT CUresult cuMemcpyAtoD_v2_ptds(CUdeviceptr dstDevice, CUarray srcArray,
                                             size_t srcOffset, size_t ByteCount) {
    return copy_atod(driver()->cuMemcpyAtoD_v2_ptds, dstDevice, srcArray, srcOffset, ByteCount,
                     CU_STREAM_PER_THREAD);
}

/* --- 2D / 3D ------------------------------------------------------------------------ */

static CUresult begin_2d(const CUDA_MEMCPY2D *c, CUstream runs_on) {
    struct device_range src, dst;
    if (!c)
        return CUDA_SUCCESS; /* the driver rejects it */
    bool src_device = range_memcpy2d_src(c, &src);
    return begin_ranges(src_device, &src, range_memcpy2d_dst(c, &dst), &dst, runs_on);
}

static CUresult begin_3d(const CUDA_MEMCPY3D *c, CUstream runs_on) {
    struct device_range src, dst;
    if (!c)
        return CUDA_SUCCESS;
    bool src_device = range_memcpy3d_src(c, &src);
    return begin_ranges(src_device, &src, range_memcpy3d_dst(c, &dst), &dst, runs_on);
}

static CUresult begin_3d_peer(const CUDA_MEMCPY3D_PEER *c, CUstream runs_on) {
    struct device_range src, dst;
    if (!c)
        return CUDA_SUCCESS;
    bool src_device = range_memcpy3d_peer_src(c, &src);
    return begin_ranges(src_device, &src, range_memcpy3d_peer_dst(c, &dst), &dst, runs_on);
}

#define HOOK_COPY_SYNC(name, type, check, runs_on)                                                 \
    OFFLOAD_EXPORT CUresult name(const type *pCopy) {                                              \
        if (!driver()->name)                                                                       \
            return driver_missing();                                                               \
        return HOOK_BRACKETED(check(pCopy, runs_on), driver()->name(pCopy));                       \
    }

#define HOOK_COPY_ASYNC(name, type, check, normalise)                                              \
    OFFLOAD_EXPORT CUresult name(const type *pCopy, CUstream hStream) {                            \
        if (!driver()->name)                                                                       \
            return driver_missing();                                                               \
        return HOOK_BRACKETED(check(pCopy, normalise(hStream)), driver()->name(pCopy, hStream));   \
    }

HOOK_COPY_SYNC(cuMemcpy2D_v2, CUDA_MEMCPY2D, begin_2d, CU_STREAM_LEGACY)
HOOK_COPY_SYNC(cuMemcpy2D_v2_ptds, CUDA_MEMCPY2D, begin_2d, CU_STREAM_PER_THREAD)
HOOK_COPY_SYNC(cuMemcpy2DUnaligned_v2, CUDA_MEMCPY2D, begin_2d, CU_STREAM_LEGACY)
HOOK_COPY_SYNC(cuMemcpy2DUnaligned_v2_ptds, CUDA_MEMCPY2D, begin_2d, CU_STREAM_PER_THREAD)
HOOK_COPY_ASYNC(cuMemcpy2DAsync_v2, CUDA_MEMCPY2D, begin_2d, hook_legacy_stream)
HOOK_COPY_ASYNC(cuMemcpy2DAsync_v2_ptsz, CUDA_MEMCPY2D, begin_2d, hook_per_thread_stream)
HOOK_COPY_SYNC(cuMemcpy3D_v2, CUDA_MEMCPY3D, begin_3d, CU_STREAM_LEGACY)
HOOK_COPY_SYNC(cuMemcpy3D_v2_ptds, CUDA_MEMCPY3D, begin_3d, CU_STREAM_PER_THREAD)
HOOK_COPY_ASYNC(cuMemcpy3DAsync_v2, CUDA_MEMCPY3D, begin_3d, hook_legacy_stream)
HOOK_COPY_ASYNC(cuMemcpy3DAsync_v2_ptsz, CUDA_MEMCPY3D, begin_3d, hook_per_thread_stream)
HOOK_COPY_SYNC(cuMemcpy3DPeer, CUDA_MEMCPY3D_PEER, begin_3d_peer, CU_STREAM_LEGACY)
HOOK_COPY_SYNC(cuMemcpy3DPeer_ptds, CUDA_MEMCPY3D_PEER, begin_3d_peer, CU_STREAM_PER_THREAD)
HOOK_COPY_ASYNC(cuMemcpy3DPeerAsync, CUDA_MEMCPY3D_PEER, begin_3d_peer, hook_legacy_stream)
HOOK_COPY_ASYNC(cuMemcpy3DPeerAsync_ptsz, CUDA_MEMCPY3D_PEER, begin_3d_peer, hook_per_thread_stream)

/* --- batches (CUDA 12.8+) ------------------------------------------------------------
 * The _v2 ABIs (13.0) dropped failIdx; the plain names and their _ptsz are the 12.8 ABI. */

/* Every operation of a batch, one nested begin each: they share the call's protection, so
 * making one operation's memory resident never evicts another's. */
static CUresult begin_batch(CUdeviceptr *dsts, CUdeviceptr *srcs, size_t *sizes, size_t count,
                            CUstream runs_on) {
    if (!dsts || !srcs || !sizes)
        return CUDA_SUCCESS; /* the driver rejects it */
    for (size_t i = 0; i < count; i++)
        CHECKED(begin_both(dsts[i], srcs[i], sizes[i], runs_on));
    return CUDA_SUCCESS;
}

static CUresult begin_batch3d(size_t count, const CUDA_MEMCPY3D_BATCH_OP *ops, CUstream runs_on) {
    if (!ops)
        return CUDA_SUCCESS;
    for (size_t i = 0; i < count; i++) {
        struct device_range src, dst;
        bool src_device = range_batch3d_src(&ops[i], &src);
        CHECKED(begin_ranges(src_device, &src, range_batch3d_dst(&ops[i], &dst), &dst, runs_on));
    }
    return CUDA_SUCCESS;
}

OFFLOAD_EXPORT CUresult cuMemcpyBatchAsync_v2(CUdeviceptr *dsts, CUdeviceptr *srcs, size_t *sizes,
                                              size_t count, CUmemcpyAttributes *attrs,
                                              size_t *attrsIdxs, size_t numAttrs,
                                              CUstream hStream) {
    if (!driver()->cuMemcpyBatchAsync_v2)
        return driver_missing();
    return HOOK_BRACKETED(begin_batch(dsts, srcs, sizes, count, hook_legacy_stream(hStream)),
                          driver()->cuMemcpyBatchAsync_v2(dsts, srcs, sizes, count, attrs,
                                                          attrsIdxs, numAttrs, hStream));
}

OFFLOAD_EXPORT CUresult cuMemcpyBatchAsync_v2_ptsz(CUdeviceptr *dsts, CUdeviceptr *srcs,
                                                   size_t *sizes, size_t count,
                                                   CUmemcpyAttributes *attrs, size_t *attrsIdxs,
                                                   size_t numAttrs, CUstream hStream) {
    if (!driver()->cuMemcpyBatchAsync_v2_ptsz)
        return driver_missing();
    return HOOK_BRACKETED(begin_batch(dsts, srcs, sizes, count, hook_per_thread_stream(hStream)),
                          driver()->cuMemcpyBatchAsync_v2_ptsz(dsts, srcs, sizes, count, attrs,
                                                               attrsIdxs, numAttrs, hStream));
}

OFFLOAD_EXPORT CUresult hook_cuMemcpyBatchAsync_v1(CUdeviceptr *dsts, CUdeviceptr *srcs,
                                                   size_t *sizes, size_t count,
                                                   CUmemcpyAttributes *attrs, size_t *attrsIdxs,
                                                   size_t numAttrs, size_t *failIdx,
                                                   CUstream hStream) {
    if (!driver()->cuMemcpyBatchAsync_v1)
        return driver_missing();
    return HOOK_BRACKETED(begin_batch(dsts, srcs, sizes, count, hook_legacy_stream(hStream)),
                          driver()->cuMemcpyBatchAsync_v1(dsts, srcs, sizes, count, attrs,
                                                          attrsIdxs, numAttrs, failIdx, hStream));
}

OFFLOAD_EXPORT CUresult cuMemcpyBatchAsync_ptsz(CUdeviceptr *dsts, CUdeviceptr *srcs, size_t *sizes,
                                                size_t count, CUmemcpyAttributes *attrs,
                                                size_t *attrsIdxs, size_t numAttrs, size_t *failIdx,
                                                CUstream hStream) {
    if (!driver()->cuMemcpyBatchAsync_ptsz)
        return driver_missing();
    return HOOK_BRACKETED(begin_batch(dsts, srcs, sizes, count, hook_per_thread_stream(hStream)),
                          driver()->cuMemcpyBatchAsync_ptsz(dsts, srcs, sizes, count, attrs,
                                                            attrsIdxs, numAttrs, failIdx, hStream));
}

OFFLOAD_EXPORT CUresult cuMemcpy3DBatchAsync_v2(size_t numOps, CUDA_MEMCPY3D_BATCH_OP *opList,
                                                unsigned long long flags, CUstream hStream) {
    if (!driver()->cuMemcpy3DBatchAsync_v2)
        return driver_missing();
    return HOOK_BRACKETED(begin_batch3d(numOps, opList, hook_legacy_stream(hStream)),
                          driver()->cuMemcpy3DBatchAsync_v2(numOps, opList, flags, hStream));
}

OFFLOAD_EXPORT CUresult cuMemcpy3DBatchAsync_v2_ptsz(size_t numOps, CUDA_MEMCPY3D_BATCH_OP *opList,
                                                     unsigned long long flags, CUstream hStream) {
    if (!driver()->cuMemcpy3DBatchAsync_v2_ptsz)
        return driver_missing();
    return HOOK_BRACKETED(begin_batch3d(numOps, opList, hook_per_thread_stream(hStream)),
                          driver()->cuMemcpy3DBatchAsync_v2_ptsz(numOps, opList, flags, hStream));
}

OFFLOAD_EXPORT CUresult hook_cuMemcpy3DBatchAsync_v1(size_t numOps, CUDA_MEMCPY3D_BATCH_OP *opList,
                                                     size_t *failIdx, unsigned long long flags,
                                                     CUstream hStream) {
    if (!driver()->cuMemcpy3DBatchAsync_v1)
        return driver_missing();
    return HOOK_BRACKETED(
        begin_batch3d(numOps, opList, hook_legacy_stream(hStream)),
        driver()->cuMemcpy3DBatchAsync_v1(numOps, opList, failIdx, flags, hStream));
}

OFFLOAD_EXPORT CUresult cuMemcpy3DBatchAsync_ptsz(size_t numOps, CUDA_MEMCPY3D_BATCH_OP *opList,
                                                  size_t *failIdx, unsigned long long flags,
                                                  CUstream hStream) {
    if (!driver()->cuMemcpy3DBatchAsync_ptsz)
        return driver_missing();
    return HOOK_BRACKETED(
        begin_batch3d(numOps, opList, hook_per_thread_stream(hStream)),
        driver()->cuMemcpy3DBatchAsync_ptsz(numOps, opList, failIdx, flags, hStream));
}
