/*
 * hooks_launch.c — kernel launches, graphs, stream capture (its begin, its joins by
 * cuStreamWaitEvent, its end), stream destruction.
 *
 * A launch tells the runtime its function, stream and parameters first
 * (runtime_begin_launch), so every tracked allocation the parameters point into is
 * resident (or being restored, the stream ordered after) and stays so until the launch is
 * queued. Graph replays never pass through
 * cuLaunchKernel: instantiation reports the graph so the runtime can learn what its
 * kernel nodes use, and cuGraphLaunch makes that resident.
 */
#include "interpose/hook.h"

static CUresult launch(__typeof__(&cuLaunchKernel) real, CUfunction f, unsigned gx, unsigned gy,
                       unsigned gz, unsigned bx, unsigned by, unsigned bz, unsigned shared,
                       CUstream stream, void **params, void **extra, CUstream runs_on) {
    if (!real)
        return driver_missing();
    return HOOK_BRACKETED(runtime_begin_launch(f, runs_on, params, extra),
                          real(f, gx, gy, gz, bx, by, bz, shared, stream, params, extra));
}

OFFLOAD_EXPORT CUresult cuLaunchKernel(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
                                       unsigned int gridDimZ, unsigned int blockDimX,
                                       unsigned int blockDimY, unsigned int blockDimZ,
                                       unsigned int sharedMemBytes, CUstream hStream,
                                       void **kernelParams, void **extra) {
    return launch(driver()->cuLaunchKernel, f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY,
                  blockDimZ, sharedMemBytes, hStream, kernelParams, extra,
                  hook_legacy_stream(hStream));
}

OFFLOAD_EXPORT CUresult cuLaunchKernel_ptsz(CUfunction f, unsigned int gridDimX,
                                            unsigned int gridDimY, unsigned int gridDimZ,
                                            unsigned int blockDimX, unsigned int blockDimY,
                                            unsigned int blockDimZ, unsigned int sharedMemBytes,
                                            CUstream hStream, void **kernelParams, void **extra) {
    return launch(driver()->cuLaunchKernel_ptsz, f, gridDimX, gridDimY, gridDimZ, blockDimX,
                  blockDimY, blockDimZ, sharedMemBytes, hStream, kernelParams, extra,
                  hook_per_thread_stream(hStream));
}

static CUresult launch_ex(__typeof__(&cuLaunchKernelEx) real, const CUlaunchConfig *config,
                          CUfunction f, void **params, void **extra,
                          CUstream (*normalise)(CUstream)) {
    if (!real)
        return driver_missing();
    if (!config) /* the driver rejects the launch itself */
        return real(config, f, params, extra);
    return HOOK_BRACKETED(runtime_begin_launch(f, normalise(config->hStream), params, extra),
                          real(config, f, params, extra));
}

OFFLOAD_EXPORT CUresult cuLaunchKernelEx(const CUlaunchConfig *config, CUfunction f,
                                         void **kernelParams, void **extra) {
    return launch_ex(driver()->cuLaunchKernelEx, config, f, kernelParams, extra,
                     hook_legacy_stream);
}

OFFLOAD_EXPORT CUresult cuLaunchKernelEx_ptsz(const CUlaunchConfig *config, CUfunction f,
                                              void **kernelParams, void **extra) {
    return launch_ex(driver()->cuLaunchKernelEx_ptsz, config, f, kernelParams, extra,
                     hook_per_thread_stream);
}

static CUresult launch_cooperative(__typeof__(&cuLaunchCooperativeKernel) real, CUfunction f,
                                   unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                                   unsigned bz, unsigned shared, CUstream stream, void **params,
                                   CUstream runs_on) {
    if (!real)
        return driver_missing();
    return HOOK_BRACKETED(runtime_begin_launch(f, runs_on, params, NULL),
                          real(f, gx, gy, gz, bx, by, bz, shared, stream, params));
}

