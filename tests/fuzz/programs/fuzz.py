"""The differential runner of the program fuzzer.

    fuzz.py test   [--count 200] [--extra 5] [--seed S]   the fixed set + a few from seed S
    fuzz.py fuzz   --seconds N                              random programs until N seconds pass
    fuzz.py replay [CASE...]                                the corpus (default: every case)
    fuzz.py run    SEED [--configs K]                       one program, verbose
    fuzz.py shrink SEED CONFIG_INDEX                        shrink one failing (seed, config)

Each program runs bare (the simulator with ample memory, no liboffload) and then under
liboffload with generated configs: budgets of 25-60% of the bare peak, every policy,
prefetch 0-2. Outcomes are compared: the hash of everything read back must be equal, or
both runs must fail with the same driver error. A run under SIMCUDA_FAIL_RANDOM may fail,
but only with a driver error the program saw ("error LINE CALL CUDA_ERROR_X"), never with
a wrong hash, a signal or a hang. The bare program also runs a second time with slow
copies (SIMCUDA_PCIE_GBPS): a different hash there is a race in the generator, not a
liboffload bug, and is reported as such.

A failure is shrunk (operations removed while it still fails the same way and the
program stays race-free, gen.check_program) and written as a corpus case: the program
with its config and environment in `#@` header lines. The last line of every command is
"N passed, M failed" (tests/run-all reads it).
"""
import argparse
import collections
import concurrent.futures
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gen  # noqa: E402

ROOT = os.path.abspath(os.path.join(HERE, '..', '..', '..'))
BUILD = os.path.join(ROOT, os.environ.get('BUILD', 'build'))
INTERP = os.path.join(BUILD, 'fuzzprog', 'interp')
INTERP_PTDS = os.path.join(BUILD, 'fuzzprog', 'interp_ptds')  # programs whose header says ptds
INTERP_PROC = os.path.join(BUILD, 'fuzzprog', 'interp_proc')  # ... says proc
KMOD = os.path.join(BUILD, 'fuzzprog', 'fuzz_kernels.so')
LIB = os.path.join(BUILD, 'liboffload.so')
CORPUS = os.path.join(HERE, 'corpus')
TIMEOUT = float(os.environ.get('FUZZ_RUN_TIMEOUT', '60'))
CLEAN_ENV = {k: v for k, v in os.environ.items()
             if not k.startswith(('OFFLOAD_', 'SIMCUDA_')) and k != 'LD_PRELOAD'}
# The simulator's race detector is on (kernels declare their read-only parameters, so it
# tells a kernel's reads from its writes): a race in a bare run is a generator bug, one
# only under liboffload is liboffload's. FUZZ_RACECHECK=0 turns it off.
if os.environ.get('FUZZ_RACECHECK') == '0':
    CLEAN_ENV['SIMCUDA_RACECHECK'] = '0'
RACE_LINE = re.compile(r'^simcuda: race: .*$', re.M)
WEIGHTS = gen.parse_weights(os.environ.get('FUZZ_WEIGHTS'))
RACE_CHECK_SHARE = float(os.environ.get('FUZZ_RACE_CHECK', '0.35'))
# FUZZ_STRICT=0: the capture limitation that remains is excused (see known_capture_oom);
# by default every out-of-memory the bare program does not have is a failure.
STRICT = os.environ.get('FUZZ_STRICT', '1') != '0'
CAPTURE_OOM = 'known: capture out of memory'  # one_run's verdict for the capture limitation
RECORD_SHARE = 0.15
# Entry points whose failure reaches liboffload's eviction, restore, prefetch and
# bookkeeping paths as well as the program's own calls (SIMCUDA_FAIL=NAME:N).
TARGETS = ('cuMemCreate', 'cuMemMap', 'cuMemSetAccess', 'cuMemUnmap', 'cuMemRelease', 'cuMemAddressReserve',
           'cuMemcpyDtoHAsync', 'cuMemcpyHtoDAsync', 'cuEventRecord', 'cuStreamWaitEvent', 'cuEventCreate',
           'cuMemHostAlloc', 'cuMemAllocHost', 'cuStreamCreate', 'cuEventSynchronize', 'cuStreamSynchronize',
           'cuEventQuery', 'cuLaunchHostFunc', 'cuMemGetInfo', 'cuFuncGetParamInfo', 'cuGraphInstantiateWithFlags')
