/* caching_alloc.c — see caching_alloc.h. */
#include "examples/pipeline/caching_alloc.h"

#include <stdlib.h>
#include <string.h>

struct segment;

/* A run of bytes of a segment, allocated or free; blocks tile their segment in address
 * order. */
struct block {
    CUdeviceptr ptr;
    size_t size;
    bool allocated;
    struct block *prev, *next;
    struct segment *segment;
};

struct segment {
    CUdeviceptr base;
    size_t size; /* bytes backed: the whole cuMemAlloc, or an expandable segment's prefix */
    bool small;  /* which pool */
    struct block *first;
    struct segment *next;
    /* expandable segments only */
    size_t reserved, page;
    CUmemGenericAllocationHandle *handles; /* one per mapped page, in address order */
    size_t handle_count, handle_capacity;
};

struct caching_alloc {
    enum segment_source source;
    CUdevice device;
    size_t device_bytes;
    struct segment *segments;
    size_t segment_allocs; /* driver allocations made: cuMemAlloc or cuMemCreate */
};

size_t caching_round_size(size_t bytes) {
    if (bytes < CACHING_ROUND)
        return CACHING_ROUND;
    return (bytes + CACHING_ROUND - 1) / CACHING_ROUND * CACHING_ROUND;
}

size_t caching_segment_size(size_t rounded) {
    if (rounded <= CACHING_SMALL_SIZE)
        return CACHING_SMALL_SEGMENT;
    if (rounded < CACHING_MIN_LARGE_ALLOC)
        return CACHING_LARGE_SEGMENT;
    return (rounded + CACHING_ROUND_LARGE - 1) / CACHING_ROUND_LARGE * CACHING_ROUND_LARGE;
}

static bool is_small(size_t rounded) {
    return rounded <= CACHING_SMALL_SIZE;
}

struct caching_alloc *caching_alloc_create(enum segment_source source, CUdevice device) {
    struct caching_alloc *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->source = source;
    a->device = device;
    if (cuDeviceTotalMem(&a->device_bytes, device) != CUDA_SUCCESS)
        a->device_bytes = (size_t)1 << 30;
    return a;
}

static struct block *new_block(struct segment *s, CUdeviceptr ptr, size_t size) {
    struct block *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->ptr = ptr;
    b->size = size;
    b->segment = s;
    return b;
}

static struct block *last_block(const struct segment *s) {
    struct block *b = s->first;
    while (b && b->next)
        b = b->next;
    return b;
}

/* The smallest free block of the pool that holds `size`; the lowest address on a tie. */
static struct block *best_fit(struct caching_alloc *a, bool small, size_t size) {
    struct block *best = NULL;
    for (struct segment *s = a->segments; s; s = s->next) {
        if (s->small != small)
            continue;
        for (struct block *b = s->first; b; b = b->next)
            if (!b->allocated && b->size >= size &&
                (!best || b->size < best->size || (b->size == best->size && b->ptr < best->ptr)))
                best = b;
    }
    return best;
}

static void unlink_segment(struct caching_alloc *a, struct segment *s) {
    for (struct segment **p = &a->segments; *p; p = &(*p)->next)
        if (*p == s) {
            *p = s->next;
            return;
        }
}

