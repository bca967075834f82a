/*
 * resolver.h — liboffload's cuGetProcAddress / cuGetProcAddress_v2.
 *
 * The CUDA runtime and frameworks fetch every driver entry point by name, ABI version
 * and flags through the driver's resolver, never through the exported symbols. Our
 * resolver asks the real one first, learns which exact exported symbol it returned, and
 * hands out liboffload's hook only when a hook exists for exactly that symbol (hence
 * exactly that ABI); otherwise the driver's own pointer, untouched. It never guesses a
 * "newest" version, never calls itself, and makes no CUDA call of its own (it works
 * before cuInit).
 */
#ifndef OFFLOAD_RESOLVER_H
#define OFFLOAD_RESOLVER_H

#include "interpose/hook.h"

#include <cuda.h>
#include <stdbool.h>

/* What the real resolver said about `fn` for the request `requested`. */
struct resolver_query {
    const char *requested;   /* the name asked for, e.g. "cuMemcpyHtoD" */
    cuuint64_t flags;        /* the request's CU_GET_PROC_ADDRESS_* flags */
    void *fn;                /* what the real resolver returned */
    const char *dladdr_name; /* the exported name dladdr gives for fn in the driver, or NULL */
    /* The driver's address of an exported symbol (dlsym on its handle), NULL if none. */
    void *(*lookup)(void *ctx, const char *symbol);
    void *ctx;
};

/* The hook that stands for exactly the function the driver returned, or NULL (hand out
 * the driver's pointer). Candidates are the dladdr name and the requested name with its
 * version/per-thread suffixes; a candidate matches only when the driver's own symbol of
 * that name IS fn. Several matches mean the driver exports aliases of one function (same
 * code, same ABI); the request's per-thread flag then picks the _ptds/_ptsz one, so the
 * runtime is told the right default stream. Pure: no driver, no dl* call of its own. */
const struct hook_entry *resolver_pick(const struct resolver_query *query);

/* True when liboffload hooks some version of `requested` (NAME, NAME_v2, NAME_ptds...). */
bool resolver_family_hooked(const char *requested);

/* For the hooks of cuGetProcAddress(_v2): `fn` returned by the real resolver for
 * `requested` -> the pointer to hand out. Logs each decision at debug level. */
void *resolver_substitute(const char *requested, int version, cuuint64_t flags, void *fn);

#endif /* OFFLOAD_RESOLVER_H */
