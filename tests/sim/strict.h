/*
 * strict.h — the simulator's hardware-like strictness (not a public contract):
 *
 *   poison.c   the poison pattern fresh device memory is filled with, and the shadow of
 *              device bytes written since they were mapped (uninit_reads)
 *   land.c     late landing: a copy's bytes arrive in chunks at their modelled time
 *   fault.c    kernel faults: a SIGSEGV in a kernel faults its stream (sticky
 *              CUDA_ERROR_ILLEGAL_ADDRESS) instead of killing the process; the
 *              allocations a launch's parameter words point into
 *   race.c     the happens-before race detector (SIMCUDA_RACECHECK=0: off)
 *   jitter.c   SIMCUDA_JITTER: reproducible random delays before stream work
 *
 * The hooks into the older files are calls to these functions and nothing else.
 */
#ifndef SIM_STRICT_H
#define SIM_STRICT_H

#include "tests/sim/sim.h"

/* ---- poison and the written-bytes shadow (poison.c) ------------------------------- */

/* Fills [p, p+n) with the poison pattern. The pattern depends only on the address
 * (byte at a is sim_poison_byte(a)), so any byte can be recognised as poison. */
void sim_poison_fill(void *p, size_t n);
unsigned char sim_poison_byte(uintptr_t a);

/* The shadow: which device bytes were written since they were mapped at their address.
 * Fresh: [p, p+n) was just mapped (cuMemAlloc, cuMemMap) and holds nothing written. */
void sim_shadow_fresh(uintptr_t p, size_t n);
void sim_shadow_written(uintptr_t p, size_t n);
/* A read of [p, p+n) (device or not): counts its never-written device bytes. */
void sim_shadow_read(uintptr_t p, size_t n);
/* After a kernel: the still-unwritten bytes of [p, p+n) that no longer hold poison were
 * written by the kernel. With the memory map held for reading. */
void sim_shadow_kernel_wrote(uintptr_t p, size_t n);
uint64_t sim_uninit_reads(void);

/* ---- late landing (land.c) -------------------------------------------------------- */

/* Runs a copy op on the calling thread: bytes land in chunks at their modelled times,
 * the destination reads as poison until then, source and mapping checked per chunk. */
void sim_copy_land(struct sim_op *op);

/* ---- kernel faults (fault.c) ------------------------------------------------------ */

/* At load: the SIGSEGV/SIGBUS handler (chaining to whatever was installed before). */
void sim_fault_init(void);
/* Runs a kernel op, catching its faults: CUDA_SUCCESS or CUDA_ERROR_ILLEGAL_ADDRESS
 * (the context is then sticky-broken). */
CUresult sim_kernel_run(struct sim_op *op);
uint64_t sim_kernel_faults(void);

/* The device extent (allocation or cuMemMap range) holding p, with the map held; for
 * stream-ordered memory the piece live in stream order, else the one live in API order. */
int sim_mem_extent_locked(uintptr_t p, uintptr_t *start, uintptr_t *end);

/* The 8-byte aligned words of a kernel op's argument buffer (at most MAX). */
#define SIM_MAX_PARAM_WORDS 256
size_t sim_kernel_param_words(const struct sim_op *op, uintptr_t *words);

/* ---- the race detector (race.c) --------------------------------------------------- */

extern int sim_race_on; /* SIMCUDA_RACECHECK=0 turns it off */
void sim_race_init(void);
/* Ordering, at submission: joins before sim_submit, the op's clock inside it (with
 * s->mu held), an event's clock at its record (events' lock held). */
void sim_race_op_join_stream(struct sim_op *op, struct sim_stream *t);
void sim_race_op_join_event(struct sim_op *op, const struct sim_event *e);
void sim_race_submit(struct sim_stream *s, struct sim_op *op);
void sim_race_event_record(struct sim_event *e, const struct sim_op *op);
/* A copy of e's clock (events' lock held; NULL when off or never recorded). */
struct sim_vc *sim_race_event_clock(const struct sim_event *e);
/* After op, its stream is ordered after vc as well, but op itself is not (a graph launch:
 * only the nodes after an event wait node wait for the event; what follows the launch in
 * its stream follows every node). Before sim_submit. */
void sim_race_op_join_after(struct sim_op *op, const struct sim_vc *vc);
/* op is ordered after vc (a clock sim_race_submit left in a graph op's clock_out). */
void sim_race_op_join_clock(struct sim_op *op, const struct sim_vc *vc);
void sim_race_op_free(struct sim_op *op);
/* The calling host thread has synchronised with a stream's submitted work, an event,
 * or a (kept) op it waited for. */
void sim_race_host_join_stream(struct sim_stream *s);
void sim_race_host_join_event(const struct sim_event *e);
void sim_race_host_join_op(const struct sim_op *op);
/* Checks an op's accesses when it runs; -1: a race (reported; the op must not run). */
int sim_race_check_op(struct sim_op *op);
/* Runs node `node` of the launched graph x (launch: the graph's op, whose epoch its
 * nodes share) on the calling thread; two nodes of one launch are ordered by the graph's
 * edges (sim_graph_node_before), not by their shared epoch. A node at or after one of the
 * launch's event wait nodes is also ordered after that wait's event clock. */
void sim_race_run_node(const struct sim_op *launch, const struct sim_graph_exec *x, uint32_t node,
                       struct sim_op *op);
/* A write of [p, p+n) by the op the calling worker is running (a stream-ordered
 * allocation or free, pool.c); -1: a race (reported, the context sticky-broken). */
int sim_race_running_write(uintptr_t p, size_t n);
/* A host write (cuMemUnmap, cuMemFree) of [p, p+n); -1: a race. */
int sim_race_host_write(const char *entry, uintptr_t p, size_t n);
uint64_t sim_races(void);

/* ---- jitter (jitter.c) ------------------------------------------------------------ */

/* SIMCUDA_JITTER=SEED: a random delay (0..~200 us, sometimes none) before the op the
 * calling worker is about to run; reproducible from the seed per stream. */
void sim_jitter_init(void);
void sim_jitter(struct sim_stream *s);

#endif /* SIM_STRICT_H */
