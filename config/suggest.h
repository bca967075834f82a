/*
 * suggest.h — "did you mean ...?" for misspelt keys, sections, values and components.
 */
#ifndef OFFLOAD_CONFIG_SUGGEST_H
#define OFFLOAD_CONFIG_SUGGEST_H

#include <stddef.h>

/* Edit distance counting insertions, deletions, substitutions and transpositions of
 * two adjacent characters (optimal string alignment: "prefech" -> "prefetch" is 1,
 * "pefretch" -> "prefetch" is 1). Strings longer than 64 characters get a large value. */
size_t suggest_distance(const char *a, const char *b);

/* The candidate closest to word at distance <= 2 (the first one on a tie), or NULL.
 * A candidate equal to word is never suggested. */
const char *suggest_closest(const char *word, const char *const *candidates, size_t count);

#endif /* OFFLOAD_CONFIG_SUGGEST_H */
