/*
 * real_dlsym.h — the dlsym that liboffload's own dlsym overrides step aside for.
 *
 * liboffload exports dlsym under both glibc versions (dlsym_route.c). Its own code must
 * therefore never call dlsym by name (that would be the override); it looks symbols up
 * through these pointers instead, found once with dlvsym(RTLD_NEXT, ...): the next dlsym
 * after liboffload in the lookup order, normally glibc's.
 */
#ifndef OFFLOAD_REAL_DLSYM_H
#define OFFLOAD_REAL_DLSYM_H

typedef void *(*real_dlsym_fn)(void *handle, const char *symbol);

/* Read by the dlsym trampolines (dlsym_route.c), which tail-jump through them; filled by
 * real_dlsym_init() before any read. Never NULL once filled. */
struct real_dlsym_table {
    real_dlsym_fn glibc_2_2_5; /* offset 0: dlsym@GLIBC_2.2.5 */
    real_dlsym_fn glibc_2_34;  /* offset 8: dlsym@GLIBC_2.34 */
};
extern struct real_dlsym_table real_dlsym_table;

/* Fills real_dlsym_table once; cheap after the first call; safe from any thread, from
 * inside the dynamic loader's callbacks and from a sanitizer runtime's initialisation
 * (no allocation, no dlopen, no lock, no instrumentation). */
void real_dlsym_init(void);

/* dlsym(handle, symbol) through the real dlsym. Only for real handles: a RTLD_NEXT or
 * RTLD_DEFAULT lookup through here would be made on liboffload's behalf, not the
 * caller's. */
void *real_dlsym(void *handle, const char *symbol);

#endif /* OFFLOAD_REAL_DLSYM_H */
