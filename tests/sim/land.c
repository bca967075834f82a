/*
 * land.c — late landing: a copy's bytes arrive when the bandwidth model says they do.
 *
 * A DMA engine writes the destination progressively and reads the source as it goes;
 * nothing is visible early. With SIMCUDA_PCIE_GBPS a host<->device copy of `bytes`
 * takes bytes / bandwidth: from its start its destination reads as poison (unless it
 * overlaps the source), then the bytes land in chunks, each at its modelled time, read
 * from the source at that time, after the memory map was checked again for exactly that
 * chunk. So a reader racing the copy sees poison or a mix, never the whole result early;
 * a source overwritten during the copy lands overwritten; memory unmapped during the copy
 * makes the copy fail (the context's sticky CUDA_ERROR_ILLEGAL_ADDRESS) at the first
 * chunk that lands after the unmap. Without a bandwidth model (and for device-to-device
 * copies, which the model does not slow) the copy lands at once.
 *
 * Each direction is one link, as a GPU's PCIe (or C2C) link is: copies in the same
 * direction share its bandwidth, whichever streams they are on, so two at once take twice
 * as long, not as long as one. A copy takes the link from the later of its start and the
 * end of the copies that took it before (first come, first served, as one copy engine
 * per direction serves them); host-to-device and device-to-host copies do not wait for
 * each other (the link is full duplex).
 */
#include "tests/sim/strict.h"

#include <stdatomic.h>
#include <string.h>
#include <time.h>

/* Chunks of at least this many bytes, at most MAX_CHUNKS per copy. */
#define CHUNK_MIN ((size_t)256 << 10)
#define MAX_CHUNKS 16

/* A copy's geometry: z slices of h rows of w bytes; logical byte L of the copy is byte
 * L % w of row (L / w) % h of slice L / (w * h). */
struct geom {
    uintptr_t d, s;
    size_t w, h, z, dp, sp, ds, ss, bytes;
};

static struct geom geom_of(const struct sim_op *op) {
    struct geom g = {(uintptr_t)op->u.copy.dst, (uintptr_t)op->u.copy.src,
                     op->u.copy.width,          op->u.copy.height,
                     op->u.copy.depth,          op->u.copy.dpitch,
                     op->u.copy.spitch,         op->u.copy.dslice,
                     op->u.copy.sslice,         0};
    g.bytes = g.w * g.h * g.z;
    if (g.dp == g.w && g.sp == g.w && (g.z == 1 || (g.ds == g.w * g.h && g.ss == g.w * g.h))) {
        /* contiguous on both sides: one row */
        g.w = g.bytes;
        g.h = g.z = 1;
        g.dp = g.sp = g.ds = g.ss = g.bytes;
    }
    return g;
}

static uintptr_t dst_at(const struct geom *g, size_t l) {
    size_t row = l / g->w;
    return g->d + (row / g->h) * g->ds + (row % g->h) * g->dp + l % g->w;
}
static uintptr_t src_at(const struct geom *g, size_t l) {
    size_t row = l / g->w;
    return g->s + (row / g->h) * g->ss + (row % g->h) * g->sp + l % g->w;
}

enum piece_job { PIECE_POISON, PIECE_COPY };

/* Poisons the destination of, or copies, logical bytes [from, to), one row piece at a
 * time; a copy also updates the shadow (source read, destination written). */
static void pieces(const struct geom *g, size_t from, size_t to, enum piece_job job) {
    while (from < to) {
        size_t len = g->w - from % g->w;
        if (len > to - from)
            len = to - from;
        uintptr_t d = dst_at(g, from), s = src_at(g, from);
        if (job == PIECE_POISON) {
            sim_poison_fill((void *)d, len);
        } else {
            sim_shadow_read(s, len);
            memmove((void *)d, (const void *)s, len);
            sim_shadow_written(d, len);
        }
        from += len;
    }
}

