/*
 * fingerprint.h — clean evictions decided on the device.
 *
 * A launch that passes an allocation makes its backup stale (liboffload cannot see what
 * a kernel writes), so without `readonly = yes` weights would be copied back at every
 * eviction. Instead, when an allocation's backup is stale only because launches passed
 * it (no copy or memset touched it since the backup was taken, a->written) and the
 * device's fingerprint of the backup's bytes is known (a->fingerprint_known), its
 * eviction first queues liboffload's fingerprint kernel (runtime/devcode/) over the
 * device bytes, on the eviction stream after the allocation's users, and the 16-byte
 * result's copy to the host: EVICTING, step CHECKING (allocation.h). Where landed
 * evictions are reaped, the result decides: equal to a->fingerprint, the memory is
 * released with no copy (a clean eviction); different, the copy out is queued then
 * (step COPYING), and the fingerprint just taken becomes the backup's once it lands
 * (nothing can write the allocation in between: a use takes the eviction back).
 *
 * Every copy out also takes the fingerprint at the same point in stream order (queued
 * just before the copy, on the same stream, after the same users), which is how a
 * fingerprint becomes known. Anything that fails (the module does not load, a launch
 * or memset fails, no device memory for the results under the budget, no free slot, a
 * capture in progress before the first load) falls back to the copy; a failure is
 * logged once at info. Off entirely with `fingerprint = no` (OFFLOAD_FINGERPRINT=no);
 * never used for `readonly` allocations, whose backups stay valid anyway.
 *
 * The results live in FINGERPRINT_SLOTS slots of 16 bytes, device memory liboffload
 * allocates at the first need (counted as untracked in the budget) and pinned host
 * memory beside it; an eviction holds a slot from its queueing until it lands or is
 * taken back. All of a slot's work runs on the eviction stream, so a slot handed back
 * and taken again is reused in stream order. Callers hold the runtime lock.
 */
#ifndef OFFLOAD_FINGERPRINT_H
#define OFFLOAD_FINGERPRINT_H

#include "runtime/devcode/devcode.h"

#include <cuda.h>
#include <stdbool.h>
#include <stdint.h>

struct runtime;
struct allocation;

#define FINGERPRINT_SLOTS 256
#define FINGERPRINT_RESULT_BYTES (FINGERPRINT_SLOTS * 16u) /* device memory, in the budget */

struct fingerprints {
    struct devcode code;
    bool failure_logged; /* the fallback was reported once */
    CUdeviceptr sums;    /* FINGERPRINT_SLOTS x 2 sums on the device; 0: none yet */
    uint64_t *host;      /* pinned: each slot's sums once its copy landed */
    uint64_t busy[FINGERPRINT_SLOTS / 64];
};

/* Whether a's eviction is to be decided by a fingerprint instead of a copy now. A check
 * that finds the bytes changed has only delayed the copy (it is queued when the check is
 * reaped, not at once), so after k such checks in a row the next 2^k - 1 evictions (at
 * most 15) copy at once, fingerprint beside: a buffer kernels rewrite every turn is
 * checked now and then, a weight at every eviction. Counts a skipped check. */
bool fingerprint_choose_check(const struct runtime *rt, struct allocation *a);

/* What a landed check found: a's counters of checks in a row that failed. */
void fingerprint_checked(struct runtime *rt, struct allocation *a, bool unchanged);

/* Queues on the eviction stream, which the caller has ordered after a's users: the
 * fingerprint of a's device bytes into a free slot (a->fp_slot). False (a->fp_slot -1,
 * logged once) when it cannot: the eviction then copies as without it. */
bool fingerprint_queue(struct runtime *rt, struct allocation *a);

/* After a's `ready` completed: the fingerprint its slot holds. */
void fingerprint_result(const struct runtime *rt, const struct allocation *a, uint64_t out[2]);

/* Frees the results' device memory when no slot is in use and no capture is in progress
 * (cuMemFree may synchronize): the last resort of making room, so that liboffload's own
 * 4 KiB never turns an exact fit into an out-of-memory. True when it freed them (they
 * are allocated again at a later need, when the budget has room). */
bool fingerprint_give_back_results(struct runtime *rt);

/* Gives a's slot back (nothing when it holds none). */
void fingerprint_release(struct runtime *rt, struct allocation *a);

#endif /* OFFLOAD_FINGERPRINT_H */
