/*
 * Real FFT plans against a naive DFT evaluated in double precision, at every size the models
 * use (400, 512, 1024, 1280, 2048) plus a few odd-factor and tiny ones; the inverse against the
 * naive inverse (with junk in the imaginary parts of DC and Nyquist, which must be ignored);
 * round trips; argument errors; and that transforms allocate nothing.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "dsp/fft.h"
#include "testutil.h"

static const int k_sizes[] = {2, 6, 30, 400, 512, 1024, 1280, 2048, 1536, 4096};

/* Twiddle angles reduced modulo n in integers, so the reference itself is accurate to ~1e-15
 * even for n = 4096. */
static void naive_rdft(const float *x, int n, double *re, double *im)
{
    for (int k = 0; k <= n / 2; k++) {
        double sr = 0.0, si = 0.0;
        for (int j = 0; j < n; j++) {
            const long long kj = ((long long)k * j) % n;
            const double a = -2.0 * M_PI * (double)kj / (double)n;
            sr += (double)x[j] * cos(a);
            si += (double)x[j] * sin(a);
        }
        re[k] = sr;
        im[k] = si;
    }
}

/* x[j] = (1/n)(X0 + (−1)^j X_{n/2} + 2 Σ_{0<k<n/2} Re(X_k e^{+2πikj/n})), imaginary parts of
 * DC and Nyquist ignored. */
static void naive_irdft(const float *X, int n, double *x)
{
    for (int j = 0; j < n; j++) {
        double s = X[0] + ((j & 1) ? -X[n] : X[n]); /* X[n] is re of bin n/2 */
        for (int k = 1; k < n / 2; k++) {
            const long long kj = ((long long)k * j) % n;
            const double a = 2.0 * M_PI * (double)kj / (double)n;
            s += 2.0 * ((double)X[2 * k] * cos(a) - (double)X[2 * k + 1] * sin(a));
        }
        x[j] = s / (double)n;
    }
}

static void test_forward_vs_dft(void)
{
    tu_rng r;
    tu_rng_init(&r, tu_seed());
    for (size_t si = 0; si < SOTTO_ARRAY_LEN(k_sizes); si++) {
        const int n = k_sizes[si];
        const int nb = n / 2 + 1;
        sotto_fft *f = NULL;
        sotto_status st;
        CU_ASSERT_EQUAL_FATAL(sotto_fft_create(n, NULL, &f, &st), SOTTO_OK);
        CU_ASSERT_EQUAL(sotto_fft_size(f), n);
        float *x = malloc(sizeof(float) * n);
        float *X = malloc(sizeof(float) * 2 * nb);
        float *want = malloc(sizeof(float) * 2 * nb);
        double *re = malloc(sizeof(double) * nb), *im = malloc(sizeof(double) * nb);
        tu_fill_uniform(&r, x, (size_t)n, -1.0f, 1.0f);
        sotto_fft_forward(f, x, X);
        naive_rdft(x, n, re, im);
        for (int k = 0; k < nb; k++) {
            want[2 * k] = (float)re[k];
            want[2 * k + 1] = (float)im[k];
        }
        char what[64];
        snprintf(what, sizeof what, "rfft n=%d", n);
        /* float FFT: error grows ~ eps·sqrt(n)·log n relative to the spectrum's rms. */
        TU_ASSERT_CLOSE(what, X, want, 2 * nb, 2e-4 * sqrt((double)n), 1e-11);
        free(x);
        free(X);
        free(want);
        free(re);
        free(im);
        sotto_fft_destroy(f);
    }
}

