/*
 * room.h — internal to runtime/memory: what room.c (making room) needs from residency.c.
 * Everyone else uses residency.h.
 */
#ifndef OFFLOAD_ROOM_H
#define OFFLOAD_ROOM_H

#include "runtime/state.h"

/* Host wait for the oldest eviction in flight, then finish it (EVICTED), or, when its copy
 * failed, keep it on the device (RESIDENT, protected for this call) and return the error. */
CUresult residency_reap_oldest(struct runtime *rt);

#endif /* OFFLOAD_ROOM_H */
