/*
 * resolver_pick.c — which hook stands for a function the real resolver returned.
 */
#include "interpose/resolver.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* How the driver names the versions of an entry point: NAME, NAME_v2, NAME_v3 and their
 * per-thread variants. A hook for any of them is a candidate for a request of NAME. */
static const char *const version_suffixes[] = {
    "", "_v2", "_v3", "_ptds", "_ptsz", "_v2_ptds", "_v2_ptsz", "_v3_ptds", "_v3_ptsz",
};

static bool is_per_thread(const char *symbol) {
    size_t len = strlen(symbol);
    return len > 5 &&
           (strcmp(symbol + len - 5, "_ptds") == 0 || strcmp(symbol + len - 5, "_ptsz") == 0);
}

/* A candidate matches when a hook exists for it and the driver's symbol of that name is
 * the very function the resolver returned. */
static const struct hook_entry *match(const struct resolver_query *q, const char *symbol) {
    const struct hook_entry *hook = hook_find(symbol);
    if (!hook || q->lookup(q->ctx, symbol) != q->fn)
        return NULL;
    return hook;
}

/* Prefer the candidate whose per-thread-ness agrees with the request: aliases are the
 * same code, the only difference is the default stream the runtime is told about. */
static const struct hook_entry *better(const struct resolver_query *q,
                                       const struct hook_entry *current,
                                       const struct hook_entry *candidate) {
    if (!current)
        return candidate;
    bool wants_per_thread = (q->flags & CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM) != 0;
    if (is_per_thread(current->symbol) != wants_per_thread &&
        is_per_thread(candidate->symbol) == wants_per_thread)
        return candidate;
    return current;
}

const struct hook_entry *resolver_pick(const struct resolver_query *q) {
    const struct hook_entry *best = NULL;
    if (!q->fn || !q->requested)
        return NULL;
    if (q->dladdr_name)
        best = match(q, q->dladdr_name);
    char name[256];
    size_t len = strlen(q->requested);
    for (size_t i = 0; i < sizeof version_suffixes / sizeof version_suffixes[0]; i++) {
        if (len + strlen(version_suffixes[i]) >= sizeof name)
            break;
        snprintf(name, sizeof name, "%s%s", q->requested, version_suffixes[i]);
        if (q->dladdr_name && strcmp(name, q->dladdr_name) == 0)
            continue;
        const struct hook_entry *candidate = match(q, name);
        if (candidate)
            best = better(q, best, candidate);
    }
    return best;
}

bool resolver_family_hooked(const char *requested) {
    char name[256];
    size_t len = requested ? strlen(requested) : 0;
    for (size_t i = 0; len && i < sizeof version_suffixes / sizeof version_suffixes[0]; i++) {
        if (len + strlen(version_suffixes[i]) >= sizeof name)
            break;
        snprintf(name, sizeof name, "%s%s", requested, version_suffixes[i]);
        if (hook_find(name))
            return true;
    }
    return false;
}
