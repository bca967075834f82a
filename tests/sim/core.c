/*
 * core.c — process state of the simulated driver: the prologue every entry point runs
 * (init gate, sticky error, fault injection), configuration from the environment,
 * errors, and the exit report.
 */
#include "tests/sim/entries.h"
#include "tests/sim/sim.h"
#include "tests/sim/strict.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

atomic_int sim_gate = SIM_GATE_UNINIT;
__thread const char *sim_tls_entry;
struct sim_stats sim_stats;
double sim_pcie_gbps;
int sim_log_enabled;

#define SIM_MAX_FAULTS 32

/* fault_rule.nth for NAME:*: every call fails */
#define SIM_FAULT_EVERY (-1L)

struct fault_rule {
    char name[96];
    long nth;
    CUresult err; /* 0: the default for the entry point */
    atomic_long calls;
};

/* The core's one piece of mutable state (besides the atomics above). */
static struct {
    pthread_mutex_t lock;
    _Atomic int sticky;
    int initialized;
    struct fault_rule faults[SIM_MAX_FAULTS];
    int nfaults;
    double random_p;
    uint64_t random_state;
    char report_path[4096];
    atomic_long injected;
    char delay_name[64]; /* SIMCUDA_DELAY: the entry point that sleeps, and how long */
    unsigned delay_us;
} core = {.lock = PTHREAD_MUTEX_INITIALIZER};

void sim_log(const char *fmt, ...) {
    if (!sim_log_enabled)
        return;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (n > (int)sizeof buf - 2)
        n = sizeof buf - 2;
    buf[n++] = '\n';
    ssize_t w = write(2, buf, (size_t)n);
    (void)w;
}

int sim_unimplemented(const char *name, int *logged) {
    if (sim_log_enabled && !__atomic_exchange_n(logged, 1, __ATOMIC_RELAXED))
        sim_log("simcuda: unimplemented: %s", name);
    return CUDA_ERROR_NOT_SUPPORTED;
}

double sim_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* "512MiB", "8GiB", "1.5GiB", "4096", "64KiB", "2G", "100M". */
int sim_parse_size(const char *s, size_t *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || v < 0)
        return -1;
    while (*end == ' ')
        end++;
    double mult = 1;
    if (*end) {
        switch (*end) {
        case 'k':
        case 'K':
            mult = 1024.0;
            break;
        case 'm':
        case 'M':
            mult = 1024.0 * 1024;
            break;
        case 'g':
        case 'G':
            mult = 1024.0 * 1024 * 1024;
            break;
        case 't':
        case 'T':
            mult = 1024.0 * 1024 * 1024 * 1024;
            break;
        case 'b':
        case 'B':
            mult = 1;
            end--;
            break;
        default:
            return -1;
        }
        end++;
        if (*end == 'i' || *end == 'I')
            end++;
        if (*end == 'b' || *end == 'B')
            end++;
        if (*end)
            return -1;
    }
    *out = (size_t)(v * mult);
    return 0;
}

/* ---- errors ---------------------------------------------------------------------- */