OFFLOAD_EXPORT CUresult cuLaunchCooperativeKernel(CUfunction f, unsigned int gridDimX,
                                                  unsigned int gridDimY, unsigned int gridDimZ,
                                                  unsigned int blockDimX, unsigned int blockDimY,
                                                  unsigned int blockDimZ,
                                                  unsigned int sharedMemBytes, CUstream hStream,
                                                  void **kernelParams) {
    return launch_cooperative(driver()->cuLaunchCooperativeKernel, f, gridDimX, gridDimY, gridDimZ,
                              blockDimX, blockDimY, blockDimZ, sharedMemBytes, hStream,
                              kernelParams, hook_legacy_stream(hStream));
}

OFFLOAD_EXPORT CUresult cuLaunchCooperativeKernel_ptsz(
    CUfunction f, unsigned int gridDimX, unsigned int gridDimY, unsigned int gridDimZ,
    unsigned int blockDimX, unsigned int blockDimY, unsigned int blockDimZ,
    unsigned int sharedMemBytes, CUstream hStream, void **kernelParams) {
    return launch_cooperative(driver()->cuLaunchCooperativeKernel_ptsz, f, gridDimX, gridDimY,
                              gridDimZ, blockDimX, blockDimY, blockDimZ, sharedMemBytes, hStream,
                              kernelParams, hook_per_thread_stream(hStream));
}

/* --- graphs -------------------------------------------------------------------------- */

static CUresult instantiated(CUresult rc, CUgraphExec *exec, CUgraph graph) {
    if (rc == CUDA_SUCCESS && exec && *exec)
        runtime_graph_instantiated(*exec, graph);
    return rc;
}

/* The 10.0 and 11.0 ABIs (same prototype); cuda.h now maps cuGraphInstantiate to
 * cuGraphInstantiateWithFlags. */
OFFLOAD_EXPORT CUresult hook_cuGraphInstantiate_v1(CUgraphExec *phGraphExec, CUgraph hGraph,
                                                   CUgraphNode *phErrorNode, char *logBuffer,
                                                   size_t bufferSize) {
    if (!driver()->cuGraphInstantiate_v1)
        return driver_missing();
    return instantiated(
        driver()->cuGraphInstantiate_v1(phGraphExec, hGraph, phErrorNode, logBuffer, bufferSize),
        phGraphExec, hGraph);
}

OFFLOAD_EXPORT CUresult cuGraphInstantiate_v2(CUgraphExec *phGraphExec, CUgraph hGraph,
                                              CUgraphNode *phErrorNode, char *logBuffer,
                                              size_t bufferSize) {
    if (!driver()->cuGraphInstantiate_v2)
        return driver_missing();
    return instantiated(
        driver()->cuGraphInstantiate_v2(phGraphExec, hGraph, phErrorNode, logBuffer, bufferSize),
        phGraphExec, hGraph);
}

OFFLOAD_EXPORT CUresult cuGraphInstantiateWithFlags(CUgraphExec *phGraphExec, CUgraph hGraph,
                                                    unsigned long long flags) {
    if (!driver()->cuGraphInstantiateWithFlags)
        return driver_missing();
    return instantiated(driver()->cuGraphInstantiateWithFlags(phGraphExec, hGraph, flags),
                        phGraphExec, hGraph);
}

/* An upload requested through the params (CUDA_GRAPH_INSTANTIATE_FLAG_UPLOAD) runs no
 * kernel, so it needs nothing resident. */
OFFLOAD_EXPORT CUresult cuGraphInstantiateWithParams(CUgraphExec *phGraphExec, CUgraph hGraph,
                                                     CUDA_GRAPH_INSTANTIATE_PARAMS *params) {
    if (!driver()->cuGraphInstantiateWithParams)
        return driver_missing();
    return instantiated(driver()->cuGraphInstantiateWithParams(phGraphExec, hGraph, params),
                        phGraphExec, hGraph);
}

OFFLOAD_EXPORT CUresult cuGraphInstantiateWithParams_ptsz(CUgraphExec *phGraphExec, CUgraph hGraph,
                                                          CUDA_GRAPH_INSTANTIATE_PARAMS *params) {
    if (!driver()->cuGraphInstantiateWithParams_ptsz)
        return driver_missing();
    return instantiated(driver()->cuGraphInstantiateWithParams_ptsz(phGraphExec, hGraph, params),
                        phGraphExec, hGraph);
}