/* With the memory map held: both sides of logical bytes [from, to) are accessible. */
static int chunk_mapped(const struct geom *g, size_t from, size_t to) {
    uintptr_t d0 = dst_at(g, from), s0 = src_at(g, from);
    return sim_mem_check_locked(d0, dst_at(g, to - 1) + 1 - d0, 1) == CUDA_SUCCESS &&
           sim_mem_check_locked(s0, src_at(g, to - 1) + 1 - s0, 0) == CUDA_SUCCESS;
}

static int spans_overlap(const struct geom *g) {
    uintptr_t d1 = dst_at(g, g->bytes - 1) + 1, s1 = src_at(g, g->bytes - 1) + 1;
    return g->d < s1 && g->s < d1;
}

static void sleep_until(double t_ms) {
    struct timespec ts = {(time_t)(t_ms / 1e3),
                          (long)((t_ms - (double)(time_t)(t_ms / 1e3) * 1e3) * 1e6)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != 0) {
    }
}

/* When each direction's link is next free, in sim_now_ms() microseconds (an atomic
 * rather than a lock: a fork while another thread held a lock would leave the child's
 * copies waiting forever). Index 0 host-to-device, 1 device-to-host. */
static _Atomic uint64_t link_free_us[2];

/* Takes the link of direction `dir` (1 or 2) for `duration_ms` from `now_ms` or, when it
 * is busy, from when it frees; returns when this copy starts on it. */
static double link_take(int dir, double now_ms, double duration_ms) {
    _Atomic uint64_t *free_us = &link_free_us[dir - 1];
    uint64_t now = (uint64_t)(now_ms * 1e3), len = (uint64_t)(duration_ms * 1e3);
    uint64_t seen = atomic_load(free_us), start;
    do
        start = seen > now ? seen : now;
    while (!atomic_compare_exchange_weak(free_us, &seen, start + len));
    return (double)start / 1e3;
}

static void fail(struct sim_op *op) {
    sim_log("simcuda: asynchronous copy touched unmapped device memory");
    op->result = CUDA_ERROR_ILLEGAL_ADDRESS;
    atomic_fetch_add(&sim_stats.faults, 1);
    sim_set_sticky(CUDA_ERROR_ILLEGAL_ADDRESS);
}

static void count_traffic(int dir, size_t n) {
    if (dir == 1)
        atomic_fetch_add(&sim_stats.h2d_bytes, n);
    else if (dir == 2)
        atomic_fetch_add(&sim_stats.d2h_bytes, n);
}

void sim_copy_land(struct sim_op *op) {
    struct geom g = geom_of(op);
    int dir = op->u.copy.dir;
    if (!g.bytes)
        return;
    double duration = 0;
    if (sim_pcie_gbps > 0 && (dir == 1 || dir == 2))
        duration = (double)g.bytes / (sim_pcie_gbps * 1e6);
    size_t nchunks = duration > 0 ? g.bytes / CHUNK_MIN : 1;
    if (nchunks < 1)
        nchunks = 1;
    if (nchunks > MAX_CHUNKS)
        nchunks = MAX_CHUNKS;

    sim_mem_read_lock();
    if (!chunk_mapped(&g, 0, g.bytes)) {
        sim_mem_read_unlock();
        fail(op);
        return;
    }
    if (duration > 0 && !spans_overlap(&g))
        pieces(&g, 0, g.bytes, PIECE_POISON); /* nothing of the result is visible yet */
    if (duration == 0) {
        pieces(&g, 0, g.bytes, PIECE_COPY);
        sim_mem_read_unlock();
        count_traffic(dir, g.bytes);
        return;
    }
    sim_mem_read_unlock();
    double t0 = link_take(dir, sim_now_ms(), duration);
    for (size_t c = 0; c < nchunks; c++) {
        size_t from = g.bytes / nchunks * c;
        size_t to = c + 1 == nchunks ? g.bytes : g.bytes / nchunks * (c + 1);
        sleep_until(t0 + duration * (double)to / (double)g.bytes);
        sim_mem_read_lock();
        if (!chunk_mapped(&g, from, to)) {
            sim_mem_read_unlock();
            fail(op);
            return;
        }
        pieces(&g, from, to, PIECE_COPY);
        sim_mem_read_unlock();
        count_traffic(dir, to - from);
    }
}
