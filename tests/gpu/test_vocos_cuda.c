/*
 * The offline Vocos forward on the CUDA layer library (vocoder/vocos/vocos_cuda.h) against the
 * CPU vocoder's offline output (sotto_vocoder: push every frame, then flush) on the golden mel
 * features of tests/data/vocos: the "center" and "same" ISTFT heads, f32 and f16 weights, a
 * second, shorter call on the same context (the zero frames around the input must be zero
 * again), and the argument errors. Where no device exists, or Sotto was built without its CUDA
 * backend, the test reports SKIP (exit code 77), never a pass.
 *
 * Tolerances (all activations f32, TF32 off on the GPU):
 *   f32 weights: max-abs ≤ 1e-4 and NMSE ≤ 1e-8 (NMSE = Σ(gpu − cpu)² / Σ cpu²). The two sides
 *     run the same formulas in different summation orders (cuBLAS vs the CPU GEMM, γ folded
 *     into pwconv2 on the GPU, cuFFT vs KissFFT); a wrong index or formula gives NMSE near 1.
 *   f16 weights (mel-small-f16.gguf, loaded with default params, i.e. binary16 weights widened
 *     to f32 in both GEMMs, no binary16 arithmetic): NMSE ≤ 1e-6 against the CPU f16 path.
 * Each comparison prints its max-abs and NMSE, so the log records the achieved error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda_probe.h"
#include "testutil.h"

#ifdef SOTTO_HAVE_CUDA

#include "core/model.h"
#include "sotto/sotto.h"
#include "sotto/sotto_vocoder.h"
#include "vocoder/vocos/vocos.h"
#include "vocoder/vocos/vocos_cuda.h"

#define MAX_ABS_F32 1e-4
#define NMSE_F32 1e-8
#define NMSE_F16 1e-6

static sotto_model *load(const char *rel)
{
    sotto_model *m = NULL;
    sotto_status st;
    int rc = sotto_model_load_file(tu_data_path(rel), NULL, &m, &st);
    if (rc) fprintf(stderr, "load %s: %s\n", rel, st.message);
    CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
    CU_ASSERT_FATAL(!strcmp(m->arch, "vocos") && m->arch_data != NULL);
    return m;
}

/* The CPU vocoder's offline output of T frames: all pushed at once, then flush. */
static float *cpu_offline(sotto_model *m, const float *mel, int T, int64_t *n)
{
    sotto_vocoder *v = NULL;
    sotto_status st;
    int rc = sotto_vocoder_create(m, NULL, &v, &st);
    if (rc) fprintf(stderr, "vocoder: %s\n", st.message);
    CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
    const size_t cap = sotto_vocoder_max_output_samples(v, T);
    float *y = calloc(cap, sizeof(float));
    CU_ASSERT_PTR_NOT_NULL_FATAL(y);
    int got = sotto_vocoder_push_features(v, mel, T, y, cap);
    if (got < 0) fprintf(stderr, "push: %s\n", sotto_vocoder_last_error(v));
    CU_ASSERT_TRUE_FATAL(got >= 0);
    int tail = sotto_vocoder_flush(v, y + got, cap - (size_t)got);
    if (tail < 0) fprintf(stderr, "flush: %s\n", sotto_vocoder_last_error(v));
    CU_ASSERT_TRUE_FATAL(tail >= 0);
    *n = (int64_t)got + tail;
    sotto_vocoder_free(v);
    return y;
}

/* The GPU forward of T frames into a fresh buffer; *n gets the count (or the error). */
static float *gpu_offline(vocos_cuda *c, const float *mel, int T, int64_t *n)
{
    const int64_t len = vocos_cuda_output_length(c, T);
    CU_ASSERT_TRUE_FATAL(len > 0);
    float *y = calloc((size_t)len, sizeof(float));
    CU_ASSERT_PTR_NOT_NULL_FATAL(y);
    *n = vocos_cuda_offline(c, mel, T, y, len);
    if (*n < 0) fprintf(stderr, "vocos_cuda_offline: %s\n", vocos_cuda_last_error(c));
    return y;
}

