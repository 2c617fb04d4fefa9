/*
 * The objective scores of `sotto compare` (apps/sotto/metrics.c) against hand-computed
 * values: identical signals score perfectly, an orthogonal noise at a known power gives that
 * SNR exactly, SI-SDR ignores gain, and the log-mel distance of x and 2·x is ln 2.
 */
#include <math.h>
#include <stdlib.h>

#include "metrics.h"
#include "testutil.h"

#define N 16000

/* s: +1 +1 −1 −1 repeating; e: +1 −1 repeating. Both zero-mean, and orthogonal over any
 * multiple of 4 samples, so s + g·e has SNR = 10·log10(1 / g²) in every 20 ms frame. */
static void make(float *s, float *d, double snr_db)
{
    const double g = pow(10.0, -snr_db / 20.0);
    for (int i = 0; i < N; i++) {
        s[i] = (i & 2) ? -1.0f : 1.0f;
        d[i] = (float)(s[i] + g * ((i & 1) ? -1.0 : 1.0));
    }
}

static void test_identical(void)
{
    float *s = malloc(sizeof(float) * N), *d = malloc(sizeof(float) * N);
    tu_rng r;
    tu_rng_init(&r, tu_seed());
    tu_fill_uniform(&r, s, N, -0.5f, 0.5f);
    CU_ASSERT_DOUBLE_EQUAL(metrics_si_sdr(s, s, N), METRICS_MAX_DB, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(metrics_seg_snr(s, s, N, 320), METRICS_SEGSNR_MAX_DB, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(metrics_log_mel_l1(s, s, N, 16000), 0.0, 0.0);
    /* An unrelated signal scores badly. */
    tu_fill_uniform(&r, d, N, -0.5f, 0.5f);
    CU_ASSERT(metrics_si_sdr(s, d, N) < -10.0);
    CU_ASSERT(metrics_seg_snr(s, d, N, 320) < 1.0);
    CU_ASSERT(metrics_log_mel_l1(s, d, N, 16000) > 0.05);
    free(s);
    free(d);
}

static void test_known_snr(void)
{
    float *s = malloc(sizeof(float) * N), *d = malloc(sizeof(float) * N);
    make(s, d, 20.0);
    CU_ASSERT_DOUBLE_EQUAL(metrics_si_sdr(s, d, N), 20.0, 1e-4);
    CU_ASSERT_DOUBLE_EQUAL(metrics_seg_snr(s, d, N, 320), 20.0, 1e-4);
    make(s, d, 6.0);
    CU_ASSERT_DOUBLE_EQUAL(metrics_si_sdr(s, d, N), 6.0, 1e-4);
    CU_ASSERT_DOUBLE_EQUAL(metrics_seg_snr(s, d, N, 320), 6.0, 1e-4);
    /* Scale invariance: half the gain changes SNR (error = s/2 + e/2·g) but not SI-SDR. */
    for (int i = 0; i < N; i++) d[i] *= 0.5f;
    CU_ASSERT_DOUBLE_EQUAL(metrics_si_sdr(s, d, N), 6.0, 1e-4);
    CU_ASSERT(metrics_seg_snr(s, d, N, 320) < 6.0);
    /* Per-frame clamping: 50 dB is clamped to 35, −20 dB to −10. */
    make(s, d, 50.0);
    CU_ASSERT_DOUBLE_EQUAL(metrics_seg_snr(s, d, N, 320), 35.0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(metrics_si_sdr(s, d, N), 50.0, 1e-3);
    make(s, d, -20.0);
    CU_ASSERT_DOUBLE_EQUAL(metrics_seg_snr(s, d, N, 320), -10.0, 1e-9);
    /* Silent reference frames are skipped: zero the first half of both. */
    make(s, d, 20.0);
    for (int i = 0; i < N / 2; i++) s[i] = d[i] = 0;
    for (int i = 0; i < N / 4; i++) d[i] = 1.0f;
    CU_ASSERT_DOUBLE_EQUAL(metrics_seg_snr(s, d, N, 320), 20.0, 1e-4);
    free(s);
    free(d);
}

static void test_mel_gain(void)
{
    float *s = malloc(sizeof(float) * N), *d = malloc(sizeof(float) * N);
    tu_rng r;
    tu_rng_init(&r, tu_seed());
    for (int i = 0; i < N; i++) {
        s[i] = 0.3f * sinf(0.07f * (float)i) + 0.2f * tu_rng_uniform(&r, -1.0f, 1.0f);
        d[i] = 2.0f * s[i];
    }
    /* Magnitude mel is linear in the gain: every log-mel value moves by ln 2. */
    CU_ASSERT_DOUBLE_EQUAL(metrics_log_mel_l1(s, d, N, 16000), log(2.0), 1e-4);
    CU_ASSERT_DOUBLE_EQUAL(metrics_log_mel_l1(d, s, N, 16000), log(2.0), 1e-4);
    /* Too short for the 512-point analysis, and a NaN. */
    CU_ASSERT(metrics_log_mel_l1(s, d, 100, 16000) < 0);
    d[5] = NAN;
    CU_ASSERT(metrics_log_mel_l1(s, d, N, 16000) < 0);
    free(s);
    free(d);
}

static void test_stoi(void)
{
    /* 2 s of a crude voiced signal (harmonics, syllable-rate envelope) at 16 kHz. */
    const int64_t n = 32000;
    float *s = malloc(sizeof(float) * (size_t)n), *d = malloc(sizeof(float) * (size_t)n);
    tu_rng r;
    tu_rng_init(&r, tu_seed());
    for (int64_t i = 0; i < n; i++) {
        const double t = (double)i / 16000, env = 0.5 + 0.5 * sin(2 * M_PI * 4 * t);
        double v = 0;
        for (int h = 1; h <= 20; h++) v += sin(2 * M_PI * 120 * h * t) / h;
        s[i] = (float)(0.2 * env * v);
    }
    double v = -1;
    CU_ASSERT_EQUAL(metrics_stoi(s, s, n, 16000, &v), 0);
    CU_ASSERT_DOUBLE_EQUAL(v, 1.0, 1e-9); /* identical: every correlation is 1 */
    for (int64_t i = 0; i < n; i++) d[i] = 3.0f * s[i];
    CU_ASSERT_EQUAL(metrics_stoi(s, d, n, 16000, &v), 0);
    CU_ASSERT_DOUBLE_EQUAL(v, 1.0, 1e-6); /* gain invariant */
    /* Heavy white noise (−5 dB) lowers it well below 1; less noise scores higher. */
    double e = 0;
    for (int64_t i = 0; i < n; i++) e += (double)s[i] * s[i];
    const double rms = sqrt(e / (double)n);
    double loud = 0, quiet = 0;
    for (int64_t i = 0; i < n; i++) d[i] = s[i] + (float)(rms * 1.78 * tu_rng_uniform(&r, -1, 1));
    CU_ASSERT_EQUAL(metrics_stoi(s, d, n, 16000, &loud), 0);
    for (int64_t i = 0; i < n; i++) d[i] = s[i] + 0.1f * (d[i] - s[i]);
    CU_ASSERT_EQUAL(metrics_stoi(s, d, n, 16000, &quiet), 0);
    fprintf(stderr, "stoi: noise −5 dB %.4f, +15 dB %.4f\n", loud, quiet);
    CU_ASSERT(loud < 0.9);
    CU_ASSERT(quiet > loud + 0.05);
    /* Too short for 30 frames after silence removal: pystoi's 1e-5. Bad arguments. */
    CU_ASSERT_EQUAL(metrics_stoi(s, s, 3000, 16000, &v), 0);
    CU_ASSERT_DOUBLE_EQUAL(v, 1e-5, 1e-12);
    CU_ASSERT(metrics_stoi(s, s, 0, 16000, &v) < 0);
    CU_ASSERT(metrics_stoi(s, s, n, 0, &v) < 0);
    d[7] = NAN;
    CU_ASSERT(metrics_stoi(s, d, n, 16000, &v) < 0);
    free(s);
    free(d);
}

int main(void)
{
    static const tu_test tests[] = {
        {"identical and unrelated signals", test_identical},
        {"known SNR, gain invariance, clamping", test_known_snr},
        {"log-mel L1 of a gain of 2 is ln 2", test_mel_gain},
        {"STOI: identity, gain, noise ordering, short input, errors", test_stoi},
        {NULL, NULL},
    };
    return tu_run_suite("metrics", tests);
}
