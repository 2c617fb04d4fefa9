/*
 * The layers of nn/ops.h against naive double-precision loops written straight from the
 * PyTorch definitions (channel-major indices mapped onto our time-major buffers), over every
 * path a layer can take: small-M kernel vs BLAS, fused vs per-tap conv GEMMs, groups,
 * depthwise, stride, dilation, f16 weights, one thread vs a pool of 3 (which must give the
 * same numbers to within summation order). Also padding modes, GroupNorm, the channel affine,
 * embedding bounds, weight preparation from GGUF tensors, and argument errors. Tolerances:
 * max-abs 1e-5·sqrt(fan-in) for f32 layers, 2e-3 relative to the output scale for f16
 * weights (their rounding, 2^-11 relative per weight).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/threadpool.h"
#include "nn/ops.h"
#include "testutil.h"

static sotto_alloc g_a;
static sotto_cpu g_cpu1, g_cpu3, g_cpu0; /* SIMD 1 thread + BLAS, SIMD 3 threads own GEMM
                                            for every M, scalar */
static sotto_threadpool *g_tp;

static float *fvec(size_t n)
{
    float *p = malloc(sizeof(float) * (n ? n : 1));
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    return p;
}

static float *rvec(tu_rng *r, size_t n, float lo, float hi)
{
    float *p = fvec(n);
    tu_fill_uniform(r, p, n, lo, hi);
    return p;
}

static void to_float(const double *d, float *f, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        f[i] = (float)d[i];
}

/* ---- linear ------------------------------------------------------------------------------- */

static void linear_case(tu_rng *r, int M, int K, int N, int f16)
{
    float *W = rvec(r, (size_t)N * K, -1, 1), *b = rvec(r, N, -1, 1),
          *x = rvec(r, (size_t)M * K, -1, 1);
    double *ref = calloc((size_t)M * N + 1, sizeof(double));
    float *want = fvec((size_t)M * N), *got = fvec((size_t)M * N);
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double s = b[n];
            for (int k = 0; k < K; k++) {
                const float wv = f16 ? sotto_f16_to_f32(sotto_f32_to_f16(W[(int64_t)n * K + k]))
                                     : W[(int64_t)n * K + k];
                s += (double)x[(int64_t)m * K + k] * wv;
            }
            ref[(int64_t)m * N + n] = s;
        }
    to_float(ref, want, (int64_t)M * N);
    sotto_linear_w lw;
    CU_ASSERT_EQUAL_FATAL(sotto_linear_w_init_f32(&lw, W, N, K, f16, &g_a, NULL), SOTTO_OK);
    CU_ASSERT_EQUAL(lw.is_f16, f16);
    const sotto_cpu *ctxs[3] = {&g_cpu1, &g_cpu3, &g_cpu0};
    for (int c = 0; c < 3; c++) {
        memset(got, 0, sizeof(float) * (size_t)M * N);
        CU_ASSERT_EQUAL(sotto_linear(ctxs[c], &lw, b, x, M, got), SOTTO_OK);
        char what[80];
        snprintf(what, sizeof what, "linear M=%d K=%d N=%d f16=%d ctx=%d", M, K, N, f16, c);
        TU_ASSERT_CLOSE(what, got, want, (int64_t)M * N, 1e-5 * sqrt(K), -1);
    }
    /* accumulate into a strided output */
    const int64_t ldy = N + 3;
    float *acc = fvec((size_t)M * ldy);
    for (int64_t i = 0; i < (int64_t)M * ldy; i++)
        acc[i] = 1.0f;
    CU_ASSERT_EQUAL(sotto_linear_ex(&g_cpu3, &lw, b, x, K, M, acc, ldy, 1), SOTTO_OK);
    int bad = 0;
    for (int m = 0; m < M; m++)
        for (int n = 0; n < (int)ldy; n++) {
            const double w = n < N ? ref[(int64_t)m * N + n] + 1.0 : 1.0;
            if (fabs(acc[(int64_t)m * ldy + n] - w) > 1e-5 * sqrt(K) + 1e-6) bad++;
        }
    CU_ASSERT_EQUAL(bad, 0);
    sotto_linear_w_free(&lw, &g_a);
    sotto_linear_w_free(&lw, &g_a); /* double free is harmless */
    free(W);
    free(b);
    free(x);
    free(ref);
    free(want);
    free(got);
    free(acc);
}

static void test_linear(void)
{
    tu_rng r;
    tu_rng_init(&r, tu_seed());
    const int shapes[][3] = {{1, 1, 1},      {1, 64, 513},   {2, 37, 100},
                             {5, 100, 33},   {16, 48, 96},   {17, 33, 65},
                             {100, 129, 70}, {300, 256, 40}, {7, 512, 1536}};
    for (size_t i = 0; i < SOTTO_ARRAY_LEN(shapes); i++)
        for (int f16 = 0; f16 < 2; f16++)
            linear_case(&r, shapes[i][0], shapes[i][1], shapes[i][2], f16);
}