static void compare(const char *model_rel, const char *golden_rel, double max_abs, double nmse)
{
    sotto_model *m = load(model_rel);
    sotto_gguf *g = tu_golden_open(golden_rel);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    int64_t shape[4];
    float *mel = tu_golden_f32(g, "mel", NULL, shape);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mel);
    const int T = (int)shape[0];
    const vocos_weights *w = m->arch_data;
    CU_ASSERT_EQUAL_FATAL(shape[1], w->hp.input_channels);

    vocos_cuda *c = NULL;
    sotto_status st;
    int rc = vocos_cuda_create(w, 0, T, &c, &st);
    if (rc) fprintf(stderr, "vocos_cuda_create: %s\n", st.message);
    CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);

    /* The whole sequence, then a shorter one on the same buffers. */
    const int lengths[2] = {T, T / 2 + 1};
    for (int i = 0; i < 2; i++) {
        int64_t n_cpu, n_gpu;
        float *want = cpu_offline(m, mel, lengths[i], &n_cpu);
        float *got = gpu_offline(c, mel, lengths[i], &n_gpu);
        CU_ASSERT_EQUAL(n_gpu, n_cpu);
        char what[160];
        snprintf(what, sizeof what, "%s, %d frames: GPU vs CPU offline", model_rel, lengths[i]);
        if (n_gpu == n_cpu) TU_ASSERT_CLOSE(what, got, want, n_cpu, max_abs, nmse);
        free(want);
        free(got);
    }

    /* Argument errors leave the context working. */
    const int64_t len = vocos_cuda_output_length(c, T);
    float *y = calloc((size_t)len, sizeof(float));
    CU_ASSERT_PTR_NOT_NULL_FATAL(y);
    CU_ASSERT_EQUAL(vocos_cuda_offline(c, mel, T + 1, y, len), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(vocos_cuda_offline(c, mel, 0, y, len), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(vocos_cuda_offline(c, mel, T, y, len - 1), SOTTO_ERR_BUFFER_TOO_SMALL);
    CU_ASSERT_EQUAL(vocos_cuda_offline(c, mel, T, y, len), len);
    free(y);

    vocos_cuda_free(c);
    free(mel);
    sotto_gguf_close(g);
    sotto_model_free(m);
}

static void test_mel_small(void)
{
    compare("vocos/mel-small.gguf", "vocos/mel-small_golden.gguf", MAX_ABS_F32, NMSE_F32);
}

static void test_mel_same_1280(void)
{
    compare("vocos/mel-same-1280.gguf", "vocos/mel-same-1280_golden.gguf", MAX_ABS_F32, NMSE_F32);
}

static void test_mel_small_f16(void)
{
    compare("vocos/mel-small-f16.gguf", "vocos/mel-small_golden.gguf", -1.0, NMSE_F16);
}

/* EnCodec-feature models are outside this forward: refused before any device work. */
static void test_encodec_refused(void)
{
    sotto_model *m = load("vocos/encodec-small.gguf");
    vocos_cuda *c = NULL;
    sotto_status st;
    CU_ASSERT_EQUAL(vocos_cuda_create(m->arch_data, 0, 16, &c, &st), SOTTO_ERR_UNSUPPORTED);
    CU_ASSERT_PTR_NULL(c);
    printf("  (%s)\n", st.message);
    sotto_model_free(m);
}

#endif /* SOTTO_HAVE_CUDA */

int main(void)
{
#ifndef SOTTO_HAVE_CUDA
    printf("SKIP: Sotto built without the CUDA backend\n");
    return TU_SKIP;
#else
    if (sotto_cuda_device_count() == 0) {
        printf("SKIP: no CUDA device\n");
        return TU_SKIP;
    }
    static const tu_test tests[] = {{"mel_small", test_mel_small},
                                    {"mel_same_1280", test_mel_same_1280},
                                    {"mel_small_f16", test_mel_small_f16},
                                    {"encodec_refused", test_encodec_refused},
                                    {NULL, NULL}};
    return tu_run_suite("vocos_cuda", tests);
#endif
}
