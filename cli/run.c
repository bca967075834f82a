/*
 * run.c — `offload run` and `offload record`: check the options the way the library
 * will read them, put liboffload in front of the program (LD_PRELOAD plus OFFLOAD_*
 * variables), run it with its own stdin, stdout and stderr, pass its exit status on, and
 * print what happened from the statistics the library wrote.
 */
#include "cli/cli.h"

#include "config/config.h"
#include "config/values.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Every option is a variable of the library's: the help, the man page and the
 * environment say the same thing. */
struct env_option {
    const char *name;
    const char *env;
    const char *metavar;
    const char *help;
};

static const struct env_option run_options[] = {
    {"budget", "OFFLOAD_BUDGET", "SIZE", "cap on resident device memory: 12GiB, 75%"},
    {"config", "OFFLOAD_CONFIG", "FILE", "the config (default ./offload.conf if present)"},
    {"policy", "OFFLOAD_POLICY", "POLICY", "sequence, budget or lru"},
    {"prefetch", "OFFLOAD_PREFETCH", "N", "components restored ahead (default 1)"},
    {"sequence", "OFFLOAD_SEQUENCE", "SEQ", "the order components run in: 'a -> b -> c'"},
    {"min-size", "OFFLOAD_MIN_SIZE", "SIZE", "smaller allocations stay untracked (1MiB)"},
    {"stats", "OFFLOAD_STATS", "FILE", "keep the statistics as JSON (offload report FILE)"},
    {"trace", "OFFLOAD_TRACE", "FILE", "write the timeline (Chrome trace JSON) at exit"},
    {"log", "OFFLOAD_LOG", "LEVEL", "error, warn, info (+ live status line) or debug"},
};
#define RUN_OPTION_COUNT (sizeof run_options / sizeof run_options[0])

static const struct env_option record_options[] = {
    {"output", "OFFLOAD_RECORD", "FILE", "where the config goes (default offload.recorded.conf)"},
    {"log", "OFFLOAD_LOG", "LEVEL", "error, warn, info or debug"},
};
#define RECORD_OPTION_COUNT (sizeof record_options / sizeof record_options[0])

/* The values given on the command line, by option; the lookup the config reads them
 * through (config_load_with takes a plain function, hence file scope). */
static const struct env_option *given_options;
static size_t given_count;
static const char
    *given[RUN_OPTION_COUNT > RECORD_OPTION_COUNT ? RUN_OPTION_COUNT : RECORD_OPTION_COUNT];

static const char *lookup(const char *name) {
    for (size_t i = 0; i < given_count; i++)
        if (given[i] && strcmp(given_options[i].env, name) == 0)
            return given[i];
    return secure_getenv(name);
}

static void print_options(const struct env_option *options, size_t count) {
    for (size_t i = 0; i < count; i++) {
        char left[40];
        snprintf(left, sizeof left, "--%s %s", options[i].name, options[i].metavar);
        printf("  %-20s %s (%s)\n", left, options[i].help, options[i].env);
    }
}

static void run_help(void) {
    printf("usage: offload run [OPTIONS] [--] PROGRAM [ARGS...]\n"
           "\n"
           "Runs PROGRAM under liboffload (LD_PRELOAD, prepended to any already set) and exits\n"
           "with its exit status (128 + N when signal N killed it). Its stdout and stderr are\n"
           "its own; at the end offload prints what liboffload did on stderr.\n"
           "\n"
           "Options (each sets the environment variable in parentheses, which works too):\n");
    print_options(run_options, RUN_OPTION_COUNT);
    printf("  %-20s %s\n", "--help",
           "this text"
           "\n\n"
           "A bad option or value, or a config error, stops before PROGRAM starts: one line,\n"
           "exit status 2. liboffload.so is found next to offload, in ../lib, or at\n"
           "OFFLOAD_LIBRARY.\n"
           "\n"
           "Example: offload run --budget 12GiB --config app.conf --trace trace.json -- ./app\n"
           "then:    offload plot trace.json -o timeline.svg   (or open trace.json in\n"
           "         https://ui.perfetto.dev)\n");
}