/* ---- conv1d ------------------------------------------------------------------------------- */

/* torch conv1d on [C][T] computed on our [T][C] buffers. */
static void conv1d_naive(const float *x, int64_t T_in, int Cin, const float *W, const float *b,
                         int Cout, int K, int s, int d, int G, double *y, int64_t T_out)
{
    const int cig = Cin / G, cog = Cout / G;
    for (int64_t t = 0; t < T_out; t++)
        for (int co = 0; co < Cout; co++) {
            const int g = co / cog;
            double acc = b ? b[co] : 0.0;
            for (int ci = 0; ci < cig; ci++)
                for (int k = 0; k < K; k++)
                    acc += (double)W[((int64_t)co * cig + ci) * K + k] *
                           x[(t * s + (int64_t)k * d) * Cin + g * cig + ci];
            y[t * Cout + co] = acc;
        }
    (void)T_in;
}

static void conv1d_case(tu_rng *r, int Cin, int Cout, int K, int s, int d, int G, int64_t T_in)
{
    float *W = rvec(r, (size_t)Cout * (Cin / G) * K, -1, 1), *b = rvec(r, Cout, -1, 1);
    float *x = rvec(r, (size_t)T_in * Cin, -1, 1);
    sotto_conv1d_w cw;
    CU_ASSERT_EQUAL_FATAL(sotto_conv1d_w_init_f32(&cw, W, Cout, Cin, K, s, d, G, &g_a, NULL), 0);
    const int64_t span = (int64_t)d * (K - 1) + 1;
    const int64_t T_out = T_in < span ? 0 : (T_in - span) / s + 1;
    CU_ASSERT_EQUAL(sotto_conv1d_out_len(&cw, T_in), T_out);
    double *ref = calloc((size_t)T_out * Cout + 1, sizeof(double));
    float *want = fvec((size_t)T_out * Cout), *got = fvec((size_t)T_out * Cout);
    conv1d_naive(x, T_in, Cin, W, b, Cout, K, s, d, G, ref, T_out);
    to_float(ref, want, T_out * Cout);
    const sotto_cpu *ctxs[3] = {&g_cpu1, &g_cpu3, &g_cpu0};
    for (int c = 0; c < 3; c++) {
        CU_ASSERT_EQUAL(sotto_conv1d(ctxs[c], &cw, b, x, T_in, got), T_out);
        char what[112];
        snprintf(what, sizeof what, "conv1d Cin=%d Cout=%d K=%d s=%d d=%d G=%d T=%lld ctx=%d", Cin,
                 Cout, K, s, d, G, (long long)T_in, c);
        TU_ASSERT_CLOSE(what, got, want, T_out * Cout, 1e-5 * sqrt((double)K * Cin / G), -1);
    }
    /* Binary16 arithmetic: ungrouped non-depthwise convs with an even c_in (or k = 1) switch;
     * the others stay f32. Every context gives the same bits (the scalar reference computes
     * the kernel's roundings); against f64, |Δ| ≤ 4e-3·sqrt(fan-in) and NMSE ≤ 1e-5. */
    CU_ASSERT_EQUAL_FATAL(sotto_conv1d_w_use_h16(&cw, &g_a, NULL), SOTTO_OK);
    const int h16 = !cw.depthwise && G == 1 && (K == 1 || Cin % 2 == 0);
    CU_ASSERT_EQUAL(cw.h16 != NULL, h16);
    CU_ASSERT_EQUAL(cw.w == NULL, h16);
    float *first = fvec((size_t)T_out * Cout);
    for (int c = 0; c < 3; c++) {
        CU_ASSERT_EQUAL(sotto_conv1d(ctxs[c], &cw, b, x, T_in, got), T_out);
        char what[120];
        snprintf(what, sizeof what, "conv1d h16=%d Cin=%d Cout=%d K=%d s=%d d=%d G=%d ctx=%d", h16,
                 Cin, Cout, K, s, d, G, c);
        TU_ASSERT_CLOSE(what, got, want, T_out * Cout,
                        (h16 ? 4e-3 : 1e-5) * sqrt((double)K * Cin / G), h16 ? 1e-5 : -1);
        if (c == 0)
            memcpy(first, got, sizeof(float) * (size_t)(T_out * Cout));
        else if (h16 && T_out > 0)
            CU_ASSERT_EQUAL(memcmp(first, got, sizeof(float) * (size_t)(T_out * Cout)), 0);
    }
    free(first);
    sotto_conv1d_w_free(&cw, &g_a);
    free(W);
    free(b);
    free(x);
    free(ref);
    free(want);
    free(got);
}

