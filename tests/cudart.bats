#!/usr/bin/env bats
# The CUDA runtime's own path to the driver: a program built with the installed toolkit's
# static cudart (`nvcc -cudart static`) resolves every entry point it uses through
# cuGetProcAddress, at the versions its headers were built for (cuCtxSynchronize at 13000
# is cuCtxSynchronize_v2). Run on the simulator under liboffload with OFFLOAD_LOG=debug,
# the resolver logs each request and what it handed out; an entry point liboffload hooks
# at one version but hands out unhooked at another is a path around liboffload.
# cudart's request list is kept in tests/cudart/requests.txt: a newer toolkit's new
# requests show up as a difference there.

setup_file() {
    ROOT=${ROOT:-$(cd "$BATS_TEST_DIRNAME/.." && pwd)}
    export ROOT
    NVCC=${NVCC:-${CUDA_HOME:-/usr/local/cuda}/bin/nvcc}
    export NVCC
    [[ -x $NVCC ]] || return 0
    "$NVCC" -cudart static -o "$BATS_FILE_TMPDIR/probe" "$ROOT/tests/cudart/probe.cu" \
        >"$BATS_FILE_TMPDIR/nvcc.log" 2>&1 || true
}

setup() {
    cd "$ROOT"
    [[ -x $NVCC ]] || skip "nvcc not found ($NVCC): the cudart test needs the CUDA toolkit"
    [[ -x $BATS_FILE_TMPDIR/probe ]] || {
        cat "$BATS_FILE_TMPDIR/nvcc.log"
        false
    }
    B=$BUILD
    [[ $B == /* ]] || B=$ROOT/$BUILD
    LIB=$B/liboffload.so
    SAN_RT=$(ldd "$LIB" 2>/dev/null | awk '/lib(asan|tsan)\.so/ {print $3 " "; exit}')
    unset OFFLOAD_CONFIG OFFLOAD_BUDGET OFFLOAD_POLICY OFFLOAD_PREFETCH OFFLOAD_STATS \
        OFFLOAD_DRIVER OFFLOAD_MIN_SIZE SIMCUDA_MEMORY LD_PRELOAD
    LOG=$BATS_FILE_TMPDIR/resolver.log
    if [[ ! -s $LOG ]]; then
        LD_LIBRARY_PATH=$B/sim LD_PRELOAD="$SAN_RT$LIB" OFFLOAD_LOG=debug \
            "$BATS_FILE_TMPDIR/probe" >"$BATS_FILE_TMPDIR/probe.out" 2>"$LOG"
    fi
}

# "NAME VERSION FLAGS SYMBOL hooked|own" for each request the resolver logged.
resolutions() {
    sed -nE "s/^offload: resolver: ([A-Za-z0-9_]+)@([0-9]+) flags ([0-9]+) -> ([A-Za-z0-9_]+) \((hooked|driver's own)\)$/\1 \2 \3 \4 \5/p" "$LOG" |
        sed 's/ driver.s own$/ own/'
}

@test "cudart: the program starts on the simulator under liboffload and asks the resolver" {
    grep -q '^cudaDriverGetVersion: cudaSuccess (13000)$' "$BATS_FILE_TMPDIR/probe.out"
    # the runtime found liboffload's resolver through dlsym on the driver's handle
    grep -q "dlsym: cuGetProcAddress_v2 on the driver's handle -> liboffload's resolver" "$LOG"
    [ "$(resolutions | wc -l)" -gt 300 ]
}

@test "cudart: every entry point liboffload hooks is hooked at every version cudart requests" {
    run bash -c "$(declare -f resolutions); LOG='$LOG'; resolutions |
        awk '{ seen[\$1] = seen[\$1] \" \" \$5; line[NR] = \$0; name[NR] = \$1 }
             END { for (i = 1; i <= NR; i++) if (seen[name[i]] ~ /hooked/ && line[i] ~ / own\$/)
                   print \"not hooked: \" line[i] }'"
    echo "$output"
    [ "$status" -eq 0 ]
    [ -z "$output" ]
    # the one that was missing: cudart 13 asks for cuCtxSynchronize at 13000
    resolutions | grep -qx 'cuCtxSynchronize 13000 0 cuCtxSynchronize_v2 hooked'
}

@test "cudart: its requests are the ones in tests/cudart/requests.txt" {
    resolutions | awk '{ print $1 "@" $2 " flags " $3 }' | LC_ALL=C sort -u >"$BATS_FILE_TMPDIR/now"
    if [[ -n ${UPDATE_FIXTURE:-} ]]; then
        { grep '^#' tests/cudart/requests.txt; cat "$BATS_FILE_TMPDIR/now"; } >"$BATS_FILE_TMPDIR/new"
        cp "$BATS_FILE_TMPDIR/new" tests/cudart/requests.txt
    fi
    run diff -u <(grep -v '^#' tests/cudart/requests.txt) "$BATS_FILE_TMPDIR/now"
    echo "$output"
    echo "(- only in the fixture, + only now: a toolkit change; UPDATE_FIXTURE=1 rewrites it)"
    [ "$status" -eq 0 ]
}