static void record_help(void) {
    printf("usage: offload record [-o FILE] [--log LEVEL] [--] PROGRAM [ARGS...]\n"
           "\n"
           "Runs PROGRAM once in liboffload's record mode (OFFLOAD_MODE=record): it watches\n"
           "which launches use which allocations and writes a complete config, components\n"
           "c0, c1, ... in order of first use, then lists the components it found. Any\n"
           "./offload.conf is ignored while recording. Exits with PROGRAM's status.\n"
           "\n"
           "Options:\n");
    print_options(record_options, RECORD_OPTION_COUNT);
    printf("  %-20s %s\n", "-o FILE", "the same as --output FILE");
    printf("  %-20s %s\n", "--help",
           "this text"
           "\n\n"
           "Then: rename c0, c1, ... in FILE, and run: offload run --config FILE -- PROGRAM\n");
}

/* --- parsing the command line ------------------------------------------------------- */

/* Options into given[], the program's argv into *program. -1: exit with *status. */
static int parse_options(const char *cmd, const struct env_option *options, size_t count, int argc,
                         char **argv, char ***program, int *status) {
    struct option longs[RUN_OPTION_COUNT + 2];
    for (size_t i = 0; i < count; i++)
        longs[i] = (struct option){options[i].name, required_argument, NULL, (int)i};
    longs[count] = (struct option){"help", no_argument, NULL, 'h'};
    longs[count + 1] = (struct option){NULL, 0, NULL, 0};
    given_options = options;
    given_count = count;
    memset(given, 0, sizeof given);
    bool record = strcmp(cmd, "record") == 0;
    opterr = 0;
    optind = 1;
    int c, index = 0;
    /* "+": the first non-option is the program; everything after it is its own */
    while ((c = getopt_long(argc, argv, record ? "+:o:" : "+:", longs, &index)) != -1) {
        if (c == 'h') {
            record ? record_help() : run_help();
            *status = 0;
            return -1;
        }
        if (c == 'o' && record) {
            given[0] = optarg;
        } else if (c >= 0 && (size_t)c < count) {
            if (!*optarg) {
                *status = usage_error(cmd, "--%s: empty value", options[c].name);
                return -1;
            }
            given[c] = optarg;
        } else if (c == ':') {
            *status = usage_error(cmd, "%s needs a value", argv[optind - 1]);
            return -1;
        } else {
            *status = usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
            return -1;
        }
    }
    if (optind >= argc) {
        *status = usage_error(cmd,
                              "missing the program to run (offload %s [OPTIONS] -- "
                              "PROGRAM [ARGS...])",
                              cmd);
        return -1;
    }
    *program = argv + optind;
    return 0;
}

/* The library's own reading of the options: the same messages, naming the option when
 * it came from one ("OFFLOAD_BUDGET: malformed size" -> "--budget: malformed size"). */
static int check_config(const char *cmd, struct config *cfg) {
    struct config_error err;
    if (config_load_with(cfg, lookup, &err) == 0)
        return 0;
    for (size_t i = 0; i < given_count; i++) {
        size_t n = strlen(given_options[i].env);
        if (given[i] && strncmp(err.text, given_options[i].env, n) == 0 && err.text[n] == ':') {
            fprintf(stderr, "offload %s: --%s:%s\n", cmd, given_options[i].name, err.text + n + 1);
            return -1;
        }
    }
    fprintf(stderr, "%s\n", err.text);
    return -1;
}

/* --- the library -------------------------------------------------------------------- */

/* liboffload.so: OFFLOAD_LIBRARY, else beside this executable (the build folder), else in
 * ../lib (an installed prefix). An absolute path into out. */
