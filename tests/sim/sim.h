/*
 * sim.h — internals shared by the simulated driver's files (not a public contract).
 *
 *   core.c     process state, prologue (init gate, sticky error, fault injection),
 *              devices, contexts, errors, cuGetProcAddress, the exit report
 *   memory.c   the device address arena and capacity, the map of accessible ranges
 *              every copy is validated against (memory_internal.h: the memory files'
 *              contract)
 *   alloc.c    cuMemAlloc, cuMemFree
 *   physmem.c  physical memory (the pool handles keep their pages in), VMM handles
 *   vmm.c      VMM reservations, cuMemMap, cuMemSetAccess, cuMemUnmap
 *   hostmem.c  pinned host memory
 *   pointer.c  address and pointer queries
 *   copy.c     cuMemcpy* / cuMemset* entry points
 *   stream.c   streams (one worker thread each), events, ordering
 *   module.c   modules (host shared objects), functions, launches
 *   library.c  libraries (cuLibrary*) and CUkernel handles
 *   tensormap.c tensor-map encoders (the format is simkernel.h's)
 *   capture.c  stream capture: captured ops become nodes, capture modes and conflicts
 *   graph.c    graphs, nodes, instantiation, exec update (graph_internal.h: their contract)
 *   graph_run.c running a launched graph on its worker and the graph helper threads
 *   pool.c     stream-ordered allocation: memory pools, cuMemAllocAsync, cuMemFreeAsync
 */
#ifndef SIM_H
#define SIM_H

#include <cuda.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "tests/sim/simkernel.h"

#define SIM_API __attribute__((visibility("default")))

#define SIM_GRANULARITY ((size_t)2 << 20)

/* ---- prologue -------------------------------------------------------------------- */

/* Non-zero while anything makes the slow path necessary: not initialised yet, a sticky
 * error, or fault injection configured. The fast path of every entry point is one load. */
extern atomic_int sim_gate;
#define SIM_GATE_UNINIT 1
#define SIM_GATE_STICKY 2
#define SIM_GATE_FAULTS 4
#define SIM_GATE_DELAY 8 /* SIMCUDA_DELAY: an entry point sleeps before it runs */

CUresult sim_enter_slow(const char *name, int needs_init);

/* Per-entry-point call counts for SIMCUDA_REPORT: one static counter per entry point,
 * listed (once) at its first call. */
struct sim_call_count {
    const char *name;
    atomic_uint_fast64_t n;
    struct sim_call_count *next;
    atomic_int listed;
};
void sim_call_count_register(struct sim_call_count *c);
/* The entry point the calling thread is in (ops remember it, for race reports). */
extern __thread const char *sim_tls_entry;
#define SIM_COUNT_CALL(entry)                                                                      \
    do {                                                                                           \
        sim_tls_entry = entry;                                                                     \
        static struct sim_call_count sim_cc_ = {.name = entry};                                    \
        if (__builtin_expect(!atomic_load_explicit(&sim_cc_.listed, memory_order_acquire), 0))     \
            sim_call_count_register(&sim_cc_);                                                     \
        atomic_fetch_add_explicit(&sim_cc_.n, 1, memory_order_relaxed);                            \
    } while (0)

/* Every implemented entry point starts with one of these: ENTER for calls that need an
 * initialised driver (and fail on a sticky error), ENTER_ANY for calls that work
 * before cuInit (still subject to fault injection). */
#define SIM_ENTER(name)                                                                            \
    do {                                                                                           \
        SIM_COUNT_CALL(name);                                                                      \
        if (__builtin_expect(atomic_load_explicit(&sim_gate, memory_order_acquire), 0)) {          \
            CUresult sim_r_ = sim_enter_slow(name, 1);                                             \
            if (sim_r_ != CUDA_SUCCESS)                                                            \
                return sim_r_;                                                                     \
        }                                                                                          \
    } while (0)
#define SIM_ENTER_ANY(name)                                                                        \
    do {                                                                                           \
        SIM_COUNT_CALL(name);                                                                      \
        if (__builtin_expect(atomic_load_explicit(&sim_gate, memory_order_acquire), 0)) {          \
            CUresult sim_r_ = sim_enter_slow(name, 0);                                             \
            if (sim_r_ != CUDA_SUCCESS)                                                            \
                return sim_r_;                                                                     \
        }                                                                                          \
    } while (0)

/* Marks the process's device as broken (an asynchronous fault): every later call that
 * needs the driver returns `err`. */
