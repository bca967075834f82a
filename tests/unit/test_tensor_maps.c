/* runtime/launch/tensor_maps: the remembered tensor maps the launch scan looks up. */
#include "runtime/launch/tensor_maps.h"
#include "tests/unit/check.h"

#include <pthread.h>
#include <stdint.h>

/* A map-like 128 bytes, different for every seed. */
static void make_map(uint64_t *w, uint64_t seed) {
    for (int i = 0; i < 16; i++)
        w[i] = (seed + 1) * 0x9E3779B97F4A7C15ull ^ (uint64_t)i << 56;
}

TEST(remembered_bytes_give_their_address) {
    tensor_maps_clear();
    uint64_t a[16], b[16];
    make_map(a, 1);
    make_map(b, 2);
    CUdeviceptr g = 0;
    CHECK(!tensor_maps_lookup(a, &g));
    tensor_maps_remember(a, 0x7000001000);
    tensor_maps_remember(b, 0x7000002000);
    CHECK_EQ_U64(tensor_maps_count(), 2);
    CHECK(tensor_maps_lookup(a, &g));
    CHECK_EQ_U64(g, 0x7000001000);
    /* a copy at an odd address, as inside a packed parameter buffer */
    unsigned char buf[200];
    memcpy(buf + 3, b, 128);
    CHECK(tensor_maps_lookup(buf + 3, &g));
    CHECK_EQ_U64(g, 0x7000002000);
    /* one bit differs: not a remembered map */
    buf[3 + 77] ^= 0x10;
    CHECK(!tensor_maps_lookup(buf + 3, &g));
    /* the same bytes again (re-encoded, or ReplaceAddress back): the address is refreshed */
    tensor_maps_remember(a, 0x7000003000);
    CHECK_EQ_U64(tensor_maps_count(), 2);
    CHECK(tensor_maps_lookup(a, &g));
    CHECK_EQ_U64(g, 0x7000003000);
    tensor_maps_clear();
    CHECK_EQ_U64(tensor_maps_count(), 0);
    CHECK(!tensor_maps_lookup(a, &g));
}

/* Past the capacity the oldest maps are forgotten, the newest all kept. */
TEST(bounded_oldest_forgotten) {
    tensor_maps_clear();
    uint64_t w[16];
    const unsigned extra = 10;
    for (unsigned i = 0; i < TENSOR_MAPS_CAPACITY + extra; i++) {
        make_map(w, 100 + i);
        tensor_maps_remember(w, 0x7100000000 + (CUdeviceptr)i * 256);
    }
    CHECK_EQ_U64(tensor_maps_count(), TENSOR_MAPS_CAPACITY);
    unsigned found = 0, wrong = 0;
    for (unsigned i = 0; i < TENSOR_MAPS_CAPACITY + extra; i++) {
        CUdeviceptr g = 0;
        make_map(w, 100 + i);
        bool hit = tensor_maps_lookup(w, &g);
        found += hit;
        wrong += hit && g != 0x7100000000 + (CUdeviceptr)i * 256;
        if (i < extra)
            CHECK(!hit);
        else
            CHECK(hit);
    }
    CHECK_EQ_U64(found, TENSOR_MAPS_CAPACITY);
    CHECK_EQ_U64(wrong, 0);
    tensor_maps_clear();
}

/* Threads remember and look up at once: each finds every map it remembered. */
#define THREADS 4
#define PER_THREAD 200
static void *remember_and_find(void *arg) {
    uintptr_t t = (uintptr_t)arg;
    uintptr_t misses = 0;
    for (unsigned i = 0; i < PER_THREAD; i++) {
        uint64_t w[16];
        make_map(w, 10000 * (t + 1) + i);
        CUdeviceptr want = 0x7200000000 + t * 0x1000000 + i * 64, g = 0;
        tensor_maps_remember(w, want);
        misses += !tensor_maps_lookup(w, &g) || g != want;
    }
    return (void *)misses;
}

TEST(concurrent_remember_and_lookup) {
    tensor_maps_clear();
    pthread_t th[THREADS];
    for (uintptr_t t = 0; t < THREADS; t++)
        pthread_create(&th[t], NULL, remember_and_find, (void *)t);
    uintptr_t misses = 0;
    for (int t = 0; t < THREADS; t++) {
        void *r;
        pthread_join(th[t], &r);
        misses += (uintptr_t)r;
    }
    CHECK_EQ_U64(misses, 0);
    CHECK_EQ_U64(tensor_maps_count(), THREADS * PER_THREAD);
    tensor_maps_clear();
}

int main(void) {
    RUN(remembered_bytes_give_their_address);
    RUN(bounded_oldest_forgotten);
    RUN(concurrent_remember_and_lookup);
    return check_summary();
}
