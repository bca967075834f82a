/*
 * backup.c — pinned host backups with a pageable fallback.
 */
#include "runtime/memory/backup.h"

#include "base/log.h"
#include "driver/cuerr.h"
#include "driver/driver.h"

#include <sys/mman.h>

void *backup_alloc(struct backup_state *st, size_t bytes, bool *pinned) {
    void *mem = NULL;
    CUresult r = CUDA_ERROR_NOT_SUPPORTED;
    if (driver()->cuMemHostAlloc)
        r = driver()->cuMemHostAlloc(&mem, bytes, 0);
    if (r == CUDA_SUCCESS && mem) {
        *pinned = true;
        st->pinned_bytes += bytes;
        return mem;
    }
    /* mmap rather than malloc: large, page-aligned, and returned to the system on free. */
    mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        log_error("cannot allocate %zu bytes of host memory for a backup; the data stays on "
                  "the device",
                  bytes);
        return NULL;
    }
    if (!st->pageable_logged) {
        st->pageable_logged = true;
        log_warn("page-locked host memory unavailable (cuMemHostAlloc: %s); using pageable "
                 "backups (slower copies)",
                 cuerr_name(r));
    }
    *pinned = false;
    st->pageable_bytes += bytes;
    return mem;
}

void backup_free(struct backup_state *st, void *mem, size_t bytes, bool pinned) {
    if (!mem)
        return;
    if (pinned) {
        driver()->cuMemFreeHost(mem);
        st->pinned_bytes -= bytes;
    } else {
        munmap(mem, bytes);
        st->pageable_bytes -= bytes;
    }
}