void sim_set_sticky(CUresult err);
CUresult sim_sticky(void);

/* ---- fork ------------------------------------------------------------------------ */

/* fork() safety: core.c registers the one pthread_atfork handler. Prepare takes every
 * simulator lock in one fixed order, each module's in turn: core, device, module (the
 * list, then each module), graph, stream (events, the live list, each live stream), and
 * memory (the map, for writing) last; so the child's copy of every structure is
 * consistent. Parent releases them in reverse order; the child re-initialises them (the
 * child's thread is not the recorded owner of a held rwlock, so it could not unlock it). */
enum sim_fork_phase { SIM_FORK_PREPARE, SIM_FORK_PARENT, SIM_FORK_CHILD };
void sim_device_atfork(enum sim_fork_phase phase);
void sim_module_atfork(enum sim_fork_phase phase);
void sim_graph_atfork(enum sim_fork_phase phase);
void sim_stream_atfork(enum sim_fork_phase phase);
void sim_memory_atfork(enum sim_fork_phase phase);

/* ---- statistics and configuration ----------------------------------------------------- */

struct sim_stats {
    atomic_uint_fast64_t h2d_bytes, d2h_bytes, launches;
    atomic_uint_fast64_t faults; /* asynchronous faults: kernels, copies, memsets */
};
extern struct sim_stats sim_stats;
extern double sim_pcie_gbps; /* 0: copies take no modelled time */
extern int sim_log_enabled;
void sim_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- contexts -------------------------------------------------------------------- */

struct sim_stream;

struct sim_ctx {
    unsigned magic;
    int primary;
    int alive;
    unsigned flags;
    struct sim_stream *legacy; /* created with the context */
};

/* The calling thread's current context, or NULL. */
struct sim_ctx *sim_ctx_current(void);
int sim_ctx_valid(CUcontext c);

/* ---- memory ---------------------------------------------------------------------- */

void sim_memory_init(void);      /* at load: the address arena */
void sim_memory_configure(void); /* at the first cuInit: SIMCUDA_MEMORY */
size_t sim_memory_capacity(void);
size_t sim_memory_peak(void);

/* True if p lies in the device address arena (a device pointer, live or not). */
int sim_is_device(uintptr_t p);
/* True if [p, p+n) lies within pinned (page-locked or registered) host memory. */
int sim_is_pinned(uintptr_t p, size_t n);

/* Holds the memory map shared while a copy touches device memory, so nothing is
 * unmapped under it. check_* validate with the lock held. */
void sim_mem_read_lock(void);
void sim_mem_read_unlock(void);
/* SUCCESS if [p, p+n) is host memory or device memory accessible for reading (and
 * writing if `write`); else CUDA_ERROR_INVALID_VALUE. _locked: with the read lock held. */
CUresult sim_mem_check_locked(uintptr_t p, size_t n, int write);
CUresult sim_mem_check(uintptr_t p, size_t n, int write);

/* ---- stream-ordered allocation (pool.c) ------------------------------------------ */

/* The memory map's lock for writing (pool.c changes the map under it). */
void sim_mem_write_lock(void);
void sim_mem_write_unlock(void);
/* With the write lock held: a chunk of `size` bytes (a multiple of SIM_GRANULARITY) of
 * arena, PROT_NONE, counted against capacity; CUDA_ERROR_OUT_OF_MEMORY past it. */
CUresult sim_mem_chunk_take(size_t size, uintptr_t *addr);
void sim_mem_chunk_give(uintptr_t addr, size_t size);
/* With the map locked, for p inside a pool chunk: SUCCESS if [p, p+n) lies in one live
 * stream-ordered allocation, else CUDA_ERROR_INVALID_VALUE. Live at_call: between its
 * cuMemAllocAsync and cuMemFreeAsync calls; else (an op running): between the points in
 * stream order where the allocation and the free happen. */
CUresult sim_pool_check_locked(uintptr_t p, size_t n, int at_call);
/* With the map locked: the allocation holding p (0), or -1. */
int sim_pool_range_locked(uintptr_t p, uintptr_t *base, size_t *size, uint64_t *id);
/* With the map locked: the piece holding p that is live in stream order (its allocation
 * ran, its free has not), or -1. */