static CUresult graph_launch(__typeof__(&cuGraphLaunch) real, CUgraphExec exec, CUstream stream,
                             CUstream runs_on) {
    if (!real)
        return driver_missing();
    return HOOK_BRACKETED(runtime_begin_graph_launch(exec, runs_on), real(exec, stream));
}

OFFLOAD_EXPORT CUresult cuGraphLaunch(CUgraphExec hGraphExec, CUstream hStream) {
    return graph_launch(driver()->cuGraphLaunch, hGraphExec, hStream, hook_legacy_stream(hStream));
}

OFFLOAD_EXPORT CUresult cuGraphLaunch_ptsz(CUgraphExec hGraphExec, CUstream hStream) {
    return graph_launch(driver()->cuGraphLaunch_ptsz, hGraphExec, hStream,
                        hook_per_thread_stream(hStream));
}

/* An update gives the exec the parameters of hGraph's nodes: what the runtime learnt at
 * instantiation is replaced by what hGraph's kernel nodes use. */
static CUresult updated(CUresult rc, CUgraphExec exec, CUgraph graph) {
    if (rc == CUDA_SUCCESS) {
        runtime_graph_exec_destroyed(exec);
        runtime_graph_instantiated(exec, graph);
    }
    return rc;
}

OFFLOAD_EXPORT CUresult cuGraphExecUpdate_v2(CUgraphExec hGraphExec, CUgraph hGraph,
                                             CUgraphExecUpdateResultInfo *resultInfo) {
    if (!driver()->cuGraphExecUpdate_v2)
        return driver_missing();
    return updated(driver()->cuGraphExecUpdate_v2(hGraphExec, hGraph, resultInfo), hGraphExec,
                   hGraph);
}

/* The 10.2 ABI, exported as "cuGraphExecUpdate" (hook.h). */
OFFLOAD_EXPORT CUresult hook_cuGraphExecUpdate_v1(CUgraphExec hGraphExec, CUgraph hGraph,
                                                  CUgraphNode *hErrorNode_out,
                                                  CUgraphExecUpdateResult *updateResult_out) {
    if (!driver()->cuGraphExecUpdate_v1)
        return driver_missing();
    return updated(
        driver()->cuGraphExecUpdate_v1(hGraphExec, hGraph, hErrorNode_out, updateResult_out),
        hGraphExec, hGraph);
}

/* Forgotten before the driver frees the handle: once it is freed the driver may hand
 * the same value to a new graph (or stream) on another thread. */
OFFLOAD_EXPORT CUresult cuGraphExecDestroy(CUgraphExec hGraphExec) {
    if (!driver()->cuGraphExecDestroy)
        return driver_missing();
    runtime_graph_exec_destroyed(hGraphExec);
    return driver()->cuGraphExecDestroy(hGraphExec);
}

OFFLOAD_EXPORT CUresult cuStreamDestroy_v2(CUstream hStream) {
    if (!driver()->cuStreamDestroy_v2)
        return driver_missing();
    runtime_stream_destroyed(hStream);
    return driver()->cuStreamDestroy_v2(hStream);
}

/* Stream capture: the runtime marks the stream's work before its capture begins and
 * counts the captures in progress (runtime.h). A capture ends at cuStreamEndCapture on
 * its stream, with a graph or invalidated. */
#define CAPTURE_BEGIN(stream, entry, args)                                                         \
    __extension__({                                                                                \
        runtime_capture_prepare(stream);                                                           \
        CUresult capture_rc_ = HOOK_FORWARD(entry, args);                                          \
        runtime_capture_begun(stream, capture_rc_);                                                \
        capture_rc_;                                                                               \
    })

/* A wait on an event recorded in a capture makes the stream join it: while any capture is
 * in progress, the wait is made like a capture's begin (the stream's mark first, under
 * the runtime lock), so what the stream used before it joined can still be evicted. */
