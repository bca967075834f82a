#!/usr/bin/env bash
# tests/bench/run.sh — `make bench`: liboffload's performance figures on the simulated
# driver (issue 7). Every figure is a ratio or a difference measured side by side in this
# one run (the machine is noisy), written to $BUILD/bench.json and printed as a table with
# its target and PASS/MISS. The method behind each figure is in tests/bench/NOTES.md.
#
#   BUILD=build tests/bench/run.sh            everything (a few minutes)
#   BENCH_QUICK=1 BUILD=build tests/bench/run.sh   tiny sizes: checks the plumbing only
#   BENCH_ONLY="launch move" ...             only those figures (launch instr move
#                                            overlap clean startup peak stream)
#
# Needs jq (Debian: jq) and, for launch_overhead_instr, valgrind. A figure that cannot be
# measured is written as null with the reason, and the table says so; the script still
# exits 0 (a MISS is a finding, not a failure) unless a program crashes or the data
# read back after offloading differs, which exits 1.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BUILD=${BUILD:-build}
QUICK=${BENCH_QUICK:-0}
ONLY=${BENCH_ONLY:-launch instr move overlap clean startup peak stream}
OUT=${BENCH_OUT:-$BUILD/bench.json}
LIB=$ROOT/$BUILD/liboffload.so
MODULE=$ROOT/$BUILD/bench/bench_kernels.so
PIPELINE=$ROOT/$BUILD/pipeline
PIPE_CONF=$ROOT/examples/pipeline/offload.conf
[[ $BUILD == /* ]] && LIB=$BUILD/liboffload.so MODULE=$BUILD/bench/bench_kernels.so \
    PIPELINE=$BUILD/pipeline

command -v jq >/dev/null || { echo "bench: needs jq (apt-get install -y jq)" >&2; exit 1; }
OPTIMUM=$ROOT/$BUILD/tools/optimum
[[ $BUILD == /* ]] && OPTIMUM=$BUILD/tools/optimum
for f in "$LIB" "$MODULE" "$BUILD/bench/launch_overhead" "$BUILD/bench/move" \
    "$BUILD/bench/startup" "$OPTIMUM"; do
    [[ -e $f ]] || { echo "bench: $f missing: run make bench" >&2; exit 1; }
done
# The pipeline and liboffload find the simulated driver by its soname.
export LD_LIBRARY_PATH=$BUILD/sim${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
unset OFFLOAD_CONFIG OFFLOAD_BUDGET OFFLOAD_POLICY OFFLOAD_PREFETCH OFFLOAD_STATS \
    OFFLOAD_MODE OFFLOAD_LOG SIMCUDA_PCIE_GBPS SIMCUDA_REPORT LD_PRELOAD

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
RESULTS=$TMP/results.jsonl # one JSON object per figure
: >"$RESULTS"

START=$SECONDS
say() { printf 'bench: [%3ds] %s\n' $((SECONDS - START)) "$*" >&2; }
wants() { [[ " $ONLY " == *" $1 "* ]]; }
median() { sort -g | awk '{v[NR]=$1} END {if (NR==0) print "null"; else if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }

# record NAME VALUE TARGET_OP TARGET UNIT DETAIL_JSON — VALUE "null" when not measured,
# then DETAIL_JSON carries {"error": ...}. TARGET_OP is <= or >= or "" (no target).
record() {
    local name=$1 value=$2 op=$3 target=$4 unit=$5 detail=${6:-"{}"} verdict
    if [[ $value == null ]]; then
        verdict=n/a
    elif [[ -z $op ]]; then
        verdict=info
    elif awk -v v="$value" -v t="$target" -v op="$op" \
        'BEGIN { exit !((op == "<=") ? (v <= t) : (v >= t)) }'; then
        verdict=PASS
    else
        verdict=MISS
    fi
    jq -nc --arg name "$name" --argjson value "$value" --arg op "$op" --arg target "$target" \
        --arg unit "$unit" --arg verdict "$verdict" --argjson detail "$detail" \
        '{name: $name, value: $value, target: (if $op == "" then null else "\($op) \($target)" end),
          unit: $unit, verdict: $verdict, detail: $detail}' >>"$RESULTS"
}

# Sums a per-component field over every component of an OFFLOAD_STATS file. Accepts
# "components" as an array of objects or as an object keyed by name.
stats_sum() {
    jq -r --arg f "$2" '[(.components | if type == "object" then .[] else .[] end) | .[$f] // 0]
        | add // 0' "$1"
}

# --- 1. launch_overhead_ns ---------------------------------------------------------------
bench_launch() {
    # Many short rounds: a burst of load from elsewhere then hits both sides alike.
    local rounds=10 batches=2 launches=10000 r
    ((QUICK)) && rounds=1 batches=2 launches=500
    say "launch_overhead_ns: $rounds x 2 processes x $batches batches x $launches launches"
    for ((r = 0; r < rounds; r++)); do
        "$BUILD/bench/launch_overhead" "$MODULE" --batches $batches --launches $launches \
            >"$TMP/launch.bare.$r.json"
        LD_PRELOAD=$LIB "$BUILD/bench/launch_overhead" "$MODULE" --batches $batches \
            --launches $launches >"$TMP/launch.offload.$r.json"
    done
    local bare offload bare_min offload_min
    bare=$(jq '.ns_per_launch[]' "$TMP"/launch.bare.*.json | median)
    offload=$(jq '.ns_per_launch[]' "$TMP"/launch.offload.*.json | median)
    bare_min=$(jq '.ns_per_launch[]' "$TMP"/launch.bare.*.json | sort -g | head -n 1)
    offload_min=$(jq '.ns_per_launch[]' "$TMP"/launch.offload.*.json | sort -g | head -n 1)
    record launch_overhead_ns "$(awk -v a="$offload" -v b="$bare" 'BEGIN {printf "%.1f", a - b}')" \
        "<=" 100 ns "$(jq -nc --argjson b "$bare" --argjson o "$offload" --argjson bm "$bare_min" \
        --argjson om "$offload_min" --argjson n $((rounds * batches * launches)) \
        '{bare_median_ns: $b, offload_median_ns: $o, difference_of_minima_ns: ($om - $bm),
          launches_each: $n}')"
}

# --- 1b. launch_overhead_instr -----------------------------------------------------------
# Instructions liboffload adds to one launch: callgrind over launch_loop() (the launches
# alone) for N and for 2N launches, preloaded; per run, the inclusive cost of liboffload's
# cuLaunchKernel hook less that of the driver's cuLaunchKernel it calls. The difference
# of the two runs is exactly N launches (same warm-up, same set-up). The driver's own cost
# is left out on purpose: the simulator's varies by hundreds of instructions from run to
# run (malloc's free lists, how far its worker got), which would drown the figure.
callgrind_ir() { # callgrind_ir OUTFILE N; KERNEL_ARGS: extra launch_overhead options
    local out=$1 n=$2
    LD_PRELOAD="$LIB" valgrind --tool=callgrind --toggle-collect=launch_loop \
        --callgrind-out-file="$out" "$BUILD/bench/launch_overhead" "$MODULE" --batches 1 \
        --launches "$n" ${KERNEL_ARGS:-} >/dev/null 2>"$out.log" || {
        tail -n 5 "$out.log" >&2
        return 1
    }
    # "HOOK DRIVER": the two inclusive costs
    callgrind_annotate --inclusive=yes --threshold=100 "$out" 2>/dev/null |
        awk '/:cuLaunchKernel \[/ { gsub(",", "", $1); if ($0 ~ /liboffload/) h = $1; else d = $1 }
             END { if (h == "" || d == "") exit 1; print h, d }'
}
# instr_per_launch NAME TARGET-OP TARGET: records NAME from runs of N and 2N launches
instr_per_launch() {
    local name=$1 op=$2 target=$3 n=5000 h1 d1 h2 d2
    ((QUICK)) && n=200
    if read -r h1 d1 < <(callgrind_ir "$TMP/cg.$name.1" $n) &&
        read -r h2 d2 < <(callgrind_ir "$TMP/cg.$name.2" $((2 * n))); then
        record "$name" $((((h2 - d2) - (h1 - d1)) / n)) "$op" "$target" instr \
            "{\"driver_per_launch\": $(((d2 - d1) / n)), \"n\": $n}"
    else
        record "$name" null "$op" "$target" instr '{"error": "valgrind run failed"}'
    fi
}
bench_instr() {
    command -v valgrind >/dev/null || {
        record launch_overhead_instr null "<=" 400 instr '{"error": "valgrind not installed"}'
        return
    }
    say "launch_overhead_instr: callgrind, N and 2N launches, liboffload's hook less the driver's"
    instr_per_launch launch_overhead_instr "<=" 400
    # The same for a kernel taking a 256-byte Params struct (32 words read per launch):
    # reported beside, for information.
    KERNEL_ARGS=--params256 instr_per_launch launch_overhead_params256_instr "" ""
}

# --- 2. move_ratio -----------------------------------------------------------------------
bench_move() {
    local mib=256 cycles=4
    ((QUICK)) && mib=8 cycles=1
    say "move_ratio: two $mib MiB components, $cycles cycles, against bare pinned copies"
    # Room for one component, not two: whatever the policy, touching one evicts the other.
    if ! LD_PRELOAD=$LIB OFFLOAD_CONFIG=$ROOT/tests/bench/move.conf \
        OFFLOAD_BUDGET=$((mib * 3 / 2))MiB OFFLOAD_STATS=$TMP/move.stats.json \
        "$BUILD/bench/move" "$MODULE" --mib $mib --cycles $cycles >"$TMP/move.json" \
        2>"$TMP/move.err"; then
        cat "$TMP/move.err" >&2
        record move_ratio null ">=" 0.90 ratio '{"error": "move failed (see stderr)"}'
        return 1
    fi
    local evict restore moved expect
    evict=$(jq .evict_ratio "$TMP/move.json")
    restore=$(jq .restore_ratio "$TMP/move.json")
    # The stats must show that the timed launches really moved the bytes.
    moved=$(stats_sum "$TMP/move.stats.json" bytes_to_host 2>/dev/null || echo null)
    expect=$(((2 * cycles + 1) * mib * 1048576))
    record move_ratio "$(awk -v a="$evict" -v b="$restore" 'BEGIN {print (a < b) ? a : b}')" \
        ">=" 0.90 ratio "$(jq -c --argjson moved "$moved" --argjson expect $expect \
        '{evict_ratio, restore_ratio, swap_ratio, evict_gbps, restore_gbps, bare_dtoh_gbps, bare_htod_gbps,
          first_evict_ns, bytes_to_host: $moved, bytes_to_host_expected_at_least: $expect}' \
        "$TMP/move.json")"
}

# --- 5. startup_ms -----------------------------------------------------------------------
bench_startup() {
    local runs=60 conf=$PIPE_CONF
    ((QUICK)) && runs=3
    [[ -r $conf ]] || conf=$ROOT/tests/bench/move.conf
    say "startup_ms: $runs spawns each way, config $(basename "$conf")"
    "$BUILD/bench/startup" "$LIB" "$conf" --runs $runs >"$TMP/startup.json"
    record startup_ms "$(jq .startup_ms "$TMP/startup.json")" "" "" ms \
        "$(jq -c '{median_bare_ns, median_offload_ns, runs}' "$TMP/startup.json")"
}

# --- the pipeline: 3. overlap, 4. clean_evict, 6. peak_ratio ------------------------------
# Sizes: components add up to more than the simulated 256 MiB device, while the biggest
# one plus the next fit, so that prefetching has room: at scale 0.25 text_encoder 37.5,
# unet 162.5, vae 50 MiB of weights (250 + ~15 MiB of activations > 256 MiB, unet + vae +
# activations ~228 MiB). At 0.3 unet + vae + activations (~270 MiB) did not fit, so the
# prefetch during the unet never had room. BENCH_QUICK shrinks everything.
PIPE_SCALE=${BENCH_PIPE_SCALE:-0.25}
PIPE_STEPS=${BENCH_PIPE_STEPS:-4}
PIPE_RUNS=${BENCH_PIPE_RUNS:-3}
DEVICE=${BENCH_DEVICE:-256MiB}
BIG_DEVICE=8GiB
TRANSFER_SHARE=0.5 # a component's transfer time / its compute time, for the overlap figure
if ((QUICK)); then
    PIPE_SCALE=${BENCH_PIPE_SCALE:-0.15} PIPE_STEPS=1 PIPE_RUNS=2 DEVICE=${BENCH_DEVICE:-128MiB}
    TRANSFER_SHARE=0.05 # the plumbing only: no minute-long runs at a slow bandwidth
fi
PIPE_ARGS=(--scale "$PIPE_SCALE" --steps "$PIPE_STEPS" --runs "$PIPE_RUNS")
REF_SUM=

# pipe NAME [VAR=VALUE...]: one pipeline process. Sets PIPE_SECONDS (the per-run time the
# pipeline prints, median over runs after the first: steady state, no loading) and checks
# its checksums against the first run's (REF_SUM). Returns 1 on any failure.
pipe() {
    local name=$1
    shift
    say "  pipeline run: $name"
    if ! env "$@" "$PIPELINE" "${PIPE_ARGS[@]}" --out "$TMP/$name.png" >"$TMP/pipe.$name.out" \
        2>"$TMP/pipe.$name.err"; then
        say "pipeline $name failed:"
        tail -n 5 "$TMP/pipe.$name.err" >&2
        return 1
    fi
    local sum
    sum=$(grep '^checksum' "$TMP/pipe.$name.out" | sort -u | tr '\n' ' ')
    [[ -n $REF_SUM ]] || REF_SUM=$sum
    if [[ -z $sum || $sum != "$REF_SUM" ]]; then
        say "pipeline $name: checksum '$sum' differs from '$REF_SUM'"
        return 1
    fi
    # "run 2: unet 0.123 s (4 steps)" or, for one run, "unet 0.123 s": sum per run.
    PIPE_SECONDS=$(awk '
        /(text_encoder|unet|vae) +[0-9.]+ s/ {
            run = ($1 == "run") ? $2 + 0 : 1
            for (i = 1; i < NF; i++) if ($(i + 1) == "s" && $i ~ /^[0-9.]+$/) t[run] += $i
            if (run > n) n = run
        }
        END { for (r = (n > 1) ? 2 : 1; r <= n; r++) print t[r] }' "$TMP/pipe.$name.out" | median)
}

bench_pipeline() {
    [[ -x $PIPELINE && -r $PIPE_CONF ]] || {
        for f in overlap clean_evict peak_ratio; do
            record $f null "" "" "" '{"error": "pipeline or examples/pipeline/offload.conf missing"}'
        done
        return
    }
    local off=(LD_PRELOAD="$LIB" OFFLOAD_CONFIG="$PIPE_CONF")
    say "pipeline: --scale $PIPE_SCALE --steps $PIPE_STEPS --runs $PIPE_RUNS; device $DEVICE"

    # All resident, no liboffload: the reference checksum and compute time.
    pipe resident SIMCUDA_MEMORY=$BIG_DEVICE || return 1
    local resident=$PIPE_SECONDS

    wants peak || wants overlap || { bench_clean_evict; return; }
    # 6. peak_ratio, and the bytes one run restores, on a device with room for everything:
    # only the policy decides what is resident.
    pipe peak SIMCUDA_MEMORY=$BIG_DEVICE "${off[@]}" OFFLOAD_POLICY=sequence OFFLOAD_PREFETCH=0 \
        OFFLOAD_STATS="$TMP/stats.peak.json" SIMCUDA_REPORT="$TMP/sim.peak.json" || return 1
    local peak sum restored device_peak
    peak=$(jq .peak_resident_bytes "$TMP/stats.peak.json")
    sum=$(stats_sum "$TMP/stats.peak.json" bytes)
    restored=$(jq ".bytes_to_device / $PIPE_RUNS" "$TMP/stats.peak.json")
    # The simulator's own count (every physical byte, tracked or not) as a cross-check.
    device_peak=$(jq '.peak_device_bytes // null' "$TMP/sim.peak.json" 2>/dev/null || echo null)
    wants peak && record peak_ratio \
        "$(awk -v p="$peak" -v s="$sum" 'BEGIN { printf "%.3f", s ? p / s : 0 }')" \
        "" "" ratio "{\"peak_resident_bytes\": $peak, \"component_bytes\": $sum,
        \"sim_peak_device_bytes\": $device_peak, \"prefetch\": 0}"
    wants overlap && { bench_overlap "$resident" "$restored" || return 1; }
    bench_clean_evict
}

bench_overlap() { # bench_overlap RESIDENT_SECONDS BYTES_RESTORED_PER_RUN
    local resident=$1 restored=$2 off=(LD_PRELOAD="$LIB" OFFLOAD_CONFIG="$PIPE_CONF")

    # 3. overlap. Bandwidth such that moving what one run restores takes half the compute.
    local gbps
    gbps=$(awk -v b="$restored" -v t="$resident" -v share=$TRANSFER_SHARE \
        'BEGIN { printf "%.3f", b / (t * share) / 1e9 }')
    say "overlap: SIMCUDA_PCIE_GBPS=$gbps (restores $restored bytes per run, compute $resident s)"
    local r res=() p1=() p0=()
    for ((r = 0; r < (QUICK ? 1 : 2); r++)); do
        pipe "bw.resident.$r" SIMCUDA_MEMORY=$BIG_DEVICE SIMCUDA_PCIE_GBPS="$gbps" || return 1
        res+=("$PIPE_SECONDS")
        pipe "bw.p1.$r" SIMCUDA_MEMORY="$DEVICE" SIMCUDA_PCIE_GBPS="$gbps" "${off[@]}" \
            OFFLOAD_PREFETCH=1 OFFLOAD_STATS="$TMP/stats.p1.$r.json" || return 1
        p1+=("$PIPE_SECONDS")
        pipe "bw.p0.$r" SIMCUDA_MEMORY="$DEVICE" SIMCUDA_PCIE_GBPS="$gbps" "${off[@]}" \
            OFFLOAD_PREFETCH=0 OFFLOAD_STATS="$TMP/stats.p0.$r.json" || return 1
        p0+=("$PIPE_SECONDS")
    done
    local m_res m_p1 m_p0
    m_res=$(printf '%s\n' "${res[@]}" | median)
    m_p1=$(printf '%s\n' "${p1[@]}" | median)
    m_p0=$(printf '%s\n' "${p0[@]}" | median)
    record overlap "$(awk -v a="$m_p1" -v b="$m_res" 'BEGIN { printf "%.3f", a / b }')" "<=" 1.10 \
        ratio "$(jq -nc --argjson res "$m_res" --argjson p1 "$m_p1" --argjson p0 "$m_p0" \
        --argjson gbps "$gbps" --arg device "$DEVICE" \
        --argjson hits "$(jq .prefetch_hits "$TMP/stats.p1.0.json")" \
        '{resident_s: $res, prefetch1_s: $p1, prefetch0_s: $p0, prefetch0_ratio: ($p0 / $res),
          pcie_gbps: $gbps, device: $device, prefetch_hits: $hits}')"
}

bench_clean_evict() {
    wants clean || return 0
    # 4. clean_evict: the shipped config (no readonly) with the clean-eviction check
    # (the default), the same without it (OFFLOAD_FINGERPRINT=no: before the check
    # existed), and readonly = yes on every component. Bytes per run in steady state:
    # (bytes after R runs - bytes after 1 run) / (R - 1), so the first eviction, which
    # must copy even read-only data, is not counted.
    local v ro check bytes_1 bytes_r yes=0 no=0 unchecked=0 clean_r=0
    for v in yes no unchecked; do
        ro=$v check=yes
        [[ $v == unchecked ]] && ro=no check=no
        awk -v ro="$ro" '/^[[:space:]]*readonly[[:space:]]*=/ { next }
            { print } /^[[:space:]]*\[component / { print "readonly = " ro }' \
            "$PIPE_CONF" >"$TMP/readonly-$v.conf"
        local common=(SIMCUDA_MEMORY="$DEVICE" LD_PRELOAD="$LIB" OFFLOAD_CONFIG="$TMP/readonly-$v.conf"
            OFFLOAD_FINGERPRINT="$check")
        PIPE_ARGS=(--scale "$PIPE_SCALE" --steps "$PIPE_STEPS" --runs 1)
        pipe "ro.$v.1" "${common[@]}" OFFLOAD_STATS="$TMP/stats.ro.$v.1.json" || return 1
        PIPE_ARGS=(--scale "$PIPE_SCALE" --steps "$PIPE_STEPS" --runs "$PIPE_RUNS")
        pipe "ro.$v.r" "${common[@]}" OFFLOAD_STATS="$TMP/stats.ro.$v.r.json" || return 1
        bytes_1=$(jq .bytes_to_host "$TMP/stats.ro.$v.1.json")
        bytes_r=$(jq .bytes_to_host "$TMP/stats.ro.$v.r.json")
        printf -v "$v" '%s' $(((bytes_r - bytes_1) / (PIPE_RUNS - 1)))
    done
    clean_r=$(jq .clean_bytes "$TMP/stats.ro.no.r.json")
    # No target in issue 7 ("report bytes moved per run with and without it"): activations
    # owned by a component are new every run, so their first eviction copies even under
    # readonly = yes; what must vanish is the weights' share. The figure: bytes to host per
    # run with the check against without it, both with the shipped config.
    # (a run's evictions of activations vary with timing by a MiB or so: a steady state
    # that copies nothing can come out slightly negative, counted as 0)
    record clean_evict "$(awk -v c="$no" -v u="$unchecked" 'BEGIN { printf "%.3f", (u && c > 0) ? c / u : 0 }')" \
        "" "" ratio "{\"bytes_to_host_per_run_checked\": $no,
        \"bytes_to_host_per_run_unchecked\": $unchecked,
        \"bytes_to_host_per_run_readonly_yes\": $yes,
        \"clean_bytes_in_r_runs\": $clean_r}"
}

# --- 7. stream: a component larger than the budget (issue 16) ----------------------------
# The pipeline at its default scale (unet 650 MiB of weights + its activations: U bytes)
# on a device of about 80%, 60% and 40% of U, SIMCUDA_PCIE_GBPS on. Per point: the bytes
# liboffload moves to the device against the optimum for the same trace and budget
# (tools/optimum: farthest next use with sizes over the run's recorded uses), and the
# unet phase against max(all-resident unet phase, optimum unet bytes / bandwidth). The
# library of STREAM_OLD_REV (before the learnt order and streaming) runs beside it.
# The shipped config's `policy = sequence` (diffusers' behaviour, smallest footprint) is
# overridden by the default policy, the one that moves the least (README "Policies"):
# under sequence, loading the unet evicts the text encoder by definition. A second bound,
# the optimum with the look-ahead of one of the unet's largest allocations (optimum
# --ahead), says what a policy that restores ahead can reach (stream_bytes_ahead).
STREAM_GBPS=${BENCH_STREAM_GBPS:-8}
STREAM_SCALE=${BENCH_STREAM_SCALE:-1}
STREAM_REPEATS=${BENCH_STREAM_REPEATS:-3}
STREAM_POINTS=${BENCH_STREAM_POINTS:-0.8 0.6 0.4}
STREAM_OLD_REV=28bc12143d230b47e6a35f85ed97c5e97283f557 # 28bc121, the day issue 16 was filed
((QUICK)) && STREAM_SCALE=${BENCH_STREAM_SCALE:-0.15} STREAM_REPEATS=1 STREAM_POINTS=0.4

# The library as it was at STREAM_OLD_REV, built once into $BUILD/bench/old-REV (cached).
old_library() {
    local dir=$ROOT/$BUILD/bench/old-${STREAM_OLD_REV:0:12}
    [[ $BUILD == /* ]] && dir=$BUILD/bench/old-${STREAM_OLD_REV:0:12}
    if [[ ! -e $dir/build/liboffload.so ]]; then
        git -C "$ROOT" cat-file -e "$STREAM_OLD_REV^{commit}" 2>/dev/null || return 1
        rm -rf "$dir" && mkdir -p "$dir/src" || return 1
        git -C "$ROOT" archive "$STREAM_OLD_REV" | tar -x -C "$dir/src" || return 1
        say "stream: building the library of ${STREAM_OLD_REV:0:7} (once)"
        make -s -C "$dir/src" -j2 BUILD="$dir/build" "$dir/build/liboffload.so" \
            >"$dir/build.log" 2>&1 || return 1
    fi
    echo "$dir/build/liboffload.so"
}

# stream_run NAME [VAR=VALUE...]: one pipeline process at the stream scale; sets
# STREAM_UNET (its unet phase in seconds) and checks its checksum against STREAM_SUM.
stream_run() {
    local name=$1 sum
    shift
    say "  stream run: $name"
    if ! env SIMCUDA_PCIE_GBPS="$STREAM_GBPS" "$@" "$PIPELINE" --scale "$STREAM_SCALE" \
        --out "$TMP/$name.png" >"$TMP/stream.$name.out" 2>"$TMP/stream.$name.err"; then
        say "pipeline $name failed:"
        tail -n 5 "$TMP/stream.$name.err" >&2
        return 1
    fi
    sum=$(grep '^checksum' "$TMP/stream.$name.out")
    [[ -n $STREAM_SUM ]] || STREAM_SUM=$sum
    if [[ -z $sum || $sum != "$STREAM_SUM" ]]; then
        say "pipeline $name: checksum '$sum' differs from '$STREAM_SUM'"
        return 1
    fi
    STREAM_UNET=$(awk '$1 == "unet" && $3 == "s" { print $2 }' "$TMP/stream.$name.out")
}

# The unet component's field in a stats file.
unet_stat() { jq -r --arg f "$2" '[.components[] | select(.name == "unet") | .[$f]][0] // 0' "$1"; }

bench_stream() {
    [[ -x $PIPELINE && -r $PIPE_CONF ]] || {
        record stream null "<=" 1.10 ratio '{"error": "pipeline or examples/pipeline/offload.conf missing"}'
        return
    }
    local off=(LD_PRELOAD="$LIB" OFFLOAD_CONFIG="$PIPE_CONF" OFFLOAD_POLICY=budget) old r times=()
    STREAM_SUM=
    say "stream: --scale $STREAM_SCALE, SIMCUDA_PCIE_GBPS=$STREAM_GBPS, points $STREAM_POINTS"
    old=$(old_library) || { say "stream: no library of ${STREAM_OLD_REV:0:7}: today's figures left out"; old=; }
    for ((r = 0; r < STREAM_REPEATS; r++)); do
        stream_run "resident.$r" SIMCUDA_MEMORY=$BIG_DEVICE || return 1
        times+=("$STREAM_UNET")
    done
    local resident unet_bytes
    resident=$(printf '%s\n' "${times[@]}" | median)
    stream_run sizes SIMCUDA_MEMORY=$BIG_DEVICE "${off[@]}" OFFLOAD_STATS="$TMP/stream.sizes.json" ||
        return 1
    unet_bytes=$(unet_stat "$TMP/stream.sizes.json" bytes)
    local f points=() worst_bytes=0 worst_time=0 worst_ahead=0 worst_demand=0
    for f in $STREAM_POINTS; do
        local device tag stats trace
        device=$(awk -v u="$unet_bytes" -v f="$f" 'BEGIN { printf "%d", u * f / 1048576 }')MiB
        tag=${f/./}
        stats=$TMP/stream.$tag.stats.json trace=$TMP/stream.$tag.trace.json
        times=()
        for ((r = 0; r < STREAM_REPEATS; r++)); do
            local extra=()
            ((r == 0)) && extra=(OFFLOAD_STATS="$stats" OFFLOAD_TRACE="$trace")
            stream_run "$tag.$r" SIMCUDA_MEMORY="$device" "${off[@]}" "${extra[@]}" || return 1
            times+=("$STREAM_UNET")
        done
        local unet_s budget optimum ahead
        unet_s=$(printf '%s\n' "${times[@]}" | median)
        # The optimum's room: the budget less what liboffload does not track (small
        # allocations), the same room liboffload had.
        budget=$(jq '.budget_bytes - (.peak_used_bytes - .peak_resident_bytes)' "$stats")
        jq -r '.uses.records[] | @tsv' "$trace" >"$TMP/stream.$tag.uses.tsv"
        "$OPTIMUM" --budget "$budget" <"$TMP/stream.$tag.uses.tsv" \
            >"$TMP/stream.$tag.optimum.json" || return 1
        optimum=$TMP/stream.$tag.optimum.json
        # the look-ahead: one of the unet's largest allocations in flight (component 1)
        ahead=$(awk '$5 == 1 && $4 > m { m = $4 } END { print m + 0 }' "$TMP/stream.$tag.uses.tsv")
        "$OPTIMUM" --budget "$budget" --ahead "$ahead" <"$TMP/stream.$tag.uses.tsv" \
            >"$TMP/stream.$tag.ahead.json" || return 1
        local old_json=null
        if [[ -n $old ]]; then
            stream_run "$tag.old" SIMCUDA_MEMORY="$device" LD_PRELOAD="$old" \
                OFFLOAD_CONFIG="$PIPE_CONF" OFFLOAD_STATS="$TMP/stream.$tag.old.json" || return 1
            old_json=$(jq -c --argjson t "$STREAM_UNET" '{bytes_to_device, demand_restores,
                restores, unet_bytes_to_device: ([.components[] | select(.name == "unet")][0].bytes_to_device),
                unet_s: $t}' "$TMP/stream.$tag.old.json")
        fi
        local point
        point=$(jq -nc --arg device "$device" --argjson f "$f" --argjson unet_s "$unet_s" \
            --argjson resident "$resident" --argjson gbps "$STREAM_GBPS" \
            --argjson old "$old_json" --slurpfile s "$stats" --slurpfile o "$optimum" \
            --slurpfile a "$TMP/stream.$tag.ahead.json" '
            ($s[0]) as $s | ($o[0]) as $o | ($a[0]) as $a
            | ([$s.components[] | select(.name == "unet")][0]) as $u
            | ($o.component_bytes_to_device["1"] // 0) as $ou
            | ([$resident, $ou / ($gbps * 1e9)] | max) as $bound
            | {fraction: $f, device: $device, bytes_to_device: $s.bytes_to_device,
               optimum_bytes_to_device: $o.bytes_to_device,
               bytes_ratio: ($s.bytes_to_device / ([$o.bytes_to_device, 1] | max)),
               ahead_bytes: $a.ahead_bytes, optimum_ahead_bytes_to_device: $a.bytes_to_device,
               optimum_ahead_unet_bytes_to_device: ($a.component_bytes_to_device["1"] // 0),
               bytes_ratio_ahead: ($s.bytes_to_device / ([$a.bytes_to_device, 1] | max)),
               unet_bytes_to_device: $u.bytes_to_device, optimum_unet_bytes_to_device: $ou,
               unet_s: $unet_s, resident_unet_s: $resident, bound_s: $bound,
               time_ratio: ($unet_s / $bound),
               demand_restores: $s.demand_restores, restores: $s.restores,
               unet_prefetch_hits: $u.prefetch_hits,
               unet_demand_restores: $u.demand_restores, unet_restores: $u.restores,
               unet_demand_share: ($u.demand_restores / ([$u.restores, 1] | max)),
               text_encoder_bytes_to_device: ([$s.components[] | select(.name == "text_encoder")][0].bytes_to_device),
               unet_resident_across_turns_bytes: $u.resident_across_turns_bytes, today: $old}')
        points+=("$point")
        worst_bytes=$(jq -n --argjson a "$worst_bytes" --argjson p "$point" '[$a, $p.bytes_ratio] | max')
        worst_time=$(jq -n --argjson a "$worst_time" --argjson p "$point" '[$a, $p.time_ratio] | max')
        worst_ahead=$(jq -n --argjson a "$worst_ahead" --argjson p "$point" '[$a, $p.bytes_ratio_ahead] | max')
        worst_demand=$(jq -n --argjson a "$worst_demand" --argjson p "$point" '[$a, $p.unet_demand_share] | max')
    done
    local detail
    detail=$(printf '%s\n' "${points[@]}" | jq -sc --argjson gbps "$STREAM_GBPS" \
        --argjson scale "$STREAM_SCALE" --argjson u "$unet_bytes" --arg old "${STREAM_OLD_REV:0:7}" \
        '{scale: $scale, pcie_gbps: $gbps, unet_bytes: $u, today_is: $old, points: .}')
    record stream_bytes "$(printf '%.3f' "$worst_bytes")" "<=" 1.10 ratio "$detail"
    record stream_bytes_ahead "$(printf '%.3f' "$worst_ahead")" "<=" 1.10 ratio \
        '{"see": "stream_bytes detail: bytes_ratio_ahead per point (bytes / optimum with the look-ahead of one of the unet largest allocations, optimum --ahead)"}'
    # issue 16 item 6: the unet's restores arrive ahead (a count that depends on timing, so
    # a figure here; tests/stream.bats asserts a loose bound)
    record stream_demand "$(printf '%.3f' "$worst_demand")" "<=" 0.10 ratio \
        '{"see": "stream_bytes detail: unet_demand_restores / unet_restores per point"}'
    record stream_time "$(printf '%.3f' "$worst_time")" "<=" 1.15 ratio \
        '{"see": "stream_bytes detail: time_ratio per point (unet phase / max(all-resident, optimum unet bytes / bandwidth))"}'
}

status=0
wants launch && { bench_launch || status=1; }
wants instr && { bench_instr || status=1; }
wants move && { bench_move || status=1; }
wants startup && { bench_startup || status=1; }
if wants overlap || wants clean || wants peak; then
    bench_pipeline || status=1
fi
wants stream && { bench_stream || status=1; }

jq -s --arg date "$(date -u +%FT%TZ)" --arg host "$(uname -n)" --argjson quick "$QUICK" \
    '{date: $date, host: $host, driver: "simulator", quick: ($quick == 1),
      figures: (map({key: .name, value: .}) | from_entries)}' "$RESULTS" >"$OUT"
printf '\n%-24s %14s  %-10s %s\n' figure value target verdict
jq -r '.figures[] | [.name, (if .value == null then "-" else "\(.value) \(.unit)" end),
    (.target // "-"), .verdict] | @tsv' "$OUT" |
    while IFS=$'\t' read -r name value target verdict; do
        printf '%-24s %14s  %-10s %s\n' "$name" "$value" "$target" "$verdict"
    done
echo "bench: wrote $OUT"
exit $status
