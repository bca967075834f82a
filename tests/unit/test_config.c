/*
 * test_config.c — offload.conf and its environment overrides: every key, every value
 * rule, every diagnostic with its exact wording, the lookups the runtime uses.
 */
#include "config/config.h"
#include "config/suggest.h"
#include "config/values.h"
#include "tests/unit/check.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MiB (1ull << 20)
#define GiB (1ull << 30)

/* --- helpers -------------------------------------------------------------------------- */

static struct config cfg;
static struct config_error err;

static int parse(const char *text) {
    return config_parse_string(&cfg, text, "offload.conf", &err);
}

/* The config must be rejected with exactly `expected`, leaving cfg empty. */
#define CHECK_ERROR(conf, expected)                                                                \
    do {                                                                                           \
        CHECK(parse(conf) == -1);                                                                  \
        CHECK_STR(err.text, expected);                                                             \
        CHECK(cfg.components == NULL && cfg.component_count == 0 && cfg.sequence == NULL);         \
    } while (0)

/* A fake environment: NULL-terminated "NAME=value" strings. */
static const char *const *fake_env;
static const char *fake_getenv(const char *name) {
    size_t n = strlen(name);
    for (const char *const *e = fake_env; e && *e; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
            return *e + n + 1;
    return NULL;
}
static const char *no_env(const char *name) {
    (void)name;
    return NULL;
}

static char tmpdir[64];
static char *write_file(const char *name, const char *text) {
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    return path;
}

static const char *const pipeline_conf = "# the reference pipeline\n"
                                         "[offload]\n"
                                         "sequence = text_encoder -> unet -> vae\n"
                                         "policy = sequence\n"
                                         "prefetch = 1\n"
                                         "\n"
                                         "[component text_encoder]\n"
                                         "allocs = 0-11\n"
                                         "kernels = clip_*, te_*\n"
                                         "\n"
                                         "[component unet]\n"
                                         "allocs = 12-40, 41\n"
                                         "readonly = yes\n"
                                         "\n"
                                         "[component vae]\n"
                                         "allocs = 42-\n"
                                         "keep = yes\n";

/* --- defaults and a full config ------------------------------------------------------- */

TEST(defaults_without_a_file) {
    fake_env = NULL;
    CHECK(config_load_from(&cfg, NULL, fake_getenv, &err) == 0);
    CHECK_STR(cfg.path, "");
    CHECK(cfg.policy == CONFIG_POLICY_LRU);
    CHECK(!cfg.budget.set);
    CHECK(cfg.min_size.set && !cfg.min_size.is_percent);
    CHECK_EQ_U64(cfg.min_size.bytes, MiB);
    CHECK_EQ_U64(cfg.prefetch, 1);
    CHECK(cfg.log_level == LOG_WARN);
    CHECK_STR(cfg.stats_path, "");
    CHECK_STR(cfg.trace_path, "");
    CHECK(cfg.summary);
    CHECK(cfg.fingerprint);
    CHECK(cfg.mode == CONFIG_MODE_RUN);
    CHECK_STR(cfg.record_path, "offload.recorded.conf");
    CHECK_STR(cfg.driver_path, "libcuda.so.1");
    CHECK_EQ_U64(cfg.component_count, 0);
    CHECK_EQ_U64(cfg.sequence_length, 0);
    config_free(&cfg);
}

TEST(pipeline_config) {
    CHECK(parse(pipeline_conf) == 0);
    CHECK_STR(cfg.path, "offload.conf");
    CHECK(cfg.policy == CONFIG_POLICY_SEQUENCE);
    CHECK_EQ_U64(cfg.component_count, 3);
    CHECK_EQ_U64(cfg.sequence_length, 3);
    if (cfg.component_count == 3 && cfg.sequence_length == 3) {
        const struct config_component *te = &cfg.components[0], *unet = &cfg.components[1],
                                      *vae = &cfg.components[2];
        CHECK_STR(te->name, "text_encoder");
        CHECK_EQ_U64(te->line, 7);
        CHECK_EQ_U64(te->allocs_line, 8);
        CHECK_EQ_U64(te->alloc_range_count, 1);
        CHECK_EQ_U64(te->allocs[0].first, 0);
        CHECK_EQ_U64(te->allocs[0].last, 11);
        CHECK_EQ_U64(te->kernel_count, 2);
        CHECK_STR(te->kernels[0], "clip_*");
        CHECK_STR(te->kernels[1], "te_*");
        CHECK(!te->keep && te->readonly == CONFIG_READONLY_NO);
        CHECK_STR(unet->name, "unet");
        CHECK_EQ_U64(unet->alloc_range_count, 2);
        CHECK_EQ_U64(unet->allocs[1].first, 41);
        CHECK_EQ_U64(unet->allocs[1].last, 41);
        CHECK(unet->readonly == CONFIG_READONLY_YES);
        CHECK_STR(vae->name, "vae");
        CHECK_EQ_U64(vae->allocs[0].first, 42);
        CHECK_EQ_U64(vae->allocs[0].last, UINT64_MAX);
        CHECK(vae->keep);
        CHECK_EQ_U64(cfg.sequence[0], 0);
        CHECK_EQ_U64(cfg.sequence[1], 1);
        CHECK_EQ_U64(cfg.sequence[2], 2);
    }
    config_free(&cfg);
    CHECK(cfg.components == NULL && cfg.sequence == NULL);
}

TEST(every_offload_key) {
    CHECK(parse("[offload]\n"
                "sequence = a -> b -> a -> c\n"
                "policy = budget\n"
                "budget = 25%\n"
                "prefetch = 0\n"
                "min_size = 4 KiB\n"
                "log = debug\n"
                "stats = /tmp/s.json\n"
                "trace = /tmp/t.json\n"
                "record = out.conf\n"
                "mode = record\n"
                "[component a]\n[component b]\n[component c]\n") == 0);
    CHECK(cfg.policy == CONFIG_POLICY_BUDGET);
    CHECK(cfg.budget.set && cfg.budget.is_percent && cfg.budget.percent == 25.0);
    CHECK_EQ_U64(cfg.prefetch, 0);
    CHECK_EQ_U64(cfg.min_size.bytes, 4096);
    CHECK(cfg.log_level == LOG_DEBUG);
    CHECK_STR(cfg.stats_path, "/tmp/s.json");
    CHECK_STR(cfg.trace_path, "/tmp/t.json");
    CHECK_STR(cfg.record_path, "out.conf");
    CHECK(cfg.mode == CONFIG_MODE_RECORD);
    CHECK_EQ_U64(cfg.sequence_length, 4);
    if (cfg.sequence_length == 4) {
        CHECK_EQ_U64(cfg.sequence[2], 0); /* a component may come back later */
        CHECK_EQ_U64(cfg.sequence[3], 2);
    }
    config_free(&cfg);

    CHECK(parse("[offload]\nlog = error\n") == 0);
    CHECK(cfg.log_level == LOG_ERROR);
    CHECK(parse("[offload]\nlog = info\nmode = run\n") == 0);
    CHECK(cfg.log_level == LOG_INFO && cfg.mode == CONFIG_MODE_RUN);
    config_free(&cfg);
}

TEST(policy_follows_the_sequence) {
    CHECK(parse("[component a]\n") == 0);
    CHECK(cfg.policy == CONFIG_POLICY_LRU);
    config_free(&cfg);
    CHECK(parse("[offload]\nsequence = a\n[component a]\n") == 0);
    CHECK(cfg.policy == CONFIG_POLICY_BUDGET); /* nothing moves while everything fits */
    config_free(&cfg);
    CHECK(parse("[offload]\nsequence = a\npolicy = lru\n[component a]\n") == 0);
    CHECK(cfg.policy == CONFIG_POLICY_LRU);
    config_free(&cfg);
    CHECK_ERROR("[offload]\npolicy = budget\n", "offload.conf:2: policy 'budget' needs a sequence");
    CHECK_ERROR("[offload]\npolicy = sequence\n",
                "offload.conf:2: policy 'sequence' needs a sequence");
}

/* --- the INI layer -------------------------------------------------------------------- */

TEST(comments_blanks_and_line_endings) {
    CHECK(parse("\xEF\xBB\xBF# full-line comment\n"
                "; also a comment\n"
                "   \t\n"
                "[offload]   # after a header\n"
                "    prefetch = 3   # trailing\n"
                "\tbudget=2GiB;trailing\r\n"
                "[ component   x ]\r\n"
                "allocs: 0-1\n"
                "keep = no") == 0);
    CHECK_EQ_U64(cfg.prefetch, 3);
    CHECK_EQ_U64(cfg.budget.bytes, 2 * GiB);
    CHECK_EQ_U64(cfg.component_count, 1);
    if (cfg.component_count == 1) {
        CHECK_STR(cfg.components[0].name, "x");
        CHECK_EQ_U64(cfg.components[0].line, 7);
        CHECK_EQ_U64(cfg.components[0].allocs[0].last, 1);
    }
    config_free(&cfg);
    CHECK(parse("") == 0);
    CHECK(parse("# nothing\n\n") == 0);
}

TEST(empty_components_are_declared) {
    CHECK(parse("[offload]\nsequence = a -> b\n[component a]\n[component b]\n") == 0);
    CHECK_EQ_U64(cfg.component_count, 2);
    CHECK_EQ_U64(cfg.sequence_length, 2);
    config_free(&cfg);
}

TEST(ini_errors) {
    CHECK_ERROR("[offload]\nprefetch = 1\nfoo bar\n",
                "offload.conf:3: expected 'key = value' or a [section] header, got 'foo bar'");
    CHECK_ERROR("[offload]\nprefetch = 1\nfoo # comment\n",
                "offload.conf:3: expected 'key = value' or a [section] header, got 'foo'");
    /* the first problem in file order wins, whoever finds it */
    CHECK_ERROR("[offload]\nfoo\nprefech = 1\n",
                "offload.conf:2: expected 'key = value' or a [section] header, got 'foo'");
    CHECK_ERROR("[offload]\nprefech = 1\nfoo\n",
                "offload.conf:2: unknown key 'prefech' in [offload] (did you mean 'prefetch'?)");
    CHECK_ERROR("\n[offload\n", "offload.conf:2: unterminated section header (missing ']')");
    CHECK_ERROR("[offload] x\n", "offload.conf:1: unexpected text after ']'");
    CHECK_ERROR("[offload]\n= 3\n", "offload.conf:2: missing key name before '='");
    CHECK_ERROR("budget = 1GiB\n",
                "offload.conf:1: key 'budget' outside any section (put it under [offload] or "
                "[component NAME])");
    char long_line[300];
    memset(long_line, 'x', sizeof long_line);
    memcpy(long_line, "[offload]\nstats = ", 18);
    memcpy(long_line + sizeof long_line - 2, "\n", 2);
    CHECK_ERROR(long_line, "offload.conf:2: line longer than 197 characters");
    /* a long comment is no long line */
    char long_comment[400];
    memset(long_comment, '#', sizeof long_comment);
    memcpy(long_comment, "[offload]\nprefetch = 2 ", 23);
    long_comment[sizeof long_comment - 1] = '\0';
    CHECK(parse(long_comment) == 0);
    CHECK_EQ_U64(cfg.prefetch, 2);
}

TEST(section_errors) {
    CHECK_ERROR("[ofload]\n", "offload.conf:1: unknown section [ofload] (did you mean [offload]?)");
    CHECK_ERROR("\n[components unet]\n",
                "offload.conf:2: unknown section [components unet] (did you mean [component "
                "unet]?)");
    CHECK_ERROR("[compnent]\n",
                "offload.conf:1: unknown section [compnent] (did you mean [component NAME]?)");
    CHECK_ERROR("[models]\n",
                "offload.conf:1: unknown section [models] (expected [offload] or [component "
                "NAME])");
    CHECK_ERROR("[]\n", "offload.conf:1: unknown section [] (expected [offload] or [component "
                        "NAME])");
    CHECK_ERROR("[offload main]\n", "offload.conf:1: section [offload] takes no name, got 'main'");
    CHECK_ERROR("[offload]\n[offload]\n",
                "offload.conf:2: duplicate section [offload] (first at line 1)");
    CHECK_ERROR("[component]\n",
                "offload.conf:1: missing component name in [component] (expected [component "
                "NAME])");
    CHECK_ERROR("[component a b]\n",
                "offload.conf:1: invalid component name 'a b' (expected letters, digits, '_', "
                "'.', '-')");
    CHECK_ERROR("[component a/b]\n",
                "offload.conf:1: invalid component name 'a/b' (expected letters, digits, '_', "
                "'.', '-')");
    CHECK_ERROR("[component "
                "a234567890123456789012345678901234567890123456789012345678901234]\n",
                "offload.conf:1: component name "
                "'a234567890123456789012345678901234567890123456789012345678901234' is longer "
                "than 63 characters");
    CHECK(parse("[component A-z_0.9]\n") == 0);
    config_free(&cfg);
    CHECK_ERROR("[component unet]\nallocs = 0\n\n[component unet]\n",
                "offload.conf:4: duplicate component 'unet' (first declared at line 1)");
}

TEST(key_errors) {
    CHECK_ERROR("[offload]\nsequence = a\n\n\n\n\nprefech = 2\n[component a]\n",
                "offload.conf:7: unknown key 'prefech' in [offload] (did you mean 'prefetch'?)");
    CHECK_ERROR("[offload]\nbugdet = 1\n",
                "offload.conf:2: unknown key 'bugdet' in [offload] (did you mean 'budget'?)");
    CHECK_ERROR("[offload]\ncolour = red\n",
                "offload.conf:2: unknown key 'colour' in [offload] (expected sequence, policy, "
                "budget, prefetch, min_size, log, stats, trace, record, mode or fingerprint)");
    CHECK_ERROR("[offload]\ndriver = /tmp/evil.so\n",
                "offload.conf:2: unknown key 'driver' in [offload] (expected sequence, policy, "
                "budget, prefetch, min_size, log, stats, trace, record, mode or fingerprint)");
    CHECK_ERROR("[offload]\nsummary = no\n",
                "offload.conf:2: unknown key 'summary' in [offload] (expected sequence, policy, "
                "budget, prefetch, min_size, log, stats, trace, record, mode or fingerprint)");
    CHECK_ERROR("[offload]\nallocs = 0-3\n",
                "offload.conf:2: key 'allocs' belongs in [component NAME], not in [offload]");
    CHECK_ERROR("[component unet]\nalocs = 0-3\n",
                "offload.conf:2: unknown key 'alocs' in [component unet] (did you mean "
                "'allocs'?)");
    CHECK_ERROR("[component unet]\nweights = 0-3\n",
                "offload.conf:2: unknown key 'weights' in [component unet] (expected allocs, "
                "indirect, kernels, keep, order or readonly)");
    CHECK_ERROR("[component unet]\noder = 0-3\n",
                "offload.conf:2: unknown key 'oder' in [component unet] (did you mean "
                "'order'?)");
    CHECK_ERROR("[component unet]\nprefetch = 2\n",
                "offload.conf:2: key 'prefetch' belongs in [offload], not in [component unet]");
    CHECK_ERROR("[offload]\nprefetch = 1\nlog = info\nprefetch = 2\n",
                "offload.conf:4: duplicate key 'prefetch' in [offload] (first set at line 2)");
    CHECK_ERROR("[component vae]\nkeep = yes\nkeep = no\n",
                "offload.conf:3: duplicate key 'keep' in [component vae] (first set at line 2)");
}

/* --- values --------------------------------------------------------------------------- */

TEST(sizes) {
    static const struct {
        const char *text;
        uint64_t bytes;
    } good[] = {
        {"0", 0},
        {"1048576", MiB},
        {"1B", 1},
        {"512 KiB", 512 << 10},
        {"1k", 1024},
        {"1KB", 1024},
        {"3MiB", 3 * MiB},
        {"3m", 3 * MiB},
        {"3 MB", 3 * MiB},
        {"1.5GiB", 3 * GiB / 2},
        {"1.5gib", 3 * GiB / 2},
        {"2G", 2 * GiB},
        {"2GB", 2 * GiB},
        {"1TiB", 1ull << 40},
        {"0.25 TB", 1ull << 38},
        {"0.1KiB", 102}, /* fractions of a byte round down */
        {"18446744073709551615", UINT64_MAX},
        {"16777215.999999TiB", (16777215ull << 40) + 1099510528264ull}, /* 0.999999 * 2^40 */
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        struct config_size s;
        struct value_msg msg;
        CHECK(value_parse_size(good[i].text, &s, &msg) == 0);
        CHECK(s.set && !s.is_percent);
        CHECK_EQ_U64(s.bytes, good[i].bytes);
    }
    struct config_size s;
    struct value_msg msg;
    CHECK(value_parse_size("50%", &s, &msg) == 0 && s.is_percent && s.percent == 50.0);
    CHECK(value_parse_size("100 %", &s, &msg) == 0 && s.percent == 100.0);
    CHECK(value_parse_size("0.5%", &s, &msg) == 0 && s.percent == 0.5);

    static const struct {
        const char *text, *message;
    } bad[] = {
        {"12XB", "malformed size '12XB' (expected bytes, KiB/MiB/GiB or N%)"},
        {"-1", "malformed size '-1' (expected bytes, KiB/MiB/GiB or N%)"},
        {"", "malformed size '' (expected bytes, KiB/MiB/GiB or N%)"},
        {"GiB", "malformed size 'GiB' (expected bytes, KiB/MiB/GiB or N%)"},
        {"1.GiB", "malformed size '1.GiB' (expected bytes, KiB/MiB/GiB or N%)"},
        {".5GiB", "malformed size '.5GiB' (expected bytes, KiB/MiB/GiB or N%)"},
        {"1e9", "malformed size '1e9' (expected bytes, KiB/MiB/GiB or N%)"},
        {"0x10", "malformed size '0x10' (expected bytes, KiB/MiB/GiB or N%)"},
        {"1 GiB x", "malformed size '1 GiB x' (expected bytes, KiB/MiB/GiB or N%)"},
        {"5%x", "malformed size '5%x' (expected bytes, KiB/MiB/GiB or N%)"},
        {"1.0000000000000000001", "malformed size '1.0000000000000000001' (expected bytes, "
                                  "KiB/MiB/GiB or N%)"},
        {"18446744073709551616", "size '18446744073709551616' is too large"},
        {"16777216TiB", "size '16777216TiB' is too large"},
        {"0%", "size '0%' out of range (expected 0 < N% <= 100)"},
        {"100.5%", "size '100.5%' out of range (expected 0 < N% <= 100)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(value_parse_size(bad[i].text, &s, &msg) == -1);
        CHECK_STR(msg.text, bad[i].message);
    }
    CHECK_ERROR("[offload]\nbudget = 12XB\n",
                "offload.conf:2: malformed size '12XB' (expected bytes, KiB/MiB/GiB or N%)");
    CHECK_ERROR("[offload]\nbudget =\n",
                "offload.conf:2: malformed size '' (expected bytes, KiB/MiB/GiB or N%)");
    CHECK_ERROR("[offload]\nbudget = 0\n", "offload.conf:2: budget '0' must be greater than 0");
    CHECK_ERROR("[offload]\nmin_size = 1 XiB\n",
                "offload.conf:2: malformed size '1 XiB' (expected bytes, KiB/MiB/GiB or N%)");
    CHECK(parse("[offload]\nmin_size = 0\n") == 0 && cfg.min_size.bytes == 0);
}

TEST(size_bytes_resolves_percentages) {
    struct config_size unset = {0}, abs = {.set = true, .bytes = 123},
                       pct = {.set = true, .is_percent = true, .percent = 25};
    CHECK_EQ_U64(config_size_bytes(&unset, 80 * GiB), 0);
    CHECK_EQ_U64(config_size_bytes(&abs, 80 * GiB), 123);
    CHECK_EQ_U64(config_size_bytes(&pct, 80 * GiB), 20 * GiB);
    pct.percent = 100;
    CHECK_EQ_U64(config_size_bytes(&pct, 80 * GiB + 1), 80 * GiB + 1);
}

TEST(alloc_ranges) {
    struct config_range *r;
    size_t n;
    struct value_msg msg;
    CHECK(value_parse_ranges("0-11, 14, 20-", &r, &n, &msg) == 0);
    CHECK_EQ_U64(n, 3);
    if (n == 3) {
        CHECK_EQ_U64(r[0].first, 0);
        CHECK_EQ_U64(r[0].last, 11);
        CHECK_EQ_U64(r[1].first, 14);
        CHECK_EQ_U64(r[1].last, 14);
        CHECK_EQ_U64(r[2].first, 20);
        CHECK_EQ_U64(r[2].last, UINT64_MAX);
        char buf[48];
        value_format_range(&r[0], buf, sizeof buf);
        CHECK_STR(buf, "0-11");
        value_format_range(&r[1], buf, sizeof buf);
        CHECK_STR(buf, "14");
        value_format_range(&r[2], buf, sizeof buf);
        CHECK_STR(buf, "20-");
    }
    free(r);
    CHECK(value_parse_ranges("3 - 5,7-7", &r, &n, &msg) == 0 && n == 2 && r[0].last == 5);
    free(r);

    static const struct {
        const char *text, *message;
    } bad[] = {
        {"5-3", "descending range '5-3' (write 3-5)"},
        {"0-11, x", "malformed range 'x' (expected N, N-M or N-)"},
        {"", "malformed range '' (expected N, N-M or N-)"},
        {"0,,1", "malformed range '' (expected N, N-M or N-)"},
        {"0-11,", "malformed range '' (expected N, N-M or N-)"},
        {"-5", "malformed range '-5' (expected N, N-M or N-)"},
        {"1-2-3", "malformed range '1-2-3' (expected N, N-M or N-)"},
        {"1 2", "malformed range '1 2' (expected N, N-M or N-)"},
        {"+1", "malformed range '+1' (expected N, N-M or N-)"},
        {"99999999999999999999", "number too large in range '99999999999999999999'"},
        {"1-99999999999999999999", "number too large in range '1-99999999999999999999'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(value_parse_ranges(bad[i].text, &r, &n, &msg) == -1);
        CHECK_STR(msg.text, bad[i].message);
    }
    CHECK_ERROR("[component unet]\nallocs = 5-3\n",
                "offload.conf:2: descending range '5-3' (write 3-5)");
}

TEST(overlapping_allocs) {
    CHECK_ERROR("[offload]\n"
                "sequence = text_encoder -> unet\n"
                "\n"
                "[component text_encoder]\n"
                "allocs = 0-11\n"
                "kernels = te_*\n"
                "\n"
                "\n"
                "\n"
                "[component unet]\n"
                "kernels = unet_*\n"
                "allocs = 10-14\n",
                "offload.conf:12: allocs 10-14 of 'unet' overlap allocs 0-11 of 'text_encoder' "
                "(line 5)");
    CHECK_ERROR("[component a]\nallocs = 20-\n[component b]\nallocs = 0-3, 1000\n",
                "offload.conf:4: allocs 1000 of 'b' overlap allocs 20- of 'a' (line 2)");
    CHECK_ERROR("[component a]\nallocs = 0-5, 3-8\n",
                "offload.conf:2: allocs 3-8 of 'a' overlap allocs 0-5 of 'a' (line 2)");
    CHECK(parse("[component a]\nallocs = 0-5, 6\n[component b]\nallocs = 7-\n") == 0);
    config_free(&cfg);
}

TEST(orders) {
    /* the order as written, ranges expanded in either direction, allocs anywhere */
    CHECK(parse("[component unet]\n"
                "order = 13-15, 5, 40-38, 20\n"
                "allocs = 5, 13-20, 38-40\n"
                "[component vae]\n"
                "allocs = 50-52\n") == 0);
    if (cfg.component_count == 2) {
        const struct config_component *u = &cfg.components[0];
        static const uint64_t want[] = {13, 14, 15, 5, 40, 39, 38, 20};
        CHECK_EQ_U64(u->order_count, sizeof want / sizeof want[0]);
        CHECK(u->order_count == 8 && memcmp(u->order, want, sizeof want) == 0);
        CHECK_EQ_U64(u->order_line, 2);
        CHECK_EQ_U64(cfg.components[1].order_count, 0); /* no key: no order */
        CHECK(cfg.components[1].order == NULL);
    }
    config_free(&cfg);
    CHECK(parse("[component a]\nallocs = 20-\norder = 65535, 20\n") == 0);
    config_free(&cfg);

    static const struct {
        const char *text, *message;
    } bad[] = {
        {"", "empty order"},
        {"  ", "empty order"},
        {"3, x", "malformed order item 'x' (expected N or N-M)"},
        {"3,,4", "malformed order item '' (expected N or N-M)"},
        {"3 4", "malformed order item '3 4' (expected N or N-M)"},
        {"-3", "malformed order item '-3' (expected N or N-M)"},
        {"20-", "open range '20-' in order (expected N or N-M)"},
        {"1-99999999999999999999", "number too large in order item '1-99999999999999999999'"},
        {"3, 5-7, 6", "allocation 6 twice in order"},
        {"9-2, 4-5", "allocation 4 twice in order"},
        {"0-65536", "order lists more than 65536 allocations"},
        {"0-18446744073709551615", "order lists more than 65536 allocations"},
        {"1-30000, 40000-80000", "order lists more than 65536 allocations"},
    };
    struct value_msg msg;
    uint64_t *order;
    size_t n;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        msg.text[0] = '\0';
        CHECK(value_parse_order(bad[i].text, &order, &n, &msg) == -1);
        CHECK_STR(msg.text, bad[i].message);
    }
    CHECK(value_parse_order("0-65535", &order, &n, &msg) == 0 && n == 65536 &&
          order[65535] == 65535);
    free(order);

    CHECK_ERROR("[component unet]\nallocs = 0-3\norder = 2, 1, 1\n",
                "offload.conf:3: allocation 1 twice in order");
    /* an order names its own component's allocations only, wherever allocs is written */
    CHECK_ERROR("[component a]\nallocs = 0-3\n[component b]\norder = 4, 2\nallocs = 4-9\n",
                "offload.conf:4: order of 'b' names allocation 2, which its allocs do not own");
    CHECK_ERROR("[component k]\nkernels = k_*\norder = 0\n",
                "offload.conf:3: order of 'k' names allocation 0, which its allocs do not own");
    CHECK_ERROR("[component a]\nallocs = 0-3\norder = 0\norder = 1\n",
                "offload.conf:4: duplicate key 'order' in [component a] (first set at line 3)");
    /* overlapping allocs are reported first: they are the deeper mistake */
    CHECK_ERROR("[component a]\nallocs = 0-3\norder = 9\n[component b]\nallocs = 3\n",
                "offload.conf:5: allocs 3 of 'b' overlap allocs 0-3 of 'a' (line 2)");
}

TEST(globs) {
    static const char *const good[] = {"*",       "unet_*", "[a-z]*",       "[!x]y",   "[^x]y",
                                       "[]]",     "[!]]",   "[[:alpha:]]*", "a\\[",    "x[.a.]",
                                       "[[=e=]]", "a]b",    "[\\]]x",       "?attn?*", "_Z*gemm*"};
    struct value_msg msg;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        CHECK(value_check_glob(good[i], &msg) == 0);
        if (value_check_glob(good[i], &msg) != 0)
            fprintf(stderr, "    rejected: %s: %s\n", good[i], msg.text);
    }
    static const struct {
        const char *text, *message;
    } bad[] = {
        {"x[a", "malformed glob 'x[a' (unbalanced '[')"},
        {"[", "malformed glob '[' (unbalanced '[')"},
        {"[]", "malformed glob '[]' (unbalanced '[')"},
        {"[!]", "malformed glob '[!]' (unbalanced '[')"},
        {"[[:alpha:]", "malformed glob '[[:alpha:]' (unbalanced '[')"},
        {"[[:alpha]", "malformed glob '[[:alpha]' (unbalanced '[')"},
        {"a\\", "malformed glob 'a\\' (trailing '\\')"},
        {"a b", "malformed glob 'a b' (blank inside; separate globs with ',')"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(value_check_glob(bad[i].text, &msg) == -1);
        CHECK_STR(msg.text, bad[i].message);
    }
    CHECK_ERROR("[component unet]\nkernels = unet_*, attn[12\n",
                "offload.conf:2: malformed glob 'attn[12' (unbalanced '[')");
    CHECK_ERROR("[component unet]\nkernels = unet_*,, x\n",
                "offload.conf:2: empty glob in 'unet_*,, x'");
    CHECK_ERROR("[component unet]\nkernels =\n", "offload.conf:2: empty glob in ''");
}

TEST(keep_and_readonly) {
    CHECK(parse("[component a]\nkeep = yes\nreadonly = no\n[component b]\nkeep = no\n"
                "readonly = auto\n[component c]\nkeep = true\n[component d]\nkeep = false\n") == 0);
    if (cfg.component_count == 4) {
        CHECK(cfg.components[0].keep && cfg.components[0].readonly == CONFIG_READONLY_NO);
        CHECK(!cfg.components[1].keep && cfg.components[1].readonly == CONFIG_READONLY_AUTO);
        CHECK(cfg.components[2].keep && !cfg.components[3].keep);
    }
    config_free(&cfg);
    CHECK_ERROR("[component a]\nkeep = maybe\n",
                "offload.conf:2: unknown boolean 'maybe' (expected yes or no)");
    CHECK_ERROR("[component a]\nkeep = yse\n",
                "offload.conf:2: unknown boolean 'yse' (did you mean 'yes'?)");
    CHECK_ERROR("[component a]\nkeep = YES\n",
                "offload.conf:2: unknown boolean 'YES' (expected yes or no)");
    CHECK_ERROR("[component a]\nreadonly = sometimes\n",
                "offload.conf:2: unknown readonly value 'sometimes' (expected yes, no or auto)");
}

TEST(numbers_and_enumerations) {
    CHECK_ERROR("[offload]\nprefetch = -1\n",
                "offload.conf:2: malformed number '-1' (expected an integer >= 0)");
    CHECK_ERROR("[offload]\nprefetch = 1.5\n",
                "offload.conf:2: malformed number '1.5' (expected an integer >= 0)");
    CHECK_ERROR("[offload]\nprefetch = two\n",
                "offload.conf:2: malformed number 'two' (expected an integer >= 0)");
    CHECK_ERROR("[offload]\nprefetch = 2147483648\n",
                "offload.conf:2: number '2147483648' is too large");
    CHECK(parse("[offload]\nprefetch = 2147483647\n") == 0 && cfg.prefetch == 2147483647);
    CHECK_ERROR("[offload]\npolicy = sequnce\n",
                "offload.conf:2: unknown policy 'sequnce' (did you mean 'sequence'?)");
    CHECK_ERROR("[offload]\npolicy = fifo\n",
                "offload.conf:2: unknown policy 'fifo' (expected sequence, budget or lru)");
    CHECK_ERROR("[offload]\nlog = verbose\n",
                "offload.conf:2: unknown log level 'verbose' (expected error, warn, info or "
                "debug)");
    CHECK_ERROR("[offload]\nlog = wran\n",
                "offload.conf:2: unknown log level 'wran' (did you mean 'warn'?)");
    CHECK_ERROR("[offload]\nmode = replay\n",
                "offload.conf:2: unknown mode 'replay' (expected run or record)");
    CHECK_ERROR("[offload]\nstats =\n", "offload.conf:2: empty path");
}

TEST(sequences) {
    CHECK(parse("[offload]\nsequence=a->b->c\n[component a]\n[component b]\n[component c]\n") == 0);
    CHECK_EQ_U64(cfg.sequence_length, 3);
    config_free(&cfg);
    CHECK(parse("[offload]\nsequence = x-1 -> y.2\n[component x-1]\n[component y.2]\n") == 0);
    CHECK_EQ_U64(cfg.sequence_length, 2);
    config_free(&cfg);
    CHECK_ERROR("[offload]\nsequence = text_encoder -> unte -> vae\n"
                "[component text_encoder]\n[component unet]\n[component vae]\n",
                "offload.conf:2: sequence names undeclared component 'unte' (did you mean "
                "'unet'?)");
    CHECK_ERROR("[offload]\nsequence = a -> decoder\n[component a]\n",
                "offload.conf:2: sequence names undeclared component 'decoder' (declare it with "
                "[component decoder])");
    CHECK_ERROR("[offload]\nsequence = a -> a -> b\n[component a]\n[component b]\n",
                "offload.conf:2: component 'a' twice in a row in sequence 'a -> a -> b'");
    CHECK_ERROR("[offload]\nsequence =\n", "offload.conf:2: empty sequence");
    CHECK_ERROR("[offload]\nsequence = a -> -> b\n",
                "offload.conf:2: empty name in sequence 'a -> -> b'");
    CHECK_ERROR("[offload]\nsequence = a ->\n", "offload.conf:2: empty name in sequence 'a ->'");
    CHECK_ERROR("[offload]\nsequence = a, b\n",
                "offload.conf:2: invalid component name 'a, b' (expected letters, digits, '_', "
                "'.', '-')");
}

/* --- lookups -------------------------------------------------------------------------- */

TEST(component_for_ordinal) {
    CHECK(parse(pipeline_conf) == 0);
    CHECK(config_component_for_ordinal(&cfg, 0) == 0);
    CHECK(config_component_for_ordinal(&cfg, 11) == 0);
    CHECK(config_component_for_ordinal(&cfg, 12) == 1);
    CHECK(config_component_for_ordinal(&cfg, 41) == 1);
    CHECK(config_component_for_ordinal(&cfg, 42) == 2);
    CHECK(config_component_for_ordinal(&cfg, UINT64_MAX) == 2);
    config_free(&cfg);
    CHECK(parse("[component a]\nallocs = 3, 5-6\n[component b]\nkernels = x\n") == 0);
    CHECK(config_component_for_ordinal(&cfg, 2) == -1);
    CHECK(config_component_for_ordinal(&cfg, 3) == 0);
    CHECK(config_component_for_ordinal(&cfg, 4) == -1);
    CHECK(config_component_for_ordinal(&cfg, 6) == 0);
    CHECK(config_component_for_ordinal(&cfg, 7) == -1);
    config_free(&cfg);
}

TEST(fingerprint_key) {
    CHECK(parse("[offload]\nfingerprint = no\n") == 0);
    CHECK(!cfg.fingerprint);
    config_free(&cfg);
    CHECK(parse("[offload]\nfingerprint = yes\n") == 0);
    CHECK(cfg.fingerprint);
    config_free(&cfg);
    CHECK_ERROR("[offload]\nfingerprint = maybe\n",
                "offload.conf:2: unknown boolean 'maybe' (expected yes or no)");
}

TEST(component_for_kernel) {
    CHECK(parse("[component te]\nkernels = clip_*, te_[0-9]*\n"
                "[component unet]\nkernels = *attn*, unet_?\n"
                "[component all]\nkernels = *\n") == 0);
    CHECK(config_component_for_kernel(&cfg, "clip_gemm") == 0);
    CHECK(config_component_for_kernel(&cfg, "te_3x") == 0);
    CHECK(config_component_for_kernel(&cfg, "te_x") == 2);
    CHECK(config_component_for_kernel(&cfg, "clip_attn") == 0); /* the first match wins */
    CHECK(config_component_for_kernel(&cfg, "unet_attn_fwd") == 1);
    CHECK(config_component_for_kernel(&cfg, "unet_a") == 1);
    CHECK(config_component_for_kernel(&cfg, "unet_ab") == 2);
    config_free(&cfg);
    CHECK(parse("[component te]\nkernels = te_*\n[component none]\n") == 0);
    CHECK(config_component_for_kernel(&cfg, "vae_decode") == -1);
    config_free(&cfg);
}

/* --- the environment ------------------------------------------------------------------ */

TEST(environment_overrides_the_file) {
    const char *path = write_file("env.conf", pipeline_conf);
    static const char *const env[] = {"OFFLOAD_SEQUENCE=vae -> unet",
                                      "OFFLOAD_POLICY=budget",
                                      "OFFLOAD_BUDGET=3GiB",
                                      "OFFLOAD_PREFETCH=4",
                                      "OFFLOAD_MIN_SIZE=64KiB",
                                      "OFFLOAD_LOG=info",
                                      "OFFLOAD_STATS=stats.json",
                                      "OFFLOAD_TRACE=trace.json",
                                      "OFFLOAD_SUMMARY=no",
                                      "OFFLOAD_FINGERPRINT=no",
                                      "OFFLOAD_MODE=record",
                                      "OFFLOAD_RECORD=rec.conf",
                                      "OFFLOAD_DRIVER=/opt/libcuda.so.1",
                                      NULL};
    fake_env = env;
    CHECK(config_load_from(&cfg, path, fake_getenv, &err) == 0);
    CHECK_STR(cfg.path, path);
    CHECK_EQ_U64(cfg.component_count, 3);
    CHECK_EQ_U64(cfg.sequence_length, 2);
    if (cfg.sequence_length == 2)
        CHECK(cfg.sequence[0] == 2 && cfg.sequence[1] == 1);
    CHECK(cfg.policy == CONFIG_POLICY_BUDGET);
    CHECK_EQ_U64(cfg.budget.bytes, 3 * GiB);
    CHECK_EQ_U64(cfg.prefetch, 4);
    CHECK_EQ_U64(cfg.min_size.bytes, 64 << 10);
    CHECK(cfg.log_level == LOG_INFO);
    CHECK_STR(cfg.stats_path, "stats.json");
    CHECK_STR(cfg.trace_path, "trace.json");
    CHECK(!cfg.summary);
    CHECK(!cfg.fingerprint);
    CHECK(cfg.mode == CONFIG_MODE_RECORD);
    CHECK_STR(cfg.record_path, "rec.conf");
    CHECK_STR(cfg.driver_path, "/opt/libcuda.so.1");
    config_free(&cfg);

    /* an empty variable counts as unset */
    static const char *const empty[] = {"OFFLOAD_BUDGET=", "OFFLOAD_PREFETCH=", NULL};
    fake_env = empty;
    CHECK(config_load_from(&cfg, path, fake_getenv, &err) == 0);
    CHECK(!cfg.budget.set && cfg.prefetch == 1);
    config_free(&cfg);

    /* a sequence from the environment alone picks the budget policy */
    static const char *const seq[] = {"OFFLOAD_SEQUENCE=unet", NULL};
    const char *no_seq = write_file("noseq.conf", "[component unet]\n");
    fake_env = seq;
    CHECK(config_load_from(&cfg, no_seq, fake_getenv, &err) == 0);
    CHECK(cfg.policy == CONFIG_POLICY_BUDGET && cfg.sequence_length == 1);
    config_free(&cfg);
}

TEST(environment_errors) {
    const char *path = write_file("env.conf", pipeline_conf);
    static const struct {
        const char *var, *message;
    } bad[] = {
        {"OFFLOAD_BUDGET=12XB",
         "OFFLOAD_BUDGET: malformed size '12XB' (expected bytes, KiB/MiB/GiB or N%)"},
        {"OFFLOAD_BUDGET=0", "OFFLOAD_BUDGET: budget '0' must be greater than 0"},
        {"OFFLOAD_MIN_SIZE=-1",
         "OFFLOAD_MIN_SIZE: malformed size '-1' (expected bytes, KiB/MiB/GiB or N%)"},
        {"OFFLOAD_SEQUENCE=text_encoder -> decoder",
         "OFFLOAD_SEQUENCE: sequence names undeclared component 'decoder' (declare it with "
         "[component decoder])"},
        {"OFFLOAD_SEQUENCE=unet -> vea",
         "OFFLOAD_SEQUENCE: sequence names undeclared component 'vea' (did you mean 'vae'?)"},
        {"OFFLOAD_SEQUENCE=unet -> unet", "OFFLOAD_SEQUENCE: component 'unet' twice in a row in "
                                          "sequence 'unet -> unet'"},
        {"OFFLOAD_POLICY=belady",
         "OFFLOAD_POLICY: unknown policy 'belady' (expected sequence, budget or lru)"},
        {"OFFLOAD_PREFETCH=x", "OFFLOAD_PREFETCH: malformed number 'x' (expected an integer >= 0)"},
        {"OFFLOAD_LOG=trace",
         "OFFLOAD_LOG: unknown log level 'trace' (expected error, warn, info or debug)"},
        {"OFFLOAD_MODE=recrd", "OFFLOAD_MODE: unknown mode 'recrd' (did you mean 'record'?)"},
        {"OFFLOAD_SUMMARY=maybe", "OFFLOAD_SUMMARY: unknown boolean 'maybe' (expected yes or no)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *env[] = {bad[i].var, NULL};
        fake_env = env;
        CHECK(config_load_from(&cfg, path, fake_getenv, &err) == -1);
        CHECK_STR(err.text, bad[i].message);
        CHECK(cfg.components == NULL && cfg.component_count == 0);
    }
    /* the file's errors come first */
    static const char *const env[] = {"OFFLOAD_BUDGET=12XB", NULL};
    fake_env = env;
    const char *broken = write_file("broken.conf", "[offload]\nprefech = 1\n");
    CHECK(config_load_from(&cfg, broken, fake_getenv, &err) == -1);
    char expected[512];
    snprintf(expected, sizeof expected,
             "%s:2: unknown key 'prefech' in [offload] (did you mean 'prefetch'?)", broken);
    CHECK_STR(err.text, expected);
    /* policy from the environment without any sequence */
    static const char *const policy[] = {"OFFLOAD_POLICY=budget", NULL};
    fake_env = policy;
    CHECK(config_load_from(&cfg, NULL, fake_getenv, &err) == -1);
    CHECK_STR(err.text, "OFFLOAD_POLICY: policy 'budget' needs a sequence");
}

/* secure_getenv returns NULL for everything in a setuid/setgid process: with such a
 * lookup the environment must change nothing, not even where the file comes from. */
TEST(secure_environment_gives_nothing) {
    const char *path = write_file("env.conf", pipeline_conf);
    CHECK(config_load_from(&cfg, path, no_env, &err) == 0);
    CHECK(cfg.prefetch == 1 && !cfg.budget.set && cfg.policy == CONFIG_POLICY_SEQUENCE);
    config_free(&cfg);

    /* and the default lookup is secure_getenv, which in a normal process sees setenv */
    setenv("OFFLOAD_PREFETCH", "7", 1);
    CHECK(config_load_from(&cfg, NULL, NULL, &err) == 0);
    CHECK_EQ_U64(cfg.prefetch, 7);
    config_free(&cfg);
    setenv("OFFLOAD_PREFETCH", "bad", 1);
    CHECK(config_load_from(&cfg, NULL, NULL, &err) == -1);
    CHECK_STR(err.text, "OFFLOAD_PREFETCH: malformed number 'bad' (expected an integer >= 0)");
    unsetenv("OFFLOAD_PREFETCH");
}

/* The real thing: a setuid copy of this test, run with a hostile environment and a broken
 * ./offload.conf, must load the defaults. The copy reports through its exit status. */
static int secure_child(void) {
    if (!getauxval(AT_SECURE))
        return 77; /* the setuid bit did not take (nosuid mount?) */
    struct config c;
    struct config_error e;
    if (config_load(&c, &e) != 0) {
        fprintf(stderr, "secure child: %s\n", e.text);
        _exit(1);
    }
    int ok = c.path[0] == '\0' && c.prefetch == 1 && !c.budget.set &&
             strcmp(c.driver_path, "libcuda.so.1") == 0;
    config_free(&c);
    /* _exit: LeakSanitizer's exit-time scan cannot work in a setuid process */
    fflush(NULL);
    _exit(ok ? 0 : 1);
}

static int copy_file(const char *from, const char *to) {
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    char buf[65536];
    size_t n;
    int rc = in && out ? 0 : -1;
    while (rc == 0 && (n = fread(buf, 1, sizeof buf, in)) > 0)
        rc = fwrite(buf, 1, n, out) == n ? 0 : -1;
    if (in)
        fclose(in);
    if (out && fclose(out) != 0)
        rc = -1;
    return rc;
}

TEST(setuid_program_ignores_the_environment) {
    if (geteuid() != 0) {
        fprintf(stderr, "    setuid check not run: needs root to make a setuid copy\n");
        return;
    }
    char exe[256], dir[256];
    snprintf(exe, sizeof exe, "%s/secure_child", tmpdir);
    snprintf(dir, sizeof dir, "%s/secure_cwd", tmpdir);
    CHECK(copy_file("/proc/self/exe", exe) == 0);
    CHECK(chown(exe, 65534, 65534) == 0 && chmod(exe, 04755) == 0);
    /* readable by the child's user, so that only AT_SECURE keeps it from being read */
    CHECK(chmod(tmpdir, 0755) == 0 && mkdir(dir, 0755) == 0);
    char conf[300];
    snprintf(conf, sizeof conf, "%s/offload.conf", dir);
    FILE *f = fopen(conf, "w");
    if (f) {
        fputs("this is not a config\n", f);
        fclose(f);
    }
    CHECK(chmod(conf, 0644) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        if (chdir(dir) != 0)
            _exit(3);
        setenv("OFFLOAD_CONFIG", "/nonexistent.conf", 1);
        setenv("OFFLOAD_BUDGET", "12XB", 1);
        setenv("OFFLOAD_PREFETCH", "9", 1);
        setenv("OFFLOAD_DRIVER", "/tmp/evil.so", 1);
        execl(exe, exe, "--secure-child", (char *)NULL);
        _exit(4);
    }
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
        fprintf(stderr, "    setuid check not run: the setuid bit has no effect here\n");
        return;
    }
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST(finding_the_file) {
    char cwd[4096];
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    char dir[128];
    snprintf(dir, sizeof dir, "%s/cwd", tmpdir);
    CHECK(mkdir(dir, 0700) == 0);
    CHECK(chdir(dir) == 0);

    /* no OFFLOAD_CONFIG and no ./offload.conf: no file */
    fake_env = NULL;
    CHECK(config_load_with(&cfg, fake_getenv, &err) == 0);
    CHECK_STR(cfg.path, "");
    config_free(&cfg);

    /* ./offload.conf when present */
    FILE *f = fopen("offload.conf", "w");
    if (f) {
        fputs("[offload]\nprefetch = 5\n", f);
        fclose(f);
    }
    CHECK(config_load_with(&cfg, fake_getenv, &err) == 0);
    CHECK_STR(cfg.path, "offload.conf");
    CHECK_EQ_U64(cfg.prefetch, 5);
    config_free(&cfg);

    /* OFFLOAD_CONFIG wins over ./offload.conf */
    f = fopen("other.conf", "w");
    if (f) {
        fputs("[offload]\nprefetch = 6\n", f);
        fclose(f);
    }
    static const char *const other[] = {"OFFLOAD_CONFIG=other.conf", NULL};
    fake_env = other;
    CHECK(config_load_with(&cfg, fake_getenv, &err) == 0);
    CHECK_STR(cfg.path, "other.conf");
    CHECK_EQ_U64(cfg.prefetch, 6);
    config_free(&cfg);

    /* an empty OFFLOAD_CONFIG means no file at all */
    static const char *const none[] = {"OFFLOAD_CONFIG=", NULL};
    fake_env = none;
    CHECK(config_load_with(&cfg, fake_getenv, &err) == 0);
    CHECK_STR(cfg.path, "");
    CHECK_EQ_U64(cfg.prefetch, 1);
    config_free(&cfg);

    /* an OFFLOAD_CONFIG naming a missing file is an error */
    static const char *const missing[] = {"OFFLOAD_CONFIG=x.conf", NULL};
    fake_env = missing;
    CHECK(config_load_with(&cfg, fake_getenv, &err) == -1);
    CHECK_STR(err.text, "OFFLOAD_CONFIG: cannot open 'x.conf': No such file or directory");

    /* errors in ./offload.conf carry its path */
    f = fopen("offload.conf", "w");
    if (f) {
        fputs("[offload]\n\nbudget = lots\n", f);
        fclose(f);
    }
    fake_env = NULL;
    CHECK(config_load_with(&cfg, fake_getenv, &err) == -1);
    CHECK_STR(err.text,
              "offload.conf:3: malformed size 'lots' (expected bytes, KiB/MiB/GiB or N%)");
    CHECK(unlink("offload.conf") == 0);
    CHECK(chdir(cwd) == 0);
}

TEST(file_errors) {
    char expected[512];
    CHECK(config_load_from(&cfg, tmpdir, no_env, &err) == -1);
    snprintf(expected, sizeof expected, "cannot read '%s': Is a directory", tmpdir);
    CHECK_STR(err.text, expected);

    CHECK(config_load_from(&cfg, "/nonexistent/offload.conf", no_env, &err) == -1);
    CHECK_STR(err.text, "cannot open '/nonexistent/offload.conf': No such file or directory");

    char path[128];
    snprintf(path, sizeof path, "%s/nul.conf", tmpdir);
    FILE *f = fopen(path, "w");
    if (f) {
        fwrite("[offload]\n\0x\n", 1, 13, f);
        fclose(f);
    }
    CHECK(config_load_from(&cfg, path, no_env, &err) == -1);
    snprintf(expected, sizeof expected, "%s:2: NUL byte (not a text file?)", path);
    CHECK_STR(err.text, expected);

    snprintf(path, sizeof path, "%s/big.conf", tmpdir);
    f = fopen(path, "w");
    if (f) {
        for (int i = 0; i < (1 << 20) / 8 + 1; i++)
            fputs("#######\n", f);
        fclose(f);
    }
    CHECK(config_load_from(&cfg, path, no_env, &err) == -1);
    snprintf(expected, sizeof expected, "'%s' is larger than 1024 KiB", path);
    CHECK_STR(err.text, expected);
}

TEST(did_you_mean_distance) {
    CHECK_EQ_U64(suggest_distance("prefetch", "prefetch"), 0);
    CHECK_EQ_U64(suggest_distance("prefech", "prefetch"), 1);   /* deletion */
    CHECK_EQ_U64(suggest_distance("prefettch", "prefetch"), 1); /* insertion */
    CHECK_EQ_U64(suggest_distance("prefetsh", "prefetch"), 1);  /* substitution */
    CHECK_EQ_U64(suggest_distance("perfetch", "prefetch"), 1);  /* transposition */
    CHECK_EQ_U64(suggest_distance("", "log"), 3);
    CHECK_EQ_U64(suggest_distance("kitten", "sitting"), 3);
    static const char *const keys[] = {"sequence", "policy", "budget", "prefetch", "log"};
    CHECK_STR(suggest_closest("polcy", keys, 5), "policy");
    CHECK_STR(suggest_closest("lgo", keys, 5), "log");
    CHECK(suggest_closest("logging", keys, 5) == NULL);
    CHECK(suggest_closest("log", keys, 5) == NULL); /* an exact match is no suggestion */
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "--secure-child") == 0)
        return secure_child();
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_config.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(defaults_without_a_file);
    RUN(pipeline_config);
    RUN(every_offload_key);
    RUN(policy_follows_the_sequence);
    RUN(comments_blanks_and_line_endings);
    RUN(empty_components_are_declared);
    RUN(ini_errors);
    RUN(section_errors);
    RUN(key_errors);
    RUN(sizes);
    RUN(size_bytes_resolves_percentages);
    RUN(alloc_ranges);
    RUN(overlapping_allocs);
    RUN(orders);
    RUN(globs);
    RUN(keep_and_readonly);
    RUN(numbers_and_enumerations);
    RUN(sequences);
    RUN(component_for_ordinal);
    RUN(fingerprint_key);
    RUN(component_for_kernel);
    RUN(environment_overrides_the_file);
    RUN(environment_errors);
    RUN(secure_environment_gives_nothing);
    RUN(setuid_program_ignores_the_environment);
    RUN(finding_the_file);
    RUN(file_errors);
    RUN(did_you_mean_distance);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return check_summary();
}
