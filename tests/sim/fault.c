/*
 * fault.c — kernel faults as on the hardware.
 *
 * On a GPU a kernel touching memory it may not (unmapped, without access, freed, past an
 * allocation, or pageable host memory) does not kill the process: the launch already
 * returned CUDA_SUCCESS, the kernel stops, and every later call that needs the context
 * returns the sticky CUDA_ERROR_ILLEGAL_ADDRESS. The simulator runs kernels on the
 * stream's worker under sigsetjmp; its SIGSEGV/SIGBUS handler, installed at the first
 * launch, longjmps out of a faulting kernel and chains to the handler installed before
 * it for any other fault (so a host bug still crashes as before).
 *
 * A kernel runs on the CPU and could read any host memory. A GPU reaches only device
 * memory and pinned (page-locked or registered) host memory, so a parameter word that
 * points into mapped pageable host memory faults the launch before the kernel runs. (A
 * word is taken for a pointer if it is 8-byte aligned in the argument buffer and lands
 * in a mapped page: integers rarely do.)
 *
 * After a kernel ran, the allocations its parameter words point into are the ones it
 * could have written: their bytes that no longer hold poison are marked written in the
 * shadow (poison.c).
 */
#include "tests/sim/strict.h"

#include <setjmp.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static struct {
    pthread_once_t once;
    struct sigaction prev_segv, prev_bus;
    atomic_uint_fast64_t faults;
} flt = {.once = PTHREAD_ONCE_INIT};

/* Set while this thread runs a kernel: where its fault returns to. */
static __thread sigjmp_buf *tls_jump;
static __thread void *tls_fault_addr;

static void chain(const struct sigaction *prev, int sig, siginfo_t *si, void *uc) {
    if ((prev->sa_flags & SA_SIGINFO) && prev->sa_sigaction) {
        prev->sa_sigaction(sig, si, uc);
    } else if (prev->sa_handler != SIG_DFL && prev->sa_handler != SIG_IGN) {
        prev->sa_handler(sig);
    } else {
        /* the default action: returning re-runs the faulting instruction, which now
         * kills the process as it would have without the simulator */
        signal(sig, SIG_DFL);
    }
}

static void on_fault(int sig, siginfo_t *si, void *uc) {
    sigjmp_buf *j = tls_jump;
    if (j) {
        tls_jump = NULL;
        tls_fault_addr = si ? si->si_addr : NULL;
        siglongjmp(*j, 1);
    }
    chain(sig == SIGSEGV ? &flt.prev_segv : &flt.prev_bus, sig, si, uc);
}

static void install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &flt.prev_segv);
    sigaction(SIGBUS, &sa, &flt.prev_bus);
}

void sim_fault_init(void) {
    pthread_once(&flt.once, install);
}

uint64_t sim_kernel_faults(void) {
    return atomic_load(&flt.faults);
}

static int host_page_mapped(uintptr_t p) {
    unsigned char v;
    long page = sysconf(_SC_PAGESIZE);
    return mincore((void *)(p & ~(uintptr_t)(page - 1)), 1, &v) == 0;
}

#define MAX_WORDS SIM_MAX_PARAM_WORDS

size_t sim_kernel_param_words(const struct sim_op *op, uintptr_t *words) {
    const struct simkernel_desc *d = op->u.kernel.desc;
    size_t n = 0;
    for (unsigned i = 0; i < d->param_count; i++) {
        size_t end = d->param_offset[i] + d->param_size[i];
        for (size_t at = (d->param_offset[i] + 7) & ~(size_t)7; at + 8 <= end && n < MAX_WORDS;
             at += 8)
            memcpy(&words[n++], op->u.kernel.argbuf + at, 8);
    }
    return n;
}

/* The first parameter word pointing into pageable host memory, or 0. */
static uintptr_t pageable_pointer(const uintptr_t *w, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (w[i] >= 65536 && w[i] < ((uintptr_t)1 << 47) && !sim_is_device(w[i]) &&
            host_page_mapped(w[i]) && !sim_is_pinned(w[i], 1))
            return w[i];
    return 0;
}

/* After the kernel: what it wrote, found in the allocations its words point into. */
static void note_writes(const uintptr_t *w, size_t n) {
    sim_mem_read_lock();
    for (size_t i = 0; i < n; i++) {
        uintptr_t a, b;
        if (sim_is_device(w[i]) && sim_mem_extent_locked(w[i], &a, &b) == 0 &&
            sim_mem_check_locked(a, b - a, 0) == CUDA_SUCCESS)
            sim_shadow_kernel_wrote(a, b - a);
    }
    sim_mem_read_unlock();
}

static CUresult fault(const struct sim_op *op, const char *why, uintptr_t addr) {
    atomic_fetch_add(&flt.faults, 1);
    atomic_fetch_add(&sim_stats.faults, 1);
    sim_log("simcuda: kernel %s faulted: %s %#lx", op->u.kernel.desc->name, why,
            (unsigned long)addr);
    sim_set_sticky(CUDA_ERROR_ILLEGAL_ADDRESS);
    return CUDA_ERROR_ILLEGAL_ADDRESS;
}

/* The kernel under sigsetjmp (a function of its own, so no caller's locals live across
 * the longjmp): 0, or 1 if it faulted (its remaining threads do not run). */
static __attribute__((noinline)) int run_guarded(struct sim_op *op) {
    sigjmp_buf jump;
    if (sigsetjmp(jump, 1))
        return 1;
    tls_jump = &jump;
    op->u.kernel.desc->run(op->u.kernel.grid, op->u.kernel.block, op->u.kernel.args);
    tls_jump = NULL;
    return 0;
}

CUresult sim_kernel_run(struct sim_op *op) {
    sim_fault_init();
    uintptr_t words[MAX_WORDS];
    size_t nwords = sim_kernel_param_words(op, words);
    uintptr_t host = pageable_pointer(words, nwords);
    if (host)
        return fault(op, "parameter points to pageable host memory at", host);
    if (run_guarded(op))
        return fault(op, "illegal address", (uintptr_t)tls_fault_addr);
    note_writes(words, nwords);
    return CUDA_SUCCESS;
}
