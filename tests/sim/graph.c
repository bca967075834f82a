/*
 * graph.c — stream capture and graphs.
 */
#include "tests/sim/sim.h"

CUresult sim_capture_op(struct sim_stream *s, struct sim_op *op) {
    (void)s;
    sim_op_free(op);
    return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
}
