#!/usr/bin/env bats
# offload.conf and the OFFLOAD_* environment, end to end: liboffload's constructor reads
# the configuration before main; a mistake stops any program there with exactly one
# "PATH:LINE: message" (or "OFFLOAD_X: message") line on stderr and exit status 2, and
# main never runs. A valid configuration lets the program run untouched.

bats_require_minimum_version 1.5.0

setup() {
    B=$BUILD
    [[ $B == /* ]] || B=$ROOT/$BUILD
    LIB=$B/liboffload.so
    [ -f "$LIB" ]
    unset LD_PRELOAD OFFLOAD_CONFIG OFFLOAD_SEQUENCE OFFLOAD_POLICY OFFLOAD_BUDGET \
        OFFLOAD_PREFETCH OFFLOAD_MIN_SIZE OFFLOAD_LOG OFFLOAD_STATS OFFLOAD_MODE \
        OFFLOAD_RECORD OFFLOAD_DRIVER
    cd "$BATS_TEST_TMPDIR"
}

# preload [VAR=VALUE...]: a shell whose "main" prints "main ran", liboffload preloaded.
preload() {
    run --separate-stderr env "$@" LD_PRELOAD="$LIB" /bin/sh -c 'echo main ran'
    echo "status: $status"
    echo "stdout: $output"
    echo "stderr: $stderr"
}

# expect_error MESSAGE [VAR=VALUE...]: stopped before main with exactly MESSAGE.
expect_error() {
    local message=$1
    shift
    preload "$@"
    [ "$status" -eq 2 ]
    [ "$stderr" = "$message" ]
    [ "$output" = "" ]
}

expect_runs() {
    preload "$@"
    [ "$status" -eq 0 ]
    [ "$output" = "main ran" ]
}

pipeline_conf() {
    cat <<'CONF'
[offload]
sequence = text_encoder -> unet -> vae
[component text_encoder]
allocs = 0-12
[component unet]
allocs = 13-28
[component vae]
allocs = 29-36
CONF
}

# --- valid configurations ---------------------------------------------------------------

@test "the pipeline's offload.conf runs the program" {
    expect_runs OFFLOAD_CONFIG="$ROOT/examples/pipeline/offload.conf"
}

@test "no configuration at all runs the program" {
    expect_runs
}

@test "every key of the grammar in one file runs the program" {
    cat >all.conf <<'CONF'
# comment
[offload]
sequence = a -> b -> a -> c   # trailing comment
policy = budget
budget = 1.5 GiB
prefetch = 2
min_size = 512KiB
log = error
stats = stats.json
record = recorded.conf
mode = run

[component a]
allocs = 0-11, 14, 20-30
kernels = gemm_*, attn[0-9]*
keep = yes
readonly = auto
[component b]
allocs = 12-13
readonly = yes
[ component c ]
keep = no
CONF
    expect_runs OFFLOAD_CONFIG=all.conf
}

# --- where the file comes from ----------------------------------------------------------

@test "./offload.conf in the working directory is read" {
    printf '[offload]\nprefech = 1\n' >offload.conf
    expect_error "offload.conf:2: unknown key 'prefech' in [offload] (did you mean 'prefetch'?)"
}

@test "OFFLOAD_CONFIG wins over ./offload.conf" {
    printf '[offload]\nprefech = 1\n' >offload.conf
    pipeline_conf >good.conf
    expect_runs OFFLOAD_CONFIG=good.conf
}

@test "an empty OFFLOAD_CONFIG reads no file, not even ./offload.conf" {
    printf '[offload]\nprefech = 1\n' >offload.conf
    expect_runs OFFLOAD_CONFIG=
}

@test "OFFLOAD_CONFIG naming a missing file stops the program" {
    expect_error "OFFLOAD_CONFIG: cannot open 'x.conf': No such file or directory" \
        OFFLOAD_CONFIG=x.conf
}

@test "an OFFLOAD_CONFIG naming a directory stops the program" {
    mkdir dir.conf
    expect_error "OFFLOAD_CONFIG: cannot read 'dir.conf': Is a directory" OFFLOAD_CONFIG=dir.conf
}

# --- every error class in the file ------------------------------------------------------

@test "unknown key, with a suggestion" {
    cat >offload.conf <<'CONF'
# the pipeline
[offload]
sequence = text_encoder -> unet -> vae
policy = sequence

# read ahead
prefech = 1
CONF
    expect_error "offload.conf:7: unknown key 'prefech' in [offload] (did you mean 'prefetch'?)"
}

@test "unknown key without a close match lists the keys" {
    printf '[component unet]\nallocs = 0-3\nweights = all\n' >bad.conf
    expect_error "bad.conf:3: unknown key 'weights' in [component unet] (expected allocs, indirect, kernels, keep, order or readonly)" \
        OFFLOAD_CONFIG=bad.conf
}

@test "a key in the wrong section" {
    printf '[component unet]\nprefetch = 2\n' >bad.conf
    expect_error "bad.conf:2: key 'prefetch' belongs in [offload], not in [component unet]" \
        OFFLOAD_CONFIG=bad.conf
}

@test "unknown section, with a suggestion" {
    printf '[offload]\nprefetch = 1\n[componnet unet]\n' >bad.conf
    expect_error "bad.conf:3: unknown section [componnet unet] (did you mean [component unet]?)" \
        OFFLOAD_CONFIG=bad.conf
}

@test "unknown section without a close match" {
    printf '[models]\n' >bad.conf
    expect_error "bad.conf:1: unknown section [models] (expected [offload] or [component NAME])" \
        OFFLOAD_CONFIG=bad.conf
}

@test "key outside any section" {
    printf '# header\nbudget = 1GiB\n[offload]\n' >bad.conf
    expect_error "bad.conf:2: key 'budget' outside any section (put it under [offload] or [component NAME])" \
        OFFLOAD_CONFIG=bad.conf
}

@test "a line that is neither a key nor a section" {
    printf '[offload]\nprefetch 2\n' >bad.conf
    expect_error "bad.conf:2: expected 'key = value' or a [section] header, got 'prefetch 2'" \
        OFFLOAD_CONFIG=bad.conf
}

@test "unterminated section header" {
    printf '[offload]\n[component unet\n' >bad.conf
    expect_error "bad.conf:2: unterminated section header (missing ']')" OFFLOAD_CONFIG=bad.conf
}

@test "malformed size" {
    printf '[offload]\nbudget = 12XB\n' >bad.conf
    expect_error "bad.conf:2: malformed size '12XB' (expected bytes, KiB/MiB/GiB or N%)" \
        OFFLOAD_CONFIG=bad.conf
    printf '[offload]\nmin_size = -1\n' >bad.conf
    expect_error "bad.conf:2: malformed size '-1' (expected bytes, KiB/MiB/GiB or N%)" \
        OFFLOAD_CONFIG=bad.conf
    printf '[offload]\nbudget = 150%%\n' >bad.conf
    expect_error "bad.conf:2: size '150%' out of range (expected 0 < N% <= 100)" \
        OFFLOAD_CONFIG=bad.conf
    printf '[offload]\nbudget = 99999999TiB\n' >bad.conf
    expect_error "bad.conf:2: size '99999999TiB' is too large" OFFLOAD_CONFIG=bad.conf
}

@test "malformed ranges" {
    printf '[component unet]\nallocs = 0-3, 5-3\n' >bad.conf
    expect_error "bad.conf:2: descending range '5-3' (write 3-5)" OFFLOAD_CONFIG=bad.conf
    printf '[component unet]\nallocs = 0-3, x\n' >bad.conf
    expect_error "bad.conf:2: malformed range 'x' (expected N, N-M or N-)" OFFLOAD_CONFIG=bad.conf
}

@test "malformed glob" {
    printf '[component unet]\nkernels = unet_*, attn[12\n' >bad.conf
    expect_error "bad.conf:2: malformed glob 'attn[12' (unbalanced '[')" OFFLOAD_CONFIG=bad.conf
}

@test "malformed boolean and readonly value" {
    printf '[component unet]\nkeep = maybe\n' >bad.conf
    expect_error "bad.conf:2: unknown boolean 'maybe' (expected yes or no)" OFFLOAD_CONFIG=bad.conf
    printf '[component unet]\nreadonly = sometimes\n' >bad.conf
    expect_error "bad.conf:2: unknown readonly value 'sometimes' (expected yes, no or auto)" \
        OFFLOAD_CONFIG=bad.conf
}

@test "malformed number and enumerations" {
    printf '[offload]\nprefetch = -1\n' >bad.conf
    expect_error "bad.conf:2: malformed number '-1' (expected an integer >= 0)" \
        OFFLOAD_CONFIG=bad.conf
    printf '[offload]\npolicy = sequnce\n' >bad.conf
    expect_error "bad.conf:2: unknown policy 'sequnce' (did you mean 'sequence'?)" \
        OFFLOAD_CONFIG=bad.conf
    printf '[offload]\nlog = verbose\n' >bad.conf
    expect_error "bad.conf:2: unknown log level 'verbose' (expected error, warn, info or debug)" \
        OFFLOAD_CONFIG=bad.conf
}

@test "duplicate component" {
    printf '[component unet]\nallocs = 0-3\n[component vae]\n[component unet]\n' >bad.conf
    expect_error "bad.conf:4: duplicate component 'unet' (first declared at line 1)" \
        OFFLOAD_CONFIG=bad.conf
}

@test "duplicate key" {
    printf '[offload]\nprefetch = 1\nlog = info\nprefetch = 2\n' >bad.conf
    expect_error "bad.conf:4: duplicate key 'prefetch' in [offload] (first set at line 2)" \
        OFFLOAD_CONFIG=bad.conf
}

@test "sequence naming an undeclared component" {
    printf '[offload]\nsequence = text_encoder -> unte\n[component text_encoder]\n[component unet]\n' >bad.conf
    expect_error "bad.conf:2: sequence names undeclared component 'unte' (did you mean 'unet'?)" \
        OFFLOAD_CONFIG=bad.conf
    printf '[offload]\nsequence = a -> decoder\n[component a]\n' >bad.conf
    expect_error "bad.conf:2: sequence names undeclared component 'decoder' (declare it with [component decoder])" \
        OFFLOAD_CONFIG=bad.conf
}

@test "a sequence with a component twice in a row, or empty" {
    printf '[offload]\nsequence = a -> a\n[component a]\n' >bad.conf
    expect_error "bad.conf:2: component 'a' twice in a row in sequence 'a -> a'" \
        OFFLOAD_CONFIG=bad.conf
    printf '[offload]\nsequence =\n' >bad.conf
    expect_error "bad.conf:2: empty sequence" OFFLOAD_CONFIG=bad.conf
}

@test "overlapping allocs of two components" {
    cat >offload.conf <<'CONF'
[offload]
sequence = text_encoder -> unet

[component text_encoder]
allocs = 0-11

# the unet's weights
# follow the encoder's

[component unet]
kernels = unet_*
allocs = 10-14
CONF
    expect_error "offload.conf:12: allocs 10-14 of 'unet' overlap allocs 0-11 of 'text_encoder' (line 5)"
}

@test "an order naming another component's allocation, and one that runs" {
    cat >offload.conf <<'CONF'
[component text_encoder]
allocs = 0-11

[component unet]
order = 12-14, 11
allocs = 12-20
CONF
    expect_error "offload.conf:5: order of 'unet' names allocation 11, which its allocs do not own"
    printf '[component unet]\norder = 14-12, 20\nallocs = 12-20\n' >offload.conf
    expect_runs
    printf '[component unet]\nallocs = 12-20\norder = 12, 13, 12\n' >offload.conf
    expect_error "offload.conf:3: allocation 12 twice in order"
}

@test "a policy that needs a sequence" {
    printf '[offload]\npolicy = budget\n' >bad.conf
    expect_error "bad.conf:2: policy 'budget' needs a sequence" OFFLOAD_CONFIG=bad.conf
}

# --- the environment --------------------------------------------------------------------

@test "OFFLOAD_BUDGET=12XB stops the program" {
    expect_error "OFFLOAD_BUDGET: malformed size '12XB' (expected bytes, KiB/MiB/GiB or N%)" \
        OFFLOAD_BUDGET=12XB
}

@test "OFFLOAD_SEQUENCE naming a missing component stops the program" {
    pipeline_conf >offload.conf
    expect_error "OFFLOAD_SEQUENCE: sequence names undeclared component 'decoder' (declare it with [component decoder])" \
        OFFLOAD_SEQUENCE="unet -> decoder"
    expect_error "OFFLOAD_SEQUENCE: sequence names undeclared component 'vea' (did you mean 'vae'?)" \
        OFFLOAD_SEQUENCE="unet -> vea"
}

@test "every OFFLOAD_* variable is checked under its own name" {
    expect_error "OFFLOAD_POLICY: unknown policy 'belady' (expected sequence, budget or lru)" \
        OFFLOAD_POLICY=belady
    expect_error "OFFLOAD_PREFETCH: malformed number 'many' (expected an integer >= 0)" \
        OFFLOAD_PREFETCH=many
    expect_error "OFFLOAD_MIN_SIZE: malformed size '1 XiB' (expected bytes, KiB/MiB/GiB or N%)" \
        OFFLOAD_MIN_SIZE="1 XiB"
    expect_error "OFFLOAD_LOG: unknown log level 'trace' (expected error, warn, info or debug)" \
        OFFLOAD_LOG=trace
    expect_error "OFFLOAD_MODE: unknown mode 'recrd' (did you mean 'record'?)" OFFLOAD_MODE=recrd
    expect_error "OFFLOAD_SEQUENCE: empty name in sequence 'a ->'" OFFLOAD_SEQUENCE="a ->"
    expect_error "OFFLOAD_POLICY: policy 'sequence' needs a sequence" OFFLOAD_POLICY=sequence
}

@test "the environment overrides the file key by key" {
    # the file alone is incomplete (budget policy, no sequence); the environment completes it
    printf '[offload]\npolicy = budget\nprefetch = 9\n[component a]\n[component b]\n' >offload.conf
    expect_error "offload.conf:2: policy 'budget' needs a sequence"
    expect_runs OFFLOAD_SEQUENCE="b -> a"
    # and replaces what the file says
    pipeline_conf >offload.conf
    expect_runs OFFLOAD_SEQUENCE="vae -> unet" OFFLOAD_POLICY=budget OFFLOAD_BUDGET=50% \
        OFFLOAD_PREFETCH=0 OFFLOAD_MIN_SIZE=2MiB OFFLOAD_LOG=error OFFLOAD_STATS=s.json \
        OFFLOAD_RECORD=r.conf OFFLOAD_MODE=run
}

@test "an empty OFFLOAD_* variable counts as unset" {
    expect_runs OFFLOAD_BUDGET= OFFLOAD_PREFETCH= OFFLOAD_SEQUENCE=
}

@test "file errors come before environment errors" {
    printf '[offload]\nbugdet = 1GiB\n' >offload.conf
    expect_error "offload.conf:2: unknown key 'bugdet' in [offload] (did you mean 'budget'?)" \
        OFFLOAD_BUDGET=12XB
}
