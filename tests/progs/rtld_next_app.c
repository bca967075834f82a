/*
 * rtld_next_app.c — prints what dlsym's special handles answer for this program and for
 * a library it loads, so tests/interpose.bats can check they answer the same with and
 * without liboffload preloaded (liboffload overrides dlsym):
 *
 *   rtld_next_app LIBRTLD_NEXT_WRAP.so
 *
 * puts goes through the wrapper when it is preloaded (its RTLD_NEXT must find libc's
 * puts, whatever the preload order); RTLD_DEFAULT from a library loaded RTLD_LOCAL finds
 * that library's own symbols, from the program it does not; RTLD_NEXT from the program
 * and from the library, and plain handle lookups, name the same objects.
 */
#include <dlfcn.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>

static const char *object_of(void *p) {
    static char out[4096];
    Dl_info info;
    if (!p)
        return "not found";
    if (!dladdr(p, &info) || !info.dli_fname)
        return "?";
    char path[4096];
    snprintf(path, sizeof path, "%s", info.dli_fname);
    snprintf(out, sizeof out, "%s", basename(path));
    return out;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: rtld_next_app LIBRTLD_NEXT_WRAP.so\n");
        return 2;
    }
    puts("hello through puts");
    fflush(stdout);

    /* from the program itself */
    void *next_puts = dlsym(RTLD_NEXT, "puts");
    __asm__ volatile("" ::: "memory");
    printf("program: RTLD_NEXT puts -> %s\n", object_of(next_puts));
    printf("program: RTLD_DEFAULT strlen -> %s\n", object_of(dlsym(RTLD_DEFAULT, "strlen")));
    printf("program: RTLD_DEFAULT no_such_symbol -> %s\n",
           object_of(dlsym(RTLD_DEFAULT, "no_such_symbol_anywhere")));

    /* from a library loaded with RTLD_LOCAL */
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "rtld_next_app: %s\n", dlerror());
        return 1;
    }
    void *(*lib_default)(const char *) =
        (void *(*)(const char *))dlsym(h, "rtld_next_wrap_default");
    void *(*lib_next)(const char *) = (void *(*)(const char *))dlsym(h, "rtld_next_wrap_next");
    if (!lib_default || !lib_next) {
        fprintf(stderr, "rtld_next_app: the wrapper library lacks its lookup functions\n");
        return 1;
    }
    printf("handle: rtld_next_wrap_marker -> %s\n", object_of(dlsym(h, "rtld_next_wrap_marker")));
    printf("handle: puts -> %s\n", object_of(dlsym(h, "puts")));
    printf("handle: strlen -> %s\n", object_of(dlsym(h, "strlen")));
    printf("library: RTLD_DEFAULT rtld_next_wrap_marker -> %s\n",
           object_of(lib_default("rtld_next_wrap_marker")));
    printf("program: RTLD_DEFAULT rtld_next_wrap_marker -> %s\n",
           object_of(dlsym(RTLD_DEFAULT, "rtld_next_wrap_marker")));
    printf("library: RTLD_NEXT puts -> %s\n", object_of(lib_next("puts")));
    printf("library: RTLD_NEXT rtld_next_wrap_marker -> %s\n",
           object_of(lib_next("rtld_next_wrap_marker")));
    fflush(stdout);
    puts("goodbye through puts");
    return 0;
}
