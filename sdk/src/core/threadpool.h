/*
 * A small pool of worker threads for parallel-for. The calling thread takes part as worker 0.
 * Dispatch is lock-free (an atomic generation counter and a futex wait), so running a job
 * takes no mutex and allocates nothing; with n_threads == 1 jobs run inline.
 */
#ifndef SOTTO_THREADPOOL_H
#define SOTTO_THREADPOOL_H

#include "core/core.h"

typedef struct sotto_threadpool sotto_threadpool;

/* fn(ctx, ith, nth) runs once for each ith in [0, nth). */
typedef void (*sotto_task_fn)(void *ctx, int ith, int nth);

/* n_threads in 1..64. Errors: SOTTO_ERR_INVALID_ARG, SOTTO_ERR_OUT_OF_MEMORY. */
int sotto_threadpool_create(int n_threads, const sotto_alloc *alloc, sotto_threadpool **out);
void sotto_threadpool_free(sotto_threadpool *tp);
int sotto_threadpool_size(const sotto_threadpool *tp);
/* Runs fn on every thread and returns when all are done. tp may be NULL (runs inline, nth 1).
 * Not re-entrant: one run at a time per pool. */
void sotto_threadpool_run(sotto_threadpool *tp, sotto_task_fn fn, void *ctx);

/* Splits [0, n) into nth nearly equal parts; part ith is [*begin, *end). */
static inline void sotto_split_range(int64_t n, int ith, int nth, int64_t *begin, int64_t *end)
{
    int64_t q = n / nth, r = n % nth;
    *begin = ith * q + (ith < r ? ith : r);
    *end = *begin + q + (ith < r ? 1 : 0);
}

#endif
