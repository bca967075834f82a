/*
 * test_interpose_resolver.c — the pure parts of interpose/: the hook table (sorted, every
 * hook forwards to a driver entry, no hook under an older ABI's name) and resolver_pick
 * (a hook only for exactly the symbol the driver returned), driven through a fake
 * driver symbol table; plus what hooks answer when no driver can be loaded.
 */
#include "driver/driver.h"
#include "interpose/hook.h"
#include "interpose/resolver.h"
#include "tests/unit/check.h"

#include <stdlib.h>

/* --- a fake driver: symbol name -> address ------------------------------------------ */

struct fake_symbol {
    const char *name;
    void *fn;
};

/* Distinct fake addresses; only their identity matters. */
static char fake_code[16];
#define FAKE(i) ((void *)&fake_code[i])

static const struct fake_symbol fake_driver[] = {
    {"cuMemAlloc", FAKE(0)},           /* 32-bit ABI */
    {"cuMemAlloc_v2", FAKE(1)},        /* 64-bit ABI */
    {"cuMemcpyHtoD_v2", FAKE(2)},      /* aliases of one function: */
    {"cuMemcpyHtoD_v2_ptds", FAKE(2)}, /* ... same code, same ABI */
    {"cuMemcpyDtoH_v2", FAKE(3)},
    {"cuMemcpyDtoH_v2_ptds", FAKE(4)}, /* distinct per-thread function */
    {"cuGetProcAddress", FAKE(5)},
    {"cuGetProcAddress_v2", FAKE(6)},
    {"cuGraphInstantiateWithFlags", FAKE(7)},
    {"cuCtxCreate_v4", FAKE(8)}, /* not hooked at all */
};

static void *fake_lookup(void *ctx, const char *symbol) {
    (void)ctx;
    for (size_t i = 0; i < sizeof fake_driver / sizeof fake_driver[0]; i++) {
        if (strcmp(fake_driver[i].name, symbol) == 0)
            return fake_driver[i].fn;
    }
    return NULL;
}

static const char *pick(const char *requested, const char *dladdr_name, cuuint64_t flags,
                        void *fn) {
    struct resolver_query q = {
        .requested = requested,
        .flags = flags,
        .fn = fn,
        .dladdr_name = dladdr_name,
        .lookup = fake_lookup,
    };
    const struct hook_entry *hook = resolver_pick(&q);
    return hook ? hook->symbol : "(driver)";
}

TEST(versioned_symbol_gets_its_hook) {
    CHECK_STR(pick("cuMemAlloc", "cuMemAlloc_v2", 0, FAKE(1)), "cuMemAlloc_v2");
    /* found through the suffix family even when dladdr cannot name it */
    CHECK_STR(pick("cuMemAlloc", NULL, 0, FAKE(1)), "cuMemAlloc_v2");
}

TEST(old_abi_keeps_the_driver_pointer) {
    /* cuMemAlloc@2000 is the 32-bit ABI: never the _v2 hook */
    CHECK_STR(pick("cuMemAlloc", "cuMemAlloc", 0, FAKE(0)), "(driver)");
    CHECK_STR(pick("cuMemAlloc", NULL, 0, FAKE(0)), "(driver)");
}

TEST(unknown_or_internal_pointer_keeps_the_driver_pointer) {
    CHECK_STR(pick("cuMemAlloc", NULL, 0, FAKE(9)), "(driver)");
    /* dladdr naming a hooked symbol whose exported address is something else (a local
     * alias, a pointer outside the driver) is not a match */
    CHECK_STR(pick("cuMemAlloc", "cuMemAlloc_v2", 0, FAKE(9)), "(driver)");
    CHECK_STR(pick("cuCtxCreate", "cuCtxCreate_v4", 0, FAKE(8)), "(driver)");
    CHECK_STR(pick("cuMemAlloc", NULL, 0, NULL), "(driver)");
}

