/*
 * builtin.c — the kernels the simulator implements natively, and the PTX images that
 * name them (builtin.h).
 *
 * offload_fingerprint is liboffload's clean-eviction fingerprint (runtime/devcode/
 * fingerprint.cu). Its host implementation uses the same mixing (fingerprint_hash.h,
 * plain C written for both), so the sums are the kernel's for any grid: the kernel adds
 * per-warp sums atomically and addition commutes. Like the kernel it adds to sums[] and
 * does not zero them (the caller's memset is part of the contract).
 */
#include "tests/sim/builtin.h"

#include "runtime/devcode/fingerprint_hash.h"
#include "tests/sim/sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The sums over whole words, vectorised where the CPU has AVX-512 (64-bit multiplies):
 * about 17 GB/s against 2.6 scalar on the development machine. The kernel costs a GPU a
 * fraction of the copy it saves; on the simulator it should not cost several copies, or
 * the timing figures would charge the check for the CPU's slowness. */
#if defined(__x86_64__) && defined(__GNUC__)
#if defined(__clang__)
#define SIM_VECTOR_FN __attribute__((target("avx512f,avx512dq")))
#else
#define SIM_VECTOR_FN __attribute__((target("avx512f,avx512dq"), optimize("O3")))
#endif
SIM_VECTOR_FN static void word_sums_avx512(const uint64_t *w, uint64_t words, uint64_t s[2]) {
    uint64_t a = 0, b = 0;
    for (uint64_t i = 0; i < words; i++) {
        a += fp_term_a(i, w[i]);
        b += fp_term_b(i, w[i]);
    }
    s[0] += a;
    s[1] += b;
}
#endif

static void fingerprint_sums(const void *p, uint64_t bytes, uint64_t s[2]) {
#if defined(__x86_64__) && defined(__GNUC__)
    if (__builtin_cpu_supports("avx512dq")) {
        uint64_t words = bytes / 8;
        word_sums_avx512(p, words, s);
        if (bytes % 8) {
            uint64_t t = fp_tail_word((const unsigned char *)p + words * 8, bytes % 8);
            s[0] += fp_term_a(words, t);
            s[1] += fp_term_b(words, t);
        }
        return;
    }
#endif
    fingerprint_add_host(p, bytes, s);
}

static void run_fingerprint(struct simkernel_dim3 grid, struct simkernel_dim3 block, void **args) {
    (void)grid;
    (void)block;
    uint64_t data, bytes, sums_at;
    memcpy(&data, args[0], 8);
    memcpy(&bytes, args[1], 8);
    memcpy(&sums_at, args[2], 8);
    uint64_t s[2] = {0, 0};
    fingerprint_sums((const void *)(uintptr_t)data, bytes, s);
    uint64_t *sums = (uint64_t *)(uintptr_t)sums_at;
    sums[0] += s[0];
    sums[1] += s[1];
}

static const struct simkernel_desc builtins[] = {
    {
        .abi_version = SIMKERNEL_ABI_VERSION,
        .name = "offload_fingerprint",
        .param_count = 3,
        .param_offset = {0, 8, 16},
        .param_size = {8, 8, 8},
        .run = run_fingerprint,
        .param_reads = {1, 0, 0}, /* data is only read; sums is written */
    },
};

/* The highest PTX ISA the simulated driver (CUDA 13) compiles, and its device's sm. */
#define PTX_MAX_MAJOR 9
#define DEVICE_SM 90

int sim_ptx_image(const void *image) {
    const char *t = image;
    return strstr(t, ".version") && strstr(t, ".target");
}

static const struct simkernel_desc *builtin_named(const char *name, size_t len) {
    for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++)
        if (strlen(builtins[i].name) == len && strncmp(builtins[i].name, name, len) == 0)
            return &builtins[i];
    return NULL;
}

