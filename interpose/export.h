/*
 * export.h — marks the symbols that leave liboffload.so.
 *
 * Everything is compiled with -fvisibility=hidden; a hook is exported by writing
 * OFFLOAD_EXPORT in front of its definition, and the version script
 * (interpose/liboffload.map) lets only cu* and dlsym through.
 */
#ifndef OFFLOAD_EXPORT_H
#define OFFLOAD_EXPORT_H

#define OFFLOAD_EXPORT __attribute__((visibility("default")))

#endif /* OFFLOAD_EXPORT_H */
