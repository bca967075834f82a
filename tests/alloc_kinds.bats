#!/usr/bin/env bats
# Device memory allocated each way frameworks allocate it (issue 17), with
# tests/progs/alloc_kinds: cuMemAlloc, mapped by the program (VMM), stream-ordered from
# the device's pool (cuMemAllocAsync), from a created pool (cuMemAllocFromPoolAsync).
# Eight 32 MiB buffers of each kind, each written by a kernel and updated twice: bare on
# ample memory every kind gives the same checksum; under liboffload on a 160 MiB device
# each kind must give it too. Then a buffer across several program mappings
# (tests/progs/mapped_span) and the device's size as programs read it
# (tests/progs/device_size).

setup_file() {
    export ROOT=${ROOT:-$(cd "$BATS_TEST_DIRNAME/.." && pwd)}
    export BUILD=${BUILD:-build}
    [[ $BUILD == /* ]] || BUILD=$ROOT/$BUILD
    export LD_LIBRARY_PATH=$BUILD/sim
    unset LD_PRELOAD OFFLOAD_CONFIG OFFLOAD_BUDGET OFFLOAD_POLICY OFFLOAD_PREFETCH \
        OFFLOAD_STATS OFFLOAD_MODE OFFLOAD_RECORD OFFLOAD_LOG OFFLOAD_MIN_SIZE \
        SIMCUDA_FAIL SIMCUDA_FAIL_RANDOM SIMCUDA_REPORT SIMCUDA_MEMORY
    # The reference: every kind, bare, with ample memory.
    SIMCUDA_MEMORY=8GiB "$BUILD/progs/alloc_kinds" "$BUILD/progs/alloc_kernels.so" \
        >"$BATS_FILE_TMPDIR/ref.out" 2>&1
}

setup() {
    B=$BUILD
    LIB=$B/liboffload.so
    PROG=$B/progs/alloc_kinds
    KERNELS=$B/progs/alloc_kernels.so
    T=$BATS_TEST_TMPDIR
    cd "$T"
}

# checksum_of KIND FILE: the checksum alloc_kinds printed for KIND.
checksum_of() {
    grep -E "^alloc_kinds: $1 checksum 0x[0-9a-f]{16}$" "$2" | cut -d' ' -f4
}

# json FILE EXPRESSION: python3 evaluates EXPRESSION with d = the parsed file.
json() {
    python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"
}

# under_liboffload KIND: the 160 MiB run of one kind under liboffload, checked against
# the bare reference, the device's peak within the device.
under_liboffload() {
    local ref
    ref=$(checksum_of alloc "$BATS_FILE_TMPDIR/ref.out")
    [ -n "$ref" ]
    SIMCUDA_MEMORY=160MiB SIMCUDA_REPORT=$T/sim.json OFFLOAD_STATS=$T/stats.json \
        LD_PRELOAD=$LIB run "$PROG" "$KERNELS" --kind "$1"
    echo "$output"
    [ "$status" -eq 0 ]
    [ "$(checksum_of "$1" <(echo "$output"))" = "$ref" ]
    [ "$(json "$T/sim.json" 'd["peak_device_bytes"] <= 160 << 20')" = True ]
    [ "$(json "$T/stats.json" 'd["evictions"] > 0 and d["restores"] > 0')" = True ]
}

@test "bare, ample memory: every kind of allocation gives the same checksum" {
    cat "$BATS_FILE_TMPDIR/ref.out"
    [ "$(grep -c checksum "$BATS_FILE_TMPDIR/ref.out")" -eq 4 ]
    ref=$(checksum_of alloc "$BATS_FILE_TMPDIR/ref.out")
    [ -n "$ref" ]
    for kind in vmm async pool; do
        [ "$(checksum_of $kind "$BATS_FILE_TMPDIR/ref.out")" = "$ref" ]
    done
}

@test "bare: mapped and stream-ordered memory count in the device's peak like cuMemAlloc" {
    for kind in alloc vmm async pool; do
        SIMCUDA_MEMORY=1GiB SIMCUDA_REPORT=$T/$kind.json \
            run "$PROG" "$KERNELS" --kind $kind --buffers 4 --size 8
        [ "$status" -eq 0 ]
        [ "$(json "$T/$kind.json" 'd["peak_device_bytes"]')" -eq $((32 << 20)) ]
    done
}

@test "bare on a 160 MiB device: each kind runs out of memory at its allocation call" {
    SIMCUDA_MEMORY=160MiB run "$PROG" "$KERNELS" --kind alloc
    [ "$status" -eq 1 ]
    [[ $output == *"cuMemAlloc(&b->ptr[i], b->size) = CUDA_ERROR_OUT_OF_MEMORY" ]]
    SIMCUDA_MEMORY=160MiB run "$PROG" "$KERNELS" --kind vmm
    [ "$status" -eq 1 ]
    [[ $output == *"cuMemCreate(&b->handle[i], b->size, &prop, 0) = CUDA_ERROR_OUT_OF_MEMORY" ]]
    SIMCUDA_MEMORY=160MiB run "$PROG" "$KERNELS" --kind async
    [ "$status" -eq 1 ]
    [[ $output == *"cuMemAllocAsync(&b->ptr[i], b->size, s) = CUDA_ERROR_OUT_OF_MEMORY" ]]
    SIMCUDA_MEMORY=160MiB run "$PROG" "$KERNELS" --kind pool
    [ "$status" -eq 1 ]
    [[ $output == *"cuMemAllocFromPoolAsync(&b->ptr[i], b->size, b->pool, s) = CUDA_ERROR_OUT_OF_MEMORY" ]]
}

@test "liboffload, ample memory: every kind of allocation gives the reference checksum" {
    SIMCUDA_MEMORY=8GiB LD_PRELOAD=$LIB run "$PROG" "$KERNELS"
    echo "$output"
    [ "$status" -eq 0 ]
    [ "$output" = "$(cat "$BATS_FILE_TMPDIR/ref.out")" ]
}

@test "liboffload, 160 MiB device: cuMemAlloc buffers give the reference checksum" {
    under_liboffload alloc
}

@test "liboffload, 160 MiB device: program-mapped buffers give the reference checksum" {
    under_liboffload vmm
}

@test "liboffload, 160 MiB device: cuMemAllocAsync buffers give the reference checksum" {
    under_liboffload async
}

@test "liboffload, 160 MiB device: cuMemAllocFromPoolAsync buffers give the reference checksum" {
    under_liboffload pool
}

@test "misused handles, ranges and stream-ordered frees get the driver's errors, with or without liboffload" {
    run "$PROG" "$KERNELS" --errors
    echo "$output"
    [ "$status" -eq 0 ]
    [ "${lines[-1]}" = "errors: 0 wrong" ]
    [ "$(grep -c '= CUDA_ERROR_INVALID_VALUE$' <<<"$output")" -eq 10 ]
    bare=$output
    SIMCUDA_MEMORY=160MiB LD_PRELOAD=$LIB run "$PROG" "$KERNELS" --errors
    echo "$output"
    [ "$status" -eq 0 ]
    [ "$output" = "$bare" ]
}

@test "SIMCUDA_FAIL reaches stream-ordered allocation: out of memory by default, as cuMemAlloc*" {
    SIMCUDA_FAIL=cuMemAllocAsync:3 run "$PROG" "$KERNELS" --kind async --buffers 4 --size 2
    [ "$status" -eq 1 ]
    [[ $output == *"cuMemAllocAsync(&b->ptr[i], b->size, s) = CUDA_ERROR_OUT_OF_MEMORY" ]]
    SIMCUDA_FAIL=cuMemFreeAsync:1:CUDA_ERROR_INVALID_VALUE run "$PROG" "$KERNELS" --kind pool \
        --buffers 4 --size 2
    [ "$status" -eq 1 ]
    [[ $output == *"cuMemFreeAsync(b->ptr[i], s) = CUDA_ERROR_INVALID_VALUE" ]]
}

@test "components by allocs ordinal and by kernels own mapped and stream-ordered memory" {
    printf '[offload]\nsequence = first -> second\n[component first]\nallocs = 0-3\n[component second]\nallocs = 4-7\n' \
        >"$T/ordinals.conf"
    printf '[component updated]\nkernels = pattern_u32, update_u32\n' >"$T/kernels.conf"
    ref=$(checksum_of alloc "$BATS_FILE_TMPDIR/ref.out")
    for kind in vmm async pool; do
        for conf in ordinals kernels; do
            SIMCUDA_MEMORY=160MiB OFFLOAD_CONFIG=$T/$conf.conf OFFLOAD_STATS=$T/stats.json \
                LD_PRELOAD=$LIB run "$PROG" "$KERNELS" --kind $kind
            echo "$kind $conf: $output"
            [ "$status" -eq 0 ]
            [ "$(checksum_of $kind <(echo "$output"))" = "$ref" ]
            # every buffer belongs to its component: 4 x 32 MiB each, or all 8 to one
            if [ $conf = ordinals ]; then
                [ "$(json "$T/stats.json" '[c["bytes"] for c in d["components"]]')" = \
                    "[$((128 << 20)), $((128 << 20))]" ]
            else
                [ "$(json "$T/stats.json" '[c["bytes"] for c in d["components"]]')" = \
                    "[$((256 << 20))]" ]
            fi
            [ "$(json "$T/stats.json" 'd["unowned_bytes"]')" -eq 0 ]
        done
    done
}

@test "the budget counts what a driver pool reserves for small stream-ordered buffers" {
    # 1 MiB buffers stay in the driver's pool (below min_size 2 MiB): liboffload counts
    # what the pool reserves, and the run still fits and gives the reference pattern
    SIMCUDA_MEMORY=160MiB OFFLOAD_MIN_SIZE=2MiB OFFLOAD_STATS=$T/stats.json \
        LD_PRELOAD=$LIB run "$PROG" "$KERNELS" --kind pool --buffers 16 --size 1
    echo "$output"
    [ "$status" -eq 0 ]
    [ "$(json "$T/stats.json" 'd["tracked_allocations"]')" -eq 0 ]
    [ "$(json "$T/stats.json" 'd["peak_used_bytes"] >= 16 << 20')" = True ]
}

# One buffer across three program mappings (tests/progs/mapped_span), read and written
# whole by a kernel whose pointer lies in the first: under pressure its other mappings
# used to be evicted beneath the kernel (CUDA_ERROR_ILLEGAL_ADDRESS). liboffload learns
# the buffer from the copy that uploads it, or from the one cuMemSetAccess over the
# mappings made for it, and makes them resident together.
@test "a buffer across program mappings: every mapping resident beneath its kernels" {
    local span=$B/progs/mapped_span learn ref jitter
    for learn in copy access; do
        SIMCUDA_MEMORY=8GiB run "$span" "$KERNELS" --learn $learn
        echo "bare $learn: $output"
        [ "$status" -eq 0 ]
        ref=$(echo "$output" | grep -E '^mapped_span: checksum 0x[0-9a-f]{16}$')
        for jitter in "" 7; do # no jitter, then one seed
            SIMCUDA_MEMORY=40MiB SIMCUDA_JITTER=$jitter SIMCUDA_REPORT=$T/sim.json \
                OFFLOAD_STATS=$T/stats.json LD_PRELOAD=$LIB run "$span" "$KERNELS" --learn $learn
            echo "liboffload $learn, jitter $jitter: $output"
            [ "$status" -eq 0 ]
            [ "$output" = "$ref" ]
            [ "$(json "$T/sim.json" 'd["peak_device_bytes"] <= 40 << 20')" = True ]
            [ "$(json "$T/sim.json" 'd["faults"] + d["races"]')" -eq 0 ]
            [ "$(json "$T/stats.json" 'd["evictions"] > 0 and d["demand_restores"] > 0')" = True ]
        done
    done
}

# Allocators that reserve their address range from the device's size (PyTorch's
# expandable segments: 1.125 x totalGlobalMem) could never map more than the device
# holds: under liboffload cuDeviceTotalMem answers what liboffload can hold, four times
# the device here (the host has more than three times 100 MiB), before and after a
# context exists; cuMemGetInfo keeps answering with the budget.
@test "cuDeviceTotalMem: what liboffload can hold, four times a small device; cuMemGetInfo the budget" {
    local probe=$B/progs/device_size mib=$((1 << 20))
    SIMCUDA_MEMORY=100MiB run "$probe"
    echo "bare: $output"
    [ "$status" -eq 0 ]
    [[ $output == *"total before context $((100 * mib))"* ]]
    [[ $output == *"total $((100 * mib))"$'\n'* ]]
    SIMCUDA_MEMORY=100MiB OFFLOAD_BUDGET=50MiB LD_PRELOAD=$LIB run "$probe"
    echo "liboffload: $output"
    [ "$status" -eq 0 ]
    [[ $output == *"total before context $((400 * mib))"* ]]
    [[ $output == *"total $((400 * mib))"$'\n'* ]]
    [[ $output == *"mem_get_info free $((50 * mib)) total $((50 * mib))" ]]
}
