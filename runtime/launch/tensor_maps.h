/*
 * tensor_maps.h — the tensor maps (CUtensorMap) the program has encoded, with the global
 * address each describes.
 *
 * A CUtensorMap is 128 opaque bytes: the driver alone knows where the address sits in
 * them (the simulator scrambles it on purpose). liboffload learns it from the call that
 * made the map: the interpose hooks of cuTensorMapEncodeTiled, cuTensorMapEncodeIm2col,
 * cuTensorMapEncodeIm2colWide and cuTensorMapReplaceAddress remember the bytes the driver
 * wrote with the address they were given. A launch whose parameters contain 128 bytes
 * equal to a remembered map (a map passed alone, or embedded in a Params struct at a
 * 64-byte aligned offset, as CUTLASS 3 does) uses that address's allocation.
 *
 * Bounded: TENSOR_MAPS_CAPACITY distinct maps; past that the oldest is forgotten (logged
 * once). Encoding the same bytes again only refreshes the address. Thread-safe: any thread
 * may remember while another looks up; lookups are cheap when nothing was ever
 * remembered (one atomic load).
 */
#ifndef OFFLOAD_TENSOR_MAPS_H
#define OFFLOAD_TENSOR_MAPS_H

#include <cuda.h>
#include <stdbool.h>
#include <stddef.h>

#define TENSOR_MAPS_BYTES 128
#define TENSOR_MAPS_CAPACITY 1024

/* The driver just wrote the map at bytes128 for global (an encoder or ReplaceAddress that
 * succeeded). */
void tensor_maps_remember(const void *bytes128, CUdeviceptr global);

/* True, with *global its address, when the 128 bytes at bytes128 (any alignment) equal a
 * remembered map. */
bool tensor_maps_lookup(const void *bytes128, CUdeviceptr *global);

/* How many maps are remembered (for tests and the report). */
size_t tensor_maps_count(void);

/* Forgets every map (tests; the runtime's shutdown). */
void tensor_maps_clear(void);

#endif /* OFFLOAD_TENSOR_MAPS_H */
