#!/usr/bin/env bash
# The program fuzzer's share of `make test`: the fixed 200 programs (seeds 1-200), a few
# from a random seed printed first (FUZZ_SEED=N to choose it), and the corpus of shrunk
# failures, each program bare and under liboffload (tests/fuzz/programs/README.md).
# The last line is "N passed, M failed" (tests/run-all reads it).
set -uo pipefail
cd "$(dirname "$0")/../../.."
export BUILD=${BUILD:-build}
for f in "$BUILD/fuzzprog/interp" "$BUILD/fuzzprog/fuzz_kernels.so" "$BUILD/liboffload.so"; do
    if [[ ! -e $f ]]; then
        echo "fuzzprog: $f missing (make all)"
        echo "0 passed, 1 failed"
        exit 1
    fi
done
exec python3 tests/fuzz/programs/fuzz.py test --count "${FUZZ_COUNT:-200}" --extra "${FUZZ_EXTRA:-5}"
