/* The simulator's hardware-like strictness: late landing of copies under the bandwidth
 * model, poison over fresh and reused device memory, uninit_reads, call counts and
 * faults in SIMCUDA_REPORT, the race detector. Runs itself again with SIMCUDA_PCIE_GBPS=1 (read
 * when the driver loads) and, for the report, once more as a child with SIMCUDA_REPORT. */
#include "tests/sim/testutil.h"
#include "tests/unit/check.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>

#define MiB ((size_t)1 << 20)
#define GRAN (2 * MiB)

static const unsigned char poison_word[8] = {0xDE, 0xAD, 0xBE, 0xEF, 0x5E, 0xC0, 0xDE, 0xAD};

/* Bytes of [b, b+n), which were copied from device address d, that are not poison. */
static size_t not_poison(const unsigned char *b, uintptr_t d, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += b[i] != poison_word[(d + i) & 7];
    return k;
}

static void sleep_ms(unsigned ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static CUmemAllocationProp prop(void) {
    CUmemAllocationProp p = {0};
    p.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    p.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    return p;
}

static CUmemAccessDesc rw(void) {
    CUmemAccessDesc a = {0};
    a.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    a.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
    return a;
}

/* Fresh cuMemAlloc memory is poison in every byte, not zeros. */
TEST(fresh_alloc_is_poison) {
    size_t n = 3 * MiB + 100;
    CUdeviceptr d;
    CHECK_CU(cuMemAlloc(&d, n));
    unsigned char *b = malloc(n);
    CHECK_CU(cuMemcpyDtoH(b, d, n));
    CHECK_EQ_U64(not_poison(b, d, n), 0);
    CHECK_CU(cuMemFree(d));
    free(b);
}

/* cuMemCreate memory, fresh and reused, is poison over the whole extent. */
TEST(fresh_and_reused_physical_memory_is_poison) {
    CUmemAllocationProp p = prop();
    CUmemAccessDesc a = rw();
    size_t n = 2 * GRAN;
    unsigned char *b = malloc(n);
    CUdeviceptr va;
    CHECK_CU(cuMemAddressReserve(&va, n, 0, 0, 0));
    for (int round = 0; round < 2; round++) {
        CUmemGenericAllocationHandle h;
        CHECK_CU(cuMemCreate(&h, n, &p, 0));
        CHECK_CU(cuMemMap(va, n, 0, h, 0));
        CHECK_CU(cuMemSetAccess(va, n, &a, 1));
        CHECK_CU(cuMemcpyDtoH(b, va, n));
        CHECK_EQ_U64(not_poison(b, va, n), 0);
        CHECK_CU(sim_test_landed(cuMemsetD8(va, 0x11, n))); /* what the next round must not see */
        CHECK_CU(cuMemUnmap(va, n));
        CHECK_CU(cuMemRelease(h));
    }
    CHECK_CU(cuMemAddressFree(va, n));
    free(b);
}

/* Under the bandwidth model (1 GB/s: 32 MiB take ~34 ms) a reader on another stream,
 * unordered with the copy, sees poison or a part, never the whole result early; the
 * source is read as the bytes land, so a late change of it arrives. */
TEST(copies_land_late) {
    size_t n = 32 * MiB;
    CUdeviceptr d;
    unsigned char *src, *peek;
    CUstream s;
    CHECK_CU(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    CHECK_CU(cuMemAlloc(&d, n));
    CHECK_CU(cuMemAllocHost((void **)&src, n));
    CHECK_CU(cuMemAllocHost((void **)&peek, 4096));
    memset(src, 0x5a, n);
    CHECK_CU(sim_test_landed(cuMemsetD8(d, 0x33, n)));
    CHECK_CU(cuMemcpyHtoDAsync(d, src, n, s));
    /* The legacy stream does not wait for a non-blocking stream: these reads are not
     * ordered with the copy. Wait (a loaded machine starts the copy late) until the
     * destination changes: it turns to poison first, the old 0x33 is gone. */
    unsigned char head = 0x33;
    double give_up = 2000;
    for (; give_up > 0; give_up -= 0.2) {
        CHECK_CU(cuMemcpyDtoH(peek, d + n - 4096, 4096));
        if (peek[0] != 0x33)
            break;
        struct timespec ts = {0, 200000};
        nanosleep(&ts, NULL);
    }
    CHECK_EQ_U64(not_poison(peek, d + n - 4096, 4096), 0); /* neither 0x33 nor 0x5a */
    memset(src + n - 4096, 0x77, 4096); /* the tail lands last: the new bytes arrive */
    /* the first chunks land while the tail is still poison: a mix, never all early */
    int mix = 0;
    for (give_up = 2000; give_up > 0 && !mix; give_up -= 0.2) {
        CHECK_CU(cuMemcpyDtoH(&head, d, 1));
        CHECK_CU(cuMemcpyDtoH(peek, d + n - 4096, 4096));
        if (not_poison(peek, d + n - 4096, 4096) != 0)
            break;
        mix = head == 0x5a;
        struct timespec ts = {0, 200000};
        nanosleep(&ts, NULL);
    }
    CHECK(mix);
    CHECK_CU(cuStreamSynchronize(s));
    CHECK_CU(cuMemcpyDtoH(peek, d + n - 4096, 4096));
    CHECK_EQ_U64(peek[0], 0x77);
    CHECK_EQ_U64(peek[4095], 0x77);
    CHECK_CU(cuMemFree(d));
    CHECK_CU(cuMemFreeHost(src));
    CHECK_CU(cuMemFreeHost(peek));
    CHECK_CU(cuStreamDestroy(s));
}

/* Unmapping memory an in-flight device-to-host copy reads: cuMemUnmap succeeds (it does
 * not synchronize), the copy fails when its next bytes land, the context is broken, and
 * the host did not get the bytes. In a child: sticky. */
TEST(unmap_during_copy_is_caught) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        CUmemAllocationProp p = prop();
        CUmemAccessDesc a = rw();
        size_t n = 16 * MiB;
        CUdeviceptr va;
        CUmemGenericAllocationHandle h;
        unsigned char *host;
        CUstream s;
        if (!sim_test_setup() || cuStreamCreate(&s, CU_STREAM_NON_BLOCKING) ||
            cuMemAddressReserve(&va, n, 0, 0, 0) || cuMemCreate(&h, n, &p, 0) ||
            cuMemMap(va, n, 0, h, 0) || cuMemSetAccess(va, n, &a, 1) || cuMemsetD8(va, 0x42, n) ||
            cuMemAllocHost((void **)&host, n))
            _exit(2);
        memset(host, 0, n);
        if (cuMemcpyDtoHAsync(host, va, n, s) != CUDA_SUCCESS)
            _exit(3);
        sleep_ms(4);
        if (cuMemUnmap(va, n) != CUDA_SUCCESS)
            _exit(4);
        if (cuStreamSynchronize(s) != CUDA_ERROR_ILLEGAL_ADDRESS)
            _exit(5);
        _exit(host[n - 1] != 0x42 ? 0 : 6);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status));
    CHECK_EQ_U64(WEXITSTATUS(status), 0);
}

