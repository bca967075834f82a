/*
 * offload.c — the `offload` command: `offload SUBCOMMAND ...`, dispatched here; each
 * subcommand lives in its own file (run.c: run and record; check.c; report.c; plot.c).
 */
#include "cli/cli.h"

#include <stdarg.h>
#include <string.h>

static void print_help(FILE *to) {
    fputs("usage: offload COMMAND [OPTIONS] [-- PROGRAM [ARGS...]]\n"
          "\n"
          "Runs an unmodified CUDA program under liboffload, which moves whole components\n"
          "of its device memory between the GPU and host memory so it fits a smaller GPU.\n"
          "\n"
          "Commands:\n"
          "  run      run a program under liboffload, print what it moved at the end\n"
          "           (offload run --budget 12GiB --config app.conf -- ./app args)\n"
          "  record   run a program once to find its components, write a config\n"
          "           (offload record -o app.conf -- ./app args)\n"
          "  check    validate a config file without running anything\n"
          "  report   print a statistics file (--stats) as the table run prints\n"
          "  plot     render a timeline (--trace) as a self-contained SVG picture\n"
          "\n"
          "From nothing to a timeline of your own program:\n"
          "  offload record -o app.conf -- ./app        # then rename c0, c1, ... in app.conf\n"
          "  offload check app.conf\n"
          "  offload run --config app.conf --budget 12GiB --trace trace.json -- ./app\n"
          "  offload plot trace.json -o timeline.svg    # or open trace.json in ui.perfetto.dev\n"
          "\n"
          "'offload COMMAND --help' tells more about each; 'man offload' tells everything.\n"
          "Options:\n"
          "  --help       this text\n"
          "  --version    the version of offload and liboffload\n",
          to);
}

int usage_error(const char *cmd, const char *fmt, ...) {
    fprintf(stderr, "offload%s%s: ", cmd ? " " : "", cmd ? cmd : "");
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (try 'offload%s%s --help')\n", cmd ? " " : "", cmd ? cmd : "");
    return 2;
}

int main(int argc, char **argv) {
    static const struct {
        const char *name;
        int (*run)(int, char **);
    } commands[] = {
        {"run", cmd_run},       {"record", cmd_record}, {"check", cmd_check},
        {"report", cmd_report}, {"plot", cmd_plot},
    };
    if (argc < 2)
        return usage_error(NULL, "missing command (run, record, check, report or plot)");
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        print_help(stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("offload %s (liboffload %s)\n", OFFLOAD_VERSION, OFFLOAD_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(cmd, commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    return usage_error(NULL, "unknown command '%s' (expected run, record, check, report or plot)",
                       cmd);
}
