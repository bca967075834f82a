/*
 * capture_pressure.c — stream capture in GLOBAL and THREAD_LOCAL mode while liboffload
 * must restore and evict to let the captured kernels' buffers in.
 *
 *   capture_pressure MODULE [blocking]     (MODULE: pressure_kernels)
 *
 * A, B, C, D: 8 MiB each. C and D are used last (on stream u), so under a 16 MiB budget A
 * and B are evicted when a capture on s begins. The capture forks onto t and joins back:
 * A += 1 on s, B += 2 on t, then A = B ^ MASK on s. liboffload restores A and B while the
 * program captures: the driver work that takes (cuMemCreate, cuMemMap, host waits) is
 * liboffload's, not the program's, and must not invalidate the capture or fail as a
 * "potentially unsafe" call. Between captures and launches C and D are used again, so
 * every graph launch restores A and B. The same program on the bare driver gives the same
 * words; it checks them against a host model and prints "checksum: XXXXXXXX".
 * With `blocking`, s, t and u are blocking streams: while one captures the legacy stream
 * may not be used (CUDA_ERROR_STREAM_CAPTURE_IMPLICIT, the capture invalidated), and every
 * buffer is also used on it, so liboffload must not order its evictions after it then.
 */
#include "tests/progs/prog_check.h"

#include <cuda.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WORDS (2u << 20) /* 8 MiB of unsigned */
#define MASK 0x5a5a5a5au

static CUfunction add, xor_copy;
static int legacy_too;

static void add_u32(CUstream s, CUdeviceptr *p, unsigned delta) {
    static unsigned long long n = WORDS;
    void *args[] = {p, &n, &delta};
    PROG_CHECK_CU(cuLaunchKernel(add, WORDS / 256, 1, 1, 256, 1, 1, 0, s, args, NULL));
}

static void xor_copy_u32(CUstream s, CUdeviceptr *dst, CUdeviceptr *src, unsigned mask) {
    static unsigned long long n = WORDS;
    void *args[] = {dst, src, &n, &mask};
    PROG_CHECK_CU(cuLaunchKernel(xor_copy, WORDS / 256, 1, 1, 256, 1, 1, 0, s, args, NULL));
}

/* The graph: A += 1 on s and B += 2 on t (two branches), then A = B ^ MASK. */
static CUgraphExec capture(CUstreamCaptureMode mode, CUstream s, CUstream t, CUdeviceptr *a,
                           CUdeviceptr *b) {
    CUevent fork_ev, join_ev;
    CUgraph g;
    CUgraphExec exec;
    PROG_CHECK_CU(cuEventCreate(&fork_ev, CU_EVENT_DISABLE_TIMING));
    PROG_CHECK_CU(cuEventCreate(&join_ev, CU_EVENT_DISABLE_TIMING));
    PROG_CHECK_CU(cuStreamBeginCapture(s, mode));
    PROG_CHECK_CU(cuEventRecord(fork_ev, s));
    PROG_CHECK_CU(cuStreamWaitEvent(t, fork_ev, 0));
    add_u32(s, a, 1);
    add_u32(t, b, 2);
    PROG_CHECK_CU(cuEventRecord(join_ev, t));
    PROG_CHECK_CU(cuStreamWaitEvent(s, join_ev, 0));
    xor_copy_u32(s, a, b, MASK);
    PROG_CHECK_CU(cuStreamEndCapture(s, &g));
    PROG_CHECK_CU(cuGraphInstantiate(&exec, g, 0));
    PROG_CHECK_CU(cuGraphDestroy(g));
    PROG_CHECK_CU(cuEventDestroy(fork_ev));
    PROG_CHECK_CU(cuEventDestroy(join_ev));
    return exec;
}

/* C and D used again on u (and the host waits): A and B go out under the budget. */
static void use_c_d(CUstream u, CUdeviceptr *c, CUdeviceptr *d, unsigned *hc, unsigned *hd,
                    unsigned delta) {
    add_u32(u, c, delta);
    add_u32(u, d, delta + 1);
    if (legacy_too) { /* blocking mode: the legacy stream uses C and D too */
        add_u32(NULL, c, 0);
        add_u32(NULL, d, 0);
    }
    PROG_CHECK_CU(cuStreamSynchronize(u));
    PROG_CHECK_CU(cuStreamSynchronize(NULL));
    for (unsigned i = 0; i < WORDS; i++) {
        hc[i] += delta;
        hd[i] += delta + 1;
    }
}

