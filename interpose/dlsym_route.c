/*
 * dlsym_route.c — liboffload's dlsym, exported as dlsym@GLIBC_2.2.5 and
 * dlsym@@GLIBC_2.34 (the two versions glibc exports on x86_64; programs built before
 * glibc 2.34 bind the first, newer ones the second).
 *
 * Why: the CUDA runtime dlopens libcuda.so.1 privately and looks up its resolver with
 * dlsym(handle, "cuGetProcAddress_v2"), a lookup in the driver's own scope that never
 * sees LD_PRELOAD symbols; other frameworks (TensorFlow's and XLA's stream executors)
 * look up every entry point that way, e.g. dlsym(handle, "cuMemAlloc_v2"). A lookup on
 * the handle of the driver liboffload forwards to, of a name liboffload hooks, is
 * answered with the hook of that exact symbol (the resolver for cuGetProcAddress and
 * cuGetProcAddress_v2). The driver does not version its symbols, so a name is an ABI:
 * "cuMemAlloc" (the 32-bit ABI) is not hooked and keeps the driver's own function.
 * Every other lookup goes to the real dlsym.
 *
 * How, without changing what any other lookup means: glibc's dlsym resolves RTLD_NEXT
 * and RTLD_DEFAULT relative to the object that called it, found from its own return
 * address. A C wrapper calling the real dlsym would make liboffload the caller: RTLD_NEXT
 * from a wrapper library would skip the wrong objects (and loop when liboffload is
 * preloaded before the wrapper), and RTLD_DEFAULT from a library loaded RTLD_LOCAL would
 * lose that library's local scope. So each entry point is a small assembly trampoline:
 * it asks interpose_dlsym_route (plain C) whether to answer, and otherwise *jumps* to
 * the real dlsym with the caller's return address still on the stack, exactly as if the
 * caller had called glibc directly. A C tail call is not guaranteed (gcc 12 has no
 * musttail; -O0/-O1 sanitizer builds do not make sibling calls), hence the assembly.
 */
#include "base/log.h"
#include "driver/driver.h"
#include "driver/real_dlsym.h"
#include "interpose/hook.h"

#include <dlfcn.h>
#include <string.h>

#if !defined(__x86_64__)
#error "liboffload's dlsym trampolines are written for x86_64"
#endif

/* The rare path: a lookup of NAME, a name liboffload hooks as `mine`, on a real handle. */
static void *route_hooked(void *handle, const char *name, void *mine) {
    /* The lookup as it would be without liboffload (a handle lookup does not depend on
     * the caller): a handle without that symbol answers NULL as before, and a successful
     * lookup leaves dlerror() in the state a successful dlsym leaves it in. */
    if (!real_dlsym(handle, name))
        return NULL;
    if (!driver_is_handle(handle)) {
        /* A CUDA driver, but not the one liboffload forwards to (OFFLOAD_DRIVER names
         * another file): the program would bypass liboffload entirely, so say so. */
        log_warn("dlsym: %s looked up in a CUDA driver other than the one liboffload uses "
                 "(OFFLOAD_DRIVER?): that program is not intercepted",
                 name);
        return NULL; /* the real dlsym answers it */
    }
    (void)real_dlsym(handle, name); /* driver_is_handle may have run dl* calls */
    log_debug("dlsym: %s on the driver's handle -> liboffload's %s", name,
              strncmp(name, "cuGetProcAddress", 16) == 0 ? "resolver" : "hook");
    return mine;
}

/* Called by the trampolines for every dlsym in the process: liboffload's answer, or NULL
 * to let the real dlsym answer. Leaves real_dlsym_table filled either way. Until the name
 * is known to start with "cu" it runs no instrumented code and no intercepted call
 * (sanitizer runtimes call dlsym while they initialise, never for a cu* name; see
 * real_dlsym_init), hence the hand-written prefix test instead of strncmp. */
__attribute__((visibility("hidden"), used)) void *interpose_dlsym_route(void *handle,
                                                                        const char *name);

__attribute__((no_sanitize("address", "thread", "undefined"))) void *
interpose_dlsym_route(void *handle, const char *name) {
    real_dlsym_init();
    if (handle == RTLD_DEFAULT || handle == RTLD_NEXT || !name || name[0] != 'c' || name[1] != 'u')
        return NULL;
    const struct hook_entry *hook = hook_find(name);
    return hook ? route_hooked(handle, name, hook->fn) : NULL;
}

/* Stack at entry: return address (rsp % 16 == 8). Two saved argument registers and 8
 * bytes of padding realign it to 16 for the call. The CFI lines keep unwinding and
 * debuggers correct inside the trampoline. */
#define DLSYM_TRAMPOLINE(entry, next_offset)                                                       \
    ".globl " entry "\n"                                                                           \
    ".type " entry ", @function\n"                                                                 \
    ".p2align 4\n" entry ":\n"                                                                     \
    "    .cfi_startproc\n"                                                                         \
    "    endbr64\n"                                                                                \
    "    pushq %rdi\n"                                                                             \
    "    .cfi_adjust_cfa_offset 8\n"                                                               \
    "    pushq %rsi\n"                                                                             \
    "    .cfi_adjust_cfa_offset 8\n"                                                               \
    "    subq $8, %rsp\n"                                                                          \
    "    .cfi_adjust_cfa_offset 8\n"                                                               \
    "    call interpose_dlsym_route\n"                                                             \
    "    addq $8, %rsp\n"                                                                          \
    "    .cfi_adjust_cfa_offset -8\n"                                                              \
    "    popq %rsi\n"                                                                              \
    "    .cfi_adjust_cfa_offset -8\n"                                                              \
    "    popq %rdi\n"                                                                              \
    "    .cfi_adjust_cfa_offset -8\n"                                                              \
    "    testq %rax, %rax\n"                                                                       \
    "    jz 1f\n"                                                                                  \
    "    ret\n"                                                                                    \
    "1:  jmp *real_dlsym_table+" next_offset "(%rip)\n"                                            \
    "    .cfi_endproc\n"                                                                           \
    ".size " entry ", .-" entry "\n"

__asm__(".text\n" DLSYM_TRAMPOLINE("offload_dlsym_glibc_2_2_5", "0")
            DLSYM_TRAMPOLINE("offload_dlsym_glibc_2_34",
                             "8") ".symver offload_dlsym_glibc_2_2_5, dlsym@GLIBC_2.2.5\n"
                                  ".symver offload_dlsym_glibc_2_34, dlsym@@GLIBC_2.34\n");

_Static_assert(__builtin_offsetof(struct real_dlsym_table, glibc_2_2_5) == 0,
               "the trampolines read the table at fixed offsets");
_Static_assert(__builtin_offsetof(struct real_dlsym_table, glibc_2_34) == 8,
               "the trampolines read the table at fixed offsets");
