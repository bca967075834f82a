"""Random race-free driver-API programs from a seed, and configs to run them under.

    python3 gen.py SEED            print the program of SEED
    python3 gen.py --check FILE    exit 1 (and say where) if FILE is not race-free

A program is the text interp.c runs (grammar in README.md). generate(seed) returns it with
`meta`: what a config needs to know (tracked allocation ordinals, their sizes, which
kernel groups use them, which are never written after their first write, the largest
footprint of one operation). configs(meta, rng) draws the configurations fuzz.py runs.

Every operation goes through emit(), which asks model.Model what it would race with and
first emits the events, waits or synchronizes that order it: the program is race-free by
construction, and check_program() verifies any program (a shrunk one) the same way.
"""
import random
import sys

from model import Model, RaceError

MiB = 1 << 20
KiB = 1 << 10
GROUPS = 4
KERNELS = ('fill', 'mix', 'mix3', 'smix')

# Weights of what a program does. FUZZ_WEIGHTS="struct=3,threads=0" overrides them.
# `struct` (pointers inside a by-value struct, g*_smix) is 0 by default: liboffload only
# sees pointer parameters today (issue 13 item 1); raise it once it sees inside structs.
DEFAULT_WEIGHTS = {
    'kernel': 30, 'struct': 20, 'interior': 30, 'extra': 20, 'launch_ex': 20,
    'memset': 8, 'memset2d': 4, 'h2d': 8, 'd2d': 8, 'd2h': 10, 'copy2d': 4, 'copy3d': 3,
    'batch': 3, 'realloc': 4, 'allocinfo': 3, 'small': 25, 'sync': 6, 'query': 2,
    'graph': 4, 'threads': 5, 'stream': 2,
    # A capture on a stream that already ran work on tracked buffers (or captured before):
    # what that stream used is evicted while it captures after the work it had queued when
    # its capture began (corpus/capture-reused-stream-oom). 0: every capture gets a fresh
    # stream.
    'capture_reuse': 50,
    # Built with CUDA_API_PER_THREAD_DEFAULT_STREAM (interp_ptds): the _ptds/_ptsz entry
    # points, NULL is the per-thread stream. Percent of programs.
    'ptds': 30,
    # Calls through cuGetProcAddress pointers (interp_proc), percent of the other programs.
    'proc': 35,
    # Launches of a CUkernel from cuLibraryLoadFromFile (CUDA 12's context-independent
    # loading, what the CUDA runtime uses for the kernels it registers), cast to
    # CUfunction, in every launch style. Percent of launches.
    'cukernel': 25,
    # Stream-ordered allocation: percent of buffers allocated with cuMemAllocAsync (the
    # default pool) or cuMemAllocFromPoolAsync (the default pool by handle, or a pool the
    # program made) and freed with cuMemFreeAsync; and the weight of pool operations
    # (temporary buffers, frees reused by the next allocation, trims, attributes) among
    # the others, at half of it. 0: no pool calls and no extra draws (the programs of a
    # seed are those of before).
    'pool': 15,
}
MAX_POOLS = 16  # interp.c: pool 0 is cuMemAllocAsync's, 1 the default pool by handle
MAX_BUFS = 256  # interp.c
# CUmemPool_attribute values (cuda.h)
ATTR_FOLLOW_EVENTS, ATTR_OPPORTUNISTIC, ATTR_INTERNAL_DEPS, ATTR_RELEASE_THRESHOLD = 1, 2, 3, 4


def parse_weights(spec):
    w = dict(DEFAULT_WEIGHTS)
    for item in filter(None, (spec or '').split(',')):
        k, _, v = item.partition('=')
        if k not in w:
            raise SystemExit(f'FUZZ_WEIGHTS: unknown weight {k!r} (known: {", ".join(w)})')
        w[k] = int(v)
    return w


# --- what an operation does, read back from its text ----------------------------------------
def effects(thread, words):
    """(stream id or None, reads, writes, host_complete) of one operation."""
    op, a = words[0], [int(x, 0) for x in words[1:]]
    d = lambda i: ('d', a[i])  # noqa: E731
    h = lambda i: ('h', a[i])  # noqa: E731
    if op == 'memset':
        return (a[5] if a[6] else 0), [], [d(1)], False
    if op == 'memset2d':
        return (a[7] if a[8] else 0), [], [d(1)], False
    if op == 'h2d':
        return (a[5] if a[6] in (1, 3) else 0), [h(2)], [d(0)], False
    if op == 'd2d':
        return (a[5] if a[6] in (1, 3) else 0), [d(2)], [d(0)], False
    if op == 'd2h':
        return (a[3] if a[4] in (1, 3) else 0), [d(0)], [], True
    if op == 'copy2d':
        return (a[8] if a[9] & 1 else 0), [d(3)], [d(0)], False
    if op == 'h2d2d':
        return (a[8] if a[9] else 0), [h(3)], [d(0)], False
    if op == 'd2h2d':
        return (a[5] if a[6] else 0), [d(0)], [], True
    if op == 'copy3d':
        return (a[9] if a[10] else 0), [d(2)], [d(0)], False
    if op == 'batch':
        n = a[1]
        return a[0], [('d', a[4 + 5 * i]) for i in range(n)], [('d', a[2 + 5 * i]) for i in range(n)], False
    if op == 'allocasync':  # the allocation writes the whole piece in stream order
        return a[2], [], [d(0)], False
    if op == 'freeasync':  # ... and so does the free
        return a[1], [], [d(0)], False
    if op == 'launch':
        k, s = a[2], a[3]
        if k == 0:
            return s, [], [d(6)], False
        if k in (1, 3):
            return s, [d(6), d(8)], [d(8)], False
        return s, [d(6), d(8)], [d(10)], False
    return None


