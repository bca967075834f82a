/*
 * stored_pointers.h — pointers a program keeps in device memory, learnt from its uploads.
 *
 * A launch's parameters are not the only way a kernel finds memory: a batched or grouped
 * GEMM reads its operands' addresses from a pointer array in device memory, which the
 * program filled by copying it from the host (cuBLAS's *Batched calls, CUTLASS's grouped
 * GEMM arguments, pipeline --like torch's gemm_grouped). liboffload reads every small
 * host-to-device upload as it is made: each 8-byte-aligned word of it that is a tracked
 * address is remembered in the destination allocation (allocation.h: stored), and a launch
 * that passes that allocation makes the remembered addresses' allocations resident too,
 * transitively (runtime/work.c).
 *
 * An upload replaces what was remembered for the words it covers, so a table rewritten
 * every step follows the program. Uploads above STORED_POINTERS_SCAN_MAX bytes are not read
 * (weights, not tables: reading them would cost a lookup per 8 bytes moved), nor are
 * tables written by a kernel or a device-to-device copy: those stay invisible (README,
 * Limits). Past STORED_POINTERS_MAX per allocation the rest are not remembered (logged
 * once).
 *
 * Callers hold the runtime lock.
 */
#ifndef OFFLOAD_STORED_POINTERS_H
#define OFFLOAD_STORED_POINTERS_H

#include "runtime/memory/registry.h"

#include <cuda.h>
#include <stddef.h>

/* 64 KiB: a table of 8192 pointers. */
#define STORED_POINTERS_SCAN_MAX (64u << 10)
#define STORED_POINTERS_MAX 8192u

/* Whether an upload of `bytes` is small enough to be read. */
static inline bool stored_pointers_worth_reading(size_t bytes) {
    return bytes >= sizeof(CUdeviceptr) && bytes <= STORED_POINTERS_SCAN_MAX;
}

/* The program is copying `bytes` from `host` to device address dst: every tracked
 * allocation in [dst, dst+bytes) remembers the tracked addresses among the 8-byte-aligned
 * words the copy writes into it, in place of what it remembered for those words. */
void stored_pointers_note_upload(struct registry *reg, CUdeviceptr dst, const void *host,
                                 size_t bytes);

/* Forgets everything a remembers (its memory was freed or reused for another purpose). */
void stored_pointers_forget(struct allocation *a);

/* Uploads into memory liboffload does not track (a table the program allocated below
 * min_size), each remembered with its range: a launch passing an address in the range
 * reaches the tracked addresses it held. Sorted by base, never overlapping (a new upload
 * replaces every one it overlaps). */
struct upload_table {
    CUdeviceptr base;
    size_t bytes;
    CUdeviceptr *values; /* the tracked addresses among its words */
    size_t count;
};

#define STORED_POINTERS_MAX_TABLES 1024u

struct untracked_tables {
    struct upload_table *items;
    size_t count, cap;
};

/* The upload of `bytes` from host to dst, untracked memory: remembered when it holds
 * tracked addresses, in place of every upload it overlaps. */
void stored_pointers_note_untracked(struct untracked_tables *t, struct registry *reg,
                                    CUdeviceptr dst, const void *host, size_t bytes);

/* The remembered upload whose range contains addr, or NULL. */
const struct upload_table *stored_pointers_find_untracked(const struct untracked_tables *t,
                                                          CUdeviceptr addr);

/* The program freed [base, base+bytes): the uploads in it are forgotten. */
void stored_pointers_forget_untracked(struct untracked_tables *t, CUdeviceptr base, size_t bytes);

/* Forgets every upload and frees the table. */
void stored_pointers_clear_untracked(struct untracked_tables *t);

#endif /* OFFLOAD_STORED_POINTERS_H */
