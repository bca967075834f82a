/*
 * test_trace.c — the timeline recorder (runtime/report/trace.h) and the status line
 * (runtime/report/status.h), driven by calling their event functions directly with a
 * fake clock, as the runtime will once it is wired (see trace.h's Wiring paragraph).
 *
 *   test_trace [FILE]   with FILE, the scripted pipeline timeline is also kept there
 *                       (tests/trace.bats checks its invariants with jq)
 */
#include "check.h"

#include "base/log.h"
#include "config/config.h"
#include "runtime/report/status.h"
#include "runtime/report/trace.h"

#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define US 1000ull /* the fake clock counts nanoseconds */
#define MS 1000000ull

static uint64_t fake_now;
static uint64_t fake_clock(void) {
    return fake_now;
}

static const char *keep_file; /* argv[1] */
static char dir[] = "/tmp/test_trace.XXXXXX";
static struct config cfg;

/* A config with three components and a trace path in the test's directory. */
static void load_config(const char *trace_name) {
    char text[512];
    snprintf(text, sizeof text,
             "[offload]\nsequence = te -> unet -> vae\ntrace = %s/%s\n"
             "[component te]\n[component unet]\n[component vae]\n",
             dir, trace_name);
    struct config_error err;
    config_free(&cfg);
    if (config_parse_string(&cfg, text, "t.conf", &err) != 0)
        fprintf(stderr, "config: %s\n", err.text);
}

static char *read_all(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s)
        s[n] = '\0';
    fclose(f);
    return s;
}

