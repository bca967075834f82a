#!/usr/bin/env bash
# demo.sh — run by `make demo` (which builds everything first): the reference pipeline
# twice, side by side:
#   1. with ample device memory and no liboffload;
#   2. on a 256 MiB device under LD_PRELOAD=liboffload.so with examples/pipeline/offload.conf.
# Prints both checksums, peak device memory and wall time, and whether the pictures are
# bit-identical. On the simulated driver (the default) SIMCUDA_MEMORY sets the device size
# and SIMCUDA_REPORT gives the peak; on a machine with an NVIDIA GPU (nvidia-smi works and
# kernels.cubin was built) it runs on the real driver, and OFFLOAD_BUDGET makes the 256 MiB.
#
# Both runs use --scale 0.3: 45 + 195 + 60 = 300 MiB of weights, so each component fits
# 256 MiB but all three together do not (at the default scale 1 the unet alone is 650 MiB).
#
# Environment: BUILD (default build), DEMO_SCALE (0.3), DEMO_SMALL (256MiB),
# DEMO_LARGE (8GiB), DEMO_ARGS (extra pipeline arguments).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
SCALE=${DEMO_SCALE:-0.3}
SMALL=${DEMO_SMALL:-256MiB}
LARGE=${DEMO_LARGE:-8GiB}
read -r -a EXTRA <<<"${DEMO_ARGS:-}"
CONF=examples/pipeline/offload.conf
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

die() { echo "demo: $*" >&2; exit 1; }
[[ -x $BUILD/pipeline ]] || die "$BUILD/pipeline is missing: run 'make demo' (it builds first)"

# A real GPU: nvidia-smi lists one, the cubin exists, and the pipeline starts without the
# simulator on its library path (so the loader found a real libcuda.so.1; --tensors makes
# no driver call).
real_gpu=no
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU' &&
    [[ -f $BUILD/kernels.cubin ]] &&
    env -u LD_LIBRARY_PATH -u LD_PRELOAD "$BUILD/pipeline" --tensors >/dev/null 2>&1; then
    real_gpu=yes
fi

now() { date +%s.%N; }

# Samples the GPU's used memory (MiB) every 50 ms into $1 until killed.
sample_gpu_memory() {
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 50 >"$1" 2>/dev/null
}

# run NAME OFFLOAD(yes|no) DEVICE_SIZE: runs the pipeline; leaves NAME.{out,rc,time,peak}.
run() {
    local name=$1 offload=$2 size=$3 start end rc sampler=
    local -a env=() args=(--scale "$SCALE" --out "$BUILD/demo-$name.png" "${EXTRA[@]}")
    if [[ $real_gpu == no ]]; then
        env+=(LD_LIBRARY_PATH="$BUILD/sim" SIMCUDA_MEMORY="$size"
            SIMCUDA_REPORT="$work/$name.json")
    fi
    if [[ $offload == yes ]]; then
        if [[ -f $BUILD/liboffload.so ]]; then
            env+=(LD_PRELOAD="$BUILD/liboffload.so")
        else
            echo "demo: $BUILD/liboffload.so is not built; run 2 goes without it"
        fi
        if [[ -f $CONF ]]; then
            env+=(OFFLOAD_CONFIG="$CONF")
        else
            echo "demo: $CONF is missing; liboffload runs with its defaults"
        fi
        [[ $real_gpu == yes ]] && env+=(OFFLOAD_BUDGET="$size")
        # info: liboffload's exit summary (per component: bytes, moves, stalls).
        env+=(OFFLOAD_LOG="${OFFLOAD_LOG:-info}")
    fi
    if [[ $real_gpu == yes ]]; then
        sample_gpu_memory "$work/$name.samples" &
        sampler=$!
        sleep 0.2
    fi
    echo "\$ ${env[*]} $BUILD/pipeline ${args[*]}"
    start=$(now)
    env "${env[@]}" "$BUILD/pipeline" "${args[@]}" >"$work/$name.out" 2>&1
    rc=$?
    end=$(now)
    [[ -n $sampler ]] && { kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null; }
    sed 's/^/    /' "$work/$name.out"
    echo "$rc" >"$work/$name.rc"
    awk -v s="$start" -v e="$end" 'BEGIN { printf "%.2f s\n", e - s }' >"$work/$name.time"
    local peak=
    if [[ $real_gpu == no && -f $work/$name.json ]]; then
        peak=$(sed -n 's/.*"peak_device_bytes": *\([0-9]*\).*/\1/p' "$work/$name.json")
        echo "$peak" >"$work/$name.peakbytes"
        [[ -n $peak ]] && peak=$(awk -v b="$peak" 'BEGIN { printf "%.1f MiB\n", b / 1048576 }')
    elif [[ $real_gpu == yes && -s $work/$name.samples ]]; then
        # Whole-GPU figure: includes the context and whatever else runs on the GPU.
        peak=$(sort -n "$work/$name.samples" | tail -n 1)
        [[ -n $peak ]] && peak="$peak MiB (nvidia-smi)"
    fi
    echo "${peak:-n/a}" >"$work/$name.peak"
    echo
}

