#!/usr/bin/env bats
# Clean evictions decided on the device (runtime/memory/fingerprint.h): a weight kernels
# only read is copied to the host once, a buffer a kernel changes by one byte is copied
# at every eviction, the results are the same as without liboffload.

setup_file() {
    export ROOT=${ROOT:-$(cd "$BATS_TEST_DIRNAME/.." && pwd)}
    export BUILD=${BUILD:-build}
    [[ $BUILD == /* ]] || BUILD=$ROOT/$BUILD
    export LD_LIBRARY_PATH=$BUILD/sim
    unset LD_PRELOAD OFFLOAD_CONFIG OFFLOAD_BUDGET OFFLOAD_POLICY OFFLOAD_PREFETCH \
        OFFLOAD_STATS OFFLOAD_MODE OFFLOAD_RECORD OFFLOAD_LOG OFFLOAD_MIN_SIZE \
        OFFLOAD_FINGERPRINT SIMCUDA_FAIL SIMCUDA_FAIL_RANDOM SIMCUDA_REPORT SIMCUDA_MEMORY
    "$BUILD/progs/clean_evict" "$BUILD/progs/clean_kernels.so" 4 >"$BATS_FILE_TMPDIR/ref.out"
}

setup() {
    B=$BUILD
    LIB=$B/liboffload.so
    T=$BATS_TEST_TMPDIR
    cd "$T"
    # W is allocation 0, B allocation 1: a component each, for their own counters
    printf '[component w]\nallocs = 0\n[component b]\nallocs = 1\n' >"$T/wb.conf"
    MIB=$((1 << 20))
}

json() {
    python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"
}

# component FIELD NAME: the component's counter in $T/stats.json
component() {
    json "$T/stats.json" "[c for c in d['components'] if c['name'] == '$1'][0]['$2']"
}

# offloaded [VAR=VALUE...]: clean_evict for 4 turns under a budget holding W or B
offloaded() {
    env SIMCUDA_MEMORY=256MiB SIMCUDA_REPORT=$T/sim.json LD_PRELOAD=$LIB \
        OFFLOAD_CONFIG=${CONF:-$T/wb.conf} OFFLOAD_BUDGET=100MiB OFFLOAD_STATS=$T/stats.json \
        OFFLOAD_LOG=info "$@" "$B/progs/clean_evict" "$B/progs/clean_kernels.so" 4 \
        >"$T/out" 2>"$T/err"
    cat "$T/out" "$T/err"
    grep -q '^clean_evict: ok ' "$T/out"
    # the same checksums as without liboffload, no race, no fault
    diff "$BATS_FILE_TMPDIR/ref.out" "$T/out"
    [ "$(json "$T/sim.json" 'd["races"] + d["faults"]')" = 0 ]
}

@test "the weight is copied to the host once, the written buffer at every eviction" {
    offloaded
    w_ev=$(component w evictions)
    b_ev=$(component b evictions)
    echo "w: $w_ev evictions, b: $b_ev evictions"
    [ "$w_ev" -ge 4 ] && [ "$b_ev" -ge 3 ]
    [ "$(component w bytes_to_host)" = $((64 * MIB)) ]
    [ "$(component b bytes_to_host)" = $((b_ev * 64 * MIB)) ]
    [ "$(json "$T/stats.json" 'd["clean_evictions"]')" = $((w_ev - 1)) ]
    [ "$(json "$T/stats.json" 'd["clean_bytes"]')" = $(((w_ev - 1) * 64 * MIB)) ]
    # one fingerprint per eviction that copied or checked: all of them
    [ "$(json "$T/stats.json" 'd["fingerprints"]')" = $((w_ev + b_ev)) ]
    # B's checks fail (it changed), so it is checked only now and then: B's first
    # eviction copies (uploaded), its second is checked, its third copies at once
    misses=$(json "$T/stats.json" 'd["clean_checks"] - d["clean_evictions"]')
    echo "checks that found B changed: $misses"
    [ "$misses" -ge 1 ] && [ "$misses" -lt $((b_ev - 1)) ]
    grep -q "summary: $((w_ev - 1)) clean evictions ($(((w_ev - 1) * 64)).0 MiB not copied" "$T/err"
    # what the simulator moved agrees: W once, B each time (plus 16 bytes per fingerprint
    # and the program's own 64 MiB read of B and 8 bytes of its accumulator)
    [ "$(json "$T/sim.json" 'd["d2h_bytes"]')" = \
        $(((1 + b_ev + 1) * 64 * MIB + 16 * (w_ev + b_ev) + 8)) ]
}

@test "the timeline: a check that found the bytes changed shows the copy it led to" {
    offloaded OFFLOAD_TRACE=$T/trace.json
    b_ev=$(component b evictions)
    # every eviction of B (allocation 1) copied 64 MiB, the checked one included; W's
    # (allocation 0) after the first copied nothing
    [ "$(jq '[.traceEvents[] | select(.cat == "evict" and .args.alloc == 1 and .args.outcome == "ok")
             | .args.bytes] | length' "$T/trace.json")" = "$b_ev" ]
    [ "$(jq '[.traceEvents[] | select(.cat == "evict" and .args.alloc == 1) | .args.bytes]
             | unique' -c "$T/trace.json")" = "[$((64 * MIB))]" ]
    [ "$(jq '[.traceEvents[] | select(.cat == "evict" and .args.alloc == 0) | .args.bytes]
             | unique' -c "$T/trace.json")" = "[0,$((64 * MIB))]" ]
}

@test "OFFLOAD_FINGERPRINT=no: every eviction copies, as before; no module is loaded" {
    offloaded OFFLOAD_FINGERPRINT=no
    w_ev=$(component w evictions)
    [ "$(component w bytes_to_host)" = $((w_ev * 64 * MIB)) ]
    [ "$(json "$T/stats.json" 'd["fingerprints"] + d["clean_evictions"]')" = 0 ]
    [ "$(json "$T/sim.json" 'd["calls"].get("cuModuleLoadData", 0)')" = 0 ]
}

@test "fingerprint = no in the config turns it off too; readonly = yes needs no fingerprint" {
    printf '[offload]\nfingerprint = no\n' | cat - "$T/wb.conf" >"$T/off.conf"
    CONF=$T/off.conf offloaded
    [ "$(json "$T/stats.json" 'd["fingerprints"]')" = 0 ]
    printf '[component w]\nallocs = 0\nreadonly = yes\n[component b]\nallocs = 1\n' >"$T/ro.conf"
    CONF=$T/ro.conf offloaded
    [ "$(component w bytes_to_host)" = $((64 * MIB)) ]
    # only B's evictions take fingerprints, and none is clean
    [ "$(json "$T/stats.json" 'd["fingerprints"]')" = "$(component b evictions)" ]
    [ "$(json "$T/stats.json" 'd["clean_evictions"]')" = 0 ]
}

@test "the module does not load: every eviction copies, said once at info, same result" {
    offloaded SIMCUDA_FAIL=cuModuleLoadData:1
    w_ev=$(component w evictions)
    [ "$(component w bytes_to_host)" = $((w_ev * 64 * MIB)) ]
    [ "$(grep -c 'clean-eviction check unavailable (cuModuleLoadData: CUDA_ERROR_UNKNOWN)' "$T/err")" = 1 ]
    [ "$(json "$T/sim.json" 'd["calls"]["cuModuleLoadData"]')" = 1 ]
}

@test "a fingerprint launch or its result buffer fails: that eviction copies, the rest go on" {
    offloaded SIMCUDA_FAIL=cuLaunchKernel:1 # the first is the fingerprint beside W's first copy
    grep -q 'clean-eviction check unavailable (cuLaunchKernel: CUDA_ERROR_UNKNOWN)' "$T/err"
    [ "$(json "$T/stats.json" 'd["clean_evictions"] > 0 and d["failed_evictions"] == 0')" = True ]
    offloaded SIMCUDA_FAIL=cuMemAlloc:1:CUDA_ERROR_OUT_OF_MEMORY # the results, at W's first eviction
    grep -q 'clean-eviction check unavailable (cuMemAlloc: CUDA_ERROR_OUT_OF_MEMORY)' "$T/err"
    [ "$(json "$T/stats.json" 'd["clean_evictions"] > 0')" = True ]
}

@test "random faults with the check on: the right result or a named error, never wrong bytes" {
    for seed in 1 2 3 4 5 6 7 8; do
        env SIMCUDA_MEMORY=256MiB LD_PRELOAD=$LIB OFFLOAD_CONFIG=$T/wb.conf OFFLOAD_BUDGET=100MiB \
            SIMCUDA_FAIL_RANDOM=0.02:$seed "$B/progs/clean_evict" "$B/progs/clean_kernels.so" 4 \
            >"$T/out" 2>"$T/err" && st=0 || st=$?
        if [ "$st" = 0 ]; then
            diff "$BATS_FILE_TMPDIR/ref.out" "$T/out" || { cat "$T/err"; false; }
        else
            grep -q 'clean_evict: .* = CUDA_ERROR_' "$T/err" || { echo "seed $seed"; cat "$T/err"; false; }
        fi
    done
}

@test "B rewritten from the host each turn: a known write, copied at every eviction, the same bytes" {
    # upload: B is rewritten by a synchronous cuMemcpyHtoD, nothing between it and the
    # eviction before: liboffload must order it after its own reads of B
    "$B/progs/clean_evict" "$B/progs/clean_kernels.so" 4 64 upload >"$T/bare.out"
    env SIMCUDA_MEMORY=256MiB SIMCUDA_REPORT=$T/sim.json LD_PRELOAD=$LIB OFFLOAD_CONFIG=$T/wb.conf \
        OFFLOAD_BUDGET=100MiB OFFLOAD_STATS=$T/stats.json \
        "$B/progs/clean_evict" "$B/progs/clean_kernels.so" 4 64 upload >"$T/out"
    diff "$T/bare.out" "$T/out"
    [ "$(json "$T/sim.json" 'd["races"] + d["faults"]')" = 0 ]
    [ "$(component w bytes_to_host)" = $((64 * MIB)) ]
    b_ev=$(component b evictions)
    [ "$b_ev" -ge 3 ]
    [ "$(component b bytes_to_host)" = $((b_ev * 64 * MIB)) ]
}