static size_t count_of(const char *haystack, const char *needle) {
    size_t n = 0;
    for (const char *p = haystack; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

static void start(const char *trace_name, size_t capacity) {
    load_config(trace_name);
    fake_now = 5 * MS; /* the trace's zero */
    trace_start_with(&cfg, true, capacity, -1, 0, fake_clock);
}

static void at(uint64_t ns) {
    fake_now = 5 * MS + ns;
}

TEST(off_unless_asked) {
    load_config("unused.json");
    cfg.trace_path[0] = '\0';
    trace_start(&cfg); /* no path; stderr under the test runner is no terminal */
    CHECK(!atomic_load(&trace_active));
    trace_launch(0);
    trace_evict_begin(1, 0, 10, NULL);
    CHECK(trace_json(0) == NULL);
    CHECK(trace_finish(0) == 0);
    char path[64];
    snprintf(path, sizeof path, "%s/unused.json", dir);
    CHECK(access(path, F_OK) != 0);
}

/* The pipeline's shape, scripted: te resident while unet's last allocation goes out, then a
 * switch to unet (te evicting on one stream while unet comes back on the other), a launch
 * that stalls on that restore, vae. */
TEST(pipeline_timeline) {
    start("pipeline.json", TRACE_DEFAULT_CAPACITY);
    const void *to_host = (const void *)0x10, *to_dev = (const void *)0x20;
    at(0);
    trace_component_state(0, TRACE_RESIDENT, 300);
    trace_component_state(1, TRACE_EVICTING, 400);
    trace_evict_begin(2, 1, 400, to_host);
    for (int i = 0; i < 5; i++)
        trace_launch(0);
    at(50 * US);
    trace_evict_end(2, true);
    trace_component_state(1, TRACE_EVICTED, 0);
    at(100 * US);
    trace_component_state(0, TRACE_EVICTING, 300);
    trace_evict_begin(0, 0, 100, to_host);
    trace_evict_begin(1, 0, 200, to_host);
    trace_component_state(1, TRACE_RESTORING, 0);
    trace_restore_begin(2, 1, 400, to_dev);
    at(150 * US);
    trace_launch(1);
    trace_stall_begin(1, 1, 2);
    at(200 * US);
    trace_evict_end(0, true);
    trace_component_state(0, TRACE_EVICTING, 200);
    at(300 * US);
    trace_evict_end(1, true);
    trace_component_state(0, TRACE_EVICTED, 0);
    trace_restore_end(2, true);
    trace_component_state(1, TRACE_RESIDENT, 400);
    trace_stall_end();
    trace_launch(1);
    at(400 * US);
    trace_component_state(2, TRACE_RESIDENT, 50);
    trace_launch(2);
    at(500 * US);
    char *doc = trace_json(1000);
    CHECK(doc != NULL);
    CHECK(trace_finish(1000) == 0);
    char path[64];
    snprintf(path, sizeof path, "%s/pipeline.json", dir);
    char *json = read_all(path);
    CHECK(json != NULL);
    if (!json || !doc) {
        free(doc);
        return;
    }
    /* trace_json closes nothing: the open state spans only appear in the file */
    CHECK(strlen(doc) < strlen(json));
    free(doc);
    CHECK(strstr(json, "\"otherData\": {\"budget_bytes\": 1000, \"capacity\": 65536, "
                       "\"dropped_spans\": 0, \"clock\": \"host CLOCK_MONOTONIC\", "
                       "\"elapsed_us\": 500.000}") != NULL);
    CHECK(strstr(json, "\"args\": {\"name\": \"component unet\"}") != NULL);
    CHECK(strstr(json, "\"args\": {\"name\": \"copy stream 1 (to host)\"}") != NULL);
    CHECK(strstr(json, "\"args\": {\"name\": \"copy stream 2 (to device)\"}") != NULL);
    /* te: resident 0-100 us, evicting 100-300 us, evicted from 300 us to the end */
    CHECK(strstr(json, "\"tid\": 1, \"ts\": 0.000, \"dur\": 100.000, \"name\": \"resident\"") !=
          NULL);
    CHECK(strstr(json, "\"tid\": 1, \"ts\": 100.000, \"dur\": 200.000, \"name\": \"evicting\"") !=
          NULL);
    CHECK(strstr(json, "\"tid\": 1, \"ts\": 300.000, \"dur\": 200.000, \"name\": \"evicted\"") !=
          NULL);
    /* one stream runs its copies in order: #1 starts when #0 ended */
    CHECK(strstr(json, "\"tid\": 1000, \"ts\": 100.000, \"dur\": 100.000, \"name\": \"evict "
                       "te#0\", \"args\": {\"alloc\": 0, \"component\": \"te\", \"bytes\": 100, "
                       "\"GBps\": 0.001, \"queued_us\": 100.000, \"outcome\": \"ok\"}") != NULL);
    CHECK(strstr(json, "\"tid\": 1000, \"ts\": 200.000, \"dur\": 100.000, \"name\": \"evict "
                       "te#1\", \"args\": {\"alloc\": 1, \"component\": \"te\", \"bytes\": 200, "
                       "\"GBps\": 0.002, \"queued_us\": 100.000") != NULL);
    CHECK(strstr(json, "\"tid\": 1001, \"ts\": 100.000, \"dur\": 200.000, \"name\": \"restore "
                       "unet#2\"") != NULL);
    CHECK(strstr(json, "\"tid\": 2000, \"ts\": 150.000, \"dur\": 150.000, \"name\": \"stall on "
                       "unet\", \"cname\": \"bad\", \"args\": {\"component\": \"unet\", \"on\": "
                       "\"unet\", \"alloc\": 2}") != NULL);
    /* launches: three turns, five of te's, two of unet's, one of vae's */
    CHECK(strstr(json, "\"tid\": 2001, \"ts\": 0.000, \"dur\": 0.000, \"name\": \"te\", \"args\": "
                       "{\"launches\": 5}") != NULL);
    CHECK(strstr(json, "\"tid\": 2001, \"ts\": 150.000, \"dur\": 150.000, \"name\": \"unet\", "
                       "\"args\": {\"launches\": 2}") != NULL);
    CHECK(strstr(json, "\"name\": \"vae\", \"args\": {\"launches\": 1}") != NULL);
    CHECK_EQ_U64(count_of(json, "\"cat\": \"turn\""), 3);
    /* every counter sample is every component's bytes at that instant */
    CHECK(strstr(json, "\"ts\": 300.000, \"args\": {\"te\": 0, \"unet\": 400, \"vae\": 0}") !=
          NULL);
    CHECK(strstr(json, "\"ts\": 400.000, \"args\": {\"te\": 0, \"unet\": 400, \"vae\": 50}") !=
          NULL);
    if (keep_file) {
        FILE *f = fopen(keep_file, "w");
        if (f) {
            fputs(json, f);
            fclose(f);
        }
    }
    free(json);
}

TEST(ring_keeps_the_latest_and_counts_the_dropped) {
    start("ring.json", 8);
    at(0);
    trace_component_state(2, TRACE_RESIDENT, 77); /* a counter sample soon dropped */
    for (int i = 0; i < 50; i++) {
        at((uint64_t)(i + 1) * US);
        trace_launch(i % 2); /* a new turn each time: 49 closed turns */
    }
    char *json = trace_json(0);
    CHECK(json != NULL);
    if (!json)
        return;
    CHECK_EQ_U64(count_of(json, "\"cat\": \"turn\""), 8);
    CHECK(strstr(json, "\"dropped_spans\": 42,") != NULL); /* 1 sample + 49 turns - 8 */
    /* the newest eight turns are kept: the last closed one began at 49 us */
    CHECK(strstr(json, "\"ts\": 49.000, \"dur\": 0.000, \"name\": \"te\"") != NULL);
    CHECK(strstr(json, "\"ts\": 41.000,") == NULL);
    free(json);

    /* a dropped counter sample still counts: vae's 77 bytes show in later samples */
    at(60 * US);
    trace_component_state(0, TRACE_RESIDENT, 5);
    json = trace_json(0);
    CHECK(json && strstr(json, "\"ts\": 60.000, \"args\": {\"te\": 5, \"unet\": 0, \"vae\": 77}"));
    free(json);
    trace_stop();
}

TEST(stalls_nest_and_unfinished_copies_are_marked) {
    start("nest.json", 64);
    at(0);
    trace_stall_begin(0, 1, 7);
    at(10 * US);
    trace_stall_begin(0, 2, 9);
    at(20 * US);
    trace_stall_end();
    at(30 * US);
    trace_stall_end();
    trace_stall_end(); /* unbalanced: ignored */
    trace_restore_begin(4, 1, 64, NULL);
    trace_evict_end(4, true); /* the wrong kind of end: ignored */
    at(40 * US);
    trace_evict_begin(5, -1, 64, NULL);
    trace_evict_end(5, false);
    at(50 * US);
    CHECK(trace_finish(0) == 0);
    char path[64];
    snprintf(path, sizeof path, "%s/nest.json", dir);
    char *json = read_all(path);
    CHECK(json != NULL);
    if (!json)
        return;
    CHECK(strstr(json, "\"ts\": 0.000, \"dur\": 30.000, \"name\": \"stall on unet\"") != NULL);
    CHECK(strstr(json, "\"ts\": 10.000, \"dur\": 10.000, \"name\": \"stall on vae\"") != NULL);
    CHECK_EQ_U64(count_of(json, "\"cat\": \"stall\""), 2);
    /* #5 failed at once; #4 never completed: closed at the end, after #5 on their stream */
    CHECK(strstr(json, "\"ts\": 40.000, \"dur\": 0.000, \"name\": \"evict #5\", \"args\": "
                       "{\"alloc\": 5, \"component\": \"(none)\", \"bytes\": 64, \"queued_us\": "
                       "40.000, \"outcome\": \"failed\"}") != NULL);
    CHECK(strstr(json,
                 "\"ts\": 40.000, \"dur\": 10.000, \"name\": \"restore unet#4\", "
                 "\"args\": {\"alloc\": 4, \"component\": \"unet\", \"bytes\": 64, "
                 "\"GBps\": 0.006, \"queued_us\": 30.000, \"outcome\": \"unfinished\"}") != NULL);
    CHECK(strstr(json, "\"copy stream 1 (to host and to device)\"") != NULL);
    free(json);
}

TEST(finish_reports_a_file_it_cannot_write) {
    load_config("no/such/dir/t.json");
    trace_start_with(&cfg, true, 16, -1, 0, fake_clock);
    trace_launch(0);
    CHECK(trace_finish(0) == -1);
    CHECK(!atomic_load(&trace_active));
}

/* --- the status line ------------------------------------------------------------------ */

static int open_terminal(int *master) {
    *master = posix_openpt(O_RDWR | O_NOCTTY);
    if (*master < 0 || grantpt(*master) || unlockpt(*master))
        return -1;
    return open(ptsname(*master), O_RDWR | O_NOCTTY);
}

/* What the terminal shows within 200 ms ("" if nothing). */
static void read_terminal(int master, char *buf, size_t len) {
    size_t n = 0;
    struct pollfd p = {master, POLLIN, 0};
    while (n + 1 < len && poll(&p, 1, 200) == 1) {
        ssize_t r = read(master, buf + n, len - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
}

TEST(status_line_on_a_terminal_at_info) {
    int master, slave = open_terminal(&master);
    CHECK(slave >= 0);
    if (slave < 0)
        return;
    load_config("unused.json");
    log_set_level(LOG_INFO);
    fake_now = 0;
    trace_start_with(&cfg, false, 0, slave, 3000 * MS, fake_clock);
    CHECK(atomic_load(&trace_active));
    CHECK(trace_json(0) == NULL); /* a status line, no recording */
    trace_component_state(1, TRACE_RESTORING, 0);
    trace_restore_begin(3, 1, 3 << 20, NULL);
    fake_now = 1000 * MS;
    trace_restore_end(3, true);
    trace_component_state(1, TRACE_RESIDENT, 3 << 20);
    char seen[512];
    read_terminal(master, seen, sizeof seen);
    CHECK_STR(seen, ""); /* nothing before the first interval */
    fake_now = 3500 * MS;
    trace_launch(1);
    read_terminal(master, seen, sizeof seen);
    CHECK_STR(seen, "offload: status 4 s: resident MiB te 0.0, unet 3.0, vae 0.0 (3.0 in all); "
                    "0 evictions, 1 restores, 3.0 MiB moved\r\n");
    fake_now = 4000 * MS;
    trace_launch(1); /* within the interval of the last line: quiet */
    read_terminal(master, seen, sizeof seen);
    CHECK_STR(seen, "");
    trace_stop();
    CHECK(!atomic_load(&trace_active));

    /* at warn, or on something that is not a terminal, no line */
    log_set_level(LOG_WARN);
    CHECK(!status_start(NULL, 0, slave, 0, 0));
    log_set_level(LOG_INFO);
    int fds[2];
    CHECK(pipe(fds) == 0);
    CHECK(!status_start(NULL, 0, fds[1], 0, 0));
    close(fds[0]);
    close(fds[1]);
    log_set_level(LOG_WARN);
    close(slave);
    close(master);
}

TEST(status_line_names_eight_components_and_sums_the_rest) {
    const char *names[10] = {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"};
    log_set_level(LOG_INFO);
    int master, slave = open_terminal(&master);
    CHECK(status_start(names, 10, slave, 0, 0));
    for (int i = 0; i < 10; i++)
        status_resident(i, (uint64_t)(i + 1) << 20);
    status_moved(true, 1 << 20);
    char line[512];
    status_format(line, sizeof line, 2 * 1000 * MS);
    CHECK_STR(line, "offload: status 2 s: resident MiB a 1.0, b 2.0, c 3.0, d 4.0, e 5.0, f 6.0, "
                    "g 7.0, h 8.0, others 19.0 (55.0 in all); 1 evictions, 0 restores, 1.0 MiB "
                    "moved");
    status_format(line, 20, 0); /* a short buffer: cut, still terminated */
    CHECK_EQ_U64(strlen(line), 19);
    status_stop();
    log_set_level(LOG_WARN);
    close(slave);
    close(master);
}

int main(int argc, char **argv) {
    keep_file = argc > 1 ? argv[1] : NULL;
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(off_unless_asked);
    RUN(pipeline_timeline);
    RUN(ring_keeps_the_latest_and_counts_the_dropped);
    RUN(stalls_nest_and_unfinished_copies_are_marked);
    RUN(finish_reports_a_file_it_cannot_write);
    RUN(status_line_on_a_terminal_at_info);
    RUN(status_line_names_eight_components_and_sums_the_rest);
    config_free(&cfg);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return check_summary();
}