static int find_library(char *out, size_t len) {
    const char *env = getenv("OFFLOAD_LIBRARY");
    if (env && *env) {
        if (!realpath(env, out) || access(out, R_OK) != 0) {
            fprintf(stderr, "offload: OFFLOAD_LIBRARY: cannot read '%s': %s\n", env,
                    strerror(errno));
            return -1;
        }
        return 0;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        fprintf(stderr, "offload: cannot find liboffload.so (set OFFLOAD_LIBRARY)\n");
        return -1;
    }
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    *slash = '\0';
    static const char *const places[] = {"%s/liboffload.so", "%s/../lib/liboffload.so"};
    char candidate[PATH_MAX + 32];
    for (size_t i = 0; i < 2; i++) {
        snprintf(candidate, sizeof candidate, places[i], exe);
        if (realpath(candidate, out) && access(out, R_OK) == 0 && strlen(out) < len)
            return 0;
    }
    fprintf(stderr,
            "offload: cannot find liboffload.so (looked in %s and %s/../lib; set "
            "OFFLOAD_LIBRARY)\n",
            exe, exe);
    return -1;
}

/* LD_PRELOAD=lib, before whatever was there. */
static int preload(const char *lib) {
    if (strpbrk(lib, " :")) {
        fprintf(stderr, "offload: cannot preload '%s': LD_PRELOAD splits paths at ' ' and ':'\n",
                lib);
        return -1;
    }
    const char *old = getenv("LD_PRELOAD");
    size_t n = strlen(lib) + (old ? strlen(old) : 0) + 2;
    char *value = malloc(n);
    if (!value)
        return -1;
    snprintf(value, n, "%s%s%s", lib, old && *old ? ":" : "", old && *old ? old : "");
    int rc = setenv("LD_PRELOAD", value, 1);
    free(value);
    return rc;
}

/* --- running ------------------------------------------------------------------------ */

static volatile sig_atomic_t child_pid;

/* A terminating signal sent to offload alone is the program's to handle. */
static void pass_on(int sig) {
    if (child_pid > 0)
        kill((pid_t)child_pid, sig);
}

/* Runs program; its exit status, 128 + N for a signal N, 126/127 when it cannot start.
 * The signals are blocked across the fork, so none lands between it and the handlers
 * (the parent dying of a Ctrl-C meant for the program), and the child starts with them
 * unblocked and at their defaults. */
