/*
 * entries.h — the generated driver surface (entries_gen.c, made by gen_entries.py).
 * Deliberately free of cuda.h: the generated file declares every exported symbol as a
 * plain function, which cuda.h's prototypes and macros would contradict.
 */
#ifndef SIM_ENTRIES_H
#define SIM_ENTRIES_H

/* One row of cuGetProcAddress's table: `name` at ABI `version` (and later, until the
 * next row) is `symbol`; per_thread rows are the _ptds/_ptsz variants. Sorted by name,
 * then version. */
struct sim_proc {
    const char *name;
    int version;
    int per_thread;
    const char *symbol;
    void *fn;
};
extern const struct sim_proc sim_proc_table[];
extern const unsigned sim_proc_count;

struct sim_error {
    int code;
    const char *name;
    const char *text;
};
extern const struct sim_error sim_error_table[]; /* sorted by code */
extern const unsigned sim_error_count;

/* What every unimplemented entry point returns (CUDA_ERROR_NOT_SUPPORTED); logs `name`
 * once under SIMCUDA_LOG=1. `logged` is the entry point's own flag. */
int sim_unimplemented(const char *name, int *logged);

#endif