static const struct sim_error *error_find(CUresult e) {
    unsigned lo = 0, hi = sim_error_count;
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        if (sim_error_table[mid].code == (int)e)
            return &sim_error_table[mid];
        if (sim_error_table[mid].code < (int)e)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static int error_by_name(const char *name, CUresult *out) {
    for (unsigned i = 0; i < sim_error_count; i++)
        if (strcmp(sim_error_table[i].name, name) == 0) {
            *out = (CUresult)sim_error_table[i].code;
            return 0;
        }
    return -1;
}

SIM_API CUresult cuGetErrorName(CUresult error, const char **pStr) {
    if (!pStr)
        return CUDA_ERROR_INVALID_VALUE;
    const struct sim_error *e = error_find(error);
    if (!e) {
        *pStr = NULL;
        return CUDA_ERROR_INVALID_VALUE;
    }
    *pStr = e->name;
    return CUDA_SUCCESS;
}

SIM_API CUresult cuGetErrorString(CUresult error, const char **pStr) {
    if (!pStr)
        return CUDA_ERROR_INVALID_VALUE;
    const struct sim_error *e = error_find(error);
    if (!e) {
        *pStr = NULL;
        return CUDA_ERROR_INVALID_VALUE;
    }
    *pStr = e->text;
    return CUDA_SUCCESS;
}

/* ---- prologue: sticky error and fault injection ---------------------------------- */

void sim_set_sticky(CUresult err) {
    int expected = 0;
    if (atomic_compare_exchange_strong(&core.sticky, &expected, (int)err)) {
        atomic_fetch_or(&sim_gate, SIM_GATE_STICKY);
        sim_log("simcuda: sticky error %d: the context is unusable from now on", (int)err);
    }
}

CUresult sim_sticky(void) {
    return (CUresult)atomic_load(&core.sticky);
}

/* cuMemAlloc_v2_ptds -> cuMemAlloc: rules name entry points by their base name. */
static size_t base_len(const char *name) {
    size_t n = strlen(name);
    if (n > 5 && (strcmp(name + n - 5, "_ptds") == 0 || strcmp(name + n - 5, "_ptsz") == 0))
        n -= 5;
    if (n > 3 && name[n - 3] == '_' && name[n - 2] == 'v' && name[n - 1] >= '2' &&
        name[n - 1] <= '9')
        n -= 3;
    return n;
}

static int rule_matches(const char *rule, const char *name) {
    if (strcmp(rule, name) == 0)
        return 1;
    size_t n = base_len(name);
    return strlen(rule) == n && strncmp(rule, name, n) == 0;
}

static CUresult default_fault(const char *name) {
    static const char *alloc_like[] = {"cuMemAlloc",        "cuMemCreate",         "cuMemHostAlloc",
                                       "cuMemHostRegister", "cuMemAddressReserve", NULL};
    for (int i = 0; alloc_like[i]; i++)
        if (strncmp(name, alloc_like[i], strlen(alloc_like[i])) == 0)
            return CUDA_ERROR_OUT_OF_MEMORY;
    return CUDA_ERROR_UNKNOWN;
}

static uint64_t random_next(void) {
    /* xorshift64*, under the core lock */
    uint64_t x = core.random_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    core.random_state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static CUresult fault_check(const char *name) {
    /* every matching rule counts this call, whichever fires */
    CUresult fail = CUDA_SUCCESS;
    for (int i = 0; i < core.nfaults; i++) {
        struct fault_rule *r = &core.faults[i];
        if (!rule_matches(r->name, name))
            continue;
        long n = atomic_fetch_add(&r->calls, 1) + 1;
        if ((n == r->nth || r->nth == SIM_FAULT_EVERY) && fail == CUDA_SUCCESS) {
            fail = r->err ? r->err : default_fault(name);
            atomic_fetch_add(&core.injected, 1);
            sim_log("simcuda: injected fault: %s call %ld -> %d", name, n, (int)fail);
        }
    }
    if (fail != CUDA_SUCCESS)
        return fail;
    if (core.random_p > 0) {
        pthread_mutex_lock(&core.lock);
        double u = (double)(random_next() >> 11) / (double)(1ULL << 53);
        pthread_mutex_unlock(&core.lock);
        if (u < core.random_p) {
            CUresult e = default_fault(name);
            atomic_fetch_add(&core.injected, 1);
            sim_log("simcuda: injected random fault: %s -> %d", name, (int)e);
            return e;
        }
    }
    return CUDA_SUCCESS;
}

CUresult sim_enter_slow(const char *name, int needs_init) {
    int gate = atomic_load(&sim_gate);
    if (needs_init && (gate & SIM_GATE_UNINIT))
        return CUDA_ERROR_NOT_INITIALIZED;
    if (needs_init && (gate & SIM_GATE_STICKY))
        return sim_sticky();
    if ((gate & SIM_GATE_DELAY) && rule_matches(core.delay_name, name))
        usleep(core.delay_us); /* opens the window between a caller's look and its call */
    if (gate & SIM_GATE_FAULTS)
        return fault_check(name);
    return CUDA_SUCCESS;
}

/* SIMCUDA_DELAY=NAME:US */
static void parse_delay(const char *spec) {
    const char *colon = strchr(spec, ':');
    if (!colon || (size_t)(colon - spec) >= sizeof core.delay_name) {
        fprintf(stderr, "simcuda: SIMCUDA_DELAY: '%s' is not NAME:MICROSECONDS\n", spec);
        return;
    }
    memcpy(core.delay_name, spec, (size_t)(colon - spec));
    core.delay_name[colon - spec] = 0;
    core.delay_us = (unsigned)strtoul(colon + 1, NULL, 10);
    atomic_fetch_or(&sim_gate, SIM_GATE_DELAY);
}

static void parse_faults(const char *spec) {
    char *copy = strdup(spec), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (core.nfaults == SIM_MAX_FAULTS)
            break;
        struct fault_rule *r = &core.faults[core.nfaults];
        char *c1 = strchr(tok, ':');
        if (!c1) {
            fprintf(stderr, "simcuda: SIMCUDA_FAIL: '%s' is not NAME:N[:ERROR] or NAME:*[:ERROR]\n",
                    tok);
            continue;
        }
        *c1 = 0;
        char *c2 = strchr(c1 + 1, ':');
        if (c2)
            *c2 = 0;
        snprintf(r->name, sizeof r->name, "%s", tok);
        r->nth = c1[1] == '*' ? SIM_FAULT_EVERY : strtol(c1 + 1, NULL, 10);
        r->err = 0;
        if (c2 && error_by_name(c2 + 1, &r->err) != 0)
            fprintf(stderr, "simcuda: SIMCUDA_FAIL: unknown error '%s'\n", c2 + 1);
        if (r->nth > 0 || r->nth == SIM_FAULT_EVERY)
            core.nfaults++;
    }
    free(copy);
}

/* ---- call counts ----------------------------------------------------------------- */

/* Every entry point called at least once, newest first (a lock-free push: counters are
 * static and never leave the list). */
static _Atomic(struct sim_call_count *) call_counts;

void sim_call_count_register(struct sim_call_count *c) {
    int expected = 0;
    if (!atomic_compare_exchange_strong(&c->listed, &expected, 1))
        return;
    struct sim_call_count *head = atomic_load(&call_counts);
    do
        c->next = head;
    while (!atomic_compare_exchange_weak(&call_counts, &head, c));
}

static int by_name(const void *a, const void *b) {
    return strcmp((*(struct sim_call_count *const *)a)->name,
                  (*(struct sim_call_count *const *)b)->name);
}

/* "calls": {"cuInit": 1, ...}, sorted by name. Other threads may still be calling (one
 * called exit() while others run) and push an entry point they call for the first time:
 * both walks start from one load of the head, and pushes only go in front of it, so they
 * see the same list (reloading the head overran the copy: fuzz, heap corruption at exit). */
static void write_call_counts(FILE *f) {
    size_t listed = 0;
    struct sim_call_count *head = atomic_load(&call_counts);
    for (struct sim_call_count *c = head; c; c = c->next)
        listed++;
    struct sim_call_count **v = calloc(listed ? listed : 1, sizeof *v);
    if (!v)
        return;
    size_t n = 0;
    for (struct sim_call_count *c = head; c; c = c->next)
        v[n++] = c;
    qsort(v, n, sizeof *v, by_name);
    fprintf(f, ", \"calls\": {");
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s\"%s\": %llu", i ? ", " : "", v[i]->name,
                (unsigned long long)atomic_load(&v[i]->n));
    fprintf(f, "}");
    free(v);
}