int sim_pool_live_extent_locked(uintptr_t p, uintptr_t *start, uintptr_t *end);
CUmemoryPool sim_pool_of_locked(uintptr_t p);
/* With the write lock held, the device idle: cuMemFree of a stream-ordered allocation. */
CUresult sim_pool_free_now_locked(uintptr_t p);
/* The host has seen `s` complete `seq` (s NULL: every stream what it has completed):
 * frees up to there become reusable by any stream, and pools above their release
 * threshold give memory back. Called by stream, event and context synchronization. */
void sim_pool_synced(struct sim_stream *s, uint64_t seq);
/* cuStreamWaitEvent: `waiter`'s later work is ordered after `on`'s op `seq`. */
void sim_pool_note_wait(struct sim_stream *waiter, struct sim_stream *on, uint64_t seq);

/* ---- streams and work ------------------------------------------------------------ */

enum sim_op_kind {
    SIM_OP_NOP,
    SIM_OP_COPY,
    SIM_OP_MEMSET,
    SIM_OP_KERNEL,
    SIM_OP_HOSTFN,
    SIM_OP_CALLBACK,
    SIM_OP_RECORD,
    SIM_OP_GRAPH,      /* a launched graph: its nodes run as their edges allow */
    SIM_OP_WAIT_EVENT, /* a graph's external event wait node (CU_EVENT_WAIT_EXTERNAL) */
};

struct sim_dep {
    struct sim_stream *stream;
    uint64_t seq;
};

struct sim_event;
struct sim_func;
struct sim_vc;      /* race.c: a vector clock */
struct sim_race_op; /* race.c: an op's epoch and clock */
struct sim_graph_exec;
struct sim_node;

/* A graph launch's event wait node `node`: it waits for (on, seq), the event's last
 * record when cuGraphLaunch was called, and the nodes after it are ordered after `vc`,
 * that record's clock (race.c; NULL when the detector is off). */
struct sim_graph_wait {
    uint32_t node;
    struct sim_stream *on; /* NULL: never recorded, no wait */
    uint64_t seq;
    struct sim_vc *vc;
};

struct sim_op {
    struct sim_op *next;
    enum sim_op_kind kind;
    uint64_t seq;
    int keep;                 /* the submitter frees it (synchronous calls read `result`) */
    const char *entry;        /* the entry point that made it */
    struct sim_race_op *race; /* race.c */
    CUresult result;          /* set by the worker */
    unsigned ndeps, dep_cap;
    struct sim_dep *deps;
    struct sim_dep dep_inline[2];
    union {
        struct {
            void *dst;
            const void *src;
            /* depth slices of height rows of width bytes; 1D: one row of one slice */
            size_t width, height, depth, dpitch, spitch, dslice, sslice;
            int dir;       /* 0 h2h, 1 h2d, 2 d2h, 3 d2d */
            void *staging; /* freed after the copy */
        } copy;
        struct {
            void *dst;
            size_t pitch, width, height; /* width in elements */
            unsigned elem, value;
        } memset;
        struct {
            void *func;   /* the CUfunction */
            void *kernel; /* the CUkernel it was launched as (cast to CUfunction), or NULL */
            const struct simkernel_desc *desc;
            struct simkernel_dim3 grid, block;
            void *args[SIMKERNEL_MAX_PARAMS];
            unsigned char *argbuf;
        } kernel;
        struct {
            CUhostFn fn;
            void *data;
        } hostfn;
        struct {
            CUstreamCallback fn;
            void *data;
            CUstream handle;
        } callback;
        struct {
            struct sim_event *event;
            uint64_t gen;
        } record;
        struct {
            struct sim_graph_exec *exec;
            /* the launch's external event waits, as the events stood at cuGraphLaunch */
            struct sim_graph_wait *waits;
            uint32_t nwaits;
            /* where race.c leaves the launch's clock when it is submitted (its graphExec's
             * last launch, under the exec handle's lock held across the submit) */
            struct sim_vc **clock_out;
        } graph;
        struct {
            struct sim_event *event;
        } wait;
    } u;
};

enum sim_stream_kind { SIM_STREAM_USER, SIM_STREAM_LEGACY, SIM_STREAM_PER_THREAD };

struct sim_capture;