static void test_conv1d(void)
{
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 1);
    /* Cin, Cout, K, stride, dilation, groups, T_in */
    const int cases[][7] = {
        {1, 1, 1, 1, 1, 1, 5},        {3, 5, 3, 1, 1, 1, 9}, /* fused, small */
        {100, 64, 7, 1, 1, 1, 70},    /* fused kernel + BLAS per-tap (M > 16, overlapping) */
        {16, 24, 4, 4, 1, 1, 200},    /* stride == k: fused BLAS */
        {8, 16, 8, 4, 1, 1, 161},     /* DAC-like downsampling conv, stride < k */
        {12, 12, 7, 1, 3, 1, 40},     /* dilated: per tap */
        {12, 18, 3, 2, 2, 3, 31},     /* groups */
        {32, 64, 5, 1, 1, 4, 80},     /* groups, BLAS */
        {33, 33, 7, 1, 1, 33, 47},    /* depthwise */
        {40, 40, 3, 2, 3, 40, 50},    /* depthwise strided dilated */
        {8, 16, 3, 1, 1, 8, 20},      /* groups == c_in but multiplier 2: general path */
        {512, 512, 7, 1, 1, 512, 70}, /* Vocos dwconv, threaded */
        {5, 7, 9, 1, 1, 1, 8},        /* shorter than the kernel: no output */
        {7, 20, 3, 1, 1, 1, 30},      /* odd c_in: stays f32 under binary16 arithmetic */
        {96, 80, 7, 1, 9, 1, 90},     /* DAC residual unit: dilated, per tap */
    };
    for (size_t i = 0; i < SOTTO_ARRAY_LEN(cases); i++) {
        const int *c = cases[i];
        conv1d_case(&r, c[0], c[1], c[2], c[3], c[4], c[5], c[6]);
    }
}

static void test_conv1d_padded(void)
{
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 2);
    const int C = 6, Co = 5, K = 7, T = 20, p = 3;
    float *W = rvec(&r, (size_t)Co * C * K, -1, 1), *x = rvec(&r, (size_t)T * C, -1, 1);
    sotto_conv1d_w cw;
    CU_ASSERT_EQUAL_FATAL(sotto_conv1d_w_init_f32(&cw, W, Co, C, K, 1, 1, 1, &g_a, NULL), 0);
    const size_t ns = sotto_conv1d_padded_scratch(&cw, T, p, p);
    CU_ASSERT_EQUAL(ns, (size_t)(T + 2 * p) * C);
    float *scratch = fvec(ns), *xp = fvec(ns), *y1 = fvec((size_t)T * Co),
          *y2 = fvec((size_t)T * Co);
    for (int mode = 0; mode < 3; mode++) {
        CU_ASSERT_EQUAL(sotto_pad1d(x, T, C, p, p, (sotto_pad_mode)mode, xp), 0);
        CU_ASSERT_EQUAL(sotto_conv1d(&g_cpu1, &cw, NULL, xp, T + 2 * p, y1), T);
        CU_ASSERT_EQUAL(
            sotto_conv1d_padded(&g_cpu1, &cw, NULL, x, T, p, p, (sotto_pad_mode)mode, y2, scratch),
            T);
        CU_ASSERT_EQUAL(memcmp(y1, y2, sizeof(float) * (size_t)T * Co), 0);
    }
    /* torch F.pad semantics on [C][T] */
    const float seq[4] = {1, 2, 3, 4};
    float out[9];
    CU_ASSERT_EQUAL(sotto_pad1d(seq, 4, 1, 3, 2, SOTTO_PAD_REFLECT, out), 0);
    const float refl[9] = {4, 3, 2, 1, 2, 3, 4, 3, 2};
    CU_ASSERT_EQUAL(memcmp(out, refl, sizeof refl), 0);
    CU_ASSERT_EQUAL(sotto_pad1d(seq, 4, 1, 3, 2, SOTTO_PAD_REPLICATE, out), 0);
    const float repl[9] = {1, 1, 1, 1, 2, 3, 4, 4, 4};
    CU_ASSERT_EQUAL(memcmp(out, repl, sizeof repl), 0);
    CU_ASSERT_EQUAL(sotto_pad1d(seq, 4, 1, 3, 2, SOTTO_PAD_ZERO, out), 0);
    const float zero[9] = {0, 0, 0, 1, 2, 3, 4, 0, 0};
    CU_ASSERT_EQUAL(memcmp(out, zero, sizeof zero), 0);
    /* reflection wider than the signal is an error, as in torch */
    CU_ASSERT_EQUAL(sotto_pad1d(seq, 4, 1, 4, 0, SOTTO_PAD_REFLECT, out), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_pad1d(seq, 4, 1, 0, 0, (sotto_pad_mode)7, out), SOTTO_ERR_INVALID_ARG);
    sotto_conv1d_w_free(&cw, &g_a);
    free(W);
    free(x);
    free(scratch);
    free(xp);
    free(y1);
    free(y2);
}

