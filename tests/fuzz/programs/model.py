"""The ordering model of a fuzz program: which operation happens before which.

One model serves two masters. The generator (gen.py) asks it, before each operation,
which earlier accesses of the same buffers are not yet ordered before it, and emits the
events or synchronizes that order them. The checker (check_program) replays a finished
program, a shrunk one say, and rejects it if any access is unordered: a program that is
not race-free could diverge for reasons that are not liboffload's.

Vector clocks: every stream key has a clock (stream key -> count of its operations it is
known to come after); every host thread too. An operation enqueued on stream S by thread t
comes after max(clock[S], host[t]); a recorded event holds its stream's clock; waiting on
it merges that into the waiting stream; a host synchronize merges into the host.
Stream keys: ('L', t) the legacy stream as thread t uses it (per thread, so the model never
assumes an order between two threads' enqueues on the shared stream), ('P', t) thread t's
per-thread stream, ('S', id) a created stream. Buffers: ('d', id) device, ('h', id) host.

The model relies on nothing implicit: not the legacy stream's synchronization with
blocking streams, not a synchronous copy's return (except device-to-host, whose bytes are
in host memory when it returns).
"""

LEGACY_IDS = (0, 1)
PER_THREAD_ID = 2


def vc_merge(a, b):
    for k, v in b.items():
        if a.get(k, 0) < v:
            a[k] = v


class RaceError(Exception):
    pass


class Model:
    def __init__(self, ptds=False):
        # ptds: the program is built with CUDA_API_PER_THREAD_DEFAULT_STREAM, so NULL (and
        # every synchronous copy or memset) means the calling thread's per-thread stream.
        self.ptds = ptds
        self.clock = {}  # stream key -> {stream key: count}
        self.host = {0: {}}  # thread -> clock
        self.events = {}  # event id -> clock
        self.accesses = {}  # buffer -> {'w': (key, c) or None, 'r': {key: c}}
        self.capturing = {}  # stream key -> list of (reads, writes) captured
        self.graphs = {}  # graph id -> (reads, writes)

    # --- stream keys -------------------------------------------------------------------
    def key(self, thread, sid):
        if sid == 0 and self.ptds:
            return ('P', thread)
        if sid in LEGACY_IDS:
            return ('L', thread)
        if sid == PER_THREAD_ID:
            return ('P', thread)
        return ('S', sid)

    def stream_clock(self, key):
        return self.clock.setdefault(key, {})

    def effective(self, thread, key):
        """What an operation enqueued on KEY by THREAD now is known to come after."""
        eff = dict(self.stream_clock(key))
        vc_merge(eff, self.host.setdefault(thread, {}))
        return eff

    # --- questions ---------------------------------------------------------------------
    def unordered(self, thread, key, reads, writes):
        """Earlier accesses (stream key, count) that an operation on KEY reading READS and
        writing WRITES would race with."""
        eff = self.effective(thread, key) if key else dict(self.host.setdefault(thread, {}))
        out = set()
        for buf in set(reads) | set(writes):
            acc = self.accesses.get(buf)
            if not acc:
                continue
            pend = [acc['w']] if acc['w'] else []
            if buf in writes:
                pend += list(acc['r'].items())
            for k, c in pend:
                if eff.get(k, 0) < c:
                    out.add((k, c))
        return out

    def uncovered_by_host(self, thread, bufs):
        """Accesses of BUFS the host of THREAD has not seen complete."""
        host = self.host.setdefault(thread, {})
        out = set()
        for buf in bufs:
            acc = self.accesses.get(buf)
            if not acc:
                continue
            pend = ([acc['w']] if acc['w'] else []) + list(acc['r'].items())
            for k, c in pend:
                if host.get(k, 0) < c:
                    out.add((k, c))
        return out

    def stream_uncovered(self, thread, key):
        return self.host.setdefault(thread, {}).get(key, 0) < self.stream_clock(key).get(key, 0)

    # --- effects -----------------------------------------------------------------------
    def enqueue(self, thread, key, reads, writes):
        """An operation on KEY; returns its (key, count)."""
        if key in self.capturing:
            self.capturing[key].append((set(reads), set(writes)))
            return None
        vc = self.stream_clock(key)
        vc_merge(vc, self.host.setdefault(thread, {}))
        vc[key] = vc.get(key, 0) + 1
        c = vc[key]
        for buf in writes:
            self.accesses[buf] = {'w': (key, c), 'r': {}}
        for buf in reads:
            if buf in writes:
                continue
            acc = self.accesses.setdefault(buf, {'w': None, 'r': {}})
            acc['r'][key] = c
        return (key, c)

    def record(self, ev, key):
        self.events[ev] = dict(self.stream_clock(key))

    def wait(self, key, ev):
        vc_merge(self.stream_clock(key), self.events.get(ev, {}))

    def host_sync_stream(self, thread, key):
        vc_merge(self.host.setdefault(thread, {}), self.stream_clock(key))

    def host_sync_event(self, thread, ev):
        vc_merge(self.host.setdefault(thread, {}), self.events.get(ev, {}))

    def host_sync_all(self, thread, keys=None):
        for k in list(self.clock):
            if keys is None or k in keys:
                self.host_sync_stream(thread, k)

    def forget(self, buf):
        self.accesses.pop(buf, None)

    def begin_capture(self, key):
        self.capturing[key] = []

    def end_capture(self, key, graph, update):
        ops = self.capturing.pop(key)
        reads = set().union(*[r for r, _ in ops]) if ops else set()
        writes = set().union(*[w for _, w in ops]) if ops else set()
        self.graphs[graph] = (reads | writes, writes)

    def fork(self, threads):
        """A par block starts: every worker's host knows what thread 0's host knows."""
        for t in threads:
            self.host[t] = dict(self.host[0])

    def join(self, threads):
        for t in threads:
            vc_merge(self.host[0], self.host.get(t, {}))