struct sim_stream {
    unsigned magic;
    enum sim_stream_kind kind;
    int alive;
    unsigned flags;
    int priority;
    struct sim_ctx *ctx;
    pthread_mutex_t mu;
    pthread_cond_t work_cv, done_cv;
    struct sim_op *head, *tail;
    _Atomic uint64_t submitted, completed;
    struct sim_stream *prev, *next; /* the live list (stream.c); leaves it when drained */
    int worker_missing;             /* in a forked child, until work is queued */
    /* stream capture (capture.c), under its lock: the active capture this stream takes
     * part in (NULL once it ends: ending clears every member's), the next member of that
     * capture, and the nodes its next captured op depends on. `capture` is atomic only so
     * that a stream nothing captures is seen so with one load and no lock. */
    _Atomic(struct sim_capture *) capture;
    struct sim_stream *cap_next;
    struct sim_node **cap_deps;
    size_t ncap_deps, cap_deps_cap;
    struct sim_vc *race_vc; /* race.c: the clock of its last submitted op (under mu) */
    uint32_t race_slot;
};

struct sim_event {
    unsigned magic;
    int alive;
    unsigned flags;
    uint64_t gen;              /* bumped by every record */
    struct sim_stream *stream; /* of the last record, NULL if never recorded */
    uint64_t seq;
    int has_time;
    double time_ms;
    struct sim_event *next_free;
    /* recorded during stream capture: the capture and the nodes it stands for (capture.c,
     * under its lock; an ordinary record clears cap under the events' lock, hence atomic) */
    _Atomic(struct sim_capture *) cap;
    struct sim_node **cap_nodes;
    size_t ncap_nodes;
    struct sim_vc *race_vc; /* race.c: the clock of the last record (under the events' lock) */
};

struct sim_stream *sim_stream_create(struct sim_ctx *ctx, enum sim_stream_kind kind, unsigned flags,
                                     int priority);
/* Resolves a handle as an entry point sees it: NULL means the legacy stream, or the
 * per-thread stream for _ptsz/_ptds entry points (per_thread != 0). _resolve is for
 * calls that use the stream (work, waits, queries, synchronisation): the legacy stream
 * while a blocking stream of its context captures is CUDA_ERROR_STREAM_CAPTURE_IMPLICIT
 * and invalidates that capture (sim_capture_legacy_use). _lookup only finds it. */
CUresult sim_stream_resolve(CUstream h, int per_thread, struct sim_stream **out);
CUresult sim_stream_lookup(CUstream h, int per_thread, struct sim_stream **out);
struct sim_op *sim_op_new(enum sim_op_kind kind);
/* A kernel's argument buffer of `size` bytes, aligned as a GPU aligns its parameter space
 * (CUtensorMap needs 128 bytes): a kernel reads its parameters in place. */
unsigned char *sim_argbuf_new(size_t size);
void sim_op_free(struct sim_op *op);
/* op runs only after `stream` has completed `seq`. */
int sim_op_add_dep(struct sim_op *op, struct sim_stream *stream, uint64_t seq);
/* Adds the dependencies default-stream semantics require and queues op; returns its seq.
 * The op is the stream's (freed after it ran) unless op->keep. Callers route ops of a
 * capturing stream to sim_capture_op instead. */
uint64_t sim_submit(struct sim_stream *s, struct sim_op *op);
/* Submits op, waits for it and frees it; returns its result. */
CUresult sim_submit_sync(struct sim_stream *s, struct sim_op *op);
/* Waits for the work submitted to s so far (for the legacy stream, also the blocking
 * streams' work before it), as cuStreamSynchronize; returns the sticky error. */
CUresult sim_stream_sync(struct sim_stream *s);
/* Blocks until the stream has completed seq. */
void sim_stream_wait_seq(struct sim_stream *s, uint64_t seq);
/* Runs an op now on the calling thread (the worker, or a graph replay). */
void sim_op_execute(struct sim_op *op);
/* What e's last record stands for now: the stream and seq (*on NULL: never recorded)
 * and a copy of its race clock (NULL with the detector off), the caller's to free. */
void sim_event_snapshot(struct sim_event *e, struct sim_stream **on, uint64_t *seq,
                        struct sim_vc **vc);
/* Waits for every stream of ctx (NULL: all). */
void sim_sync_all(struct sim_ctx *ctx);
int sim_stream_is_capturing(struct sim_stream *s);

/* ---- modules and libraries (module.c, library.c) -------------------------------- */

/* What the cuModule* entry points do, without their prologue or context check, for
 * libraries (which load without a context). */
CUresult sim_module_open(CUmodule *out, const char *path);
CUresult sim_module_load_image(CUmodule *out, const void *image);
CUresult sim_module_function(CUfunction *out, CUmodule mod, const char *name);
CUresult sim_module_unload(CUmodule mod);
void *sim_module_dl(CUmodule mod); /* its dlopen handle */
int sim_func_attribute(CUfunction_attribute attrib);
/* The function a CUkernel of a live library launches as, or NULL when h is no CUkernel. */
CUfunction sim_kernel_launch_function(CUfunction h);