/* ---- transposed conv1d ------------------------------------------------------------------ */

static void convtr_case(tu_rng *r, int Cin, int Cout, int K, int s, int d, int G, int64_t T_in)
{
    const int cig = Cin / G, cog = Cout / G;
    float *W = rvec(r, (size_t)Cin * cog * K, -1, 1), *b = rvec(r, Cout, -1, 1);
    float *x = rvec(r, (size_t)T_in * Cin, -1, 1);
    sotto_convtr1d_w cw;
    CU_ASSERT_EQUAL_FATAL(sotto_convtr1d_w_init_f32(&cw, W, Cin, Cout, K, s, d, G, &g_a, NULL), 0);
    const int64_t L = (T_in - 1) * s + (int64_t)d * (K - 1) + 1;
    CU_ASSERT_EQUAL(sotto_convtr1d_out_len(&cw, T_in), L);
    double *ref = calloc((size_t)L * Cout, sizeof(double));
    for (int64_t t = 0; t < L; t++)
        for (int co = 0; co < Cout; co++)
            ref[t * Cout + co] = b[co];
    for (int64_t t = 0; t < T_in; t++)
        for (int ci = 0; ci < Cin; ci++) {
            const int g = ci / cig;
            for (int n = 0; n < cog; n++)
                for (int k = 0; k < K; k++)
                    ref[(t * s + (int64_t)k * d) * Cout + g * cog + n] +=
                        (double)x[t * Cin + ci] * W[((int64_t)ci * cog + n) * K + k];
        }
    float *want = fvec((size_t)L * Cout), *got = fvec((size_t)L * Cout);
    to_float(ref, want, L * Cout);
    const sotto_cpu *ctxs[3] = {&g_cpu1, &g_cpu3, &g_cpu0};
    for (int c = 0; c < 3; c++) {
        CU_ASSERT_EQUAL(sotto_conv_transpose1d(ctxs[c], &cw, b, x, T_in, got), L);
        char what[112];
        snprintf(what, sizeof what, "convtr Cin=%d Cout=%d K=%d s=%d d=%d G=%d T=%lld ctx=%d", Cin,
                 Cout, K, s, d, G, (long long)T_in, c);
        TU_ASSERT_CLOSE(what, got, want, L * Cout, 1e-5 * sqrt((double)K * cig), -1);
    }
    /* Binary16 arithmetic, as for conv1d (ungrouped, c_in even unless k = 1). */
    CU_ASSERT_EQUAL_FATAL(sotto_convtr1d_w_use_h16(&cw, &g_a, NULL), SOTTO_OK);
    const int h16 = G == 1 && (K == 1 || Cin % 2 == 0);
    CU_ASSERT_EQUAL(cw.h16 != NULL, h16);
    float *first = fvec((size_t)L * Cout);
    for (int c = 0; c < 3; c++) {
        CU_ASSERT_EQUAL(sotto_conv_transpose1d(ctxs[c], &cw, b, x, T_in, got), L);
        char what[120];
        snprintf(what, sizeof what, "convtr h16=%d Cin=%d Cout=%d K=%d s=%d d=%d G=%d ctx=%d", h16,
                 Cin, Cout, K, s, d, G, c);
        TU_ASSERT_CLOSE(what, got, want, L * Cout, (h16 ? 4e-3 : 1e-5) * sqrt((double)K * cig),
                        h16 ? 1e-5 : -1);
        if (c == 0)
            memcpy(first, got, sizeof(float) * (size_t)(L * Cout));
        else if (h16)
            CU_ASSERT_EQUAL(memcmp(first, got, sizeof(float) * (size_t)(L * Cout)), 0);
    }
    free(first);
    sotto_convtr1d_w_free(&cw, &g_a);
    free(W);
    free(b);
    free(x);
    free(ref);
    free(want);
    free(got);
}

static void test_convtr(void)
{
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 3);
    const int cases[][7] = {
        {1, 1, 1, 1, 1, 1, 3},    {4, 6, 3, 2, 1, 1, 7},      {16, 8, 16, 8, 1, 1, 40}, /* DAC */
        {6, 9, 4, 3, 2, 3, 11},   {64, 32, 10, 5, 1, 1, 20},  {8, 8, 2, 5, 1, 1, 6},    /* s > k */
        {48, 96, 4, 2, 1, 2, 30}, {256, 128, 8, 4, 1, 1, 12},
    };
    for (size_t i = 0; i < SOTTO_ARRAY_LEN(cases); i++) {
        const int *c = cases[i];
        convtr_case(&r, c[0], c[1], c[2], c[3], c[4], c[5], c[6]);
    }
}

