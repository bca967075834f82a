#!/usr/bin/env bats
# The offload command (issue 18, item 1): run, record, check, report, plot, their help,
# the version, the man page; options that map to the library's variables; exit statuses.

bats_require_minimum_version 1.5.0

setup_file() {
    export ROOT=${ROOT:-$(cd "$BATS_TEST_DIRNAME/.." && pwd)}
    export BUILD=${BUILD:-build}
    [[ $BUILD == /* ]] || BUILD=$ROOT/$BUILD
    export LD_LIBRARY_PATH=$BUILD/sim
    unset LD_PRELOAD OFFLOAD_CONFIG OFFLOAD_BUDGET OFFLOAD_POLICY OFFLOAD_PREFETCH \
        OFFLOAD_STATS OFFLOAD_TRACE OFFLOAD_MODE OFFLOAD_RECORD OFFLOAD_LOG OFFLOAD_MIN_SIZE \
        OFFLOAD_SEQUENCE OFFLOAD_SUMMARY OFFLOAD_LIBRARY SIMCUDA_FAIL SIMCUDA_FAIL_RANDOM
    # the picture every run under liboffload must reproduce bit for bit
    SIMCUDA_MEMORY=8GiB "$BUILD/pipeline" --scale 0.3 --out "$BATS_FILE_TMPDIR/ample.png" \
        --quiet >"$BATS_FILE_TMPDIR/ample.out"
}

setup() {
    B=$BUILD
    OFF=$B/offload
    CONF=$ROOT/examples/pipeline/offload.conf
    T=$BATS_TEST_TMPDIR
    cd "$T" || return 1
}

ample_checksum() { grep -oE 'checksum: 0x[0-9a-f]{16}' "$BATS_FILE_TMPDIR/ample.out"; }

# --- help, version, man page ------------------------------------------------------------

@test "cli: --version names the version the Makefile builds" {
    run "$OFF" --version
    [ "$status" -eq 0 ]
    version=$(sed -n 's/^VERSION *:= *//p' "$ROOT/Makefile")
    [ "$output" = "offload $version (liboffload $version)" ]
    # the man page says the same version
    grep -q "^\.TH OFFLOAD 1 .* \"liboffload $version\" " "$ROOT/cli/offload.1"
}

@test "cli: --help lists every command and the way from nothing to a timeline" {
    run "$OFF" --help
    [ "$status" -eq 0 ]
    for c in run record check report plot; do
        [[ $output == *"  $c "* ]]
    done
    [[ $output == *"offload record -o app.conf -- ./app"* ]]
    [[ $output == *"offload run --config app.conf --budget 12GiB --trace trace.json -- ./app"* ]]
    [[ $output == *"offload plot trace.json -o timeline.svg"* ]]
}

@test "cli: each command has its --help, starting with its usage" {
    for c in run record check report plot; do
        run "$OFF" "$c" --help
        [ "$status" -eq 0 ]
        [[ ${lines[0]} == "usage: offload $c "* ]]
    done
}

@test "cli: every option of run and record names its variable, in the help and the man page" {
    for c in run record; do
        run "$OFF" "$c" --help
        opts=$(grep -E '^  --[a-z-]+ [A-Z]+ ' <<<"$output")
        [ "$(wc -l <<<"$opts")" -ge 2 ]
        while read -r line; do
            [[ $line =~ ^--([a-z-]+)\ .*\((OFFLOAD_[A-Z_]+)\)$ ]]
            opt=${BASH_REMATCH[1]} var=${BASH_REMATCH[2]}
            # the library knows the variable, and the man page says the same
            grep -q "$var" "$ROOT/config/README.md"
            man=$(groff -man -Tutf8 -P-cbou "$ROOT/cli/offload.1" 2>/dev/null)
            grep -qF -- "--$opt" <<<"$man"
            grep -qF -- "$var" <<<"$man"
        done <<<"$opts"
    done
    # the nine options of run: one per [offload] key the library reads at run time
    [ "$("$OFF" run --help | grep -cE '^  --[a-z-]+ [A-Z]+ .*\(OFFLOAD_[A-Z_]+\)$')" -eq 9 ]
}

@test "cli: the man page is clean roff (groff -ww)" {
    run groff -ww -man -z "$ROOT/cli/offload.1"
    [ "$status" -eq 0 ]
    [ -z "$output" ]
    # and every command is in it
    man=$(groff -man -Tutf8 -P-cbou "$ROOT/cli/offload.1" 2>/dev/null)
    for c in run record check report plot; do
        grep -qE "^       $c" <<<"$man"
    done
}

# --- bad input: one line, exit status 2, the program never started ------------------------

@test "cli: a bad option or value is one line and exit 2, before the program starts" {
    run "$OFF" run --budget 12XB -- touch "$T/ran"
    [ "$status" -eq 2 ]
    [ "$output" = "offload run: --budget: malformed size '12XB' (expected bytes, KiB/MiB/GiB or N%)" ]
    run "$OFF" run --policy sequnce -- touch "$T/ran"
    [ "$status" -eq 2 ]
    [ "$output" = "offload run: --policy: unknown policy 'sequnce' (did you mean 'sequence'?)" ]
    run "$OFF" run --bogus 1 -- touch "$T/ran"
    [ "$status" -eq 2 ]
    [ "$output" = "offload run: unknown option '--bogus' (try 'offload run --help')" ]
    run "$OFF" run --budget
    [ "$status" -eq 2 ]
    [ "$output" = "offload run: --budget needs a value (try 'offload run --help')" ]
    run "$OFF" run --budget 1GiB
    [ "$status" -eq 2 ]
    [[ $output == "offload run: missing the program to run"* ]]
    run "$OFF" frobnicate
    [ "$status" -eq 2 ]
    [ "${#lines[@]}" -eq 1 ]
    [ ! -e "$T/ran" ]
}

@test "cli: a config error is the library's own file:line message, exit 2, nothing run" {
    printf '[offload]\nprefech = 2\n' >"$T/bad.conf"
    run "$OFF" run --config "$T/bad.conf" -- touch "$T/ran"
    [ "$status" -eq 2 ]
    [ "$output" = "$T/bad.conf:2: unknown key 'prefech' in [offload] (did you mean 'prefetch'?)" ]
    [ ! -e "$T/ran" ]
    # the same line as the library prints before main
    LD_PRELOAD=$B/liboffload.so OFFLOAD_CONFIG=$T/bad.conf run "$B/pipeline" --tensors
    [ "$status" -eq 2 ]
    [ "$output" = "$T/bad.conf:2: unknown key 'prefech' in [offload] (did you mean 'prefetch'?)" ]
    run "$OFF" run --config "$T/none.conf" -- true
    [ "$status" -eq 2 ]
    [ "$output" = "offload run: --config: cannot open '$T/none.conf': No such file or directory" ]
    # a bad variable in the environment is named as the variable
    OFFLOAD_PREFETCH=x run "$OFF" run -- true
    [ "$status" -eq 2 ]
    [ "$output" = "OFFLOAD_PREFETCH: malformed number 'x' (expected an integer >= 0)" ]
}

# --- running ------------------------------------------------------------------------------

@test "cli: run passes the program's exit status on, 128+N for a signal, 127 when not found" {
    run "$OFF" run -- sh -c 'exit 7'
    [ "$status" -eq 7 ]
    [[ $output == *"offload: sh exited with status 7"* ]]
    run "$OFF" run -- sh -c 'kill -TERM $$'
    [ "$status" -eq 143 ]
    [[ $output == *"offload: sh was killed by signal 15 (Terminated)"* ]]
    run -127 "$OFF" run -- "$T/no-such-program"
    [ "$status" -eq 127 ]
    [[ $output == *"offload: cannot run '$T/no-such-program': No such file or directory"* ]]
}

@test "cli: a TERM sent to offload alone goes to the program, whose status comes back" {
    "$OFF" run -- sh -c 'trap "exit 42" TERM; touch ready; while :; do sleep 0.05; done' &
    pid=$!
    for _ in $(seq 100); do [ -e ready ] && break; sleep 0.05; done
    [ -e ready ]
    kill -TERM "$pid"
    wait "$pid" || status=$?
    [ "${status:-0}" -eq 42 ]
}

@test "cli: run prepends liboffload to LD_PRELOAD and sets the variables of its options" {
    run "$OFF" run --budget 3GiB --trace t.json --prefetch 2 -- \
        sh -c 'echo "[$LD_PRELOAD] $OFFLOAD_BUDGET $OFFLOAD_TRACE $OFFLOAD_PREFETCH $OFFLOAD_SUMMARY"'
    [ "$status" -eq 0 ]
    lib=$(realpath "$B/liboffload.so")
    # a relative --trace is made absolute: the program may change directory before exit
    [ "${lines[0]}" = "[$lib] 3GiB $T/t.json 2 no" ]
    # an existing preload stays, after liboffload
    LD_PRELOAD=$B/progs/libafter_exit.so run "$OFF" run -- sh -c 'echo "[$LD_PRELOAD]"' 
    [ "$status" -eq 0 ]
    [[ $output == *"[$lib:$B/progs/libafter_exit.so]"* ]]
    # OFFLOAD_LIBRARY chooses another library; a missing one is an error
    OFFLOAD_LIBRARY=$T/nope.so run "$OFF" run -- true
    [ "$status" -eq 2 ]
    [ "$output" = "offload: OFFLOAD_LIBRARY: cannot read '$T/nope.so': No such file or directory" ]
}

@test "cli: run never touches the program's own stdout and stderr" {
    run bash -c "'$OFF' run -- sh -c 'echo out; echo err >&2' 2>'$T/err'"
    [ "$status" -eq 0 ]
    [ "$output" = "out" ]
    [ "$(head -n 1 "$T/err")" = "err" ]
}

@test "cli: run on the pipeline: a 256 MiB device suffices, the ample run's picture, the table" {
    SIMCUDA_MEMORY=256MiB run bash -c "'$OFF' run --config '$CONF' --stats '$T/s.json' -- \
        '$B/pipeline' --scale 0.3 --out '$T/p.png' --quiet 2>'$T/err'"
    [ "$status" -eq 0 ]
    [ "$output" = "$(ample_checksum)" ]
    cmp "$T/p.png" "$BATS_FILE_TMPDIR/ample.png"
    # the table's figures are the statistics file's
    grep -qx "offload: $B/pipeline exited with status 0" "$T/err"
    grep -qE "^$(jq .evictions "$T/s.json") evictions, $(jq .restores "$T/s.json") restores " "$T/err"
    # weights are unchanged between evictions: released without a copy, said in the table
    [ "$(jq .clean_evictions "$T/s.json")" -gt 0 ]
    grep -qE "^$(jq .clean_evictions "$T/s.json") clean evictions \([0-9.]+ MiB unchanged on the device, not copied to host\), $(jq .fingerprints "$T/s.json") fingerprints$" "$T/err"
    for c in text_encoder unet vae; do
        ev=$(jq --arg c "$c" '.components[] | select(.name == $c) | .evictions' "$T/s.json")
        grep -qE "^$c +[0-9.]+ +$ev " "$T/err"
    done
    grep -qx "offload: statistics in $T/s.json (offload report $T/s.json)" "$T/err"
    # report prints the same table again
    "$OFF" report "$T/s.json" >"$T/report.out"
    grep -A 20 '^budget ' "$T/err" | grep -v '^offload: ' >"$T/table"
    diff "$T/report.out" "$T/table"
}

@test "cli: under run the library's own summary is left out, even at --log info" {
    SIMCUDA_MEMORY=256MiB run bash -c "'$OFF' run --log info --config '$CONF' -- \
        '$B/pipeline' --scale 0.3 --out '$T/p.png' --quiet 2>&1"
    [ "$status" -eq 0 ]
    [[ $output != *"offload: summary"* ]]
    [[ $output == *"312 launches"* ]]
    # without offload, info prints it
    SIMCUDA_MEMORY=256MiB LD_PRELOAD=$B/liboffload.so OFFLOAD_CONFIG=$CONF OFFLOAD_LOG=info \
        run "$B/pipeline" --scale 0.3 --out "$T/p.png" --quiet
    [[ $output == *"offload: summary"* ]]
}

@test "cli: report reads a statistics file, and says what is wrong with anything else" {
    run "$OFF" report "$T/none.json"
    [ "$status" -eq 1 ]
    [ "$output" = "offload: cannot read $T/none.json: No such file or directory" ]
    echo '{"traceEvents": []}' >"$T/other.json"
    run "$OFF" report "$T/other.json"
    [ "$status" -eq 1 ]
    [ "$output" = "offload: $T/other.json: not a liboffload statistics file (no budget_bytes)" ]
    echo '{"budget_bytes": 1,' >"$T/cut.json"
    run "$OFF" report "$T/cut.json"
    [ "$status" -eq 1 ]
    [ "$output" = "offload: $T/cut.json: line 2: expected a key" ]
    run "$OFF" report
    [ "$status" -eq 2 ]
}

@test "cli: check validates a config without running anything" {
    run "$OFF" check "$CONF"
    [ "$status" -eq 0 ]
    [ "$output" = "$CONF: ok: 3 components (text_encoder, unet, vae), sequence text_encoder -> unet -> vae, policy sequence, prefetch 1" ]
    printf '[offload]\nsequence = text -> decoder\n[component text]\n' >"$T/bad.conf"
    run "$OFF" check "$T/bad.conf"
    [ "$status" -eq 2 ]
    [ "$output" = "$T/bad.conf:2: sequence names undeclared component 'decoder' (declare it with [component decoder])" ]
    # the environment is not read: the file alone is checked
    OFFLOAD_BUDGET=12XB run "$OFF" check "$CONF"
    [ "$status" -eq 0 ]
    run "$OFF" check
    [ "$status" -eq 2 ]
}

@test "cli: record finds the pipeline's three components; its config runs the pipeline" {
    SIMCUDA_MEMORY=8GiB run "$OFF" record -o "$T/app.conf" -- "$B/pipeline" --scale 0.3 \
        --out "$T/r.png" --quiet
    [ "$status" -eq 0 ]
    [[ $output == *"offload: recorded 3 components into $T/app.conf:"* ]]
    [[ $output =~ c0\ +allocs\ 0-12\ +[0-9.]+\ MiB\ in\ 13\ allocations ]]
    [[ $output =~ c1\ +allocs\ 13-28\ +[0-9.]+\ MiB\ in\ 16\ allocations ]]
    [[ $output =~ c2\ +allocs\ 29-36\ +[0-9.]+\ MiB\ in\ 8\ allocations ]]
    [[ $output == *"sequence c0 -> c1 -> c2"* ]]
    run "$OFF" check "$T/app.conf"
    [ "$status" -eq 0 ]
    SIMCUDA_MEMORY=256MiB run bash -c "'$OFF' run --config '$T/app.conf' -- '$B/pipeline' \
        --scale 0.3 --out '$T/p.png' --quiet 2>/dev/null"
    [ "$status" -eq 0 ]
    [ "$output" = "$(ample_checksum)" ]
    # a ./offload.conf in the directory does not disturb recording
    printf '[offload]\nprefech = 1\n' >"$T/offload.conf"
    SIMCUDA_MEMORY=8GiB run "$OFF" record -- "$B/pipeline" --scale 0.3 --out "$T/r.png" --quiet
    [ "$status" -eq 0 ]
    [ -s "$T/offload.recorded.conf" ]
}

@test "cli: record says so when the program recorded nothing" {
    run "$OFF" record -o "$T/x.conf" -- true
    [ "$status" -eq 0 ]
    [[ $output == *"offload: no config recorded: true made no tracked allocation"* ]]
    [ ! -e "$T/x.conf" ]
}

@test "cli: plot renders a trace as one self-contained SVG" {
    "$B/tests/test_trace" "$T/trace.json" >/dev/null
    run "$OFF" plot "$T/trace.json" -o "$T/t.svg"
    [ "$status" -eq 0 ]
    [ "$output" = "$T/t.svg" ]
    python3 -c "import sys, xml.etree.ElementTree as E; E.parse(sys.argv[1])" "$T/t.svg"
    # nothing from elsewhere: no script, no link, no external reference
    ! grep -qiE '<script|href=|@import|url\(' "$T/t.svg"
    # a rect per span, each with its tooltip; the rows named as the trace names its tracks
    spans=$(jq '[.traceEvents[] | select(.ph == "X")] | length' "$T/trace.json")
    [ "$(grep -c '<rect [^>]*stroke="white"[^>]*><title>' "$T/t.svg")" -eq "$spans" ]
    for track in "component te" "copy stream 1 (to host)" stalls "launches (per component turn)"; do
        grep -qF ">$track</text>" "$T/t.svg"
    done
    grep -qF "<title>stall on unet: at 150.000 us for 150.000 us" "$T/t.svg"
    grep -qF ">500.000 us of host time, budget 0.0 MiB, " "$T/t.svg"
    # the default output is the trace's name with .svg
    run "$OFF" plot "$T/trace.json"
    [ "$output" = "$T/trace.svg" ]
    [ -s "$T/trace.svg" ]
    # not a trace: exit 1, one line
    echo '{"budget_bytes": 1}' >"$T/stats.json"
    run "$OFF" plot "$T/stats.json"
    [ "$status" -eq 1 ]
    [ "$output" = "offload plot: $T/stats.json: not a trace (no traceEvents array)" ]
}
