/*
 * stored_pointers.c — remembering the tracked addresses a program uploads into device
 * memory.
 */
#include "runtime/launch/stored_pointers.h"

#include "base/log.h"
#include "base/vec.h"

#include <stdlib.h>
#include <string.h>

/* The device offset of the first whole 8-byte word at or after `offset`. */
static uint64_t first_word(uint64_t offset) {
    return (offset + sizeof(CUdeviceptr) - 1) & ~(uint64_t)(sizeof(CUdeviceptr) - 1);
}

/* --- uploads into tracked allocations: word by word, in the allocation ---------------- */

/* The first remembered word of a at or after offset. */
static size_t first_at_or_after(const struct allocation *a, uint64_t offset) {
    size_t lo = 0, hi = a->stored_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (a->stored[mid].offset < offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Removes the remembered words in [from, to) of a's offsets. Returns where they were. */
static size_t forget_range(struct allocation *a, uint64_t from, uint64_t to) {
    size_t first = first_at_or_after(a, from);
    size_t end = first_at_or_after(a, to);
    if (end > first) {
        memmove(a->stored + first, a->stored + end, (a->stored_count - end) * sizeof *a->stored);
        a->stored_count -= end - first;
    }
    return first;
}

/* Inserts (offset, value) at index `at`, which keeps the words sorted (the caller removed
 * every word of the range it inserts into). false when it cannot be remembered. */
static bool insert_at(struct allocation *a, size_t at, uint64_t offset, CUdeviceptr value) {
    static bool full_logged;
    if (a->stored_count >= STORED_POINTERS_MAX ||
        VEC_RESERVE(a->stored, a->stored_cap, a->stored_count + 1) != 0) {
        if (!full_logged) {
            full_logged = true;
            log_msg(LOG_WARN,
                    "the allocation at 0x%llx holds more uploaded pointers than liboffload "
                    "remembers (%u); kernels may reach memory through the rest unseen",
                    (unsigned long long)a->base, STORED_POINTERS_MAX);
        }
        return false;
    }
    memmove(a->stored + at + 1, a->stored + at, (a->stored_count - at) * sizeof *a->stored);
    a->stored[at] = (struct stored_pointer){offset, value};
    a->stored_count++;
    return true;
}

/* The part of an upload that lands in a: bytes [offset, offset+bytes) of it, from host. */
static void note_in(struct stored_pointers *sp, struct registry *reg, struct allocation *a,
                    uint64_t offset, const unsigned char *host, size_t bytes) {
    bool held = a->stored_count > 0;
    uint64_t end = offset + bytes;
    size_t at = forget_range(a, offset, end);
    for (uint64_t o = first_word(offset); o + sizeof(CUdeviceptr) <= end;
         o += sizeof(CUdeviceptr)) {
        CUdeviceptr value;
        memcpy(&value, host + (o - offset), sizeof value);
        if (registry_find(reg, value) && !insert_at(a, at++, o, value))
            break;
    }
    sp->holders += (a->stored_count > 0) - held;
}

void stored_pointers_forget(struct stored_pointers *sp, struct allocation *a) {
    sp->holders -= a->stored_count > 0;
    a->stored_count = 0;
}

/* --- uploads into untracked memory: upload by upload, in the table --------------------- */

/* The first table whose range ends after addr. */
static size_t first_ending_after(const struct stored_pointers *sp, CUdeviceptr addr) {
    size_t lo = 0, hi = sp->table_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (sp->tables[mid].base + sp->tables[mid].bytes <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Removes the tables overlapping [base, end); returns where they were. */
static size_t forget_overlapping(struct stored_pointers *sp, CUdeviceptr base, CUdeviceptr end) {
    size_t first = first_ending_after(sp, base), last = first;
    while (last < sp->table_count && sp->tables[last].base < end)
        free(sp->tables[last++].values);
    if (last > first) {
        memmove(sp->tables + first, sp->tables + last,
                (sp->table_count - last) * sizeof *sp->tables);
        sp->table_count -= last - first;
    }
    return first;
}

/* The tracked addresses among the 8-byte-aligned words of an upload to dst (malloc'd,
 * NULL when none or out of memory). */
static CUdeviceptr *tracked_words(struct registry *reg, CUdeviceptr dst, const unsigned char *host,
                                  size_t bytes, size_t *count) {
    CUdeviceptr *values = NULL;
    size_t cap = 0;
    *count = 0;
    for (uint64_t o = first_word(dst) - dst; o + sizeof(CUdeviceptr) <= bytes;
         o += sizeof(CUdeviceptr)) {
        CUdeviceptr value;
        memcpy(&value, host + o, sizeof value);
        if (registry_find(reg, value) && VEC_PUSH(values, *count, cap, value) != 0)
            break; /* out of memory: what was found so far */
    }
    return values;
}

static void note_untracked(struct stored_pointers *sp, struct registry *reg, CUdeviceptr dst,
                           const void *host, size_t bytes) {
    static bool full_logged;
    size_t at = forget_overlapping(sp, dst, dst + bytes);
    size_t count;
    CUdeviceptr *values = tracked_words(reg, dst, host, bytes, &count);
    if (!values)
        return;
    if (sp->table_count >= STORED_POINTERS_MAX_TABLES ||
        VEC_RESERVE(sp->tables, sp->table_cap, sp->table_count + 1) != 0) {
        free(values);
        if (!full_logged) {
            full_logged = true;
            log_msg(LOG_WARN,
                    "more pointer tables uploaded into untracked memory than liboffload "
                    "remembers (%u); kernels may reach memory through the rest unseen",
                    STORED_POINTERS_MAX_TABLES);
        }
        return;
    }
    memmove(sp->tables + at + 1, sp->tables + at, (sp->table_count - at) * sizeof *sp->tables);
    sp->tables[at] = (struct upload_table){dst, bytes, values, count};
    sp->table_count++;
}

const struct upload_table *stored_pointers_find_untracked(const struct stored_pointers *sp,
                                                          CUdeviceptr addr) {
    size_t i = first_ending_after(sp, addr);
    return i < sp->table_count && sp->tables[i].base <= addr ? &sp->tables[i] : NULL;
}

void stored_pointers_forget_untracked(struct stored_pointers *sp, CUdeviceptr base, size_t bytes) {
    if (sp->table_count)
        forget_overlapping(sp, base, base + bytes);
}

void stored_pointers_clear_untracked(struct stored_pointers *sp) {
    forget_overlapping(sp, 0, UINT64_MAX);
    free(sp->tables);
    sp->tables = NULL;
    sp->table_cap = 0;
}

/* --- either ------------------------------------------------------------------------------- */

void stored_pointers_note_upload(struct stored_pointers *sp, struct registry *reg, CUdeviceptr dst,
                                 const void *host, size_t bytes) {
    const unsigned char *from = host;
    if (!registry_find(reg, dst)) {
        note_untracked(sp, reg, dst, host, bytes);
        return;
    }
    const CUdeviceptr end = dst + bytes, granule = (CUdeviceptr)1 << reg->shift;
    for (CUdeviceptr addr = dst; addr < end;) {
        struct allocation *a = registry_find(reg, addr);
        if (!a) { /* a gap between two allocations: the next may start a granule on */
            addr = (addr & ~(granule - 1)) + granule;
            continue;
        }
        CUdeviceptr stop = a->base + a->size < end ? a->base + a->size : end;
        if (stop > addr)
            note_in(sp, reg, a, addr - a->base, from + (addr - dst), stop - addr);
        addr = a->base + a->mapped;
    }
}
