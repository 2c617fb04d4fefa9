/*
 * Internal core services shared by every part of the SDK: allocation through the model's
 * hooks, checked size arithmetic, logging through the application's callback, and filling
 * sotto_status / per-object error details.
 */
#ifndef SOTTO_CORE_H
#define SOTTO_CORE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "sotto/sotto.h"

#if defined(__GNUC__)
#define SOTTO_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define SOTTO_PRINTF(a, b)
#endif

/* Allocation through hooks (NULL hooks: aligned C allocation). Alignment defaults to 64. */
typedef struct sotto_alloc {
    sotto_allocator hooks; /* alloc == NULL means libc */
} sotto_alloc;

void sotto_alloc_init(sotto_alloc *a, const sotto_allocator *hooks);
void *sotto_malloc(const sotto_alloc *a, size_t size);            /* 64-byte aligned */
void *sotto_calloc(const sotto_alloc *a, size_t n, size_t size); /* zeroed, overflow-checked */
void sotto_free(const sotto_alloc *a, void *p);
char *sotto_strdup(const sotto_alloc *a, const char *s);

/* Overflow-checked size arithmetic: return 0 on success, -1 on overflow. */
static inline int sotto_mul_size(size_t a, size_t b, size_t *out)
{
    return __builtin_mul_overflow(a, b, out) ? -1 : 0;
}
static inline int sotto_add_size(size_t a, size_t b, size_t *out)
{
    return __builtin_add_overflow(a, b, out) ? -1 : 0;
}

/* Logging through the application callback (no-op when none is set). */
void sotto_log(sotto_log_level level, const char *fmt, ...) SOTTO_PRINTF(2, 3);

/* Fills *st (if not NULL) with code and formatted message; returns code. */
int sotto_status_set(sotto_status *st, int code, const char *fmt, ...) SOTTO_PRINTF(3, 4);
int sotto_status_setv(sotto_status *st, int code, const char *fmt, va_list ap);
void sotto_status_clear(sotto_status *st);

#define SOTTO_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
