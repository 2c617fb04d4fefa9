/*
 * Parallel-for thread pool. A job is published by bumping an atomic generation counter;
 * workers spin briefly on it and then sleep in futex_wait on the counter's address, so
 * dispatch takes no mutex. Completion is an atomic count the caller spins on (jobs are
 * short, the caller does its own share meanwhile). Linux only (futex); elsewhere the pool
 * degrades to running jobs inline.
 */
#include "core/threadpool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#if defined(__linux__)
#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>
#define SOTTO_HAVE_FUTEX 1
#endif

#define SPIN_BEFORE_SLEEP 20000

struct sotto_threadpool {
    int n;
    const sotto_alloc *alloc;
    pthread_t *threads;
    _Atomic uint32_t generation; /* bumped for each job; 32-bit for futex */
    _Atomic int pending;         /* workers still running the current job */
    _Atomic int stop;
    sotto_task_fn fn;
    void *ctx;
};

typedef struct worker_arg {
    sotto_threadpool *tp;
    int ith;
} worker_arg;

#ifdef SOTTO_HAVE_FUTEX
static void futex_wait(_Atomic uint32_t *addr, uint32_t val)
{
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}
static void futex_wake_all(_Atomic uint32_t *addr)
{
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, 0x7fffffff, NULL, NULL, 0);
}
#endif

static void *worker_main(void *p)
{
    worker_arg *wa = p;
    sotto_threadpool *tp = wa->tp;
    int ith = wa->ith;
    /* The pool is created at generation 0. Starting from 0 rather than the current value
     * matters: a job published before this thread got going must still be run. */
    uint32_t seen = 0;
    for (;;) {
        uint32_t g;
        int spins = 0;
        while ((g = atomic_load_explicit(&tp->generation, memory_order_acquire)) == seen) {
            if (++spins < SPIN_BEFORE_SLEEP) continue;
#ifdef SOTTO_HAVE_FUTEX
            futex_wait(&tp->generation, seen);
#endif
            spins = 0;
        }
        seen = g;
        if (atomic_load_explicit(&tp->stop, memory_order_acquire)) break;
        tp->fn(tp->ctx, ith, tp->n);
        atomic_fetch_sub_explicit(&tp->pending, 1, memory_order_acq_rel);
    }
    return NULL;
}

int sotto_threadpool_create(int n_threads, const sotto_alloc *alloc, sotto_threadpool **out)
{
    if (!out || n_threads < 1 || n_threads > 64) return SOTTO_ERR_INVALID_ARG;
    *out = NULL;
    sotto_threadpool *tp = sotto_calloc(alloc, 1, sizeof *tp);
    if (!tp) return SOTTO_ERR_OUT_OF_MEMORY;
    tp->alloc = alloc;
#ifndef SOTTO_HAVE_FUTEX
    n_threads = 1;
#endif
    tp->n = n_threads;
    if (n_threads > 1) {
        size_t extra = (size_t)(n_threads - 1);
        tp->threads = sotto_calloc(alloc, extra, sizeof(pthread_t) + sizeof(worker_arg));
        if (!tp->threads) {
            sotto_free(alloc, tp);
            return SOTTO_ERR_OUT_OF_MEMORY;
        }
        worker_arg *args = (worker_arg *)(tp->threads + extra);
        for (int i = 1; i < n_threads; i++) {
            args[i - 1].tp = tp;
            args[i - 1].ith = i;
            if (pthread_create(&tp->threads[i - 1], NULL, worker_main, &args[i - 1]) != 0) {
                tp->n = i; /* stop the ones already running */
                sotto_threadpool_free(tp);
                return SOTTO_ERR_OUT_OF_MEMORY;
            }
        }
    }
    *out = tp;
    return SOTTO_OK;
}

void sotto_threadpool_free(sotto_threadpool *tp)
{
    if (!tp) return;
    if (tp->n > 1) {
        atomic_store_explicit(&tp->stop, 1, memory_order_release);
        atomic_fetch_add_explicit(&tp->generation, 1, memory_order_acq_rel);
#ifdef SOTTO_HAVE_FUTEX
        futex_wake_all(&tp->generation);
#endif
        for (int i = 0; i < tp->n - 1; i++) pthread_join(tp->threads[i], NULL);
    }
    sotto_free(tp->alloc, tp->threads);
    sotto_free(tp->alloc, tp);
}

int sotto_threadpool_size(const sotto_threadpool *tp)
{
    return tp ? tp->n : 1;
}

void sotto_threadpool_run(sotto_threadpool *tp, sotto_task_fn fn, void *ctx)
{
    if (!tp || tp->n == 1) {
        fn(ctx, 0, 1);
        return;
    }
    tp->fn = fn;
    tp->ctx = ctx;
    atomic_store_explicit(&tp->pending, tp->n - 1, memory_order_release);
    atomic_fetch_add_explicit(&tp->generation, 1, memory_order_acq_rel);
#ifdef SOTTO_HAVE_FUTEX
    futex_wake_all(&tp->generation);
#endif
    fn(ctx, 0, tp->n);
    while (atomic_load_explicit(&tp->pending, memory_order_acquire) > 0) {
#ifdef SOTTO_HAVE_FUTEX
        sched_yield();
#endif
    }
}
