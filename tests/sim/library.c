/*
 * library.c — context-independent loading: cuLibrary* and CUkernel (CUDA 12+).
 *
 * A library is one module (module.c: the same host shared object format) loaded without
 * a context, plus one CUkernel per kernel the object exports, created at load time from
 * its dynamic symbol table (every defined `simkernel__NAME`). A CUkernel is an object
 * of its own, never a CUfunction: cuFunc* entry points reject it with
 * CUDA_ERROR_INVALID_HANDLE (the stricter of the real driver's behaviours), while the
 * launch entry points accept it cast to CUfunction (module.c asks
 * sim_kernel_launch_function) and cuKernelGetFunction gives the module's CUfunction.
 *
 * Nothing here takes a lock: a library and its kernels are complete before the handle
 * is returned and never change afterwards, except `alive`, which is atomic. As with
 * modules, nothing is freed: queued launches and graphs may still use the code.
 */
#include "tests/sim/sim.h"

#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <stdlib.h>
#include <string.h>

#define LIBRARY_MAGIC 0x4c494252u
#define KERNEL_MAGIC 0x4b524e4cu

struct sim_library;

struct sim_kernel {
    unsigned magic; /* first, like every handle's, so func_of in module.c tells them apart */
    const struct simkernel_desc *desc;
    struct sim_library *lib;
    CUfunction func; /* the module's function for this kernel */
};

struct sim_library {
    unsigned magic;
    atomic_int alive;
    CUmodule module;
    unsigned nkernels;
    struct sim_kernel *kernels;
    struct sim_library *next; /* every library ever loaded (below) */
};

/* Libraries are never freed, so that a handle used after cuLibraryUnload is recognised
 * (alive == 0) instead of reading freed memory; this list keeps them reachable, which is
 * also what the leak checker of a sanitizer build asks. */
static struct sim_library *_Atomic every_library;

static struct sim_library *library_of(CUlibrary h) {
    struct sim_library *l = (struct sim_library *)h;
    return l && l->magic == LIBRARY_MAGIC && atomic_load(&l->alive) ? l : NULL;
}

static struct sim_kernel *kernel_of(CUkernel h) {
    struct sim_kernel *k = (struct sim_kernel *)h;
    return k && k->magic == KERNEL_MAGIC && atomic_load(&k->lib->alive) ? k : NULL;
}

CUfunction sim_kernel_launch_function(CUfunction h) {
    struct sim_kernel *k = kernel_of((CUkernel)h);
    return k ? k->func : NULL;
}

/* ---- the kernels a loaded object exports ------------------------------------------ */

/* An address from the dynamic section: glibc has relocated most of them in place, a
 * value below the load base is still a virtual address of the object. */
static const void *dyn_address(Elf64_Addr p, Elf64_Addr base) {
    return (const void *)(p < base ? p + base : p);
}

/* The number of dynamic symbols: DT_HASH says it; with only DT_GNU_HASH, it is one past
 * the last symbol of the longest bucket chain. */
static size_t dynsym_count(const uint32_t *hash, const uint32_t *gnu) {
    if (hash)
        return hash[1];
    if (!gnu)
        return 0;
    uint32_t nbuckets = gnu[0], symoffset = gnu[1], bloom_words = gnu[2];
    const uint32_t *buckets = (const uint32_t *)((const uint64_t *)(gnu + 4) + bloom_words);
    const uint32_t *chain = buckets + nbuckets;
    uint32_t last = 0;
    for (uint32_t i = 0; i < nbuckets; i++)
        if (buckets[i] > last)
            last = buckets[i];
    if (last < symoffset)
        return symoffset;
    while (!(chain[last - symoffset] & 1))
        last++;
    return (size_t)last + 1;
}

struct dynsyms {
    const Elf64_Sym *sym;
    const char *str;
    size_t count;
};