/* ---- conv2d ------------------------------------------------------------------------------- */

static void conv2d_case(tu_rng *r, int Cin, int Cout, int kh, int kw, sotto_conv2d_geom g,
                        int64_t H, int64_t W)
{
    const int cig = Cin / g.groups, cog = Cout / g.groups;
    float *Wt = rvec(r, (size_t)Cout * cig * kh * kw, -1, 1), *b = rvec(r, Cout, -1, 1);
    float *x = rvec(r, (size_t)Cin * H * W, -1, 1);
    sotto_conv2d_w cw;
    CU_ASSERT_EQUAL_FATAL(sotto_conv2d_w_init_f32(&cw, Wt, Cout, Cin, kh, kw, &g, &g_a, NULL), 0);
    int64_t Ho, Wo;
    sotto_conv2d_out_size(&cw, H, W, &Ho, &Wo);
    CU_ASSERT_EQUAL(Ho, (H + 2 * g.pad_h - g.dil_h * (kh - 1) - 1) / g.stride_h + 1);
    CU_ASSERT_EQUAL(Wo, (W + 2 * g.pad_w - g.dil_w * (kw - 1) - 1) / g.stride_w + 1);
    float *want = fvec((size_t)Cout * Ho * Wo), *got = fvec((size_t)Cout * Ho * Wo);
    for (int co = 0; co < Cout; co++)
        for (int64_t oh = 0; oh < Ho; oh++)
            for (int64_t ow = 0; ow < Wo; ow++) {
                double s = b[co];
                const int gi = co / cog;
                for (int ci = 0; ci < cig; ci++)
                    for (int a = 0; a < kh; a++)
                        for (int c = 0; c < kw; c++) {
                            const int64_t ih = oh * g.stride_h - g.pad_h + a * g.dil_h;
                            const int64_t iw = ow * g.stride_w - g.pad_w + c * g.dil_w;
                            if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                            s += (double)Wt[(((int64_t)co * cig + ci) * kh + a) * kw + c] *
                                 x[((int64_t)(gi * cig + ci) * H + ih) * W + iw];
                        }
                want[((int64_t)co * Ho + oh) * Wo + ow] = (float)s;
            }
    const sotto_cpu *ctxs[2] = {&g_cpu1, &g_cpu3};
    for (int c = 0; c < 2; c++) {
        CU_ASSERT_EQUAL(sotto_conv2d(ctxs[c], &cw, b, x, H, W, got), SOTTO_OK);
        char what[96];
        snprintf(what, sizeof what, "conv2d %dx%d k%dx%d s%d,%d p%d,%d d%d,%d g%d ctx=%d", Cin,
                 Cout, kh, kw, g.stride_h, g.stride_w, g.pad_h, g.pad_w, g.dil_h, g.dil_w, g.groups,
                 c);
        TU_ASSERT_CLOSE(what, got, want, Cout * Ho * Wo, 1e-5 * sqrt((double)cig * kh * kw), -1);
    }
    sotto_conv2d_w_free(&cw, &g_a);
    free(Wt);
    free(b);
    free(x);
    free(want);
    free(got);
}

static void test_conv2d(void)
{
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 4);
    sotto_conv2d_geom g = sotto_conv2d_geom_default();
    conv2d_case(&r, 1, 1, 1, 1, g, 3, 5);
    g.pad_h = g.pad_w = 1;
    conv2d_case(&r, 1, 8, 3, 3, g, 20, 17); /* CAM++ front-end style */
    g.stride_h = 2;
    g.stride_w = 1;
    conv2d_case(&r, 8, 8, 3, 3, g, 21, 13);
    g.stride_w = 2;
    g.dil_h = 2;
    g.pad_w = 2;
    conv2d_case(&r, 6, 4, 3, 5, g, 16, 19);
    g = sotto_conv2d_geom_default();
    g.groups = 2;
    g.pad_h = 2;
    conv2d_case(&r, 4, 6, 5, 2, g, 9, 11);
    g = sotto_conv2d_geom_default();
    g.pad_h = g.pad_w = 1;
    conv2d_case(&r, 32, 32, 3, 3, g, 40, 50); /* threaded */
}

/* ---- norms, affine, activations through the layer API ----------------------------------- */