static CUresult stream_wait(__typeof__(&cuStreamWaitEvent) real, CUstream stream, CUevent event,
                            unsigned flags, CUstream runs_on) {
    if (!real)
        return driver_missing();
    if (!runtime_captures_in_progress())
        return real(stream, event, flags);
    runtime_capture_prepare(runs_on);
    CUresult r = real(stream, event, flags);
    runtime_capture_joined(runs_on, r);
    return r;
}

OFFLOAD_EXPORT CUresult cuStreamWaitEvent(CUstream hStream, CUevent hEvent, unsigned int Flags) {
    return stream_wait(driver()->cuStreamWaitEvent, hStream, hEvent, Flags,
                       hook_legacy_stream(hStream));
}

OFFLOAD_EXPORT CUresult cuStreamWaitEvent_ptsz(CUstream hStream, CUevent hEvent,
                                               unsigned int Flags) {
    return stream_wait(driver()->cuStreamWaitEvent_ptsz, hStream, hEvent, Flags,
                       hook_per_thread_stream(hStream));
}

static CUresult capture_ended(CUresult r) {
    runtime_capture_ended(r);
    return r;
}

/* The 10.0 ABI (GLOBAL mode), exported as "cuStreamBeginCapture" (hook.h). */
OFFLOAD_EXPORT CUresult hook_cuStreamBeginCapture_v1(CUstream hStream) {
    return CAPTURE_BEGIN(hook_legacy_stream(hStream), cuStreamBeginCapture_v1, (hStream));
}

OFFLOAD_EXPORT CUresult cuStreamBeginCapture_ptsz(CUstream hStream) {
    return CAPTURE_BEGIN(hook_per_thread_stream(hStream), cuStreamBeginCapture_ptsz, (hStream));
}

OFFLOAD_EXPORT CUresult cuStreamBeginCapture_v2(CUstream hStream, CUstreamCaptureMode mode) {
    return CAPTURE_BEGIN(hook_legacy_stream(hStream), cuStreamBeginCapture_v2, (hStream, mode));
}

OFFLOAD_EXPORT CUresult cuStreamBeginCapture_v2_ptsz(CUstream hStream, CUstreamCaptureMode mode) {
    return CAPTURE_BEGIN(hook_per_thread_stream(hStream), cuStreamBeginCapture_v2_ptsz,
                         (hStream, mode));
}

OFFLOAD_EXPORT CUresult cuStreamBeginCaptureToGraph(CUstream hStream, CUgraph hGraph,
                                                    const CUgraphNode *dependencies,
                                                    const CUgraphEdgeData *dependencyData,
                                                    size_t numDependencies,
                                                    CUstreamCaptureMode mode) {
    return CAPTURE_BEGIN(hook_legacy_stream(hStream), cuStreamBeginCaptureToGraph,
                         (hStream, hGraph, dependencies, dependencyData, numDependencies, mode));
}

OFFLOAD_EXPORT CUresult cuStreamBeginCaptureToGraph_ptsz(CUstream hStream, CUgraph hGraph,
                                                         const CUgraphNode *dependencies,
                                                         const CUgraphEdgeData *dependencyData,
                                                         size_t numDependencies,
                                                         CUstreamCaptureMode mode) {
    return CAPTURE_BEGIN(hook_per_thread_stream(hStream), cuStreamBeginCaptureToGraph_ptsz,
                         (hStream, hGraph, dependencies, dependencyData, numDependencies, mode));
}

OFFLOAD_EXPORT CUresult cuStreamEndCapture(CUstream hStream, CUgraph *phGraph) {
    return capture_ended(HOOK_FORWARD(cuStreamEndCapture, (hStream, phGraph)));
}

OFFLOAD_EXPORT CUresult cuStreamEndCapture_ptsz(CUstream hStream, CUgraph *phGraph) {
    return capture_ended(HOOK_FORWARD(cuStreamEndCapture_ptsz, (hStream, phGraph)));
}
