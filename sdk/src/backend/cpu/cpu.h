/*
 * The CPU backend context: the kernel table chosen once from a features mask, and an optional
 * thread pool that the layers in nn/ops.h use to split large GEMMs and convolutions. A stream
 * keeps one sotto_cpu by value next to its thread pool; nothing in it changes after
 * sotto_cpu_init, so the layers take it as const and several contexts with different masks
 * can coexist in one process.
 *
 * Large GEMMs go to OpenBLAS. Sotto's own pool does the parallel split (by output columns),
 * so sotto_cpu_init asks OpenBLAS to run single-threaded: otherwise OpenBLAS would start one
 * thread per core on its own and a stream created with n_threads = 1 would use every core.
 */
#ifndef SOTTO_BACKEND_CPU_H
#define SOTTO_BACKEND_CPU_H

#include "backend/backend.h"
#include "core/threadpool.h"

typedef struct sotto_cpu {
    sotto_cpu_kernels k;  /* chosen at init; read-only afterwards */
    unsigned features;    /* SOTTO_CPU_* bits in use (requested & present) */
    sotto_threadpool *tp; /* NULL: single-threaded; not owned */
    int blas_large;       /* 1: f32 GEMMs of more than 16 rows go to OpenBLAS; 0: our own
                             kernel for every M (see sotto_cpu_init) */
} sotto_cpu;

/*
 * Fills *cpu. Large f32 GEMMs go to OpenBLAS unless OpenBLAS runs a kernel older than our own:
 * its runtime dispatch falls back to a generic SSE3 core ("Prescott") on CPUs it does not
 * recognise (new or virtualised models), which is 2-3 times slower than our AVX2/FMA kernel;
 * then blas_large is 0 and our kernel takes every size. [in] features: SOTTO_CPU_* bits allowed (e.g. model->cpu_features, or 0 to force
 * the scalar reference); bits the CPU lacks are dropped. [in] tp: pool for parallel work, or
 * NULL; it must outlive the context, and one context runs one op at a time.
 */
void sotto_cpu_init(sotto_cpu *cpu, unsigned features, sotto_threadpool *tp);

/* Capability query: 1 when the context runs `op` (a sotto_op), 0 otherwise. The CPU backend
 * runs every op; the query exists so model code can treat all backends alike. */
int sotto_cpu_supports(const sotto_cpu *cpu, int op);

/* Threads available to a job (1 without a pool). */
static inline int sotto_cpu_threads(const sotto_cpu *cpu)
{
    return cpu->tp ? sotto_threadpool_size(cpu->tp) : 1;
}

#endif
