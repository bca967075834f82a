#!/usr/bin/env bash
# soak.sh — one pipeline process generating many images under pressure with liboffload:
# every image's checksum must equal the run without liboffload on ample memory, host
# memory must stay flat after the first images, and so must liboffload's tracked bytes.
#
# Host memory is sampled from /proc/PID/status each time the pipeline prints an image's
# checksum (the same point of every run): RssAnon (the heap, host backups, untracked
# simulated device memory) and VmRSS. Tracked bytes: liboffload's stats at exit for
# --runs 2 and --runs N must show the same peak of tracked bytes, and none left.
#
# Prints one line per sampled image and a verdict; exit 0 only if all of it holds.
# Environment: BUILD (build), SOAK_RUNS (50), SOAK_SCALE (0.03), SOAK_DEVICE (28MiB),
# SOAK_RSS_SLACK_KIB (2048: allowed growth of RssAnon, see below).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
ROOT=$PWD
BUILD=${BUILD:-build}
[[ $BUILD == /* ]] || BUILD=$ROOT/$BUILD
RUNS=${SOAK_RUNS:-50}
SCALE=${SOAK_SCALE:-0.03}
DEVICE=${SOAK_DEVICE:-28MiB}
SLACK=${SOAK_RSS_SLACK_KIB:-2048}
CONF=$ROOT/examples/pipeline/offload.conf
PIPE=$BUILD/pipeline
LIB=$BUILD/liboffload.so
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export LD_LIBRARY_PATH=$BUILD/sim
unset LD_PRELOAD OFFLOAD_CONFIG OFFLOAD_STATS OFFLOAD_BUDGET OFFLOAD_LOG SIMCUDA_FAIL \
    SIMCUDA_FAIL_RANDOM SIMCUDA_MEMORY
ARGS=(--scale "$SCALE" --steps 1 --quiet)
fail=0
bad() { echo "soak: $*"; fail=1; }

ref=$(SIMCUDA_MEMORY=4GiB "$PIPE" "${ARGS[@]}" --out "$work/ref.png" | sed -n 's/^checksum: //p')
[[ -n $ref ]] || { echo "soak: the reference run failed" >&2; exit 2; }

offload=(LD_PRELOAD="$LIB" SIMCUDA_MEMORY="$DEVICE" SIMCUDA_REPORT="$work/sim.json")
[[ -f $CONF ]] && offload+=(OFFLOAD_CONFIG="$CONF")

# Two images: the tracked-bytes peak of a short run.
env "${offload[@]}" OFFLOAD_STATS="$work/short.json" \
    timeout 120 "$PIPE" "${ARGS[@]}" --runs 2 --out "$work/short.png" >/dev/null 2>&1 ||
    bad "the 2-image run failed"

# RUNS images, sampling memory at every checksum line (line-buffered stdout).
field() { sed -n "s/^$1:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$2/status" 2>/dev/null; }
env "${offload[@]}" OFFLOAD_STATS="$work/long.json" timeout 600 \
    stdbuf -oL "$PIPE" "${ARGS[@]}" --runs "$RUNS" --out "$work/long.png" \
    >"$work/fifo.out" 2>"$work/long.err" &
pid=$! # timeout's; the pipeline is its child
n=0
child=
: >"$work/samples"
# follow the output as it grows; sample when a new checksum line appears
while :; do
    count=$(grep -c '^checksum: ' "$work/fifo.out")
    [[ -n $child ]] || child=$(pgrep -P $pid | head -n 1)
    while ((n < count)); do
        n=$((n + 1))
        echo "$n $(field RssAnon "$child") $(field VmRSS "$child")" >>"$work/samples"
    done
    kill -0 $pid 2>/dev/null || break
    sleep 0.05
done
wait $pid
rc=$?
((rc == 0)) || { bad "the $RUNS-image run exited $rc"; tail -n 20 "$work/long.err"; }

sums=$(sed -n 's/^checksum: //p' "$work/fifo.out")
[[ $(wc -l <<<"$sums") -eq $RUNS ]] || bad "$(wc -l <<<"$sums") checksums printed, want $RUNS"
wrong=$(grep -vc "^$ref\$" <<<"$sums")
((wrong == 0)) || bad "$wrong of $RUNS images have a checksum other than $ref"

printf '%6s %12s %12s\n' image "RssAnon kB" "VmRSS kB"
# sampled values can be empty when the process ended first: keep the last complete ones
awk 'NF == 3 && ($1 <= 3 || $1 % 10 == 0 || $1 == '"$RUNS"') { printf "%6d %12d %12d\n", $1, $2, $3 }' \
    "$work/samples"
# The sampling point moves a little within an image (the simulated device's untracked
# memory is anonymous too), so compare the lowest of the last five samples with the
# highest of images 2-6: a leak raises every later sample above every early one.
read -r base_anon base_rss < <(awk 'NF == 3 && $1 >= 2 && $1 <= 6 {
    if ($2 > a) a = $2; if ($3 > r) r = $3 } END { if (a) print a, r }' "$work/samples")
read -r last_n last_anon last_rss < <(awk 'NF == 3 { n[++k] = $1; a[k] = $2; r[k] = $3 }
    END { if (k < 10) exit; ma = a[k]; mr = r[k]
          for (i = k - 4; i <= k; i++) { if (a[i] < ma) ma = a[i]; if (r[i] < mr) mr = r[i] }
          print n[k], ma, mr }' "$work/samples")
# In a SANITIZE=address build the sanitizer's own memory (quarantine, shadow of every
# address a large block ever had) grows with the run: RSS says nothing about liboffload.
# So in a SANITIZE=thread build: TSAN_OPTIONS=profile_memory splits its RSS, and over 50
# images the lowest RSS rose 230 -> 259 MB, all of it TSan's shadow (156 -> 183 MB) and
# trace (2 -> 4 MB) while the program's own mappings stayed at 62 MB. The plain build
# checks liboffload's host memory (and LeakSanitizer finds no leak in --runs 1 or 4).
if ldd "$PIPE" 2>/dev/null | grep -q libasan; then
    echo "host memory: not checked in an AddressSanitizer build (its shadow and quarantine grow)"
elif ldd "$PIPE" 2>/dev/null | grep -q libtsan; then
    echo "host memory: not checked in a ThreadSanitizer build (its shadow and traces grow)"
elif [[ -z ${base_anon:-} || -z ${last_anon:-} || ${last_n:-0} -lt $((RUNS / 2)) ]]; then
    bad "too few memory samples (last at image ${last_n:-none}; need 10 or more)"
else
    growth=$((last_anon - base_anon))
    echo "RssAnon, lowest of the last 5 images minus highest of images 2-6: ${growth} kB (allowed $SLACK kB); VmRSS: $((last_rss - base_rss)) kB"
    ((growth <= SLACK)) || bad "host memory grew by $growth kB up to image $last_n"
fi

peak() { sed -n "s/.*\"$1\": *\([0-9]*\).*/\1/p" "$2" | head -n 1; }
p2=$(peak peak_tracked_bytes "$work/short.json")
pn=$(peak peak_tracked_bytes "$work/long.json")
left=$(peak tracked_bytes "$work/long.json")
ev=$(peak evictions "$work/long.json")
echo "tracked bytes: peak ${p2:-?} after 2 images, ${pn:-?} after $RUNS, ${left:-?} left at exit; evictions: ${ev:-?}"
[[ -n $p2 && $p2 == "$pn" ]] || bad "the peak of tracked bytes moved from ${p2:-?} to ${pn:-?}"
[[ $left == 0 ]] || bad "${left:-?} tracked bytes left at exit (the pipeline frees everything)"
[[ ${ev:-0} -gt 0 ]] || bad "no eviction: the run was not under pressure"
if ((fail)); then
    echo "soak: FAILED"
    exit 1
fi
echo "soak: ok: $RUNS images, all $ref"
