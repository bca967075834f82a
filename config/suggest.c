/*
 * suggest.c — did-you-mean suggestions by optimal-string-alignment distance.
 */
#include "config/suggest.h"

#include <string.h>

#define SUGGEST_MAX_LEN 64

static size_t min3(size_t a, size_t b, size_t c) {
    size_t m = a < b ? a : b;
    return m < c ? m : c;
}

size_t suggest_distance(const char *a, const char *b) {
    size_t n = strlen(a), m = strlen(b);
    if (n > SUGGEST_MAX_LEN || m > SUGGEST_MAX_LEN)
        return (size_t)-1;
    /* d[i][j]: distance between the first i characters of a and the first j of b. */
    size_t d[SUGGEST_MAX_LEN + 1][SUGGEST_MAX_LEN + 1];
    for (size_t i = 0; i <= n; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= m; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= n; i++) {
        for (size_t j = 1; j <= m; j++) {
            size_t cost = a[i - 1] != b[j - 1];
            d[i][j] = min3(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < d[i][j])
                d[i][j] = d[i - 2][j - 2] + 1;
        }
    }
    return d[n][m];
}

const char *suggest_closest(const char *word, const char *const *candidates, size_t count) {
    const char *best = NULL;
    size_t best_distance = 3; /* suggest only at distance <= 2 */
    for (size_t i = 0; i < count; i++) {
        size_t d = suggest_distance(word, candidates[i]);
        if (d > 0 && d < best_distance) {
            best = candidates[i];
            best_distance = d;
        }
    }
    return best;
}
