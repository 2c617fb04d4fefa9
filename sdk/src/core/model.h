/*
 * The inside of a sotto_model: the GGUF reader that holds the file, the allocator and params
 * it was loaded with, the CPU features it may use, and slots that backend and model code fill
 * after loading (a backend handle, the repacked weights of an architecture and how to free
 * them). Everything here is written during load only; afterwards the model is read-only, but
 * for the lazily computed identity (identity.c), which is published atomically.
 */
#ifndef SOTTO_MODEL_H
#define SOTTO_MODEL_H

#include <stdatomic.h>

#include "core/core.h"
#include "core/gguf.h"

struct sotto_model {
    sotto_gguf *gguf;          /* the file; tensors' data point into it */
    sotto_alloc alloc;         /* copied from params.allocator at load */
    sotto_model_params params; /* as given (defaults filled); .allocator points at alloc.hooks
                                  when one was given, so it never dangles */
    unsigned cpu_features;     /* sotto_cpu_features() & params.cpu_features_mask */
    int f16_math;              /* params.f16_arithmetic (0, 1 synthesis, 2 also analysis) when
                                  SOTTO_CPU_AVX512FP16 is in cpu_features, else 0: model code
                                  switches its f16 Linear weights to binary16 arithmetic at load */
    int f16_math_used;         /* set by model code when it did (sotto_model_f16_arithmetic) */
    sotto_backend_kind backend_used; /* the backend that runs it (model.c: settle_backend) */
    int cuda_ok;      /* params.backend = CUDA and its device exists, or AUTO found it
                         (model.c: check_backend): the architecture's loader may then prepare
                         its CUDA path */
    int cuda_path;    /* set by the architecture's loader when it has a CUDA path for this
                         model (CUDA builds only); backend_used is CUDA when both are set */
    const char *arch; /* general.architecture, owned by gguf */
    const char *name; /* general.name or "", owned by gguf */

    void *backend; /* backend state, attached by backend code; NULL until then */
    /* Per-architecture weights (repacked layouts, uploaded buffers). arch_free, when set, is
     * called first by sotto_model_free and must release arch_data (and backend uses). */
    void *arch_data;
    void (*arch_free)(struct sotto_model *model);

    /* sotto_model_identity's cache (the one field written after load): identity_state is
     * 0 (not computed), 1 (one caller is computing it) or 2 (identity holds it; published
     * with release order). See identity.c. */
    atomic_int identity_state;
    uint8_t identity[32];
};

/* Checks params: n_threads 1..64, a known backend, device >= 0, allocator with both hooks.
 * Returns SOTTO_OK or SOTTO_ERR_INVALID_ARG with a message naming the field. */
int sotto_model_params_check(const sotto_model_params *p, sotto_status *st);

/* For an architecture's loader, after setting up its CUDA path failed with rc (st saying why):
 * with params.backend = AUTO the model falls back to the CPU (a warning in the log, st
 * cleared, cuda_path reset) and SOTTO_OK is returned; with CUDA asked for explicitly, rc is
 * returned and the load fails. */
int sotto_model_cuda_fallback(sotto_model *m, int rc, sotto_status *st);

#endif
