/*
 * real_dlsym.c — finds the dlsym that liboffload's overrides forward to.
 */
#include "interpose/real_dlsym.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>

struct real_dlsym_table real_dlsym_table;
static pthread_once_t real_dlsym_once = PTHREAD_ONCE_INIT;

static void real_dlsym_load(void) {
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
    real_dlsym_table.glibc_2_2_5 = old;
    real_dlsym_table.glibc_2_34 = cur;
}

void real_dlsym_init(void) {
    pthread_once(&real_dlsym_once, real_dlsym_load);
}

void *real_dlsym(void *handle, const char *symbol) {
    real_dlsym_init();
    return real_dlsym_table.glibc_2_34(handle, symbol);
}