/* The driver's API synchronisation behaviour: a synchronous host-to-device copy from
 * pageable memory returns once the source is staged (64 MiB at 1 GB/s land ~67 ms later),
 * a synchronous memset or device-to-device copy returns before it is done; a
 * device-to-host copy returns when its bytes are there, after everything before it. */
TEST(sync_calls_return_early) {
    size_t n = 64 * MiB;
    CUdeviceptr d, e;
    unsigned char *host = malloc(n), v = 0;
    memset(host, 0x21, n);
    CHECK_CU(cuMemAlloc(&d, n));
    CHECK_CU(cuMemAlloc(&e, 4096));
    double t0 = sim_test_now_ms();
    CHECK_CU(cuMemcpyHtoD(d, host, n));
    memset(host, 0, n); /* staged: the copy no longer reads it */
    CHECK_EQ_U64(cuStreamQuery(CU_STREAM_LEGACY), CUDA_ERROR_NOT_READY); /* still landing */
    double t1 = sim_test_now_ms();
    CHECK_CU(cuMemsetD8(d + n - 1, 0x42, 1));
    CHECK_CU(cuMemcpyDtoD(e, d + n - 4096, 4096));
    double t2 = sim_test_now_ms();
    CHECK_EQ_U64(cuStreamQuery(CU_STREAM_LEGACY), CUDA_ERROR_NOT_READY);
    CHECK_CU(cuMemcpyDtoH(&v, e + 4095, 1));
    double t3 = sim_test_now_ms();
    CHECK(t2 - t1 < 30); /* queued behind the copy, not waiting for it */
    CHECK(t3 - t1 >= 30);
    CHECK_EQ_U64(v, 0x42);
    CHECK_CU(cuMemcpyDtoH(&v, d, 1));
    CHECK_EQ_U64(v, 0x21);
    if (check_current_failed)
        fprintf(stderr, "staged %.1f ms, memset+dtod %.1f ms, landed %.1f ms\n", t1 - t0, t2 - t1,
                t3 - t0);
    CHECK_CU(cuMemFree(d));
    CHECK_CU(cuMemFree(e));
    free(host);
}

