/*
 * Kaldi fbank: the whole pipeline against an independent double-precision evaluation of the
 * Kaldi definition (DFT, windows and mel banks written out directly), frame counts for both
 * snip_edges settings, the single-frame call against the offline one, mean subtraction,
 * argument errors, and that processing allocates nothing. torchaudio parity is in
 * tests/golden/test_dsp_golden.c.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dsp/fbank.h"
#include "testutil.h"

/* Kaldi fbank of one frame (400 samples at 16 kHz, padded to 512), all in double. */
static void naive_frame(const float *frame, int window_type, double scale, double *out)
{
    enum { W = 400, N = 512, NB = 257, M = 80 };
    double x[N] = {0};
    double mean = 0.0;
    for (int i = 0; i < W; i++)
        mean += frame[i] * scale;
    mean /= W;
    double prev = frame[0] * scale - mean;
    for (int i = 0; i < W; i++) {
        const double v = frame[i] * scale - mean;
        x[i] = v - 0.97 * prev;
        prev = v;
    }
    for (int i = 0; i < W; i++) {
        const double c = cos(2.0 * M_PI * i / (W - 1));
        x[i] *=
            window_type == SOTTO_FBANK_WINDOW_HAMMING ? 0.54 - 0.46 * c : pow(0.5 - 0.5 * c, 0.85);
    }
    double pw[NB];
    for (int k = 0; k < NB; k++) {
        double re = 0, im = 0;
        for (int j = 0; j < N; j++) {
            const double a = -2.0 * M_PI * (double)((k * j) % N) / N;
            re += x[j] * cos(a);
            im += x[j] * sin(a);
        }
        pw[k] = re * re + im * im;
    }
    const double mlo = 1127.0 * log(1.0 + 20.0 / 700.0);
    const double mhi = 1127.0 * log(1.0 + 8000.0 / 700.0);
    const double d = (mhi - mlo) / (M + 1);
    for (int b = 0; b < M; b++) {
        double e = 0.0;
        for (int k = 0; k < NB - 1; k++) {
            const double mel = 1127.0 * log(1.0 + (16000.0 / N) * k / 700.0);
            const double l = mlo + b * d, c = l + d, r = c + d;
            double w = fmin((mel - l) / (c - l), (r - mel) / (r - c));
            e += (w > 0 ? w : 0) * pw[k];
        }
        out[b] = log(fmax(e, (double)FLT_EPSILON));
    }
}

static sotto_fbank *make(sotto_fbank_window w, int snip, float scale, int cmn)
{
    sotto_fbank_params p = sotto_fbank_default_params();
    p.window = w;
    p.snip_edges = snip;
    p.input_scale = scale;
    p.subtract_mean = cmn;
    sotto_fbank *f = NULL;
    sotto_status st;
    if (sotto_fbank_create(&p, NULL, &f, &st) != SOTTO_OK)
        fprintf(stderr, "fbank create: %s\n", st.message);
    return f;
}