static int dynsyms_of(void *dl, struct dynsyms *out) {
    struct link_map *lm = NULL;
    if (dlinfo(dl, RTLD_DI_LINKMAP, &lm) != 0 || !lm)
        return -1;
    const uint32_t *hash = NULL, *gnu = NULL;
    memset(out, 0, sizeof *out);
    for (const Elf64_Dyn *d = lm->l_ld; d->d_tag != DT_NULL; d++) {
        if (d->d_tag == DT_SYMTAB)
            out->sym = dyn_address(d->d_un.d_ptr, lm->l_addr);
        else if (d->d_tag == DT_STRTAB)
            out->str = dyn_address(d->d_un.d_ptr, lm->l_addr);
        else if (d->d_tag == DT_HASH)
            hash = dyn_address(d->d_un.d_ptr, lm->l_addr);
        else if (d->d_tag == DT_GNU_HASH)
            gnu = dyn_address(d->d_un.d_ptr, lm->l_addr);
    }
    out->count = dynsym_count(hash, gnu);
    return out->sym && out->str ? 0 : -1;
}

/* The descriptor a defined dynamic symbol names, if it is a kernel's. */
static const struct simkernel_desc *kernel_symbol(void *dl, const struct dynsyms *ds, size_t i) {
    const Elf64_Sym *s = &ds->sym[i];
    const char *name = ds->str + s->st_name;
    size_t plen = strlen(SIMKERNEL_SYMBOL_PREFIX);
    if (s->st_shndx == SHN_UNDEF || ELF64_ST_TYPE(s->st_info) != STT_OBJECT ||
        strncmp(name, SIMKERNEL_SYMBOL_PREFIX, plen) != 0 || !name[plen])
        return NULL;
    return dlsym(dl, name);
}

/* One CUkernel per exported kernel, each with its module function. */
static CUresult library_collect_kernels(struct sim_library *l) {
    void *dl = sim_module_dl(l->module);
    struct dynsyms ds;
    if (dynsyms_of(dl, &ds) != 0)
        return CUDA_ERROR_INVALID_IMAGE;
    l->kernels = calloc(ds.count ? ds.count : 1, sizeof *l->kernels);
    if (!l->kernels)
        return CUDA_ERROR_OUT_OF_MEMORY;
    for (size_t i = 0; i < ds.count; i++) {
        const struct simkernel_desc *d = kernel_symbol(dl, &ds, i);
        if (!d)
            continue;
        struct sim_kernel *k = &l->kernels[l->nkernels];
        CUresult r = sim_module_function(&k->func, l->module, d->name);
        if (r != CUDA_SUCCESS)
            return r;
        k->magic = KERNEL_MAGIC;
        k->desc = d;
        k->lib = l;
        l->nkernels++;
    }
    return CUDA_SUCCESS;
}

/* JIT and library options have no meaning here; arrays must be there when counted. */
static int options_valid(const void *opts, const void *values, unsigned n) {
    return n == 0 || (opts && values);
}

