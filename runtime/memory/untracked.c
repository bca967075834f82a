/*
 * untracked.c — address -> size for pass-through allocations.
 */
#include "runtime/memory/untracked.h"

#include "base/hash.h"

#include <stdlib.h>

struct untracked_alloc {
    CUdeviceptr ptr;
    size_t bytes;
    UT_hash_handle hh;
};

int untracked_add(struct untracked_alloc **table, CUdeviceptr ptr, size_t bytes) {
    struct untracked_alloc *u = calloc(1, sizeof *u);
    if (!u)
        return -1;
    u->ptr = ptr;
    u->bytes = bytes;
    bool hash_oom = false;
    HASH_ADD(hh, *table, ptr, sizeof u->ptr, u);
    if (hash_oom) {
        free(u);
        return -1;
    }
    return 0;
}

bool untracked_remove(struct untracked_alloc **table, CUdeviceptr ptr, size_t *bytes) {
    struct untracked_alloc *u;
    HASH_FIND(hh, *table, &ptr, sizeof ptr, u);
    if (!u)
        return false;
    *bytes = u->bytes;
    HASH_DELETE(hh, *table, u);
    free(u);
    return true;
}

void untracked_clear(struct untracked_alloc **table) {
    struct untracked_alloc *u, *tmp;
    HASH_ITER(hh, *table, u, tmp) {
        HASH_DELETE(hh, *table, u);
        free(u);
    }
}