TEST(per_thread_variants) {
    const cuuint64_t pt = CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM;
    CHECK_STR(pick("cuMemcpyDtoH", "cuMemcpyDtoH_v2_ptds", pt, FAKE(4)), "cuMemcpyDtoH_v2_ptds");
    CHECK_STR(pick("cuMemcpyDtoH", "cuMemcpyDtoH_v2", 0, FAKE(3)), "cuMemcpyDtoH_v2");
    /* the flags never override what the driver returned */
    CHECK_STR(pick("cuMemcpyDtoH", "cuMemcpyDtoH_v2", pt, FAKE(3)), "cuMemcpyDtoH_v2");
    /* aliases: the flags choose, whatever name dladdr happened to report */
    CHECK_STR(pick("cuMemcpyHtoD", "cuMemcpyHtoD_v2", pt, FAKE(2)), "cuMemcpyHtoD_v2_ptds");
    CHECK_STR(pick("cuMemcpyHtoD", "cuMemcpyHtoD_v2_ptds", 0, FAKE(2)), "cuMemcpyHtoD_v2");
    CHECK_STR(
        pick("cuMemcpyHtoD", "cuMemcpyHtoD_v2_ptds", CU_GET_PROC_ADDRESS_LEGACY_STREAM, FAKE(2)),
        "cuMemcpyHtoD_v2");
}

TEST(resolver_itself_and_renamed_entries) {
    CHECK_STR(pick("cuGetProcAddress", "cuGetProcAddress_v2", 0, FAKE(6)), "cuGetProcAddress_v2");
    CHECK_STR(pick("cuGetProcAddress", "cuGetProcAddress", 0, FAKE(5)), "cuGetProcAddress");
    /* cuGraphInstantiate@12000 is cuGraphInstantiateWithFlags: only dladdr can tell */
    CHECK_STR(pick("cuGraphInstantiate", "cuGraphInstantiateWithFlags", 0, FAKE(7)),
              "cuGraphInstantiateWithFlags");
}

TEST(family_hooked) {
    CHECK(resolver_family_hooked("cuMemAlloc"));
    CHECK(resolver_family_hooked("cuMemcpyHtoD"));
    CHECK(resolver_family_hooked("cuMemsetD8Async"));
    CHECK(resolver_family_hooked("cuGetProcAddress"));
    CHECK(!resolver_family_hooked("cuInit"));
    CHECK(!resolver_family_hooked("cuCtxCreate"));
    CHECK(!resolver_family_hooked(""));
    CHECK(!resolver_family_hooked(NULL));
}

/* --- the hook table ------------------------------------------------------------------ */

static const char *const driver_entries[] = {
#define ENTRY_NAME(symbol, prototype) #symbol,
    DRIVER_ENTRIES(ENTRY_NAME)
#undef ENTRY_NAME
};

static bool has_driver_entry(const char *name) {
    for (size_t i = 0; i < sizeof driver_entries / sizeof driver_entries[0]; i++) {
        if (strcmp(driver_entries[i], name) == 0)
            return true;
    }
    return false;
}

TEST(table_sorted_and_found) {
    size_t count;
    const struct hook_entry *t = hook_table(&count);
    CHECK(count > 90);
    for (size_t i = 0; i < count; i++) {
        CHECK(t[i].fn != NULL);
        if (i > 0 && strcmp(t[i - 1].symbol, t[i].symbol) >= 0) {
            fprintf(stderr, "out of order: %s, %s\n", t[i - 1].symbol, t[i].symbol);
            CHECK(!"hook table sorted");
        }
        CHECK(hook_find(t[i].symbol) == &t[i]);
    }
    CHECK(hook_find("cuMemAlloc") == NULL);
    CHECK(hook_find("cuCtxCreate_v4") == NULL);
    CHECK(hook_find(NULL) == NULL);
}

/* Every hook forwards to the driver entry of the same symbol; an older ABI that cuda.h
 * turns into a macro is the table's NAME_v1 (driver.h). */
TEST(every_hook_forwards_to_its_own_symbol) {
    size_t count;
    const struct hook_entry *t = hook_table(&count);
    for (size_t i = 0; i < count; i++) {
        char v1[128];
        snprintf(v1, sizeof v1, "%s_v1", t[i].symbol);
        if (!has_driver_entry(t[i].symbol) && !has_driver_entry(v1)) {
            fprintf(stderr, "no driver entry for hook %s\n", t[i].symbol);
            CHECK(!"driver entry");
        }
    }
}

