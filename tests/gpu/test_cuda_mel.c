/*
 * The mel front end on the device (backend/cuda/cuda_mel.h: cuFFT R2C, filterbank GEMM, log)
 * against the CPU's sotto_mel_frames on the same padded signal: the Vocos settings (n_fft
 * 1024, hop 256, 100 mels, magnitude, ln(max(x, 1e-7))) and a 16 kHz one with power spectra,
 * the dB log and a Slaney filterbank (n_fft 400: a size that is not a power of two), each over
 * more frames than one batch so the block loop runs; argument errors. Where no device exists,
 * or Sotto was built without its CUDA backend, the test reports SKIP (exit code 77).
 *
 * Budgets (f32 on both sides; the FFTs differ in summation order): NMSE 1e-9 on the log-mel
 * features and max-abs 1e-3 (the log magnifies the relative error of the smallest energies,
 * near the floor). A wrong frame offset, window or filterbank layout gives an NMSE near 1.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "backend/cuda_probe.h"
#include "testutil.h"

#ifdef SOTTO_HAVE_CUDA

#include "backend/cuda/cuda_mel.h"
#include "dsp/mel.h"

#define MAX_ABS 1e-3
#define NMSE 1e-9

static sotto_cuda *g_cu;

static void mel_case(const char *what, const sotto_mel_params *mp, int batch, int64_t n_frames)
{
    sotto_mel *m = NULL;
    sotto_status st;
    CU_ASSERT_EQUAL_FATAL(sotto_mel_create(mp, NULL, &m, &st), SOTTO_OK);
    const int hop = mp->hop_length, nf = mp->n_fft, nm = sotto_mel_n_mels(m);
    const int64_t n = (n_frames - 1) * hop + nf;
    float *xp = malloc(sizeof(float) * (size_t)n);
    float *want = malloc(sizeof(float) * (size_t)(n_frames * nm));
    float *got = malloc(sizeof(float) * (size_t)(n_frames * nm));
    CU_ASSERT_PTR_NOT_NULL_FATAL(xp && want && got);
    tu_rng r;
    tu_rng_init(&r, 0x6d656cu + (uint64_t)nf);
    for (int64_t i = 0; i < n; i++) /* a chirp with noise: energy in every band */
        xp[i] = 0.4f * sinf(0.002f * (float)i * (1.0f + 0.0004f * (float)i)) +
                0.05f * tu_rng_normal(&r);
    CU_ASSERT_EQUAL_FATAL(sotto_mel_frames(m, xp, n, n_frames, want, n_frames), n_frames);

    sotto_cuda_mel *p = NULL;
    CU_ASSERT_EQUAL_FATAL(sotto_cuda_mel_create(g_cu, m, batch, &p, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_cuda_mel_n_mels(p), nm);
    float *dx = NULL, *dy = NULL;
    CU_ASSERT_EQUAL_FATAL(sotto_cuda_alloc(g_cu, sizeof(float) * (size_t)n, (void **)&dx),
                          SOTTO_OK);
    CU_ASSERT_EQUAL_FATAL(
        sotto_cuda_alloc(g_cu, sizeof(float) * (size_t)(n_frames * nm), (void **)&dy), SOTTO_OK);
    CU_ASSERT_EQUAL_FATAL(sotto_cuda_upload(g_cu, dx, xp, sizeof(float) * (size_t)n), SOTTO_OK);
    CU_ASSERT_EQUAL_FATAL(sotto_cuda_mel_frames(g_cu, p, dx, n, n_frames, dy), n_frames);
    CU_ASSERT_EQUAL_FATAL(
        sotto_cuda_download(g_cu, got, dy, sizeof(float) * (size_t)(n_frames * nm)), SOTTO_OK);
    char label[128];
    snprintf(label, sizeof label, "mel %s, %lld frames in batches of %d: GPU vs CPU", what,
             (long long)n_frames, batch);
    TU_ASSERT_CLOSE(label, got, want, n_frames * nm, MAX_ABS, NMSE);

    /* a signal one sample short of the last frame, NULL buffers, negative counts */
    CU_ASSERT_EQUAL(sotto_cuda_mel_frames(g_cu, p, dx, n - 1, n_frames, dy), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_cuda_mel_frames(g_cu, p, NULL, n, n_frames, dy), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_cuda_mel_frames(g_cu, p, dx, n, -1, dy), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_cuda_mel_frames(g_cu, p, dx, n, 0, dy), 0);
    CU_ASSERT_EQUAL(sotto_cuda_error(g_cu), SOTTO_OK);

    sotto_cuda_free(g_cu, dx);
    sotto_cuda_free(g_cu, dy);
    sotto_cuda_mel_destroy(g_cu, p);
    sotto_mel_destroy(m);
    free(xp);
    free(want);
    free(got);
}

static void test_vocos(void)
{
    const sotto_mel_params mp = sotto_mel_default_params();
    mel_case("Vocos 24 kHz (magnitude, ln)", &mp, 16, 37);
}

static void test_power_db(void)
{
    sotto_mel_params mp = sotto_mel_default_params();
    mp.sample_rate_hz = 16000;
    mp.n_fft = 400;
    mp.hop_length = 160;
    mp.n_mels = 64;
    mp.power = 2;
    mp.norm = SOTTO_MEL_NORM_SLANEY;
    mp.scale = SOTTO_MEL_SCALE_SLANEY;
    mp.log = SOTTO_MEL_LOG_DB;
    mp.log_floor = 1e-10f;
    mp.db_multiplier = 10.0f;
    mel_case("16 kHz (power, dB, Slaney)", &mp, 7, 23);
}

static void test_errors(void)
{
    sotto_mel_params mp = sotto_mel_default_params();
    sotto_mel *m = NULL;
    sotto_status st;
    CU_ASSERT_EQUAL_FATAL(sotto_mel_create(&mp, NULL, &m, &st), SOTTO_OK);
    sotto_cuda_mel *p = NULL;
    CU_ASSERT_EQUAL(sotto_cuda_mel_create(g_cu, m, 0, &p, &st), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_cuda_mel_create(g_cu, NULL, 4, &p, &st), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_cuda_mel_create(NULL, m, 4, &p, &st), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_cuda_mel_create(g_cu, m, 4, NULL, &st), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NULL(p);
    CU_ASSERT_EQUAL(sotto_cuda_mel_frames(g_cu, NULL, NULL, 0, 1, NULL), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_cuda_error(g_cu), SOTTO_OK);
    sotto_mel_destroy(m);
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
    sotto_status st;
    if (sotto_cuda_create(&g_cu, 0, (size_t)1 << 20, &st) != SOTTO_OK) {
        fprintf(stderr, "cuda context: %s\n", st.message);
        return 1;
    }
    static const tu_test tests[] = {
        {"vocos", test_vocos}, {"power_db", test_power_db}, {"errors", test_errors}, {NULL, NULL}};
    const int rc = tu_run_suite("cuda_mel", tests);
    sotto_cuda_destroy(g_cu);
    return rc;
#endif
}