static void test_inverse_vs_dft(void)
{
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 1);
    for (size_t si = 0; si < SOTTO_ARRAY_LEN(k_sizes); si++) {
        const int n = k_sizes[si];
        const int nb = n / 2 + 1;
        sotto_fft *f = NULL;
        CU_ASSERT_EQUAL_FATAL(sotto_fft_create(n, NULL, &f, NULL), SOTTO_OK);
        float *X = malloc(sizeof(float) * 2 * nb);
        float *x = malloc(sizeof(float) * n);
        float *want = malloc(sizeof(float) * n);
        double *ref = malloc(sizeof(double) * n);
        tu_fill_uniform(&r, X, 2 * (size_t)nb, -1.0f, 1.0f);
        naive_irdft(X, n, ref); /* ignores X[1] and X[2·(n/2)+1] */
        for (int j = 0; j < n; j++)
            want[j] = (float)ref[j];
        sotto_fft_inverse(f, X, x);
        char what[64];
        snprintf(what, sizeof what, "irfft n=%d", n);
        TU_ASSERT_CLOSE(what, x, want, n, 1e-5, 1e-11);
        /* Unscaled is n times the scaled one. */
        sotto_fft_inverse_unscaled(f, X, x);
        for (int j = 0; j < n; j++)
            x[j] /= (float)n;
        snprintf(what, sizeof what, "irfft unscaled/n n=%d", n);
        TU_ASSERT_CLOSE(what, x, want, n, 1e-5, 1e-11);
        free(X);
        free(x);
        free(want);
        free(ref);
        sotto_fft_destroy(f);
    }
}

static void test_round_trip(void)
{
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 2);
    for (size_t si = 0; si < SOTTO_ARRAY_LEN(k_sizes); si++) {
        const int n = k_sizes[si];
        sotto_fft *f = NULL;
        CU_ASSERT_EQUAL_FATAL(sotto_fft_create(n, NULL, &f, NULL), SOTTO_OK);
        float *x = malloc(sizeof(float) * n), *y = malloc(sizeof(float) * n);
        float *X = malloc(sizeof(float) * (n + 2));
        tu_fill_uniform(&r, x, (size_t)n, -1.0f, 1.0f);
        sotto_fft_forward(f, x, X);
        sotto_fft_inverse(f, X, y);
        char what[64];
        snprintf(what, sizeof what, "round trip n=%d", n);
        TU_ASSERT_CLOSE(what, y, x, n, 2e-6, 1e-12);
        free(x);
        free(y);
        free(X);
        sotto_fft_destroy(f);
    }
}

static void test_bad_args(void)
{
    sotto_fft *f = (sotto_fft *)&f;
    sotto_status st;
    CU_ASSERT_EQUAL(sotto_fft_create(401, NULL, &f, &st), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NULL(f);
    CU_ASSERT_EQUAL(st.code, SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_fft_create(0, NULL, &f, &st), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_fft_create(-4, NULL, &f, NULL), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_fft_create(1 << 26, NULL, &f, NULL), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_fft_create(512, NULL, NULL, NULL), SOTTO_ERR_INVALID_ARG);
    sotto_fft_destroy(NULL);
}

/* Counting hooks: every byte comes from the application, and none after creation. */
static int g_allocs, g_frees;
static void *count_alloc(size_t size, size_t align, void *user)
{
    (void)user;
    g_allocs++;
    return aligned_alloc(align, (size + align - 1) & ~(align - 1));
}
static void count_free(void *p, void *user)
{
    (void)user;
    if (p) g_frees++;
    free(p);
}

static void test_allocation(void)
{
    sotto_allocator hooks = {count_alloc, count_free, NULL};
    sotto_alloc a;
    sotto_alloc_init(&a, &hooks);
    g_allocs = g_frees = 0;
    sotto_fft *f = NULL;
    CU_ASSERT_EQUAL_FATAL(sotto_fft_create(1280, &a, &f, NULL), SOTTO_OK);
    const int after_create = g_allocs;
    CU_ASSERT_TRUE(after_create > 0);
    float x[1280] = {0}, X[1282];
    x[3] = 1.0f;
    sotto_fft_forward(f, x, X);
    sotto_fft_inverse(f, X, x);
    CU_ASSERT_EQUAL(g_allocs, after_create);
    sotto_fft_destroy(f);
    CU_ASSERT_EQUAL(g_frees, g_allocs);
}

int main(void)
{
    static const tu_test tests[] = {
        {"forward matches the DFT", test_forward_vs_dft},
        {"inverse matches the inverse DFT", test_inverse_vs_dft},
        {"round trip", test_round_trip},
        {"bad arguments", test_bad_args},
        {"allocation only at creation", test_allocation},
        {NULL, NULL},
    };
    return tu_run_suite("fft", tests);
}
