/*
 * graph_replay.c — graph launches of kernels whose buffer liboffload has evicted.
 *
 *   graph_replay MODULE
 *
 * A, B, C: 8 MiB each. A kernel on A is captured into a graph while A is resident; then B
 * and C are filled (under a 16 MiB budget that evicts A), and the graph is replayed twice
 * (replays never pass through cuLaunchKernel: liboffload restores A at cuGraphLaunch).
 * A second capture is made while A is evicted (its restore must complete before the
 * captured launch returns). Then A is read back: every word must be pattern + 3.
 * Prints "graph: ok".
 */
#include "tests/progs/prog_check.h"

#include <cuda.h>
#include <stdio.h>
#include <stdlib.h>

#define WORDS (2u << 20) /* 8 MiB of unsigned */

static void capture(CUstream s, CUfunction add, CUdeviceptr *a, CUgraphExec *exec) {
    static unsigned long long n = WORDS;
    static unsigned delta = 1;
    void *args[] = {a, &n, &delta};
    CUgraph g;
    PROG_CHECK_CU(cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_GLOBAL));
    PROG_CHECK_CU(cuLaunchKernel(add, WORDS / 256, 1, 1, 256, 1, 1, 0, s, args, NULL));
    PROG_CHECK_CU(cuStreamEndCapture(s, &g));
    PROG_CHECK_CU(cuGraphInstantiate(exec, g, 0));
    PROG_CHECK_CU(cuGraphDestroy(g)); /* the executable graph keeps what it needs */
}

int main(int argc, char **argv) {
    if (argc != 2)
        return 2;
    CUdevice dev;
    CUmodule mod;
    CUfunction add;
    CUstream s;
    CUdeviceptr a, b, c;
    unsigned *host = malloc(WORDS * sizeof *host);
    if (!host)
        return 1;
    prog_primary_context(&dev);
    PROG_CHECK_CU(cuModuleLoad(&mod, argv[1]));
    PROG_CHECK_CU(cuModuleGetFunction(&add, mod, "add_u32"));
    PROG_CHECK_CU(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    for (unsigned i = 0; i < WORDS; i++)
        host[i] = i * 2654435761u;
    PROG_CHECK_CU(cuMemAlloc(&a, WORDS * 4));
    PROG_CHECK_CU(cuMemcpyHtoD(a, host, WORDS * 4));
    CUgraphExec first, second;
    capture(s, add, &a, &first);
    PROG_CHECK_CU(cuMemAlloc(&b, WORDS * 4));
    PROG_CHECK_CU(cuMemsetD32(b, 7, WORDS));
    PROG_CHECK_CU(cuMemAlloc(&c, WORDS * 4));
    PROG_CHECK_CU(cuMemsetD32(c, 9, WORDS));
    PROG_CHECK_CU(cuGraphLaunch(first, s));
    PROG_CHECK_CU(cuStreamSynchronize(s));
    PROG_CHECK_CU(cuMemsetD32(b, 8, WORDS)); /* B and C again: A goes out */
    PROG_CHECK_CU(cuMemsetD32(c, 10, WORDS));
    capture(s, add, &a, &second);
    PROG_CHECK_CU(cuMemsetD32(b, 11, WORDS));
    PROG_CHECK_CU(cuMemsetD32(c, 12, WORDS));
    PROG_CHECK_CU(cuGraphLaunch(first, s));
    PROG_CHECK_CU(cuGraphLaunch(second, s));
    PROG_CHECK_CU(cuStreamSynchronize(s));
    PROG_CHECK_CU(cuMemcpyDtoH(host, a, WORDS * 4));
    for (unsigned i = 0; i < WORDS; i++)
        if (host[i] != i * 2654435761u + 3) {
            fprintf(stderr, "graph_replay: word %u is %08x\n", i, host[i]);
            return 1;
        }
    PROG_CHECK_CU(cuGraphExecDestroy(first));
    PROG_CHECK_CU(cuGraphExecDestroy(second));
    PROG_CHECK_CU(cuMemFree(a));
    PROG_CHECK_CU(cuMemFree(b));
    PROG_CHECK_CU(cuMemFree(c));
    free(host);
    printf("graph: ok\n");
    return 0;
}
