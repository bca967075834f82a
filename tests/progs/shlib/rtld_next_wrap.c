/*
 * librtld_next_wrap.so — a library that wraps a libc function the way profilers and
 * tracers do: its puts() prefixes "[wrapped] " and calls the next puts, found with
 * dlsym(RTLD_NEXT, "puts"). RTLD_NEXT means "after the object that called dlsym": if a
 * dlsym interposer answered it relative to itself instead, the next puts could be this
 * very function (endless recursion) or skip one. Also exports lookups made from inside
 * the library, so a program can check that RTLD_DEFAULT keeps the caller's own scope.
 * Used by tests/progs/rtld_next_app.c and tests/interpose.bats.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

EXPORT int rtld_next_wrap_marker = 42;

/* The asm statements keep these from compiling to a tail jump into dlsym: the lookup
 * must be made from inside this library. */
EXPORT void *rtld_next_wrap_default(const char *name) {
    void *found = dlsym(RTLD_DEFAULT, name);
    __asm__ volatile("" ::: "memory");
    return found;
}

EXPORT void *rtld_next_wrap_next(const char *name) {
    void *found = dlsym(RTLD_NEXT, name);
    __asm__ volatile("" ::: "memory");
    return found;
}

EXPORT int puts(const char *s) {
    static int (*next_puts)(const char *);
    static __thread int depth;
    if (!next_puts)
        next_puts = (int (*)(const char *))rtld_next_wrap_next("puts");
    if (!next_puts || depth > 0) {
        static const char msg[] = "rtld_next_wrap: RTLD_NEXT gave no puts or this puts again\n";
        (void)!write(2, msg, sizeof msg - 1);
        abort();
    }
    depth++;
    fputs("[wrapped] ", stdout);
    int rc = next_puts(s);
    depth--;
    return rc;
}
