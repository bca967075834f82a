/*
 * budget.c — budget accounting and peaks.
 */
#include "runtime/memory/budget.h"

static void update_peaks(struct budget *b) {
    if (b->resident > b->peak_resident)
        b->peak_resident = b->resident;
    if (budget_used(b) > b->peak_used)
        b->peak_used = budget_used(b);
}

void budget_add_resident(struct budget *b, uint64_t bytes) {
    b->resident += bytes;
    update_peaks(b);
}

void budget_sub_resident(struct budget *b, uint64_t bytes) {
    b->resident = bytes > b->resident ? 0 : b->resident - bytes;
}

void budget_add_untracked(struct budget *b, uint64_t bytes) {
    b->untracked += bytes;
    update_peaks(b);
}

void budget_sub_untracked(struct budget *b, uint64_t bytes) {
    b->untracked = bytes > b->untracked ? 0 : b->untracked - bytes;
}