static void free_blocks(struct segment *s) {
    for (struct block *b = s->first, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    s->first = NULL;
}

/* --- segments of their own: cuMemAlloc --------------------------------------------- */

static CUresult alloc_segment(struct caching_alloc *a, bool small, size_t size, const char **call) {
    struct segment *s = calloc(1, sizeof *s);
    if (!s)
        return CUDA_ERROR_OUT_OF_MEMORY;
    *call = "cuMemAlloc";
    CUresult r = cuMemAlloc(&s->base, size);
    if (r != CUDA_SUCCESS) {
        free(s);
        return r;
    }
    a->segment_allocs++;
    s->size = size;
    s->small = small;
    s->first = new_block(s, s->base, size);
    if (!s->first) {
        cuMemFree(s->base);
        free(s);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    s->next = a->segments;
    a->segments = s;
    return CUDA_SUCCESS;
}

/* --- expandable segments: a reserved range, pages mapped at its end ----------------- */

static struct segment *expandable_of(struct caching_alloc *a, bool small) {
    for (struct segment *s = a->segments; s; s = s->next)
        if (s->small == small)
            return s;
    return NULL;
}

static CUresult expandable_create(struct caching_alloc *a, bool small, struct segment **out,
                                  const char **call) {
    struct segment *s = calloc(1, sizeof *s);
    if (!s)
        return CUDA_ERROR_OUT_OF_MEMORY;
    s->small = small;
    s->page = small ? CACHING_SMALL_SEGMENT : CACHING_LARGE_SEGMENT;
    /* As PyTorch: room for 1 1/8 of the device in one range (some pages may have to be
     * unmapped early to be put at the end), in whole pages. */
    size_t room = a->device_bytes + a->device_bytes / 8;
    s->reserved = (room + s->page - 1) / s->page * s->page;
    *call = "cuMemAddressReserve";
    CUresult r = cuMemAddressReserve(&s->base, s->reserved, 0, 0, 0);
    if (r != CUDA_SUCCESS) {
        free(s);
        return r;
    }
    s->next = a->segments;
    a->segments = s;
    *out = s;
    return CUDA_SUCCESS;
}

static CUresult unmap_last_page(struct segment *s, const char **call) {
    CUdeviceptr at = s->base + s->size - s->page;
    *call = "cuMemUnmap";
    CUresult r = cuMemUnmap(at, s->page);
    if (r != CUDA_SUCCESS)
        return r;
    *call = "cuMemRelease";
    r = cuMemRelease(s->handles[s->handle_count - 1]);
    s->handle_count--;
    s->size -= s->page;
    return r;
}

static CUresult map_page(struct caching_alloc *a, struct segment *s, const char **call) {
    if (s->size + s->page > s->reserved) {
        *call = "cuMemMap";
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    if (s->handle_count == s->handle_capacity) {
        size_t n = s->handle_capacity ? 2 * s->handle_capacity : 16;
        CUmemGenericAllocationHandle *h = realloc(s->handles, n * sizeof *h);
        if (!h)
            return CUDA_ERROR_OUT_OF_MEMORY;
        s->handles = h;
        s->handle_capacity = n;
    }
    CUmemAllocationProp prop = {.type = CU_MEM_ALLOCATION_TYPE_PINNED,
                                .location = {.type = CU_MEM_LOCATION_TYPE_DEVICE, .id = a->device}};
    CUmemGenericAllocationHandle handle;
    *call = "cuMemCreate";
    CUresult r = cuMemCreate(&handle, s->page, &prop, 0);
    if (r != CUDA_SUCCESS)
        return r;
    a->segment_allocs++;
    *call = "cuMemMap";
    r = cuMemMap(s->base + s->size, s->page, 0, handle, 0);
    if (r != CUDA_SUCCESS) {
        cuMemRelease(handle);
        return r;
    }
    s->handles[s->handle_count++] = handle;
    s->size += s->page;
    return CUDA_SUCCESS;
}

/* Backs enough pages at the end of the pool's segment for a free block of `size` there. */
static CUresult expandable_grow(struct caching_alloc *a, bool small, size_t size,
                                const char **call) {
    struct segment *s = expandable_of(a, small);
    if (!s) {
        CUresult r = expandable_create(a, small, &s, call);
        if (r != CUDA_SUCCESS)
            return r;
    }
    struct block *tail = last_block(s);
    size_t have = tail && !tail->allocated ? tail->size : 0;
    size_t pages = (size - have + s->page - 1) / s->page;
    size_t old_size = s->size;
    CUresult r = CUDA_SUCCESS;
    for (size_t i = 0; i < pages && r == CUDA_SUCCESS; i++)
        r = map_page(a, s, call);
    if (r == CUDA_SUCCESS) {
        CUmemAccessDesc access = {
            .location = {.type = CU_MEM_LOCATION_TYPE_DEVICE, .id = a->device},
            .flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE};
        *call = "cuMemSetAccess";
        r = cuMemSetAccess(s->base + old_size, s->size - old_size, &access, 1);
    }
    if (r != CUDA_SUCCESS) { /* give back what this attempt mapped */
        const char *ignored;
        while (s->size > old_size && unmap_last_page(s, &ignored) == CUDA_SUCCESS)
            ;
        return r;
    }
    size_t added = s->size - old_size;
    if (have) {
        tail->size += added;
    } else {
        struct block *b = new_block(s, s->base + old_size, added);
        if (!b)
            return CUDA_ERROR_OUT_OF_MEMORY;
        b->prev = tail;
        if (tail)
            tail->next = b;
        else
            s->first = b;
    }
    return CUDA_SUCCESS;
}

/* Unmaps the whole free pages at the end of an expandable segment. */
static CUresult expandable_shrink(struct segment *s, const char **call) {
    struct block *tail = last_block(s);
    if (!tail || tail->allocated)
        return CUDA_SUCCESS;
    while (s->size > 0 && s->base + s->size - s->page >= tail->ptr) {
        CUresult r = unmap_last_page(s, call);
        if (r != CUDA_SUCCESS)
            return r;
    }
    size_t left = s->base + s->size - tail->ptr;
    if (left) {
        tail->size = left;
        return CUDA_SUCCESS;
    }
    if (tail->prev)
        tail->prev->next = NULL;
    else
        s->first = NULL;
    free(tail);
    return CUDA_SUCCESS;
}

/* --- the allocator ------------------------------------------------------------------ */

CUresult caching_alloc_release_cached(struct caching_alloc *a, const char **call) {
    for (struct segment *s = a->segments, *next; s; s = next) {
        next = s->next;
        if (a->source == EXPANDABLE_SEGMENTS) {
            CUresult r = expandable_shrink(s, call);
            if (r != CUDA_SUCCESS)
                return r;
            continue;
        }
        if (s->first->allocated || s->first->next)
            continue;
        *call = "cuMemFree";
        CUresult r = cuMemFree(s->base);
        if (r != CUDA_SUCCESS)
            return r;
        unlink_segment(a, s);
        free_blocks(s);
        free(s);
    }
    return CUDA_SUCCESS;
}

static CUresult add_memory(struct caching_alloc *a, bool small, size_t size, const char **call) {
    if (a->source == EXPANDABLE_SEGMENTS)
        return expandable_grow(a, small, size, call);
    return alloc_segment(a, small, caching_segment_size(size), call);
}

static bool should_split(const struct block *b, size_t size) {
    size_t remaining = b->size - size;
    return b->segment->small ? remaining >= CACHING_ROUND : remaining > CACHING_SMALL_SIZE;
}

static void split(struct block *b, size_t size) {
    if (!should_split(b, size))
        return;
    struct block *rest = new_block(b->segment, b->ptr + size, b->size - size);
    if (!rest)
        return; /* the block stays whole: wasteful, not wrong */
    rest->prev = b;
    rest->next = b->next;
    if (b->next)
        b->next->prev = rest;
    b->next = rest;
    b->size = size;
}

CUdeviceptr caching_alloc_malloc(struct caching_alloc *a, size_t bytes, CUresult *error,
                                 const char **call) {
    size_t size = caching_round_size(bytes);
    bool small = is_small(size);
    struct block *b = best_fit(a, small, size);
    if (!b) {
        CUresult r = add_memory(a, small, size, call);
        if (r == CUDA_ERROR_OUT_OF_MEMORY) {
            /* As PyTorch: give every cached segment back, then try once more. */
            const char *release_call = *call;
            CUresult released = caching_alloc_release_cached(a, &release_call);
            if (released != CUDA_SUCCESS) {
                *error = released;
                *call = release_call;
                return 0;
            }
            r = add_memory(a, small, size, call);
        }
        if (r != CUDA_SUCCESS) {
            *error = r;
            return 0;
        }
        b = best_fit(a, small, size);
        if (!b) {
            *error = CUDA_ERROR_OUT_OF_MEMORY;
            return 0;
        }
    }
    split(b, size);
    b->allocated = true;
    return b->ptr;
}

static struct block *find_allocated(struct caching_alloc *a, CUdeviceptr p) {
    for (struct segment *s = a->segments; s; s = s->next) {
        if (p < s->base || p >= s->base + s->size)
            continue;
        for (struct block *b = s->first; b; b = b->next)
            if (b->ptr == p)
                return b->allocated ? b : NULL;
    }
    return NULL;
}

/* Absorbs b->next into b. */
static void merge_next(struct block *b) {
    struct block *n = b->next;
    b->size += n->size;
    b->next = n->next;
    if (n->next)
        n->next->prev = b;
    free(n);
}

CUresult caching_alloc_free(struct caching_alloc *a, CUdeviceptr p) {
    if (!p)
        return CUDA_SUCCESS;
    struct block *b = find_allocated(a, p);
    if (!b)
        return CUDA_ERROR_INVALID_VALUE;
    b->allocated = false;
    if (b->next && !b->next->allocated)
        merge_next(b);
    if (b->prev && !b->prev->allocated)
        merge_next(b->prev);
    return CUDA_SUCCESS;
}

void caching_alloc_stats(const struct caching_alloc *a, struct caching_stats *st) {
    memset(st, 0, sizeof *st);
    st->segment_allocs = a->segment_allocs;
    for (const struct segment *s = a->segments; s; s = s->next) {
        st->segments++;
        st->reserved += s->size;
        for (const struct block *b = s->first; b; b = b->next)
            if (b->allocated)
                st->allocated += b->size;
    }
}

CUresult caching_alloc_destroy(struct caching_alloc *a, const char **call) {
    CUresult first = CUDA_SUCCESS;
    const char *first_call = NULL;
    while (a->segments) {
        struct segment *s = a->segments;
        CUresult r = CUDA_SUCCESS;
        if (a->source == EXPANDABLE_SEGMENTS) {
            while (s->handle_count && r == CUDA_SUCCESS)
                r = unmap_last_page(s, call);
            if (r == CUDA_SUCCESS) {
                *call = "cuMemAddressFree";
                r = cuMemAddressFree(s->base, s->reserved);
            }
            free(s->handles);
        } else {
            *call = "cuMemFree";
            r = cuMemFree(s->base);
        }
        if (r != CUDA_SUCCESS && first == CUDA_SUCCESS) {
            first = r;
            first_call = *call;
        }
        a->segments = s->next;
        free_blocks(s);
        free(s);
    }
    free(a);
    if (first_call)
        *call = first_call;
    return first;
}
