/*
 * real_dlsym.c — finds the dlsym that liboffload's overrides forward to.
 */
#include "driver/real_dlsym.h"

#include <dlfcn.h>
#include <stdlib.h>

struct real_dlsym_table real_dlsym_table;

/* Runs inside every dlsym of the process, including the ones sanitizer runtimes make
 * while they initialise (ThreadSanitizer resolves its interceptors through dlsym before
 * it can handle an instrumented function): no sanitizer instrumentation, no intercepted
 * call (no pthread_once, no string functions; dlvsym is not intercepted). Two threads
 * racing here compute the same pointers; the 2.34 entry is published last. */
__attribute__((no_sanitize("address", "thread", "undefined"))) void real_dlsym_init(void) {
    if (__atomic_load_n(&real_dlsym_table.glibc_2_34, __ATOMIC_ACQUIRE))
        return;
    /* dlvsym is not overridden, so this asks glibc directly. RTLD_NEXT: the next
     * definition after liboffload, so another preloaded interposer of dlsym stays in the
     * chain. */
    real_dlsym_fn old = (real_dlsym_fn)dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.2.5");
    real_dlsym_fn cur = (real_dlsym_fn)dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.34");
    if (!old)
        old = (real_dlsym_fn)dlvsym(RTLD_DEFAULT, "dlsym", "GLIBC_2.2.5");
    if (!cur)
        cur = (real_dlsym_fn)dlvsym(RTLD_DEFAULT, "dlsym", "GLIBC_2.34");
    if (!old)
        old = cur;
    if (!cur)
        cur = old;
    if (!cur)
        abort(); /* no dlsym at all: not a glibc process we can live in */
    __atomic_store_n(&real_dlsym_table.glibc_2_2_5, old, __ATOMIC_RELAXED);
    __atomic_store_n(&real_dlsym_table.glibc_2_34, cur, __ATOMIC_RELEASE);
}

void *real_dlsym(void *handle, const char *symbol) {
    real_dlsym_init();
    return __atomic_load_n(&real_dlsym_table.glibc_2_34, __ATOMIC_ACQUIRE)(handle, symbol);
}
