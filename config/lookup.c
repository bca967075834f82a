/*
 * lookup.c — questions the runtime asks a loaded config, and freeing it.
 */
#include "config/config.h"

#include <fnmatch.h>
#include <stdlib.h>

uint64_t config_size_bytes(const struct config_size *size, uint64_t device_total) {
    if (!size->set)
        return 0;
    if (!size->is_percent)
        return size->bytes;
    return (uint64_t)((long double)device_total * (long double)size->percent / 100.0L);
}

int config_component_for_ordinal(const struct config *cfg, uint64_t ordinal) {
    for (size_t i = 0; i < cfg->component_count; i++) {
        const struct config_component *c = &cfg->components[i];
        for (size_t r = 0; r < c->alloc_range_count; r++)
            if (c->allocs[r].first <= ordinal && ordinal <= c->allocs[r].last)
                return (int)i;
    }
    return -1;
}

int config_component_for_kernel(const struct config *cfg, const char *kernel_name) {
    for (size_t i = 0; i < cfg->component_count; i++) {
        const struct config_component *c = &cfg->components[i];
        for (size_t k = 0; k < c->kernel_count; k++)
            if (fnmatch(c->kernels[k], kernel_name, 0) == 0)
                return (int)i;
    }
    return -1;
}

int config_component_indirect_for_kernel(const struct config *cfg, const char *kernel_name) {
    for (size_t i = 0; i < cfg->component_count; i++) {
        const struct config_component *c = &cfg->components[i];
        for (size_t k = 0; k < c->indirect_count; k++)
            if (fnmatch(c->indirect[k], kernel_name, 0) == 0)
                return (int)i;
    }
    return -1;
}

void config_free(struct config *cfg) {
    for (size_t i = 0; i < cfg->component_count; i++) {
        struct config_component *c = &cfg->components[i];
        free(c->allocs);
        free(c->order);
        for (size_t k = 0; k < c->kernel_count; k++)
            free(c->kernels[k]);
        free(c->kernels);
        for (size_t k = 0; k < c->indirect_count; k++)
            free(c->indirect[k]);
        free(c->indirect);
    }
    free(cfg->components);
    free(cfg->sequence);
    cfg->components = NULL;
    cfg->component_count = 0;
    cfg->sequence = NULL;
    cfg->sequence_length = 0;
}