static int spawn(char **program, int *signal_out) {
    static const int passed[] = {SIGINT, SIGQUIT, SIGTERM, SIGHUP};
    struct sigaction ignore = {.sa_handler = SIG_IGN}, forward = {.sa_handler = pass_on}, old[4];
    sigset_t block, saved;
    sigemptyset(&block);
    for (size_t i = 0; i < 4; i++)
        sigaddset(&block, passed[i]);
    fflush(NULL);
    sigprocmask(SIG_BLOCK, &block, &saved);
    pid_t pid = fork();
    if (pid < 0) {
        sigprocmask(SIG_SETMASK, &saved, NULL);
        fprintf(stderr, "offload: cannot start '%s': %s\n", program[0], strerror(errno));
        return 126;
    }
    if (pid == 0) {
        sigprocmask(SIG_SETMASK, &saved, NULL);
        execvp(program[0], program);
        int e = errno;
        fprintf(stderr, "offload: cannot run '%s': %s\n", program[0], strerror(e));
        _exit(e == ENOENT ? 127 : 126);
    }
    child_pid = pid;
    /* Ctrl-C and Ctrl-\ reach the program through the terminal: offload waits them out;
     * a TERM or HUP sent to offload alone is passed on */
    for (size_t i = 0; i < 4; i++)
        sigaction(passed[i], i < 2 ? &ignore : &forward, &old[i]);
    sigprocmask(SIG_SETMASK, &saved, NULL);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    for (size_t i = 0; i < 4; i++)
        sigaction(passed[i], &old[i], NULL);
    child_pid = 0;
    *signal_out = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void print_outcome(char **program, int status, int sig) {
    if (sig)
        fprintf(stderr, "offload: %s was killed by signal %d (%s)\n", program[0], sig,
                strsignal(sig));
    else
        fprintf(stderr, "offload: %s exited with status %d\n", program[0], status);
}

static bool file_has_bytes(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && st.st_size > 0;
}

/* The statistics go to --stats, to the config's `stats =`, or to a temporary file. */
static int choose_stats_path(const struct config *cfg, char *path, size_t len, bool *temporary) {
    *temporary = false;
    if (cfg->stats_path[0]) {
        snprintf(path, len, "%s", cfg->stats_path);
        return 0;
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(path, len, "%s/offload-stats.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0) {
        fprintf(stderr, "offload: cannot create a temporary file in %s: %s\n",
                tmp && *tmp ? tmp : "/tmp", strerror(errno));
        return -1;
    }
    close(fd);
    *temporary = true;
    return setenv("OFFLOAD_STATS", path, 1);
}

/* The files written at exit go where the user meant when offload started, even if the
 * program changes its working directory before it ends. */
static char absolute[2][PATH_MAX + 1];
static const char *make_absolute(const char *path, char *out) {
    char cwd[PATH_MAX];
    if (path[0] == '/' || !getcwd(cwd, sizeof cwd))
        return path;
    int n = snprintf(out, PATH_MAX + 1, "%s/%s", cwd, path);
    return n > 0 && n <= PATH_MAX ? out : path;
}

static void absolute_outputs(void) {
    for (size_t i = 0, k = 0; i < RUN_OPTION_COUNT; i++)
        if (given[i] && (strcmp(run_options[i].name, "stats") == 0 ||
                         strcmp(run_options[i].name, "trace") == 0))
            given[i] = make_absolute(given[i], absolute[k++]);
}

int cmd_run(int argc, char **argv) {
    char **program;
    int status;
    if (parse_options("run", run_options, RUN_OPTION_COUNT, argc, argv, &program, &status) < 0)
        return status;
    absolute_outputs();
    struct config cfg;
    if (check_config("run", &cfg) < 0)
        return 2;
    char lib[PATH_MAX], stats[PATH_MAX + 32];
    bool temporary = false;
    int rc = 2;
    if (find_library(lib, sizeof lib) < 0 || preload(lib) < 0)
        goto out;
    for (size_t i = 0; i < RUN_OPTION_COUNT; i++)
        if (given[i])
            setenv(run_options[i].env, given[i], 1);
    /* the table below replaces the library's own summary */
    setenv("OFFLOAD_SUMMARY", "no", 1);
    if (choose_stats_path(&cfg, stats, sizeof stats, &temporary) < 0)
        goto out;
    int sig;
    rc = spawn(program, &sig);
    print_outcome(program, rc, sig);
    if (file_has_bytes(stats))
        report_print_file(stats, stderr);
    else if (!sig && rc < 126)
        fprintf(stderr, "offload: no statistics: liboffload saw no CUDA context in %s\n",
                program[0]);
    if (!temporary)
        fprintf(stderr, "offload: statistics in %s (offload report %s)\n", stats, stats);
    if (cfg.trace_path[0] && file_has_bytes(cfg.trace_path))
        fprintf(stderr,
                "offload: timeline in %s: open it in https://ui.perfetto.dev or "
                "chrome://tracing, or: offload plot %s -o timeline.svg\n",
                cfg.trace_path, cfg.trace_path);
out:
    if (temporary)
        unlink(stats);
    config_free(&cfg);
    return rc;
}

/* --- record ------------------------------------------------------------------------- */

/* The comment the record writer puts above each [component NAME] ("# 44.9 MiB in 13
 * allocations, ..."), or "" */
static void component_comment(const char *text, const char *name, char *out, size_t len) {
    out[0] = '\0';
    char header[CONFIG_NAME_MAX + 16];
    snprintf(header, sizeof header, "\n[component %s]", name);
    const char *h = strstr(text, header);
    if (!h || h == text)
        return;
    const char *line = h; /* the start of the line above the header */
    while (line > text && line[-1] != '\n')
        line--;
    if (strncmp(line, "# ", 2) == 0)
        snprintf(out, len, "%.*s", (int)(h - line - 2), line + 2);
}

static const char *no_environment(const char *name) {
    (void)name;
    return NULL;
}

static void print_recorded(const char *path, char **program) {
    struct config cfg;
    struct config_error err;
    if (config_load_from(&cfg, path, no_environment, &err) != 0) {
        fprintf(stderr, "offload: the recorded config does not load: %s\n", err.text);
        return;
    }
    FILE *f = fopen(path, "r");
    char text[1 << 16] = "";
    if (f) {
        text[fread(text, 1, sizeof text - 1, f)] = '\0';
        fclose(f);
    }
    fprintf(stderr, "offload: recorded %zu component%s into %s:\n", cfg.component_count,
            cfg.component_count == 1 ? "" : "s", path);
    for (size_t i = 0; i < cfg.component_count; i++) {
        const struct config_component *c = &cfg.components[i];
        char allocs[256] = "", range[64], comment[256];
        for (size_t r = 0; r < c->alloc_range_count; r++) {
            value_format_range(&c->allocs[r], range, sizeof range);
            size_t n = strlen(allocs);
            snprintf(allocs + n, sizeof allocs - n, "%s%s", r ? ", " : "", range);
        }
        component_comment(text, c->name, comment, sizeof comment);
        fprintf(stderr, "  %-12s allocs %-10s %s\n", c->name, allocs, comment);
    }
    if (cfg.sequence_length) {
        fprintf(stderr, "  sequence ");
        for (size_t i = 0; i < cfg.sequence_length; i++)
            fprintf(stderr, "%s%s", i ? " -> " : "", cfg.components[cfg.sequence[i]].name);
        fprintf(stderr, "\n");
    }
    fprintf(stderr,
            "offload: next: rename the components in %s, then: offload run --config %s "
            "-- %s ...\n",
            path, path, program[0]);
    config_free(&cfg);
}

int cmd_record(int argc, char **argv) {
    char **program;
    int status;
    if (parse_options("record", record_options, RECORD_OPTION_COUNT, argc, argv, &program,
                      &status) < 0)
        return status;
    const char *out = given[0] ? given[0] : "offload.recorded.conf";
    given[0] = out;
    /* recording starts from nothing: no ./offload.conf, whatever the directory holds */
    setenv("OFFLOAD_CONFIG", "", 1);
    setenv("OFFLOAD_MODE", "record", 1);
    struct config cfg;
    if (check_config("record", &cfg) < 0)
        return 2;
    config_free(&cfg);
    char lib[PATH_MAX];
    if (find_library(lib, sizeof lib) < 0 || preload(lib) < 0)
        return 2;
    for (size_t i = 0; i < RECORD_OPTION_COUNT; i++)
        if (given[i])
            setenv(record_options[i].env, given[i], 1);
    setenv("OFFLOAD_SUMMARY", "no", 1);
    struct stat before;
    bool existed = stat(out, &before) == 0;
    int sig, rc = spawn(program, &sig);
    print_outcome(program, rc, sig);
    struct stat after;
    bool written = stat(out, &after) == 0 && (!existed || after.st_ino != before.st_ino ||
                                              after.st_mtim.tv_sec != before.st_mtim.tv_sec ||
                                              after.st_mtim.tv_nsec != before.st_mtim.tv_nsec);
    if (written)
        print_recorded(out, program);
    else
        fprintf(stderr, "offload: no config recorded: %s made no tracked allocation%s\n",
                program[0], sig ? " before it was killed" : "");
    return rc;
}
