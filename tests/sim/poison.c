/*
 * poison.c — the poison pattern, and the shadow of device bytes written since mapped.
 *
 * A GPU gives new memory whatever was there; the simulator gives it poison, over the
 * whole extent, so a program (or a restore) that reads bytes nobody wrote reads
 * something recognisably wrong instead of plausible zeros or an old allocation's data.
 * The pattern depends only on the address, so a byte can be recognised as poison
 * wherever it is.
 *
 * The shadow is a sorted set of disjoint, coalesced [start, end) device ranges that were
 * written since they were mapped at their address (cuMemAlloc, cuMemMap start them
 * unwritten). Copies and memsets mark their exact destination bytes; a kernel's writes
 * are found after it ran, as the unwritten bytes of the allocations its parameters point
 * into that no longer hold poison. Reads by copies of unwritten device bytes are counted
 * (uninit_reads, bytes): not an error, programs may read memory they never filled
 * (torch.empty), but a count that differs with and without liboffload means liboffload
 * changed what a program sees. What kernels read cannot be observed, so it is not
 * counted.
 */
#include "tests/sim/strict.h"

#include <stdlib.h>
#include <string.h>

static const unsigned char poison_word[8] = {0xDE, 0xAD, 0xBE, 0xEF, 0x5E, 0xC0, 0xDE, 0xAD};

unsigned char sim_poison_byte(uintptr_t a) {
    return poison_word[a & 7];
}

void sim_poison_fill(void *p, size_t n) {
    unsigned char *b = p;
    uintptr_t a = (uintptr_t)p;
    size_t i = 0;
    for (; i < n && ((a + i) & 7); i++)
        b[i] = sim_poison_byte(a + i);
    uint64_t w;
    memcpy(&w, poison_word, 8);
    for (; i + 8 <= n; i += 8)
        memcpy(b + i, &w, 8);
    for (; i < n; i++)
        b[i] = sim_poison_byte(a + i);
}

/* ---- the written-bytes shadow ---------------------------------------------------- */

struct span {
    uintptr_t start, end;
};

