/*
 * fuzz_config.c — libFuzzer target for the offload.conf parser.
 *
 * Any input must end in either a config whose invariants hold or a "fuzz.conf:LINE: ..."
 * diagnostic with the config left empty; never a crash, leak, hang or sanitizer report.
 * Built and run by tests/fuzz/run.sh.
 */
#include "config/config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define REQUIRE(cond)                                                                              \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

static void check_config(const struct config *cfg) {
    REQUIRE(strcmp(cfg->path, "fuzz.conf") == 0);
    REQUIRE(cfg->prefetch >= 0);
    REQUIRE(cfg->policy == CONFIG_POLICY_LRU || cfg->sequence_length > 0);
    for (size_t i = 0; i < cfg->sequence_length; i++) {
        REQUIRE(cfg->sequence[i] < cfg->component_count);
        REQUIRE(i == 0 || cfg->sequence[i] != cfg->sequence[i - 1]);
    }
    for (size_t i = 0; i < cfg->component_count; i++) {
        const struct config_component *c = &cfg->components[i];
        REQUIRE(c->name[0] != '\0' && strlen(c->name) < CONFIG_NAME_MAX);
        for (size_t r = 0; r < c->alloc_range_count; r++) {
            REQUIRE(c->allocs[r].first <= c->allocs[r].last);
            /* allocs never overlap, so each ordinal maps back to its own component */
            REQUIRE(config_component_for_ordinal(cfg, c->allocs[r].first) == (int)i);
            REQUIRE(config_component_for_ordinal(cfg, c->allocs[r].last) == (int)i);
        }
        /* an order lists its own component's allocations, each once */
        REQUIRE(c->order_count <= CONFIG_ORDER_MAX);
        for (size_t k = 0; k < c->order_count; k++)
            REQUIRE(config_component_for_ordinal(cfg, c->order[k]) == (int)i);
        for (size_t k = 0; k < c->kernel_count; k++) {
            REQUIRE(c->kernels[k][0] != '\0');
            int owner = config_component_for_kernel(cfg, c->kernels[k]);
            REQUIRE(owner >= -1 && owner < (int)cfg->component_count);
        }
    }
    (void)config_size_bytes(&cfg->budget, UINT64_MAX);
    (void)config_size_bytes(&cfg->min_size, 80ull << 30);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    struct config cfg;
    struct config_error err;
    if (config_parse_string(&cfg, text, "fuzz.conf", &err) == 0) {
        check_config(&cfg);
        config_free(&cfg);
    } else {
        REQUIRE(strncmp(err.text, "fuzz.conf:", 10) == 0);
        REQUIRE(cfg.components == NULL && cfg.component_count == 0 && cfg.sequence == NULL);
    }
    free(text);
    return 0;
}