/* The child run with SIMCUDA_REPORT: reads 4096 never-written bytes, 4096 written by a
 * memset and 64 written by a kernel; then a kernel faults. */
static int report_child(void) {
    if (!sim_test_setup())
        return 2;
    CUdeviceptr d;
    unsigned char b[8192];
    if (cuMemAlloc(&d, 3 * 4096))
        return 3;
    if (cuMemsetD8(d + 4096, 1, 4096) || cuMemcpyDtoH(b, d, 8192))
        return 4;
    CUfunction f = sim_test_kernel("fill_u32");
    unsigned long long n = 16;
    unsigned v = 5;
    CUdeviceptr k = d + 8192;
    void *args[] = {&k, &n, &v};
    if (!f || cuLaunchKernel(f, 1, 1, 1, 16, 1, 1, 0, NULL, args, NULL) ||
        cuMemcpyDtoH(b, d + 8192, 64))
        return 5;
    CUdeviceptr gone = d + 8 * 4096; /* past the allocation and its guard page */
    void *bad[] = {&gone, &n, &v};
    if (cuLaunchKernel(f, 1, 1, 1, 16, 1, 1, 0, NULL, bad, NULL) != CUDA_SUCCESS)
        return 6;
    return cuCtxSynchronize() == CUDA_ERROR_ILLEGAL_ADDRESS ? 0 : 7;
}

TEST(report_counts_calls_faults_uninit_reads) {
    int status = 0;
    const char *r = sim_test_report_child("test_sim_strict", "report-child", NULL, &status);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(strstr(r, "\"uninit_reads\": 4096,") != NULL);
    CHECK(strstr(r, "\"faults\": 1,") != NULL);
    CHECK(strstr(r, "\"cuMemAlloc_v2\": 1") != NULL);
    CHECK(strstr(r, "\"cuMemcpyDtoH_v2\": 2") != NULL);
    CHECK(strstr(r, "\"cuLaunchKernel\": 2") != NULL);
    if (check_current_failed)
        fprintf(stderr, "report: %s\n", r);
}

/* ---- the race detector: scenarios run in a child with SIMCUDA_RACECHECK=1 -------- */

static int kernel_race_child(int scenario);

/* 0: a kernel on a and a read on b, unordered: a race, whichever runs first (1: the
 * read runs first, the kernel is slow; 2: the kernel is done before the read is even
 * submitted). 3: ordered by an event: no race. 4: cuMemUnmap of memory a queued kernel
 * uses: a race, the later of the two fails. Exit 0 when the outcome is the expected one. */
static int race_child(int scenario) {
    if (!sim_test_setup())
        return 2;
    if (scenario >= 10)
        return kernel_race_child(scenario);
    CUstream a, b;
    CUdeviceptr d;
    unsigned v = 0;
    if (cuStreamCreate(&a, CU_STREAM_NON_BLOCKING) || cuStreamCreate(&b, CU_STREAM_NON_BLOCKING) ||
        cuMemAlloc(&d, 4))
        return 3;
    if (scenario == 4) {
        CUmemAllocationProp p = prop();
        CUmemAccessDesc acc = rw();
        CUmemGenericAllocationHandle h;
        if (cuMemAddressReserve(&d, GRAN, 0, 0, 0) || cuMemCreate(&h, GRAN, &p, 0) ||
            cuMemMap(d, GRAN, 0, h, 0) || cuMemSetAccess(d, GRAN, &acc, 1))
            return 4;
        if (sim_test_slow_store(a, d, 1, 20000))
            return 5;
        /* whichever is checked second fails: the unmap, or the kernel (then the unmap
         * succeeded) */
        CUresult u = cuMemUnmap(d, GRAN);
        return (u == CUDA_SUCCESS || u == CUDA_ERROR_ILLEGAL_ADDRESS) &&
                       cuStreamSynchronize(a) == CUDA_ERROR_ILLEGAL_ADDRESS
                   ? 0
                   : 6;
    }
    if (sim_test_slow_store(a, d, 7, scenario == 1 ? 20000 : 0))
        return 5;
    if (scenario == 2)
        sleep_ms(20); /* done, but nothing told the host */
    if (scenario == 3) {
        CUevent e;
        if (cuEventCreate(&e, 0) || cuEventRecord(e, a) || cuStreamWaitEvent(b, e, 0) ||
            cuEventDestroy(e))
            return 6;
    }
    CUresult r = cuMemcpyDtoHAsync(&v, d, 4, b); /* pageable: waits for the copy */
    CUresult ra = cuStreamSynchronize(a);
    if (scenario == 3)
        return r == CUDA_SUCCESS && ra == CUDA_SUCCESS && v == 7 ? 0 : 7;
    return (r == CUDA_ERROR_ILLEGAL_ADDRESS || ra == CUDA_ERROR_ILLEGAL_ADDRESS) ? 0 : 8;
}

