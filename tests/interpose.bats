#!/usr/bin/env bats
# Interception (interpose/): programs linked to the driver and programs that load it the
# way the CUDA runtime does both reach liboffload's hooks; only the exact versioned
# symbols liboffload hooks are substituted; dlsym's RTLD_NEXT / RTLD_DEFAULT / handle
# lookups mean what they mean without liboffload; the library is harmless in processes
# that never touch CUDA, in forked children, without a driver, and when unloaded.

setup() {
    cd "$ROOT"
    B=$BUILD
    [[ $B == /* ]] || B=$ROOT/$BUILD
    LIB=$B/liboffload.so
    # Under SANITIZE builds liboffload needs its sanitizer runtime loaded before it.
    SAN_RT=$(ldd "$LIB" 2>/dev/null | awk '/lib(asan|tsan)\.so/ {print $3 " "; exit}')
    PRELOAD="$SAN_RT$LIB"
    MODULE=$B/progs/sim_kernels.so
    WRAP=$B/progs/librtld_next_wrap.so
    export LD_LIBRARY_PATH=$B/sim
    unset OFFLOAD_CONFIG OFFLOAD_BUDGET OFFLOAD_POLICY OFFLOAD_PREFETCH OFFLOAD_STATS \
        OFFLOAD_LOG OFFLOAD_DRIVER OFFLOAD_MIN_SIZE SIMCUDA_MEMORY LD_PRELOAD
    TMP=$(mktemp -d)
}

teardown() {
    rm -rf "$TMP"
}

@test "linked program: same output with and without liboffload, its calls bound to the hooks" {
    "$B/progs/linked_app" "$MODULE" >"$TMP/bare.out"
    LD_PRELOAD="$PRELOAD" "$B/progs/linked_app" "$MODULE" >"$TMP/offload.out"
    diff "$TMP/bare.out" "$TMP/offload.out"
    grep -q '^linked_app: ok ' "$TMP/offload.out"

    LD_PRELOAD="$PRELOAD" run "$B/progs/linked_app" --bindings "$MODULE"
    [ "$status" -eq 0 ]
    [[ $output == *"binding cuMemAlloc_v2 -> liboffload.so"* ]]
    [[ $output == *"binding cuMemcpyHtoD_v2 -> liboffload.so"* ]]
    [[ $output == *"binding cuMemcpyDtoHAsync_v2 -> liboffload.so"* ]]
    [[ $output == *"binding cuLaunchKernel -> liboffload.so"* ]]
    [[ $output == *"binding cuInit -> libcuda.so.1"* ]] # not hooked: the driver's own
    run "$B/progs/linked_app" --bindings "$MODULE"
    [[ $output == *"binding cuMemAlloc_v2 -> libcuda.so.1"* ]]
}

@test "linked program: tracked allocations evicted and read back under a small budget, bytes intact" {
    "$B/progs/linked_app" "$MODULE" >"$TMP/bare.out"
    OFFLOAD_BUDGET=16MiB OFFLOAD_LOG=info LD_PRELOAD="$PRELOAD" \
        "$B/progs/linked_app" "$MODULE" >"$TMP/offload.out" 2>"$TMP/offload.err"
    diff "$TMP/bare.out" "$TMP/offload.out"
    # the hooks fed the runtime: it tracked the 4 MiB buffers, had to evict some, and the
    # program's reads of them came back restored or straight from their host backups
    line=$(grep 'offload: summary: [0-9]* evictions' "$TMP/offload.err")
    [[ $line =~ ([0-9]+)\ evictions,\ ([0-9]+)\ restores.*\ ([0-9]+)\ reads\ from ]]
    ((BASH_REMATCH[1] > 0 && BASH_REMATCH[2] + BASH_REMATCH[3] > 0))
}

@test "runtime-style loader: reaches the resolver through dlsym, hooked before cuInit" {
    OFFLOAD_LOG=debug LD_PRELOAD="$PRELOAD" run "$B/progs/runtime_loader" --buffers 3 --size 4
    [ "$status" -eq 0 ]
    [[ $output == *"verified 3 buffers"* ]]
    [[ $output == *"dlsym: cuGetProcAddress_v2 on the driver's handle -> liboffload's resolver"* ]]
    [[ $output == *"resolver: cuMemAlloc@3020 flags 0 -> cuMemAlloc_v2 (hooked)"* ]]
    [[ $output == *"resolver: cuMemcpyHtoD@7000 flags 2 -> cuMemcpyHtoD_v2_ptds (hooked)"* ]]
    [[ $output == *"resolver: cuMemsetD32Async@7000 flags 2 -> cuMemsetD32Async_ptsz (hooked)"* ]]
    [[ $output == *"resolver: cuInit@2000 flags 0 -> cuInit (driver's own)"* ]]
    # every fetch happened before cuInit ran: the resolver lines precede the first
    # allocation the runtime tracked
    first_alloc=$(grep -n 'tracked allocation' <<<"$output" | head -n 1 | cut -d: -f1)
    last_resolve=$(grep -n 'resolver: ' <<<"$output" | tail -n 1 | cut -d: -f1)
    [ -n "$first_alloc" ] && [ "$last_resolve" -lt "$first_alloc" ]
}

@test "TensorFlow-style loader: every entry point by dlsym on the driver's handle reaches the hooks" {
    # 8 x 32 MiB on a 160 MiB device: only an intercepted program gets through.
    SIMCUDA_MEMORY=160MiB run "$B/progs/runtime_loader" --dlsym --buffers 8 --size 32
    [ "$status" -ne 0 ]
    [[ $output == *"cuMemAlloc: CUDA_ERROR_OUT_OF_MEMORY"* ]]
    SIMCUDA_MEMORY=160MiB OFFLOAD_LOG=debug LD_PRELOAD="$PRELOAD" \
        run "$B/progs/runtime_loader" --dlsym --buffers 8 --size 32
    [ "$status" -eq 0 ]
    [[ $output == *"verified 8 buffers"* ]]
    [[ $output == *"dlsym: cuMemAlloc_v2 on the driver's handle -> liboffload's hook"* ]]
    [[ $output == *"dlsym: cuMemcpyHtoDAsync_v2_ptsz on the driver's handle -> liboffload's hook"* ]]
    # not hooked: the driver's own function, and nothing said about it
    [[ $output != *"dlsym: cuInit "* ]]
    grep -Eq 'summary: [1-9][0-9]* evictions, [1-9][0-9]* restores' <<<"$output"
}

@test "resolver: only exact versioned symbols are substituted; old ABIs and handle lookups untouched" {
    "$B/progs/resolver_probe" >"$TMP/bare.out"
    LD_PRELOAD="$PRELOAD" "$B/progs/resolver_probe" >"$TMP/offload.out"
    # without liboffload nothing names it
    ! grep -q liboffload "$TMP/bare.out"
    expect() { grep -qxF "$1" "$TMP/offload.out" || { echo "missing: $1"; cat "$TMP/offload.out"; false; }; }
    expect "dlsym(handle, cuGetProcAddress_v2) -> liboffload.so:cuGetProcAddress_v2"
    expect "dlsym(handle, cuGetProcAddress) -> liboffload.so:cuGetProcAddress"
    expect "dlerror after the resolver lookups: none"
    expect "dlsym(handle, cuGetProcAddress_v3) -> NULL"
    expect "dlsym(handle, cuMemAlloc) -> libcuda.so.1:cuMemAlloc"
    expect "dlsym(handle, cuMemAlloc_v2) -> liboffload.so:cuMemAlloc_v2"
    expect "gpa cuMemAlloc@2000 flags=0 -> libcuda.so.1:cuMemAlloc (rc 0, status 0)"
    expect "gpa cuMemAlloc@3020 flags=0 -> liboffload.so:cuMemAlloc_v2 (rc 0, status 0)"
    expect "gpa cuMemcpyHtoD@2000 flags=0 -> libcuda.so.1:cuMemcpyHtoD (rc 0, status 0)"
    expect "gpa cuMemcpyHtoD@12000 flags=0 -> liboffload.so:cuMemcpyHtoD_v2 (rc 0, status 0)"
    expect "gpa cuMemcpyHtoD@12000 flags=2 -> liboffload.so:cuMemcpyHtoD_v2_ptds (rc 0, status 0)"
    expect "gpa cuStreamDestroy@2000 flags=0 -> libcuda.so.1:cuStreamDestroy (rc 0, status 0)"
    expect "gpa cuStreamDestroy@4000 flags=0 -> liboffload.so:cuStreamDestroy_v2 (rc 0, status 0)"
    expect "gpa cuLaunchKernel@12000 flags=2 -> liboffload.so:cuLaunchKernel_ptsz (rc 0, status 0)"
    expect "gpa cuGetProcAddress@11030 flags=0 -> liboffload.so:cuGetProcAddress (rc 0, status 0)"
    expect "gpa cuGetProcAddress@12000 flags=0 -> liboffload.so:cuGetProcAddress_v2 (rc 0, status 0)"
    expect "gpa_v1 cuMemAlloc@12000 -> liboffload.so:cuMemAlloc_v2 (rc 0)"
    expect "round trip: ok"
    # apart from the library names, the same symbols come back in the same order
    diff <(sed 's/liboffload\.so:/libcuda.so.1:/' "$TMP/offload.out") "$TMP/bare.out"
    # anything not hooked is the driver's own, byte for byte the same line
    grep 'cuCtxCreate@' "$TMP/offload.out" | grep -q 'libcuda.so.1:'
}

@test "dlsym: RTLD_NEXT wrappers, RTLD_DEFAULT scopes and handle lookups unchanged by liboffload" {
    "$B/progs/rtld_next_app" "$WRAP" >"$TMP/bare.out"
    LD_PRELOAD="$PRELOAD" "$B/progs/rtld_next_app" "$WRAP" >"$TMP/offload.out"
    diff "$TMP/bare.out" "$TMP/offload.out"
    grep -qx 'library: RTLD_DEFAULT rtld_next_wrap_marker -> librtld_next_wrap.so' "$TMP/offload.out"
    grep -qx 'program: RTLD_DEFAULT rtld_next_wrap_marker -> not found' "$TMP/offload.out"

    # a preloaded wrapper of puts, before and after liboffload in the preload list
    LD_PRELOAD="$SAN_RT$WRAP" "$B/progs/rtld_next_app" "$WRAP" >"$TMP/wrap.out"
    grep -qx '\[wrapped\] hello through puts' "$TMP/wrap.out"
    grep -qx 'library: RTLD_NEXT puts -> libc.so.6' "$TMP/wrap.out"
    LD_PRELOAD="$SAN_RT$LIB $WRAP" "$B/progs/rtld_next_app" "$WRAP" >"$TMP/offload_wrap.out"
    diff "$TMP/wrap.out" "$TMP/offload_wrap.out"
    LD_PRELOAD="$SAN_RT$WRAP $LIB" "$B/progs/rtld_next_app" "$WRAP" >"$TMP/wrap_offload.out"
    diff "$TMP/wrap.out" "$TMP/wrap_offload.out"
}

@test "fork: children of a CUDA program exit 0 while another thread keeps liboffload busy" {
    # (the simulator restarts its stream threads in a forked child: ThreadSanitizer builds
    # must be told that is fine. Under AddressSanitizer, LeakSanitizer in a forked child
    # reports what only the threads that did not survive the fork referenced, and can hang
    # there (GCC 12's libasan does not hold its allocator across fork):
    # https://github.com/google/sanitizers/issues/836. LeakSanitizer is off for this run;
    # the tests above run linked_app without fork under it.)
    TSAN_OPTIONS="${TSAN_OPTIONS:+$TSAN_OPTIONS:}die_after_fork=0" LD_PRELOAD="$PRELOAD" \
        ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
        OFFLOAD_LOG=info run timeout 60 "$B/progs/linked_app" --fork 20 "$MODULE"
    [ "$status" -eq 0 ]
    [[ $output == *"fork: 20 of 20 children exited 0"* ]]
    # the children stay quiet: the one exit report is the parent's
    [ "$(grep -c 'offload: summary: budget' <<<"$output")" -eq 1 ]
}

@test "after exit: hooks called once liboffload's exit report has run still work, one report" {
    # libafter_exit.so's exit handler runs after liboffload's (it registered first) and
    # allocates, evicts, restores and frees through the hooks
    OFFLOAD_BUDGET=16MiB OFFLOAD_LOG=info LD_PRELOAD="$PRELOAD $B/progs/libafter_exit.so" \
        run timeout 60 "$B/progs/linked_app"
    [ "$status" -eq 0 ]
    [[ $output == *"linked_app: ok"* ]]
    [[ $output == *"after_exit: ok"* ]]
    [ "$(grep -c 'offload: summary: budget' <<<"$output")" -eq 1 ]
    [[ ${output%%after_exit: ok*} == *"offload: summary: budget"* ]] # the report came first
}

@test "processes that never touch CUDA: no driver loaded, no output, same exit status" {
    # a driver path that cannot load: any attempt to load it would say so on stderr
    OFFLOAD_DRIVER=/nonexistent/libcuda.so.1 OFFLOAD_LOG=debug LD_PRELOAD="$PRELOAD" \
        /bin/true 2>"$TMP/true.err"
    [ ! -s "$TMP/true.err" ] || { cat "$TMP/true.err"; false; }
    run env OFFLOAD_DRIVER=/nonexistent/libcuda.so.1 LD_PRELOAD="$PRELOAD" sh -c 'echo hi; exit 3'
    [ "$status" -eq 3 ]
    [ "$output" = hi ]
    ASAN_OPTIONS=detect_leaks=0 LD_PRELOAD="$PRELOAD" run python3 -c 'import ctypes; print(bool(ctypes.CDLL(None).strlen))'
    [ "$status" -eq 0 ]
    [ "$output" = True ]
}

@test "no driver: hooks answer CUDA_ERROR_NOT_INITIALIZED, nothing crashes" {
    OFFLOAD_DRIVER=/nonexistent/libcuda.so.1 LD_PRELOAD="$PRELOAD" run "$B/progs/linked_app" "$MODULE"
    [ "$status" -eq 1 ]
    [[ $output == *"cannot load the CUDA driver /nonexistent/libcuda.so.1"* ]]
    [[ $output == *"CUDA_ERROR_NOT_INITIALIZED"* ]]
}

@test "unload: liboffload loaded and unloaded by dlopen/dlclose, after a hooked call" {
    [[ $SAN_RT != *tsan* ]] || skip "python itself crashes with ThreadSanitizer preloaded"
    # (a sanitizer build of liboffload needs its runtime preloaded into python, whose own
    # leaks are not ours)
    LD_PRELOAD="$SAN_RT" ASAN_OPTIONS=detect_leaks=0 run python3 - "$LIB" <<'PY'
import ctypes, _ctypes, sys
lib = ctypes.CDLL(sys.argv[1])
free, total = ctypes.c_size_t(), ctypes.c_size_t()
rc = lib.cuMemGetInfo_v2(ctypes.byref(free), ctypes.byref(total))  # before cuInit
handle = lib._handle
del lib
_ctypes.dlclose(handle)
import os
pid = os.fork()  # atfork handlers of the unloaded library must be gone
if pid == 0:
    os._exit(0)
_, status = os.waitpid(pid, 0)
print("rc", rc, "child", status)
PY
    [ "$status" -eq 0 ]
    [ "$output" = "rc 3 child 0" ] # CUDA_ERROR_NOT_INITIALIZED from the driver, no crash
}

@test "exports: every cu* symbol liboffload exports is a real driver symbol, and dlsym both versions" {
    nm -D --defined-only "$LIB" | awk '$3 ~ /^cu/ {sub(/@.*/, "", $3); print $3}' | sort -u >"$TMP/hooks"
    nm -D --defined-only "$B/sim/libcuda.so.1" | awk '$3 ~ /^cu/ {print $3}' | sort -u >"$TMP/driver"
    [ "$(wc -l <"$TMP/hooks")" -gt 90 ]
    # a misspelled hook would never be called: none may be missing from the driver
    [ -z "$(comm -23 "$TMP/hooks" "$TMP/driver")" ] || { comm -23 "$TMP/hooks" "$TMP/driver"; false; }
    # nothing but cu* and dlsym leaves the library
    [ -z "$(nm -D --defined-only "$LIB" | awk '{print $3}' | grep -v '^cu' | grep -v '^dlsym@' | grep -v '^GLIBC_\|^LIBOFFLOAD_')" ]
    nm -D --defined-only "$LIB" | grep -q ' dlsym@GLIBC_2.2.5$'
    nm -D --defined-only "$LIB" | grep -q ' dlsym@@GLIBC_2.34$'
}

