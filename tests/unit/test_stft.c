/*
 * STFT / ISTFT: the forward transform against a direct double-precision evaluation of the
 * torch.stft definition (reflect padding, centred zero-padded window), perfect reconstruction
 * through CENTER and SAME inverses, the streaming overlap-add against the offline inverse (bit
 * for bit, for several frame counts), the envelope helper against brute force, reflect padding,
 * and the documented errors.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dsp/stft.h"
#include "testutil.h"

typedef struct cfg {
    int n_fft, hop, win;
    sotto_stft_pad pad;
} cfg;

static sotto_stft *make(cfg c, int inverse)
{
    sotto_stft_params p = sotto_stft_default_params();
    p.n_fft = c.n_fft;
    p.hop_length = c.hop;
    p.win_length = c.win;
    p.pad = c.pad;
    p.for_inverse = inverse;
    sotto_stft *s = NULL;
    sotto_status st;
    int rc = sotto_stft_create(&p, NULL, &s, &st);
    if (rc != SOTTO_OK) fprintf(stderr, "stft create: %s\n", st.message);
    return s;
}

/* Direct torch.stft: frame t of the padded signal, window centred, DFT in double. */
static void naive_stft(const float *x, int64_t n, cfg c, int64_t T, float *out)
{
    const int win = c.win ? c.win : c.n_fft;
    const int pad = c.pad == SOTTO_STFT_PAD_CENTER ? c.n_fft / 2
                    : c.pad == SOTTO_STFT_PAD_SAME ? (win - c.hop) / 2
                                                   : 0;
    const int left = (c.n_fft - win) / 2;
    const int nb = c.n_fft / 2 + 1;
    double *fr = malloc(sizeof(double) * c.n_fft);
    for (int64_t t = 0; t < T; t++) {
        for (int j = 0; j < c.n_fft; j++) {
            int64_t i = t * c.hop + j - pad;
            if (i < 0) i = -i;
            if (i >= n) i = 2 * (n - 1) - i;
            const int wi = j - left;
            const double w =
                wi >= 0 && wi < win ? 0.5 - 0.5 * cos(2.0 * M_PI * wi / (double)win) : 0.0;
            fr[j] = (double)x[i] * w;
        }
        for (int k = 0; k < nb; k++) {
            double sr = 0, si = 0;
            for (int j = 0; j < c.n_fft; j++) {
                const double a = -2.0 * M_PI * (double)(((long long)k * j) % c.n_fft) / c.n_fft;
                sr += fr[j] * cos(a);
                si += fr[j] * sin(a);
            }
            out[(t * nb + k) * 2] = (float)sr;
            out[(t * nb + k) * 2 + 1] = (float)si;
        }
    }
    free(fr);
}

static const cfg k_cfgs[] = {
    {512, 128, 0, SOTTO_STFT_PAD_CENTER},  {1024, 256, 0, SOTTO_STFT_PAD_CENTER},
    {1280, 320, 0, SOTTO_STFT_PAD_CENTER}, {512, 160, 400, SOTTO_STFT_PAD_CENTER},
    {1024, 256, 0, SOTTO_STFT_PAD_SAME},   {1280, 320, 0, SOTTO_STFT_PAD_SAME},
    {400, 160, 400, SOTTO_STFT_PAD_NONE},  {512, 100, 301, SOTTO_STFT_PAD_CENTER},
};