static CUresult incr_copy(CUstream s, CUdeviceptr src, CUdeviceptr dst) {
    void *args[] = {&src, &dst};
    return cuLaunchKernel(sim_test_kernel("incr_copy"), 1, 1, 1, 1, 1, 1, 0, s, args, NULL);
}

static CUresult incr_copy_struct(CUstream s, CUdeviceptr src, CUdeviceptr dst) {
    struct {
        CUdeviceptr src, dst;
    } p = {src, dst};
    void *args[] = {&p};
    return cuLaunchKernel(sim_test_kernel("incr_copy_struct"), 1, 1, 1, 1, 1, 1, 0, s, args, NULL);
}

static CUresult fill_u32(CUstream s, CUdeviceptr p, unsigned v) {
    unsigned long long n = 1;
    void *args[] = {&p, &n, &v};
    return cuLaunchKernel(sim_test_kernel("fill_u32"), 1, 1, 1, 1, 1, 1, 0, s, args, NULL);
}

/* Two kernels on unordered streams a and b, both touching buffer d (x and y are buffers
 * of their own). 10: both read d through a `const unsigned *` parameter; 11: both read it
 * through a struct's read-only field; 12: one reads it, the other writes it; 13: both
 * write it; 14: one writes it through a struct's writable field, the other reads it.
 * 10 and 11 are no race (exit 0 when both streams finish cleanly), 12-14 are (exit 0 when
 * one of the streams reports the sticky error). */
static int kernel_race_child(int scenario) {
    CUstream a, b;
    CUdeviceptr d, x, y;
    if (cuStreamCreate(&a, CU_STREAM_NON_BLOCKING) || cuStreamCreate(&b, CU_STREAM_NON_BLOCKING) ||
        cuMemAlloc(&d, 4) || cuMemAlloc(&x, 4) || cuMemAlloc(&y, 4) || cuMemsetD32(d, 1, 1) ||
        cuCtxSynchronize())
        return 3;
    CUresult ka, kb;
    switch (scenario) {
    case 10:
        ka = incr_copy(a, d, x), kb = incr_copy(b, d, y);
        break;
    case 11:
        ka = incr_copy_struct(a, d, x), kb = incr_copy_struct(b, d, y);
        break;
    case 12:
        ka = incr_copy(a, d, x), kb = fill_u32(b, d, 5);
        break;
    case 13:
        ka = fill_u32(a, d, 4), kb = fill_u32(b, d, 5);
        break;
    default:
        ka = incr_copy_struct(a, x, d), kb = incr_copy(b, d, y);
        break;
    }
    if (ka || kb)
        return 4;
    CUresult ra = cuStreamSynchronize(a), rb = cuStreamSynchronize(b);
    if (scenario <= 11)
        return ra == CUDA_SUCCESS && rb == CUDA_SUCCESS ? 0 : 5;
    return ra == CUDA_ERROR_ILLEGAL_ADDRESS || rb == CUDA_ERROR_ILLEGAL_ADDRESS ? 0 : 6;
}

TEST(races_are_found_whichever_runs_first) {
    for (int scenario = 0; scenario <= 2; scenario++) {
        int status = 0;
        const char *err = sim_test_race_child("test_sim_strict", scenario, &status);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        const char *line = strstr(err, "simcuda: race: ");
        CHECK(line != NULL);
        CHECK(line && strstr(line, "cuLaunchKernel") && strstr(line, "cuMemcpyDtoHAsync_v2"));
        CHECK(line && !strstr(line + 1, "simcuda: race: ")); /* one line */
        if (check_current_failed)
            fprintf(stderr, "scenario %d (status %d): %s\n", scenario, status, err);
    }
}

