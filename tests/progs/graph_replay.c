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
#include <cuda.h>
#include <stdio.h>
#include <stdlib.h>

#define WORDS (2u << 20) /* 8 MiB of unsigned */

#define CHECK(call)                                                                                \
    do {                                                                                           \
        CUresult r_ = (call);                                                                      \
        if (r_ != CUDA_SUCCESS) {                                                                  \
            const char *n_ = "?";                                                                  \
            cuGetErrorName(r_, &n_);                                                               \
            fprintf(stderr, "graph_replay: line %d: %s: %s\n", __LINE__, #call, n_);               \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

static int capture(CUstream s, CUfunction add, CUdeviceptr *a, CUgraphExec *exec) {
    static unsigned long long n = WORDS;
    static unsigned delta = 1;
    void *args[] = {a, &n, &delta};
    CUgraph g;
    CHECK(cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_GLOBAL));
    CHECK(cuLaunchKernel(add, WORDS / 256, 1, 1, 256, 1, 1, 0, s, args, NULL));
    CHECK(cuStreamEndCapture(s, &g));
    CHECK(cuGraphInstantiate(exec, g, 0));
    CHECK(cuGraphDestroy(g)); /* the executable graph keeps what it needs */
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 2)
        return 2;
    CUdevice dev;
    CUcontext ctx;
    CUmodule mod;
    CUfunction add;
    CUstream s;
    CUdeviceptr a, b, c;
    unsigned *host = malloc(WORDS * sizeof *host);
    if (!host)
        return 1;
    CHECK(cuInit(0));
    CHECK(cuDeviceGet(&dev, 0));
    CHECK(cuDevicePrimaryCtxRetain(&ctx, dev));
    CHECK(cuCtxSetCurrent(ctx));
    CHECK(cuModuleLoad(&mod, argv[1]));
    CHECK(cuModuleGetFunction(&add, mod, "add_u32"));
    CHECK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    for (unsigned i = 0; i < WORDS; i++)
        host[i] = i * 2654435761u;
    CHECK(cuMemAlloc(&a, WORDS * 4));
    CHECK(cuMemcpyHtoD(a, host, WORDS * 4));
    CUgraphExec first, second;
    if (capture(s, add, &a, &first))
        return 1;
    CHECK(cuMemAlloc(&b, WORDS * 4));
    CHECK(cuMemsetD32(b, 7, WORDS));
    CHECK(cuMemAlloc(&c, WORDS * 4));
    CHECK(cuMemsetD32(c, 9, WORDS));
    CHECK(cuGraphLaunch(first, s));
    CHECK(cuStreamSynchronize(s));
    CHECK(cuMemsetD32(b, 8, WORDS)); /* B and C again: A goes out */
    CHECK(cuMemsetD32(c, 10, WORDS));
    if (capture(s, add, &a, &second))
        return 1;
    CHECK(cuMemsetD32(b, 11, WORDS));
    CHECK(cuMemsetD32(c, 12, WORDS));
    CHECK(cuGraphLaunch(first, s));
    CHECK(cuGraphLaunch(second, s));
    CHECK(cuStreamSynchronize(s));
    CHECK(cuMemcpyDtoH(host, a, WORDS * 4));
    for (unsigned i = 0; i < WORDS; i++)
        if (host[i] != i * 2654435761u + 3) {
            fprintf(stderr, "graph_replay: word %u is %08x\n", i, host[i]);
            return 1;
        }
    CHECK(cuGraphExecDestroy(first));
    CHECK(cuGraphExecDestroy(second));
    CHECK(cuMemFree(a));
    CHECK(cuMemFree(b));
    CHECK(cuMemFree(c));
    free(host);
    printf("graph: ok\n");
    return 0;
}
