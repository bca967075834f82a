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

/* An upload into memory liboffload does not track (a table the program allocated below
 * min_size), remembered with its range: a launch passing an address in the range reaches
 * the tracked addresses it held. */
struct upload_table {
    CUdeviceptr base;
    size_t bytes;
    CUdeviceptr *values; /* the tracked addresses among its words */
    size_t count;
};

#define STORED_POINTERS_MAX_TABLES 1024u

/* Everything remembered: how many tracked allocations hold pointers (their words are in
 * the allocation), and the uploads into untracked memory, sorted by base, never
 * overlapping (a new upload replaces every one it overlaps). */
struct stored_pointers {
    size_t holders;
    struct upload_table *tables;
    size_t table_count, table_cap;
};

/* Whether anything is remembered: while nothing is, a launch need not look (one test per
 * launch on the fast path). */
static inline bool stored_pointers_any(const struct stored_pointers *sp) {
    return sp->holders || sp->table_count;
}

/* The program is copying `bytes` from `host` to device address dst. Every tracked
 * allocation in [dst, dst+bytes) remembers the tracked addresses among the 8-byte-aligned
 * words the copy writes into it, in place of what it remembered for those words; an
 * upload into untracked memory is remembered with its range when it holds any, in place
 * of every upload it overlaps. */
void stored_pointers_note_upload(struct stored_pointers *sp, struct registry *reg, CUdeviceptr dst,
                                 const void *host, size_t bytes);

/* Forgets everything a remembers (its memory was freed or reused for another purpose). */
void stored_pointers_forget(struct stored_pointers *sp, struct allocation *a);

/* The remembered upload into untracked memory whose range contains addr, or NULL. */
const struct upload_table *stored_pointers_find_untracked(const struct stored_pointers *sp,
                                                          CUdeviceptr addr);

/* The program freed untracked [base, base+bytes): the uploads in it are forgotten. */
void stored_pointers_forget_untracked(struct stored_pointers *sp, CUdeviceptr base, size_t bytes);

/* Forgets every upload into untracked memory and frees their table (tests; shutdown). */
void stored_pointers_clear_untracked(struct stored_pointers *sp);

#endif /* OFFLOAD_STORED_POINTERS_H */
