/*
 * tensor_maps.c — remembered tensor maps (see tensor_maps.h).
 *
 * A ring of TENSOR_MAPS_CAPACITY entries in encoding order (the next one written replaces
 * the oldest) and a chained hash index over it (bucket heads and `next` are entry
 * numbers + 1, 0 ends a chain), both allocated at the first map. A lookup hashes the 16
 * words and, unless its bucket never held a map (a bitmap read without the lock), walks
 * one short chain comparing whole maps: a launch scanning a large Params struct at every
 * 64-byte offset pays a few dozen instructions per offset.
 */
#include "runtime/launch/tensor_maps.h"

#include "base/lock.h"
#include "base/log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define WORDS (TENSOR_MAPS_BYTES / 8)
#define BUCKETS (2 * TENSOR_MAPS_CAPACITY) /* a power of two */

struct tensor_map_entry {
    uint64_t words[WORDS];
    CUdeviceptr global;
    uint32_t next;   /* the next entry of its bucket, + 1; 0: none */
    uint32_t bucket; /* the bucket it is linked in */
    bool used;
};

/*
 * The lock guards everything below except `count`'s lock-free read. It is a leaf: held
 * only for one table operation, never while calling the driver, logging or taking another
 * lock, so hooks take it from any thread and the launch scan takes it with the runtime
 * lock held. A fork child resets it (the holder may be a thread the child has not).
 */
static struct {
    struct offload_lock lock;
    struct tensor_map_entry *entries;
    uint32_t *buckets;
    uint32_t next_slot; /* the ring's oldest entry, written next */
    atomic_size_t count;
    bool evicted; /* an entry was forgotten to make room (logged once) */
    /* a bit per bucket that ever held a map, read without the lock: most lookups (a
     * Params struct's words that are no map) end here */
    _Atomic uint64_t occupied[BUCKETS / 64];
} maps = {.lock = OFFLOAD_LOCK_INITIALIZER};

static void reset_lock_in_child(void) {
    offload_lock_reset(&maps.lock);
}

static void register_fork_handler(void) {
    pthread_atfork(NULL, NULL, reset_lock_in_child);
}

static uint32_t bucket_of(const uint64_t *w) {
    uint64_t h = 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < WORDS; i++)
        h = (h ^ w[i]) * 0xff51afd7ed558ccdull;
    return (uint32_t)(h >> 40) & (BUCKETS - 1);
}

/* The entry holding exactly w, or NULL. Lock held. */
static struct tensor_map_entry *find_locked(const uint64_t *w, uint32_t bucket) {
    for (uint32_t i = maps.buckets[bucket]; i; i = maps.entries[i - 1].next) {
        struct tensor_map_entry *e = &maps.entries[i - 1];
        if (memcmp(e->words, w, TENSOR_MAPS_BYTES) == 0)
            return e;
    }
    return NULL;
}

static void unlink_locked(uint32_t index) {
    struct tensor_map_entry *e = &maps.entries[index];
    uint32_t *link = &maps.buckets[e->bucket];
    while (*link && *link != index + 1)
        link = &maps.entries[*link - 1].next;
    if (*link)
        *link = e->next;
}

/* The tables, allocated at the first map. Lock held; false when out of memory. */
static bool tables_ready_locked(void) {
    if (maps.entries)
        return true;
    maps.entries = calloc(TENSOR_MAPS_CAPACITY, sizeof *maps.entries);
    maps.buckets = calloc(BUCKETS, sizeof *maps.buckets);
    if (maps.entries && maps.buckets)
        return true;
    free(maps.entries);
    free(maps.buckets);
    maps.entries = NULL;
    maps.buckets = NULL;
    return false;
}

void tensor_maps_remember(const void *bytes128, CUdeviceptr global) {
    static pthread_once_t fork_handler = PTHREAD_ONCE_INIT;
    pthread_once(&fork_handler, register_fork_handler);
    uint64_t w[WORDS];
    memcpy(w, bytes128, sizeof w);
    uint32_t bucket = bucket_of(w);
    bool first_eviction = false, ready;
    offload_lock_acquire(&maps.lock);
    ready = tables_ready_locked();
    struct tensor_map_entry *e = ready ? find_locked(w, bucket) : NULL;
    if (e) {
        e->global = global;
    } else if (ready) {
        uint32_t slot = maps.next_slot;
        e = &maps.entries[slot];
        if (e->used) {
            unlink_locked(slot);
            first_eviction = !maps.evicted;
            maps.evicted = true;
        } else {
            atomic_fetch_add(&maps.count, 1);
        }
        memcpy(e->words, w, sizeof w);
        e->global = global;
        e->used = true;
        e->bucket = bucket;
        e->next = maps.buckets[bucket];
        maps.buckets[bucket] = slot + 1;
        atomic_fetch_or_explicit(&maps.occupied[bucket / 64], 1ull << (bucket % 64),
                                 memory_order_relaxed);
        maps.next_slot = (slot + 1) % TENSOR_MAPS_CAPACITY;
    }
    offload_lock_release(&maps.lock);
    if (!ready)
        log_warn("out of memory: a tensor map's address is not seen by launches");
    if (first_eviction)
        log_warn("more than %d tensor maps encoded: launches no longer see the oldest ones",
                 TENSOR_MAPS_CAPACITY);
}

bool tensor_maps_lookup(const void *bytes128, CUdeviceptr *global) {
    if (atomic_load_explicit(&maps.count, memory_order_relaxed) == 0)
        return false;
    uint64_t w[WORDS];
    memcpy(w, bytes128, sizeof w);
    uint32_t bucket = bucket_of(w);
    if (!(atomic_load_explicit(&maps.occupied[bucket / 64], memory_order_relaxed) &
          1ull << (bucket % 64)))
        return false;
    offload_lock_acquire(&maps.lock);
    const struct tensor_map_entry *e = maps.entries ? find_locked(w, bucket) : NULL;
    if (e && global)
        *global = e->global;
    offload_lock_release(&maps.lock);
    return e != NULL;
}

size_t tensor_maps_count(void) {
    return atomic_load(&maps.count);
}

void tensor_maps_clear(void) {
    offload_lock_acquire(&maps.lock);
    free(maps.entries);
    free(maps.buckets);
    maps.entries = NULL;
    maps.buckets = NULL;
    maps.next_slot = 0;
    maps.evicted = false;
    for (size_t i = 0; i < BUCKETS / 64; i++)
        atomic_store(&maps.occupied[i], 0);
    atomic_store(&maps.count, 0);
    offload_lock_release(&maps.lock);
}
