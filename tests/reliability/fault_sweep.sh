#!/usr/bin/env bash
# fault_sweep.sh — fails, one at a time, every driver entry point liboffload relies on
# while evicting and restoring, at several points of a reference pipeline run under
# pressure (device too small for all components, LD_PRELOAD=liboffload.so), then a few
# runs with random faults. Every run must end in one of two ways:
#   recovered    exit 0 and the checksum of the run without liboffload on ample memory;
#   clean error  exit 1..123, and stderr (the simulator's own lines aside) names the
#                entry point that failed, so a user knows what broke.
# Anything else is BAD: a signal (crash), a timeout (hang), exit 0 with a wrong or
# missing checksum, a failure whose message does not name the failed call, or any
# sanitizer report (in a SANITIZE= build).
#
# Which calls: SIMCUDA_FAIL=NAME:N fails the Nth call of NAME (tests/sim/core.c). The
# simulator does not report call counts, so N walks 1, 4, 16, 64, ... until the fault is
# no longer reached (SIMCUDA_REPORT's injected_faults is 0): early, middle and late calls,
# within a factor of 4 of the last one.
#
# Prints a table (entry point x N -> outcome) and totals; exits 1 if any outcome is BAD,
# 2 if the set-up itself is broken.
#
# Environment: BUILD (default build), SWEEP_SCALE (0.03), SWEEP_DEVICE (28MiB),
# SWEEP_ARGS (more pipeline arguments, e.g. "--like torch"), SWEEP_CONF (the config,
# default examples/pipeline/offload.conf; a missing file means none: LRU),
# SWEEP_TIMEOUT (seconds per run, 40), SWEEP_JOBS (parallel runs, 2), SWEEP_MAX_PROBES (4),
# SWEEP_RANDOM_SEEDS (4), SWEEP_RANDOM_P (0.002), SWEEP_ENTRIES (space-separated names).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
ROOT=$PWD
BUILD=${BUILD:-build}
[[ $BUILD == /* ]] || BUILD=$ROOT/$BUILD
SCALE=${SWEEP_SCALE:-0.03}
DEVICE=${SWEEP_DEVICE:-28MiB}
TIMEOUT=${SWEEP_TIMEOUT:-40}
JOBS=${SWEEP_JOBS:-2}
MAX_PROBES=${SWEEP_MAX_PROBES:-4}
SEEDS=${SWEEP_RANDOM_SEEDS:-4}
RANDOM_P=${SWEEP_RANDOM_P:-0.002}
CONF=${SWEEP_CONF:-$ROOT/examples/pipeline/offload.conf}
read -r -a EXTRA_ARGS <<<"${SWEEP_ARGS:-}"
ENTRIES=${SWEEP_ENTRIES:-"cuMemAddressReserve cuMemCreate cuMemMap cuMemSetAccess
    cuMemcpyDtoHAsync cuMemcpyHtoDAsync cuEventCreate cuEventRecord cuEventSynchronize
    cuEventQuery cuStreamWaitEvent cuStreamCreate cuMemHostAlloc cuMemAllocHost cuMemUnmap
    cuMemRelease"}

PIPE=$BUILD/pipeline
LIB=$BUILD/liboffload.so
for f in "$PIPE" "$LIB" "$BUILD/sim/libcuda.so.1"; do
    [[ -e $f ]] || { echo "fault_sweep: $f is missing (make BUILD=$BUILD all)" >&2; exit 2; }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export LD_LIBRARY_PATH=$BUILD/sim
unset LD_PRELOAD OFFLOAD_CONFIG OFFLOAD_BUDGET OFFLOAD_POLICY OFFLOAD_PREFETCH OFFLOAD_STATS \
    OFFLOAD_MODE OFFLOAD_MIN_SIZE OFFLOAD_LOG SIMCUDA_FAIL SIMCUDA_FAIL_RANDOM SIMCUDA_LOG \
    SIMCUDA_REPORT SIMCUDA_MEMORY
ARGS=(--scale "$SCALE" --steps 1 --quiet "${EXTRA_ARGS[@]}")

# The reference: no liboffload, ample memory.
ref=$(SIMCUDA_MEMORY=4GiB "$PIPE" "${ARGS[@]}" --out "$work/ref.png" 2>"$work/ref.err" |
    sed -n 's/^checksum: //p')
[[ -n $ref ]] || { echo "fault_sweep: reference run failed:" >&2; cat "$work/ref.err" >&2; exit 2; }

offload_env=(LD_PRELOAD="$LIB" SIMCUDA_MEMORY="$DEVICE")
[[ -f $CONF ]] && offload_env+=(OFFLOAD_CONFIG="$CONF")

# run_one TAG [VAR=VALUE...]: one pipeline run under pressure with liboffload and the
# given fault settings. Prints "OUTCOME INJECTED DETAIL" where OUTCOME is recovered,
# clean, unreached, or BAD-<why>.
run_one() {
    local tag=$1
    shift
    local out=$work/$tag.out err=$work/$tag.err rep=$work/$tag.json rc
    rm -f "$rep"
    env "${offload_env[@]}" SIMCUDA_REPORT="$rep" SIMCUDA_LOG=1 "$@" \
        timeout -k 5 "$TIMEOUT" "$PIPE" "${ARGS[@]}" --out "$work/$tag.png" >"$out" 2>"$err"
    rc=$?
    local injected=0 names sums own
    [[ -f $rep ]] && injected=$(sed -n 's/.*"injected_faults": *\([0-9]*\).*/\1/p' "$rep")
    injected=${injected:-0}
    # The simulator's log names what it failed; the rest of stderr is what a user sees.
    names=$(sed -n 's/^simcuda: injected \(random \)\{0,1\}fault: \([A-Za-z0-9_]*\).*/\2/p' "$err" |
        sort -u | tr '\n' ' ')
    own=$(grep -v '^simcuda:' "$err")
    sums=$(sed -n 's/^checksum: //p' "$out" | sort -u | tr '\n' ' ')
    sums=${sums% }
    if grep -Eq 'ERROR: (Address|Leak|Thread)Sanitizer|WARNING: ThreadSanitizer|runtime error:' "$err"; then
        echo "BAD-sanitizer $injected exit $rc: $(grep -Em1 'Sanitizer|runtime error:' "$err")"
    elif ((rc == 124 || rc == 137)); then
        echo "BAD-hang $injected timed out after ${TIMEOUT}s"
    elif ((rc > 128)); then
        echo "BAD-crash $injected signal $((rc - 128)) $(kill -l $((rc - 128)) 2>/dev/null)"
    elif ((rc == 0)); then
        if [[ $sums == "$ref" ]]; then
            ((injected > 0)) && echo "recovered $injected" || echo "unreached 0"
        else
            echo "BAD-wrong $injected exit 0 with checksum '${sums}' (want $ref)"
        fi
    elif [[ -n $sums && $sums != "$ref" ]]; then
        echo "BAD-wrong $injected exit $rc with checksum '${sums}' (want $ref)"
    elif ((injected == 0)); then
        echo "BAD-spurious 0 exit $rc without any injected fault: $(echo "$own" | tail -n 1)"
    else
        local named=0 n base
        for n in $names; do
            base=${n%_ptsz}; base=${base%_ptds}; base=${base%_v[2-9]}
            grep -q "$base" <<<"$own" && named=1
        done
        if ((named)); then
            echo "clean $injected exit $rc"
        else
            echo "BAD-unnamed $injected exit $rc, failed ${names% } not named: $(echo "$own" | tail -n 1)"
        fi
    fi
}

# sweep_entry NAME: N = 1, 4, 16, ... until the fault is not reached; one line per run
# into $work/NAME.rows: "NAME N OUTCOME INJECTED DETAIL".
sweep_entry() {
    local name=$1 n=1 probe line
    for ((probe = 0; probe < MAX_PROBES; probe++)); do
        line=$(run_one "$name-$n" SIMCUDA_FAIL="$name:$n")
        echo "$name $n $line" >>"$work/$name.rows"
        [[ $line == unreached* ]] && break
        n=$((n * 4))
    done
}

random_seed() {
    local seed=$1
    echo "random:$RANDOM_P seed=$seed $(run_one "random-$seed" SIMCUDA_FAIL_RANDOM="$RANDOM_P:$seed")" \
        >"$work/random-$seed.rows"
}

# The baseline under pressure must itself be right, or nothing below means anything.
base=$(run_one baseline)
if [[ $base != unreached* ]]; then
    echo "fault_sweep: the run under pressure without faults is not right: $base" >&2
    grep -v '^simcuda:' "$work/baseline.err" | tail -n 20 >&2
    exit 2
fi

start=$SECONDS
for name in $ENTRIES; do
    while (($(jobs -rp | wc -l) >= JOBS)); do wait -n; done
    sweep_entry "$name" &
done
for ((s = 1; s <= SEEDS; s++)); do
    while (($(jobs -rp | wc -l) >= JOBS)); do wait -n; done
    random_seed "$s" &
done
wait

printf '%-22s %-10s %-12s %s\n' "entry point" "N" "outcome" "detail"
total=0 recovered=0 clean=0 bad=0 unreached=0
for name in $ENTRIES; do cat "$work/$name.rows"; done >"$work/all.rows"
for ((s = 1; s <= SEEDS; s++)); do cat "$work/random-$s.rows"; done >>"$work/all.rows"
while read -r name n outcome injected detail; do
    printf '%-22s %-10s %-12s %s\n' "$name" "$n" "$outcome" "$detail"
    case $outcome in
    unreached) unreached=$((unreached + 1)); continue ;;
    recovered) recovered=$((recovered + 1)) ;;
    clean) clean=$((clean + 1)) ;;
    *) bad=$((bad + 1)) ;;
    esac
    total=$((total + injected))
done <"$work/all.rows"
echo "reference checksum $ref; scale $SCALE${SWEEP_ARGS:+ $SWEEP_ARGS} on a $DEVICE device$([[ -f $CONF ]] && echo ", $CONF" || echo ", no config (LRU)"); $((SECONDS - start)) s"
echo "injected faults: $total; recovered: $recovered; clean errors: $clean; BAD: $bad; probes past the last call: $unreached"
((bad == 0))