TEST(ordered_work_is_no_race) {
    int status = 0;
    const char *err = sim_test_race_child("test_sim_strict", 3, &status);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(strstr(err, "simcuda: race") == NULL);
    if (check_current_failed)
        fprintf(stderr, "%s\n", err);
}

TEST(unmap_under_queued_kernel_is_a_race) {
    int status = 0;
    const char *err = sim_test_race_child("test_sim_strict", 4, &status);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    const char *line = strstr(err, "simcuda: race: ");
    CHECK(line && strstr(line, "cuMemUnmap") && strstr(line, "cuLaunchKernel"));
}

TEST(kernels_reading_one_buffer_are_no_race) {
    for (int scenario = 10; scenario <= 11; scenario++) {
        int status = 0;
        const char *err = sim_test_race_child("test_sim_strict", scenario, &status);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        CHECK(strstr(err, "simcuda: race") == NULL);
        if (check_current_failed)
            fprintf(stderr, "scenario %d (status %d): %s\n", scenario, status, err);
    }
}

TEST(kernels_writing_what_another_touches_race) {
    for (int scenario = 12; scenario <= 14; scenario++) {
        int status = 0;
        const char *err = sim_test_race_child("test_sim_strict", scenario, &status);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        const char *line = strstr(err, "simcuda: race: ");
        CHECK(line && strstr(line, "writing"));
        CHECK(line && !strstr(line + 1, "simcuda: race: "));
        if (check_current_failed)
            fprintf(stderr, "scenario %d (status %d): %s\n", scenario, status, err);
    }
}

/* One link per direction (1 GB/s here): two 16 MiB host-to-device copies on two streams
 * share it, so both have landed no earlier than the time of 32 MiB (alone, each would
 * take the time of 16 MiB). A lower bound, so a loaded machine cannot fail it: load only
 * ever makes copies slower. */
TEST(same_direction_copies_share_the_link) {
    size_t n = 16 * MiB;
    CUdeviceptr d[2];
    CUstream s[2];
    unsigned char *src;
    CHECK_CU(cuMemAllocHost((void **)&src, n));
    memset(src, 0x5a, n);
    for (int i = 0; i < 2; i++) {
        CHECK_CU(cuStreamCreate(&s[i], CU_STREAM_NON_BLOCKING));
        CHECK_CU(cuMemAlloc(&d[i], n));
    }
    double t0 = sim_test_now_ms();
    for (int i = 0; i < 2; i++)
        CHECK_CU(cuMemcpyHtoDAsync(d[i], src, n, s[i]));
    CHECK_CU(cuStreamSynchronize(s[0]));
    CHECK_CU(cuStreamSynchronize(s[1]));
    double took = sim_test_now_ms() - t0, alone = (double)n / 1e6; /* ms at 1 GB/s */
    CHECK(took >= 2 * alone - 1);
    if (check_current_failed)
        fprintf(stderr, "two copies of %.1f ms each took %.1f ms\n", alone, took);
    for (int i = 0; i < 2; i++) {
        CHECK_CU(cuMemFree(d[i]));
        CHECK_CU(cuStreamDestroy(s[i]));
    }
    CHECK_CU(cuMemFreeHost(src));
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "report-child") == 0)
        return report_child();
    if (argc > 2 && strcmp(argv[1], "race-child") == 0)
        return race_child(atoi(argv[2]));
    /* the landing tests race on purpose: the detector would stop them */
    static const char *const env[] = {"SIMCUDA_PCIE_GBPS", "1", "SIMCUDA_RACECHECK", "0", NULL};
    if (!sim_test_restart_with(argv, env))
        return 1;
    RUN(races_are_found_whichever_runs_first);
    RUN(ordered_work_is_no_race);
    RUN(unmap_under_queued_kernel_is_a_race);
    RUN(kernels_reading_one_buffer_are_no_race);
    RUN(kernels_writing_what_another_touches_race);
    RUN(unmap_during_copy_is_caught);
    RUN(report_counts_calls_faults_uninit_reads);
    if (!sim_test_setup())
        return 1;
    RUN(fresh_alloc_is_poison);
    RUN(fresh_and_reused_physical_memory_is_poison);
    RUN(copies_land_late);
    RUN(same_direction_copies_share_the_link);
    RUN(sync_calls_return_early);
    return check_summary();
}
