#!/usr/bin/env bats
# Streaming a component larger than the budget (issue 16 item 6), and the yardstick of
# make bench's stream figure (tools/optimum). The pipeline at --scale 0.25 --steps 4: the
# unet owns 184 MiB (162.5 MiB of weights and its activations); on a device of 80, 60 and
# 40% of that it must stream, the bandwidth model on as in make bench. The time figures
# are make bench's (tests/bench/NOTES.md); here the outcome and the counts.

setup_file() {
    export ROOT=${ROOT:-$(cd "$BATS_TEST_DIRNAME/.." && pwd)}
    export BUILD=${BUILD:-build}
    [[ $BUILD == /* ]] || BUILD=$ROOT/$BUILD
    export LD_LIBRARY_PATH=$BUILD/sim
    unset LD_PRELOAD OFFLOAD_CONFIG OFFLOAD_BUDGET OFFLOAD_POLICY OFFLOAD_PREFETCH \
        OFFLOAD_SEQUENCE OFFLOAD_STATS OFFLOAD_MODE OFFLOAD_RECORD OFFLOAD_LOG OFFLOAD_TRACE \
        OFFLOAD_MIN_SIZE SIMCUDA_FAIL SIMCUDA_FAIL_RANDOM SIMCUDA_REPORT SIMCUDA_MEMORY
    SIMCUDA_MEMORY=8GiB "$BUILD/pipeline" --scale 0.25 --steps 4 --quiet \
        --out "$BATS_FILE_TMPDIR/ref.png" >"$BATS_FILE_TMPDIR/ref.out" 2>&1
    SIMCUDA_MEMORY=8GiB OFFLOAD_CONFIG="$ROOT/examples/pipeline/offload.conf" \
        OFFLOAD_STATS="$BATS_FILE_TMPDIR/sizes.json" LD_PRELOAD="$BUILD/liboffload.so" \
        "$BUILD/pipeline" --scale 0.25 --steps 4 --quiet --out "$BATS_FILE_TMPDIR/sizes.png" \
        >/dev/null 2>&1
}

setup() {
    T=$BATS_TEST_TMPDIR
    OPTIMUM=$BUILD/tools/optimum
}

# streamed FRACTION [ENV...]: the pipeline on a device of FRACTION of the unet's bytes;
# stats in $T/stats.json, output in $T/out, image in $T/out.png.
streamed() {
    local f=$1 unet device
    shift
    unet=$(jq '.components[] | select(.name == "unet") | .bytes' "$BATS_FILE_TMPDIR/sizes.json")
    device=$(awk -v u="$unet" -v f="$f" 'BEGIN { printf "%d", u * f }')
    env SIMCUDA_MEMORY="$device" SIMCUDA_PCIE_GBPS=8 \
        OFFLOAD_CONFIG="$ROOT/examples/pipeline/offload.conf" OFFLOAD_STATS="$T/stats.json" \
        LD_PRELOAD="$BUILD/liboffload.so" "$@" "$BUILD/pipeline" --scale 0.25 --steps 4 --quiet \
        --out "$T/out.png" >"$T/out" 2>&1 || { cat "$T/out"; false; }
}

same_result() {
    [ "$(grep '^checksum' "$T/out")" = "$(grep '^checksum' "$BATS_FILE_TMPDIR/ref.out")" ]
    cmp "$T/out.png" "$BATS_FILE_TMPDIR/ref.png"
}

@test "stream: 80, 60 and 40% of the unet give the bare checksum, and the unet really streams" {
    for f in 0.8 0.6 0.4; do
        streamed $f
        same_result || { echo "at $f:"; cat "$T/out"; false; }
        # more than the unet's own bytes move to the device: it streams every step
        [ "$(jq '.components[] | select(.name == "unet") | .bytes_to_device > .bytes' \
            "$T/stats.json")" = true ]
    done
}

@test "stream: at 40% the unet's restores arrive ahead, few on demand" {
    # The shipped policy (sequence) and the default one make bench's figure runs (budget).
    # How many restores a launch finds not yet asked for depends on timing: on 2 loaded
    # cores the unet's were 1-6 of 52-55. The 10% target is make bench's stream_demand
    # figure; here a bound timing cannot cross but a policy that stops restoring ahead
    # does (LRU inside the unet, the library of the day issue 16 was filed: ~90%).
    for policy in sequence budget; do
        streamed 0.4 OFFLOAD_POLICY=$policy
        same_result
        echo "$policy: $(jq -c '{demand_restores, restores, unet: (.components[]
            | select(.name == "unet") | {prefetch_hits, demand_restores, restores,
            streamed_bytes, resident_across_turns_bytes})}' "$T/stats.json")"
        [ "$(jq '.components[] | select(.name == "unet") | .prefetch_hits > 0' "$T/stats.json")" = true ]
        [ "$(jq '.components[] | select(.name == "unet") | .demand_restores * 4 < .restores' \
            "$T/stats.json")" = true ]
        # the per-component counts add up to the whole process's
        [ "$(jq '([.components[].demand_restores] | add) <= .demand_restores' "$T/stats.json")" = true ]
    done
}

@test "stream: loading a unet larger than the budget keeps the text encoder (default policy)" {
    # Pressure while the unet loads evicts the unet's own later weights (farthest next use
    # over the whole sequence), not the text encoder that runs first: it is never restored.
    # Under policy = sequence loading the unet is its turn and evicts the text encoder.
    streamed 0.4 OFFLOAD_POLICY=budget
    same_result
    [ "$(jq '.components[] | select(.name == "text_encoder") | .bytes_to_device' "$T/stats.json")" = 0 ]
    streamed 0.4 OFFLOAD_POLICY=sequence
    same_result
    [ "$(jq '.components[] | select(.name == "text_encoder") | .bytes_to_device > 0' "$T/stats.json")" = true ]
}

@test "stream: the stats say per component what streamed and what stayed resident" {
    streamed 0.6 OFFLOAD_LOG=info
    same_result
    # the unet streamed while it was active and kept a stable subset across its steps;
    # the text encoder, which fits, streamed nothing but its own turn's restores
    [ "$(jq '.components[] | select(.name == "unet") | .streamed_bytes > 0 and
        .resident_across_turns_bytes > 0 and .resident_across_turns_bytes < .bytes' \
        "$T/stats.json")" = true ]
    [ "$(jq '[.components[] | .streamed_bytes <= .bytes_to_device] | all' "$T/stats.json")" = true ]
    grep -E 'offload: component .* MiB streamed +MiB stayed$' "$T/out"
}

@test "stream: the trace records every call's uses, which optimum replays" {
    streamed 0.4 OFFLOAD_TRACE="$T/trace.json"
    same_result
    [ "$(jq '.uses.dropped == 0 and (.uses.records | length) > 100 and
        (.uses.records | map(length == 5) | all)' "$T/trace.json")" = true ]
    budget=$(jq '.budget_bytes - (.peak_used_bytes - .peak_resident_bytes)' "$T/stats.json")
    jq -r '.uses.records[] | @tsv' "$T/trace.json" | "$OPTIMUM" --budget "$budget" >"$T/opt.json"
    cat "$T/opt.json"
    # the clairvoyant policy moves less than liboffload, and not nothing: it streams too
    [ "$(jq --slurpfile s "$T/stats.json" '.bytes_to_device > 0 and
        .bytes_to_device <= $s[0].bytes_to_device and .overcommitted_calls == 0' \
        "$T/opt.json")" = true ]
}

@test "optimum: farthest next use on a loop, a call's allocations together, first uses free" {
    # A B C A B C, one unit each (1 MiB mapped), room for two: after A B C the one used
    # farthest ahead goes each time; Belady's MIN on this trace restores once (B).
    printf '%s\n' "1 0 1048576 1048576 0" "2 1 1048576 1048576 0" "3 2 1048576 1048576 1" \
        "4 0 1048576 1048576 0" "5 1 1048576 1048576 0" "6 2 1048576 1048576 1" |
        "$OPTIMUM" --budget 2097152 >"$T/o.json"
    cat "$T/o.json"
    [ "$(jq -c '[.bytes_to_device, .restores, .first_uses, .hits]' "$T/o.json")" = '[1048576,1,3,2]' ]
    [ "$(jq -c '.component_bytes_to_device' "$T/o.json")" = '{"0":1048576}' ]
    # one call using both A and B with room for exactly two never evicts either for the other
    printf '%s\n' "1 0 1048576 1048576 0" "1 1 1048576 1048576 0" "2 2 1048576 1048576 0" \
        "3 0 1048576 1048576 0" "3 1 1048576 1048576 0" |
        "$OPTIMUM" --budget 2097152 >"$T/o2.json"
    [ "$(jq -c '[.restores, .overcommitted_calls]' "$T/o2.json")" = '[1,0]' ]
    # --ahead: the same loop three times, and with 1 MiB of look-ahead each allocation is
    # brought in a call before its use: every later use is a hit, and the room the one
    # coming holds costs a restore more than Belady without look-ahead
    loop3() {
        for i in 0 1 2; do
            printf '%s\n' "$((3 * i + 1)) 0 1048576 1048576 0" "$((3 * i + 2)) 1 1048576 1048576 0" \
                "$((3 * i + 3)) 2 1048576 1048576 0"
        done
    }
    loop3 | "$OPTIMUM" --budget 2097152 >"$T/plain.json"
    loop3 | "$OPTIMUM" --budget 2097152 --ahead 1048576 >"$T/ahead.json"
    cat "$T/plain.json" "$T/ahead.json"
    [ "$(jq -c '[.restores, .hits]' "$T/plain.json")" = '[3,3]' ]
    [ "$(jq -c '[.ahead_bytes, .restores, .hits, .overcommitted_calls]' "$T/ahead.json")" = '[1048576,4,6,0]' ]
    run "$OPTIMUM" --budget 1 --ahead x
    [ "$status" -eq 2 ]
    run "$OPTIMUM"
    [ "$status" -eq 2 ]
    run bash -c "echo 'not a use' | '$OPTIMUM' --budget 1"
    [ "$status" -eq 1 ]
}