static struct {
    pthread_mutex_t lock;
    struct span *v;
    size_t n, cap;
    atomic_uint_fast64_t uninit_reads;
} sh = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Index of the first span ending after p. */
static size_t first_after(uintptr_t p) {
    size_t lo = 0, hi = sh.n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (sh.v[mid].end <= p)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* With the lock held: [a, b) leaves the set (spans cut at its ends). */
static void remove_locked(uintptr_t a, uintptr_t b) {
    size_t i = first_after(a);
    if (i < sh.n && sh.v[i].start < a && sh.v[i].end > b) {
        /* one span strictly contains [a, b): split it */
        if (sh.n == sh.cap) {
            size_t cap = sh.cap ? 2 * sh.cap : 64;
            struct span *v = realloc(sh.v, cap * sizeof *v);
            if (!v)
                return; /* the bytes stay "written": an undercount, never a false report */
            sh.v = v;
            sh.cap = cap;
        }
        memmove(sh.v + i + 2, sh.v + i + 1, (sh.n - i - 1) * sizeof *sh.v);
        sh.v[i + 1] = (struct span){b, sh.v[i].end};
        sh.v[i].end = a;
        sh.n++;
        return;
    }
    if (i < sh.n && sh.v[i].start < a) {
        sh.v[i].end = a;
        i++;
    }
    size_t j = i;
    while (j < sh.n && sh.v[j].end <= b)
        j++;
    if (j < sh.n && sh.v[j].start < b)
        sh.v[j].start = b;
    if (j > i) /* (never with an empty vector, whose v may be NULL) */
        memmove(sh.v + i, sh.v + j, (sh.n - j) * sizeof *sh.v);
    sh.n -= j - i;
}

/* With the lock held: [a, b) joins the set, merged with what it touches. */
static void add_locked(uintptr_t a, uintptr_t b) {
    size_t i = first_after(a);
    if (i > 0 && sh.v[i - 1].end == a)
        i--; /* touching on the left */
    size_t j = i;
    while (j < sh.n && sh.v[j].start <= b) {
        if (sh.v[j].start < a)
            a = sh.v[j].start;
        if (sh.v[j].end > b)
            b = sh.v[j].end;
        j++;
    }
    if (j == i) {
        if (sh.n == sh.cap) {
            size_t cap = sh.cap ? 2 * sh.cap : 64;
            struct span *v = realloc(sh.v, cap * sizeof *v);
            if (!v)
                return;
            sh.v = v;
            sh.cap = cap;
        }
        memmove(sh.v + i + 1, sh.v + i, (sh.n - i) * sizeof *sh.v);
        sh.n++;
    } else {
        memmove(sh.v + i + 1, sh.v + j, (sh.n - j) * sizeof *sh.v);
        sh.n -= j - i - 1;
    }
    sh.v[i] = (struct span){a, b};
}

/* With the lock held: bytes of [a, b) not in the set. */
static size_t unwritten_locked(uintptr_t a, uintptr_t b) {
    size_t covered = 0;
    for (size_t i = first_after(a); i < sh.n && sh.v[i].start < b; i++) {
        uintptr_t s = sh.v[i].start > a ? sh.v[i].start : a;
        uintptr_t e = sh.v[i].end < b ? sh.v[i].end : b;
        covered += e - s;
    }
    return (b - a) - covered;
}

void sim_shadow_fresh(uintptr_t p, size_t n) {
    if (!n)
        return;
    pthread_mutex_lock(&sh.lock);
    remove_locked(p, p + n);
    pthread_mutex_unlock(&sh.lock);
}

void sim_shadow_written(uintptr_t p, size_t n) {
    if (!n || !sim_is_device(p))
        return;
    pthread_mutex_lock(&sh.lock);
    add_locked(p, p + n);
    pthread_mutex_unlock(&sh.lock);
}

void sim_shadow_read(uintptr_t p, size_t n) {
    if (!n || !sim_is_device(p))
        return;
    pthread_mutex_lock(&sh.lock);
    size_t u = unwritten_locked(p, p + n);
    pthread_mutex_unlock(&sh.lock);
    if (u)
        atomic_fetch_add_explicit(&sh.uninit_reads, u, memory_order_relaxed);
}

uint64_t sim_uninit_reads(void) {
    return atomic_load(&sh.uninit_reads);
}

/* The runs of [a, b) that no longer hold poison, appended to runs[]. When runs[] fills,
 * the last run reaches b: more bytes count as written rather than fewer, so a kernel
 * with a scattered write pattern never causes a false uninitialised read. */
static void scan_unpoisoned(uintptr_t a, uintptr_t b, struct span *runs, size_t *nruns,
                            size_t max) {
    uint64_t w;
    memcpy(&w, poison_word, 8);
    uintptr_t run = 0;
    int in_run = 0;
    for (uintptr_t p = a; p < b;) {
        int differs;
        size_t step;
        if (!(p & 7) && p + 8 <= b) {
            uint64_t v;
            memcpy(&v, (const void *)p, 8);
            differs = v != w;
            step = 8;
        } else {
            differs = *(const unsigned char *)p != sim_poison_byte(p);
            step = 1;
        }
        if (differs && !in_run) {
            if (*nruns == max - 1) {
                runs[(*nruns)++] = (struct span){p, b};
                return;
            }
            run = p;
            in_run = 1;
        } else if (!differs && in_run) {
            if (*nruns < max)
                runs[(*nruns)++] = (struct span){run, p};
            in_run = 0;
        }
        p += step;
    }
    if (in_run && *nruns < max)
        runs[(*nruns)++] = (struct span){run, b};
}

void sim_shadow_kernel_wrote(uintptr_t p, size_t n) {
    enum { MAX_GAPS = 64, MAX_RUNS = 256 };
    struct span gaps[MAX_GAPS], runs[MAX_RUNS];
    size_t ngaps = 0, nruns = 0;
    uintptr_t b = p + n, at = p;
    pthread_mutex_lock(&sh.lock);
    for (size_t i = first_after(p); i < sh.n && sh.v[i].start < b && ngaps < MAX_GAPS; i++) {
        if (sh.v[i].start > at)
            gaps[ngaps++] = (struct span){at, sh.v[i].start};
        at = sh.v[i].end;
    }
    if (ngaps == MAX_GAPS)
        gaps[MAX_GAPS - 1].end = b; /* scanning written bytes too is only slower */
    else if (at < b)
        gaps[ngaps++] = (struct span){at, b};
    pthread_mutex_unlock(&sh.lock);
    /* The bytes are read outside the shadow's lock (the caller holds the memory map). */
    for (size_t g = 0; g < ngaps; g++) {
        if (nruns == MAX_RUNS) /* full: the remaining gaps count as written */
            runs[MAX_RUNS - 1].end = gaps[ngaps - 1].end;
        else
            scan_unpoisoned(gaps[g].start, gaps[g].end, runs, &nruns, MAX_RUNS);
    }
    if (!nruns)
        return;
    pthread_mutex_lock(&sh.lock);
    for (size_t r = 0; r < nruns; r++)
        add_locked(runs[r].start, runs[r].end);
    pthread_mutex_unlock(&sh.lock);
}
