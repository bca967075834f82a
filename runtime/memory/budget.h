/*
 * budget.h — how many device bytes the program may hold, and what it holds.
 *
 * Resident tracked bytes (physical memory behind tracked ranges) plus untracked
 * pass-through bytes never exceed `limit`. Pure accounting: no driver call, no lock.
 */
#ifndef OFFLOAD_BUDGET_H
#define OFFLOAD_BUDGET_H

#include <stdbool.h>
#include <stdint.h>

struct budget {
    uint64_t limit;
    uint64_t resident;      /* physical bytes behind tracked allocations */
    uint64_t untracked;     /* pass-through allocations */
    uint64_t peak_resident; /* max of `resident` */
    uint64_t peak_used;     /* max of resident + untracked */
};

static inline uint64_t budget_used(const struct budget *b) {
    return b->resident + b->untracked;
}

/* Bytes that must be freed before `bytes` more fit under `limit` (0 when they fit now). */
static inline uint64_t budget_shortfall_under(const struct budget *b, uint64_t bytes,
                                              uint64_t limit) {
    uint64_t used = budget_used(b);
    if (bytes > limit)
        return bytes + used - limit;
    return used + bytes > limit ? used + bytes - limit : 0;
}

/* The same under the budget's own limit. */
static inline uint64_t budget_shortfall(const struct budget *b, uint64_t bytes) {
    return budget_shortfall_under(b, bytes, b->limit);
}

/* What cuMemGetInfo reports as free: what is left of the budget. */
static inline uint64_t budget_free(const struct budget *b) {
    uint64_t used = budget_used(b);
    return used < b->limit ? b->limit - used : 0;
}

void budget_add_resident(struct budget *b, uint64_t bytes);
void budget_sub_resident(struct budget *b, uint64_t bytes);
void budget_add_untracked(struct budget *b, uint64_t bytes);
void budget_sub_untracked(struct budget *b, uint64_t bytes);

#endif /* OFFLOAD_BUDGET_H */