class Program:
    """The text being generated, with the model kept in step."""

    def __init__(self, rng, ptds=False):
        self.r = rng
        self.model = Model(ptds)
        self.lines = []
        self.thread = 0
        self.event_next = {}

    def raw(self, *words):
        self.lines.append(' '.join(str(w) for w in words))

    def fresh_event(self):
        n = self.event_next.get(self.thread, 0)
        self.event_next[self.thread] = n + 1
        return self.thread * 128 + n % 128

    def order_on_stream(self, key, sid, pending):
        """Order PENDING accesses before the next operation on KEY (stream id SID)."""
        for k, _ in sorted(pending, key=str):
            if (k, _) not in self.model.unordered(self.thread, key, *self.pending_bufs):
                continue  # ordered by an earlier wait of this loop
            src = self.stream_id(k)
            if self.r.random() < 0.25:
                self.host_sync(k, src)
            else:
                e = self.fresh_event()
                self.raw('record', e, src)
                self.model.record(e, k)
                self.raw('wait', sid, e)
                self.model.wait(key, e)

    @staticmethod
    def stream_id(k):
        """A stream id that names stream key K in the program text."""
        return 1 if k[0] == 'L' else (2 if k[0] == 'P' else k[1])

    def host_sync(self, k, src):
        if self.r.random() < 0.5:
            self.raw('ssync', src)
            self.model.host_sync_stream(self.thread, k)
        else:
            e = self.fresh_event()
            self.raw('record', e, src)
            self.model.record(e, k)
            self.raw('esync', e)
            self.model.host_sync_event(self.thread, e)

    def host_cover(self, bufs):
        """Make the host see every access of BUFS complete (before free, unhost, ...)."""
        for k, _ in sorted(self.model.uncovered_by_host(self.thread, bufs), key=str):
            if self.model.uncovered_by_host(self.thread, bufs):
                self.host_sync(k, self.stream_id(k))

    def emit(self, *words, tag=None):
        words = [str(w) for w in words]
        sid, reads, writes, complete = effects(self.thread, words)
        key = self.model.key(self.thread, sid)
        if key not in self.model.capturing:
            self.pending_bufs = (reads, writes)
            pend = self.model.unordered(self.thread, key, reads, writes)
            self.order_on_stream(key, sid, pend)
        self.raw(*words, *(['#', tag] if tag else []))
        done = self.model.enqueue(self.thread, key, reads, writes)
        if complete:
            self.model.host_sync_stream(self.thread, key)
        return done


def check_program(text):
    """Replays TEXT through the model; raises RaceError at the first unordered access."""
    m = Model(ptds=' ptds' in text.split('\n', 1)[0])
    thread = 0
    par_threads = []
    owner = {}
    initialised = set()
    alive = set()  # device buffers allocated and not freed
    pools = set()  # pools created and not destroyed (1: the default pool)
    for n, line in enumerate(text.splitlines(), 1):
        words, _, tag = line.partition('#')
        words, tag = words.split(), tag.split()
        if not words or words[0] == 'fuzzprog':
            continue
        op = words[0]
        a = [int(x, 0) for x in words[1:]]
        eff = effects(thread, words)
        if op in ('allocasync', 'freeasync'):
            # The simulator does not capture stream-ordered allocation (pool.c refuses it on
            # a capturing stream); nothing else may run while a capture is open either.
            if m.capturing:
                raise ValueError(f'line {n}: {op} while a capture is open')
            buf = ('d', a[0])
            key = m.key(thread, eff[0])
            if op == 'allocasync':
                if buf in alive:
                    raise ValueError(f'line {n}: {buf} allocated twice')
                if a[3] >= 2 and a[3] not in pools:
                    raise ValueError(f'line {n}: pool {a[3]} not created')
                m.forget(buf)
                initialised.discard(buf)
                alive.add(buf)
            else:
                if buf not in alive:
                    raise ValueError(f'line {n}: {buf} freed but not allocated')
                # The free ends the buffer in stream order: every access must come before it.
                if m.unordered(thread, key, [], [buf]):
                    raise RaceError(f'line {n}: {line!r} races with {m.unordered(thread, key, [], [buf])}')
            m.enqueue(thread, key, [], [buf])
            if op == 'freeasync':
                m.forget(buf)
                alive.discard(buf)
                initialised.discard(buf)
            continue
        if eff:
            sid, reads, writes, complete = eff
            key = m.key(thread, sid)
            # Nothing reads bytes never written: a fresh allocation reads zeros bare and
            # poison under liboffload. Its first access must be the whole-buffer init.
            for buf in set(reads) | set(writes):
                if buf[0] == 'd' and buf not in alive:
                    raise ValueError(f'line {n}: {buf} used but not allocated (or freed)')
                if buf[0] == 'd' and buf not in initialised:
                    if tag != ['init'] or buf not in writes:
                        raise ValueError(f'line {n}: {buf} used before its init')
                    initialised.add(buf)
            if m.capturing and key not in m.capturing:
                raise ValueError(f'line {n}: an operation outside the capture while one is open')
            if key not in m.capturing and m.unordered(thread, key, reads, writes):
                raise RaceError(f'line {n}: {line!r} races with {m.unordered(thread, key, reads, writes)}')
            m.enqueue(thread, key, reads, writes)
            if complete:
                m.host_sync_stream(thread, key)
        elif op == 'record':
            m.record(a[0], m.key(thread, a[1]))
        elif op == 'wait':
            m.wait(m.key(thread, a[0]), a[1])
        elif op == 'ssync':
            m.host_sync_stream(thread, m.key(thread, a[0]))
        elif op == 'esync':
            m.host_sync_event(thread, a[0])
        elif op == 'csync':
            if par_threads:
                raise RaceError(f'line {n}: csync inside a par block (what it waits for depends on timing)')
            m.host_sync_all(thread)
        elif op == 'stream':
            owner[a[0]] = thread
        elif op in ('free', 'unhost'):
            buf = ('d' if op == 'free' else 'h', a[0])
            if op == 'free' and buf not in alive:
                raise ValueError(f'line {n}: {buf} freed but not allocated')
            if m.uncovered_by_host(thread, [buf]):
                raise RaceError(f'line {n}: {op} of {buf} before its accesses completed')
            m.forget(buf)
            alive.discard(buf)
            initialised.discard(buf)
        elif op in ('alloc', 'allocinfo'):
            if ('d', a[0]) in alive:
                raise ValueError(f'line {n}: d{a[0]} allocated twice')
            m.forget(('d', a[0]))
            initialised.discard(('d', a[0]))
            alive.add(('d', a[0]))
        elif op == 'mempool':
            pools.add(a[0])
        elif op in ('unpool', 'poolset', 'pooltrim', 'setpool'):
            if a[0] != 1 and a[0] not in pools:
                raise ValueError(f'line {n}: pool {a[0]} not created')
            if op == 'unpool':
                pools.discard(a[0])
        elif op == 'unstream':
            if m.stream_uncovered(thread, ('S', a[0])):
                raise RaceError(f'line {n}: stream {a[0]} destroyed before the host saw it finish')
        elif op == 'capbegin':
            m.begin_capture(m.key(thread, a[0]))
        elif op == 'capend':
            m.end_capture(m.key(thread, a[0]), a[1], False)
        elif op == 'glaunch':
            key = m.key(thread, a[1])
            reads, writes = m.graphs.get(a[0], (set(), set()))
            if any(b[0] == 'd' and b not in alive for b in reads | writes):
                raise ValueError(f'line {n}: a graph launched after a buffer of it was freed')
            if m.unordered(thread, key, reads, writes):
                raise RaceError(f'line {n}: graph launch races with {m.unordered(thread, key, reads, writes)}')
            m.enqueue(thread, key, reads, writes)
        elif op == 'par':
            if m.uncovered_by_host(0, list(m.accesses)):
                raise RaceError(f'line {n}: par while work is pending')
            par_threads = []
        elif op == 'thread':
            thread = a[0]
            par_threads.append(thread)
            m.fork([thread]) if thread else None
        elif op == 'endpar':
            for t in par_threads:
                mine = [k for k in m.clock if (k[0] != 'S' and k[1] == t) or (k[0] == 'S' and owner.get(k[1]) == t)]
                if t and any(m.stream_uncovered(t, k) for k in mine):
                    raise RaceError(f'line {n}: thread {t} ends with work pending on its streams')
            m.join([t for t in par_threads if t])
            par_threads = []
            thread = 0
    if m.capturing:
        raise ValueError('a capture is still open at the end')
    return True