static void test_norms(void)
{
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 5);
    const int T = 37, C = 24, G = 4, cg = C / G;
    float *x = rvec(&r, (size_t)T * C, -2, 3), *gm = rvec(&r, C, 0.5f, 1.5f),
          *bt = rvec(&r, C, -1, 1);
    float *want = fvec((size_t)T * C), *got = fvec((size_t)T * C);
    for (int g = 0; g < G; g++) {
        double s = 0, v = 0;
        for (int t = 0; t < T; t++)
            for (int c = g * cg; c < (g + 1) * cg; c++)
                s += x[t * C + c];
        const double mean = s / (T * cg);
        for (int t = 0; t < T; t++)
            for (int c = g * cg; c < (g + 1) * cg; c++)
                v += (x[t * C + c] - mean) * (x[t * C + c] - mean);
        const double inv = 1.0 / sqrt(v / (T * cg) + 1e-5);
        for (int t = 0; t < T; t++)
            for (int c = g * cg; c < (g + 1) * cg; c++)
                want[t * C + c] = (float)((x[t * C + c] - mean) * inv * gm[c] + bt[c]);
    }
    CU_ASSERT_EQUAL(sotto_groupnorm(&g_cpu1, x, T, C, G, gm, bt, 1e-5f, got), 0);
    TU_ASSERT_CLOSE("groupnorm", got, want, (int64_t)T * C, 2e-6, -1);
    CU_ASSERT_EQUAL(sotto_groupnorm(&g_cpu1, x, T, C, 5, gm, bt, 1e-5f, got),
                    SOTTO_ERR_INVALID_ARG);

    /* layer norm through the API, threaded, in place */
    for (int t = 0; t < T; t++) {
        double s = 0, v = 0;
        for (int c = 0; c < C; c++)
            s += x[t * C + c];
        const double mean = s / C;
        for (int c = 0; c < C; c++)
            v += (x[t * C + c] - mean) * (x[t * C + c] - mean);
        for (int c = 0; c < C; c++)
            want[t * C + c] = (float)((x[t * C + c] - mean) / sqrt(v / C + 1e-6) * gm[c] + bt[c]);
    }
    memcpy(got, x, sizeof(float) * (size_t)T * C);
    CU_ASSERT_EQUAL(sotto_layernorm(&g_cpu3, got, T, C, gm, bt, 1e-6f, got), 0);
    TU_ASSERT_CLOSE("layernorm", got, want, (int64_t)T * C, 2e-6, -1);

    for (int t = 0; t < T; t++)
        for (int c = 0; c < C; c++)
            want[t * C + c] = x[t * C + c] * gm[c] + bt[c];
    CU_ASSERT_EQUAL(sotto_channel_affine(&g_cpu1, x, T, C, gm, bt, got), 0);
    TU_ASSERT_CLOSE("channel_affine", got, want, (int64_t)T * C, 1e-6, -1);
    free(x);
    free(gm);
    free(bt);
    free(want);
    free(got);
}

static void test_activation_layers(void)
{
    /* Big enough to be split across the pool; the split must not change a single value. */
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 6);
    const int64_t n = 300001;
    float *x = rvec(&r, (size_t)n, -6, 6), *y1 = fvec(n), *y3 = fvec(n);
    int (*fns[])(const sotto_cpu *, const float *, int64_t,
                 float *) = {sotto_gelu_erf, sotto_gelu_tanh, sotto_silu, sotto_tanh};
    for (size_t i = 0; i < SOTTO_ARRAY_LEN(fns); i++) {
        CU_ASSERT_EQUAL(fns[i](&g_cpu1, x, n, y1), 0);
        memcpy(y3, x, sizeof(float) * (size_t)n);
        CU_ASSERT_EQUAL(fns[i](&g_cpu3, y3, n, y3), 0);
        CU_ASSERT_EQUAL(memcmp(y1, y3, sizeof(float) * (size_t)n), 0);
    }
    CU_ASSERT_EQUAL(sotto_elu(&g_cpu1, x, n, 1.0f, y1), 0);
    CU_ASSERT_EQUAL(sotto_elu(&g_cpu3, x, n, 1.0f, y3), 0);
    CU_ASSERT_EQUAL(memcmp(y1, y3, sizeof(float) * (size_t)n), 0);
    CU_ASSERT_EQUAL(sotto_leaky_relu(&g_cpu3, x, n, 0.2f, y3), 0);
    CU_ASSERT_EQUAL(y3[0], x[0] > 0 ? x[0] : 0.2f * x[0]);
    /* Snake and softmax rows */
    float alpha[30];
    for (int c = 0; c < 30; c++)
        alpha[c] = 0.2f + 0.1f * c;
    CU_ASSERT_EQUAL(sotto_snake(&g_cpu1, x, 10000, 30, alpha, y1), 0);
    CU_ASSERT_EQUAL(sotto_snake(&g_cpu3, x, 10000, 30, alpha, y3), 0);
    CU_ASSERT_EQUAL(memcmp(y1, y3, sizeof(float) * 300000), 0);
    const double s = sin(alpha[7] * x[7]);
    CU_ASSERT_DOUBLE_EQUAL(y1[7], x[7] + s * s / (alpha[7] + 1e-9), 1e-5);
    CU_ASSERT_EQUAL(sotto_softmax(&g_cpu3, x, 3000, 100, y3), 0);
    double sum = 0;
    for (int i = 0; i < 100; i++)
        sum += y3[2999 * 100 + i];
    CU_ASSERT_DOUBLE_EQUAL(sum, 1.0, 1e-6);
    free(x);
    free(y1);
    free(y3);
}

