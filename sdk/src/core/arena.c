/* Bump allocator for per-stream scratch; see arena.h. */
#include "core/arena.h"

#include <string.h>

int sotto_arena_init(sotto_arena *ar, const sotto_alloc *alloc, size_t size)
{
    memset(ar, 0, sizeof *ar);
    ar->alloc = alloc;
    if (size == 0) return SOTTO_OK;
    ar->base = sotto_malloc(alloc, size);
    if (!ar->base) return SOTTO_ERR_OUT_OF_MEMORY;
    ar->size = size;
    return SOTTO_OK;
}

void sotto_arena_free(sotto_arena *ar)
{
    if (ar->base) sotto_free(ar->alloc, ar->base);
    ar->base = NULL;
    ar->size = ar->used = 0;
}

void *sotto_arena_alloc(sotto_arena *ar, size_t size, size_t align)
{
    if (align == 0 || (align & (align - 1)) || align > 4096) return NULL;
    uintptr_t cur = (uintptr_t)ar->base + ar->used;
    size_t pad = (size_t)((align - (cur & (align - 1))) & (align - 1));
    size_t need;
    if (sotto_add_size(pad, size, &need) || need > ar->size - ar->used) return NULL;
    void *p = ar->base + ar->used + pad;
    ar->used += need;
    if (ar->used > ar->high_water) ar->high_water = ar->used;
    return p;
}

float *sotto_arena_floats(sotto_arena *ar, size_t n)
{
    size_t bytes;
    if (sotto_mul_size(n, sizeof(float), &bytes)) return NULL;
    return sotto_arena_alloc(ar, bytes, 64);
}
