#!/usr/bin/env bats
# The benchmark programs of `make bench` run on the simulated driver at toy sizes and
# print valid JSON with the fields run.sh reads. No timing is asserted here: the figures
# and their targets are `make bench`'s business (tests/bench/NOTES.md).

setup() {
    cd "$ROOT"
    B=$BUILD
    [[ $B == /* ]] || B=$ROOT/$BUILD
    MODULE=$B/bench/bench_kernels.so
    LIB=$B/liboffload.so
    export LD_LIBRARY_PATH=$B/sim
    unset OFFLOAD_CONFIG OFFLOAD_BUDGET OFFLOAD_POLICY OFFLOAD_PREFETCH OFFLOAD_STATS LD_PRELOAD
    TMP=$(mktemp -d)
}

teardown() {
    rm -rf "$TMP"
}

# json FILE PYTHON-EXPRESSION: evaluates the expression with `d` bound to the parsed file
# (python3 rather than jq: it is on every machine this project runs on).
json() {
    python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"
}

@test "launch_overhead: per-batch figures for every batch, without and with liboffload" {
    "$B/bench/launch_overhead" "$MODULE" --batches 3 --launches 300 >"$TMP/bare.json"
    [ "$(json "$TMP/bare.json" 'len(d["ns_per_launch"])')" = 3 ]
    [ "$(json "$TMP/bare.json" 'd["median_ns"] > 0')" = True ]
    LD_PRELOAD=$LIB "$B/bench/launch_overhead" "$MODULE" --batches 2 --launches 300 \
        >"$TMP/offload.json"
    [ "$(json "$TMP/offload.json" 'len(d["ns_per_launch"]) == 2 and d["median_ns"] > 0')" = True ]
}

@test "launch_overhead: rejects a missing module and bad counts" {
    run "$B/bench/launch_overhead"
    [ "$status" -eq 2 ]
    run "$B/bench/launch_overhead" "$MODULE" --batches 0
    [ "$status" -eq 2 ]
    run "$B/bench/launch_overhead" "$TMP/no-such-module.so"
    [ "$status" -eq 1 ]
}

@test "move: without liboffload the data survives and every sample is there" {
    "$B/bench/move" "$MODULE" --mib 4 --cycles 2 >"$TMP/move.json"
    [ "$(json "$TMP/move.json" 'd["verified"]')" = True ]
    [ "$(json "$TMP/move.json" 'len(d["evict_ns"]) == len(d["bare_htod_ns"]) == 4')" = True ]
}

@test "move: under liboffload each timed launch evicts or restores the whole buffer" {
    LD_PRELOAD=$LIB OFFLOAD_CONFIG=$ROOT/tests/bench/move.conf OFFLOAD_BUDGET=6MiB \
        OFFLOAD_STATS=$TMP/stats.json "$B/bench/move" "$MODULE" --mib 4 --cycles 2 >"$TMP/move.json"
    [ "$(json "$TMP/move.json" 'd["verified"]')" = True ]
    [ "$(json "$TMP/move.json" 'd["evict_ratio"] > 0 and d["restore_ratio"] > 0')" = True ]
    [ "$(json "$TMP/move.json" 'len(d["swap_ns"]) == 2 and d["swap_ratio"] > 0')" = True ]
    # 2 cycles x 2 buffers evicted by `idle`, plus the first eviction: >= 5 x 4 MiB out,
    # and 4 restores in (the swaps that follow move more).
    comps='(d["components"].values() if isinstance(d["components"], dict) else d["components"])'
    [ "$(json "$TMP/stats.json" "sum(c['bytes_to_host'] for c in $comps) >= 5 * 4 << 20")" = True ]
    [ "$(json "$TMP/stats.json" "sum(c['bytes_to_device'] for c in $comps) >= 4 * 4 << 20")" = True ]
}

@test "startup: medians each way from spawned children" {
    "$B/bench/startup" "$LIB" "$ROOT/tests/bench/move.conf" --runs 3 >"$TMP/startup.json"
    [ "$(json "$TMP/startup.json" 'len(d["bare_ns"]) == len(d["offload_ns"]) == 3')" = True ]
    [ "$(json "$TMP/startup.json" 'd["median_bare_ns"] > 0 and d["median_offload_ns"] > 0')" = True ]
    run "$B/bench/startup" "$TMP/none.so" "$ROOT/tests/bench/move.conf"
    [ "$status" -eq 2 ]
}

@test "run.sh: a quick run of the program figures writes bench.json and a table" {
    command -v jq >/dev/null || skip "jq is not installed (run.sh needs it)"
    only="launch instr move startup"
    figures="launch_overhead_ns launch_overhead_instr move_ratio startup_ms"
    # valgrind cannot run an AddressSanitizer build's programs ("ASan runtime does not come
    # first in initial library list": valgrind preloads its own libraries;
    # https://github.com/google/sanitizers/issues/810): the other figures only there.
    if ldd "$B/bench/launch_overhead" | grep -q 'libasan\.so'; then
        only="launch move startup"
        figures="launch_overhead_ns move_ratio startup_ms"
    fi
    BENCH_QUICK=1 BENCH_ONLY="$only" BENCH_OUT=$TMP/bench.json BUILD=$B run tests/bench/run.sh
    echo "$output"
    [ "$status" -eq 0 ]
    for figure in $figures; do
        [ "$(json "$TMP/bench.json" "d['figures']['$figure']['verdict'] in ('PASS', 'MISS', 'info')")" = True ]
        [[ $output == *"$figure "* ]]
    done
    # The instruction count comes from valgrind and must be a real difference.
    [[ $figures != *launch_overhead_instr* ]] ||
        [ "$(json "$TMP/bench.json" "d['figures']['launch_overhead_instr']['detail']['driver_per_launch'] > 0")" = True ]
}

@test "run.sh: the pipeline under liboffload gives the all-resident checksum and a peak" {
    command -v jq >/dev/null || skip "jq is not installed (run.sh needs it)"
    # Only peak_ratio: overlap and clean_evict take minutes; `make bench` runs them.
    BENCH_QUICK=1 BENCH_ONLY="peak" BENCH_OUT=$TMP/bench.json BUILD=$B run tests/bench/run.sh
    echo "$output"
    [ "$status" -eq 0 ]   # a checksum differing from the all-resident run exits 1
    [ "$(json "$TMP/bench.json" "0 < d['figures']['peak_ratio']['value'] <= 1")" = True ]
    [ "$(json "$TMP/bench.json" "sorted(d['figures']) == ['peak_ratio']")" = True ]
}

# The GPU script runs only where a GPU is lent, rarely: a broken parse there costs the
# whole loan. Here every step of it runs on the simulated driver (its figures mean
# nothing) and must reach RESULTS with every check passed, the streaming rows included.
@test "tests/gpu/run.sh: every step's plumbing on the simulated driver (GPU_SIMULATE=1)" {
    run env -u LD_LIBRARY_PATH GPU_SIMULATE=1 BUILD="$B" bash tests/gpu/run.sh
    [ "$status" -eq 0 ] || { echo "$output" | tail -20; false; }
    results=$B/gpu/RESULTS.simulated.md
    grep -q 'All correctness checks passed' "$results"
    grep -q '^| stream: unet all-resident | [0-9.]* s |' "$results"
    grep -Eq '^\| stream 0\.4: bytes / optimum .* \| [0-9.]+, [0-9.]+ \| .*checksums equal \|$' "$results"
    grep -Eq '^\| stream 0\.4\.overlap: bytes / optimum .* \| [0-9.]+, [0-9.]+ \|' "$results"
    grep -q '^| move_ratio restore' "$results"
    grep -q '^| launch_overhead_ns' "$results"
}
