/*
 * module.c — modules (host shared objects, see simkernel.h), functions and launches.
 *
 * A launch captures the argument values at enqueue time (like the real driver) into a
 * buffer laid out as the kernel's packed parameter buffer, and the stream's worker calls
 * desc->run(grid, block, args) with args[i] pointing into it.
 *
 * cuModuleLoadData also takes a PTX image naming kernels the simulator implements
 * natively (builtin.h): such a module has no shared object, its functions come from there.
 */
#include "tests/sim/builtin.h"
#include "tests/sim/sim.h"

#include <dlfcn.h>
#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <uthash.h>

#define MODULE_MAGIC 0x4d4f444cu
#define FUNC_MAGIC 0x46554e43u

struct sim_func {
    unsigned magic;
    const struct simkernel_desc *desc;
    size_t argsize; /* end of the last parameter */
    struct sim_module *module;
    UT_hash_handle hh; /* in module->funcs, by desc->name */
};

struct sim_module {
    unsigned magic;
    int alive;
    void *dl;
    char *ptx; /* a PTX image of built-in kernels (builtin.h), instead of dl */
    struct sim_func *funcs;
    pthread_mutex_t lock;
    struct sim_module *next; /* mods.all */
};

/* Every module ever loaded: unloading kills the handle, but queued launches and graphs
 * may still use its code and functions, so nothing is freed. */
static struct {
    pthread_mutex_t lock;
    struct sim_module *all;
} mods = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* The list, then every module on it (sim.h: fork). */
void sim_module_atfork(enum sim_fork_phase phase) {
    if (phase == SIM_FORK_PREPARE) {
        pthread_mutex_lock(&mods.lock);
        for (struct sim_module *m = mods.all; m; m = m->next)
            pthread_mutex_lock(&m->lock);
    } else if (phase == SIM_FORK_PARENT) {
        for (struct sim_module *m = mods.all; m; m = m->next)
            pthread_mutex_unlock(&m->lock);
        pthread_mutex_unlock(&mods.lock);
    } else {
        for (struct sim_module *m = mods.all; m; m = m->next)
            pthread_mutex_init(&m->lock, NULL);
        pthread_mutex_init(&mods.lock, NULL);
    }
}

/* A new live module on the list: a shared object (dl) or a PTX image of built-ins. */
static struct sim_module *module_new(void *dl, char *ptx) {
    struct sim_module *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->magic = MODULE_MAGIC;
    m->alive = 1;
    m->dl = dl;
    m->ptx = ptx;
    pthread_mutex_init(&m->lock, NULL);
    pthread_mutex_lock(&mods.lock);
    m->next = mods.all;
    mods.all = m;
    pthread_mutex_unlock(&mods.lock);
    return m;
}

/* Opens the shared object at path as a module (no context needed: libraries load
 * without one; the cuModule* entry points check theirs). */
CUresult sim_module_open(CUmodule *out, const char *path) {
    void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        sim_log("simcuda: cuModuleLoad(%s): %s", path, dlerror());
        return access(path, R_OK) == 0 ? CUDA_ERROR_INVALID_IMAGE : CUDA_ERROR_FILE_NOT_FOUND;
    }
    struct sim_module *m = module_new(dl, NULL);
    if (!m) {
        dlclose(dl);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    *out = (CUmodule)m;
    return CUDA_SUCCESS;
}

