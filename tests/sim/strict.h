/*
 * strict.h — the simulator's hardware-like strictness (not a public contract):
 *
 *   poison.c   the poison pattern fresh device memory is filled with, and the shadow of
 *              device bytes written since they were mapped (uninit_reads)
 *   land.c     late landing: a copy's bytes arrive in chunks at their modelled time
 *   fault.c    kernel faults: a SIGSEGV in a kernel faults its stream (sticky
 *              CUDA_ERROR_ILLEGAL_ADDRESS) instead of killing the process; the
 *              allocations a launch's parameter words point into
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

/* The device extent (allocation or cuMemMap range) holding p, with the map held. */
int sim_mem_extent_locked(uintptr_t p, uintptr_t *start, uintptr_t *end);

/* ---- jitter (jitter.c) ------------------------------------------------------------ */

/* SIMCUDA_JITTER=SEED: a random delay (0..~200 us, sometimes none) before the op the
 * calling worker is about to run; reproducible from the seed per stream. */
void sim_jitter_init(void);
void sim_jitter(struct sim_stream *s);

#endif /* SIM_STRICT_H */
