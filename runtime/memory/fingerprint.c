/*
 * fingerprint.c — result slots and queueing the fingerprint kernel.
 */
#include "runtime/memory/fingerprint.h"

#include "base/log.h"
#include "driver/cuerr.h"
#include "driver/driver.h"
#include "runtime/devcode/fingerprint_hash.h"
#include "runtime/state.h"

#define SLOT_BYTES 16u
#define RESULT_BYTES ((uint64_t)FINGERPRINT_RESULT_BYTES)

#define MAX_MISSES 4

bool fingerprint_choose_check(const struct runtime *rt, struct allocation *a) {
    if (!rt->cfg.fingerprint || a->readonly || !a->backup || a->backup_valid ||
        !a->fingerprint_known || a->written || rt->fingerprints.code.status == DEVCODE_FAILED)
        return false;
    if (a->check_skips) {
        a->check_skips--;
        return false;
    }
    return true;
}

void fingerprint_checked(struct runtime *rt, struct allocation *a, bool unchanged) {
    rt->stats.clean_checks++;
    if (unchanged) {
        a->check_misses = 0;
        return;
    }
    if (a->check_misses < MAX_MISSES)
        a->check_misses++;
    a->check_skips = (uint8_t)((1u << a->check_misses) - 1);
}

static void log_fallback(struct fingerprints *fp, const char *call, CUresult r) {
    if (fp->failure_logged)
        return;
    fp->failure_logged = true;
    log_info("clean-eviction check unavailable (%s: %s): evictions copy to the host", call,
             cuerr_name(r));
}

/* The result buffers, at the first need: only while the budget has room for them (they
 * are device memory like any other) and no capture is in progress. */
static bool results_ready(struct runtime *rt) {
    struct fingerprints *fp = &rt->fingerprints;
    if (fp->sums)
        return true;
    if (atomic_load_explicit(&copy_captures, memory_order_acquire) > 0 ||
        budget_shortfall(&rt->budget, RESULT_BYTES) > 0)
        return false;
    CUresult r;
    if (!fp->host) { /* kept once allocated: host memory, no device cost */
        void *host = NULL;
        r = driver()->cuMemHostAlloc(&host, RESULT_BYTES, 0);
        if (r != CUDA_SUCCESS) {
            log_fallback(fp, "cuMemHostAlloc", r);
            return false;
        }
        fp->host = host;
    }
    r = driver()->cuMemAlloc_v2(&fp->sums, RESULT_BYTES);
    if (r != CUDA_SUCCESS) {
        fp->sums = 0;
        log_fallback(fp, "cuMemAlloc", r);
        return false;
    }
    budget_add_untracked(&rt->budget, RESULT_BYTES);
    return true;
}

bool fingerprint_give_back_results(struct runtime *rt) {
    struct fingerprints *fp = &rt->fingerprints;
    if (!fp->sums || atomic_load_explicit(&copy_captures, memory_order_acquire) > 0)
        return false;
    for (int w = 0; w < FINGERPRINT_SLOTS / 64; w++)
        if (fp->busy[w])
            return false;
    CUresult r = driver()->cuMemFree_v2(fp->sums);
    if (r != CUDA_SUCCESS) {
        /* said once: an out-of-memory this leads to must not come without its cause */
        static bool said; /* guarded by the runtime lock, as fp */
        if (!said)
            log_warn("cannot give the fingerprint results' device memory back (cuMemFree: "
                     "%s): they keep their room in the budget",
                     cuerr_name(r));
        said = true;
        return false;
    }
    fp->sums = 0;
    budget_sub_untracked(&rt->budget, RESULT_BYTES);
    log_debug("the fingerprint results gave their device memory back to make room");
    return true;
}

static int take_slot(struct fingerprints *fp) {
    for (int w = 0; w < FINGERPRINT_SLOTS / 64; w++) {
        if (fp->busy[w] == UINT64_MAX)
            continue;
        int bit = __builtin_ctzll(~fp->busy[w]);
        fp->busy[w] |= 1ull << bit;
        return w * 64 + bit;
    }
    return -1;
}

void fingerprint_release(struct runtime *rt, struct allocation *a) {
    if (a->fp_slot < 0)
        return;
    rt->fingerprints.busy[a->fp_slot / 64] &= ~(1ull << (a->fp_slot % 64));
    a->fp_slot = -1;
}

/* zero the slot, add the sums of a's bytes to it, copy it to the host: in stream order */
static CUresult queue_on_slot(struct runtime *rt, const struct allocation *a, CUfunction f) {
    struct fingerprints *fp = &rt->fingerprints;
    CUstream s = rt->copy.to_host;
    CUdeviceptr slot = fp->sums + (CUdeviceptr)a->fp_slot * SLOT_BYTES;
    CUresult r = cuerr_note(&rt->copy.failed_call, "cuMemsetD32Async",
                            driver()->cuMemsetD32Async(slot, 0, SLOT_BYTES / 4, s));
    if (r == CUDA_SUCCESS)
        r = cuerr_note(&rt->copy.failed_call, "cuLaunchKernel",
                       devcode_launch_fingerprint(f, a->base, a->size, slot, s));
    if (r == CUDA_SUCCESS)
        r = cuerr_note(
            &rt->copy.failed_call, "cuMemcpyDtoHAsync_v2",
            driver()->cuMemcpyDtoHAsync_v2(fp->host + 2 * a->fp_slot, slot, SLOT_BYTES, s));
    return r;
}

bool fingerprint_queue(struct runtime *rt, struct allocation *a) {
    struct fingerprints *fp = &rt->fingerprints;
    a->fp_slot = -1;
    if (!rt->cfg.fingerprint || a->readonly || fp->code.status == DEVCODE_FAILED)
        return false;
    if (fp->code.status == DEVCODE_UNTRIED &&
        atomic_load_explicit(&copy_captures, memory_order_acquire) > 0)
        return false; /* no module load while a capture is in progress */
    CUfunction f;
    CUresult r = devcode_fingerprint(&fp->code, rt->ctx, &f);
    if (r != CUDA_SUCCESS) {
        log_fallback(fp, fp->code.failed_call, r);
        return false;
    }
    if (!results_ready(rt) || (a->fp_slot = take_slot(fp)) < 0)
        return false;
    r = queue_on_slot(rt, a, f);
    if (r != CUDA_SUCCESS) {
        log_fallback(fp, rt->copy.failed_call, r);
        fingerprint_release(rt, a);
        return false;
    }
    rt->stats.fingerprints++;
    return true;
}

void fingerprint_result(const struct runtime *rt, const struct allocation *a, uint64_t out[2]) {
    const uint64_t *sums = rt->fingerprints.host + 2 * a->fp_slot;
    fingerprint_finish(sums, a->size, out);
}