static CUresult library_new(CUlibrary *out, CUresult opened, CUmodule mod) {
    if (opened != CUDA_SUCCESS)
        return opened;
    struct sim_library *l = calloc(1, sizeof *l);
    if (!l) {
        sim_module_unload(mod);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    l->magic = LIBRARY_MAGIC;
    l->module = mod;
    CUresult r = library_collect_kernels(l);
    if (r != CUDA_SUCCESS) {
        sim_module_unload(mod);
        free(l->kernels);
        free(l);
        return r;
    }
    l->next = atomic_load(&every_library);
    while (!atomic_compare_exchange_weak(&every_library, &l->next, l))
        ;
    atomic_store(&l->alive, 1);
    *out = (CUlibrary)l;
    return CUDA_SUCCESS;
}

/* ---- entry points ------------------------------------------------------------------ */

SIM_API CUresult cuLibraryLoadData(CUlibrary *library, const void *code, CUjit_option *jitOptions,
                                   void **jitOptionsValues, unsigned int numJitOptions,
                                   CUlibraryOption *libraryOptions, void **libraryOptionValues,
                                   unsigned int numLibraryOptions) {
    SIM_ENTER("cuLibraryLoadData");
    if (!library || !code || !options_valid(jitOptions, jitOptionsValues, numJitOptions) ||
        !options_valid(libraryOptions, libraryOptionValues, numLibraryOptions))
        return CUDA_ERROR_INVALID_VALUE;
    CUmodule mod = NULL;
    CUresult r = sim_module_load_image(&mod, code);
    return library_new(library, r, mod);
}

SIM_API CUresult cuLibraryLoadFromFile(CUlibrary *library, const char *fileName,
                                       CUjit_option *jitOptions, void **jitOptionsValues,
                                       unsigned int numJitOptions, CUlibraryOption *libraryOptions,
                                       void **libraryOptionValues, unsigned int numLibraryOptions) {
    SIM_ENTER("cuLibraryLoadFromFile");
    if (!library || !fileName || !options_valid(jitOptions, jitOptionsValues, numJitOptions) ||
        !options_valid(libraryOptions, libraryOptionValues, numLibraryOptions))
        return CUDA_ERROR_INVALID_VALUE;
    CUmodule mod = NULL;
    CUresult r = sim_module_open(&mod, fileName);
    return library_new(library, r, mod);
}

/* The library, its module and its kernels die; queued work keeps running. */
SIM_API CUresult cuLibraryUnload(CUlibrary library) {
    SIM_ENTER("cuLibraryUnload");
    struct sim_library *l = library_of(library);
    int expected = 1;
    if (!l || !atomic_compare_exchange_strong(&l->alive, &expected, 0))
        return CUDA_ERROR_INVALID_HANDLE;
    sim_module_unload(l->module);
    return CUDA_SUCCESS;
}

SIM_API CUresult cuLibraryGetKernel(CUkernel *pKernel, CUlibrary library, const char *name) {
    SIM_ENTER("cuLibraryGetKernel");
    if (!pKernel || !name)
        return CUDA_ERROR_INVALID_VALUE;
    struct sim_library *l = library_of(library);
    if (!l)
        return CUDA_ERROR_INVALID_HANDLE;
    for (unsigned i = 0; i < l->nkernels; i++)
        if (strcmp(l->kernels[i].desc->name, name) == 0) {
            *pKernel = (CUkernel)&l->kernels[i];
            return CUDA_SUCCESS;
        }
    return CUDA_ERROR_NOT_FOUND;
}

SIM_API CUresult cuLibraryGetKernelCount(unsigned int *count, CUlibrary lib) {
    SIM_ENTER("cuLibraryGetKernelCount");
    if (!count)
        return CUDA_ERROR_INVALID_VALUE;
    struct sim_library *l = library_of(lib);
    if (!l)
        return CUDA_ERROR_INVALID_HANDLE;
    *count = l->nkernels;
    return CUDA_SUCCESS;
}

/* At most numKernels handles, in the object's symbol-table order. */
SIM_API CUresult cuLibraryEnumerateKernels(CUkernel *kernels, unsigned int numKernels,
                                           CUlibrary lib) {
    SIM_ENTER("cuLibraryEnumerateKernels");
    if (!kernels || numKernels == 0)
        return CUDA_ERROR_INVALID_VALUE;
    struct sim_library *l = library_of(lib);
    if (!l)
        return CUDA_ERROR_INVALID_HANDLE;
    for (unsigned i = 0; i < numKernels && i < l->nkernels; i++)
        kernels[i] = (CUkernel)&l->kernels[i];
    return CUDA_SUCCESS;
}

/* The module "of the current context": one module serves every context here. */
SIM_API CUresult cuLibraryGetModule(CUmodule *pMod, CUlibrary library) {
    SIM_ENTER("cuLibraryGetModule");
    if (!pMod)
        return CUDA_ERROR_INVALID_VALUE;
    struct sim_library *l = library_of(library);
    if (!l)
        return CUDA_ERROR_INVALID_HANDLE;
    if (!sim_ctx_current())
        return CUDA_ERROR_INVALID_CONTEXT;
    *pMod = l->module;
    return CUDA_SUCCESS;
}

SIM_API CUresult cuKernelGetFunction(CUfunction *pFunc, CUkernel kernel) {
    SIM_ENTER("cuKernelGetFunction");
    if (!pFunc)
        return CUDA_ERROR_INVALID_VALUE;
    struct sim_kernel *k = kernel_of(kernel);
    if (!k)
        return CUDA_ERROR_INVALID_HANDLE;
    if (!sim_ctx_current())
        return CUDA_ERROR_INVALID_CONTEXT;
    *pFunc = k->func;
    return CUDA_SUCCESS;
}

SIM_API CUresult cuKernelGetLibrary(CUlibrary *pLib, CUkernel kernel) {
    SIM_ENTER("cuKernelGetLibrary");
    if (!pLib)
        return CUDA_ERROR_INVALID_VALUE;
    struct sim_kernel *k = kernel_of(kernel);
    if (!k)
        return CUDA_ERROR_INVALID_HANDLE;
    *pLib = (CUlibrary)k->lib;
    return CUDA_SUCCESS;
}

SIM_API CUresult cuKernelGetName(const char **name, CUkernel hfunc) {
    SIM_ENTER("cuKernelGetName");
    if (!name)
        return CUDA_ERROR_INVALID_VALUE;
    struct sim_kernel *k = kernel_of(hfunc);
    if (!k)
        return CUDA_ERROR_INVALID_HANDLE;
    *name = k->desc->name;
    return CUDA_SUCCESS;
}

SIM_API CUresult cuKernelGetParamInfo(CUkernel kernel, size_t paramIndex, size_t *paramOffset,
                                      size_t *paramSize) {
    SIM_ENTER("cuKernelGetParamInfo");
    struct sim_kernel *k = kernel_of(kernel);
    if (!k)
        return CUDA_ERROR_INVALID_HANDLE;
    if (paramIndex >= k->desc->param_count)
        return CUDA_ERROR_INVALID_VALUE;
    if (paramOffset)
        *paramOffset = k->desc->param_offset[paramIndex];
    if (paramSize)
        *paramSize = k->desc->param_size[paramIndex];
    return CUDA_SUCCESS;
}

SIM_API CUresult cuKernelGetAttribute(int *pi, CUfunction_attribute attrib, CUkernel kernel,
                                      CUdevice dev) {
    SIM_ENTER("cuKernelGetAttribute");
    if (!pi)
        return CUDA_ERROR_INVALID_VALUE;
    if (!kernel_of(kernel))
        return CUDA_ERROR_INVALID_HANDLE;
    if (dev != 0)
        return CUDA_ERROR_INVALID_DEVICE;
    *pi = sim_func_attribute(attrib);
    return CUDA_SUCCESS;
}

/* Accepted and not recorded, like cuFuncSetAttribute (module.c): kernels run on the CPU,
 * where shared-memory sizes and cache preferences mean nothing. */
SIM_API CUresult cuKernelSetAttribute(CUfunction_attribute attrib, int val, CUkernel kernel,
                                      CUdevice dev) {
    SIM_ENTER("cuKernelSetAttribute");
    (void)attrib;
    (void)val;
    if (!kernel_of(kernel))
        return CUDA_ERROR_INVALID_HANDLE;
    return dev == 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_DEVICE;
}

SIM_API CUresult cuKernelSetCacheConfig(CUkernel kernel, CUfunc_cache config, CUdevice dev) {
    SIM_ENTER("cuKernelSetCacheConfig");
    (void)config;
    if (!kernel_of(kernel))
        return CUDA_ERROR_INVALID_HANDLE;
    return dev == 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_DEVICE;
}
