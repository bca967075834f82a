/*
 * fingerprint.cu — liboffload's own device code: the clean-eviction fingerprint.
 *
 * The source of truth for fingerprint_ptx.h (generated: gen_ptx.sh). liboffload loads
 * that PTX with cuModuleLoadData at its first need; the driver JITs it for the device.
 * The simulator (tests/sim/builtin.c) implements the same entry natively.
 *
 * offload_fingerprint(data, bytes, sums): adds the two sums of fingerprint_hash.h over
 * [data, data+bytes) to sums[0] and sums[1], which the caller zeroed first on the same
 * stream. Any grid: a grid-stride loop over 8-byte words, a warp reduction, one atomic
 * add per warp and sum. The tail (bytes % 8) is summed by thread 0 of block 0. data is
 * 8-byte aligned (an allocation's base). The parameter layout (three 8-byte values at
 * offsets 0, 8, 16) is part of the contract with the simulator.
 */
#include "runtime/devcode/fingerprint_hash.h"

extern "C" __global__ void offload_fingerprint(const unsigned long long *data,
                                               unsigned long long bytes, unsigned long long *sums) {
    const unsigned long long words = bytes / 8;
    const unsigned long long stride = (unsigned long long)gridDim.x * blockDim.x;
    unsigned long long a = 0, b = 0;
    for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
         i < words; i += stride) {
        unsigned long long w = __ldg(data + i);
        a += fp_term_a(i, w);
        b += fp_term_b(i, w);
    }
    if (blockIdx.x == 0 && threadIdx.x == 0 && (bytes & 7)) {
        unsigned long long t = fp_tail_word((const unsigned char *)(data + words), bytes & 7);
        a += fp_term_a(words, t);
        b += fp_term_b(words, t);
    }
    for (int offset = 16; offset > 0; offset /= 2) {
        a += __shfl_down_sync(0xffffffffu, a, offset);
        b += __shfl_down_sync(0xffffffffu, b, offset);
    }
    if ((threadIdx.x & 31) == 0) {
        atomicAdd(&sums[0], a);
        atomicAdd(&sums[1], b);
    }
}
