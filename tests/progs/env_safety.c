/*
 * env_safety.c — loads liboffload with dlopen, the way a setuid program would get it (the
 * dynamic loader ignores LD_PRELOAD there), and says so.
 *
 *   env_safety LIBOFFLOAD.so
 *
 * liboffload's constructor reads its configuration when the library loads and exits
 * with status 2 on a broken one. This program makes no CUDA call and links no driver,
 * so it also runs setuid, where $ORIGIN and LD_LIBRARY_PATH are ignored. Exit 0 and
 * "env_safety: loaded" when the library loaded and its constructor let the program go on.
 */
#include <dlfcn.h>
#include <stdio.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: env_safety LIBOFFLOAD.so\n");
        return 64;
    }
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "env_safety: dlopen: %s\n", dlerror());
        return 65;
    }
    printf("env_safety: loaded\n");
    fflush(stdout);
    return 0;
}
