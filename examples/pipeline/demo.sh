#!/usr/bin/env bash
# demo.sh — run by `make demo` (which builds everything first): the story in the order a
# user meets it, on one and the same device size (256 MiB):
#   1. the reference pipeline alone fails with the driver's out-of-memory error;
#   2. `offload run` with the shipped config (examples/pipeline/offload.conf) succeeds;
#   3. its picture is bit-identical to that of a run with ample memory (8 GiB);
# then the figures (peak device memory, time against the ample run, bytes moved, prefetch
# hits) and where the timeline is: timeline.svg, and the trace to open in Perfetto.
#
# On the simulated driver (the default) SIMCUDA_MEMORY sets the device size and
# SIMCUDA_REPORT gives the peak. On a machine with an NVIDIA GPU (nvidia-smi lists one and
# kernels.cubin was built) it runs on the real driver: the GPU is larger than the story's
# device, so step 1 is shown with liboffload's --budget standing for the smaller device.
#
# Every run uses --scale 0.3: 45 + 195 + 60 = 300 MiB of weights, so each component fits
# 256 MiB but all three together do not.
#
# Environment: BUILD (default build), DEMO_OUT (where the pictures, the trace and
# timeline.svg go; default $BUILD), DEMO_SCALE (0.3), DEMO_SMALL (256MiB), DEMO_LARGE
# (8GiB), DEMO_ARGS (extra pipeline arguments).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
OUT=${DEMO_OUT:-$BUILD}
SCALE=${DEMO_SCALE:-0.3}
SMALL=${DEMO_SMALL:-256MiB}
LARGE=${DEMO_LARGE:-8GiB}
read -r -a EXTRA <<<"${DEMO_ARGS:-}"
CONF=examples/pipeline/offload.conf
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

die() { echo "demo: $*" >&2; exit 1; }
for f in pipeline offload liboffload.so; do
    [[ -e $BUILD/$f ]] || die "$BUILD/$f is missing: run 'make demo' (it builds first)"
done
command -v jq >/dev/null || die "jq is missing: run 'make deps' (as root) or apt-get install jq"
mkdir -p "$OUT" || die "cannot create $OUT"
unset LD_PRELOAD OFFLOAD_CONFIG OFFLOAD_BUDGET OFFLOAD_POLICY OFFLOAD_PREFETCH OFFLOAD_STATS \
    OFFLOAD_TRACE OFFLOAD_LOG OFFLOAD_MODE OFFLOAD_SUMMARY

real_gpu=no
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU' &&
    [[ -f $BUILD/kernels.cubin ]] &&
    env -u LD_LIBRARY_PATH "$BUILD/pipeline" --tensors >/dev/null 2>&1; then
    real_gpu=yes
fi

now() { date +%s.%N; }

# device NAME SIZE: the environment that makes a device of SIZE (the simulator's memory;
# on a real GPU nothing: the budget stands for it).
device_env() {
    [[ $real_gpu == yes ]] && return
    printf '%s\n' LD_LIBRARY_PATH="$BUILD/sim" SIMCUDA_MEMORY="$2" SIMCUDA_REPORT="$work/$1.sim.json"
}

# run NAME SIZE COMMAND...: runs COMMAND on a device of SIZE, output indented; leaves
# NAME.{out,rc,time}.
run() {
    local name=$1 size=$2 start end rc
    shift 2
    local -a env
    mapfile -t env < <(device_env "$name" "$size")
    echo "\$ ${env[*]:+${env[*]} }$*"
    start=$(now)
    env "${env[@]}" "$@" >"$work/$name.out" 2>&1
    rc=$?
    end=$(now)
    sed 's/^/    /' "$work/$name.out"
    echo "$rc" >"$work/$name.rc"
    awk -v s="$start" -v e="$end" 'BEGIN { printf "%.2f\n", e - s }' >"$work/$name.time"
}

checksum() { grep -m1 -oE 'checksum: 0x[0-9a-f]{16}' "$work/$1.out" | cut -d' ' -f2; }
peak_mib() {
    [[ -f $work/$1.sim.json ]] || { echo "n/a"; return; }
    jq -r '.peak_device_bytes / 1048576 | . * 10 | round / 10 | tostring + " MiB"' "$work/$1.sim.json"
}
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }

