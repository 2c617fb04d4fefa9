/*
 * Allocation through the application's hooks (or aligned libc allocation), with overflow
 * checks. Used at load and creation time only; processing paths use preallocated buffers.
 */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

#define SOTTO_ALIGN 64

void sotto_alloc_init(sotto_alloc *a, const sotto_allocator *hooks)
{
    memset(a, 0, sizeof *a);
    if (hooks && hooks->alloc && hooks->free) a->hooks = *hooks;
}

void *sotto_malloc(const sotto_alloc *a, size_t size)
{
    if (size == 0) size = 1;
    if (a && a->hooks.alloc) return a->hooks.alloc(size, SOTTO_ALIGN, a->hooks.user);
    size_t rounded;
    if (sotto_add_size(size, SOTTO_ALIGN - 1, &rounded)) return NULL;
    rounded &= ~(size_t)(SOTTO_ALIGN - 1);
    return aligned_alloc(SOTTO_ALIGN, rounded);
}

void *sotto_calloc(const sotto_alloc *a, size_t n, size_t size)
{
    size_t total;
    if (sotto_mul_size(n, size, &total)) return NULL;
    void *p = sotto_malloc(a, total);
    if (p) memset(p, 0, total ? total : 1);
    return p;
}

void sotto_free(const sotto_alloc *a, void *p)
{
    if (!p) return;
    if (a && a->hooks.free)
        a->hooks.free(p, a->hooks.user);
    else
        free(p);
}

char *sotto_strdup(const sotto_alloc *a, const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = sotto_malloc(a, n);
    if (d) memcpy(d, s, n);
    return d;
}