/* A hook under a plain name whose _v2 is also hooked must be that older ABI's own hook
 * (forwarding to NAME_v1), never the 64-bit one under the old name. The old 32-bit
 * memory ABIs are not hooked at all. Where cuda.h declares both ABIs under their own
 * names (no macro turns NAME into NAME_v2), the driver table spells the older one NAME:
 * those are listed, and the hook must forward to that entry. */
TEST(no_hook_under_an_older_abi_name) {
    static const char *const old_abis[] = {
        "cuMemAlloc",           "cuMemFree",       "cuMemAllocPitch",     "cuMemGetInfo",
        "cuMemGetAddressRange", "cuMemcpyHtoD",    "cuMemcpyDtoH",        "cuMemcpyDtoD",
        "cuMemcpyDtoA",         "cuMemcpyAtoD",    "cuMemcpyHtoDAsync",   "cuMemcpyDtoHAsync",
        "cuMemcpyDtoDAsync",    "cuMemcpy2D",      "cuMemcpy2DUnaligned", "cuMemcpy2DAsync",
        "cuMemcpy3D",           "cuMemcpy3DAsync", "cuMemsetD8",          "cuMemsetD16",
        "cuMemsetD32",          "cuMemsetD2D8",    "cuMemsetD2D16",       "cuMemsetD2D32",
        "cuStreamDestroy",
    };
    for (size_t i = 0; i < sizeof old_abis / sizeof old_abis[0]; i++) {
        if (hook_find(old_abis[i])) {
            fprintf(stderr, "hooked under an old ABI name: %s\n", old_abis[i]);
            CHECK(!"old ABI not hooked");
        }
    }
    size_t count;
    const struct hook_entry *t = hook_table(&count);
    for (size_t i = 0; i < count; i++) {
        char v2[128], v1[128];
        snprintf(v2, sizeof v2, "%s_v2", t[i].symbol);
        snprintf(v1, sizeof v1, "%s_v1", t[i].symbol);
        static const char *const both_declared[] = {"cuCtxSynchronize"};
        bool declared = false;
        for (size_t k = 0; k < sizeof both_declared / sizeof both_declared[0]; k++)
            declared |= strcmp(t[i].symbol, both_declared[k]) == 0 && has_driver_entry(t[i].symbol);
        if (hook_find(v2) && !has_driver_entry(v1) && !declared) {
            fprintf(stderr, "%s and %s hooked, no %s entry\n", t[i].symbol, v2, v1);
            CHECK(!"older ABI forwards to its own entry");
        }
    }
}

/* --- no driver ----------------------------------------------------------------------- */

TEST(no_driver_means_not_initialized) {
    /* Runs before anything else loads the driver in this process. */
    CHECK(driver_handle() == NULL);
    CHECK(driver()->cuMemAlloc_v2 == NULL);
    CHECK(!driver_is_handle(NULL));
    CUdeviceptr p = 0;
    CHECK_EQ_U64(cuMemAlloc_v2(&p, 1 << 20), CUDA_ERROR_NOT_INITIALIZED);
    CHECK_EQ_U64(cuMemcpyHtoD_v2(p, "x", 1), CUDA_ERROR_NOT_INITIALIZED);
    CHECK_EQ_U64(cuLaunchKernel(NULL, 1, 1, 1, 1, 1, 1, 0, NULL, NULL, NULL),
                 CUDA_ERROR_NOT_INITIALIZED);
    void *fn = NULL;
    CHECK_EQ_U64(cuGetProcAddress_v2("cuMemAlloc", &fn, 12000, 0, NULL),
                 CUDA_ERROR_NOT_INITIALIZED);
    CHECK(fn == NULL);
    CHECK_EQ_U64(driver_missing(), CUDA_ERROR_NOT_INITIALIZED);
}

int main(void) {
    setenv("OFFLOAD_DRIVER", "/nonexistent/liboffload-test/libcuda.so.1", 1);
    RUN(no_driver_means_not_initialized);
    RUN(versioned_symbol_gets_its_hook);
    RUN(old_abi_keeps_the_driver_pointer);
    RUN(unknown_or_internal_pointer_keeps_the_driver_pointer);
    RUN(per_thread_variants);
    RUN(resolver_itself_and_renamed_entries);
    RUN(family_hooked);
    RUN(table_sorted_and_found);
    RUN(every_hook_forwards_to_its_own_symbol);
    RUN(no_hook_under_an_older_abi_name);
    return check_summary();
}
