/*
 * checksum.h — the fingerprint of a generated image: FNV-1a 64 over its bytes, printed
 * as "checksum: 0x<16 hex digits>". Equal checksums mean bit-identical pictures.
 */
#ifndef PIPELINE_CHECKSUM_H
#define PIPELINE_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

uint64_t checksum_fnv1a64(const unsigned char *bytes, size_t size);

#endif /* PIPELINE_CHECKSUM_H */