static void test_forward_vs_naive(void)
{
    tu_rng r;
    tu_rng_init(&r, tu_seed());
    for (size_t ci = 0; ci < SOTTO_ARRAY_LEN(k_cfgs); ci++) {
        const cfg c = k_cfgs[ci];
        sotto_stft *s = make(c, 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(s);
        const int64_t n = 3000 + (int64_t)ci * 37;
        float *x = malloc(sizeof(float) * n);
        tu_fill_uniform(&r, x, (size_t)n, -1.0f, 1.0f);
        const int64_t T = sotto_stft_num_frames(s, n);
        const int nb = sotto_stft_n_bins(s);
        if (c.pad == SOTTO_STFT_PAD_CENTER) CU_ASSERT_EQUAL(T, 1 + n / c.hop);
        float *got = malloc(sizeof(float) * 2 * nb * T);
        float *want = malloc(sizeof(float) * 2 * nb * T);
        CU_ASSERT_EQUAL(sotto_stft_forward(s, x, n, got, T), T);
        naive_stft(x, n, c, T, want);
        char what[96];
        snprintf(what, sizeof what, "stft n_fft=%d hop=%d win=%d pad=%d", c.n_fft, c.hop, c.win,
                 (int)c.pad);
        TU_ASSERT_CLOSE(what, got, want, 2 * nb * T, 5e-5, 1e-12);

        /* The padded-signal frame API gives the same bits. */
        const int pad = sotto_stft_pad_samples(s);
        float *xp = malloc(sizeof(float) * (n + 2 * pad));
        CU_ASSERT_EQUAL(sotto_reflect_pad(x, n, pad, pad, xp), SOTTO_OK);
        float *got2 = malloc(sizeof(float) * 2 * nb * T);
        CU_ASSERT_EQUAL(sotto_stft_frames(s, xp, n + 2 * pad, T, got2, T), T);
        CU_ASSERT_EQUAL(memcmp(got, got2, sizeof(float) * 2 * nb * T), 0);
        free(xp);
        free(got2);
        free(x);
        free(got);
        free(want);
        sotto_stft_destroy(s);
    }
}

static void check_reconstruction(cfg c, int64_t n, uint64_t seed)
{
    tu_rng r;
    tu_rng_init(&r, seed);
    sotto_stft *s = make(c, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    float *x = malloc(sizeof(float) * n);
    tu_fill_uniform(&r, x, (size_t)n, -1.0f, 1.0f);
    const int64_t T = sotto_stft_num_frames(s, n);
    const int nb = sotto_stft_n_bins(s);
    float *spec = malloc(sizeof(float) * 2 * nb * T);
    CU_ASSERT_EQUAL(sotto_stft_forward(s, x, n, spec, T), T);
    const int64_t len = sotto_istft_length(s, T);
    float *y = malloc(sizeof(float) * (len > 0 ? len : 1));
    CU_ASSERT_EQUAL(sotto_istft(s, spec, T, y, len), len);
    /* CENTER returns hop·(T−1) ≤ n samples; SAME returns T·hop; both start at x[0]. */
    const int64_t m = len < n ? len : n;
    CU_ASSERT_TRUE(m >= n - c.hop);
    char what[96];
    snprintf(what, sizeof what, "reconstruction n_fft=%d hop=%d win=%d pad=%d", c.n_fft, c.hop,
             c.win, (int)c.pad);
    TU_ASSERT_CLOSE(what, y, x, m, 5e-6, 1e-11);
    free(x);
    free(spec);
    free(y);
    sotto_stft_destroy(s);
}

static void test_perfect_reconstruction(void)
{
    const uint64_t seed = tu_seed();
    check_reconstruction((cfg){1024, 256, 0, SOTTO_STFT_PAD_CENTER}, 24000, seed);
    check_reconstruction((cfg){1024, 256, 0, SOTTO_STFT_PAD_CENTER}, 24001, seed);
    check_reconstruction((cfg){512, 128, 0, SOTTO_STFT_PAD_CENTER}, 5000, seed);
    check_reconstruction((cfg){1280, 320, 0, SOTTO_STFT_PAD_CENTER}, 16000, seed);
    check_reconstruction((cfg){512, 160, 400, SOTTO_STFT_PAD_CENTER}, 16000, seed);
    check_reconstruction((cfg){1024, 256, 0, SOTTO_STFT_PAD_SAME}, 256 * 40, seed);
    check_reconstruction((cfg){1280, 320, 0, SOTTO_STFT_PAD_SAME}, 320 * 50, seed);
    check_reconstruction((cfg){1280, 320, 0, SOTTO_STFT_PAD_SAME}, 320 * 50 + 77, seed);
}

/* Offline inverse vs the streaming overlap-add over random spectra, bit for bit. */
static void check_stream(cfg c, int64_t T, uint64_t seed, int windowed)
{
    tu_rng r;
    tu_rng_init(&r, seed);
    sotto_stft *s = make(c, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    const int nb = sotto_stft_n_bins(s);
    float *spec = malloc(sizeof(float) * 2 * nb * T);
    tu_fill_uniform(&r, spec, 2 * (size_t)nb * T, -1.0f, 1.0f);
    const int64_t len = sotto_istft_length(s, T);
    float *ref = malloc(sizeof(float) * (len + 1));
    CU_ASSERT_EQUAL(sotto_istft(s, spec, T, ref, len), len);

    sotto_istft_stream *is = NULL;
    CU_ASSERT_EQUAL_FATAL(sotto_istft_stream_create(s, NULL, &is, NULL), SOTTO_OK);
    float *got = malloc(sizeof(float) * (len + c.n_fft));
    float *frame = malloc(sizeof(float) * c.n_fft);
    int64_t k = 0;
    for (int round = 0; round < 2; round++) { /* the second round checks flush's reset */
        k = 0;
        for (int64_t t = 0; t < T; t++) {
            int64_t m;
            if (windowed) {
                sotto_istft_frame(s, spec + 2 * nb * t, frame);
                m = sotto_istft_stream_push_windowed(is, frame, got + k, c.hop);
            } else {
                m = sotto_istft_stream_push(is, spec + 2 * nb * t, got + k, c.hop);
            }
            CU_ASSERT_TRUE(m >= 0 && m <= c.hop);
            k += m;
            CU_ASSERT_EQUAL(sotto_istft_stream_frames(is), t + 1);
        }
        const int64_t m = sotto_istft_stream_flush(is, got + k, c.n_fft);
        CU_ASSERT_TRUE(m >= 0);
        k += m;
        CU_ASSERT_EQUAL(k, len);
        CU_ASSERT_EQUAL(sotto_istft_stream_frames(is), 0);
        if (k == len && len > 0) CU_ASSERT_EQUAL(memcmp(got, ref, sizeof(float) * len), 0);
    }
    if (k != len)
        fprintf(stderr, "stream n_fft=%d hop=%d pad=%d T=%lld: %lld samples, offline %lld\n",
                c.n_fft, c.hop, (int)c.pad, (long long)T, (long long)k, (long long)len);
    sotto_istft_stream_destroy(is);
    free(spec);
    free(ref);
    free(got);
    free(frame);
    sotto_stft_destroy(s);
}

static void test_stream_equals_offline(void)
{
    const uint64_t seed = tu_seed();
    const cfg cfgs[] = {
        {1024, 256, 0, SOTTO_STFT_PAD_CENTER},  {1024, 256, 0, SOTTO_STFT_PAD_SAME},
        {1280, 320, 0, SOTTO_STFT_PAD_SAME},    {1280, 320, 0, SOTTO_STFT_PAD_CENTER},
        {512, 160, 400, SOTTO_STFT_PAD_CENTER}, {64, 24, 0, SOTTO_STFT_PAD_SAME},
        {64, 32, 0, SOTTO_STFT_PAD_CENTER},
    };
    const int64_t Ts[] = {1, 2, 3, 4, 5, 7, 50};
    for (size_t ci = 0; ci < SOTTO_ARRAY_LEN(cfgs); ci++)
        for (size_t ti = 0; ti < SOTTO_ARRAY_LEN(Ts); ti++)
            check_stream(cfgs[ci], Ts[ti], seed + ti, (int)(ti & 1));
}

static void test_envelope(void)
{
    const cfg cfgs[] = {{1024, 256, 0, SOTTO_STFT_PAD_CENTER},
                        {512, 160, 400, SOTTO_STFT_PAD_CENTER},
                        {1280, 320, 0, SOTTO_STFT_PAD_SAME}};
    for (size_t ci = 0; ci < SOTTO_ARRAY_LEN(cfgs); ci++) {
        const cfg c = cfgs[ci];
        sotto_stft *s = make(c, 1);
        CU_ASSERT_PTR_NOT_NULL_FATAL(s);
        const float *w = sotto_stft_window(s);
        const int64_t T = 9;
        const int64_t L = (T - 1) * c.hop + c.n_fft;
        double worst = 0.0;
        for (int64_t p = 0; p < L + 5; p++) {
            double e = 0.0;
            for (int64_t t = 0; t < T; t++) {
                const int64_t j = p - t * c.hop;
                if (j >= 0 && j < c.n_fft) e += (double)w[j] * w[j];
            }
            const double got = sotto_istft_envelope(s, p, T);
            if (fabs(got - e) > worst) worst = fabs(got - e);
        }
        fprintf(stderr, "envelope n_fft=%d hop=%d: max abs error %.3g\n", c.n_fft, c.hop, worst);
        CU_ASSERT_TRUE(worst < 1e-6);
        /* Open-ended (more frames to come) equals a long signal's envelope. */
        for (int64_t p = 0; p < 3 * c.n_fft; p++)
            CU_ASSERT_EQUAL(sotto_istft_envelope(s, p, -1), sotto_istft_envelope(s, p, 1000));
        sotto_stft_destroy(s);
    }
}

static void test_reflect_pad(void)
{
    const float x[5] = {1, 2, 3, 4, 5};
    float out[9];
    CU_ASSERT_EQUAL(sotto_reflect_pad(x, 5, 2, 2, out), SOTTO_OK);
    const float want[9] = {3, 2, 1, 2, 3, 4, 5, 4, 3};
    CU_ASSERT_EQUAL(memcmp(out, want, sizeof want), 0);
    CU_ASSERT_EQUAL(sotto_reflect_pad(x, 5, 5, 0, out), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_reflect_pad(x, 5, 0, 5, out), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_reflect_pad(NULL, 5, 0, 0, out), SOTTO_ERR_INVALID_ARG);
}

static void test_errors(void)
{
    sotto_stft_params p = sotto_stft_default_params();
    sotto_stft *s = NULL;
    sotto_status st;
    p.n_fft = 1023;
    CU_ASSERT_EQUAL(sotto_stft_create(&p, NULL, &s, &st), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NULL(s);
    p = sotto_stft_default_params();
    p.win_length = 2048;
    CU_ASSERT_EQUAL(sotto_stft_create(&p, NULL, &s, &st), SOTTO_ERR_INVALID_ARG);
    p = sotto_stft_default_params();
    p.hop_length = 0;
    CU_ASSERT_EQUAL(sotto_stft_create(&p, NULL, &s, &st), SOTTO_ERR_INVALID_ARG);
    p = sotto_stft_default_params();
    p.hop_length = 1024; /* Hann with hop == n_fft: the envelope has zeros */
    CU_ASSERT_EQUAL(sotto_stft_create(&p, NULL, &s, &st), SOTTO_ERR_INVALID_ARG);
    fprintf(stderr, "NOLA message: %s\n", st.message);
    p.for_inverse = 0; /* fine for analysis */
    CU_ASSERT_EQUAL(sotto_stft_create(&p, NULL, &s, &st), SOTTO_OK);
    sotto_stft_destroy(s);
    s = NULL;
    p = sotto_stft_default_params();
    p.pad = SOTTO_STFT_PAD_SAME;
    p.win_length = 800;
    CU_ASSERT_EQUAL(sotto_stft_create(&p, NULL, &s, &st), SOTTO_ERR_INVALID_ARG);
    p.pad = SOTTO_STFT_PAD_NONE;
    p.win_length = 0;
    CU_ASSERT_EQUAL(sotto_stft_create(&p, NULL, &s, &st), SOTTO_ERR_INVALID_ARG);
    p.pad = (sotto_stft_pad)7;
    CU_ASSERT_EQUAL(sotto_stft_create(&p, NULL, &s, &st), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_stft_create(NULL, NULL, &s, &st), SOTTO_ERR_INVALID_ARG);

    p = sotto_stft_default_params();
    CU_ASSERT_EQUAL_FATAL(sotto_stft_create(&p, NULL, &s, &st), SOTTO_OK);
    float x[2048] = {0}, spec[2 * 513 * 9], y[4096];
    CU_ASSERT_EQUAL(sotto_stft_num_frames(s, 2048), 9);
    CU_ASSERT_EQUAL(sotto_stft_forward(s, x, 2048, spec, 8), SOTTO_ERR_BUFFER_TOO_SMALL);
    CU_ASSERT_EQUAL(sotto_stft_forward(s, x, 512, spec, 9), SOTTO_ERR_INVALID_ARG);
    x[100] = NAN;
    CU_ASSERT_EQUAL(sotto_stft_forward(s, x, 2048, spec, 9), SOTTO_ERR_BAD_AUDIO);
    x[100] = 0.0f;
    CU_ASSERT_EQUAL(sotto_stft_forward(s, x, 2048, spec, 9), 9);
    CU_ASSERT_EQUAL(sotto_istft_length(s, 9), 2048);
    CU_ASSERT_EQUAL(sotto_istft(s, spec, 9, y, 2047), SOTTO_ERR_BUFFER_TOO_SMALL);
    CU_ASSERT_EQUAL(sotto_istft(s, spec, 0, y, 2048), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_stft_frames(s, x, 1000, 1, spec, 1), SOTTO_ERR_INVALID_ARG);

    sotto_istft_stream *is = NULL;
    CU_ASSERT_EQUAL_FATAL(sotto_istft_stream_create(s, NULL, &is, &st), SOTTO_OK);
    /* Frame 2 releases hop samples (positions 512..768); too little room consumes nothing. */
    CU_ASSERT_EQUAL(sotto_istft_stream_push(is, spec, y, 0), 0);
    CU_ASSERT_EQUAL(sotto_istft_stream_push(is, spec, y, 0), 0);
    CU_ASSERT_EQUAL(sotto_istft_stream_push(is, spec, y, 255), SOTTO_ERR_BUFFER_TOO_SMALL);
    CU_ASSERT_EQUAL(sotto_istft_stream_frames(is), 2);
    CU_ASSERT_EQUAL(sotto_istft_stream_push(is, spec, y, 256), 256);
    sotto_istft_stream_reset(is);
    CU_ASSERT_EQUAL(sotto_istft_stream_frames(is), 0);
    CU_ASSERT_EQUAL(sotto_istft_stream_flush(is, y, 0), 0);
    sotto_istft_stream_destroy(is);
    sotto_stft_destroy(s);

    p.for_inverse = 0;
    CU_ASSERT_EQUAL_FATAL(sotto_stft_create(&p, NULL, &s, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_istft(s, spec, 9, y, 4096), SOTTO_ERR_STATE);
    CU_ASSERT_EQUAL(sotto_istft_stream_create(s, NULL, &is, &st), SOTTO_ERR_STATE);
    sotto_stft_destroy(s);

    p = sotto_stft_default_params();
    p.hop_length = 600; /* CENTER inverse fine, streaming not (hop > n_fft/2) */
    CU_ASSERT_EQUAL_FATAL(sotto_stft_create(&p, NULL, &s, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_istft_stream_create(s, NULL, &is, &st), SOTTO_ERR_UNSUPPORTED);
    sotto_stft_destroy(s);
}

int main(void)
{
    static const tu_test tests[] = {
        {"forward matches the definition", test_forward_vs_naive},
        {"perfect reconstruction", test_perfect_reconstruction},
        {"streaming overlap-add equals offline", test_stream_equals_offline},
        {"envelope", test_envelope},
        {"reflect pad", test_reflect_pad},
        {"errors", test_errors},
        {NULL, NULL},
    };
    return tu_run_suite("stft", tests);
}
