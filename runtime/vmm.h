/*
 * vmm.h — internal to runtime/: what the other entry points tell program-mapped memory
 * (vmm.c).
 */
#ifndef OFFLOAD_RUNTIME_VMM_H
#define OFFLOAD_RUNTIME_VMM_H

#include "runtime/state.h"

/* A copy or memset reaches [ptr, ptr+bytes): when that crosses from one tracked program
 * mapping into another, it is one buffer (a weight uploaded whole) and the mappings are
 * made resident together from now on (memory/mapped.h, extents). Caller holds the lock. */
void vmm_learn_access(struct runtime *rt, CUdeviceptr ptr, size_t bytes);

#endif /* OFFLOAD_RUNTIME_VMM_H */
