#!/usr/bin/env bats
# The reference pipeline (issue 3) on the simulated driver, without liboffload:
# determinism, the PNG, what changes the picture, memory limits, errors and arguments.
# Most runs use --scale 0.25 --steps 2 for speed (37.5 + 162.5 + 50 MiB of weights);
# the out-of-memory contract is checked at the default scale, as the issue asks.

setup_file() {
    export ROOT=${ROOT:-$(cd "$BATS_TEST_DIRNAME/.." && pwd)}
    export BUILD=${BUILD:-build}
    [[ $BUILD == /* ]] || BUILD=$ROOT/$BUILD
    export LD_LIBRARY_PATH=$BUILD/sim
    export SIMCUDA_MEMORY=1GiB
    unset LD_PRELOAD OFFLOAD_CONFIG PIPELINE_MODULE SIMCUDA_FAIL SIMCUDA_FAIL_RANDOM
    # The reference image every comparison starts from.
    "$BUILD/pipeline" --scale 0.25 --steps 2 --out "$BATS_FILE_TMPDIR/base.png" \
        >"$BATS_FILE_TMPDIR/base.out" 2>"$BATS_FILE_TMPDIR/base.err"
}

setup() {
    PIPE=$BUILD/pipeline
    BASE=$BATS_FILE_TMPDIR/base
    T=$BATS_TEST_TMPDIR
}

# The checksum printed in file $1 (one line "checksum: 0x<16 hex>").
checksum_of() {
    grep -E '^checksum: 0x[0-9a-f]{16}$' "$1" | cut -d' ' -f2
}

small() {
    "$PIPE" --scale 0.25 --steps 2 "$@"
}

@test "pipeline: the reference run succeeds and prints a checksum and a timing line per component" {
    [ -s "$BASE.png" ]
    [ "$(grep -cE '^checksum: 0x[0-9a-f]{16}$' "$BASE.out")" -eq 1 ]
    grep -qE '^text_encoder +[0-9.]+ s' "$BASE.out"
    grep -qE '^unet +[0-9.]+ s \(2 steps\)' "$BASE.out"
    grep -qE '^vae +[0-9.]+ s' "$BASE.out"
    grep -qE '^load unet +162\.5 MiB' "$BASE.out"
    [ ! -s "$BASE.err" ]
}

@test "pipeline: the same arguments give the same checksum and identical PNG bytes" {
    run small --out "$T/again.png"
    [ "$status" -eq 0 ]
    [ "$(echo "$output" | grep -E '^checksum:')" = "$(grep -E '^checksum:' "$BASE.out")" ]
    cmp "$BASE.png" "$T/again.png"
}

@test "pipeline: the PNG decodes: valid chunks and CRCs, 256x256 RGB, pixels match the checksum" {
    run file "$BASE.png"
    [[ $output == *"PNG image data, 256 x 256, 8-bit/color RGB"* ]]
    run python3 - "$BASE.png" "$(checksum_of "$BASE.out")" <<'EOF'
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "signature"
pos, chunks = 8, []
while pos < len(data):
    (length,) = struct.unpack(">I", data[pos:pos + 4])
    kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
    (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
    assert zlib.crc32(kind + body) == crc, "CRC of %r" % kind
    chunks.append((kind, body))
    pos += 12 + length
kinds = [k for k, _ in chunks]
assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and b"IDAT" in kinds, kinds
w, h, depth, colour, comp, filt, inter = struct.unpack(">IIBBBBB", chunks[0][1])
assert (w, h, depth, colour, comp, filt, inter) == (256, 256, 8, 2, 0, 0, 0)
raw = zlib.decompress(b"".join(b for k, b in chunks if k == b"IDAT"))
assert len(raw) == h * (1 + 3 * w), len(raw)
rows = [raw[y * (1 + 3 * w):(y + 1) * (1 + 3 * w)] for y in range(h)]
assert all(r[0] == 0 for r in rows), "filter type"
pixels = b"".join(r[1:] for r in rows)
fnv = 0xcbf29ce484222325
for b in pixels:
    fnv = ((fnv ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
assert "0x%016x" % fnv == sys.argv[2], ("0x%016x" % fnv, sys.argv[2])
assert len(set(pixels)) > 64, "a picture, not a flat colour"
print("ok")
EOF
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [ "$output" = ok ]
}

@test "pipeline: a different --seed changes the picture" {
    run small --seed 7 --out "$T/seed.png" --quiet
    [ "$status" -eq 0 ]
    [[ $output =~ ^checksum:\ 0x[0-9a-f]{16}$ ]]
    [ "${output#checksum: }" != "$(checksum_of "$BASE.out")" ]
    ! cmp -s "$BASE.png" "$T/seed.png"
}

@test "pipeline: a different --prompt changes the picture, one word is enough" {
    run small --prompt "a lighthouse on a cliff at dusk, oil painting" --out "$T/p.png" --quiet
    [ "$status" -eq 0 ]
    [[ $output =~ ^checksum:\ 0x[0-9a-f]{16}$ ]]
    [ "${output#checksum: }" != "$(checksum_of "$BASE.out")" ]
}

@test "pipeline: --runs 3 prints three checksums, all equal to the single run's" {
    run small --runs 3 --out "$T/runs.png"
    [ "$status" -eq 0 ]
    [ "$(echo "$output" | grep -c '^checksum:')" -eq 3 ]
    [ "$(echo "$output" | grep '^checksum:' | sort -u)" = "checksum: $(checksum_of "$BASE.out")" ]
    [ "$(echo "$output" | grep -c '^load ')" -eq 3 ] # the models are loaded once
    cmp "$BASE.png" "$T/runs.png"
}

@test "pipeline: --quiet prints only the checksum" {
    run small --quiet --out "$T/q.png"
    [ "$status" -eq 0 ]
    [ "$output" = "checksum: $(checksum_of "$BASE.out")" ]
}

@test "pipeline: default scale fails on a 256 MiB device with out of memory, and leaves no PNG" {
    SIMCUDA_MEMORY=256MiB run "$PIPE" --out "$T/oom.png"
    [ "$status" -ne 0 ]
    [[ $output == *"pipeline: out of memory allocating "*" bytes "*" for unet/"* ]]
    [[ $output == *"CUDA_ERROR_OUT_OF_MEMORY"* ]]
    [ "$(echo "$output" | grep -c '^checksum:')" -eq 0 ]
    [ ! -e "$T/oom.png" ]
    [ -z "$(ls "$T")" ] # no temporary file left behind either
}

@test "pipeline: default scale succeeds on 8 GiB: about 1 GiB of weights" {
    SIMCUDA_MEMORY=8GiB SIMCUDA_REPORT=$T/report.json run "$PIPE" --steps 1 --out "$T/full.png"
    [ "$status" -eq 0 ]
    [[ $output =~ checksum:\ 0x[0-9a-f]{16} ]]
    grep -qE 'load text_encoder +150\.0 MiB' <<<"$output"
    grep -qE 'load unet +650\.0 MiB' <<<"$output"
    grep -qE 'load vae +200\.0 MiB' <<<"$output"
    peak=$(sed -n 's/.*"peak_device_bytes": *\([0-9]*\).*/\1/p' "$T/report.json")
    # 1000 MiB of weights plus activations, and nothing like twice that.
    [ "$peak" -gt $((1000 << 20)) ]
    [ "$peak" -lt $((1100 << 20)) ]
}

@test "pipeline: at --scale 0.25 each component fits 192 MiB and all together do not" {
    run "$PIPE" --tensors --scale 0.25
    [ "$status" -eq 0 ]
    for c in text_encoder unet vae; do
        bytes=$(echo "$output" | awk -v c="$c" '$1 == "component" && $2 == c { print $3 }')
        [ "$bytes" -lt $((170 << 20)) ] # leaves room for its activations
    done
    total=$(echo "$output" | awk '$1 == "total" { print $2 }')
    [ "$total" -gt $((240 << 20)) ]
    SIMCUDA_MEMORY=192MiB run small --out "$T/x.png"
    [ "$status" -eq 1 ]
    [[ $output == *"out of memory allocating"* ]]
}

@test "pipeline: --tensors lists every weight allocation, several per layer, some under 1 MiB" {
    run "$PIPE" --tensors
    [ "$status" -eq 0 ]
    [[ $output == *"unet/block3.w_up"* ]]
    [[ $output == *"vae/stage2.depthwise"* ]]
    small=$(echo "$output" | awk '$1 ~ /^[0-9]+$/ && $3 < 1048576' | wc -l)
    large=$(echo "$output" | awk '$1 ~ /^[0-9]+$/ && $3 >= 1048576' | wc -l)
    [ "$small" -gt 20 ]
    [ "$large" -gt 20 ]
    # Sizes vary within a component: not one size repeated.
    [ "$(echo "$output" | awk '$1 ~ /^[0-9]+$/ && $2 ~ /^unet\/block.\.w_up$/ { print $3 }' | sort -u | wc -l)" -ge 4 ]
}

@test "pipeline: a failing driver call names the call, the error and the component" {
    SIMCUDA_FAIL=cuMemcpyHtoD:60 run small --out "$T/f.png"
    [ "$status" -eq 1 ]
    [[ $output =~ pipeline:\ cuMemcpyHtoD\ failed:\ CUDA_ERROR_[A-Z_]+\ \(uploading\ (text_encoder|unet|vae)/[a-z0-9_.]+,\ component\ (text_encoder|unet|vae)\) ]]
    SIMCUDA_FAIL=cuLaunchKernel:100 run small --out "$T/f.png"
    [ "$status" -eq 1 ]
    [[ $output =~ pipeline:\ cuLaunchKernel\ failed:\ CUDA_ERROR_[A-Z_]+\ \(launching\ [a-z0-9_]+,\ component\ unet\) ]]
    [ ! -e "$T/f.png" ]
}

@test "pipeline: PIPELINE_MODULE picks the kernel module; a missing one is a clear error" {
    PIPELINE_MODULE=$BUILD/kernels.host.so run small --quiet --out "$T/m.png"
    [ "$status" -eq 0 ]
    [ "$output" = "checksum: $(checksum_of "$BASE.out")" ]
    PIPELINE_MODULE=$T/nope.so run small --out "$T/m.png"
    [ "$status" -eq 1 ]
    [[ $output == *"kernel module $T/nope.so"* ]]
}

@test "pipeline: an unwritable --out is an error, exit 1" {
    run small --quiet --out "$T/no/such/dir/x.png"
    [ "$status" -eq 1 ]
    [[ $output == *"cannot create"* ]]
}

@test "pipeline: bad arguments give a usage error, exit 2" {
    for args in "--steps 0" "--steps x" "--scale 0" "--scale abc" "--seed -1" "--runs 0" \
        "--bogus" "stray" "--out" "--prompt" "--like tensorflow" "--like" \
        "--allocator caching" "--like torch --allocator native" "--like torch --allocator"; do
        # shellcheck disable=SC2086
        run "$PIPE" $args
        [ "$status" -eq 2 ] || { echo "args: $args -> $status"; false; }
        [[ $output == *"usage: pipeline"* ]] || { echo "args: $args: $output"; false; }
    done
    run "$PIPE" --help
    [ "$status" -eq 0 ]
    [[ $output == *"--prompt TEXT"* && $output == *"--runs N"* ]]
    [[ $output == *"--like torch"* && $output == *"--allocator A"* ]]
    run "$PIPE" --allocator async
    [[ $output == *"pipeline: --allocator async needs --like torch"* ]]
}

# --like torch (issue 13 item 6, issue 17 item 5): the same bits, driven as PyTorch drives
# the driver. Each allocator must give the default mode's checksum and PNG bytes.
torch_run() {
    local allocator=$1
    shift
    run small --like torch --allocator "$allocator" --out "$T/$allocator.png" "$@"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
}

@test "pipeline --like torch: the default mode's checksum and PNG, nothing on stderr" {
    run small --like torch --out "$T/torch.png" 2>"$T/stderr"
    [ "$status" -eq 0 ] || { echo "$output"; cat "$T/stderr"; false; }
    [ "$(echo "$output" | grep '^checksum:')" = "checksum: $(checksum_of "$BASE.out")" ]
    cmp "$BASE.png" "$T/torch.png"
    [[ $output == *", like torch, allocator caching"* ]]
    [ ! -s "$T/stderr" ] # no fallback taken: cuLibrary and tensor maps are there
}

@test "pipeline --like torch --allocator caching|expandable: the default mode's checksum" {
    for allocator in caching expandable; do
        torch_run "$allocator" --quiet
        [ "$output" = "checksum: $(checksum_of "$BASE.out")" ]
        cmp "$BASE.png" "$T/$allocator.png"
    done
}

@test "pipeline --like torch --allocator async: the default mode's checksum" {
    torch_run async --quiet
    [ "$output" = "checksum: $(checksum_of "$BASE.out")" ]
    cmp "$BASE.png" "$T/async.png"
}

@test "pipeline --like torch --runs 3: a warm cache gives the same image every run" {
    for allocator in caching expandable; do
        torch_run "$allocator" --runs 3 --quiet
        [ "$(echo "$output" | sort -u)" = "checksum: $(checksum_of "$BASE.out")" ]
    done
}

# The simulator counts each rule's calls: a fault at call N is injected only if the
# program makes at least N calls of that entry point.
injected() {
    sed -n 's/.*"injected_faults": *\([0-9]*\).*/\1/p' "$T/r.json"
}

@test "pipeline --like torch: kernels from cuLibraryLoadData, launched with cuLaunchKernelEx, weights through tensor maps" {
    for unused in cuLaunchKernel cuModuleLoad cuModuleLoadData cuModuleGetFunction; do
        SIMCUDA_FAIL=$unused:1 SIMCUDA_REPORT=$T/r.json run small --like torch --quiet --out "$T/u.png"
        [ "$status" -eq 0 ] || { echo "$unused: $output"; false; }
        [ "$(injected)" = 0 ] || { echo "$unused was called"; false; }
    done
    for used in cuLibraryLoadData cuLibraryGetKernel cuLaunchKernelEx cuTensorMapEncodeTiled; do
        SIMCUDA_FAIL=$used:1 SIMCUDA_REPORT=$T/r.json run small --like torch --quiet --out "$T/u.png"
        [ "$status" -eq 1 ] || { echo "$used: $output"; false; }
        [[ $output == *"pipeline: $used failed: CUDA_ERROR_UNKNOWN"* ]] || { echo "$output"; false; }
        [ "$(injected)" = 1 ]
    done
    # the default mode is the other way round
    SIMCUDA_FAIL=cuLaunchKernelEx:1 SIMCUDA_REPORT=$T/r.json run small --quiet --out "$T/u.png"
    [ "$status" -eq 0 ] && [ "$(injected)" = 0 ]
}

@test "pipeline --like torch: a driver without cuLibrary or tensor maps: the fallbacks, said once, the same bits" {
    SIMCUDA_FAIL=cuLibraryLoadData:1:CUDA_ERROR_NOT_SUPPORTED run small --like torch --quiet --out "$T/f.png"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [[ $output == *"pipeline: cuLibraryLoadData: CUDA_ERROR_NOT_SUPPORTED; --like torch loads its kernels with cuModuleLoadData instead"* ]]
    [[ $output == *"checksum: $(checksum_of "$BASE.out")"* ]]
    SIMCUDA_FAIL=cuTensorMapEncodeTiled:1:CUDA_ERROR_NOT_SUPPORTED run small --like torch --quiet --out "$T/f.png"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [ "$(echo "$output" | grep -c 'cuTensorMapEncodeTiled: CUDA_ERROR_NOT_SUPPORTED; the GEMM reads its weights through a plain pointer')" = 1 ]
    [[ $output == *"checksum: $(checksum_of "$BASE.out")"* ]]
    cmp "$BASE.png" "$T/f.png"
}

@test "pipeline --like torch: tensors come from cached segments, not one cuMemAlloc each" {
    # The default mode makes 149 weight allocations and more per run; the caching
    # allocator 18 segments for the weights, a few for the activations.
    SIMCUDA_FAIL=cuMemAlloc:40 SIMCUDA_REPORT=$T/r.json run small --like torch --quiet --out "$T/s.png"
    [ "$status" -eq 0 ] && [ "$(injected)" = 0 ]
    SIMCUDA_FAIL=cuMemAlloc:40 SIMCUDA_REPORT=$T/r.json run small --quiet --out "$T/s.png"
    [ "$status" -eq 1 ] && [ "$(injected)" = 1 ]
    run small --like torch --out "$T/s.png"
    [ "$status" -eq 0 ]
    echo "$output" | grep -qE '^ +text_encoder +segments 0-2, '
    echo "$output" | grep -qE '^ +unet +segments 3-14, '
    echo "$output" | grep -qE '^ +vae +segments 15-17, '
    # expandable segments: pages of 2 and 20 MiB mapped into two reserved ranges
    SIMCUDA_FAIL=cuMemAlloc:1 SIMCUDA_REPORT=$T/r.json run small --like torch --allocator expandable --quiet --out "$T/s.png"
    [ "$status" -eq 0 ] && [ "$(injected)" = 0 ]
    SIMCUDA_FAIL=cuMemAddressReserve:3 SIMCUDA_REPORT=$T/r.json run small --like torch --allocator expandable --quiet --out "$T/s.png"
    [ "$status" -eq 0 ] && [ "$(injected)" = 0 ]
    SIMCUDA_FAIL=cuMemMap:5 run small --like torch --allocator expandable --quiet --out "$T/s.png"
    [ "$status" -eq 1 ]
    [[ $output == *"pipeline: cuMemMap failed: CUDA_ERROR_UNKNOWN (allocating "* ]]
}

@test "pipeline --like torch: out of memory still names the tensor and the driver call" {
    for allocator in caching expandable; do
        SIMCUDA_MEMORY=256MiB run "$PIPE" --like torch --allocator $allocator --out "$T/oom.png"
        [ "$status" -eq 1 ]
        [[ $output == *"pipeline: out of memory allocating "*" bytes "*" for unet/"* ]]
        [[ $output == *"CUDA_ERROR_OUT_OF_MEMORY"* ]]
        [ ! -e "$T/oom.png" ]
    done
}
