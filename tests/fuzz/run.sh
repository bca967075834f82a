#!/usr/bin/env bash
# Fuzzes the offload.conf parser briefly: builds tests/fuzz/fuzz_config.c with clang's
# libFuzzer, AddressSanitizer and UBSan into $BUILD/fuzz/ and runs it for
# $FUZZ_SECONDS (default 15) from the seeds in tests/fuzz/corpus/. New inputs go to
# $BUILD/fuzz/corpus/, a crashing one to $BUILD/fuzz/crash-*.
# Without libFuzzer (or with FUZZ_REPLAY_ONLY=1) it replays the seeds under the
# sanitizers instead, and says so.
# The last line is "1 passed, 0 failed" or "0 passed, 1 failed" (tests/run-all reads it).
set -uo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
seconds=${FUZZ_SECONDS:-15}
out=$BUILD/fuzz
mkdir -p "$out/corpus"

verdict() {
    if (($1 == 0)); then echo "1 passed, 0 failed"; else echo "0 passed, 1 failed"; fi
    exit "$1"
}

inih=$(ls /usr/lib/*/libinih.a /usr/lib/libinih.a 2>/dev/null | head -n 1)
if [[ -z $inih ]]; then
    echo "fuzz: libinih.a not found (apt-get install libinih-dev)"
    verdict 1
fi
sources=(tests/fuzz/fuzz_config.c config/*.c)
flags=(-std=c11 -g -O1 -I. -D_GNU_SOURCE -Wall -Wextra -Werror)

if [[ -z ${FUZZ_REPLAY_ONLY:-} ]] && command -v clang >/dev/null &&
    echo 'int LLVMFuzzerTestOneInput(const char *d, long n) { return d && n; }' |
    clang -x c -fsanitize=fuzzer - -o "$out/probe" 2>/dev/null; then
    rm -f "$out/probe"
    if ! clang "${flags[@]}" -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
        "${sources[@]}" "$inih" -o "$out/fuzz_config"; then
        echo "fuzz: build failed"
        verdict 1
    fi
    "$out/fuzz_config" -max_total_time="$seconds" -max_len=4096 -timeout=10 \
        -rss_limit_mb=1024 -dict=tests/fuzz/config.dict -artifact_prefix="$out/" \
        -print_final_stats=1 "$out/corpus" tests/fuzz/corpus >"$out/fuzz.log" 2>&1
    rc=$?
    grep -E '^(stat::number_of_executed_units|stat::new_units_added)' "$out/fuzz.log" |
        sed 's/^/fuzz: /'
    if ((rc != 0)); then
        echo "fuzz: the parser failed on an input; log $out/fuzz.log:"
        grep -v '^#' "$out/fuzz.log" | tail -n 40
        ls "$out"/crash-* "$out"/leak-* "$out"/timeout-* 2>/dev/null | sed 's/^/fuzz: input /'
    fi
    verdict "$rc"
fi

# No libFuzzer: replay the seeds with whatever sanitizers the C compiler has.
cc=${CC:-cc}
echo "fuzz: libFuzzer unavailable (needs clang with -fsanitize=fuzzer); replaying the seeds only"
san=(-fsanitize=address,undefined -fno-sanitize-recover=all)
echo 'int main(void) { return 0; }' | "$cc" -x c "${san[@]}" - -o "$out/probe" 2>/dev/null || san=()
rm -f "$out/probe"
if ! "$cc" "${flags[@]}" "${san[@]}" tests/fuzz/replay_main.c "${sources[@]}" "$inih" \
    -o "$out/replay_config"; then
    echo "fuzz: build failed"
    verdict 1
fi
"$out/replay_config" tests/fuzz/corpus/*
verdict $?
