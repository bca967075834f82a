/*
 * state.c — the runtime instance and its lock.
 */
#include "runtime/state.h"

struct runtime offload_runtime = {
    .lock = OFFLOAD_LOCK_INITIALIZER,
};
