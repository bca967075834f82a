/*
 * lifetime.c — the runtime's start (before main) and its report at exit (runtime.h).
 */
#include "runtime/runtime.h"

#include "runtime/call.h"
#include "runtime/components/components.h"
#include "runtime/memory/pools.h"
#include "runtime/record/record.h"
#include "runtime/report/trace.h"
#include "runtime/setup.h"
#include "runtime/state.h"

#include <stdlib.h>
#include <time.h>

#define rt (&offload_runtime)

/* How long the exit report waits for another thread's call to release the lock. */
#define EXIT_LOCK_WAIT_S 2

void runtime_early_init(void) {
    setup_early(rt);
    trace_start(&rt->cfg); /* the timeline and the status line, when asked for */
}

/* At exit another thread may hold the lock for one call (a sync copy, an eviction wait:
 * seconds under a sanitizer), or this thread may (exit from a signal handler that
 * interrupted one of its calls), and then nobody ever releases it. So: never wait for
 * ourselves, wait a little for another thread, then report from what is there (a read
 * that may race with that thread, the lesser harm than no report or a hang). */
static bool lock_for_exit(void) {
    if (call_in_progress())
        return false;
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += EXIT_LOCK_WAIT_S;
    return offload_lock_acquire_until(&rt->lock, &deadline);
}

static void report(void) {
    struct stats_component *comps = NULL;
    uint64_t unowned = 0;
    size_t ncomp = components_report(rt, &comps, &unowned);
    struct stats_report report = {
        .stats = &rt->stats,
        .budget_bytes = rt->budget.limit,
        .peak_resident_bytes = rt->budget.peak_resident,
        .peak_used_bytes = rt->budget.peak_used,
        .wait_ns = rt->copy.wait_ns,
        .unowned_bytes = unowned,
        .components = comps,
        .component_count = ncomp,
    };
    if (rt->cfg.summary) /* off under `offload run`, which prints the table itself */
        stats_log_summary(&report);
    if (rt->cfg.stats_path[0])
        stats_write_file(&report, rt->cfg.stats_path);
    free(comps);
}

/* No driver call here: at exit the driver may already be finalised, and copies may still
 * be in flight. The process is going away; its memory goes with it. */
void runtime_shutdown(void) {
    if (!rt->config_loaded || atomic_load(&rt->forked_child))
        return;
    bool locked = lock_for_exit();
    if (rt->cuda_ready) {
        bool pushed = setup_context_enter(rt);
        rt->epoch++;
        pools_reap_frees(rt); /* stream-ordered frees that have run are not held at exit */
        setup_context_leave(pushed);
        record_finish(rt);
        report();
        /* like the stats, only from a process that used CUDA: a wrapper (sh -c ./app) that
         * exits after the program must not replace its timeline with an empty one */
        trace_finish(rt->budget.limit);
    }
    if (locked)
        runtime_unlock();
}