/* A PTX image of built-in kernels (builtin.h), or the driver's error for other PTX. */
static CUresult module_open_ptx(CUmodule *out, const char *image) {
    CUresult r = sim_ptx_check(image);
    if (r != CUDA_SUCCESS)
        return r;
    char *ptx = strdup(image);
    struct sim_module *m = ptx ? module_new(NULL, ptx) : NULL;
    if (!m) {
        free(ptx);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    *out = (CUmodule)m;
    return CUDA_SUCCESS;
}

SIM_API CUresult cuModuleLoad(CUmodule *module, const char *fname) {
    SIM_ENTER("cuModuleLoad");
    if (!module || !fname)
        return CUDA_ERROR_INVALID_VALUE;
    if (!sim_ctx_current())
        return CUDA_ERROR_INVALID_CONTEXT;
    return sim_module_open(module, fname);
}

/* The image is the shared object's bytes (or, if it names an existing file, its path). */
CUresult sim_module_load_image(CUmodule *module, const void *image) {
    if (!module || !image)
        return CUDA_ERROR_INVALID_VALUE;
    const unsigned char *b = image;
    if (!(b[0] == 0x7f && b[1] == 'E' && b[2] == 'L' && b[3] == 'F'))
        return access((const char *)image, R_OK) == 0 ? sim_module_open(module, image)
                                                      : CUDA_ERROR_INVALID_IMAGE;
    /* the section header table ends a 64-bit ELF file */
    const Elf64_Ehdr *eh = image;
    if (eh->e_ident[EI_CLASS] != ELFCLASS64)
        return CUDA_ERROR_INVALID_IMAGE;
    size_t size = eh->e_shoff + (size_t)eh->e_shnum * eh->e_shentsize;
    int fd = memfd_create("simcuda-module", MFD_CLOEXEC);
    if (fd < 0)
        return CUDA_ERROR_OUT_OF_MEMORY;
    CUresult r = write(fd, image, size) == (ssize_t)size ? CUDA_SUCCESS : CUDA_ERROR_INVALID_IMAGE;
    if (r == CUDA_SUCCESS) {
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        r = sim_module_open(module, path);
    }
    close(fd);
    return r;
}

SIM_API CUresult cuModuleLoadData(CUmodule *module, const void *image) {
    SIM_ENTER("cuModuleLoadData");
    if (module && image && !sim_ctx_current())
        return CUDA_ERROR_INVALID_CONTEXT;
    const unsigned char *b = image;
    if (module && b && !(b[0] == 0x7f && b[1] == 'E') && sim_ptx_image(image))
        return module_open_ptx(module, image);
    return sim_module_load_image(module, image);
}

/* Kernels may still be queued: the code stays loaded, the handle dies. */
CUresult sim_module_unload(CUmodule hmod) {
    struct sim_module *m = (struct sim_module *)hmod;
    if (!m || m->magic != MODULE_MAGIC || !m->alive)
        return CUDA_ERROR_INVALID_HANDLE;
    m->alive = 0;
    return CUDA_SUCCESS;
}

SIM_API CUresult cuModuleUnload(CUmodule hmod) {
    SIM_ENTER("cuModuleUnload");
    return sim_module_unload(hmod);
}

void *sim_module_dl(CUmodule hmod) {
    return ((struct sim_module *)hmod)->dl;
}

SIM_API CUresult cuModuleGetFunction(CUfunction *hfunc, CUmodule hmod, const char *name) {
    SIM_ENTER("cuModuleGetFunction");
    return sim_module_function(hfunc, hmod, name);
}

CUresult sim_module_function(CUfunction *hfunc, CUmodule hmod, const char *name) {
    struct sim_module *m = (struct sim_module *)hmod;
    if (!hfunc || !name)
        return CUDA_ERROR_INVALID_VALUE;
    if (!m || m->magic != MODULE_MAGIC || !m->alive)
        return CUDA_ERROR_INVALID_HANDLE;
    pthread_mutex_lock(&m->lock);
    struct sim_func *f = NULL;
    HASH_FIND_STR(m->funcs, name, f);
    CUresult r = CUDA_SUCCESS;
    if (!f) {
        char sym[512];
        snprintf(sym, sizeof sym, "%s%s", SIMKERNEL_SYMBOL_PREFIX, name);
        const struct simkernel_desc *d = m->ptx ? sim_ptx_entry(m->ptx, name) : dlsym(m->dl, sym);
        if (!d) {
            r = CUDA_ERROR_NOT_FOUND;
        } else if (d->abi_version != SIMKERNEL_ABI_VERSION ||
                   d->param_count > SIMKERNEL_MAX_PARAMS) {
            r = CUDA_ERROR_INVALID_IMAGE;
        } else if (!(f = calloc(1, sizeof *f))) {
            r = CUDA_ERROR_OUT_OF_MEMORY;
        } else {
            f->magic = FUNC_MAGIC;
            f->desc = d;
            f->module = m;
            for (unsigned i = 0; i < d->param_count; i++)
                if (d->param_offset[i] + d->param_size[i] > f->argsize)
                    f->argsize = d->param_offset[i] + d->param_size[i];
            HASH_ADD_KEYPTR(hh, m->funcs, d->name, strlen(d->name), f);
        }
    }
    pthread_mutex_unlock(&m->lock);
    if (f)
        *hfunc = (CUfunction)f;
    return r;
}

static struct sim_func *func_of(CUfunction h) {
    struct sim_func *f = (struct sim_func *)h;
    return f && f->magic == FUNC_MAGIC ? f : NULL;
}

SIM_API CUresult cuFuncGetParamInfo(CUfunction func, size_t paramIndex, size_t *paramOffset,
                                    size_t *paramSize) {
    SIM_ENTER("cuFuncGetParamInfo");
    struct sim_func *f = func_of(func);
    if (!f)
        return CUDA_ERROR_INVALID_HANDLE;
    if (paramIndex >= f->desc->param_count)
        return CUDA_ERROR_INVALID_VALUE;
    if (paramOffset)
        *paramOffset = f->desc->param_offset[paramIndex];
    if (paramSize)
        *paramSize = f->desc->param_size[paramIndex];
    return CUDA_SUCCESS;
}

SIM_API CUresult cuFuncGetName(const char **name, CUfunction hfunc) {
    SIM_ENTER("cuFuncGetName");
    struct sim_func *f = func_of(hfunc);
    if (!name)
        return CUDA_ERROR_INVALID_VALUE;
    if (!f)
        return CUDA_ERROR_INVALID_HANDLE;
    *name = f->desc->name;
    return CUDA_SUCCESS;
}

SIM_API CUresult cuFuncGetModule(CUmodule *hmod, CUfunction hfunc) {
    SIM_ENTER("cuFuncGetModule");
    struct sim_func *f = func_of(hfunc);
    if (!hmod)
        return CUDA_ERROR_INVALID_VALUE;
    if (!f)
        return CUDA_ERROR_INVALID_HANDLE;
    *hmod = (CUmodule)f->module;
    return CUDA_SUCCESS;
}

/* The same for every kernel (cuKernelGetAttribute answers the same). */
int sim_func_attribute(CUfunction_attribute attrib) {
    switch (attrib) {
    case CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK:
        return 1024;
    case CU_FUNC_ATTRIBUTE_NUM_REGS:
        return 32;
    case CU_FUNC_ATTRIBUTE_PTX_VERSION:
    case CU_FUNC_ATTRIBUTE_BINARY_VERSION:
        return 90;
    case CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES:
        return 49152;
    default:
        return 0;
    }
}

SIM_API CUresult cuFuncGetAttribute(int *pi, CUfunction_attribute attrib, CUfunction hfunc) {
    SIM_ENTER("cuFuncGetAttribute");
    if (!pi)
        return CUDA_ERROR_INVALID_VALUE;
    if (!func_of(hfunc))
        return CUDA_ERROR_INVALID_HANDLE;
    *pi = sim_func_attribute(attrib);
    return CUDA_SUCCESS;
}

SIM_API CUresult cuFuncSetAttribute(CUfunction hfunc, CUfunction_attribute attrib, int value) {
    SIM_ENTER("cuFuncSetAttribute");
    (void)attrib;
    (void)value;
    return func_of(hfunc) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

SIM_API CUresult cuFuncSetCacheConfig(CUfunction hfunc, CUfunc_cache config) {
    SIM_ENTER("cuFuncSetCacheConfig");
    (void)config;
    return func_of(hfunc) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

/* ---- launches -------------------------------------------------------------------- */

static CUresult launch(CUfunction hf, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                       unsigned by, unsigned bz, CUstream hs, void **params, void **extra, int pt) {
    /* a CUkernel (library.c) cast to CUfunction launches as its module's function */
    struct sim_func *f = func_of(hf);
    void *kernel = NULL;
    if (!f) {
        f = func_of(sim_kernel_launch_function(hf));
        kernel = hf;
    }
    if (!f)
        return CUDA_ERROR_INVALID_HANDLE;
    if (!gx || !gy || !gz || !bx || !by || !bz || bx > 1024 || by > 1024 || bz > 64 ||
        (unsigned long long)bx * by * bz > 1024 || gy > 65535 || gz > 65535 || gx > 2147483647u)
        return CUDA_ERROR_INVALID_VALUE;
    struct sim_stream *s;
    CUresult r = sim_stream_resolve(hs, pt, &s);
    if (r != CUDA_SUCCESS)
        return r;
    const struct simkernel_desc *d = f->desc;

    /* the argument values, captured now */
    const unsigned char *packed = NULL;
    size_t packed_size = 0;
    if (extra) {
        if (params)
            return CUDA_ERROR_INVALID_VALUE;
        int have_size = 0;
        for (size_t i = 0; extra[i] != CU_LAUNCH_PARAM_END; i += 2) {
            if (extra[i] == CU_LAUNCH_PARAM_BUFFER_POINTER) {
                packed = extra[i + 1];
            } else if (extra[i] == CU_LAUNCH_PARAM_BUFFER_SIZE) {
                packed_size = *(const size_t *)extra[i + 1];
                have_size = 1;
            } else {
                return CUDA_ERROR_INVALID_VALUE;
            }
        }
        if (!packed || !have_size || packed_size < f->argsize)
            return CUDA_ERROR_INVALID_VALUE;
    } else if (!params && d->param_count > 0) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    struct sim_op *op = sim_op_new(SIM_OP_KERNEL);
    if (!op)
        return CUDA_ERROR_OUT_OF_MEMORY;
    op->u.kernel.argbuf = sim_argbuf_new(f->argsize);
    if (!op->u.kernel.argbuf) {
        sim_op_free(op);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    for (unsigned i = 0; i < d->param_count; i++) {
        unsigned char *dst = op->u.kernel.argbuf + d->param_offset[i];
        memcpy(dst, packed ? packed + d->param_offset[i] : (const unsigned char *)params[i],
               d->param_size[i]);
        op->u.kernel.args[i] = dst;
    }
    op->u.kernel.func = f;
    op->u.kernel.kernel = kernel;
    op->u.kernel.desc = d;
    op->u.kernel.grid = (struct simkernel_dim3){gx, gy, gz};
    op->u.kernel.block = (struct simkernel_dim3){bx, by, bz};
    CUresult cr;
    if (sim_capture_op(s, op, &cr))
        return cr;
    atomic_fetch_add(&sim_stats.launches, 1);
    sim_submit(s, op);
    return CUDA_SUCCESS;
}

SIM_API CUresult cuLaunchKernel(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
                                unsigned int gridDimZ, unsigned int blockDimX,
                                unsigned int blockDimY, unsigned int blockDimZ,
                                unsigned int sharedMemBytes, CUstream hStream, void **kernelParams,
                                void **extra) {
    SIM_ENTER("cuLaunchKernel");
    (void)sharedMemBytes;
    return launch(f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ, hStream,
                  kernelParams, extra, 0);
}

SIM_API CUresult cuLaunchKernel_ptsz(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
                                     unsigned int gridDimZ, unsigned int blockDimX,
                                     unsigned int blockDimY, unsigned int blockDimZ,
                                     unsigned int sharedMemBytes, CUstream hStream,
                                     void **kernelParams, void **extra) {
    SIM_ENTER("cuLaunchKernel_ptsz");
    (void)sharedMemBytes;
    return launch(f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ, hStream,
                  kernelParams, extra, 1);
}

SIM_API CUresult cuLaunchCooperativeKernel(CUfunction f, unsigned int gridDimX,
                                           unsigned int gridDimY, unsigned int gridDimZ,
                                           unsigned int blockDimX, unsigned int blockDimY,
                                           unsigned int blockDimZ, unsigned int sharedMemBytes,
                                           CUstream hStream, void **kernelParams) {
    SIM_ENTER("cuLaunchCooperativeKernel");
    (void)sharedMemBytes;
    return launch(f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ, hStream,
                  kernelParams, NULL, 0);
}

SIM_API CUresult cuLaunchCooperativeKernel_ptsz(CUfunction f, unsigned int gridDimX,
                                                unsigned int gridDimY, unsigned int gridDimZ,
                                                unsigned int blockDimX, unsigned int blockDimY,
                                                unsigned int blockDimZ, unsigned int sharedMemBytes,
                                                CUstream hStream, void **kernelParams) {
    SIM_ENTER("cuLaunchCooperativeKernel_ptsz");
    (void)sharedMemBytes;
    return launch(f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ, hStream,
                  kernelParams, NULL, 1);
}

static CUresult launch_ex(const CUlaunchConfig *c, CUfunction f, void **params, void **extra,
                          int pt) {
    if (!c)
        return CUDA_ERROR_INVALID_VALUE;
    return launch(f, c->gridDimX, c->gridDimY, c->gridDimZ, c->blockDimX, c->blockDimY,
                  c->blockDimZ, c->hStream, params, extra, pt);
}

SIM_API CUresult cuLaunchKernelEx(const CUlaunchConfig *config, CUfunction f, void **kernelParams,
                                  void **extra) {
    SIM_ENTER("cuLaunchKernelEx");
    return launch_ex(config, f, kernelParams, extra, 0);
}

SIM_API CUresult cuLaunchKernelEx_ptsz(const CUlaunchConfig *config, CUfunction f,
                                       void **kernelParams, void **extra) {
    SIM_ENTER("cuLaunchKernelEx_ptsz");
    return launch_ex(config, f, kernelParams, extra, 1);
}