# Recorded configs run as written, keep lines too (FUZZ_RECORD_KEEP=0 drops them): a kept
# component no longer takes in unowned allocations (corpus/keep-*absorbs-unowned-oom).
RECORDED_KEEP = os.environ.get('FUZZ_RECORD_KEEP') != '0'
RECORDED = '<recorded>'  # a run whose config is what the record-mode run before it wrote
STATS = collections.Counter()  # outcomes of the runs under liboffload, for the summary


# --- one run ---------------------------------------------------------------------------
def run_program(prog_path, env, tmp, preload=False, tail=3000):
    """Runs the interpreter; returns (outcome, detail, peak bytes). outcome is
    ('hash', H), ('error', LINE, CALL, NAME), ('crash', why) or ('timeout',)."""
    report = os.path.join(tmp, 'sim.json')
    e = dict(CLEAN_ENV)
    e['SIMCUDA_MEMORY'] = '8GiB'
    e['SIMCUDA_REPORT'] = report
    e.update(env)
    if preload:
        e['LD_PRELOAD'] = LIB
    if os.path.exists(report):
        os.unlink(report)
    try:
        with open(prog_path) as f:
            header = f.readline()
        interp = INTERP_PTDS if ' ptds' in header else (INTERP_PROC if ' proc' in header else INTERP)
        p = subprocess.run([interp, prog_path, KMOD], env=e, capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired as ex:
        out = (ex.stdout or b'')[-2000:]
        return ('timeout',), f'no exit after {TIMEOUT:.0f} s {out!r}', 0
    peak = 0
    try:
        with open(report) as f:
            peak = json.load(f).get('peak_device_bytes', 0)
    except (OSError, ValueError):
        pass
    tail = (p.stdout + p.stderr)[-tail:] if tail else p.stdout + p.stderr
    race = RACE_LINE.search(p.stderr)
    if race and race.group(0) not in tail:  # the race line always reaches the caller
        tail = race.group(0) + '\n' + tail
    m = re.search(r'^hash ([0-9a-f]{16})$', p.stdout, re.M)
    if p.returncode == 0 and m:
        return ('hash', m.group(1)), tail, peak
    m = re.search(r'^error (\d+) (.+) (CUDA_ERROR_\w+)$', p.stdout, re.M)
    if p.returncode == 3 and m:
        return ('error', int(m.group(1)), m.group(2), m.group(3)), tail, peak
    why = f'signal {-p.returncode}' if p.returncode < 0 else f'exit {p.returncode}'
    return ('crash', why), tail, peak


def conf_env(conf_text, tmp, extra):
    """The environment of a run under liboffload. `{tmp}` in EXTRA's values is the run's
    temporary folder; every run writes its statistics there (checked in check_stats)."""
    path = os.path.join(tmp, 'offload.conf')
    with open(path, 'w') as f:
        f.write(conf_text)
    env = {'OFFLOAD_CONFIG': path if conf_text.strip() else '', 'OFFLOAD_STATS': os.path.join(tmp, 'stats.json')}
    env.update({k: v.replace('{tmp}', tmp) for k, v in extra.items()})
    stats = env['OFFLOAD_STATS']
    if os.path.exists(stats):
        os.unlink(stats)
    return env


def capture_open_at(text, line):
    """Whether operation LINE (1-based, as the interpreter counts) of program TEXT runs while
    a stream capture is open: between a capbegin and its capend in the same thread, or
    anywhere in a par block one of whose threads captures (threads run at once, so the
    text's order is not the order in time)."""
    lines = text.splitlines()
    open_streams = set()
    par_start = None
    for n, ln in enumerate(lines[:line], 1):
        words = ln.split('#', 1)[0].split()
        if not words:
            continue
        if words[0] == 'par':
            par_start = n
        elif words[0] == 'endpar':
            par_start = None
        elif words[0] == 'capbegin':
            open_streams.add(words[1])
        elif words[0] == 'capend':
            open_streams.discard(words[1])
    if open_streams:
        return True
    if par_start is None:
        return False
    for ln in lines[par_start:]:
        words = ln.split('#', 1)[0].split()
        if words and words[0] == 'endpar':
            return False
        if words and words[0] == 'capbegin':
            return True
    return False


# What liboffload still cannot evict while a capture is open (README.md, Limits), as its
# debug log names it: an allocation used on more streams than it tracks, which only
# cuCtxSynchronize would wait for; or one whose stream is in a capture without a mark (it
# began or joined it before liboffload set up, or recording the mark failed). The
# generator makes neither on purpose; FUZZ_STRICT=0 excuses them.
UNSOLVED_CAPTURE = ('cannot be evicted while a capture is open (cuCtxSynchronize',
                    'cannot be evicted while a capture is open (a stream in a capture that')


def known_capture_oom(text, prog, env, off, tmp):
    """Whether an out-of-memory is the capture limitation that remains (UNSOLVED_CAPTURE):
    the failing call ran while a capture was open, and the run again with liboffload's
    debug log names an allocation it could not evict for one of those reasons. (What a
    capturing stream itself used is evicted: it waits for the work the stream had queued
    when its capture began, corpus/capture-*-oom.)"""
    if off[0] != 'error' or off[3] != 'CUDA_ERROR_OUT_OF_MEMORY' or not capture_open_at(text, off[1]):
        return False
    # Whether it runs out again depends on timing (slow copies make it likelier): what a
    # debug run shows is enough.
    for gbps in (None, '2', '1'):
        e = dict(env, OFFLOAD_LOG='debug')
        if gbps:
            e['SIMCUDA_PCIE_GBPS'] = gbps
        _, detail, _ = run_program(prog, e, tmp, preload=True, tail=None)
        if any(reason in detail for reason in UNSOLVED_CAPTURE):
            return True
    return False


def check_stats(env, off):
    """A run that ended normally wrote a statistics file that is one JSON object."""
    if off[0] != 'hash':
        return None
    try:
        with open(env['OFFLOAD_STATS']) as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        return f'stats file unreadable after a clean exit: {e}'
    return None if isinstance(doc, dict) else 'stats file is not a JSON object'


def verdict(bare, off, faulty):
    """None if OFF is an acceptable outcome given BARE, else why not."""
    if faulty:
        if off[0] == 'hash' and off != bare:
            return f'wrong hash under fault injection: {off[1]} != {bare[1]}'
        if off[0] in ('hash', 'error'):
            return None
        return f'{off[0]} under fault injection ({" ".join(map(str, off[1:]))})'
    if off == bare:
        return None
    if off[0] == 'hash':
        return f'hash {off[1]} != bare {bare[1]}'
    return f'{" ".join(map(str, off))} where bare gave {" ".join(map(str, bare))}'


def race_verdict(detail):
    """Why a run under liboffload fails if the race detector reported a race in it, else
    None. The bare program is race-free, so the race is one liboffload introduced (an
    eviction copy unordered with a kernel, a restore not waited on), with or without fault
    injection: a failed call must not leave liboffload's work unordered either."""
    race = RACE_LINE.search(detail or '')
    return f'race under liboffload: {race.group(0)}' if race else None


def faulty(extra):
    """Whether a run injects driver faults (and so may fail, with a driver error)."""
    return 'SIMCUDA_FAIL_RANDOM' in extra or 'SIMCUDA_FAIL' in extra


def kind_of(why):
    """What a shrunk program must keep failing with: the kind, and the driver error if any."""
    if not why:
        return None
    return (why.split()[0],) + tuple(re.findall(r'CUDA_ERROR_\w+', why)[:1])


# --- a program and its configs ---------------------------------------------------------
def draw_runs(seed, meta, peak, nconf, fault_p):
    """The (config text, extra env, description) list for one program: deterministic in seed."""
    r = random.Random(f'configs-{seed}')
    runs = []
    for _ in range(nconf):
        text, desc, budget = gen.config(meta, r, peak)
        extra = {}
        if r.random() < 0.2:
            # A device hardly larger than the budget: what liboffload does not count
            # (untracked allocations, its pool) makes the driver run out under budget.
            mem = budget + meta['untracked'] + r.randint(1, 4) * gen.MiB
            extra['SIMCUDA_MEMORY'] = str(mem)
            desc += f', device {mem / gen.MiB:.1f} MiB'
        runs.append((text, extra, desc))
    if r.random() < RECORD_SHARE:
        # Record mode must not change results either; then the config it proposes runs.
        runs.append(('', {'OFFLOAD_MODE': 'record', 'OFFLOAD_RECORD': '{tmp}/recorded.conf'}, 'record mode'))
        _, _, budget = gen.config(meta, r, peak)
        runs.append((RECORDED, {'OFFLOAD_BUDGET': str(budget), 'OFFLOAD_MIN_SIZE': str(meta['min_size'])},
                     f'the recorded config, budget {budget / gen.MiB:.1f} MiB'))
    if r.random() < fault_p:
        text, desc, _ = gen.config(meta, r, peak)
        if r.random() < 0.5:
            p = r.choice([0.0005, 0.001, 0.002, 0.005, 0.01, 0.03])
            runs.append((text, {'SIMCUDA_FAIL_RANDOM': f'{p}:{r.randint(1, 1 << 30)}'}, desc + f', FAIL_RANDOM {p}'))
        else:
            # One call of an entry point liboffload's evictions and restores use fails.
            rule = f'{r.choice(TARGETS)}:{r.randint(1, 40)}'
            runs.append((text, {'SIMCUDA_FAIL': rule}, desc + f', FAIL {rule}'))
    return runs


def check_seed(seed, nconf=1, fault_p=0.2, race_check=None):
    """Runs one generated program; returns (runs made, list of failures). A failure is a dict
    with seed, program text, config, env, why."""
    text, meta = gen.generate(seed, WEIGHTS)
    if race_check is None:  # a third of the programs, drawn by seed: they cost a run each
        race_check = random.Random(f'race-{seed}').random() < RACE_CHECK_SHARE
    return check_text(text, meta, seed, nconf, fault_p, race_check)


def check_text(text, meta, seed, nconf, fault_p, race_check):
    failures = []
    with tempfile.TemporaryDirectory(prefix='fuzzprog.') as tmp:
        prog = os.path.join(tmp, 'prog.txt')
        with open(prog, 'w') as f:
            f.write(text)
        bare, detail, peak = run_program(prog, {}, tmp)
        nruns = 1
        race = RACE_LINE.search(detail)
        if race:
            return nruns, [dict(seed=seed, text=text, conf='', env={}, generator=True,
                                why=f'the race detector found a race in the bare program (a generator bug): {race.group(0)}')]
        if bare[0] != 'hash':
            return nruns, [dict(seed=seed, text=text, conf='', env={}, why=f'bare run failed: {bare} {detail}',
                                generator=True)]
        if race_check:
            again, _, _ = run_program(prog, {'SIMCUDA_PCIE_GBPS': '3'}, tmp)
            nruns += 1
            if again != bare:
                return nruns, [dict(seed=seed, text=text, conf='', env={}, generator=True,
                                    why=f'bare runs disagree with slow copies: {again} vs {bare} (a race in the program)')]
        runs = draw_runs(seed, meta, peak, nconf, fault_p)
        for conf, extra, desc in runs:
            if conf == RECORDED:
                # the config record mode wrote in the run before, with a budget
                try:
                    conf = open(os.path.join(tmp, 'recorded.conf')).read()
                    if not RECORDED_KEEP:
                        conf = re.sub(r'^keep = yes$', 'keep = no', conf, flags=re.M)
                except OSError:
                    failures.append(dict(seed=seed, text=text, conf='', env={}, why='crash: record mode wrote no config',
                                         desc=desc, detail='', bare=bare))
                    continue
            why, detail = one_run(text, prog, conf, extra, tmp, bare)
            nruns += 1
            if why == CAPTURE_OOM:
                # The run tested nothing past the capture: again with twice the budget.
                STATS['known: capture out of memory'] += 1
                conf, extra = doubled_budget(conf, extra)
                desc += ', budget doubled after a capture out of memory'
                why, detail = one_run(text, prog, conf, extra, tmp, bare)
                nruns += 1
                if why == CAPTURE_OOM:
                    STATS['known: capture out of memory at twice the budget too'] += 1
                    continue
                if not why:
                    STATS['passed at twice the budget after a capture out of memory'] += 1
            if why:
                failures.append(dict(seed=seed, text=text, conf=conf, env=extra, why=why, desc=desc,
                                     detail=detail, bare=bare))
    return nruns, failures


def one_run(text, prog, conf, extra, tmp, bare):
    """(why it fails or None, detail) of one run under liboffload; why is CAPTURE_OOM for
    the capture limitation that remains, under FUZZ_STRICT=0."""
    env = conf_env(conf, tmp, extra)
    off, detail, _ = run_program(prog, env, tmp, preload=True)
    STATS[('faults ' if faulty(extra) else '') + off[0]] += 1
    # (a run with faults may have made liboffload pass everything through, which
    # writes no statistics: "cannot set up (...); passing every call through")
    why = race_verdict(detail) or verdict(bare, off, faulty(extra)) or (
        None if faulty(extra) else check_stats(env, off))
    if why and not STRICT and known_capture_oom(text, prog, env, off, tmp):
        return CAPTURE_OOM, detail
    return why, detail


def doubled_budget(conf, extra):
    """CONF and EXTRA with twice the budget (a device barely larger than it grows as much)."""
    extra = dict(extra)
    grow = 0
    m = re.search(r'^budget = (\d+)$', conf, re.M)
    if m:
        grow = int(m.group(1))
        conf = conf[:m.start(1)] + str(2 * grow) + conf[m.end(1):]
    if 'OFFLOAD_BUDGET' in extra:
        grow = max(grow, int(extra['OFFLOAD_BUDGET']))
        extra['OFFLOAD_BUDGET'] = str(2 * int(extra['OFFLOAD_BUDGET']))
    if 'SIMCUDA_MEMORY' in extra:
        extra['SIMCUDA_MEMORY'] = str(int(extra['SIMCUDA_MEMORY']) + grow)
    return conf, extra


def check_case_text(text, conf, extra):
    """The verdict (None = pass) of one program under one config: used by shrink and replay."""
    with tempfile.TemporaryDirectory(prefix='fuzzprog.') as tmp:
        prog = os.path.join(tmp, 'prog.txt')
        with open(prog, 'w') as f:
            f.write(text)
        bare, detail, _ = run_program(prog, {}, tmp)
        if bare[0] != 'hash':
            return 'invalid', detail
        if RACE_LINE.search(detail):
            return 'invalid', detail
        off, detail = run_program(prog, conf_env(conf, tmp, extra), tmp, preload=True)[:2]
        return race_verdict(detail) or verdict(bare, off, faulty(extra)), detail


# --- shrinking -------------------------------------------------------------------------
def shrink(text, conf, extra, why, deadline_s=120.0):
    """Removes operations while the failure keeps its kind and the program stays race-free."""
    header, *body = text.splitlines()
    want = kind_of(why)
    start = time.monotonic()
    tries = 0

    def still_fails(lines):
        nonlocal tries
        tries += 1
        cand = header + '\n' + '\n'.join(lines) + '\n'
        try:
            gen.check_program(cand)
        except (gen.RaceError, ValueError, IndexError, KeyError):
            return False
        v, _ = check_case_text(cand, conf, extra)
        return v not in (None, 'invalid') and kind_of(v) == want

    chunk = max(1, len(body) // 2)
    while chunk >= 1 and time.monotonic() - start < deadline_s:
        i, changed = 0, False
        while i < len(body) and time.monotonic() - start < deadline_s:
            cand = body[:i] + body[i + chunk:]
            if cand and still_fails(cand):
                body, changed = cand, True
            else:
                i += chunk
        if not changed:
            chunk //= 2
    return header + '\n' + '\n'.join(body) + '\n', tries


def case_text(text, conf, extra, why, note):
    head = [f'#@why {why}', f'#@note {note}']
    head += [f'#@env {k}={v}' for k, v in sorted(extra.items())]
    head += [f'#@conf {line}' for line in conf.splitlines()]
    first, rest = text.split('\n', 1)
    return first + '\n' + '\n'.join(head) + '\n' + rest


def parse_case(path):
    text = open(path).read()
    conf = '\n'.join(m for m in re.findall(r'^#@conf (.*)$', text, re.M)) + '\n'
    extra = dict(kv.split('=', 1) for kv in re.findall(r'^#@env (.*)$', text, re.M))
    xfail = re.search(r'^#@xfail (.*)$', text, re.M)
    return text, conf, extra, xfail.group(1) if xfail else None


def save_failure(f, where, do_shrink=True):
    os.makedirs(where, exist_ok=True)
    text, tries = f['text'], 0
    if do_shrink and not f.get('generator'):
        text, tries = shrink(f['text'], f['conf'], f['env'], f['why'])
    name = f'seed{f["seed"]}-{"-".join(kind_of(f["why"])).lower()}.prog'
    path = os.path.join(where, name)
    note = f.get('desc', '') + (f'; shrunk from {len(f["text"].splitlines())} to {len(text.splitlines())} lines'
                                f' in {tries} tries' if tries else '')
    with open(path, 'w') as out:
        out.write(case_text(text, f['conf'], f['env'], f['why'], note))
    return path


def report_failure(f, path=None):
    print(f'FAIL seed {f["seed"]}: {f["why"]}')
    if f.get('desc'):
        print(f'     config: {f["desc"]}')
    for line in (f.get('detail') or '').strip().splitlines()[-6:]:
        print(f'     | {line}')
    if path:
        print(f'     saved: {os.path.relpath(path, ROOT)}')


# --- self-test: the runner and the checker can fail ------------------------------------
# Buffer 0 is written after its first eviction; `readonly = yes` on it is a lie that loses
# that write (its second eviction copies nothing back), `readonly = no` is the truth.
# Buffers 1 and 2 are a component of their own, so that buffer 0 goes whole at each switch
# whatever rule picks victims inside a component (inside one, the launch before's buffer
# is now the farthest-next-use victim and buffer 0 was evicted only once).
SELFTEST_PROG = """fuzzprog 1 seed=0
stream 3 0 0
alloc 0 2097152
launch 0 0 0 3 2 64 0 0 524288 7 # init
alloc 1 2097152
launch 0 1 0 3 2 64 1 0 524288 9 # init
alloc 2 2097152
launch 0 2 0 3 2 64 2 0 524288 11 # init
launch 0 0 0 3 2 64 0 0 524288 13
launch 0 1 1 3 2 64 1 0 2 0 524288 5
ssync 3
d2h 1 0 2097152 3 0 0
d2h 2 0 2097152 3 0 0
d2h 0 0 2097152 3 0 0
unstream 3
"""
SELFTEST_CONF = """[offload]
policy = lru
prefetch = 0
min_size = 262144
budget = 4194304
[component w]
allocs = 0
readonly = %s
[component x]
allocs = 1-2
"""
# Two streams, the second writes what the first wrote with no event between: a race.
SELFTEST_RACE = """fuzzprog 1 seed=0
stream 3 0 0
stream 4 0 0
alloc 0 2097152
launch 0 0 0 3 2 64 0 0 524288 7 # init
launch 0 0 0 4 2 64 0 0 524288 9
"""

# Stream-ordered allocation: the allocation and the free are accesses of the whole buffer
# on their streams. Each program breaks one rule the checker enforces: the init on another
# stream before the allocation is ordered before it (a race the simulator sees too), the
# free on another stream before the last use is ordered before it, a use after the free.
SELFTEST_POOL_HEAD = """fuzzprog 1 seed=0
stream 3 0 0
stream 4 1 0
allocasync 0 2097152 3 0
"""
SELFTEST_POOL_BAD = {
    'init unordered with the allocation': SELFTEST_POOL_HEAD + "launch 0 0 0 4 2 64 0 0 524288 7 # init\n",
    'free unordered with a use': SELFTEST_POOL_HEAD + """launch 0 0 0 3 2 64 0 0 524288 7 # init
freeasync 0 4
""",
    'use after the free': SELFTEST_POOL_HEAD + """launch 0 0 0 3 2 64 0 0 524288 7 # init
freeasync 0 3
launch 0 0 0 3 2 64 0 0 524288 9
""",
}
SELFTEST_POOL_GOOD = SELFTEST_POOL_HEAD + """record 0 3
wait 4 0
launch 0 0 0 4 2 64 0 0 524288 7 # init
record 1 4
wait 3 1
freeasync 0 3
ssync 3
unstream 3
ssync 4
unstream 4
"""


# Lines 4 and 9 run inside a capture (9: a par block one of whose threads captures), 6 and
# 15 do not.
SELFTEST_CAPTURE = """fuzzprog 1 seed=0
stream 3 0 0
capbegin 3 1
launch 0 0 0 3 2 64 0 0 524288 7
capend 3 0
launch 0 0 0 3 2 64 0 0 524288 7
par
thread 0
memset 32 0 0 4 1 0 0
thread 1
capbegin 4 1
capend 4 1
endpar
launch 0 0 0 3 2 64 0 0 524288 7
"""


def selftest():
    """Errors of the fuzzer itself: a lost write must be seen, a race must be refused."""
    errors = []
    lie, _ = check_case_text(SELFTEST_PROG, SELFTEST_CONF % 'yes', {})
    if not lie or not lie.startswith('hash'):
        errors.append(f'a lost write (readonly = yes on a written buffer) was not seen: {lie}')
    truth, detail = check_case_text(SELFTEST_PROG, SELFTEST_CONF % 'no', {})
    if truth:
        errors.append(f'the self-test program fails with readonly = no: {truth} {detail}')
    try:
        gen.check_program(SELFTEST_RACE)
        errors.append('the checker accepted a race')
    except gen.RaceError:
        pass
    for what, prog in SELFTEST_POOL_BAD.items():
        try:
            gen.check_program(prog)
            errors.append(f'the checker accepted a stream-ordered program with the {what}')
        except (gen.RaceError, ValueError):
            pass
    try:
        gen.check_program(SELFTEST_POOL_GOOD)
    except (gen.RaceError, ValueError) as e:
        errors.append(f'the checker refused a race-free stream-ordered program: {e}')
    inside = [n for n in (4, 6, 9, 15) if capture_open_at(SELFTEST_CAPTURE, n)]
    if inside != [4, 9]:
        errors.append(f'capture_open_at: lines {inside} inside a capture, not [4, 9]')
    with tempfile.TemporaryDirectory(prefix='fuzzprog.') as tmp:
        prog = os.path.join(tmp, 'race.txt')
        with open(prog, 'w') as f:
            f.write(SELFTEST_RACE)
        _, detail, _ = run_program(prog, {}, tmp)
        if not RACE_LINE.search(detail):
            errors.append(f'the simulator\'s race detector did not see the race: {detail.strip()[-300:]}')
        with open(prog, 'w') as f:
            f.write(SELFTEST_POOL_BAD['init unordered with the allocation'])
        out, detail, _ = run_program(prog, {}, tmp)
        # a race line, or the kernel ran before the allocation and faulted (timing decides)
        if not RACE_LINE.search(detail) and out[-1:] != ('CUDA_ERROR_ILLEGAL_ADDRESS',):
            errors.append(f'the simulator did not see an init unordered with its allocation: {detail.strip()[-300:]}')
        with open(prog, 'w') as f:
            f.write(SELFTEST_POOL_GOOD)
        out, detail, _ = run_program(prog, {}, tmp)
        if out[0] != 'hash' or RACE_LINE.search(detail):
            errors.append(f'the race-free stream-ordered program failed: {out} {detail.strip()[-300:]}')
    gen.check_program(SELFTEST_PROG)
    for e in errors:
        print(f'FAIL selftest: {e}')
    if not errors:
        print('ok   selftest: a wrong readonly loses a write and is caught; a race is refused by the checker, '
              'seen by the simulator; so are stream-ordered allocations and frees out of order; captures are '
              'found open where they are')
    return not errors


# --- commands --------------------------------------------------------------------------
def run_seeds(seeds, nconf, fault_p, jobs, where, do_shrink, deadline=None):
    runs = programs = 0
    failed = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        pending = set()
        it = iter(seeds)
        done_feeding = False
        while pending or not done_feeding:
            while not done_feeding and len(pending) < 2 * jobs:
                if deadline and time.monotonic() > deadline:
                    done_feeding = True
                    break
                try:
                    s = next(it)
                except StopIteration:
                    done_feeding = True
                    break
                pending.add(pool.submit(check_seed, s, nconf, fault_p))
            if not pending:
                break
            done, pending = concurrent.futures.wait(pending, return_when=concurrent.futures.FIRST_COMPLETED)
            for fut in done:
                n, fails = fut.result()
                runs += n
                programs += 1
                for f in fails:
                    path = save_failure(f, where, do_shrink) if where else None
                    report_failure(f, path)
                    failed.append(f)
    return programs, runs, failed


def stats_line():
    return 'fuzzprog: runs under liboffload: ' + ', '.join(f'{k} {v}' for k, v in sorted(STATS.items()))


def cmd_test(a):
    start = time.monotonic()
    seed = a.seed if a.seed is not None else random.SystemRandom().randint(1, 1 << 31)
    print(f'fuzzprog: {a.count} fixed programs (seeds 1-{a.count}) + {a.extra} from seed {seed} '
          f'(reproduce: FUZZ_SEED={seed} make test, or fuzz.py test --count 0 --seed {seed})')
    seeds = list(range(1, a.count + 1)) + [seed * 1000 + i for i in range(a.extra)]
    where = os.path.join(BUILD, 'fuzzprog', 'found')
    programs, runs, failed = run_seeds(seeds, 1, 0.15, a.jobs, where, a.shrink)
    el = time.monotonic() - start
    print(f'fuzzprog: {programs} programs, {runs} runs in {el:.1f} s ({programs / el:.1f} programs/s), '
          f'{len(failed)} failures')
    print(stats_line())
    p, f = replay(None)
    if selftest():
        p += 1
    else:
        f += 1
    print(f'{programs - len({x["seed"] for x in failed}) + p} passed, {len({x["seed"] for x in failed}) + f} failed')
    return 1 if failed or f else 0


def cmd_fuzz(a):
    start = time.monotonic()
    first = a.seed if a.seed is not None else random.SystemRandom().randint(1, 1 << 40)
    print(f'fuzzprog: fuzzing for {a.seconds} s from seed {first}, {a.jobs} jobs; failures go to '
          f'{os.path.relpath(a.corpus, ROOT)}')
    seeds = (first + i for i in range(1 << 62))
    programs, runs, failed = run_seeds(seeds, a.configs, a.faults, a.jobs, a.corpus, True,
                                       deadline=start + a.seconds)
    el = time.monotonic() - start
    print(f'fuzzprog: {programs} programs, {runs} runs in {el:.0f} s: {programs / el:.2f} programs/s, '
          f'{runs / el:.2f} runs/s; {len(failed)} failures'
          + (f' (seeds {", ".join(str(f["seed"]) for f in failed)})' if failed else ''))
    print(stats_line())
    print(f'{programs - len({x["seed"] for x in failed})} passed, {len({x["seed"] for x in failed})} failed')
    return 1 if failed else 0


def replay(paths):
    paths = paths or sorted(os.path.join(CORPUS, p) for p in os.listdir(CORPUS) if p.endswith('.prog'))
    passed = failed = 0
    for path in paths:
        text, conf, extra, xfail = parse_case(path)
        v, detail = check_case_text(text, conf, extra)
        name = os.path.relpath(path, ROOT)
        if v == 'invalid':
            print(f'FAIL {name}: the bare run fails: {detail.strip()[-300:]}')
            failed += 1
        elif v and xfail:
            print(f'xfail {name}: {v} (known: {xfail})')
            passed += 1
        elif v:
            print(f'FAIL {name}: {v}')
            for line in detail.strip().splitlines()[-6:]:
                print(f'     | {line}')
            failed += 1
        else:
            print(f'ok   {name}' + (f' (marked xfail: {xfail}; fixed? remove the #@xfail line)' if xfail else ''))
            passed += 1
    return passed, failed


def cmd_replay(a):
    p, f = replay(a.cases)
    print(f'{p} passed, {f} failed')
    return 1 if f else 0


def cmd_run(a):
    text, meta = gen.generate(a.seed, WEIGHTS)
    print(text if a.print else f'{len(text.splitlines())} lines, {len(meta["tracked"])} tracked allocations, '
          f'footprint {meta["max_footprint"]}')
    n, fails = check_seed(a.seed, a.configs, 1.0 if a.faults else 0.0)
    for f in fails:
        report_failure(f)
    print(f'{n} runs; {1 - bool(fails)} passed, {int(bool(fails))} failed')
    return 1 if fails else 0


def cmd_shrink(a):
    text, meta = gen.generate(a.seed, WEIGHTS)
    with tempfile.TemporaryDirectory() as tmp:
        prog = os.path.join(tmp, 'p')
        open(prog, 'w').write(text)
        _, _, peak = run_program(prog, {}, tmp)
    conf, extra, desc = draw_runs(a.seed, meta, peak, a.configs, 1.0 if a.faults else 0.0)[a.index]
    v, detail = check_case_text(text, conf, extra)
    if not v:
        print('passes: nothing to shrink')
        return 0
    path = save_failure(dict(seed=a.seed, text=text, conf=conf, env=extra, why=v, desc=desc, detail=detail), a.corpus)
    print(f'{v}\nsaved {path}')
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest='cmd', required=True)
    jobs = int(os.environ.get('FUZZ_JOBS', '2'))
    t = sub.add_parser('test')
    t.add_argument('--count', type=int, default=200)
    t.add_argument('--extra', type=int, default=5)
    t.add_argument('--seed', type=int, default=int(os.environ['FUZZ_SEED']) if os.environ.get('FUZZ_SEED') else None)
    t.add_argument('--jobs', type=int, default=jobs)
    t.add_argument('--no-shrink', dest='shrink', action='store_false')
    f = sub.add_parser('fuzz')
    f.add_argument('--seconds', type=float, default=60)
    f.add_argument('--seed', type=int)
    f.add_argument('--configs', type=int, default=3)
    f.add_argument('--jobs', type=int, default=jobs)
    f.add_argument('--corpus', default=CORPUS)
    f.add_argument('--faults', type=float, default=0.4, help='share of programs with a fault-injection run')
    r = sub.add_parser('replay')
    r.add_argument('cases', nargs='*')
    o = sub.add_parser('run')
    o.add_argument('seed', type=int)
    o.add_argument('--configs', type=int, default=3)
    o.add_argument('--faults', action='store_true')
    o.add_argument('--print', action='store_true')
    s = sub.add_parser('shrink')
    s.add_argument('seed', type=int)
    s.add_argument('index', type=int)
    s.add_argument('--configs', type=int, default=3)
    s.add_argument('--faults', action='store_true')
    s.add_argument('--corpus', default=CORPUS)
    a = ap.parse_args()
    return {'test': cmd_test, 'fuzz': cmd_fuzz, 'replay': cmd_replay, 'run': cmd_run, 'shrink': cmd_shrink}[a.cmd](a)


if __name__ == '__main__':
    sys.exit(main())
