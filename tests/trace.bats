#!/usr/bin/env bats
# The timeline (issue 18, item 2): OFFLOAD_TRACE / --trace / `trace =` write Chrome
# trace-event JSON at exit (runtime/report/trace.h). The invariants are checked with jq:
# every restore of an allocation comes after its eviction, no instant has more bytes
# resident than the budget, spans nest on every track.
#
# The recorder's own file (tests/unit/test_trace.c's scripted pipeline) is checked here
# now. The pipeline's real timeline needs the runtime to call trace_* (the Wiring
# paragraph of trace.h): those tests are complete and skipped until it does.


setup_file() {
    export ROOT=${ROOT:-$(cd "$BATS_TEST_DIRNAME/.." && pwd)}
    export BUILD=${BUILD:-build}
    [[ $BUILD == /* ]] || BUILD=$ROOT/$BUILD
    export LD_LIBRARY_PATH=$BUILD/sim
    unset LD_PRELOAD OFFLOAD_CONFIG OFFLOAD_BUDGET OFFLOAD_POLICY OFFLOAD_PREFETCH \
        OFFLOAD_STATS OFFLOAD_TRACE OFFLOAD_MODE OFFLOAD_RECORD OFFLOAD_LOG OFFLOAD_MIN_SIZE \
        OFFLOAD_SEQUENCE OFFLOAD_SUMMARY OFFLOAD_LIBRARY SIMCUDA_FAIL SIMCUDA_FAIL_RANDOM
}

setup() {
    B=$BUILD
    LIB=$B/liboffload.so
    CONF=$ROOT/examples/pipeline/offload.conf
    T=$BATS_TEST_TMPDIR
}

# The pipeline on a 256 MiB device under liboffload, its trace in $T/trace.json and its
# statistics in $T/stats.json.
traced_pipeline() {
    SIMCUDA_MEMORY=256MiB LD_PRELOAD=$LIB OFFLOAD_CONFIG=$CONF OFFLOAD_TRACE=$T/trace.json \
        OFFLOAD_STATS=$T/stats.json "$@" "$B/pipeline" --scale 0.3 --out "$T/p.png" --quiet
}

# --- the invariants, as jq programs over one trace file --------------------------------

# Every restore of an allocation follows an eviction of it that completed first.
restores_follow_evictions() {
    jq -e '
      [.traceEvents[] | select(.ph == "X" and (.cat == "evict" or .cat == "restore"))]
      | group_by(.args.alloc)
      | map(sort_by(.ts) | . as $s | range(0; length)
            | select($s[.].cat == "restore")
            | select(. == 0 or $s[. - 1].cat != "evict" or $s[. - 1].args.outcome != "ok"
                     or $s[. - 1].ts + $s[. - 1].dur > $s[.].ts + 0.0005))
      | length == 0' "$1"
}

# No counter sample holds more resident bytes than the budget.
within_budget() {
    jq -e '.otherData.budget_bytes as $b
           | [.traceEvents[] | select(.ph == "C") | (.args | add)]
           | length > 0 and max <= $b' "$1"
}

# On every track, a span either starts after the enclosing one ended or ends within it.
spans_nest() {
    jq -e '
      def nests: sort_by(.ts, -.dur)
        | reduce .[] as $e ({stack: [], ok: true};
            .stack |= map(select(. > $e.ts + 0.0005))
            | if (.stack | length) > 0 and $e.ts + $e.dur > .stack[-1] + 0.0005
              then .ok = false else . end
            | .stack += [$e.ts + $e.dur])
        | .ok;
      [.traceEvents[] | select(.ph == "X")] | group_by(.tid) | map(nests) | all' "$1"
}

# A component's state spans follow one another without a gap or an overlap.
states_tile() {
    jq -e '
      [.traceEvents[] | select(.ph == "X" and .cat == "state")] | group_by(.tid)
      | map(sort_by(.ts) | . as $s | range(1; length)
            | select(($s[. - 1].ts + $s[. - 1].dur - $s[.].ts) | fabs > 0.0005))
      | length == 0' "$1"
}

# --- the recorder, driven directly -------------------------------------------------------

@test "trace: the recorder's scripted pipeline timeline keeps every invariant" {
    run "$B/tests/test_trace" "$T/unit.json"
    [ "$status" -eq 0 ]
    jq -e '.otherData.budget_bytes == 1000 and .otherData.dropped_spans == 0' "$T/unit.json"
    [ "$(jq '[.traceEvents[] | select(.cat == "restore")] | length' "$T/unit.json")" -eq 1 ]
    [ "$(jq '[.traceEvents[] | select(.cat == "evict")] | length' "$T/unit.json")" -eq 3 ]
    restores_follow_evictions "$T/unit.json"
    within_budget "$T/unit.json"
    spans_nest "$T/unit.json"
    states_tile "$T/unit.json"
}

@test "trace: the invariant checks catch a broken timeline" {
    run "$B/tests/test_trace" "$T/unit.json"
    [ "$status" -eq 0 ]
    # a restore moved before its eviction ended, a budget halved, a span stretched past
    # its parent's end: each check must fail on its own
    jq '(.traceEvents[] | select(.cat == "restore")).ts = 10' "$T/unit.json" >"$T/early.json"
    run restores_follow_evictions "$T/early.json"
    [ "$status" -ne 0 ]
    jq '.otherData.budget_bytes = 400' "$T/unit.json" >"$T/over.json"
    run within_budget "$T/over.json"
    [ "$status" -ne 0 ]
    jq '.traceEvents += [{"ph": "X", "cat": "stall", "tid": 2000, "ts": 100, "dur": 100}]' \
        "$T/unit.json" >"$T/cross.json"
    run spans_nest "$T/cross.json"
    [ "$status" -ne 0 ]
}

# --- the file at exit ----------------------------------------------------------------------

@test "trace: OFFLOAD_TRACE writes the trace at exit, with a track per component and the budget" {
    run traced_pipeline env
    [ "$status" -eq 0 ]
    [[ $output == *"checksum: 0x"* ]]
    jq -e '.otherData.budget_bytes == 268435456 and .otherData.dropped_spans == 0
           and .otherData.capacity == 65536' "$T/trace.json"
    # the copy streams' tracks come with the first copy on each
    [ "$(jq -r '[.traceEvents[] | select(.name == "thread_name") | .args.name
                 | select(startswith("copy stream") | not)] | join(",")' "$T/trace.json")" = \
        "component text_encoder,component unet,component vae,stalls,launches (per component turn)" ]
    jq -e '[.traceEvents[] | select(.name == "process_name")][0].args.name == "liboffload: pipeline"' \
        "$T/trace.json"
    jq -e '.budget_bytes == 268435456' "$T/stats.json"
}

@test "trace: 'trace =' in the config and offload run --trace write the same kind of file" {
    # the key goes in [offload]: insert it after the section header
    sed 's/^\[offload\]$/[offload]\ntrace = '"${T//\//\\/}"'\/fromconf.json/' "$CONF" >"$T/t.conf"
    grep -q "^trace = $T/fromconf.json$" "$T/t.conf"
    SIMCUDA_MEMORY=256MiB LD_PRELOAD=$LIB OFFLOAD_CONFIG=$T/t.conf "$B/pipeline" --scale 0.3 \
        --out "$T/p.png" --quiet
    jq -e '.otherData.budget_bytes == 268435456' "$T/fromconf.json"
    SIMCUDA_MEMORY=256MiB run "$B/offload" run --config "$CONF" --trace "$T/fromcli.json" -- \
        "$B/pipeline" --scale 0.3 --out "$T/p.png" --quiet
    [ "$status" -eq 0 ]
    jq -e '.otherData.budget_bytes == 268435456' "$T/fromcli.json"
    [[ $output == *"offload: timeline in $T/fromcli.json: open it in https://ui.perfetto.dev"* ]]
}

@test "trace: a wrapper that never used CUDA leaves the program's timeline alone" {
    # bash gets liboffload too (LD_PRELOAD is inherited) and exits after the pipeline
    SIMCUDA_MEMORY=256MiB run "$B/offload" run --config "$CONF" --trace "$T/w.json" -- \
        bash -c "'$B/pipeline' --scale 0.3 --out '$T/p.png' --quiet; true"
    [ "$status" -eq 0 ]
    jq -e '.otherData.budget_bytes == 268435456' "$T/w.json"
    jq -e '[.traceEvents[] | select(.name == "process_name")][0].args.name == "liboffload: pipeline"' \
        "$T/w.json"
    # and a process that never used CUDA writes no timeline at all
    OFFLOAD_TRACE=$T/none.json LD_PRELOAD=$LIB run true
    [ "$status" -eq 0 ]
    [ ! -e "$T/none.json" ]
}

@test "trace: the file replaces a symlink planted at its path, never writing through it" {
    echo "precious" >"$T/victim"
    ln -s "$T/victim" "$T/trace.json"
    run traced_pipeline env
    [ "$status" -eq 0 ]
    [ ! -L "$T/trace.json" ]
    [ "$(cat "$T/victim")" = "precious" ]
    jq -e '.traceEvents | length > 0' "$T/trace.json"
}

@test "trace: an unwritable trace path is a warning; the program's exit status is its own" {
    SIMCUDA_MEMORY=256MiB LD_PRELOAD=$LIB OFFLOAD_CONFIG=$CONF OFFLOAD_TRACE=$T/no/dir/t.json \
        run "$B/pipeline" --scale 0.3 --out "$T/p.png" --quiet
    [ "$status" -eq 0 ]
    [[ $output == *"offload: cannot write $T/no/dir/t.json: No such file or directory"* ]]
}

@test "trace: a bad trace value is a config error before main, exit status 2" {
    printf '[offload]\ntrace =\n' >"$T/bad.conf"
    SIMCUDA_MEMORY=256MiB LD_PRELOAD=$LIB OFFLOAD_CONFIG=$T/bad.conf run "$B/pipeline" --tensors
    [ "$status" -eq 2 ]
    [[ $output == "$T/bad.conf:2: "* ]]
}

# --- the pipeline's timeline (needs the runtime's trace_* calls) ---------------------------

@test "trace: the pipeline's timeline: every restore of an allocation after its eviction" {
    run traced_pipeline env
    [ "$status" -eq 0 ]
    # as many copies in the trace as the statistics count
    [ "$(jq '[.traceEvents[] | select(.cat == "evict")] | length' "$T/trace.json")" -eq \
        "$(jq .evictions "$T/stats.json")" ]
    [ "$(jq '[.traceEvents[] | select(.cat == "restore")] | length' "$T/trace.json")" -eq \
        "$(jq .restores "$T/stats.json")" ]
    [ "$(jq .restores "$T/stats.json")" -gt 0 ]
    # no restore failed; a copy never seen complete (a prefetch nobody used before exit) is
    # its allocation's last (an eviction may be taken back: outcome "failed", data kept)
    jq -e '[.traceEvents[] | select(.cat == "restore" and .args.outcome == "failed")]
           | length == 0' "$T/trace.json"
    jq -e '[.traceEvents[] | select(.cat == "evict" or .cat == "restore")]
           | group_by(.args.alloc)
           | map(sort_by(.ts) | .[0:-1][] | select(.args.outcome == "unfinished"))
           | length == 0' "$T/trace.json"
    restores_follow_evictions "$T/trace.json"
}

@test "trace: the pipeline's timeline: never more resident than the budget, the peak seen" {
    run traced_pipeline env
    [ "$status" -eq 0 ]
    within_budget "$T/trace.json"
    # each component is seen resident at its full weight at some instant
    jq -e '[.traceEvents[] | select(.ph == "C") | .args.unet] | max > 190 * 1048576' \
        "$T/trace.json"
    jq -e '[.traceEvents[] | select(.ph == "C") | .args.text_encoder] | max > 44 * 1048576' \
        "$T/trace.json"
}

@test "trace: the pipeline's timeline: spans nest, states tile, the streams carry the copies" {
    run traced_pipeline env
    [ "$status" -eq 0 ]
    spans_nest "$T/trace.json"
    states_tile "$T/trace.json"
    # the two copy streams: one carries the evictions, the other the restores
    jq -e '[.traceEvents[] | select(.name == "thread_name") | .args.name]
           | index("copy stream 1 (to host)") != null and index("copy stream 2 (to device)") != null' \
        "$T/trace.json"
    # every state the issue names appears
    for s in resident evicting evicted restoring; do
        jq -e --arg s "$s" '[.traceEvents[] | select(.cat == "state" and .name == $s)] | length > 0' \
            "$T/trace.json"
    done
}

@test "trace: the pipeline's timeline: launches aggregated per component turn, all counted" {
    run traced_pipeline env
    [ "$status" -eq 0 ]
    [ "$(jq '[.traceEvents[] | select(.cat == "turn") | .args.launches] | add' "$T/trace.json")" \
        -eq "$(jq .launches "$T/stats.json")" ]
    # far fewer turns than launches, and the first turn is the text encoder's
    [ "$(jq '[.traceEvents[] | select(.cat == "turn")] | length' "$T/trace.json")" -lt 20 ]
    [ "$(jq -r '[.traceEvents[] | select(.cat == "turn")] | sort_by(.ts)[0].name' "$T/trace.json")" \
        = text_encoder ]
    for c in text_encoder unet vae; do
        jq -e --arg c "$c" '[.traceEvents[] | select(.cat == "turn" and .name == $c)] | length > 0' \
            "$T/trace.json"
    done
}

@test "trace: the pipeline's timeline: stalls say on whom" {
    run traced_pipeline env OFFLOAD_PREFETCH=0
    [ "$status" -eq 0 ]
    # without prefetch every restore is a demand restore: the calls stall on them
    jq -e '[.traceEvents[] | select(.cat == "stall")] | length > 0' "$T/trace.json"
    jq -e '[.traceEvents[] | select(.cat == "stall")
            | select((.args.on | IN("text_encoder", "unet", "vae")) | not)] | length == 0' \
        "$T/trace.json"
}

@test "trace: the live status line: with --log info on a terminal, never elsewhere" {
    # The line comes at most every 3 s, never in the first 3 s: the pipeline loops far
    # longer than that and is stopped after a fixed wall time, so how fast this machine
    # runs it does not matter (a fixed number of runs took 2.7-3.8 s here: flaky).
    local cmd="SIMCUDA_MEMORY=256MiB '$B/offload' run --log info --config '$CONF' -- \
        '$B/pipeline' --scale 0.3 --runs 100000 --out '$T/p.png' --quiet"
    on_terminal_for 5 "$cmd" "$T/tty.out"
    grep -qE '^offload: status [0-9]+ s: resident MiB text_encoder [0-9.]+, unet [0-9.]+, vae [0-9.]+ \([0-9.]+ in all\); [0-9]+ evictions, [0-9]+ restores, [0-9.]+ MiB moved' \
        "$T/tty.out"
    # not a terminal: no line
    timeout -k 5 -s INT 4 bash -c "$cmd" >"$T/file.out" 2>&1 || true
    grep -q '^checksum: ' "$T/file.out" # it ran
    ! grep -q 'offload: status' "$T/file.out"
    # a terminal at warn: no line
    on_terminal_for 4 "${cmd/--log info/--log warn}" "$T/warn.out"
    grep -q '^checksum: ' "$T/warn.out"
    ! grep -q 'offload: status' "$T/warn.out"
}

# Runs CMD on a pseudo-terminal (script) for SECONDS of wall time, then stops it with
# SIGINT (script takes the program down with it).
on_terminal_for() {
    timeout -k 5 -s INT "$1" script -qefc "$2" /dev/null >"$3" || true
}