/* ---- embedding ---------------------------------------------------------------------------- */

static void test_embedding(void)
{
    float table[5 * 3];
    for (int i = 0; i < 15; i++)
        table[i] = (float)i;
    const int32_t ids[4] = {4, 0, 2, 4};
    float y[12];
    CU_ASSERT_EQUAL(sotto_embedding(table, 5, 3, ids, 4, y), SOTTO_OK);
    CU_ASSERT_EQUAL(y[0], 12.0f);
    CU_ASSERT_EQUAL(y[3], 0.0f);
    CU_ASSERT_EQUAL(y[8], 8.0f);
    const int32_t bad[2] = {1, 5}, neg[1] = {-1};
    CU_ASSERT_EQUAL(sotto_embedding(table, 5, 3, bad, 2, y), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_embedding(table, 5, 3, neg, 1, y), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_embedding(table, 5, 3, ids, 0, NULL), SOTTO_OK);
}

/* ---- weights from GGUF tensors ------------------------------------------------------------ */

static void test_from_tensor(void)
{
    /* A fake tensor record pointing at our own data, as the reader would hand it over. */
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 7);
    const int N = 20, K = 9;
    float *W = rvec(&r, (size_t)N * K, -1, 1), *x = rvec(&r, (size_t)3 * K, -1, 1);
    uint16_t *W16 = malloc(sizeof(uint16_t) * N * K);
    for (int i = 0; i < N * K; i++)
        W16[i] = sotto_f32_to_f16(W[i]);
    sotto_gguf_tensor t;
    memset(&t, 0, sizeof t);
    t.name.data = "blk.0.w";
    t.dtype = SOTTO_DTYPE_F16;
    t.n_dims = 2;
    t.shape[0] = N;
    t.shape[1] = K;
    t.shape[2] = t.shape[3] = 1;
    t.n_elems = N * K;
    t.n_bytes = 2u * N * K;
    t.data = W16;
    sotto_linear_w a, b;
    sotto_status st;
    CU_ASSERT_EQUAL_FATAL(sotto_linear_w_init(&a, &t, 1, &g_a, &st), SOTTO_OK);
    CU_ASSERT_EQUAL_FATAL(sotto_linear_w_init(&b, &t, 0, &g_a, &st), SOTTO_OK);
    float y1[3 * 20], y2[3 * 20];
    CU_ASSERT_EQUAL(sotto_linear(&g_cpu1, &a, NULL, x, 3, y1), 0);
    CU_ASSERT_EQUAL(sotto_linear(&g_cpu1, &b, NULL, x, 3, y2), 0);
    /* f16 weights stored as f16 or widened to f32 give the same products */
    TU_ASSERT_CLOSE("f16 tensor kept vs widened", y1, y2, 60, 1e-6, -1);
    sotto_linear_w_free(&a, &g_a);
    sotto_linear_w_free(&b, &g_a);

    /* a pointwise conv weight [out, in, 1] is a linear weight too */
    t.n_dims = 3;
    t.shape[2] = 1;
    CU_ASSERT_EQUAL(sotto_linear_w_init(&a, &t, 0, &g_a, &st), SOTTO_OK);
    sotto_linear_w_free(&a, &g_a);
    /* but a real conv weight is not, and the message names the tensor */
    t.shape[1] = 3;
    t.shape[2] = 3;
    CU_ASSERT_EQUAL(sotto_linear_w_init(&a, &t, 0, &g_a, &st), SOTTO_ERR_MODEL);
    CU_ASSERT_PTR_NOT_NULL(strstr(st.message, "blk.0.w"));
    /* conv1d: groups must divide the channels; blamed on the tensor */
    sotto_conv1d_w cw;
    t.shape[0] = 20; /* out 20, in/groups 3, k 3 */
    CU_ASSERT_EQUAL(sotto_conv1d_w_init(&cw, &t, 1, 1, 3, &g_a, &st), SOTTO_ERR_MODEL);
    CU_ASSERT_PTR_NOT_NULL(strstr(st.message, "blk.0.w"));
    printf("  message: %s\n", st.message);
    t.shape[0] = 12;
    t.n_elems = 12 * 3 * 3;
    CU_ASSERT_EQUAL(sotto_conv1d_w_init(&cw, &t, 1, 1, 3, &g_a, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(cw.c_in, 9);
    sotto_conv1d_w_free(&cw, &g_a);
    /* integer tensors are refused */
    t.dtype = SOTTO_DTYPE_I32;
    CU_ASSERT_EQUAL(sotto_conv1d_w_init(&cw, &t, 1, 1, 1, &g_a, &st), SOTTO_ERR_MODEL);
    float *v = NULL;
    t.dtype = SOTTO_DTYPE_F16;
    CU_ASSERT_EQUAL(sotto_vec_init(&v, &t, 5, &g_a, &st), SOTTO_ERR_MODEL);
    CU_ASSERT_EQUAL(sotto_vec_init(&v, &t, t.n_elems, &g_a, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(v[0], sotto_f16_to_f32(W16[0]));
    sotto_free(&g_a, v);
    free(W);
    free(W16);
    free(x);
}

static void test_bad_args(void)
{
    sotto_linear_w lw;
    memset(&lw, 0, sizeof lw);
    float x[4] = {0}, y[4];
    CU_ASSERT_EQUAL(sotto_linear(&g_cpu1, &lw, NULL, x, 1, y), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_linear(&g_cpu1, NULL, NULL, x, 1, y), SOTTO_ERR_INVALID_ARG);
    const float w1[4] = {1, 2, 3, 4};
    CU_ASSERT_EQUAL(sotto_linear_w_init_f32(&lw, w1, 0, 4, 0, &g_a, NULL), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL_FATAL(sotto_linear_w_init_f32(&lw, w1, 2, 2, 0, &g_a, NULL), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_linear(&g_cpu1, &lw, NULL, x, -1, y), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_linear(&g_cpu1, &lw, NULL, x, 0, NULL), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_linear(&g_cpu1, &lw, NULL, NULL, 1, y), SOTTO_ERR_INVALID_ARG);
    /* sincos: aliasing refused, the result matches libm closely, n = 0 is a no-op */
    float sn[4], cs[4];
    const float ph[4] = {0.0f, 1.0f, -2.5f, 100.0f};
    CU_ASSERT_EQUAL(sotto_sincos(&g_cpu1, ph, 4, sn, sn), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_sincos(&g_cpu1, x, 4, x, cs), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_sincos(NULL, ph, 4, sn, cs), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_sincos(&g_cpu1, NULL, 0, NULL, NULL), SOTTO_OK);
    CU_ASSERT_EQUAL_FATAL(sotto_sincos(&g_cpu1, ph, 4, sn, cs), SOTTO_OK);
    for (int i = 0; i < 4; i++)
        CU_ASSERT(fabsf(sn[i] - sinf(ph[i])) < 1e-5f && fabsf(cs[i] - cosf(ph[i])) < 1e-5f);
    CU_ASSERT_EQUAL(sotto_linear_ex(&g_cpu1, &lw, NULL, x, 1, 1, y, 2, 0), SOTTO_ERR_INVALID_ARG);
    sotto_linear_w_free(&lw, &g_a);
    sotto_conv1d_w cw;
    sotto_status st;
    CU_ASSERT_EQUAL(sotto_conv1d_w_init_f32(&cw, w1, 2, 2, 1, 0, 1, 1, &g_a, &st),
                    SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_conv1d_w_init_f32(&cw, w1, 2, 3, 1, 1, 1, 2, &g_a, &st),
                    SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_conv1d(&g_cpu1, &cw, NULL, x, 4, y), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_layernorm(&g_cpu1, x, 1, 0, NULL, NULL, 1e-5f, y), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_layernorm(&g_cpu1, x, 1, 4, NULL, NULL, NAN, y), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_gelu_erf(NULL, x, 4, y), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_snake(&g_cpu1, x, 1, 4, NULL, y), SOTTO_ERR_INVALID_ARG);
}

int main(void)
{
    sotto_alloc_init(&g_a, NULL);
    if (sotto_threadpool_create(3, &g_a, &g_tp) != SOTTO_OK) return 1;
    sotto_cpu_init(&g_cpu1, ~0u, NULL);
    sotto_cpu_init(&g_cpu3, ~0u, g_tp);
    sotto_cpu_init(&g_cpu0, 0, NULL);
    /* Both large-GEMM paths, whatever core OpenBLAS detects here: OpenBLAS on the 1-thread
     * context, our own kernel for every M on the 3-thread one. */
    g_cpu1.blas_large = 1;
    g_cpu3.blas_large = 0;
    static const tu_test tests[] = {{"linear", test_linear},
                                    {"conv1d", test_conv1d},
                                    {"conv1d_padded", test_conv1d_padded},
                                    {"conv_transpose1d", test_convtr},
                                    {"conv2d", test_conv2d},
                                    {"norms", test_norms},
                                    {"activation_layers", test_activation_layers},
                                    {"embedding", test_embedding},
                                    {"from_tensor", test_from_tensor},
                                    {"bad_args", test_bad_args},
                                    {NULL, NULL}};
    const int rc = tu_run_suite("ops", tests);
    sotto_threadpool_free(g_tp);
    return rc;
}
