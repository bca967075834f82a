#!/usr/bin/env bash
# make coverage: builds everything with gcov instrumentation in $BUILD (default
# build-coverage), runs every test (tests/run-all, which includes the fixed fuzz programs),
# then $FUZZ_S seconds of program fuzzing (default 600), and reports line and branch
# coverage of interpose/ and runtime/: gcovr's summary and per-file table when Debian's
# gcovr is installed (apt-get install gcovr), otherwise the totals of `gcov -b` itself.
# Reports: $BUILD/coverage.txt (lines), $BUILD/coverage-branches.txt.
# COVERAGE_NO_TESTS=1 skips tests/run-all (fuzzing only).
set -uo pipefail
cd "$(dirname "$0")/../../.."
export BUILD=${BUILD:-build-coverage}
# Exported, not passed: the tests' own make calls (tests/install.bats runs `make install`)
# then build with the instrumentation too; without it, sources changed during the run
# were rebuilt plain into $BUILD and every test after the install one failed to link.
export COVERAGE=1
seconds=${FUZZ_S:-600}
mkdir -p "$BUILD"
make -j2 BUILD="$BUILD" all >"$BUILD/make.log" 2>&1 || {
    tail -n 30 "$BUILD/make.log"
    exit 1
}
find "$BUILD" -name '*.gcda' -delete
if [[ -z ${COVERAGE_NO_TESTS:-} ]]; then # COVERAGE_NO_TESTS=1: fuzzing only
    echo "coverage: tests/run-all (log $BUILD/run-all.log)"
    UNIT_TIMEOUT=900 FUZZ_RUN_TIMEOUT=120 tests/run-all >"$BUILD/run-all.log" 2>&1
    tail -n 1 "$BUILD/run-all.log"
fi
if ((seconds > 0)); then
    echo "coverage: fuzzing for $seconds s"
    FUZZ_RUN_TIMEOUT=120 python3 tests/fuzz/programs/fuzz.py fuzz --seconds "$seconds" --faults 0.6 \
        --corpus "$BUILD/fuzzprog/found" | grep -E '^(fuzzprog|FAIL)'
fi

if command -v gcovr >/dev/null; then
    filters=(--root . --filter "$PWD/interpose/" --filter "$PWD/runtime/" "$BUILD/obj")
    gcovr "${filters[@]}" --txt "$BUILD/coverage.txt" --print-summary | grep -E '^(lines|branches):'
    gcovr "${filters[@]}" --branches --txt "$BUILD/coverage-branches.txt" >/dev/null
    echo "coverage: per file: $BUILD/coverage.txt (lines), $BUILD/coverage-branches.txt (branches)"
    exit 0
fi
# Without gcovr: gcov's own per-file figures, summed.
out=$BUILD/coverage.txt
: >"$out"
for gcda in $(find "$BUILD/obj/interpose" "$BUILD/obj/runtime" -name '*.gcda'); do
    (cd "$(dirname "$gcda")" && gcov -b -n -o . "$(basename "$gcda" .gcda).o" 2>/dev/null) |
        awk -v root="$PWD/" '/^File /{f=$2; gsub(/\x27/,"",f); keep=(f ~ "^(" root ")?(interpose|runtime)/")}
                             keep && /^(Lines executed|Branches executed|Taken at least once)/{print f, $0}'
done >>"$out"
awk '{ split($0, a, ":"); split(a[2], b, "% of "); n = b[2] + 0; hit = b[1] * n / 100 }
     /Lines executed/ { lt += n; lh += hit }
     /Taken at least once/ { bt += n; bh += hit }
     END { printf "lines: %.1f%% (%d out of %d)\nbranches: %.1f%% (%d out of %d)\n",
           100 * lh / lt, lh, lt, 100 * bh / bt, bh, bt }' "$out"
echo "coverage: per file: $out"
