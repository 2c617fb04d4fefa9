/*
 * Mel front end: filterbank shape properties, argument errors, a caller-supplied filterbank,
 * the dB top_db floor, streamed frames against the offline call, and that processing
 * allocates nothing. Parity with torchaudio is in tests/golden/test_dsp_golden.c.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dsp/mel.h"
#include "testutil.h"

static void test_fbanks_shape(void)
{
    const int nf = 513, nm = 100;
    float *fb = malloc(sizeof(float) * nf * nm);
    CU_ASSERT_EQUAL_FATAL(sotto_mel_fbanks(nf, 0.0, 12000.0, nm, 24000, SOTTO_MEL_NORM_NONE,
                                           SOTTO_MEL_SCALE_HTK, fb, NULL),
                          SOTTO_OK);
    /* Triangles: non-negative, at most 1, each band non-empty and contiguous, and bands
     * move up in frequency. */
    int prev_peak = -1;
    for (int m = 0; m < nm; m++) {
        int first = -1, last = -1, peak = 0;
        for (int k = 0; k < nf; k++) {
            const float v = fb[k * nm + m];
            CU_ASSERT_TRUE(v >= 0.0f && v <= 1.0f);
            if (v > 0.0f) {
                if (first < 0) first = k;
                last = k;
            }
            if (v > fb[peak * nm + m]) peak = k;
        }
        CU_ASSERT_TRUE(first >= 0);
        for (int k = first; k <= last; k++)
            CU_ASSERT_TRUE(fb[k * nm + m] > 0.0f);
        CU_ASSERT_TRUE(peak >= prev_peak);
        prev_peak = peak;
    }
    /* Slaney norm: filter m scaled by 2/(f[m+2] − f[m]), so its sum over bins times the bin
     * spacing is ~1 (equal area) for bands wide enough to sample. */
    CU_ASSERT_EQUAL_FATAL(sotto_mel_fbanks(nf, 0.0, 12000.0, nm, 24000, SOTTO_MEL_NORM_SLANEY,
                                           SOTTO_MEL_SCALE_SLANEY, fb, NULL),
                          SOTTO_OK);
    const double df = 12000.0 / (nf - 1);
    for (int m = 60; m < nm; m++) {
        double area = 0.0;
        for (int k = 0; k < nf; k++)
            area += fb[k * nm + m] * df;
        CU_ASSERT_DOUBLE_EQUAL(area, 1.0, 0.05);
    }
    free(fb);
}

