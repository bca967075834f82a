/*
 * builtin.h — PTX images whose entries the simulator implements natively (builtin.c).
 *
 * The simulator cannot run PTX. liboffload's own device code is PTX (runtime/devcode/),
 * so cuModuleLoadData accepts a PTX text image when every `.entry` it declares is one the
 * simulator knows, with the exact parameter list of its host implementation; any other
 * PTX fails as a driver that cannot compile it would (CUDA_ERROR_INVALID_PTX). The
 * functions of such a module launch like any kernel: on a stream, seen by the race
 * detector (each pointer parameter is an access, read-only ones as reads), faults and
 * the written-bytes shadow.
 */
#ifndef SIM_BUILTIN_H
#define SIM_BUILTIN_H

#include "tests/sim/simkernel.h"

#include <cuda.h>

/* Whether image (not ELF) is PTX text: it has a `.version` and a `.target` directive. */
int sim_ptx_image(const void *image);

/* CUDA_SUCCESS when ptx's version and target suit the simulated device and every entry
 * it declares is a built-in with matching parameters; else CUDA_ERROR_INVALID_PTX or
 * CUDA_ERROR_UNSUPPORTED_PTX_VERSION (logged with SIMCUDA_LOG=1). */
CUresult sim_ptx_check(const char *ptx);

/* The built-in descriptor of entry `name` declared in ptx (checked), or NULL. */
const struct simkernel_desc *sim_ptx_entry(const char *ptx, const char *name);

#endif /* SIM_BUILTIN_H */