/* ---- report ---------------------------------------------------------------------- */

static void write_report(void) {
    if (!core.report_path[0])
        return;
    FILE *f = fopen(core.report_path, "w");
    if (!f)
        return;
    fprintf(f,
            "{\"peak_device_bytes\": %zu, \"h2d_bytes\": %llu, \"d2h_bytes\": %llu, "
            "\"launches\": %llu, \"device_capacity\": %zu, \"injected_faults\": %ld, "
            "\"faults\": %llu, \"races\": %llu, \"uninit_reads\": %llu",
            sim_memory_peak(), (unsigned long long)atomic_load(&sim_stats.h2d_bytes),
            (unsigned long long)atomic_load(&sim_stats.d2h_bytes),
            (unsigned long long)atomic_load(&sim_stats.launches), sim_memory_capacity(),
            atomic_load(&core.injected), (unsigned long long)atomic_load(&sim_stats.faults),
            (unsigned long long)sim_races(), (unsigned long long)sim_uninit_reads());
    write_call_counts(f);
    fprintf(f, "}\n");
    fclose(f);
}

/* The order is the lock order (sim.h): a thread holding one of these may take a later
 * one, never an earlier one. */
static void fork_prepare(void) {
    pthread_mutex_lock(&core.lock);
    sim_device_atfork(SIM_FORK_PREPARE);
    sim_module_atfork(SIM_FORK_PREPARE);
    sim_graph_atfork(SIM_FORK_PREPARE);
    sim_stream_atfork(SIM_FORK_PREPARE);
    sim_memory_atfork(SIM_FORK_PREPARE);
}
static void fork_parent(void) {
    sim_memory_atfork(SIM_FORK_PARENT);
    sim_stream_atfork(SIM_FORK_PARENT);
    sim_graph_atfork(SIM_FORK_PARENT);
    sim_module_atfork(SIM_FORK_PARENT);
    sim_device_atfork(SIM_FORK_PARENT);
    pthread_mutex_unlock(&core.lock);
}
static void fork_child(void) {
    sim_memory_atfork(SIM_FORK_CHILD);
    sim_stream_atfork(SIM_FORK_CHILD);
    sim_graph_atfork(SIM_FORK_CHILD);
    sim_module_atfork(SIM_FORK_CHILD);
    sim_device_atfork(SIM_FORK_CHILD);
    pthread_mutex_init(&core.lock, NULL);
}