pipe=("$BUILD/pipeline" --scale "$SCALE" "${EXTRA[@]}")
if [[ $real_gpu == yes ]]; then
    echo "demo: real GPU: $(nvidia-smi -L | head -n 1); --budget $SMALL stands for a $SMALL device"
else
    echo "demo: simulated driver ($BUILD/sim/libcuda.so.1), a $SMALL device"
fi
echo

echo "== 1. The pipeline alone on a $SMALL device"
if [[ $real_gpu == yes ]]; then
    echo "    (skipped on a real GPU: it is larger than $SMALL, so nothing fails here)"
    echo 1 >"$work/bare.rc"
    : >"$work/bare.out"
else
    run bare "$SMALL" "${pipe[@]}" --out "$OUT/demo-bare.png"
fi
bare_rc=$(cat "$work/bare.rc")
if [[ $real_gpu == no ]]; then
    if [[ $bare_rc != 0 ]] && grep -q CUDA_ERROR_OUT_OF_MEMORY "$work/bare.out"; then
        echo "-> it fails: the driver says CUDA_ERROR_OUT_OF_MEMORY (exit status $bare_rc)"
    else
        echo "-> unexpected: exit status $bare_rc without the driver's out-of-memory error"
    fi
fi
echo

echo "== 2. The same device, under offload run with the shipped config ($CONF)"
budget=()
[[ $real_gpu == yes ]] && budget=(--budget "$SMALL")
run offload "$SMALL" "$BUILD/offload" run --config "$CONF" "${budget[@]}" \
    --stats "$OUT/demo-stats.json" --trace "$OUT/demo-trace.json" -- \
    "${pipe[@]}" --out "$OUT/demo-offload.png"
c_off=$(checksum offload)
if [[ $(cat "$work/offload.rc") == 0 && -n $c_off ]]; then
    echo "-> it succeeds: checksum $c_off"
else
    echo "-> it did not finish (exit status $(cat "$work/offload.rc"))"
fi
echo

echo "== 3. The reference: ample memory ($LARGE), no liboffload"
run ample "$LARGE" "${pipe[@]}" --out "$OUT/demo-ample.png"
c_ample=$(checksum ample)
[[ $(cat "$work/ample.rc") == 0 && -n $c_ample ]] || die "the ample-memory run failed"
if [[ $c_off == "$c_ample" ]] && cmp -s "$OUT/demo-ample.png" "$OUT/demo-offload.png"; then
    echo "-> bit-identical pictures: yes (checksum $c_ample; cmp $OUT/demo-ample.png $OUT/demo-offload.png)"
else
    echo "-> bit-identical pictures: NO (${c_off:-none} under liboffload, $c_ample with ample memory)"
fi
echo

echo "== What it cost, what it saved"
if [[ -s $OUT/demo-stats.json ]]; then
    s=$OUT/demo-stats.json
    t_off=$(cat "$work/offload.time") t_ample=$(cat "$work/ample.time")
    printf '%-20s %-18s %s\n' "" "ample ($LARGE)" "offload run ($SMALL)"
    printf '%-20s %-18s %s\n' "peak device memory" "$(peak_mib ample)" "$(peak_mib offload)"
    printf '%-20s %-18s %s\n' "wall time" "$t_ample s" \
        "$t_off s ($(awk -v a="$t_off" -v b="$t_ample" 'BEGIN { printf "%.1fx", a / b }') the ample run)"
    printf '%-20s %-18s %s\n' "bytes moved" "none" \
        "$(mib "$(jq .bytes_to_host "$s")") to host, $(mib "$(jq .bytes_to_device "$s")") to device ($(jq .evictions "$s") evictions, $(jq .restores "$s") restores)"
    printf '%-20s %-18s %s\n' "prefetch hits" "-" \
        "$(jq .prefetch_hits "$s") of $(jq .restores "$s") restores ($(jq .demand_restores "$s") on demand)"
    echo "statistics: $s (offload report $s)"
fi
echo

echo "== The timeline"
if [[ -s $OUT/demo-trace.json ]] &&
    "$BUILD/offload" plot "$OUT/demo-trace.json" -o "$OUT/timeline.svg" >/dev/null; then
    echo "picture: $OUT/timeline.svg (any browser)"
    echo "trace:   $OUT/demo-trace.json (open it in https://ui.perfetto.dev or chrome://tracing)"
else
    echo "no timeline was written"
fi
# The demo shows; it does not judge: only a failing reference run is an error here.
exit 0
