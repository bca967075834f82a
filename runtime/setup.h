/*
 * setup.h — bringing the runtime up: the configuration in the library constructor (no CUDA
 * call: it runs in every process the program spawns), the CUDA side at the first hooked
 * call that has a current context, and fork safety.
 */
#ifndef OFFLOAD_SETUP_H
#define OFFLOAD_SETUP_H

#include "runtime/state.h"

/* Config + log level + fork handler. Exits with status 2 on a config error. */
void setup_early(struct runtime *rt);

/* Lock held. True when the runtime can track memory: set up now or before. False with no
 * current context yet (try again later), in a forked child, or after a failed set-up. */
bool setup_cuda(struct runtime *rt);

/* Lock held. Makes the runtime's context current for the calling thread if it is not;
 * returns whether it pushed, to pass to setup_context_leave. */
bool setup_context_enter(struct runtime *rt);
void setup_context_leave(bool pushed);

/* Lock held, after setup_cuda. Where the calling thread's allocations belong: the context
 * liboffload manages, another context on the same device (the program's second context),
 * a context on another device, or none (the thread has no current context). */
enum setup_place { PLACE_MANAGED, PLACE_OTHER_CONTEXT, PLACE_OTHER_DEVICE, PLACE_NONE };
enum setup_place setup_current_place(const struct runtime *rt);

#endif /* OFFLOAD_SETUP_H */
