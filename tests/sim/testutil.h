/*
 * testutil.h — helpers for the simulator's own unit tests (tests/unit/test_sim_*.c).
 * Header-only; not part of libcuda.so.1.
 */
#ifndef SIM_TESTUTIL_H
#define SIM_TESTUTIL_H

#include <cuda.h>
#include <libgen.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* $BUILD/progs/sim_kernels.so, found from this test binary ($BUILD/tests/test_sim_*). */
/* In a child about to exec a scenario that ends on a sticky fault (a race, a misuse):
 * LeakSanitizer off in it. Such a child cannot release what it made (the driver answers
 * every later call with the fault) and exits from the middle of its scenario; its
 * leaks are the scenario's, and a report would turn the expected outcome into a failure
 * (exit 1, and a stack that names race.c). The parent's own run keeps the check. */
static inline void sim_test_child_without_leak_check(void) {
    const char *old = getenv("ASAN_OPTIONS");
    char options[1024];
    snprintf(options, sizeof options, "%s%sdetect_leaks=0", old ? old : "", old && *old ? ":" : "");
    setenv("ASAN_OPTIONS", options, 1);
}

/* The file at path as a string (at most 64 KiB; empty when unreadable). The buffer is
 * static: the next call overwrites it. */
static inline const char *sim_test_slurp(const char *path) {
    static char buf[65536];
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = 0;
    return buf;
}

/* Runs this test program again as `program race-child SCENARIO` in a fresh process with
 * the race detector on and LeakSanitizer off (above); its exit status goes to *status and
 * its stderr is returned (sim_test_slurp's buffer). */
static inline const char *sim_test_race_child(const char *program, int scenario, int *status) {
    char out[] = "/tmp/simcuda-race-XXXXXX";
    int fd = mkstemp(out);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fd, 2);
        setenv("SIMCUDA_RACECHECK", "1", 1);
        sim_test_child_without_leak_check();
        char arg[16];
        snprintf(arg, sizeof arg, "%d", scenario);
        execl("/proc/self/exe", program, "race-child", arg, (char *)NULL);
        _exit(127);
    }
    close(fd);
    waitpid(pid, status, 0);
    const char *text = sim_test_slurp(out);
    unlink(out);
    return text;
}

/* Runs this test program again as `program ARG` in a fresh process with SIMCUDA_REPORT
 * set (and SIMCUDA_FAIL, unless fail is NULL); its exit status goes to *status and its
 * report is returned (sim_test_slurp's buffer). */
static inline const char *sim_test_report_child(const char *program, const char *arg,
                                                const char *fail, int *status) {
    char path[] = "/tmp/simcuda-report-XXXXXX";
    int fd = mkstemp(path);
    if (fd >= 0)
        close(fd);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        setenv("SIMCUDA_REPORT", path, 1);
        if (fail)
            setenv("SIMCUDA_FAIL", fail, 1);
        execl("/proc/self/exe", program, arg, (char *)NULL);
        _exit(127);
    }
    waitpid(pid, status, 0);
    const char *text = sim_test_slurp(path);
    unlink(path);
    return text;
}

static inline const char *sim_test_kernels_path(void) {
    static char path[PATH_MAX];
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return "sim_kernels.so";
    exe[n] = 0;
    snprintf(path, sizeof path, "%s/../progs/sim_kernels.so", dirname(exe));
    return path;
}

/* The simulator reads its environment once, as it loads: a test that needs its own
 * settings (SIMCUDA_FAIL, a device size) sets them and starts itself again. `env` is
 * NAME, VALUE, ..., NULL; the first NAME, set, marks the second start. Returns true in
 * that second start, false when the exec failed. */
static inline bool sim_test_restart_with(char **argv, const char *const *env) {
    if (getenv(env[0]))
        return true;
    for (size_t i = 0; env[i] && env[i + 1]; i += 2)
        setenv(env[i], env[i + 1], 1);
    execv("/proc/self/exe", argv);
    perror("execv /proc/self/exe");
    return false;
}

/* cuInit + the primary context made current; returns it. */
static inline CUcontext sim_test_setup(void) {
    CUcontext ctx = NULL;
    CUdevice dev;
    if (cuInit(0) != CUDA_SUCCESS || cuDeviceGet(&dev, 0) != CUDA_SUCCESS ||
        cuDevicePrimaryCtxRetain(&ctx, dev) != CUDA_SUCCESS ||
        cuCtxSetCurrent(ctx) != CUDA_SUCCESS) {
        fprintf(stderr, "sim_test_setup failed\n");
        return NULL;
    }
    return ctx;
}

static inline CUfunction sim_test_kernel(const char *name) {
    static CUmodule mod;
    CUfunction f = NULL;
    if (!mod && cuModuleLoad(&mod, sim_test_kernels_path()) != CUDA_SUCCESS) {
        fprintf(stderr, "cannot load %s\n", sim_test_kernels_path());
        return NULL;
    }
    if (cuModuleGetFunction(&f, mod, name) != CUDA_SUCCESS)
        fprintf(stderr, "no kernel %s\n", name);
    return f;
}

/* Waits until a synchronous call's bytes have landed: like the driver's, the simulator's
 * cuMemset* and cuMemcpyDtoD of device memory and cuMemcpyHtoD from pageable memory
 * return before they are done. */
static inline CUresult sim_test_landed(CUresult r) {
    return r != CUDA_SUCCESS ? r : cuCtxSynchronize();
}

/* The test kernels most tests launch (tests/progs/sim_kernels.cu), one block each:
 * fill_u32 writes v into n words at p; slow_store sleeps `us` then writes v at p. */
static inline CUresult sim_test_fill(CUstream s, CUdeviceptr p, unsigned long long n, unsigned v) {
    void *args[] = {&p, &n, &v};
    return cuLaunchKernel(sim_test_kernel("fill_u32"), 1, 1, 1, (unsigned)n, 1, 1, 0, s, args,
                          NULL);
}

static inline CUresult sim_test_slow_store(CUstream s, CUdeviceptr p, unsigned v, unsigned us) {
    void *args[] = {&p, &v, &us};
    return cuLaunchKernel(sim_test_kernel("slow_store"), 1, 1, 1, 1, 1, 1, 0, s, args, NULL);
}

/* The word at p (0xdeadbeef when the read fails). */
static inline unsigned sim_test_word(CUdeviceptr p) {
    unsigned v = 0xdeadbeef;
    cuMemcpyDtoH(&v, p, 4);
    return v;
}

/* Ends s's capture: whether it answered `want`, with a graph exactly on success (the
 * graph is destroyed). */
static inline bool sim_test_end_capture(CUstream s, CUresult want) {
    CUgraph g = (CUgraph)1;
    CUresult r = cuStreamEndCapture(s, &g);
    if (r == CUDA_SUCCESS && g)
        cuGraphDestroy(g);
    if (r != want)
        fprintf(stderr, "cuStreamEndCapture answered %d, not %d\n", (int)r, (int)want);
    return r == want && (want == CUDA_SUCCESS ? g != NULL : g == NULL);
}

static inline double sim_test_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

#endif
