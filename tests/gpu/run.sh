#!/usr/bin/env bash
# tests/gpu/run.sh — liboffload on a real NVIDIA GPU, in one go (issue 8).
#
#   bash tests/gpu/run.sh
#
# On a machine with an NVIDIA GPU, its driver and the CUDA Toolkit (nvcc), this builds
# liboffload, the pipeline and the benchmark programs with the cubins for that GPU, then
# runs and records:
#   1. the pipeline without liboffload, then under it with OFFLOAD_BUDGET = 40% of the
#      sum of its components, policy sequence and budget, prefetch 0 and 1: checksums
#      must all be equal; wall time; peak device memory (liboffload's stats and
#      nvidia-smi sampled every 100 ms);
#   2. move_ratio for a 1 GiB component (tests/bench/move.c);
#   3. the per-launch overhead on the real driver (tests/bench/launch_overhead.c);
#   4. streaming (issue 16, tests/bench/NOTES.md section 7): the pipeline at --scale
#      STREAM_SCALE with budgets of 80%, 60% and 40% of the unet, policy budget: bytes
#      moved to the device against tools/optimum over the run's trace, the unet phase
#      against max(all-resident, the optimum's unet bytes at the HtoD bandwidth step 2
#      measured), prefetch hits and demand restores; with this build and with one built
#      -DSTREAM_OVERLAP=1 (the variant that trades bytes for copy/compute overlap);
#   5. PyTorch: three ~2 GiB torch.nn modules, outputs without liboffload, a config from
#      OFFLOAD_MODE=record, then a 3 GiB budget: outputs must be torch.equal.
# and writes tests/gpu/RESULTS.md (device, driver, date, every figure). Logs and raw
# JSON go to $BUILD/gpu/. Exit status 0 only if every correctness check passed.
#
# Knobs (environment): BUILD (default build), GPU_ARCH (default from nvidia-smi's
# compute capability), GPU_SKIP_BUILD=1 (use what is already in $BUILD, e.g. built on
# another machine and copied: liboffload links inih statically, so only the cubins need
# the GPU's toolkit), PIPE_SCALE / PIPE_STEPS / PIPE_RUNS, STREAM_SCALE / STREAM_REPEATS /
# STREAM_POINTS, TORCH_GIB, TORCH_BUDGET.
# GPU_SIMULATE=1 runs the whole script on the simulated driver instead (a stand-in for
# nvidia-smi, the host kernel modules, torch on the CPU): it checks the script's own
# plumbing on a machine without a GPU; its figures mean nothing.
# Designed to finish in under 8 minutes on one H100; each step has its own time limit.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
ROOT=$PWD
BUILD=${BUILD:-build}
[[ $BUILD == /* ]] || BUILD=$ROOT/$BUILD
OUT=$BUILD/gpu
RESULTS=$ROOT/tests/gpu/RESULTS.md
LIB=$BUILD/liboffload.so
PIPE_SCALE=${PIPE_SCALE:-2}
PIPE_STEPS=${PIPE_STEPS:-20}
PIPE_RUNS=${PIPE_RUNS:-3}
TORCH_GIB=${TORCH_GIB:-2}
TORCH_BUDGET=${TORCH_BUDGET:-3GiB}
mkdir -p "$OUT"
failures=0
ROWS=() # markdown rows: | figure | value | note |

say() { printf 'gpu: %s\n' "$*" >&2; }
row() { ROWS+=("| $1 | $2 | ${3:-} |"); }
fail() {
    say "FAIL: $*"
    row "FAIL" "$*" ""
    failures=$((failures + 1))
}
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }
gib() { awk -v b="$1" 'BEGIN { printf "%.2f GiB", b / 1073741824 }'; }

# --- the machine ---------------------------------------------------------------------
SIMULATE=${GPU_SIMULATE:-0}
MODULE_EXT=cubin
TORCH_DEVICE=cuda
PYTHON=${GPU_PYTHON:-python3}
if ((SIMULATE)); then
    nvidia-smi() { # just what this script asks of the real one
        case "$*" in
        *-lms*) while :; do echo 0 && sleep 0.1; done ;;
        *name,driver_version*) echo "simcuda (GPU_SIMULATE=1), simulator, 4096, 9.0" ;;
        *) echo 0 ;;
        esac
    }
    MODULE_EXT=so TORCH_DEVICE=cpu GPU_SKIP_BUILD=1
    PIPE_SCALE=${PIPE_SCALE_SIM:-0.15} PIPE_STEPS=1 PIPE_RUNS=2 TORCH_GIB=0.02
    TORCH_BUDGET=64MiB MOVE_MIB=8 LAUNCHES=2000 STREAM_SCALE=${STREAM_SCALE:-0.15}
    STREAM_REPEATS=1 STREAM_POINTS=0.4
    RESULTS=$OUT/RESULTS.simulated.md # never the committed file
fi
LAUNCHES=${LAUNCHES:-20000}
MOVE_MIB=${MOVE_MIB:-1024}
STREAM_SCALE=${STREAM_SCALE:-1}
STREAM_REPEATS=${STREAM_REPEATS:-3}
STREAM_POINTS=${STREAM_POINTS:-0.8 0.6 0.4}
command -v nvidia-smi >/dev/null || { say "no nvidia-smi: not a GPU machine"; exit 2; }
IFS=',' read -r GPU_NAME DRIVER_VERSION GPU_MIB COMPUTE_CAP < <(nvidia-smi \
    --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader,nounits |
    head -n 1 | sed 's/, */,/g')
GPU_ARCH=${GPU_ARCH:-sm_${COMPUTE_CAP//./}}
NVCC=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
say "$GPU_NAME, driver $DRIVER_VERSION, ${GPU_MIB} MiB, $GPU_ARCH"

# The real driver. Every program here must load it, not the simulator: the benchmark
# programs carry a RUNPATH to $BUILD/sim, which LD_LIBRARY_PATH overrides.
REAL_DRIVER=$(ldconfig -p 2>/dev/null | awk '$1 == "libcuda.so.1" { print $NF; exit }')
((SIMULATE)) && REAL_DRIVER=$BUILD/sim/libcuda.so.1
if [[ -z $REAL_DRIVER ]]; then
    for d in /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/local/nvidia/lib64 /usr/lib/wsl/lib; do
        [[ -e $d/libcuda.so.1 ]] && REAL_DRIVER=$d/libcuda.so.1 && break
    done
fi
[[ -n $REAL_DRIVER ]] || { say "libcuda.so.1 not found"; exit 2; }
export LD_LIBRARY_PATH=${REAL_DRIVER%/*}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export OFFLOAD_DRIVER=$REAL_DRIVER
unset OFFLOAD_CONFIG OFFLOAD_BUDGET OFFLOAD_POLICY OFFLOAD_PREFETCH OFFLOAD_STATS OFFLOAD_MODE \
    OFFLOAD_RECORD LD_PRELOAD PIPELINE_MODULE SIMCUDA_MEMORY SIMCUDA_PCIE_GBPS

# --- build ---------------------------------------------------------------------------
KMOD=$BUILD/bench/bench_kernels.$MODULE_EXT
BENCH_BINS=("$BUILD/bench/launch_overhead" "$BUILD/bench/move" "$KMOD" "$BUILD/tools/optimum")
if [[ ${GPU_SKIP_BUILD:-0} != 1 ]]; then
    say "building for $GPU_ARCH"
    t0=$(date +%s%N)
    if ! timeout 300 make -j"$(nproc)" BUILD="$BUILD" GPU_ARCH="$GPU_ARCH" NVCC="$NVCC" \
        lib pipeline "${BENCH_BINS[@]}" >"$OUT/build.log" 2>&1; then
        tail -n 30 "$OUT/build.log" >&2
        say "build failed (log: $OUT/build.log). Missing uthash-dev/libinih-dev? Build on a" \
            "machine that has them and rerun with GPU_SKIP_BUILD=1."
        exit 2
    fi
    say "built in $(ms_since "$t0") ms"
fi
# The streaming variant of step 4: the same tree, -DSTREAM_OVERLAP=1 (about 20 s, then
# incremental; no GPU code in it, so it is built here even with GPU_SKIP_BUILD when make
# can).
OVERLAP_LIB=$BUILD/overlap/liboffload.so
if ! timeout 300 make -j"$(nproc)" BUILD="$BUILD/overlap" OPT="-O2 -g -DSTREAM_OVERLAP=1" \
        "$OVERLAP_LIB" >"$OUT/build.overlap.log" 2>&1; then
    say "the -DSTREAM_OVERLAP=1 library did not build ($OUT/build.overlap.log): step 4 without it"
    rm -f "$OVERLAP_LIB" # not an older one
fi
PIPE_KMOD=$BUILD/kernels.cubin
((SIMULATE)) && PIPE_KMOD=$BUILD/kernels.host.so
for f in "$LIB" "$BUILD/pipeline" "$PIPE_KMOD" "${BENCH_BINS[@]}"; do
    [[ -e $f ]] || { say "$f missing"; exit 2; }
done
if ((!SIMULATE)) && ldd "$BUILD/bench/move" | grep -q "$BUILD/sim"; then
    say "the benchmark programs would load the simulator; LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
    exit 2
fi
export PIPELINE_MODULE=$PIPE_KMOD

# --- device memory sampling ------------------------------------------------------------
# nvidia-smi every 100 ms in the background; the peak is the highest reading minus the
# reading before the program started (other processes, the driver's own reservations).
# A peak shorter than 100 ms can be missed; liboffload's own stats do not miss it.
SAMPLER=
sample_start() {
    BASE_MIB=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -n 1)
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 >"$OUT/smi.$1" &
    SAMPLER=$!
}
sample_stop() { # prints the peak in MiB above the baseline
    kill "$SAMPLER" 2>/dev/null
    wait "$SAMPLER" 2>/dev/null
    awk -v base="$BASE_MIB" '$1 + 0 > max { max = $1 + 0 } END { print max - base }' "$OUT/smi.$1"
}

# pj EXPR FILE...: a Python expression over JSON files (d = the first, ds = all), printed.
# Python rather than jq: a GPU image with torch has python3, not necessarily jq.
pj() {
    python3 -c 'import json, sys
ds = [json.load(open(f)) for f in sys.argv[2:]]
d = ds[0] if ds else None
print(eval(sys.argv[1]))' "$@"
}
# Sum of a per-component field, and the peak, of an OFFLOAD_STATS file.
stats_sum() { pj "sum(c.get('$2', 0) for c in d['components'])" "$1" 2>/dev/null || echo 0; }
stats_peak() { pj "d.get('peak_resident_bytes', 0)" "$1" 2>/dev/null || echo 0; }
command -v python3 >/dev/null || { say "python3 is needed"; exit 2; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# --- 1. the pipeline -----------------------------------------------------------------
PIPE_ARGS=(--scale "$PIPE_SCALE" --steps "$PIPE_STEPS" --runs "$PIPE_RUNS" --quiet
    --out "$OUT/pipeline.png")
# The weights from the pipeline's own table (no driver needed): "INDEX COMPONENT/TENSOR BYTES".
"$BUILD/pipeline" "${PIPE_ARGS[@]}" --tensors >"$OUT/tensors.txt" 2>/dev/null
COMPONENT_SUM=$(awk '$1 ~ /^[0-9]+$/ { s += $3 } END { print s + 0 }' "$OUT/tensors.txt")
LARGEST=$(awk '$1 ~ /^[0-9]+$/ { split($2, p, "/"); c[p[1]] += $3 }
    END { for (k in c) if (c[k] > m) m = c[k]; print m + 0 }' "$OUT/tensors.txt")
pipeline_run() { # pipeline_run NAME [ENV...]: sets RUN_MS RUN_SUM RUN_PEAK_MIB
    local name=$1 t0
    shift
    sample_start "$name"
    t0=$(date +%s%N)
    env "$@" timeout 240 "$BUILD/pipeline" "${PIPE_ARGS[@]}" >"$OUT/pipe.$name.out" \
        2>"$OUT/pipe.$name.err"
    local rc=$?
    RUN_MS=$(ms_since "$t0")
    RUN_PEAK_MIB=$(sample_stop "$name")
    RUN_SUM=$(awk '/^checksum:/ { print $2 }' "$OUT/pipe.$name.out" | sort -u | tr '\n' ' ')
    if ((rc != 0)) || [[ -z $RUN_SUM ]]; then
        tail -n 5 "$OUT/pipe.$name.err" >&2
        fail "pipeline $name: exit $rc, no checksum"
        return 1
    fi
}

say "pipeline without liboffload (scale $PIPE_SCALE, $PIPE_STEPS steps, $PIPE_RUNS runs)"
if pipeline_run bare; then
    BARE_SUM=$RUN_SUM BARE_MS=$RUN_MS
    row "pipeline, no liboffload: wall" "$RUN_MS ms" "checksum ${RUN_SUM% }"
    row "pipeline, no liboffload: peak (nvidia-smi)" "$RUN_PEAK_MIB MiB" \
        "weights: $(gib "$COMPONENT_SUM"), largest component $(gib "$LARGEST")"
    if ((COMPONENT_SUM == 0)); then
        # No table from --tensors: measure the components under liboffload, no budget.
        pipeline_run sizes LD_PRELOAD="$LIB" OFFLOAD_CONFIG="$ROOT/examples/pipeline/offload.conf" \
            OFFLOAD_STATS="$OUT/stats.sizes.json" &&
            COMPONENT_SUM=$(stats_sum "$OUT/stats.sizes.json" bytes)
    fi
    # 40% of the sum, as issue 8 suggests: less than the unet alone (about 65% of the
    # weights), so liboffload must also move allocations within the running component
    # (on the simulator it does: budget 120 MiB at scale 0.3, the checksum unchanged).
    BUDGET=$((COMPONENT_SUM * 40 / 100))
    for policy in sequence budget; do
        for prefetch in 0 1; do
            name=$policy.p$prefetch
            say "pipeline under liboffload: policy $policy, prefetch $prefetch, budget $(gib "$BUDGET")"
            pipeline_run "$name" LD_PRELOAD="$LIB" OFFLOAD_CONFIG="$ROOT/examples/pipeline/offload.conf" \
                OFFLOAD_POLICY=$policy OFFLOAD_PREFETCH=$prefetch OFFLOAD_BUDGET="$BUDGET" \
                OFFLOAD_STATS="$OUT/stats.$name.json" || continue
            [[ $RUN_SUM == "$BARE_SUM" ]] || fail "pipeline $name: checksum $RUN_SUM != $BARE_SUM"
            note="budget $(gib "$BUDGET"), x$(awk -v a="$RUN_MS" -v b="$BARE_MS" \
                'BEGIN { printf "%.2f", a / b }') of no-liboffload wall"
            note+=", liboffload peak $(gib "$(stats_peak "$OUT/stats.$name.json")")"
            note+=", moved to host $(gib "$(stats_sum "$OUT/stats.$name.json" bytes_to_host)")"
            note+=", to device $(gib "$(stats_sum "$OUT/stats.$name.json" bytes_to_device)")"
            # the clean-eviction fingerprint (embedded PTX, JIT-compiled by this driver)
            # runs beside every copy out: none means the module did not load
            fps=$(pj "d.get('fingerprints', 0)" "$OUT/stats.$name.json" 2>/dev/null || echo 0)
            ((fps > 0)) || fail "pipeline $name: no fingerprint ran (PTX not loaded? see $OUT/pipe.$name.err)"
            note+=", $(pj "d.get('clean_evictions', 0)" "$OUT/stats.$name.json") clean evictions"
            note+=" ($(gib "$(pj "d.get('clean_bytes', 0)" "$OUT/stats.$name.json")") not copied)"
            row "pipeline, $policy, prefetch $prefetch" \
                "$RUN_MS ms, peak $RUN_PEAK_MIB MiB" "$note; checksum equal"
        done
    done
fi

# --- 2. move_ratio, 1 GiB ----------------------------------------------------------------
say "move_ratio: $MOVE_MIB MiB components"
if LD_PRELOAD=$LIB OFFLOAD_CONFIG=$ROOT/tests/bench/move.conf OFFLOAD_BUDGET=$((MOVE_MIB * 3 / 2))MiB \
    OFFLOAD_STATS=$OUT/stats.move.json timeout 120 "$BUILD/bench/move" \
    "$KMOD" --mib "$MOVE_MIB" --cycles 4 >"$OUT/move.json" 2>"$OUT/move.err"; then
    row "move_ratio evict (target >= 0.90)" "$(pj "d['evict_ratio']" "$OUT/move.json")" \
        "$(pj "f\"evict {d['evict_gbps']} GB/s vs pinned DtoH {d['bare_dtoh_gbps']} GB/s\"" "$OUT/move.json")"
    row "move_ratio restore (target >= 0.90)" "$(pj "d['restore_ratio']" "$OUT/move.json")" \
        "$(pj "f\"restore {d['restore_gbps']} GB/s vs pinned HtoD {d['bare_htod_gbps']} GB/s\"" "$OUT/move.json")"
    row "move swap ratio (one launch evicts A, restores B)" "$(pj "d['swap_ratio']" "$OUT/move.json")" \
        "against a pinned DtoH plus a pinned HtoD of the same size"
else
    tail -n 5 "$OUT/move.err" >&2
    fail "move: data not intact or a driver error ($OUT/move.err)"
fi

# --- 3. launch overhead --------------------------------------------------------------------
say "launch overhead: 4 rounds x 2 processes x 5 batches x $LAUNCHES launches"
launch_ok=1
for r in 0 1 2 3; do
    timeout 60 "$BUILD/bench/launch_overhead" "$KMOD" --batches 5 \
        --launches "$LAUNCHES" >"$OUT/launch.bare.$r.json" 2>>"$OUT/launch.err" &&
        LD_PRELOAD=$LIB timeout 60 "$BUILD/bench/launch_overhead" \
            "$KMOD" --batches 5 --launches "$LAUNCHES" \
            >"$OUT/launch.offload.$r.json" 2>>"$OUT/launch.err" || launch_ok=0
done
if ((launch_ok)); then
    bare=$(pj "'\\n'.join(str(v) for x in ds for v in x['ns_per_launch'])" "$OUT"/launch.bare.*.json | median)
    off=$(pj "'\\n'.join(str(v) for x in ds for v in x['ns_per_launch'])" "$OUT"/launch.offload.*.json | median)
    row "launch_overhead_ns (target <= 100)" \
        "$(awk -v a="$off" -v b="$bare" 'BEGIN { printf "%.1f", a - b }')" \
        "median per launch: $bare ns bare, $off ns with liboffload ($((20 * LAUNCHES)) launches each)"
else
    fail "launch_overhead failed ($OUT/launch.err)"
fi

# --- 4. streaming: components larger than the budget (issue 16) ---------------------------
# The bench's stream figures (tests/bench/run.sh bench_stream) on the real driver: the
# budget stands for the device size, the bandwidth is what step 2 measured (pinned HtoD).
HTOD_GBPS=$(pj "d['bare_htod_gbps']" "$OUT/move.json" 2>/dev/null || echo 0)
stream_pipe() { # stream_pipe NAME [ENV...]: sets STREAM_S (the unet phase) and checks the checksum
    local name=$1 sum
    shift
    if ! env "$@" timeout 240 "$BUILD/pipeline" --scale "$STREAM_SCALE" --out "$OUT/stream.png" \
        >"$OUT/stream.$name.out" 2>"$OUT/stream.$name.err"; then
        tail -n 5 "$OUT/stream.$name.err" >&2
        fail "stream $name: the pipeline failed ($OUT/stream.$name.err)"
        return 1
    fi
    sum=$(awk '/^checksum:/ { print $2 }' "$OUT/stream.$name.out")
    [[ -n $STREAM_SUM ]] || STREAM_SUM=$sum
    if [[ -z $sum || $sum != "$STREAM_SUM" ]]; then
        fail "stream $name: checksum '$sum' != '$STREAM_SUM'"
        return 1
    fi
    STREAM_S=$(awk '$1 == "unet" && $3 == "s" { print $2 }' "$OUT/stream.$name.out")
}
# stream_point TAG LIB BUDGET: STREAM_REPEATS processes, the first with stats and trace;
# one row with the bytes and time ratios.
stream_point() {
    local tag=$1 lib=$2 budget=$3 r times=() stats=$OUT/stream.$1.stats.json trace=$OUT/stream.$1.trace.json
    for ((r = 0; r < STREAM_REPEATS; r++)); do
        local extra=()
        ((r == 0)) && extra=(OFFLOAD_STATS="$stats" OFFLOAD_TRACE="$trace")
        stream_pipe "$tag.$r" LD_PRELOAD="$lib" OFFLOAD_CONFIG="$ROOT/examples/pipeline/offload.conf" \
            OFFLOAD_POLICY=budget OFFLOAD_BUDGET="$budget" "${extra[@]}" || return 1
        times+=("$STREAM_S")
    done
    local unet_s room
    unet_s=$(printf '%s\n' "${times[@]}" | median)
    pj "'\n'.join('\t'.join(str(v) for v in rec) for rec in d['uses']['records'])" "$trace" \
        >"$OUT/stream.$tag.uses.tsv" || { fail "stream $tag: no uses in $trace"; return 1; }
    # the optimum's room: the budget less what liboffload did not track, as in the bench
    room=$(pj "d['budget_bytes'] - (d['peak_used_bytes'] - d['peak_resident_bytes'])" "$stats")
    "$BUILD/tools/optimum" --budget "$room" <"$OUT/stream.$tag.uses.tsv" >"$OUT/stream.$tag.optimum.json" ||
        { fail "stream $tag: tools/optimum failed"; return 1; }
    local figures
    figures=$(python3 - "$stats" "$OUT/stream.$tag.optimum.json" "$unet_s" "$STREAM_RESIDENT" \
        "$HTOD_GBPS" <<'PY'
import json, sys
stats, optimum = (json.load(open(f)) for f in sys.argv[1:3])
unet_s, resident_s, gbps = (float(v) for v in sys.argv[3:6])
unet = [c for c in stats["components"] if c["name"] == "unet"][0]
optimum_unet = optimum["component_bytes_to_device"].get("1", 0)
bound_s = max(resident_s, optimum_unet / (gbps * 1e9))
print("%.3f|%.3f|unet %.3f s against %.3f s (all-resident %.3f s, optimum %.2f GB at %.1f GB/s); "
      "%.2f GB to the device (optimum %.2f); unet demand restores %d of %d, prefetch hits %d; "
      "%.0f MiB resident across turns" % (
          stats["bytes_to_device"] / max(optimum["bytes_to_device"], 1), unet_s / bound_s,
          unet_s, bound_s, resident_s, optimum_unet / 1e9, gbps,
          stats["bytes_to_device"] / 1e9, optimum["bytes_to_device"] / 1e9,
          unet.get("demand_restores", 0), unet.get("restores", 0), unet.get("prefetch_hits", 0),
          unet.get("resident_across_turns_bytes", 0) / 1048576))
PY
    ) || { fail "stream $tag: figures not computed"; return 1; }
    IFS='|' read -r bytes_ratio time_ratio note <<<"$figures"
    row "stream $tag: bytes / optimum (<= 1.10), time / bound (<= 1.15)" "$bytes_ratio, $time_ratio" \
        "$note; checksums equal"
}
if [[ $HTOD_GBPS == 0 ]]; then
    fail "stream: no HtoD bandwidth from step 2"
else
    say "streaming: --scale $STREAM_SCALE, budgets ${STREAM_POINTS// /, } of the unet, $STREAM_REPEATS processes each"
    STREAM_SUM= times=()
    for ((r = 0; r < STREAM_REPEATS; r++)); do
        stream_pipe "resident.$r" && times+=("$STREAM_S")
    done
    STREAM_RESIDENT=$(printf '%s\n' "${times[@]}" | median)
    if stream_pipe sizes LD_PRELOAD="$LIB" OFFLOAD_CONFIG="$ROOT/examples/pipeline/offload.conf" \
        OFFLOAD_POLICY=budget OFFLOAD_STATS="$OUT/stream.sizes.json"; then
        UNET_BYTES=$(pj "[c['bytes'] for c in d['components'] if c['name'] == 'unet'][0]" "$OUT/stream.sizes.json")
        row "stream: unet all-resident" "$STREAM_RESIDENT s" \
            "unet $(gib "$UNET_BYTES") with its activations; pinned HtoD $HTOD_GBPS GB/s (step 2)"
        for f in $STREAM_POINTS; do
            budget=$(awk -v u="$UNET_BYTES" -v f="$f" 'BEGIN { printf "%d", u * f }')
            stream_point "$f" "$LIB" "$budget"
            [[ -e $OVERLAP_LIB ]] && stream_point "$f.overlap" "$OVERLAP_LIB" "$budget"
        done
    fi
fi

# --- 5. PyTorch ----------------------------------------------------------------------------
if "$PYTHON" -c 'import sys, torch; sys.exit(sys.argv[1] == "cuda" and not torch.cuda.is_available())' \
    "$TORCH_DEVICE" 2>/dev/null; then
    TORCH_VERSION=$("$PYTHON" -c 'import torch; print(torch.__version__)')
    # expandable_segments would map memory with cuMemCreate/cuMemMap, which liboffload does
    # not track; the caching allocator's plain cudaMalloc segments are what it groups.
    export PYTORCH_CUDA_ALLOC_CONF=expandable_segments:False
    torch_run() { # torch_run NAME ARGS... (environment before it via env)
        local name=$1
        shift
        sample_start "torch.$name"
        timeout 150 "$@" >"$OUT/torch.$name.json" 2>"$OUT/torch.$name.err"
        local rc=$?
        TORCH_PEAK_MIB=$(sample_stop "torch.$name")
        ((rc == 0)) || tail -n 5 "$OUT/torch.$name.err" >&2
        return $rc
    }
    T=("$PYTHON" tests/gpu/torch_offload.py --gib "$TORCH_GIB" --device "$TORCH_DEVICE")
    ((SIMULATE)) && T+=(--width 256 --batch 4 --iterations 2)
    say "PyTorch: reference run without liboffload"
    if torch_run ref "${T[@]}" --save "$OUT/torch.ref.pt"; then
        row "torch, no liboffload" "$(pj "d['steady_iteration_s']" "$OUT/torch.ref.json") s/iteration" \
            "peak $TORCH_PEAK_MIB MiB (nvidia-smi), torch $TORCH_VERSION"
        say "PyTorch: OFFLOAD_MODE=record"
        if torch_run record env LD_PRELOAD="$LIB" OFFLOAD_MODE=record \
            OFFLOAD_RECORD="$OUT/torch.recorded.conf" "${T[@]}" --compare "$OUT/torch.ref.pt"; then
            row "torch, record mode" "equal: $(pj "d['equal']" "$OUT/torch.record.json")" \
                "$(grep -c '^\[component' "$OUT/torch.recorded.conf" 2>/dev/null || echo 0) components recorded"
            say "PyTorch: budget $TORCH_BUDGET with the recorded config"
            if [[ ! -s $OUT/torch.recorded.conf ]]; then
                # On the CPU (GPU_SIMULATE) torch makes no CUDA call: nothing to record.
                if ((SIMULATE)); then
                    row "torch, budget" "skipped" "no CUDA calls on the CPU"
                else
                    fail "record mode wrote no $OUT/torch.recorded.conf"
                fi
            elif torch_run offload env LD_PRELOAD="$LIB" OFFLOAD_CONFIG="$OUT/torch.recorded.conf" \
                OFFLOAD_BUDGET="$TORCH_BUDGET" OFFLOAD_STATS="$OUT/stats.torch.json" \
                "${T[@]}" --compare "$OUT/torch.ref.pt"; then
                row "torch, budget $TORCH_BUDGET" \
                    "$(pj "d['steady_iteration_s']" "$OUT/torch.offload.json") s/iteration" \
                    "outputs torch.equal; peak $TORCH_PEAK_MIB MiB (nvidia-smi), liboffload peak $(gib "$(stats_peak "$OUT/stats.torch.json")")"
            else
                fail "torch under a $TORCH_BUDGET budget: outputs differ or it failed ($OUT/torch.offload.err)"
            fi
        else
            fail "torch in record mode failed ($OUT/torch.record.err)"
        fi
    else
        fail "torch reference run failed ($OUT/torch.ref.err)"
    fi
else
    row "torch" "not run" "python3 with CUDA-enabled torch not found"
    TORCH_VERSION=none
fi

# --- RESULTS.md ------------------------------------------------------------------------------
{
    echo "# liboffload on a real GPU"
    echo
    echo "Written by \`bash tests/gpu/run.sh\` (issue 8); raw logs and JSON were in \`$OUT\`."
    echo
    echo "| | |"
    echo "|---|---|"
    echo "| device | $GPU_NAME ($GPU_ARCH, $GPU_MIB MiB) |"
    echo "| driver | $DRIVER_VERSION ($REAL_DRIVER) |"
    echo "| CUDA toolkit | $("$NVCC" --version 2>/dev/null | awk -F', ' '/release/ { print $2 }') |"
    echo "| torch | $TORCH_VERSION |"
    echo "| date | $(date -u '+%Y-%m-%d %H:%M UTC') |"
    echo "| commit | $(git rev-parse --short HEAD 2>/dev/null) |"
    echo "| pipeline | --scale $PIPE_SCALE --steps $PIPE_STEPS --runs $PIPE_RUNS |"
    echo
    echo "| figure | value | note |"
    echo "|---|---|---|"
    printf '%s\n' "${ROWS[@]}"
    echo
    if ((failures)); then
        echo "**$failures check(s) failed.**"
    else
        echo "All correctness checks passed."
    fi
} >"$RESULTS"
say "wrote $RESULTS ($failures failure(s))"
exit $((failures > 0))
