/*
 * check.c — `offload check FILE`: the library's own config reader on the file alone (no
 * environment, nothing run), with its messages and its exit status 2.
 */
#include "cli/cli.h"

#include "config/config.h"

#include <string.h>

static const char *no_environment(const char *name) {
    (void)name;
    return NULL;
}

static const char *const policy_names[] = {"lru", "sequence", "budget"};

static void describe(const struct config *cfg, const char *path) {
    printf("%s: ok: %zu component%s", path, cfg->component_count,
           cfg->component_count == 1 ? "" : "s");
    for (size_t i = 0; i < cfg->component_count; i++)
        printf("%s%s", i ? ", " : " (", cfg->components[i].name);
    printf("%s", cfg->component_count ? ")" : "");
    if (cfg->sequence_length) {
        printf(", sequence ");
        for (size_t i = 0; i < cfg->sequence_length; i++)
            printf("%s%s", i ? " -> " : "", cfg->components[cfg->sequence[i]].name);
    }
    printf(", policy %s, prefetch %d\n", policy_names[cfg->policy], cfg->prefetch);
}

int cmd_check(int argc, char **argv) {
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: offload check FILE\n"
               "\n"
               "Reads FILE as liboffload would at start (every key, every cross-check) and\n"
               "prints what it declares, or the first mistake as 'FILE:LINE: message' with\n"
               "exit status 2. Nothing runs; the OFFLOAD_* environment is not read (it would\n"
               "override the file at run time: offload run checks both).\n");
        return 0;
    }
    if (argc != 2)
        return usage_error("check",
                           argc < 2 ? "missing the config file" : "one config file at a time");
    if (argv[1][0] == '-')
        return usage_error("check", "unknown option '%s'", argv[1]);
    struct config cfg;
    struct config_error err;
    if (config_load_from(&cfg, argv[1], no_environment, &err) != 0) {
        fprintf(stderr, "%s\n", err.text);
        return 2;
    }
    describe(&cfg, argv[1]);
    config_free(&cfg);
    return 0;
}