/* The size of a `.param` of PTX type at t (".u64", ".b32", ...), 0 when unknown. */
static size_t param_type_size(const char *t) {
    static const struct {
        const char *type;
        size_t size;
    } types[] = {{".u64", 8}, {".s64", 8}, {".b64", 8}, {".f64", 8}, {".u32", 4},
                 {".s32", 4}, {".b32", 4}, {".f32", 4}, {".u16", 2}, {".s16", 2},
                 {".b16", 2}, {".u8", 1},  {".s8", 1},  {".b8", 1}};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strncmp(t, types[i].type, strlen(types[i].type)) == 0)
            return types[i].size;
    return 0;
}

/* Whether the parameter list from `(` at p matches d's layout exactly. */
static int params_match(const char *p, const struct simkernel_desc *d) {
    const char *end = strchr(p, ')');
    if (*p != '(' || !end)
        return 0;
    unsigned n = 0;
    size_t offset = 0;
    for (const char *q = strstr(p, ".param"); q && q < end; q = strstr(q + 6, ".param")) {
        size_t size = param_type_size(q + 6 + strspn(q + 6, " \t"));
        if (!size || n >= d->param_count)
            return 0;
        offset = (offset + size - 1) / size * size;
        if (d->param_offset[n] != offset || d->param_size[n] != size)
            return 0;
        offset += size;
        n++;
    }
    return n == d->param_count;
}

/* Calls visit(name, len, desc, ctx) for each `.entry` of ptx, desc NULL when it is no
 * built-in with that parameter list; stops at the first nonzero return. */
static int each_entry(const char *ptx,
                      int (*visit)(const char *, size_t, const struct simkernel_desc *, void *),
                      void *ctx) {
    for (const char *e = strstr(ptx, ".entry"); e; e = strstr(e + 6, ".entry")) {
        const char *name = e + 6 + strspn(e + 6, " \t");
        size_t len = strcspn(name, " \t\r\n(");
        const char *paren = name + len + strspn(name + len, " \t\r\n");
        const struct simkernel_desc *d = builtin_named(name, len);
        if (d && !params_match(paren, d))
            d = NULL;
        int stop = visit(name, len, d, ctx);
        if (stop)
            return stop;
    }
    return 0;
}

struct entry_count {
    unsigned known;
};

static int reject_unknown(const char *name, size_t len, const struct simkernel_desc *d, void *ctx) {
    if (!d) {
        sim_log("simcuda: cuModuleLoadData: PTX entry %.*s is not a kernel the simulator "
                "implements (with that parameter list)",
                (int)len, name);
        return 1;
    }
    ((struct entry_count *)ctx)->known++;
    return 0;
}

CUresult sim_ptx_check(const char *ptx) {
    const char *v = strstr(ptx, ".version");
    const char *t = strstr(ptx, ".target");
    int major = 0, minor = 0, sm = 0;
    if (!v || !t || sscanf(v, ".version %d.%d", &major, &minor) != 2 ||
        sscanf(t, ".target sm_%d", &sm) != 1) {
        sim_log("simcuda: cuModuleLoadData: malformed PTX header");
        return CUDA_ERROR_INVALID_PTX;
    }
    if (major > PTX_MAX_MAJOR) {
        sim_log("simcuda: cuModuleLoadData: PTX ISA %d.%d is newer than the driver's", major,
                minor);
        return CUDA_ERROR_UNSUPPORTED_PTX_VERSION;
    }
    if (sm > DEVICE_SM) {
        sim_log("simcuda: cuModuleLoadData: PTX for sm_%d does not run on sm_%d", sm, DEVICE_SM);
        return CUDA_ERROR_INVALID_PTX;
    }
    struct entry_count c = {0};
    if (each_entry(ptx, reject_unknown, &c) || c.known == 0)
        return CUDA_ERROR_INVALID_PTX;
    return CUDA_SUCCESS;
}

struct entry_find {
    const char *name;
    const struct simkernel_desc *found;
};

static int find_named(const char *name, size_t len, const struct simkernel_desc *d, void *ctx) {
    struct entry_find *f = ctx;
    if (!d || strlen(f->name) != len || strncmp(name, f->name, len) != 0)
        return 0;
    f->found = d;
    return 1;
}

const struct simkernel_desc *sim_ptx_entry(const char *ptx, const char *name) {
    struct entry_find f = {name, NULL};
    each_entry(ptx, find_named, &f);
    return f.found;
}
