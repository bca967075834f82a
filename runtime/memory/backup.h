/*
 * backup.h — host memory that holds an evicted allocation's bytes.
 *
 * A backup is allocated at an allocation's first eviction and kept until the allocation is
 * freed: allocating page-locked memory at every eviction is what makes other offloaders
 * slow. Page-locked (pinned) memory is preferred; when it cannot be had the backup is
 * ordinary pageable memory (slower copies, logged once). When no host memory can be had at
 * all, backup_alloc fails and the eviction is abandoned with the data still on the device.
 */
#ifndef OFFLOAD_BACKUP_H
#define OFFLOAD_BACKUP_H

#include <stdbool.h>
#include <stddef.h>

struct backup_state {
    bool pageable_logged; /* the fallback was reported once */
    size_t pinned_bytes, pageable_bytes;
};

/* Returns the memory (NULL when none can be had); *pinned says which kind. */
void *backup_alloc(struct backup_state *st, size_t bytes, bool *pinned);

void backup_free(struct backup_state *st, void *mem, size_t bytes, bool pinned);

#endif /* OFFLOAD_BACKUP_H */