__attribute__((constructor)) static void sim_core_init(void) {
    const char *v;
    pthread_atfork(fork_prepare, fork_parent, fork_child);
    sim_log_enabled = (v = getenv("SIMCUDA_LOG")) && *v && strcmp(v, "0") != 0;
    if ((v = getenv("SIMCUDA_PCIE_GBPS")) && *v)
        sim_pcie_gbps = strtod(v, NULL);
    if ((v = getenv("SIMCUDA_FAIL")) && *v)
        parse_faults(v);
    if ((v = getenv("SIMCUDA_FAIL_RANDOM")) && *v) {
        char *end;
        core.random_p = strtod(v, &end);
        unsigned long long seed = *end == ':' ? strtoull(end + 1, NULL, 10) : 1;
        core.random_state = seed * 0x9E3779B97F4A7C15ULL + 1;
    }
    if ((v = getenv("SIMCUDA_DELAY")) && *v)
        parse_delay(v);
    if (core.nfaults || core.random_p > 0)
        atomic_fetch_or(&sim_gate, SIM_GATE_FAULTS);
    if ((v = getenv("SIMCUDA_REPORT")) && *v) {
        snprintf(core.report_path, sizeof core.report_path, "%s", v);
        atexit(write_report);
    }
    sim_jitter_init();
    sim_race_init();
    sim_memory_init();
}

/* ---- init and version ------------------------------------------------------------ */

SIM_API CUresult cuInit(unsigned int flags) {
    SIM_ENTER_ANY("cuInit");
    if (flags != 0)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&core.lock);
    if (!core.initialized) {
        core.initialized = 1;
        sim_memory_configure();
        atomic_fetch_and(&sim_gate, ~SIM_GATE_UNINIT);
    }
    pthread_mutex_unlock(&core.lock);
    return CUDA_SUCCESS;
}

SIM_API CUresult cuDriverGetVersion(int *driverVersion) {
    SIM_ENTER_ANY("cuDriverGetVersion");
    if (!driverVersion)
        return CUDA_ERROR_INVALID_VALUE;
    *driverVersion = CUDA_VERSION;
    return CUDA_SUCCESS;
}

/* ---- cuGetProcAddress ------------------------------------------------------------ */

static CUresult resolve(const char *symbol, void **pfn, int version, cuuint64_t flags,
                        CUdriverProcAddressQueryResult *status) {
    CUdriverProcAddressQueryResult st = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
    if (pfn)
        *pfn = NULL;
    if (!symbol || !pfn) {
        if (status)
            *status = st;
        return CUDA_ERROR_INVALID_VALUE;
    }
    /* first row of `symbol` */
    unsigned lo = 0, hi = sim_proc_count;
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        if (strcmp(sim_proc_table[mid].name, symbol) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    const struct sim_proc *best = NULL, *best_pt = NULL;
    int found = 0;
    for (unsigned i = lo; i < sim_proc_count && strcmp(sim_proc_table[i].name, symbol) == 0; i++) {
        const struct sim_proc *p = &sim_proc_table[i];
        found = 1;
        if (p->version > version)
            continue;
        if (p->per_thread)
            best_pt = p;
        else
            best = p;
    }
    /* the per-thread variant of exactly the ABI chosen (NAME_v2 -> NAME_v2_ptds) */
    if (best && best_pt && (flags & CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM) &&
        strlen(best_pt->symbol) == strlen(best->symbol) + 5 &&
        strncmp(best_pt->symbol, best->symbol, strlen(best->symbol)) == 0)
        best = best_pt;
    if (best) {
        *pfn = best->fn;
        st = CU_GET_PROC_ADDRESS_SUCCESS;
    } else if (found) {
        st = CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT;
    }
    if (status)
        *status = st;
    return best ? CUDA_SUCCESS : CUDA_ERROR_NOT_FOUND;
}

SIM_API CUresult cuGetProcAddress_v2(const char *symbol, void **pfn, int cudaVersion,
                                     cuuint64_t flags, CUdriverProcAddressQueryResult *status) {
    SIM_ENTER_ANY("cuGetProcAddress_v2");
    return resolve(symbol, pfn, cudaVersion, flags, status);
}

#undef cuGetProcAddress
SIM_API CUresult cuGetProcAddress(const char *symbol, void **pfn, int cudaVersion,
                                  cuuint64_t flags) {
    SIM_ENTER_ANY("cuGetProcAddress");
    return resolve(symbol, pfn, cudaVersion, flags, NULL);
}
