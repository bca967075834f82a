/*
 * lifecycle.c — liboffload's start and end inside someone else's process.
 *
 * Start: a constructor that only reads the configuration (runtime_early_init); it makes
 * no CUDA call, because it runs in every process the program spawns (shells, compilers,
 * data loaders), most of which never touch CUDA. Everything else starts lazily at the
 * first hooked call.
 *
 * End: runtime_shutdown is registered as an exit handler from the constructor, not run
 * as a destructor. exit() runs atexit handlers before any library destructor (_dl_fini runs
 * last), so the driver is still fully alive when the summary and stats are produced; a
 * destructor could run after libcuda's own teardown. The handler also runs when
 * liboffload is dlclose'd (glibc runs a library's atexit handlers at its unload). Hooks
 * may still be called after it (other libraries' exit handlers and destructors free
 * device memory): runtime_shutdown must leave the runtime usable.
 */
#include "runtime/runtime.h"

#include <stddef.h>

/* glibc's atexit() is __cxa_atexit with the calling object's __dso_handle, which is what
 * makes the handler run at dlclose. It is called directly so that no interceptor of
 * atexit can lose the handle: ThreadSanitizer's registers handlers without it, and exit()
 * then called into an unloaded liboffload (google/sanitizers#318). */
extern void *__dso_handle;
extern int __cxa_atexit(void (*fn)(void *), void *arg, void *dso_handle);

static void lifecycle_exit(void *unused) {
    (void)unused;
    runtime_shutdown();
}

__attribute__((constructor)) static void lifecycle_start(void) {
    runtime_early_init();
    __cxa_atexit(lifecycle_exit, NULL, __dso_handle);
}
