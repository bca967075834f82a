/*
 * log.h — liboffload's messages on stderr, each prefixed "offload: ".
 * The level comes from OFFLOAD_LOG / `log =` (default warn) and is set once by
 * the runtime's early set-up; until then, warnings and errors are printed. The
 * bottom layer: it depends on nothing of liboffload's.
 */
#ifndef OFFLOAD_LOG_H
#define OFFLOAD_LOG_H

#include <stdbool.h>

/* In order of verbosity: a level shows its own messages and every level before it. */
enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

void log_set_level(enum log_level level);
bool log_enabled(enum log_level level);

__attribute__((format(printf, 2, 3))) void log_msg(enum log_level level, const char *fmt, ...);

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                                                             \
    do {                                                                                           \
        if (log_enabled(LOG_DEBUG))                                                                \
            log_msg(LOG_DEBUG, __VA_ARGS__);                                                       \
    } while (0)

#endif /* OFFLOAD_LOG_H */