static void test_vs_naive(void)
{
    tu_rng r;
    tu_rng_init(&r, tu_seed());
    const int n = 4000;
    float *x = malloc(sizeof(float) * n);
    for (int i = 0; i < n; i++)
        x[i] = 0.3f * tu_rng_normal(&r) + 0.2f * sinf(0.05f * (float)i) + 0.01f;
    const sotto_fbank_window ws[] = {SOTTO_FBANK_WINDOW_HAMMING, SOTTO_FBANK_WINDOW_POVEY};
    for (int wi = 0; wi < 2; wi++) {
        const float scale = wi == 0 ? 32768.0f : 1.0f;
        sotto_fbank *f = make(ws[wi], 1, scale, 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        CU_ASSERT_EQUAL(sotto_fbank_window_samples(f), 400);
        CU_ASSERT_EQUAL(sotto_fbank_shift_samples(f), 160);
        CU_ASSERT_EQUAL(sotto_fbank_fft_size(f), 512);
        const int64_t T = sotto_fbank_num_frames(f, n);
        CU_ASSERT_EQUAL(T, 1 + (n - 400) / 160);
        float *got = malloc(sizeof(float) * T * 80), *want = malloc(sizeof(float) * T * 80);
        CU_ASSERT_EQUAL(sotto_fbank_compute(f, x, n, got, T), T);
        double ref[80];
        for (int64_t t = 0; t < T; t++) {
            naive_frame(x + t * 160, ws[wi], scale, ref);
            for (int j = 0; j < 80; j++)
                want[t * 80 + j] = (float)ref[j];
        }
        TU_ASSERT_CLOSE(wi == 0 ? "fbank hamming vs double" : "fbank povey vs double", got, want,
                        T * 80, 6e-4, 1e-11);
        /* The single-frame call is the same computation. */
        float one[80];
        for (int64_t t = 0; t < T; t += 5) {
            sotto_fbank_frame(f, x + t * 160, one);
            CU_ASSERT_EQUAL(memcmp(one, got + t * 80, sizeof one), 0);
        }
        free(got);
        free(want);
        sotto_fbank_destroy(f);
    }
    free(x);
}

static void test_framing(void)
{
    sotto_fbank *a = make(SOTTO_FBANK_WINDOW_POVEY, 1, 1.0f, 0);
    sotto_fbank *b = make(SOTTO_FBANK_WINDOW_POVEY, 0, 1.0f, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_EQUAL(sotto_fbank_num_frames(a, 16000), 98);
    CU_ASSERT_EQUAL(sotto_fbank_num_frames(b, 16000), 100);
    CU_ASSERT_EQUAL(sotto_fbank_num_frames(a, 399), 0);
    CU_ASSERT_EQUAL(sotto_fbank_num_frames(a, 400), 1);
    CU_ASSERT_EQUAL(sotto_fbank_num_frames(b, 79), 0);
    CU_ASSERT_EQUAL(sotto_fbank_num_frames(b, 80), 1);
    CU_ASSERT_EQUAL(sotto_fbank_num_frames(a, 0), 0);
    /* Short inputs with snip_edges = 0 read the mirror several times over without faulting. */
    float x[100], y[80];
    for (int i = 0; i < 100; i++)
        x[i] = (float)i;
    CU_ASSERT_EQUAL(sotto_fbank_compute(b, x, 100, y, 1), 1);
    /* Frame t+1 of snip_edges = 0 starts at t·160 + 40: away from the ends it is frame t of
     * snip_edges = 1 on the signal advanced by 40 samples. */
    float sig[3000], ya[17 * 80], yb[19 * 80];
    for (int i = 0; i < 3000; i++)
        sig[i] = sinf(0.013f * (float)i) + 0.1f * cosf(0.31f * (float)i);
    CU_ASSERT_EQUAL(sotto_fbank_compute(a, sig + 40, 2960, ya, 17), 17);
    CU_ASSERT_EQUAL(sotto_fbank_compute(b, sig, 3000, yb, 19), 19);
    for (int t = 0; t < 16; t++)
        CU_ASSERT_EQUAL(memcmp(ya + t * 80, yb + (t + 1) * 80, sizeof(float) * 80), 0);
    sotto_fbank_destroy(a);
    sotto_fbank_destroy(b);
}

static void test_cmn(void)
{
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 3);
    const int n = 8000;
    float *x = malloc(sizeof(float) * n);
    tu_fill_uniform(&r, x, n, -0.5f, 0.5f);
    sotto_fbank *f = make(SOTTO_FBANK_WINDOW_POVEY, 1, 1.0f, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    const int64_t T = sotto_fbank_num_frames(f, n);
    float *y = malloc(sizeof(float) * T * 80);
    CU_ASSERT_EQUAL(sotto_fbank_compute(f, x, n, y, T), T);
    for (int j = 0; j < 80; j++) {
        double m = 0.0;
        for (int64_t t = 0; t < T; t++)
            m += y[t * 80 + j];
        CU_ASSERT_DOUBLE_EQUAL(m / T, 0.0, 1e-5);
    }
    free(x);
    free(y);
    sotto_fbank_destroy(f);
}

static void test_errors(void)
{
    sotto_fbank *f = NULL;
    sotto_status st;
    sotto_fbank_params p = sotto_fbank_default_params();
    p.dither = 1.0f;
    CU_ASSERT_EQUAL(sotto_fbank_create(&p, NULL, &f, &st), SOTTO_ERR_UNSUPPORTED);
    CU_ASSERT_PTR_NULL(f);
    p = sotto_fbank_default_params();
    p.n_mels = 3;
    CU_ASSERT_EQUAL(sotto_fbank_create(&p, NULL, &f, &st), SOTTO_ERR_INVALID_ARG);
    p = sotto_fbank_default_params();
    p.preemphasis = 1.5f;
    CU_ASSERT_EQUAL(sotto_fbank_create(&p, NULL, &f, &st), SOTTO_ERR_INVALID_ARG);
    p = sotto_fbank_default_params();
    p.low_freq_hz = 9000.0f;
    CU_ASSERT_EQUAL(sotto_fbank_create(&p, NULL, &f, &st), SOTTO_ERR_INVALID_ARG);
    p = sotto_fbank_default_params();
    p.high_freq_hz = -7990.0f; /* resolves to 10 Hz < low 20 Hz */
    CU_ASSERT_EQUAL(sotto_fbank_create(&p, NULL, &f, &st), SOTTO_ERR_INVALID_ARG);
    p = sotto_fbank_default_params();
    p.frame_shift_ms = 0.0f;
    CU_ASSERT_EQUAL(sotto_fbank_create(&p, NULL, &f, &st), SOTTO_ERR_INVALID_ARG);
    p = sotto_fbank_default_params();
    p.window = (sotto_fbank_window)9;
    CU_ASSERT_EQUAL(sotto_fbank_create(&p, NULL, &f, &st), SOTTO_ERR_INVALID_ARG);
    p = sotto_fbank_default_params();
    p.round_to_power_of_two = 0;
    p.frame_length_ms = 25.0625f; /* 401 samples: odd FFT size */
    CU_ASSERT_EQUAL(sotto_fbank_create(&p, NULL, &f, &st), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_fbank_create(NULL, NULL, &f, &st), SOTTO_ERR_INVALID_ARG);

    float banks[80 * 257];
    CU_ASSERT_EQUAL(sotto_kaldi_mel_banks(80, 511, 16000.0f, 20.0f, 0.0f, banks, &st),
                    SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_kaldi_mel_banks(80, 512, 16000.0f, 20.0f, 9000.0f, banks, &st),
                    SOTTO_ERR_INVALID_ARG);

    f = make(SOTTO_FBANK_WINDOW_HAMMING, 1, 1.0f, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    float x[1000] = {0}, y[4 * 80]; /* 1 + (1000 − 400)/160 = 4 frames */
    CU_ASSERT_EQUAL(sotto_fbank_compute(f, x, 1000, y, 3), SOTTO_ERR_BUFFER_TOO_SMALL);
    CU_ASSERT_EQUAL(sotto_fbank_compute(f, x, -1, y, 4), SOTTO_ERR_INVALID_ARG);
    x[3] = NAN;
    CU_ASSERT_EQUAL(sotto_fbank_compute(f, x, 1000, y, 4), SOTTO_ERR_BAD_AUDIO);
    x[3] = 0.0f;
    /* Digital silence: every band sits at the floor ln(FLT_EPSILON). */
    CU_ASSERT_EQUAL(sotto_fbank_compute(f, x, 1000, y, 4), 4);
    CU_ASSERT_DOUBLE_EQUAL(y[17], logf(FLT_EPSILON), 1e-6);
    sotto_fbank_destroy(f);
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
    sotto_fbank_params p = sotto_fbank_default_params();
    p.subtract_mean = 1;
    sotto_fbank *f = NULL;
    g_allocs = 0;
    CU_ASSERT_EQUAL_FATAL(sotto_fbank_create(&p, &a, &f, NULL), SOTTO_OK);
    const int created = g_allocs;
    float x[2000], y[11 * 80];
    for (int i = 0; i < 2000; i++)
        x[i] = sinf(0.01f * (float)i);
    CU_ASSERT_EQUAL(sotto_fbank_compute(f, x, 2000, y, 11), 11);
    CU_ASSERT_EQUAL(g_allocs, created);
    sotto_fbank_destroy(f);
}

int main(void)
{
    static const tu_test tests[] = {
        {"matches a double-precision Kaldi fbank", test_vs_naive},
        {"framing", test_framing},
        {"mean subtraction", test_cmn},
        {"errors", test_errors},
        {"allocation only at creation", test_allocation},
        {NULL, NULL},
    };
    return tu_run_suite("fbank", tests);
}