static void test_fbanks_errors(void)
{
    float fb[16];
    sotto_status st;
    CU_ASSERT_EQUAL(sotto_mel_fbanks(2, 0, 100, 0, 200, 0, 0, fb, &st), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_mel_fbanks(1, 0, 100, 4, 200, 0, 0, fb, &st), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_mel_fbanks(4, 100, 100, 4, 200, 0, 0, fb, &st), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_mel_fbanks(4, -1, 100, 4, 200, 0, 0, fb, &st), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_mel_fbanks(4, 0, 100, 4, 0, 0, 0, fb, &st), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_mel_fbanks(4, 0, 100, 4, 200, 5, 0, fb, &st), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_mel_fbanks(4, 0, 100, 4, 200, 0, 0, NULL, &st), SOTTO_ERR_INVALID_ARG);

    sotto_mel *m = NULL;
    sotto_mel_params p = sotto_mel_default_params();
    p.power = 3;
    CU_ASSERT_EQUAL(sotto_mel_create(&p, NULL, &m, &st), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NULL(m);
    p = sotto_mel_default_params();
    p.log_floor = 0.0f;
    CU_ASSERT_EQUAL(sotto_mel_create(&p, NULL, &m, &st), SOTTO_ERR_INVALID_ARG);
    p = sotto_mel_default_params();
    p.n_fft = 1001;
    CU_ASSERT_EQUAL(sotto_mel_create(&p, NULL, &m, &st), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(st.message, "n_fft"));
    p = sotto_mel_default_params();
    p.n_mels = 0;
    CU_ASSERT_EQUAL(sotto_mel_create(&p, NULL, &m, &st), SOTTO_ERR_INVALID_ARG);
    p = sotto_mel_default_params();
    p.f_min_hz = 13000.0f; /* above the default f_max */
    CU_ASSERT_EQUAL(sotto_mel_create(&p, NULL, &m, &st), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_mel_create(NULL, NULL, &m, &st), SOTTO_ERR_INVALID_ARG);
}

static void test_sine_and_errors(void)
{
    sotto_mel_params p = sotto_mel_default_params();
    sotto_mel *m = NULL;
    CU_ASSERT_EQUAL_FATAL(sotto_mel_create(&p, NULL, &m, NULL), SOTTO_OK);
    const int n = 12000;
    float *x = malloc(sizeof(float) * n);
    for (int i = 0; i < n; i++)
        x[i] = 0.5f * sinf(2.0f * (float)M_PI * 1000.0f * (float)i / 24000.0f);
    const int64_t T = sotto_mel_num_frames(m, n);
    CU_ASSERT_EQUAL(T, 1 + n / 256);
    float *mel = malloc(sizeof(float) * T * 100);
    CU_ASSERT_EQUAL(sotto_mel_compute(m, x, n, mel, T), T);
    /* The loudest band of a middle frame contains 1 kHz. */
    const float *fr = mel + (T / 2) * 100;
    int best = 0;
    for (int j = 1; j < 100; j++)
        if (fr[j] > fr[best]) best = j;
    const float *fb = sotto_mel_filterbank(m);
    const int k1k = (int)lround(1000.0 * 1024 / 24000.0);
    CU_ASSERT_TRUE(fb[k1k * 100 + best] > 0.0f);

    CU_ASSERT_EQUAL(sotto_mel_compute(m, x, n, mel, T - 1), SOTTO_ERR_BUFFER_TOO_SMALL);
    CU_ASSERT_EQUAL(sotto_mel_compute(m, x, 512, mel, T), SOTTO_ERR_INVALID_ARG);
    x[7] = INFINITY;
    CU_ASSERT_EQUAL(sotto_mel_compute(m, x, n, mel, T), SOTTO_ERR_BAD_AUDIO);
    CU_ASSERT_EQUAL(sotto_mel_frames(m, x, 1000, 1, mel, 1), SOTTO_ERR_INVALID_ARG);
    free(x);
    free(mel);
    sotto_mel_destroy(m);
}

/* A filterbank given by the caller (as copied from a checkpoint) gives the same features. */
static void test_custom_fbank(void)
{
    tu_rng r;
    tu_rng_init(&r, tu_seed());
    sotto_mel_params p = sotto_mel_default_params();
    sotto_mel *a = NULL, *b = NULL;
    CU_ASSERT_EQUAL_FATAL(sotto_mel_create(&p, NULL, &a, NULL), SOTTO_OK);
    p.fbank = sotto_mel_filterbank(a);
    p.n_mels = 100;
    CU_ASSERT_EQUAL_FATAL(sotto_mel_create(&p, NULL, &b, NULL), SOTTO_OK);
    const int n = 6000;
    float *x = malloc(sizeof(float) * n);
    tu_fill_uniform(&r, x, n, -0.5f, 0.5f);
    const int64_t T = sotto_mel_num_frames(a, n);
    float *ya = malloc(sizeof(float) * T * 100), *yb = malloc(sizeof(float) * T * 100);
    CU_ASSERT_EQUAL(sotto_mel_compute(a, x, n, ya, T), T);
    CU_ASSERT_EQUAL(sotto_mel_compute(b, x, n, yb, T), T);
    CU_ASSERT_EQUAL(memcmp(ya, yb, sizeof(float) * T * 100), 0);
    free(x);
    free(ya);
    free(yb);
    sotto_mel_destroy(a);
    sotto_mel_destroy(b);
}

/* dB with top_db: offline = streamed frames + one top_db pass over the same block. */
static void test_db_top(void)
{
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 5);
    sotto_mel_params p = sotto_mel_default_params();
    p.sample_rate_hz = 16000;
    p.n_fft = 512;
    p.hop_length = 160;
    p.n_mels = 64;
    p.power = 2;
    p.log = SOTTO_MEL_LOG_DB;
    p.log_floor = 1e-10f;
    p.top_db = 40.0f;
    p.pad = SOTTO_STFT_PAD_SAME;
    sotto_mel *m = NULL;
    CU_ASSERT_EQUAL_FATAL(sotto_mel_create(&p, NULL, &m, NULL), SOTTO_OK);
    const int n = 8000;
    float *x = malloc(sizeof(float) * n);
    for (int i = 0; i < n; i++) /* loud first half, near silence after: the floor bites */
        x[i] = tu_rng_uniform(&r, -1.0f, 1.0f) * (i < n / 2 ? 1.0f : 1e-4f);
    const sotto_stft *s = sotto_mel_stft(m);
    const int pad = sotto_stft_pad_samples(s);
    CU_ASSERT_EQUAL(pad, (512 - 160) / 2);
    const int64_t T = sotto_mel_num_frames(m, n);
    float *off = malloc(sizeof(float) * T * 64), *str = malloc(sizeof(float) * T * 64);
    CU_ASSERT_EQUAL(sotto_mel_compute(m, x, n, off, T), T);
    float mx = -INFINITY, mn = INFINITY;
    for (int64_t i = 0; i < T * 64; i++) {
        mx = off[i] > mx ? off[i] : mx;
        mn = off[i] < mn ? off[i] : mn;
    }
    CU_ASSERT_DOUBLE_EQUAL(mn, mx - 40.0f, 1e-4);
    float *xp = malloc(sizeof(float) * (n + 2 * pad));
    CU_ASSERT_EQUAL(sotto_reflect_pad(x, n, pad, pad, xp), SOTTO_OK);
    for (int64_t t = 0; t < T; t++)
        CU_ASSERT_EQUAL(
            sotto_mel_frames(m, xp + t * 160, n + 2 * pad - t * 160, 1, str + t * 64, 1), 1);
    sotto_mel_apply_top_db(m, str, T);
    CU_ASSERT_EQUAL(memcmp(off, str, sizeof(float) * T * 64), 0);
    free(x);
    free(xp);
    free(off);
    free(str);
    sotto_mel_destroy(m);
}

