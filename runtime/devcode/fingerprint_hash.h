/*
 * fingerprint_hash.h — the clean-eviction fingerprint: the mixing both the device kernel
 * (fingerprint.cu, the source of the embedded PTX) and every host implementation (the
 * simulator's built-in kernel, the unit tests) use. Plain C that nvcc compiles for the
 * device too; no includes beyond <stdint.h>.
 *
 * The data is a sequence of little-endian 8-byte words w_0 .. w_{n-1}; a tail of 1-7
 * bytes is one more word, zero-padded. Two 64-bit sums, each over every word:
 *
 *   A = sum_i mix_a(w_i ^ key_a(i))      B = sum_i mix_b(w_i + key_b(i))     (mod 2^64)
 *
 * key_a, key_b: different odd multiples of the position plus different seeds; mix_a is
 * MurmurHash3's fmix64, mix_b the splitmix64 finaliser (Stafford's Mix13). Addition is
 * commutative, so the GPU reduces words in any order and grid shape (each thread sums
 * its words, warps and blocks add their sums atomically) and gets the same 128 bits.
 * The byte length is folded in at the end (fingerprint_finish), so a zero tail and a
 * shorter buffer differ.
 *
 * Why a collision is negligible. Each mix is a bijection of 64-bit words, and so is
 * w -> w ^ k or w + k: for a fixed position, two different words always give different
 * terms. So a change confined to one word changes both sums, always (any one-bit flip,
 * any one-byte change: no probability involved). For changes spread over several words,
 * each sum moves by a difference of mixed values; modelling the mixes as random
 * functions of (position, word), that difference is uniform over 2^64 values, and the
 * two sums use unrelated functions, so a false match has probability about 2^-128 per
 * comparison: at a million clean evictions a second for a century, about 10^-23. The
 * positions are keyed, so moving or swapping words changes the terms (a plain sum of
 * mixed words would not see a swap). This is a checksum against accidents, not a MAC:
 * an adversary who can run kernels on the device needs no collision to corrupt memory.
 */
#ifndef OFFLOAD_FINGERPRINT_HASH_H
#define OFFLOAD_FINGERPRINT_HASH_H

#include <stdint.h>

#ifdef __CUDACC__
#define FP_FN static __host__ __device__ __forceinline__
#else
#define FP_FN static inline
#endif

#define FP_KEY_A 0x9e3779b97f4a7c15ull /* odd: i -> i * K is a bijection */
#define FP_KEY_B 0xd6e8feb86659fd93ull
#define FP_SEED_A 0x243f6a8885a308d3ull
#define FP_SEED_B 0x13198a2e03707344ull

FP_FN uint64_t fp_mix_a(uint64_t x) { /* MurmurHash3 fmix64 */
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

FP_FN uint64_t fp_mix_b(uint64_t x) { /* splitmix64's finaliser (Mix13) */
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* The terms word `w` at word position `i` adds to each sum. */
FP_FN uint64_t fp_term_a(uint64_t i, uint64_t w) {
    return fp_mix_a(w ^ (i * FP_KEY_A + FP_SEED_A));
}
FP_FN uint64_t fp_term_b(uint64_t i, uint64_t w) {
    return fp_mix_b(w + (i * FP_KEY_B + FP_SEED_B));
}

/* The tail word: `n` (1-7) bytes at p, little-endian, zero-padded. */
FP_FN uint64_t fp_tail_word(const unsigned char *p, uint64_t n) {
    uint64_t w = 0;
    for (uint64_t k = 0; k < n; k++)
        w |= (uint64_t)p[k] << (8 * k);
    return w;
}

/* The 128-bit fingerprint of `bytes` bytes from the two sums the kernel leaves. */
FP_FN void fingerprint_finish(const uint64_t sums[2], uint64_t bytes, uint64_t out[2]) {
    out[0] = fp_mix_a(sums[0] ^ fp_mix_b(bytes));
    out[1] = fp_mix_b(sums[1] + fp_mix_a(bytes ^ FP_SEED_A));
}

/* The two sums of [p, p+bytes), added to sums[0..1] (as the kernel's atomics add to the
 * zeroed result): the host's reference. p 8-byte aligned. */
FP_FN void fingerprint_add_host(const void *p, uint64_t bytes, uint64_t sums[2]) {
    const uint64_t *w = (const uint64_t *)p;
    uint64_t words = bytes / 8, a = 0, b = 0;
    for (uint64_t i = 0; i < words; i++) {
        a += fp_term_a(i, w[i]);
        b += fp_term_b(i, w[i]);
    }
    if (bytes % 8) {
        uint64_t t = fp_tail_word((const unsigned char *)p + words * 8, bytes % 8);
        a += fp_term_a(words, t);
        b += fp_term_b(words, t);
    }
    sums[0] += a;
    sums[1] += b;
}

#endif /* OFFLOAD_FINGERPRINT_HASH_H */