@test "a different driver than OFFLOAD_DRIVER: the program runs untouched and a warning says why" {
    mkdir -p "$TMP/other"
    cp "$B/sim/libcuda.so.1" "$TMP/other/libcuda.so.1" # another file: another object
    "$B/progs/resolver_probe" >"$TMP/bare.out"
    OFFLOAD_DRIVER=$TMP/other/libcuda.so.1 LD_PRELOAD="$PRELOAD" \
        "$B/progs/resolver_probe" >"$TMP/offload.out" 2>"$TMP/offload.err"
    diff "$TMP/bare.out" "$TMP/offload.out"
    grep -q 'cuGetProcAddress_v2 looked up in a CUDA driver other than the one liboffload uses' \
        "$TMP/offload.err"
}

@test "pointer queries: a tracked allocation, resident or evicted, answers as plain cuMemAlloc memory" {
    # two 8 MiB buffers under a 12 MiB budget: each is evicted while the other is written
    SIMCUDA_MEMORY=1GiB "$B/progs/pointer_attrs" 8 >"$TMP/bare.out"
    SIMCUDA_MEMORY=1GiB LD_PRELOAD="$PRELOAD" OFFLOAD_BUDGET=12MiB OFFLOAD_STATS="$TMP/stats.json" \
        "$B/progs/pointer_attrs" 8 >"$TMP/offload.out"
    python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); sys.exit(not (d["tracked_allocations"] == 2 and d["evictions"] >= 2))' "$TMP/stats.json"
    [ "$(wc -l <"$TMP/bare.out")" -gt 150 ]
    # every attribute the simulator answers, each way, identical...
    diff <(grep -v IS_LEGACY_CUDA_IPC_CAPABLE "$TMP/bare.out") \
        <(grep -v IS_LEGACY_CUDA_IPC_CAPABLE "$TMP/offload.out")
    grep -q '^2-other-written A MAPPED: CUDA_SUCCESS 1$' "$TMP/offload.out"
    grep -q '^3-rewritten B BUFFER_ID: CUDA_SUCCESS B$' "$TMP/offload.out"
    grep -q '^2-other-written A address range: CUDA_SUCCESS base+0 8388608$' "$TMP/offload.out"
    # ...but legacy IPC: VMM memory cannot be shared with cuIpcGetMemHandle (README, Limits)
    [ "$(grep -c 'IS_LEGACY_CUDA_IPC_CAPABLE: \(CUDA_SUCCESS \)\?1$' "$TMP/bare.out")" -eq 10 ]
    [ "$(grep -c 'IS_LEGACY_CUDA_IPC_CAPABLE: \(CUDA_SUCCESS \)\?0$' "$TMP/offload.out")" -eq 10 ]
}

@test "CUkernel launches (cuLibrary*): their pointers are seen, an evicted buffer comes back" {
    "$B/progs/kernel_handles" "$MODULE" 8 >"$TMP/bare.out"
    SIMCUDA_MEMORY=1GiB LD_PRELOAD="$PRELOAD" OFFLOAD_BUDGET=24MiB OFFLOAD_STATS="$TMP/stats.json" \
        run "$B/progs/kernel_handles" "$MODULE" 8
    echo "$output"
    [ "$status" -eq 0 ]
    [ "$output" = "$(cat "$TMP/bare.out")" ]
    [ "$output" = "ok 62914560" ]
    # the fourth buffer's fill evicted A; the sum needed it back
    python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); sys.exit(not (d["evictions"] >= 1 and d["restores"] >= 1 and d["launches"] == 5))' "$TMP/stats.json"
}
