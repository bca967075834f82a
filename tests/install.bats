#!/usr/bin/env bats
# make install / make uninstall (issue 18, item 3): PREFIX and DESTDIR, the files and
# their modes, and the installed offload running the pipeline with the installed library.

setup_file() {
    export ROOT=${ROOT:-$(cd "$BATS_TEST_DIRNAME/.." && pwd)}
    export BUILD=${BUILD:-build}
    [[ $BUILD == /* ]] || BUILD=$ROOT/$BUILD
    unset LD_PRELOAD OFFLOAD_CONFIG OFFLOAD_BUDGET OFFLOAD_STATS OFFLOAD_TRACE OFFLOAD_LOG \
        OFFLOAD_LIBRARY OFFLOAD_SUMMARY OFFLOAD_MODE SIMCUDA_FAIL SIMCUDA_FAIL_RANDOM
}

setup() {
    T=$BATS_TEST_TMPDIR
    STAGE=$T/stage
    P=$STAGE/opt/lo
}

installed_files() {
    echo "$P/bin/offload $P/lib/liboffload.so $P/share/man/man1/offload.1" \
        "$P/share/doc/liboffload/README.md $P/share/doc/liboffload/config-reference.md" \
        "$P/share/doc/liboffload/offload.conf.example"
}

do_make() {
    # the targets are up to date: installing copies, it never rebuilds
    make -s -C "$ROOT" BUILD="$BUILD" PREFIX=/opt/lo DESTDIR="$STAGE" "$@"
}

@test "install: PREFIX and DESTDIR place the command, the library, the man page and the docs" {
    run do_make install
    [ "$status" -eq 0 ]
    for f in $(installed_files); do
        [ -f "$f" ]
    done
    [ "$(stat -c %a "$P/bin/offload")" = 755 ]
    [ "$(stat -c %a "$P/lib/liboffload.so")" = 755 ]
    [ "$(stat -c %a "$P/share/man/man1/offload.1")" = 644 ]
    cmp "$P/lib/liboffload.so" "$BUILD/liboffload.so"
    cmp "$P/share/doc/liboffload/offload.conf.example" "$ROOT/examples/pipeline/offload.conf"
    cmp "$P/share/doc/liboffload/config-reference.md" "$ROOT/config/README.md"
    # nothing outside DESTDIR/PREFIX
    [ "$(find "$STAGE" -type f | wc -l)" -eq 6 ]
    run groff -ww -man -z "$P/share/man/man1/offload.1"
    [ "$status" -eq 0 ]
    [ -z "$output" ]
}

@test "install: the installed offload runs the pipeline with the installed library" {
    do_make install
    # the installed command finds ../lib/liboffload.so beside its bin/, not the build's
    run "$P/bin/offload" run -- sh -c 'echo "$LD_PRELOAD"'
    [ "$status" -eq 0 ]
    [ "${lines[0]}" = "$P/lib/liboffload.so" ]
    LD_LIBRARY_PATH=$BUILD/sim SIMCUDA_MEMORY=8GiB "$BUILD/pipeline" --scale 0.3 --quiet \
        --out "$T/ample.png" >"$T/ample.out"
    LD_LIBRARY_PATH=$BUILD/sim SIMCUDA_MEMORY=256MiB run bash -c "'$P/bin/offload' run \
        --config '$P/share/doc/liboffload/offload.conf.example' --trace '$T/trace.json' -- \
        '$BUILD/pipeline' --scale 0.3 --quiet --out '$T/p.png' 2>'$T/err'"
    [ "$status" -eq 0 ]
    [ "$output" = "$(cat "$T/ample.out")" ]
    cmp "$T/p.png" "$T/ample.png"
    grep -qE '^[0-9]+ evictions, [0-9]+ restores ' "$T/err"
    run "$P/bin/offload" plot "$T/trace.json" -o "$T/timeline.svg"
    [ "$status" -eq 0 ]
    [ -s "$T/timeline.svg" ]
    run "$P/bin/offload" --version
    [[ $output == "offload "* ]]
}

@test "install: uninstall removes every installed file and the doc folder, nothing else" {
    do_make install
    mkdir -p "$P/share/man/man1" && echo keep >"$P/share/man/man1/other.1"
    run do_make uninstall
    [ "$status" -eq 0 ]
    for f in $(installed_files); do
        [ ! -e "$f" ]
    done
    [ ! -d "$P/share/doc/liboffload" ]
    [ "$(cat "$P/share/man/man1/other.1")" = keep ]
    # uninstalling twice is not an error
    run do_make uninstall
    [ "$status" -eq 0 ]
}