# --- the generator ---------------------------------------------------------------------
class Buffer:
    def __init__(self, bid, size, ordinal, group):
        self.id, self.size, self.ordinal, self.group = bid, size, ordinal, group
        self.bound = size  # what the driver may really allocate (allocinfo: up to 4x)
        self.writes = 0  # writes after the first
        self.in_graph = set()
        self.pool = None  # stream-ordered: the pool id (0 cuMemAllocAsync), else None
        self.alloc_stream = None


def generate(seed, weights=None, min_size=256 * KiB):
    w = dict(weights or DEFAULT_WEIGHTS)
    r = random.Random(seed)
    g = Generator(r, w, min_size)
    g.build()
    return g.text(seed), g.meta()


class Generator:
    def __init__(self, r, w, min_size):
        self.r, self.w, self.min_size = r, dict(w), min_size
        self.w['poolop'] = self.w.get('pool', 0) // 2
        self.ptds = self.chance('ptds')
        self.proc = not self.ptds and self.chance('proc')
        self.p = Program(r, self.ptds)
        self.bufs = {}  # id -> Buffer (alive)
        self.all_tracked = []  # (ordinal, size, group, readonly_ok) in order
        self.next_buf = 0
        self.next_ordinal = 0
        self.next_stream = 3
        self.streams = {0: [0, 1, 2]}  # thread -> stream ids it may use
        self.blocking = set()  # created streams without CU_STREAM_NON_BLOCKING
        self.hosts = {}  # id -> size
        self.group = 0
        self.group_order = []
        self.max_footprint = 0
        self.graphs = {}  # live graph id -> the buffers its nodes touch
        self.next_graph = 0
        self.ops_budget = r.randint(20, 90)
        self.untracked = 0  # bytes of every untracked allocation made: they count in the budget
        self.pools = {}  # created pool id -> {'plain': bool, 'alive': bool}
        self.current_pool = None  # the device's current pool (cuDeviceSetMemPool), None: default
        self.next_pool = 2
        # What the driver's pools may hold that liboffload cannot trim (see driver_pool_alloc)
        self.chunk_bound = {}  # pool (0 and 1 are both the default one) -> largest chunk
        self.chunks_ever = {}  # pool -> bytes of every chunk it may have grown
        self.driver_live = {}  # buffer id -> its pool, live in a driver's pool
        self.driver_freed = []  # (pool, (stream key, count) of its free) the host may not have seen
        self.driver_peak = 0

    # --- helpers -------------------------------------------------------------------------
    def chance(self, name, scale=100.0):
        return self.r.random() * scale < self.w.get(name, 0)

    def pick_weighted(self, names):
        total = sum(self.w.get(n, 0) for n in names)
        if total <= 0:
            return None
        x = self.r.random() * total
        for n in names:
            x -= self.w.get(n, 0)
            if x < 0:
                return n
        return names[-1]

    def stream(self):
        return self.r.choice(self.streams[self.p.thread])

    def footprint(self, bufs):
        total = sum(resident_size(b.bound) for b in set(bufs) if b.ordinal is not None)
        self.max_footprint = max(self.max_footprint, total)

    def buf_size(self):
        if self.chance('small'):
            size = self.r.randint(1, 200) * 1024 + self.r.choice([0, 0, 4, 12, 100])
        else:
            size = self.r.randint(self.min_size // 4096 + 1, 500) * 4096 + self.r.choice([0, 0, 0, 4, 44, 1000])
            if self.r.random() < 0.1:
                size = self.r.choice([2 * MiB, 2 * MiB + 4, 4 * MiB - 4])
        return size

    # --- setup ---------------------------------------------------------------------------
    def new_stream(self, nonblocking=False):
        sid = self.next_stream
        assert sid < 256, 'interp.c has MAX_STREAMS 256'
        self.next_stream += 1
        flags = self.r.randint(0, 1)  # drawn either way: the same programs for a seed
        if nonblocking:
            flags = 1
        if flags == 0:
            self.blocking.add(sid)
        self.p.raw('stream', sid, flags, self.r.randint(0, 5))
        self.streams[self.p.thread].append(sid)
        return sid

    def new_host(self, hid, size):
        self.p.raw('host', hid, size, self.r.randint(0, 1 << 30), self.r.randint(0, 3))
        self.hosts[hid] = size

    def alloc(self, group=None, pool=None, stream=None, size=None):
        """A new buffer, initialised; stream-ordered from POOL on STREAM when given (or drawn
        with weight `pool`)."""
        bid = self.next_buf
        self.next_buf += 1
        assert bid < MAX_BUFS, 'interp.c has MAX_BUFS 256'
        size = size or self.buf_size()
        info = pool is None and size >= self.min_size and self.chance('allocinfo', 100 / 3.0)
        if pool is None and not info and self.w.get('pool') and self.chance('pool'):
            pool = self.pick_pool()
        self.p.model.forget(('d', bid))
        if pool is None:
            self.p.raw('allocinfo' if info else 'alloc', bid, size)
        else:
            stream = self.stream() if stream is None else stream
            # the allocation is a write of the whole buffer on its stream (model.py): the
            # init on another stream waits for it
            self.p.emit('allocasync', bid, size, stream, pool)
        ordinal = None
        if size >= self.min_size and (pool is None or self.pool_plain(pool)):
            # liboffload serves it from its own memory, numbered with cuMemAlloc's
            # (runtime/stream_alloc.c; a reused freed one is numbered anew)
            assert not self.in_par, 'a tracked allocation in a par block: its ordinal would depend on timing'
            ordinal = self.next_ordinal
            self.next_ordinal += 1
        elif pool is None:
            self.untracked += size
        else:
            self.driver_pool_alloc(bid, size, pool)
        b = Buffer(bid, size, ordinal, self.group if group is None else group)
        b.pool, b.alloc_stream = pool, stream
        if info:
            b.bound = 4 * size
        self.bufs[bid] = b
        self.init_buffer(b)
        if ordinal is not None:
            self.all_tracked.append(b)
        return b

    # --- stream-ordered allocation ---------------------------------------------------------
    def pool_drawn(self, pool):
        """The pool an allocation from POOL draws from: 0 is the device's current pool, 1
        the default one."""
        return (self.current_pool or 1) if pool == 0 else pool

    def pool_plain(self, pool):
        """Whether liboffload may serve POOL's allocations (runtime/stream_alloc.c): the
        default pool, or one made for plain device memory (no maxSize)."""
        pool = self.pool_drawn(pool)
        return pool < 2 or self.pools[pool]['plain']

    def driver_pool_alloc(self, bid, size, pool):
        """An allocation liboffload leaves to the driver's pool, whose reserve counts in the
        budget as untracked bytes (memory/pools.h). The pool grows by a chunk (the request
        rounded up to 2 MiB) when no free piece fits; before liboffload evicts live data it
        trims what the pool does not use. What it cannot trim: the chunks of live pieces and
        of pieces whose free has not run, each at most the largest chunk of the pool so far,
        and all of them at most every chunk the pool may have grown. meta['untracked']
        counts the peak of that."""
        key = self.pool_drawn(pool)
        self.chunk_bound[key] = max(self.chunk_bound.get(key, 0), resident_size(size))
        self.chunks_ever[key] = self.chunks_ever.get(key, 0) + resident_size(size)
        self.driver_live[bid] = key
        host = self.p.model.host[0]
        if not self.in_par:
            # in a par block every thread's pieces count until its end: the threads run at
            # once, whatever the order of the text
            self.driver_freed = [(p, (k, c)) for p, (k, c) in self.driver_freed if host.get(k, 0) < c]
        pieces = list(self.driver_live.values()) + [p for p, _ in self.driver_freed]
        now = sum(min(pieces.count(p) * self.chunk_bound[p], self.chunks_ever[p]) for p in set(pieces))
        self.driver_peak = max(self.driver_peak, now)

    def pick_pool(self, create=True):
        """0: cuMemAllocAsync (the device's current pool, the default one); 1: the default
        pool by handle (cuMemAllocFromPoolAsync); 2 and up: a pool the program made, now or
        before."""
        alive = [p for p, info in self.pools.items() if info['alive']]
        x = self.r.random()
        if x < 0.12 and create and self.next_pool < MAX_POOLS:
            return self.new_pool()
        if x < 0.6 and alive:
            return self.r.choice(alive)
        return 0 if x < 0.85 else 1

    def new_pool(self):
        """cuMemPoolCreate; a quarter with a maxSize (never reached), which liboffload
        leaves to the driver; the release threshold set on some, reuse policies turned off
        on a few."""
        pid = self.next_pool
        self.next_pool += 1
        limited = self.r.random() < 0.25
        self.p.raw('mempool', pid, int(limited))
        self.pools[pid] = {'plain': not limited, 'alive': True}
        if self.r.random() < 0.5:
            self.set_threshold(pid)
        for attr in (ATTR_FOLLOW_EVENTS, ATTR_OPPORTUNISTIC, ATTR_INTERNAL_DEPS):
            if self.r.random() < 0.15:
                self.p.raw('poolset', pid, attr, 0)
        return pid

    def set_threshold(self, pid):
        self.p.raw('poolset', pid, ATTR_RELEASE_THRESHOLD, self.r.choice([0, 2 * MiB, 64 * MiB, (1 << 64) - 1]))

    def free_stream(self, b):
        """Where a stream-ordered buffer is freed: where it was allocated, or elsewhere."""
        return b.alloc_stream if self.r.random() < 0.5 else self.stream()

    def op_pool(self, in_par=False):
        """A temporary buffer (allocated, used, freed in stream order), a free whose memory
        the next allocation may reuse, a trim, a release threshold, a pool destroyed. In a
        par block only a temporary buffer liboffload leaves to the driver's pool (below
        min_size, or from a pool with maxSize): it has no ordinal, whose order would depend
        on timing."""
        if not self.w.get('pool'):
            return
        x = self.r.random()
        if x < 0.55 or in_par:
            if self.next_buf >= MAX_BUFS - 16:
                return
            pool, size = self.pick_pool(create=not in_par), None
            if in_par and self.pool_plain(pool):
                size = min(self.min_size - 1, self.r.randint(1, 200) * 1024 + self.r.choice([0, 0, 4, 12, 100]))
            tmp = self.alloc(pool=pool, size=size)
            for _ in range(self.r.randint(1, 3)):
                y = self.r.random()
                other = [o for o in self.some_bufs(1) if o.size >= 4]
                if y < 0.6 and other and tmp.size >= 4:
                    # through a kernel, one way or the other
                    self.kernel('mix', [other[0], tmp] if self.r.random() < 0.5 else [tmp, other[0]], self.stream())
                else:
                    self.op_d2h(whole=tmp if self.r.random() < 0.3 else None, only=tmp)
            self.free(tmp, async_only=in_par)
        elif x < 0.75:
            olds = [b for b in self.bufs.values() if b.pool is not None and not b.in_graph and b.id in self.usable]
            if not olds or self.next_buf >= MAX_BUFS - 16:
                return
            b = self.r.choice(olds)
            s = self.free(b)
            pool = b.pool if b.pool < 2 or self.pools[b.pool]['alive'] else self.pick_pool()
            # on the freeing stream, of the same size or not: what pools reuse
            n = self.alloc(pool=pool, stream=s if self.r.random() < 0.7 else None,
                           size=b.size if self.r.random() < 0.5 else None)
            self.usable.add(n.id)
        elif x < 0.83:
            pid = self.r.choice([1] + [p for p, i in self.pools.items() if i['alive']])
            self.p.raw('pooltrim', pid, self.r.choice([0, 0, 2 * MiB, 1 << 40]))
        elif x < 0.91:
            self.set_threshold(self.r.choice([1] + [p for p, i in self.pools.items() if i['alive']]))
        elif x < 0.96:
            # cuMemAllocAsync draws from the device's current pool from now on
            pid = self.r.choice([1] + [p for p, i in self.pools.items() if i['alive']])
            self.p.raw('setpool', pid)
            self.current_pool = None if pid == 1 else pid
        else:
            alive = [p for p, i in self.pools.items() if i['alive']]
            if alive:
                # its allocations still live stay valid, and are freed later; the default
                # pool is current again if it was
                pid = self.r.choice(alive)
                self.p.raw('unpool', pid)
                self.pools[pid]['alive'] = False
                if self.current_pool == pid:
                    self.current_pool = None

    def init_buffer(self, b):
        """The first write covers the whole buffer: nothing ever reads uninitialised bytes
        (a fresh allocation reads zeros bare and may read poison under liboffload)."""
        s = self.stream()
        choice = self.r.random()
        big_host = [h for h, sz in self.hosts.items() if sz >= b.size]
        if choice < 0.35 and b.size % 4 == 0:
            self.kernel('fill', [b], s, init=True)
        elif choice < 0.6 and big_host:
            self.p.emit('h2d', b.id, 0, self.r.choice(big_host), 0, b.size, s, self.r.randint(0, 3), tag='init')
        else:
            width = 32 if b.size % 4 == 0 else (16 if b.size % 2 == 0 else 8)
            width = self.r.choice([x for x in (8, 16, 32) if x <= width])
            self.p.emit('memset', width, b.id, 0, b.size // (width // 8), self.r.randint(0, 255) * 0x01010101 & ((1 << width) - 1),
                        s, self.r.randint(0, 1), tag='init')
        self.footprint([b])

    # --- operations ------------------------------------------------------------------------
    def some_bufs(self, n, prefer_group=True, exclude=()):
        alive = [b for b in self.bufs.values() if b not in exclude and b.id in self.usable]
        if not alive:
            return []
        if prefer_group and self.r.random() < 0.7:
            mine = [b for b in alive if b.group == self.group]
            if len(mine) >= 1:
                alive = mine + self.r.sample(alive, min(2, len(alive)))
        picks = []
        for _ in range(n):
            rest = [b for b in alive if b not in picks]
            if not rest:
                break
            picks.append(self.r.choice(rest))
        return picks

    def range_in(self, b, max_words=None, align=4):
        """(offset, words) of a sub-range of b in 4-byte words, interior when drawn."""
        words = b.size // 4
        if words == 0:
            return 0, 0
        off = 0
        if self.chance('interior') and words > 8:
            off = self.r.randint(1, words // 2) // (align // 4 or 1) * (align // 4 or 1)
        n = self.r.randint(1, words - off)
        if max_words:
            n = min(n, max_words)
        return off * 4, n

    def kernel(self, name, bufs, s, init=False):
        group = bufs[-1].group if self.r.random() < 0.8 else self.r.randrange(GROUPS)
        how = 0
        if self.chance('extra', 100):
            how = 1
        elif self.chance('launch_ex', 100):
            how = 2
        if self.chance('cukernel', 100):
            how += 3  # the same three ways, with the library's CUkernel as the function
        kid = KERNELS.index(name)
        grid, block = self.r.choice([1, 2, 3, 8]), self.r.choice([32, 64, 128])
        if name == 'fill':
            b = bufs[0]
            off, n = (0, b.size // 4) if init else self.range_in(b)
            args = [b.id, off, n, self.r.randint(0, 1 << 31)]
        elif name in ('mix', 'smix'):
            a, b = bufs
            aoff, an = self.range_in(a)
            boff, bn = self.range_in(b)
            args = [a.id, aoff, b.id, boff, min(an, bn), self.r.randint(1, 1 << 31) | 1]
        else:
            a, b, c = bufs
            aoff, an = self.range_in(a)
            boff, bn = self.range_in(b)
            coff, cn = self.range_in(c)
            args = [a.id, aoff, b.id, boff, c.id, coff, min(an, bn, cn)]
        if not init:
            bufs[-1].writes += 1
        self.footprint(bufs)
        self.p.emit('launch', how, group, kid, s, grid, block, *args, tag='init' if init else None)
        if group not in self.group_order:
            self.group_order.append(group)
        return ('launch', how, group, kid, s, grid, block, *args)

    def op_kernel(self):
        kinds = ['fill', 'mix', 'mix3'] + (['smix'] if self.chance('struct', 100) else [])
        name = self.r.choice(kinds)
        need = {'fill': 1, 'mix': 2, 'smix': 2, 'mix3': 3}[name]
        bufs = [b for b in self.some_bufs(need) if b.size >= 4]
        if len(bufs) < need:
            return
        if name == 'mix3' and self.r.random() < 0.3:
            bufs[1] = bufs[0]  # both read: the same buffer twice is fine
        self.kernel(name, bufs, self.stream())

    def op_memset(self, two_d=False):
        (b,) = self.some_bufs(1) or [None]
        if not b:
            return
        s, async_ = self.stream(), self.r.randint(0, 1)
        width = self.r.choice([8, 16, 32])
        esize = width // 8
        if two_d:
            pitch = self.r.choice([256, 512, 1000, 4096]) // esize * esize
            wbytes = self.r.randint(1, pitch // esize) * esize
            height = max(1, min(b.size // pitch, self.r.randint(1, 64)))
            if pitch * (height - 1) + wbytes > b.size:
                return
            self.p.emit('memset2d', width, b.id, 0, pitch, wbytes // esize, height, self.r.randint(0, 0xffff), s, async_)
        else:
            off = self.r.randrange(0, max(1, b.size // 2)) // esize * esize
            n = self.r.randint(1, (b.size - off) // esize) if b.size - off >= esize else 0
            if not n:
                return
            self.p.emit('memset', width, b.id, off, n, self.r.randint(0, (1 << width) - 1), s, async_)
        b.writes += 1
        self.footprint([b])

    def op_h2d(self):
        (b,) = self.some_bufs(1) or [None]
        if not b or not self.hosts:
            return
        hid = self.r.choice(list(self.hosts))
        n = self.r.randint(1, min(b.size, self.hosts[hid]))
        off = self.r.randint(0, b.size - n)
        hoff = self.r.randint(0, self.hosts[hid] - n)
        self.p.emit('h2d', b.id, off, hid, hoff, n, self.stream(), self.r.randint(0, 3))
        b.writes += 1
        self.footprint([b])

    def op_d2d(self):
        bufs = self.some_bufs(2)
        if len(bufs) < 2:
            return
        dst, src = bufs
        n = self.r.randint(1, min(dst.size, src.size))
        self.p.emit('d2d', dst.id, self.r.randint(0, dst.size - n), src.id, self.r.randint(0, src.size - n), n,
                    self.stream(), self.r.randint(0, 3))
        dst.writes += 1
        self.footprint(bufs)

    def op_d2h(self, whole=None, only=None):
        b = whole or only or (self.some_bufs(1) or [None])[0]
        if not b:
            return
        if whole:
            off, n = 0, b.size
        else:
            n = self.r.randint(1, b.size)
            off = self.r.randint(0, b.size - n)
        if not whole and self.r.random() < 0.25:
            pitch = self.r.choice([512, 4096, 4100])
            wb = self.r.randint(1, min(pitch, b.size))
            height = max(1, min(64, (b.size - wb) // pitch + 1))
            self.p.emit('d2h2d', b.id, 0, pitch, wb, height, self.stream(), self.r.randint(0, 1), self.r.randint(0, 1))
        else:
            self.p.emit('d2h', b.id, off, n, self.stream(), self.r.randint(0, 3), self.r.randint(0, 1))
        self.footprint([b])

    def op_copy2d(self, three_d=False):
        bufs = self.some_bufs(2)
        if len(bufs) < 2:
            return
        dst, src = bufs
        dp, sp = self.r.choice([256, 1024, 4096]), self.r.choice([256, 1024, 4096])
        wb = self.r.randint(1, min(dp, sp))
        depth = self.r.randint(1, 4) if three_d else 1
        rows = min((dst.size - wb) // dp + 1, (src.size - wb) // sp + 1) // depth
        if rows < 1:
            return
        height = self.r.randint(1, min(rows, 64))
        if three_d:
            self.p.emit('copy3d', dst.id, 0, src.id, 0, wb, height, depth, dp, sp, self.stream(), self.r.randint(0, 1))
        else:
            self.p.emit('copy2d', dst.id, 0, dp, src.id, 0, sp, wb, height, self.stream(),
                        self.r.randint(0, 1) | (2 if self.r.random() < 0.3 else 0))
        dst.writes += 1
        self.footprint(bufs)

    def op_batch(self):
        n = self.r.randint(1, 4)
        args = []
        used = []
        for _ in range(n):
            bufs = self.some_bufs(2)
            if len(bufs) < 2:
                return
            dst, src = bufs
            if dst in used or any(dst is u for u in used):
                continue
            # a destination written twice in one batch, or read by another copy of it,
            # would race within the batch
            if any(src is u for u in used):
                continue
            k = self.r.randint(1, min(dst.size, src.size))
            args.append((dst, self.r.randint(0, dst.size - k), src, self.r.randint(0, src.size - k), k))
            used.append(dst)
        srcs = {a[2] for a in args}
        args = [a for a in args if a[0] not in srcs]
        if not args:
            return
        flat = []
        for dst, doff, src, soff, k in args:
            flat += [dst.id, doff, src.id, soff, k]
            dst.writes += 1
        s = self.r.choice([x for x in self.streams[self.p.thread]])
        self.p.emit('batch', s, len(args), *flat)
        self.footprint([a[0] for a in args] + [a[2] for a in args])

    def op_sync(self):
        x = self.r.random()
        s = self.stream()
        if x < 0.4:
            self.p.raw('ssync', s)
            self.p.model.host_sync_stream(self.p.thread, self.p.model.key(self.p.thread, s))
        elif x < 0.6 and self.p.thread == 0 and not self.in_par:
            self.p.raw('csync')
            self.p.model.host_sync_all(0)
        elif x < 0.8:
            self.p.raw('getinfo')
        else:
            e = self.p.fresh_event()
            self.p.raw('record', e, s)
            self.p.model.record(e, self.p.model.key(self.p.thread, s))
            self.p.raw('esync', e)
            self.p.model.host_sync_event(self.p.thread, e)

    def op_realloc(self):
        frees = [b for b in self.bufs.values() if not b.in_graph and b.id in self.usable]
        if len(frees) < 3:
            return
        b = self.r.choice(frees)
        self.free(b)
        self.alloc()

    def free(self, b, async_only=False):
        """Frees B; returns the stream of a stream-ordered free, else None. ASYNC_ONLY: a
        stream-ordered buffer in a par block, never with cuMemFree (which waits for the whole
        device, other threads' work too)."""
        s = None
        in_driver_pool = self.driver_live.pop(b.id, None)
        if b.pool is not None and (async_only or self.r.random() < 0.85):
            # ordered after every access of the buffer, on any stream (model.py), as the
            # simulator's free writes the whole piece in stream order
            s = self.free_stream(b)
            done = self.p.emit('freeasync', b.id, s)
            if in_driver_pool is not None:
                self.driver_freed.append((in_driver_pool, done))
        else:  # cuMemFree: stream-ordered memory too, once the host saw its work done
            self.p.host_cover([('d', b.id)])
            self.p.raw('free', b.id)
        self.p.model.forget(('d', b.id))
        del self.bufs[b.id]
        return s

    def op_graph(self):
        """Capture 1-3 asynchronous operations on a created stream into a graph, replay it,
        sometimes update it with a second capture of the same shape."""
        t = self.p.thread
        created = [s for s in self.streams[t] if s >= 3]
        if not created or len(self.graphs) >= 8 or self.next_stream >= 240 or self.next_graph >= 32:
            return
        # While a blocking stream captures, any use of the legacy stream fails
        # (CUDA_ERROR_STREAM_CAPTURE_IMPLICIT) and invalidates the capture: in a par block,
        # where other threads run at once and may use it, capture on non-blocking streams.
        if self.in_par:
            created = [c for c in created if c not in self.blocking]
        if self.chance('capture_reuse') and created:
            s = self.r.choice(created)
        else:
            s = self.new_stream(nonblocking=self.in_par)
        gid = self.next_graph
        self.next_graph += 1
        key = self.p.model.key(t, s)
        shape = [self.r.choice(['fill', 'mix', 'memset']) for _ in range(self.r.randint(1, 3))]
        # In a par block, a global-mode capture would make the other threads' calls fail
        # (as it should): only thread-local or relaxed captures there.
        mode = self.r.randint(1, 2) if self.in_par else self.r.randint(0, 2)
        touched = self.capture(s, key, gid, shape, mode)
        if touched is None:
            return
        self.graphs[gid] = touched
        for _ in range(self.r.randint(1, 3)):
            self.graph_launch(gid)
            if self.r.random() < 0.4 and self.next_stream < 240:
                if not self.chance('capture_reuse'):
                    s = self.new_stream(nonblocking=self.in_par)
                    key = self.p.model.key(t, s)
                again = self.capture(s, key, gid, shape, mode)
                if again is not None:
                    for b in self.graphs[gid]:
                        b.in_graph.discard(gid)
                    self.graphs[gid] = again
        if self.r.random() < 0.5:
            self.destroy_graph(gid)

    def capture(self, s, key, gid, shape, mode):
        # What a kernel of the capture needs must be in place before it runs; nothing
        # inside a capture may wait on an event recorded outside it, so the ordering is
        # done at each graph launch instead (graph_launch).
        picks = []
        for kind in shape:
            need = {'fill': 1, 'mix': 2, 'memset': 1}[kind]
            bufs = [b for b in self.some_bufs(need) if b.size >= 4]
            if len(bufs) < need:
                return None
            picks.append((kind, bufs))
        self.p.raw('capbegin', s, mode)
        self.p.model.begin_capture(key)
        touched = set()
        for kind, bufs in picks:
            if kind == 'memset':
                b = bufs[0]
                self.p.emit('memset', 32, b.id, 0, b.size // 4, self.r.randint(0, 1 << 31), s, 1)
                b.writes += 1
            else:
                self.kernel(kind, bufs, s)
            touched |= set(bufs)
        self.p.raw('capend', s, gid)
        self.p.model.end_capture(key, gid, False)
        for b in touched:
            b.in_graph.add(gid)
        self.footprint(touched)
        return touched

    def graph_launch(self, gid):
        s, t = self.stream(), self.p.thread
        key = self.p.model.key(t, s)
        reads, writes = self.p.model.graphs[gid]
        self.p.pending_bufs = (reads, writes)
        self.p.order_on_stream(key, s, self.p.model.unordered(t, key, reads, writes))
        self.p.raw('glaunch', gid, s)
        self.p.model.enqueue(t, key, reads, writes)
        for b in self.graphs[gid]:
            b.writes += 1

    def destroy_graph(self, gid):
        self.p.raw('gdestroy', gid)
        for b in self.graphs.pop(gid):
            b.in_graph.discard(gid)

    def op_par(self):
        """Threads 1-3 start, each with its own streams and a disjoint share of the buffers;
        they synchronize their streams before they end. Thread 0 keeps working meanwhile."""
        nthreads = self.r.randint(2, 4)
        alive = list(self.bufs.values())
        self.r.shuffle(alive)
        shares = {t: set(alive[t::nthreads]) for t in range(nthreads)}
        self.p.raw('csync')
        self.p.model.host_sync_all(0)
        self.p.raw('par')
        self.in_par = True
        self.p.model.fork(range(1, nthreads))
        saved_usable = self.usable
        for t in range(nthreads):
            self.p.raw('thread', t)
            self.p.thread = t
            self.usable = {b.id for b in shares[t]}
            if t:
                self.streams[t] = [0, 1, 2]
                for _ in range(self.r.randint(0, 2) if self.next_stream < 240 else 0):
                    self.new_stream()
            for _ in range(self.r.randint(2, 8)):
                self.one_op(in_par=True)
            if t:
                for sid in self.streams[t]:
                    self.p.raw('ssync', sid)
                    self.p.model.host_sync_stream(t, self.p.model.key(t, sid))
                for sid in self.streams[t]:
                    if sid >= 3:
                        self.p.raw('unstream', sid)
        self.p.raw('endpar')
        self.p.model.join(range(1, nthreads))
        self.p.thread = 0
        self.in_par = False
        self.usable = saved_usable
        for t in range(1, nthreads):
            self.streams.pop(t, None)

    OPS = ('kernel', 'memset', 'memset2d', 'h2d', 'd2d', 'd2h', 'copy2d', 'copy3d', 'batch', 'realloc',
           'sync', 'query', 'graph', 'threads', 'stream', 'poolop')

    def one_op(self, in_par=False):
        # Tracked allocations and frees stay out of par blocks: the ordinals liboffload gives
        # them would depend on timing, and configs claim allocations by ordinal.
        names = [n for n in self.OPS if not (in_par and n in ('realloc', 'threads', 'stream'))]
        if any(g in self.graphs for g in ()):
            pass
        name = self.pick_weighted(names)
        if name == 'kernel':
            self.op_kernel()
        elif name in ('memset', 'memset2d'):
            self.op_memset(two_d=name == 'memset2d')
        elif name == 'h2d':
            self.op_h2d()
        elif name == 'd2d':
            self.op_d2d()
        elif name == 'd2h':
            self.op_d2h()
        elif name in ('copy2d', 'copy3d'):
            self.op_copy2d(three_d=name == 'copy3d')
        elif name == 'batch':
            self.op_batch()
        elif name == 'realloc':
            self.op_realloc()
        elif name == 'sync':
            self.op_sync()
        elif name == 'query':
            self.p.raw('query', self.stream())
        elif name == 'graph':
            self.op_graph()
        elif name == 'threads':
            self.op_par()
        elif name == 'stream':
            if self.next_stream < 240:
                self.new_stream()
        elif name == 'poolop':
            self.op_pool(in_par)

    def build(self):
        self.in_par = False
        self.usable = set()
        for _ in range(self.r.randint(1, 3)):
            self.new_stream()
        self.new_host(0, 3 * MiB)
        for h in range(1, self.r.randint(2, 4)):
            self.new_host(h, self.r.randint(1, 512) * 1024 + self.r.randint(0, 7))
        nbufs = self.r.randint(4, 40)
        upfront = self.r.randint(2, nbufs)
        per_group = max(1, nbufs // GROUPS)
        for i in range(upfront):
            self.group = min(GROUPS - 1, i // per_group)
            b = self.alloc()
            self.usable.add(b.id)
        late = nbufs - upfront
        self.group = 0
        for step in range(self.ops_budget):
            if step % max(1, self.ops_budget // (2 * GROUPS)) == 0 and step:
                self.group = (self.group + 1) % GROUPS
            if late and self.r.random() < late / max(1, self.ops_budget - step):
                b = self.alloc()
                self.usable.add(b.id)
                late -= 1
            self.one_op()
            self.usable = set(self.bufs)
        # The final state of every buffer goes into the hash, then everything is released.
        for gid in list(self.graphs):
            self.destroy_graph(gid)
        for b in list(self.bufs.values()):
            self.op_d2h(whole=b)
        for b in list(self.bufs.values()):
            self.free(b)
        for pid, info in self.pools.items():
            if info['alive'] and self.r.random() < 0.8:
                self.p.raw('unpool', pid)  # its frees may not have run yet: legal
        for hid in list(self.hosts):
            self.p.host_cover([('h', hid)])
            self.p.raw('unhost', hid)
        for sid in [s for s in self.streams[0] if s >= 3]:
            if self.p.model.stream_uncovered(0, ('S', sid)):
                self.p.raw('ssync', sid)
                self.p.model.host_sync_stream(0, ('S', sid))
            self.p.raw('unstream', sid)

    def text(self, seed):
        return f'fuzzprog 1 seed={seed}{" ptds" if self.ptds else ""}{" proc" if self.proc else ""}\n' + '\n'.join(self.p.lines) + '\n'

    def meta(self):
        return {
            'min_size': self.min_size,
            'tracked': [{'ordinal': b.ordinal, 'size': b.bound, 'group': b.group, 'readonly_ok': b.writes == 0}
                        for b in self.all_tracked],
            'group_order': self.group_order or [0],
            'max_footprint': self.max_footprint,
            'untracked': self.untracked + self.driver_peak,
        }


# --- configs ---------------------------------------------------------------------------
def resident_size(size):
    """What a tracked allocation takes of the budget: liboffload backs it with VMM memory,
    in granules of 2 MiB."""
    return (size + 2 * MiB - 1) // (2 * MiB) * (2 * MiB)


def ranges(ordinals):
    out, run = [], []
    for o in sorted(ordinals):
        if run and o == run[-1] + 1:
            run.append(o)
        else:
            if run:
                out.append(run)
            run = [o]
    if run:
        out.append(run)
    return ', '.join(str(x[0]) if len(x) == 1 else f'{x[0]}-{x[-1]}' for x in out)


def config(meta, r, peak):
    """One configuration: (config file text, environment, description)."""
    tracked = meta['tracked']
    ncomp = r.randint(1, 4)
    names = [f'c{i}' for i in range(ncomp)]
    by = [r.choice(['allocs', 'kernels', 'both']) for _ in names]
    # keep only on components that own allocations by ordinal alone: one that claims
    # by kernel name may claim every buffer, and kept bytes must fit in the budget.
    keep = {c for c in range(ncomp) if by[c] == 'allocs' and r.random() < 0.25}
    owner = {}
    for t in tracked:
        if r.random() < 0.8 or keep:
            c = t['group'] % ncomp if r.random() < 0.7 else r.randrange(ncomp)
            if by[c] == 'kernels' and keep:
                # With a kept component nothing stays unowned: an unowned allocation
                # joins whichever component is active at its first use, a kept one too
                # (components_on_launch), and then cannot be evicted.
                c = min(keep)
            if by[c] != 'kernels':
                owner[t['ordinal']] = c
    lines = []
    comp_bytes = [0] * ncomp
    for c, name in enumerate(names):
        lines.append(f'[component {name}]')
        mine = [o for o, oc in owner.items() if oc == c]
        if mine:
            lines.append(f'allocs = {ranges(mine)}')
        if by[c] != 'allocs':
            groups = sorted({g for g in range(GROUPS) if g % ncomp == c}) or [c % GROUPS]
            lines.append('kernels = ' + ', '.join(f'g{g}_*' for g in groups))
        if c in keep:
            lines.append('keep = yes')
        ro_ok = all(t['readonly_ok'] for t in tracked if owner.get(t['ordinal']) == c)
        if mine and ro_ok and r.random() < 0.6:
            lines.append('readonly = yes')
        elif r.random() < 0.15:
            lines.append('readonly = auto')  # liboffload finds out (or treats it as no)
        comp_bytes[c] = sum(resident_size(t['size']) for t in tracked if owner.get(t['ordinal']) == c)
    right = []
    for g in meta['group_order']:
        c = names[g % ncomp]
        if not right or right[-1] != c:
            right.append(c)
    if len(right) > 1 and right[0] == right[-1]:
        right.pop()
    seq = list(right)
    kind = 'right'
    if r.random() < 0.35:
        seq = list(names)
        r.shuffle(seq)
        kind = 'wrong'
    policy = r.choice(['lru', 'budget', 'sequence']) if len(seq) >= 1 else 'lru'
    use_seq = policy != 'lru' or r.random() < 0.5
    keep_bytes = sum(comp_bytes[c] for c in keep)
    frac = r.uniform(0.25, 0.60)
    budget = int(peak * frac)
    # Physics, not policy: one operation's buffers and the kept ones must fit at once,
    # with two granules of slack: liboffload reads every 8-byte word of a launch's
    # parameters, and a stale address left in a struct's unused field names one more
    # allocation than the operation uses.
    floor = int((meta['max_footprint'] + keep_bytes + meta['untracked']) * 1.05) + 4 * MiB
    budget = max(budget, floor)
    head = ['[offload]', f'policy = {policy}', f'prefetch = {r.randint(0, 2)}',
            f'min_size = {meta["min_size"]}', f'budget = {budget}']
    if use_seq:
        head.append('sequence = ' + ' -> '.join(seq))
    desc = (f'{ncomp} components ({",".join(by)}), {policy}, sequence {kind if use_seq else "none"}, '
            f'budget {budget / MiB:.1f} MiB ({frac:.0%} of peak {peak / MiB:.1f} MiB, floor {floor / MiB:.1f})')
    return '\n'.join(head + lines) + '\n', desc, budget


def main(argv):
    if len(argv) == 3 and argv[1] == '--check':
        try:
            check_program(open(argv[2]).read())
        except RaceError as e:
            print(f'{argv[2]}: {e}')
            return 1
        return 0
    import os
    text, meta = generate(int(argv[1], 0), parse_weights(os.environ.get('FUZZ_WEIGHTS')))
    sys.stdout.write(text)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
