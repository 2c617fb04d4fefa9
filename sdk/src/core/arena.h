/*
 * Arena for per-stream scratch: one block allocated at stream creation, carved out by bump
 * allocation; reset between steps. Nothing is allocated on the processing path.
 */
#ifndef SOTTO_ARENA_H
#define SOTTO_ARENA_H

#include "core/core.h"

typedef struct sotto_arena {
    unsigned char *base;
    size_t size;
    size_t used;
    size_t high_water;
    const sotto_alloc *alloc;
} sotto_arena;

/* Allocates `size` bytes of backing store. Returns SOTTO_OK or SOTTO_ERR_OUT_OF_MEMORY. */
int sotto_arena_init(sotto_arena *ar, const sotto_alloc *alloc, size_t size);
void sotto_arena_free(sotto_arena *ar);
/* Bump-allocates `size` bytes aligned to `align` (power of two, ≤ 4096); NULL when full. */
void *sotto_arena_alloc(sotto_arena *ar, size_t size, size_t align);
/* Typed helper: n floats, 64-byte aligned. */
float *sotto_arena_floats(sotto_arena *ar, size_t n);
/* Marks: save and restore the fill level for nested scratch. */
static inline size_t sotto_arena_mark(const sotto_arena *ar)
{
    return ar->used;
}
static inline void sotto_arena_release(sotto_arena *ar, size_t mark)
{
    ar->used = mark;
}
static inline void sotto_arena_reset(sotto_arena *ar)
{
    ar->used = 0;
}

#endif
