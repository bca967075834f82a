/*
 * load.c — where the configuration comes from: defaults, then the file (OFFLOAD_CONFIG,
 * else ./offload.conf), then the OFFLOAD_* environment, key by key.
 */
#include "config/state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONFIG_FILE_MAX (1u << 20) /* a config file is a few lines: refuse /dev/zero */

static const char *secure_env(const char *name) {
    return secure_getenv(name);
}

/* Reads a whole file into a malloc'ed string. `origin` prefixes the diagnostics that
 * concern the path itself ("OFFLOAD_CONFIG"), NULL for none. */
static char *read_file(struct config_state *st, const char *path, const char *origin) {
    const char *prefix = origin ? origin : "", *sep = origin ? ": " : "";
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        state_fail(st, NULL, 0, "%s%scannot open '%s': %s", prefix, sep, path, strerror(errno));
        return NULL;
    }
    char *text = malloc(CONFIG_FILE_MAX + 1);
    size_t length = 0;
    ssize_t n = 0;
    if (!text) {
        state_fail(st, NULL, 0, "%s%scannot read '%s': out of memory", prefix, sep, path);
        close(fd);
        return NULL;
    }
    while (length <= CONFIG_FILE_MAX &&
           (n = read(fd, text + length, CONFIG_FILE_MAX + 1 - length)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        length += (size_t)n;
    }
    int saved = errno;
    close(fd);
    if (n < 0) {
        state_fail(st, NULL, 0, "%s%scannot read '%s': %s", prefix, sep, path, strerror(saved));
    } else if (length > CONFIG_FILE_MAX) {
        state_fail(st, NULL, 0, "%s%s'%s' is larger than %u KiB", prefix, sep, path,
                   CONFIG_FILE_MAX >> 10);
    } else {
        const char *nul = memchr(text, '\0', length);
        if (!nul) {
            text[length] = '\0';
            return text;
        }
        int line = 1;
        for (const char *c = text; c < nul; c++)
            line += *c == '\n';
        state_fail(st, path, line, "NUL byte (not a text file?)");
    }
    free(text);
    return NULL;
}

static int load(struct config *cfg, const char *path, const char *path_origin,
                const char *(*getenv_fn)(const char *), struct config_error *err) {
    struct config_state st;
    state_init(&st, cfg, err);
    if (path) {
        char *text = read_file(&st, path, path_origin);
        if (text) {
            snprintf(cfg->path, sizeof cfg->path, "%s", path);
            parse_text(&st, text, path);
            free(text);
        }
    }
    for (size_t i = 0; i < offload_key_count && !st.failed; i++) {
        const char *value = getenv_fn(offload_keys[i].env);
        struct value_msg msg = {{0}};
        if (value && *value && offload_keys[i].apply(&st, value, offload_keys[i].env, &msg) < 0)
            state_fail(&st, offload_keys[i].env, 0, "%s", msg.text);
    }
    state_finish(&st);
    state_done(&st);
    return st.failed ? -1 : 0;
}

int config_load_from(struct config *cfg, const char *path, const char *(*getenv_fn)(const char *),
                     struct config_error *err) {
    return load(cfg, path, NULL, getenv_fn ? getenv_fn : secure_env, err);
}

int config_load_with(struct config *cfg, const char *(*getenv_fn)(const char *),
                     struct config_error *err) {
    if (!getenv_fn)
        getenv_fn = secure_env;
    const char *path = getenv_fn("OFFLOAD_CONFIG");
    if (path)
        return load(cfg, *path ? path : NULL, "OFFLOAD_CONFIG", getenv_fn, err);
    /* The working directory of a setuid program is its caller's to choose. */
    if (!getauxval(AT_SECURE) && access("offload.conf", F_OK) == 0)
        path = "offload.conf";
    return load(cfg, path, NULL, getenv_fn, err);
}

int config_load(struct config *cfg, struct config_error *err) {
    return config_load_with(cfg, NULL, err);
}

int config_parse_string(struct config *cfg, const char *text, const char *path,
                        struct config_error *err) {
    struct config_state st;
    state_init(&st, cfg, err);
    snprintf(cfg->path, sizeof cfg->path, "%s", path);
    parse_text(&st, text, path);
    state_finish(&st);
    state_done(&st);
    return st.failed ? -1 : 0;
}
