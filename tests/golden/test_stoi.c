/*
 * metrics_stoi (apps/sotto/metrics.c) against pystoi 0.4.1 (classic STOI, extended=False) on
 * clean/degraded speech pairs written by tools/golden/stoi.py into data/stoi/pairs.gguf:
 * the signal itself, white noise at 0 and 10 dB, a 1 kHz lowpass, a 3-sample delay (16 kHz),
 * noise at 5 dB at 48 kHz and at 10 kHz (the latter skips resampling).
 *
 * Tolerance 0.005 absolute: the C code follows pystoi's steps exactly (same resampling
 * filter, silence mask, windows, bands, clipping) in double precision, but its FFT runs in
 * float32 (KissFFT) where pystoi uses float64 pocketfft, and the reference scores are stored
 * as float32. Those differences move the score by ~1e-6; 0.005 is far below the STOI change
 * any real degradation causes (0 dB vs 10 dB noise differ by ~0.15), so a wrong step (band
 * edges, resampler, silence removal, clipping) fails it.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "metrics.h"
#include "testutil.h"

#define TOL 0.005

static void test_pairs(void)
{
    sotto_gguf *g = tu_golden_open("stoi/pairs.gguf");
    if (!g) return;
    int64_t n_rate = 0, n_ref = 0;
    float *rate = tu_golden_f32(g, "rate", &n_rate, NULL);
    float *want = tu_golden_f32(g, "stoi", &n_ref, NULL);
    CU_ASSERT_FATAL(rate && want && n_rate == n_ref && n_rate >= 6);
    double worst = 0;
    for (int64_t i = 0; i < n_rate; i++) {
        char ref_name[32], deg_name[32];
        const int hz = (int)rate[i];
        snprintf(ref_name, sizeof ref_name, "clean_%dk", hz / 1000);
        snprintf(deg_name, sizeof deg_name, "deg%lld", (long long)i);
        int64_t nx = 0, ny = 0;
        float *x = tu_golden_f32(g, ref_name, &nx, NULL);
        float *y = tu_golden_f32(g, deg_name, &ny, NULL);
        CU_ASSERT_FATAL(x && y && nx == ny);
        double got = -1;
        CU_ASSERT_EQUAL(metrics_stoi(x, y, nx, hz, &got), 0);
        const double err = fabs(got - (double)want[i]);
        printf("  pair %lld (%d Hz): stoi C %.6f, pystoi %.6f, |diff| %.2e\n", (long long)i,
               hz, got, (double)want[i], err);
        CU_ASSERT(err <= TOL);
        if (err > worst) worst = err;
        free(x);
        free(y);
    }
    printf("  worst |diff| %.2e (tolerance %.3f)\n", worst, TOL);
    /* The degradations must rank as expected, so the fixture itself is meaningful. */
    CU_ASSERT(want[0] > 0.999f && want[1] < want[2]);
    free(rate);
    free(want);
    sotto_gguf_close(g);
}

int main(void)
{
    static const tu_test tests[] = {
        {"STOI matches pystoi on speech pairs", test_pairs},
        {NULL, NULL},
    };
    return tu_run_suite("stoi", tests);
}
