/*
 * hash.h — uthash, configured once for every runtime table.
 *
 * Every key in the runtime is 8 bytes (addresses, granule numbers, driver handles), so a
 * multiplicative hash replaces uthash's default Jenkins hash: the launch path looks up
 * several keys per call and this is a few instructions instead of a few dozen.
 *
 * Out of memory is not fatal (uthash would exit the program): a function that adds to a
 * table declares `bool hash_oom = false;`, and finds it true when the add failed.
 */
#ifndef OFFLOAD_HASH_H
#define OFFLOAD_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define HASH_FUNCTION(keyptr, keylen, hashv)                                                       \
    do {                                                                                           \
        uint64_t hash_key_ = 0;                                                                    \
        memcpy(&hash_key_, (keyptr), (keylen) < 8 ? (keylen) : 8);                                 \
        hash_key_ *= 0x9E3779B97F4A7C15ull;                                                        \
        (hashv) = (unsigned)(hash_key_ >> 32);                                                     \
    } while (0)

/* Keys are 8 bytes: compare them as such rather than through memcmp. */
#define HASH_KEYCMP(a, b, n) hash_key_compare_((a), (b), (n))
static inline int hash_key_compare_(const void *a, const void *b, size_t n) {
    if (n == 8) {
        uint64_t x, y;
        memcpy(&x, a, 8);
        memcpy(&y, b, 8);
        return x != y;
    }
    return memcmp(a, b, n);
}

#define HASH_NONFATAL_OOM 1
#define uthash_nonfatal_oom(obj)                                                                   \
    do {                                                                                           \
        hash_oom = true;                                                                           \
        (void)(obj);                                                                               \
    } while (0)

#include <uthash.h>

#endif /* OFFLOAD_HASH_H */
