/*
 * cli.h — what the subcommands of `offload` share. Each returns the command's exit
 * status: 0, 1 (the work failed: a file unreadable), 2 (a usage or config error), or for
 * run/record the program's own status (128 + signal when it was killed).
 */
#ifndef OFFLOAD_CLI_H
#define OFFLOAD_CLI_H

#include <stdio.h>

#ifndef OFFLOAD_VERSION
#define OFFLOAD_VERSION "unknown"
#endif

int cmd_run(int argc, char **argv);    /* offload run [options] -- PROGRAM [ARGS...] */
int cmd_record(int argc, char **argv); /* offload record [-o FILE] -- PROGRAM [ARGS...] */
int cmd_check(int argc, char **argv);  /* offload check FILE */
int cmd_report(int argc, char **argv); /* offload report FILE.json */
int cmd_plot(int argc, char **argv);   /* offload plot TRACE.json [-o FILE.svg] */

/* "offload CMD: message" on stderr and "Try 'offload CMD --help'."; returns 2. */
__attribute__((format(printf, 2, 3))) int usage_error(const char *cmd, const char *fmt, ...);

/* The stats file `path` as the exit table, on `to`. 0, or 1 with a message on stderr. */
int report_print_file(const char *path, FILE *to);

#endif /* OFFLOAD_CLI_H */
