/*
 * startup — how long liboffload (loading, constructor, reading a config) adds between
 * a process's start and its main().
 *
 *   startup LIBOFFLOAD.so CONFIG [--runs N]   spawns itself N times each way, alternating
 *   startup --child                          prints CLOCK_MONOTONIC at main, in ns
 *
 * The parent reads the clock just before posix_spawn and subtracts it from the child's
 * reading: exec, dynamic loading and constructors, everything up to main. Prints one
 * JSON object with the samples, both medians and startup_ms = their difference.
 */
#include "tests/bench/bench.h"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static long arg_long(int argc, char **argv, const char *name, long fallback) {
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return strtol(argv[i + 1], NULL, 10);
    return fallback;
}

/* The parent's environment without LD_PRELOAD/OFFLOAD_CONFIG, plus `extra` (may be NULL). */
static char **child_environment(char **extra) {
    size_t n = 0, e = 0;
    while (environ[n])
        n++;
    while (extra && extra[e])
        e++;
    char **env = calloc(n + e + 1, sizeof *env);
    if (!env)
        abort();
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "LD_PRELOAD=", 11) != 0 &&
            strncmp(environ[i], "OFFLOAD_CONFIG=", 15) != 0)
            env[k++] = environ[i];
    for (size_t i = 0; i < e; i++)
        env[k++] = extra[i];
    return env;
}

/* Spawns `self --child` and returns nanoseconds from just before the spawn to its main. */
static double spawn_once(const char *self, char **env) {
    int fds[2];
    if (pipe(fds) != 0)
        abort();
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, fds[0]);
    char *child_argv[] = {(char *)self, "--child", NULL};
    pid_t pid;
    uint64_t t0 = bench_now_ns();
    int rc = posix_spawn(&pid, self, &actions, NULL, child_argv, env);
    posix_spawn_file_actions_destroy(&actions);
    close(fds[1]);
    if (rc != 0) {
        fprintf(stderr, "startup: posix_spawn: %s\n", strerror(rc));
        exit(1);
    }
    char text[64] = {0};
    ssize_t got = read(fds[0], text, sizeof text - 1);
    close(fds[0]);
    int status;
    waitpid(pid, &status, 0);
    if (got <= 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "startup: child failed (status %d)\n", status);
        exit(1);
    }
    return (double)(strtoull(text, NULL, 10) - t0);
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "--child") == 0) {
        printf("%llu\n", (unsigned long long)bench_now_ns());
        return 0;
    }
    if (argc < 3 || argv[1][0] == '-') {
        fprintf(stderr, "usage: %s LIBOFFLOAD.so CONFIG [--runs N]\n", argv[0]);
        return 2;
    }
    long runs = arg_long(argc, argv, "--runs", 20);
    if (runs < 1)
        return 2;
    /* A preload the loader cannot open is only a warning to it: refuse here instead. */
    if (access(argv[1], R_OK) != 0 || access(argv[2], R_OK) != 0) {
        fprintf(stderr, "startup: cannot read %s or %s\n", argv[1], argv[2]);
        return 2;
    }
    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0)
        return 1;
    self[len] = '\0';

    char preload[4200], config[4200];
    snprintf(preload, sizeof preload, "LD_PRELOAD=%s", argv[1]);
    snprintf(config, sizeof config, "OFFLOAD_CONFIG=%s", argv[2]);
    char *with[] = {preload, config, NULL};
    char **bare_env = child_environment(NULL), **offload_env = child_environment(with);

    double *bare = calloc((size_t)runs, sizeof(double));
    double *offload = calloc((size_t)runs, sizeof(double));
    if (!bare || !offload)
        return 1;
    spawn_once(self, bare_env); /* warm the page cache for both */
    spawn_once(self, offload_env);
    for (long i = 0; i < runs; i++) {
        bare[i] = spawn_once(self, bare_env);
        offload[i] = spawn_once(self, offload_env);
    }
    double m_bare = bench_median(bare, (size_t)runs), m_off = bench_median(offload, (size_t)runs);
    printf("{\"runs\": %ld, ", runs);
    bench_print_array(stdout, "bare_ns", bare, (size_t)runs);
    printf(", ");
    bench_print_array(stdout, "offload_ns", offload, (size_t)runs);
    printf(", \"median_bare_ns\": %.0f, \"median_offload_ns\": %.0f, \"startup_ms\": %.3f}\n",
           m_bare, m_off, (m_off - m_bare) / 1e6);
    free(bare), free(offload), free(bare_env), free(offload_env);
    return 0;
}
