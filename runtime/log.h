/*
 * log.h — liboffload's messages on stderr, each prefixed "offload: ".
 * The level comes from OFFLOAD_LOG / `log =` (default warn) and is set once by
 * runtime_early_init; until then, warnings and errors are printed.
 */
#ifndef OFFLOAD_LOG_H
#define OFFLOAD_LOG_H

#include "config/config.h"

#include <stdbool.h>

void log_set_level(enum config_log_level level);
bool log_enabled(enum config_log_level level);

__attribute__((format(printf, 2, 3))) void log_msg(enum config_log_level level, const char *fmt,
                                                   ...);

#define log_error(...) log_msg(CONFIG_LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(CONFIG_LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(CONFIG_LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                                                             \
    do {                                                                                           \
        if (log_enabled(CONFIG_LOG_DEBUG))                                                         \
            log_msg(CONFIG_LOG_DEBUG, __VA_ARGS__);                                                \
    } while (0)

#endif /* OFFLOAD_LOG_H */