static int g_allocs;
static void *count_alloc(size_t size, size_t align, void *user)
{
    (void)user;
    g_allocs++;
    return aligned_alloc(align, (size + align - 1) & ~(align - 1));
}
static void count_free(void *ptr, void *user)
{
    (void)user;
    free(ptr);
}

static void test_allocation(void)
{
    sotto_allocator hooks = {count_alloc, count_free, NULL};
    sotto_alloc a;
    sotto_alloc_init(&a, &hooks);
    sotto_mel_params p = sotto_mel_default_params();
    sotto_mel *m = NULL;
    g_allocs = 0;
    CU_ASSERT_EQUAL_FATAL(sotto_mel_create(&p, &a, &m, NULL), SOTTO_OK);
    const int created = g_allocs;
    float x[4096] = {0};
    x[100] = 1.0f;
    float y[17 * 100];
    CU_ASSERT_EQUAL(sotto_mel_compute(m, x, 4096, y, 17), 17);
    CU_ASSERT_EQUAL(g_allocs, created);
    sotto_mel_destroy(m);
}

int main(void)
{
    static const tu_test tests[] = {
        {"filterbank shape", test_fbanks_shape},
        {"filterbank and create errors", test_fbanks_errors},
        {"sine lands in its band; processing errors", test_sine_and_errors},
        {"caller filterbank", test_custom_fbank},
        {"dB top_db, streamed frames", test_db_top},
        {"allocation only at creation", test_allocation},
        {NULL, NULL},
    };
    return tu_run_suite("mel", tests);
}
