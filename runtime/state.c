/*
 * state.c — the runtime instance and its lock.
 */
#include "runtime/state.h"

struct runtime offload_runtime = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
};

void runtime_lock(void) {
    pthread_mutex_lock(&offload_runtime.lock);
}

void runtime_unlock(void) {
    pthread_mutex_unlock(&offload_runtime.lock);
}
