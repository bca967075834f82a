#!/usr/bin/env bats
# make demo (issue 18, item 4): the story in the order a user meets it, on one device
# size: the bare pipeline's out-of-memory error, offload run succeeding, the ample run's
# identical picture, the figures, the timeline's path.

setup_file() {
    export ROOT=${ROOT:-$(cd "$BATS_TEST_DIRNAME/.." && pwd)}
    export BUILD=${BUILD:-build}
    [[ $BUILD == /* ]] || BUILD=$ROOT/$BUILD
    unset LD_PRELOAD OFFLOAD_CONFIG OFFLOAD_BUDGET OFFLOAD_STATS OFFLOAD_TRACE OFFLOAD_LOG \
        OFFLOAD_LIBRARY OFFLOAD_SUMMARY SIMCUDA_FAIL SIMCUDA_FAIL_RANDOM
    export DEMO_OUT=$BATS_FILE_TMPDIR/out
    # never a real GPU here: the story on the simulator
    PATH=$(tr ':' '\n' <<<"$PATH" | grep -v nvidia | paste -sd:) \
        BUILD=$BUILD "$ROOT/examples/pipeline/demo.sh" >"$BATS_FILE_TMPDIR/demo.out" 2>&1
    echo $? >"$BATS_FILE_TMPDIR/demo.rc"
}

setup() {
    D=$BATS_FILE_TMPDIR/demo.out
    O=$DEMO_OUT
}

# The line number of the first line matching the extended regex $1.
line_of() { grep -nE -m1 "$1" "$D" | cut -d: -f1; }

@test "demo: it runs to the end, exit status 0" {
    [ "$(cat "$BATS_FILE_TMPDIR/demo.rc")" -eq 0 ]
}

@test "demo: the story in order: OOM, offload run succeeds, identical picture, figures, timeline" {
    a=$(line_of '^-> it fails: the driver says CUDA_ERROR_OUT_OF_MEMORY')
    b=$(line_of '^-> it succeeds: checksum 0x[0-9a-f]{16}$')
    c=$(line_of '^-> bit-identical pictures: yes')
    d=$(line_of '^peak device memory ')
    e=$(line_of '^picture: .*/timeline\.svg')
    [ -n "$a" ] && [ -n "$b" ] && [ -n "$c" ] && [ -n "$d" ] && [ -n "$e" ]
    ((a < b && b < c && c < d && d < e))
}

@test "demo: the same device size for the bare run and offload run" {
    grep -qE '^\$ .*SIMCUDA_MEMORY=256MiB .*/pipeline --scale 0.3 --out .*/demo-bare.png$' "$D"
    grep -qE '^\$ .*SIMCUDA_MEMORY=256MiB .*/offload run --config examples/pipeline/offload.conf ' "$D"
    grep -qE '^    pipeline: out of memory allocating .*CUDA_ERROR_OUT_OF_MEMORY' "$D"
}

@test "demo: the pictures are the same bits, the figures are the run's own" {
    cmp "$O/demo-ample.png" "$O/demo-offload.png"
    s=$O/demo-stats.json
    grep -qE "^bytes moved +none +$(awk -v b="$(jq .bytes_to_host "$s")" 'BEGIN { printf "%.1f", b / 1048576 }') MiB to host" "$D"
    grep -qE "^prefetch hits +- +$(jq .prefetch_hits "$s") of $(jq .restores "$s") restores" "$D"
    # the peak under liboffload is within the device, the ample run's above it
    line=$(grep -E '^peak device memory ' "$D")
    [[ $line =~ ^peak\ device\ memory\ +([0-9.]+)\ MiB\ +([0-9.]+)\ MiB$ ]]
    awk -v a="${BASH_REMATCH[1]}" -v o="${BASH_REMATCH[2]}" 'BEGIN { exit !(a > 256 && o <= 256) }'
    grep -qE '^wall time +[0-9.]+ s +[0-9.]+ s \([0-9.]+x the ample run\)$' "$D"
}

@test "demo: the timeline is an SVG at the path it prints; the trace opens in Perfetto" {
    grep -qx "picture: $O/timeline.svg (any browser)" "$D"
    grep -qx "trace:   $O/demo-trace.json (open it in https://ui.perfetto.dev or chrome://tracing)" "$D"
    head -c 200 "$O/timeline.svg" | grep -q '<svg '
    jq -e '.traceEvents | length > 0' "$O/demo-trace.json"
}