checksum() {
    local c
    c=$(grep -m1 -o 'checksum: 0x[0-9a-f]*' "$work/$1.out" | cut -d' ' -f2)
    if [[ -n $c ]]; then echo "$c"; elif grep -q 'out of memory' "$work/$1.out"; then
        echo "(out of memory)"
    else echo "(failed, exit $(cat "$work/$1.rc"))"; fi
}

if [[ $real_gpu == yes ]]; then
    echo "demo: real GPU: $(nvidia-smi -L | head -n 1)"
    device_label="GPU, OFFLOAD_BUDGET"
else
    echo "demo: simulated driver ($BUILD/sim/libcuda.so.1)"
    device_label="simulated device"
fi
echo

echo "== 1. ample memory ($LARGE), no liboffload"
[[ $real_gpu == yes ]] && LARGE="whole GPU"
run plain no "$LARGE"
echo "== 2. $SMALL under liboffload"
run offload yes "$SMALL"

c1=$(checksum plain) c2=$(checksum offload)
printf '%-22s %-26s %-26s\n' "" "without liboffload" "with liboffload"
printf '%-22s %-26s %-26s\n' "$device_label" "$LARGE" "$SMALL"
printf '%-22s %-26s %-26s\n' "exit status" "$(cat "$work/plain.rc")" "$(cat "$work/offload.rc")"
printf '%-22s %-26s %-26s\n' "checksum" "$c1" "$c2"
printf '%-22s %-26s %-26s\n' "peak device memory" "$(cat "$work/plain.peak")" \
    "$(cat "$work/offload.peak")"
printf '%-22s %-26s %-26s\n' "wall time" "$(cat "$work/plain.time")" "$(cat "$work/offload.time")"
echo
if [[ $c1 == 0x* && $c1 == "$c2" && -s $work/plain.peakbytes && -s $work/offload.peakbytes ]]; then
    awk -v a="$(cat "$work/plain.peakbytes")" -v b="$(cat "$work/offload.peakbytes")" \
        'BEGIN { printf "liboffload saved %.1f MiB of device memory (%.0f%% of the peak)\n",
                 (a - b) / 1048576, 100 * (a - b) / a }'
fi
if [[ $c1 == 0x* && $c1 == "$c2" ]]; then
    echo "checksums match: yes (bit-identical pictures: $BUILD/demo-plain.png, $BUILD/demo-offload.png)"
elif [[ $c2 != 0x* ]]; then
    why=$(grep -m1 '^pipeline: ' "$work/offload.out" || tail -n 1 "$work/offload.out")
    echo "checksums match: no (run 2 did not finish: $why)"
else
    echo "checksums match: NO ($c1 vs $c2)"
fi
# The demo shows; it does not judge: a failing run 2 is printed above, not an error here.
# Run 1 must work, though: without it there is nothing to compare against.
[[ $(cat "$work/plain.rc") == 0 ]]