/* ---- graphs ---------------------------------------------------------------------- */

/* The calls that capture decide whether s captures and do what capture makes of the call
 * under one hold of capture.c's lock, so that a capture ending on another thread comes
 * wholly before or wholly after them. Each returns 1 when capture took the call (*r its
 * result), 0 when s takes part in no active capture (nothing done: the caller does the
 * ordinary work).
 * sim_capture_op: the op becomes a graph node (op consumed, also on failure). */
int sim_capture_op(struct sim_stream *s, struct sim_op *op, CUresult *r);
/* cuEventRecord on a capturing stream: the event stands for the stream's current nodes. */
int sim_capture_record(struct sim_stream *s, struct sim_event *e, CUresult *r);
/* cuStreamWaitEvent(s, e, flags): with CU_EVENT_WAIT_EXTERNAL an event wait node (a graph
 * launch waits for the event's last record before cuGraphLaunch; outside capture
 * CUDA_ERROR_INVALID_VALUE); of an event recorded in an active capture, s forks into it,
 * joins it or merges two; an event recorded outside (`recorded`: ever recorded) from a
 * capturing stream, CUDA_ERROR_STREAM_CAPTURE_ISOLATION. 0 when none of these applies. */
int sim_capture_wait(struct sim_stream *s, struct sim_event *e, unsigned flags, int recorded,
                     CUresult *r);

/* Capture modes (cuThreadExchangeStreamCaptureMode). A "potentially unsafe" call (one
 * that stream capture cannot observe: cuMemAlloc, cuMemFree, synchronous copies, stream,
 * event and context synchronisation, VMM calls...) made while the calling thread's mode
 * prohibits it fails with CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED and invalidates the
 * captures that prohibit it; else CUDA_SUCCESS. One atomic load when nothing captures. */
CUresult sim_capture_unsafe_call(void);
#define SIM_UNSAFE_CALL()                                                                          \
    do {                                                                                           \
        CUresult sim_u_ = sim_capture_unsafe_call();                                               \
        if (sim_u_ != CUDA_SUCCESS)                                                                \
            return sim_u_;                                                                         \
    } while (0)
/* Operations that conflict with capture in every mode. Synchronising or querying a
 * capturing stream, or a context one of whose streams captures: invalidates those
 * captures, CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED. Querying or synchronising an event
 * last recorded in an active capture: invalidates it, CUDA_ERROR_CAPTURED_EVENT. */
CUresult sim_capture_conflict_stream(struct sim_stream *s);
/* Invalidates s's capture, if it captures (1), silently. */
int sim_capture_invalidate_stream(struct sim_stream *s);
CUresult sim_capture_conflict_ctx(struct sim_ctx *ctx);
CUresult sim_capture_conflict_event(struct sim_event *e);
/* The legacy stream `s` used (a launch, copy, memset, record, wait, query or
 * synchronisation on it) while a stream of its context not created NON_BLOCKING takes
 * part in an active capture: the programming guide's "any attempted use of the legacy
 * stream is invalid" (it would depend on the captured work). CUDA_ERROR_STREAM_CAPTURE_IMPLICIT,
 * and those captures invalidated if `invalidate`; else (or for other streams) SUCCESS.
 * One compare and one atomic load on the fast path. */
CUresult sim_capture_legacy_use(struct sim_stream *s, int invalidate);

/* Runs a launched graph (the op `launch`) on the calling worker: a node starts once its
 * dependencies are done, independent nodes run concurrently on the graph helper threads. */
void sim_graph_execute(struct sim_graph_exec *x, const struct sim_op *launch);
void sim_graph_exec_release(struct sim_graph_exec *x);
/* Whether node a of x happens before node b by the graph's edges (the race detector). */
int sim_graph_node_before(const struct sim_graph_exec *x, uint32_t a, uint32_t b);

/* Bytes from the first to the last byte touched by a pitched 3D region. */
static inline size_t sim_span(size_t w, size_t h, size_t d, size_t pitch, size_t slice) {
    return w && h && d ? (d - 1) * slice + (h - 1) * pitch + w : 0;
}

/* ---- helpers --------------------------------------------------------------------- */

double sim_now_ms(void);
int sim_parse_size(const char *s, size_t *out);

#endif /* SIM_H */
