#!/usr/bin/env bats
# Reliability: liboffload must never be the reason a program crashes, hangs or gets
# wrong data — under injected driver faults, without host memory, with many threads,
# across fork and exit, over many runs, and with a hostile environment (issue 6).
# Everything runs on the simulated driver at toy sizes.

setup() {
    cd "$ROOT"
    B=$BUILD
    [[ $B == /* ]] || B=$ROOT/$BUILD
    LIB=$B/liboffload.so
    PIPE=$B/pipeline
    CONF=$ROOT/examples/pipeline/offload.conf
    export LD_LIBRARY_PATH=$B/sim
    unset LD_PRELOAD OFFLOAD_CONFIG OFFLOAD_BUDGET OFFLOAD_POLICY OFFLOAD_PREFETCH \
        OFFLOAD_STATS OFFLOAD_MODE OFFLOAD_MIN_SIZE OFFLOAD_LOG OFFLOAD_RECORD \
        SIMCUDA_FAIL SIMCUDA_FAIL_RANDOM SIMCUDA_LOG SIMCUDA_REPORT SIMCUDA_MEMORY
    TMP=$(mktemp -d)
}

teardown() {
    rm -rf "$TMP"
}

# The pipeline's checksum without liboffload on ample memory, at the toy scale used here.
reference_checksum() {
    SIMCUDA_MEMORY=4GiB "$PIPE" --scale 0.03 --steps 1 --quiet --out "$TMP/ref.png" |
        sed -n 's/^checksum: //p'
}

@test "fault sweep: every injected driver fault ends in the right checksum or a named error" {
    run tests/reliability/fault_sweep.sh
    echo "$output"
    [ "$status" -eq 0 ]
    [[ $output == *"BAD: 0;"* ]]
}

@test "pinned host memory unavailable: pageable backups, logged once, right checksum" {
    want=$(reference_checksum)
    [ -n "$want" ]
    # Every cuMemHostAlloc fails (one rule per call: the simulator fails the Nth call).
    status=0
    rules=$(for i in $(seq 1 32); do printf 'cuMemHostAlloc:%d,' "$i"; done)
    SIMCUDA_FAIL=${rules%,} SIMCUDA_MEMORY=28MiB SIMCUDA_REPORT=$TMP/sim.json \
        LD_PRELOAD=$LIB OFFLOAD_CONFIG=$CONF OFFLOAD_STATS=$TMP/stats.json \
        timeout 60 "$PIPE" --scale 0.03 --steps 1 --quiet --out "$TMP/out.png" \
        >"$TMP/out" 2>"$TMP/err" || status=$?
    cat "$TMP/err"
    [ "$status" -eq 0 ]
    [ "$(sed -n 's/^checksum: //p' "$TMP/out")" = "$want" ]
    # faults were really injected, evictions really happened, the fallback was said once
    grep -q '"injected_faults": [1-9]' "$TMP/sim.json"
    grep -Eq '"evictions": [1-9]' "$TMP/stats.json"
    [ "$(grep -ci 'pageable' "$TMP/err")" -eq 1 ]
}

@test "threads: 8 threads x 8 streams allocating, launching, copying, freeing for 30 s under pressure; every byte right" {
    # 8 threads x 4 live buffers of up to 3 MiB (4 MiB mapped) plus a shared one: about
    # three times what the 40 MiB device holds; one call needs at most 10 MiB, and the
    # untracked buffers (under 1 MiB) at most 22 MiB, so every call can be served.
    run env SIMCUDA_MEMORY=40MiB LD_PRELOAD="$LIB" OFFLOAD_STATS="$TMP/stats.json" \
        timeout 90 "$B/progs/stress_threads" --threads 8 --seconds "${STRESS_SECONDS:-30}"
    echo "$output"
    [ "$status" -eq 0 ]
    [[ $output == *"stress_threads: ok: 8 threads"* ]]
    # it really ran under pressure
    grep -Eq '"evictions": [1-9]' "$TMP/stats.json"
    grep -Eq '"restores": [1-9]' "$TMP/stats.json"
}
