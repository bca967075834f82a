#!/usr/bin/env bats
# What a launch passes, seen (issue 13): pointers inside structs passed by value, and
# launches whose parameter layout the driver cannot tell.

setup_file() {
    export ROOT=${ROOT:-$(cd "$BATS_TEST_DIRNAME/.." && pwd)}
    export BUILD=${BUILD:-build}
    [[ $BUILD == /* ]] || BUILD=$ROOT/$BUILD
    export LD_LIBRARY_PATH=$BUILD/sim
    unset LD_PRELOAD OFFLOAD_CONFIG OFFLOAD_BUDGET OFFLOAD_POLICY OFFLOAD_PREFETCH \
        OFFLOAD_STATS OFFLOAD_MODE OFFLOAD_RECORD OFFLOAD_LOG OFFLOAD_MIN_SIZE \
        SIMCUDA_FAIL SIMCUDA_FAIL_RANDOM SIMCUDA_REPORT SIMCUDA_MEMORY
    SIMCUDA_MEMORY=1GiB "$BUILD/progs/struct_params" 32 >"$BATS_FILE_TMPDIR/bare.out"
    SIMCUDA_MEMORY=1GiB "$BUILD/progs/struct_params" 32 separate >"$BATS_FILE_TMPDIR/bare_sep.out"
}

setup() {
    B=$BUILD
    LIB=$B/liboffload.so
    T=$BATS_TEST_TMPDIR
}

json() {
    python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"
}

@test "struct parameters: pointers in a 16-byte pair and a 256-byte Params are restored" {
    grep -qx 'sum A B C D = 260046848' "$BATS_FILE_TMPDIR/bare.out"
    # Four 32 MiB buffers on a 112 MiB device: one is evicted for D, then reached only
    # through structs. lru without a config (A goes); budget and sequence with one
    # component of all four, larger than the budget, streamed along its order (C goes, the
    # farthest next use: combine256 reaches it only through its Params; B is restored
    # ahead), so restores, on demand or ahead, not demand restores alone.
    printf '[offload]\nsequence = all\n[component all]\nallocs = 0-3\n' >"$T/all.conf"
    for policy in lru budget sequence; do
        conf=$T/all.conf
        [ "$policy" = lru ] && conf=
        SIMCUDA_MEMORY=112MiB LD_PRELOAD=$LIB OFFLOAD_CONFIG=$conf OFFLOAD_POLICY=$policy \
            OFFLOAD_STATS=$T/s.json run "$B/progs/struct_params" 32
        echo "$policy: $output"
        [ "$status" -eq 0 ]
        [ "$(grep '^sum' <<<"$output")" = "$(cat "$BATS_FILE_TMPDIR/bare.out")" ]
        [ "$(json "$T/s.json" 'd["restores"]')" -ge 2 ]
        [ "$(json "$T/s.json" 'd["demand_restores"]')" -ge 1 ]
    done
}

@test "unreadable launches: the kernel's component is made resident first, the sums are right" {
    printf '[offload]\npolicy = lru\n[component ab]\nallocs = 0-1\nkernels = add_pair\n' >"$T/c.conf"
    printf '[component cd]\nallocs = 2-3\nkernels = double_pair\n' >>"$T/c.conf"
    # A driver that cannot tell any kernel's parameters.
    SIMCUDA_MEMORY=112MiB LD_PRELOAD=$LIB OFFLOAD_CONFIG=$T/c.conf \
        SIMCUDA_FAIL='cuFuncGetParamInfo:*:CUDA_ERROR_NOT_SUPPORTED' \
        run "$B/progs/struct_params" 32 separate
    echo "$output"
    [ "$status" -eq 0 ]
    [ "$(grep '^sum' <<<"$output")" = "$(cat "$BATS_FILE_TMPDIR/bare_sep.out")" ]
    [ "$(grep -c 'cannot read the parameter layout' <<<"$output")" -eq 1 ]
    grep -qx 'offload: cannot read the parameter layout of kernel fill_words: before each launch of such a kernel, liboffload makes the active component resident (as much of it as the budget holds)' <<<"$output"
}

@test "pointer tables: buffers a kernel reaches only through an uploaded table are restored" {
    SIMCUDA_MEMORY=1GiB run "$B/progs/pointer_table" 32
    [ "$status" -eq 0 ]
    bare=$(grep '^sum' <<<"$output")
    [ "$bare" = 'sum A B C D = 134217728' ]
    # 112 MiB holds three of the four buffers: each sum_table launch needs the two its
    # table names and its output, the rewritten table two others (a table remembered
    # beside the old one would need all four and fail with CUDA_ERROR_OUT_OF_MEMORY)
    # (lru without a config; budget and sequence with one component of everything)
    printf '[offload]\nsequence = all\n[component all]\nallocs = 0-4\n' >"$T/all.conf"
    for where in tracked untracked; do
        for how in sync async generic; do
            for policy in lru budget sequence; do
                conf=$T/all.conf
                [ "$policy" = lru ] && conf=
                SIMCUDA_MEMORY=112MiB LD_PRELOAD=$LIB OFFLOAD_POLICY=$policy \
                    OFFLOAD_CONFIG=$conf OFFLOAD_STATS=$T/s.json \
                    run "$B/progs/pointer_table" 32 $where $how
                echo "$where $how $policy: $output"
                [ "$status" -eq 0 ]
                [ "$(grep '^sum' <<<"$output")" = "$bare" ]
                [ "$(json "$T/s.json" 'd["demand_restores"]')" -ge 2 ]
            done
        done
    done
}

@test "tensor maps: a buffer read only through a map (alone, or inside a Params struct) is restored" {
    SIMCUDA_MEMORY=1GiB run "$B/progs/struct_params" 32 maps
    [ "$status" -eq 0 ]
    bare=$(grep '^sum' <<<"$output")
    [ "$bare" = 'sum A B C D = 67108864' ]
    SIMCUDA_MEMORY=112MiB LD_PRELOAD=$LIB OFFLOAD_STATS=$T/s.json \
        run "$B/progs/struct_params" 32 maps
    echo "$output"
    [ "$status" -eq 0 ]
    [ "$(grep '^sum' <<<"$output")" = "$bare" ]
    # A was evicted before each of the two map launches, and restored for each
    [ "$(json "$T/s.json" 'd["demand_restores"]')" -ge 2 ]
}
