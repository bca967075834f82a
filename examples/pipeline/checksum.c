/* checksum.c — see checksum.h. */
#include "examples/pipeline/checksum.h"

uint64_t checksum_fnv1a64(const unsigned char *bytes, size_t size) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < size; i++)
        h = (h ^ bytes[i]) * 0x100000001b3ull;
    return h;
}