static void graph_model(unsigned *ha, unsigned *hb) {
    for (unsigned i = 0; i < WORDS; i++) {
        hb[i] += 2;
        ha[i] = hb[i] ^ MASK;
    }
}

static uint32_t check_and_sum(CUdeviceptr p, const unsigned *model, unsigned *tmp, char name,
                              uint32_t sum) {
    PROG_CHECK_CU(cuMemcpyDtoH(tmp, p, WORDS * 4));
    for (unsigned i = 0; i < WORDS; i++) {
        if (tmp[i] != model[i]) {
            fprintf(stderr, "capture_pressure: %c[%u] is %08x, not %08x\n", name, i, tmp[i],
                    model[i]);
            exit(1);
        }
        sum = (sum ^ tmp[i]) * 16777619u;
    }
    return sum;
}

int main(int argc, char **argv) {
    if (argc != 2 && (argc != 3 || strcmp(argv[2], "blocking") != 0))
        return 2;
    unsigned flags = argc == 3 ? 0 : CU_STREAM_NON_BLOCKING;
    legacy_too = flags == 0;
    CUdevice dev;
    CUmodule mod;
    CUstream s, t, u;
    CUdeviceptr a, b, c, d;
    unsigned *h[5];
    for (int k = 0; k < 5; k++)
        if (!(h[k] = malloc(WORDS * sizeof *h[k])))
            return 1;
    prog_primary_context(&dev);
    PROG_CHECK_CU(cuModuleLoad(&mod, argv[1]));
    PROG_CHECK_CU(cuModuleGetFunction(&add, mod, "add_u32"));
    PROG_CHECK_CU(cuModuleGetFunction(&xor_copy, mod, "xor_copy_u32"));
    PROG_CHECK_CU(cuStreamCreate(&s, flags));
    PROG_CHECK_CU(cuStreamCreate(&t, flags));
    PROG_CHECK_CU(cuStreamCreate(&u, flags));
    for (unsigned i = 0; i < WORDS; i++) {
        h[0][i] = i * 2654435761u;
        h[1][i] = i ^ 0x12345678u;
        h[2][i] = 3 * i;
        h[3][i] = ~i;
    }
    CUdeviceptr *bufs[4] = {&a, &b, &c, &d};
    for (int k = 0; k < 4; k++) {
        PROG_CHECK_CU(cuMemAlloc(bufs[k], WORDS * 4));
        PROG_CHECK_CU(cuMemcpyHtoD(*bufs[k], h[k], WORDS * 4));
    }
    add_u32(s, &a, 0); /* A and B have users s and t, C and D u */
    add_u32(t, &b, 0);
    if (flags == 0) /* and the legacy stream */
        for (int k = 0; k < 4; k++)
            add_u32(NULL, bufs[k], 0);
    PROG_CHECK_CU(cuCtxSynchronize());
    use_c_d(u, &c, &d, h[2], h[3], 3);

    const CUstreamCaptureMode modes[2] = {CU_STREAM_CAPTURE_MODE_GLOBAL,
                                          CU_STREAM_CAPTURE_MODE_THREAD_LOCAL};
    CUgraphExec exec[2];
    for (int m = 0; m < 2; m++) {
        exec[m] = capture(modes[m], s, t, &a, &b); /* A and B restored while capturing */
        use_c_d(u, &c, &d, h[2], h[3], 5 + (unsigned)m);
    }
    for (int round = 0; round < 2; round++)
        for (int m = 0; m < 2; m++) {
            PROG_CHECK_CU(cuGraphLaunch(exec[m], s)); /* restores A and B */
            PROG_CHECK_CU(cuStreamSynchronize(s));
            graph_model(h[0], h[1]);
            use_c_d(u, &c, &d, h[2], h[3], 7);
        }

    uint32_t sum = 2166136261u;
    const char names[4] = {'A', 'B', 'C', 'D'};
    for (int k = 0; k < 4; k++)
        sum = check_and_sum(*bufs[k], h[k], h[4], names[k], sum);
    for (int m = 0; m < 2; m++)
        PROG_CHECK_CU(cuGraphExecDestroy(exec[m]));
    for (int k = 0; k < 4; k++)
        PROG_CHECK_CU(cuMemFree(*bufs[k]));
    for (int k = 0; k < 5; k++)
        free(h[k]);
    printf("checksum: %08x\n", sum);
    return 0;
}
