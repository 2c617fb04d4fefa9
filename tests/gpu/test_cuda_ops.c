/*
 * The CUDA layer library (backend/cuda/cuda_ops.h) against the CPU layers (nn/ops.h, dsp/stft.h)
 * on the same random data: every layer, the paths each one chooses between (im2col or in place,
 * row blocks when scratch is short, groups, strides, dilation, bias or none, in place, row
 * strides and accumulation), and the error contract (a failed context refuses all later work,
 * a bad argument does not fail it). Data is drawn from a printed seed; rerun a failure with
 * SOTTO_TEST_SEED=N. Where no device exists, or Sotto was built without its CUDA backend, the
 * test reports SKIP (exit code 77), never a pass.
 *
 * NMSE budgets, per op and dtype (NMSE = Σ(gpu − cpu)² / Σ cpu²; all activations f32):
 *   element-wise f32 (activations, snake, channel affine)             1e-10
 *   row reductions f32 (layernorm, rmsnorm, softmax)                  1e-10
 *   depthwise conv1d f32 (direct kernel)                              1e-10
 *   GEMM-based f32 without TF32 (linear, conv1d, transposed conv1d)   1e-8
 *   the same with TF32 allowed                                        1e-5
 *   the same with bf16 weights (SOTTO_CUDA_BF16)                      2e-5, and > 1e-9
 *   inverse STFT (cuFFT C2R against KissFFT)                          1e-9
 *   RoPE f32 (angles and their sines in double on both sides)         1e-10
 *   attention, transformer layer f32 (GEMMs around a softmax)         1e-8
 *   embedding (a copy)                                                exact (0)
 * The expected errors are orders of magnitude below these (a few ulp per value, √K·ulp for a
 * K-long dot product, 2⁻¹¹ relative per TF32 product); the budgets catch wrong indexing or a
 * wrong formula, which give NMSE near 1, while leaving room for summation order. bf16 rounds
 * both operands of every product to 8 significant bits (relative error uniform in ±2⁻⁹, so a
 * variance of 2⁻¹⁸/3 each, 2.5e-6 for the product); with these zero-mean data the output's
 * NMSE is of that order, 1e-6 to 5e-6 measured (less where a bias or an accumulated y adds
 * exact energy), and the bf16 cases print it. Its floor of 1e-9, which an f32 product stays far
 * below, shows that the rounding really happened.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda_probe.h"
#include "testutil.h"

#ifdef SOTTO_HAVE_CUDA

#include <math.h>

#include "backend/cuda/cuda_ops.h"
#include "dsp/stft.h"
#include "nn/attn.h"
#include "nn/ops.h"

#define NMSE_ELEM 1e-10
#define NMSE_ROW 1e-10
#define NMSE_DW 1e-10
#define NMSE_GEMM 1e-8
#define NMSE_TF32 1e-5
#define NMSE_BF16 2e-5
#define NMSE_BF16_FLOOR 1e-9
#define NMSE_ISTFT 1e-9
#define NMSE_ROPE 1e-10
#define NMSE_ATTN 1e-8

#define SCRATCH_BYTES ((size_t)64 << 20)

static sotto_cuda *g_cu;
static sotto_cpu g_cpu;
static sotto_alloc g_alloc;
static uint64_t g_seed;

/* A fresh generator per test, so each test's data does not depend on the others. */
static tu_rng rng_for(uint64_t salt)
{
    tu_rng r;
    tu_rng_init(&r, g_seed * 0x9e3779b97f4a7c15ull + salt);
    return r;
}

static float *host_random(tu_rng *r, size_t n, float lo, float hi)
{
    float *h = malloc(sizeof(float) * (n ? n : 1));
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    tu_fill_uniform(r, h, n, lo, hi);
    return h;
}

static void report_device(int rc, const char *what)
{
    if (rc)
        fprintf(stderr, "%s: %s (%s)\n", what, sotto_strerror(rc), sotto_cuda_error_message(g_cu));
}

/* A device copy of n host floats (NULL when h is NULL). */
static float *dev_from(const float *h, size_t n)
{
    void *d = NULL;
    if (!h) return NULL;
    int rc = sotto_cuda_alloc(g_cu, sizeof(float) * n, &d);
    if (!rc) rc = sotto_cuda_upload(g_cu, d, h, sizeof(float) * n);
    report_device(rc, "upload");
    CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
    return d;
}

/* A device buffer of n floats, filled with NaN so that a value the layer fails to write
 * shows up in the comparison. */
static float *dev_nan(size_t n)
{
    float *h = malloc(sizeof(float) * n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    for (size_t i = 0; i < n; i++)
        h[i] = NAN;
    float *d = dev_from(h, n);
    free(h);
    return d;
}

/* Downloads n floats from d and compares them with want. */
static void expect_close(const char *what, const float *d, const float *want, int64_t n,
                         double nmse)
{
    float *got = malloc(sizeof(float) * (size_t)(n ? n : 1));
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    const int rc = sotto_cuda_download(g_cu, got, d, sizeof(float) * (size_t)n);
    report_device(rc, what);
    CU_ASSERT_EQUAL(rc, SOTTO_OK);
    if (!rc) TU_ASSERT_CLOSE(what, got, want, n, -1.0, nmse);
    free(got);
}

/* As expect_close, for a bf16 layer: prints the NMSE measured and checks that it lies between
 * NMSE_BF16_FLOOR and NMSE_BF16. */
static void expect_bf16(const char *what, const float *d, const float *want, int64_t n)
{
    float *got = malloc(sizeof(float) * (size_t)(n ? n : 1));
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    const int rc = sotto_cuda_download(g_cu, got, d, sizeof(float) * (size_t)n);
    report_device(rc, what);
    CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
    double num = 0.0, den = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const double e = (double)got[i] - want[i];
        num += e * e;
        den += (double)want[i] * want[i];
    }
    const double nmse = den > 0.0 ? num / den : num;
    printf("    %s: NMSE %.3g (budget %.0e)\n", what, nmse, NMSE_BF16);
    CU_ASSERT_TRUE(nmse <= NMSE_BF16);      /* a NaN fails here too */
    CU_ASSERT_TRUE(nmse > NMSE_BF16_FLOOR); /* bf16 products, not f32 ones */
    free(got);
}

/* Compares d with want by the budget of the layer's storage. */
static void expect_gemm(const char *what, int bf16, const float *d, const float *want, int64_t n,
                        double f32_budget)
{
    if (bf16)
        expect_bf16(what, d, want, n);
    else
        expect_close(what, d, want, n, f32_budget);
}

/* Leaves only `bytes` of the scratch pool free (to force the row-block paths). */
static void squeeze_scratch(size_t bytes)
{
    void *hog;
    CU_ASSERT_EQUAL_FATAL(
        sotto_cuda_scratch_alloc(g_cu, sotto_cuda_scratch_size(g_cu) - bytes - 256, &hog),
        SOTTO_OK);
}

/* ---- linear ------------------------------------------------------------------------------- */

/* dt: the weight's storage; squeeze as conv1d_case's (bf16 only: f32 takes no scratch). */
static void linear_case_dt(int M, int K, int N, int with_bias, int tf32, sotto_cuda_dtype dt,
                           size_t squeeze)
{
    tu_rng r = rng_for(1000u + (uint64_t)M * 7919u + (uint64_t)K * 31u + (uint64_t)N);
    float *W = host_random(&r, (size_t)N * K, -0.5f, 0.5f);
    float *b = with_bias ? host_random(&r, (size_t)N, -1.0f, 1.0f) : NULL;
    /* rows of x and y padded (ldx = K + 3, ldy = N + 5) to check the strides */
    const int64_t ldx = K + 3, ldy = N + 5;
    float *x = host_random(&r, (size_t)(M * ldx), -1.0f, 1.0f);
    float *y0 = host_random(&r, (size_t)(M * ldy), -1.0f, 1.0f); /* accumulated onto */
    float *want = malloc(sizeof(float) * (size_t)(M * ldy));
    float *want_acc = malloc(sizeof(float) * (size_t)(M * ldy));
    CU_ASSERT_PTR_NOT_NULL_FATAL(want);
    CU_ASSERT_PTR_NOT_NULL_FATAL(want_acc);
    memcpy(want, y0, sizeof(float) * (size_t)(M * ldy));
    memcpy(want_acc, y0, sizeof(float) * (size_t)(M * ldy));

    sotto_linear_w cw;
    sotto_status st;
    CU_ASSERT_EQUAL_FATAL(sotto_linear_w_init_f32(&cw, W, N, K, 0, &g_alloc, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_linear_ex(&g_cpu, &cw, b, x, ldx, M, want, ldy, 0), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_linear_ex(&g_cpu, &cw, b, x, ldx, M, want_acc, ldy, 1), SOTTO_OK);

    sotto_cuda_linear_w gw;
    const int bf16 = dt == SOTTO_CUDA_BF16;
    CU_ASSERT_EQUAL_FATAL(sotto_cuda_set_weight_dtype(g_cu, dt), SOTTO_OK);
    CU_ASSERT_EQUAL_FATAL(sotto_cuda_linear_w_init(g_cu, &gw, W, N, K, &st), SOTTO_OK);
    CU_ASSERT_EQUAL_FATAL(sotto_cuda_set_weight_dtype(g_cu, SOTTO_CUDA_F32), SOTTO_OK);
    CU_ASSERT_TRUE(bf16 ? gw.wb && !gw.w : gw.w && !gw.wb);
    CU_ASSERT_EQUAL(sotto_cuda_linear_scratch(&gw, M), bf16 ? (size_t)M * K * 2 + 256 : 0);
    float *dx = dev_from(x, (size_t)(M * ldx)), *db = dev_from(b, (size_t)N);
    float *dy = dev_from(y0, (size_t)(M * ldy)), *dy_acc = dev_from(y0, (size_t)(M * ldy));
    sotto_cuda_set_tf32(g_cu, tf32);
    sotto_cuda_scratch_reset(g_cu);
    if (squeeze) squeeze_scratch(squeeze);
    const size_t used = sotto_cuda_scratch_used(g_cu);
    CU_ASSERT_EQUAL(sotto_cuda_linear_ex(g_cu, &gw, db, dx, ldx, M, dy, ldy, 0), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_cuda_linear_ex(g_cu, &gw, db, dx, ldx, M, dy_acc, ldy, 1), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_cuda_scratch_used(g_cu), used); /* temporaries given back */
    sotto_cuda_scratch_reset(g_cu);
    sotto_cuda_set_tf32(g_cu, 0);

    char what[128];
    const double budget = tf32 ? NMSE_TF32 : NMSE_GEMM;
    const char *tag = bf16 ? (squeeze ? " bf16 (row blocks)" : " bf16") : "";
    snprintf(what, sizeof what, "linear M=%d K=%d N=%d bias=%d tf32=%d%s", M, K, N, with_bias, tf32,
             tag);
    expect_gemm(what, bf16, dy, want, M * ldy, budget);
    snprintf(what, sizeof what, "linear accumulate M=%d K=%d N=%d bias=%d tf32=%d%s", M, K, N,
             with_bias, tf32, tag);
    expect_gemm(what, bf16, dy_acc, want_acc, M * ldy, budget);

    /* the dense form on the same data */
    float *want_d = malloc(sizeof(float) * (size_t)M * N);
    CU_ASSERT_PTR_NOT_NULL_FATAL(want_d);
    float *xd = malloc(sizeof(float) * (size_t)M * K);
    CU_ASSERT_PTR_NOT_NULL_FATAL(xd);
    for (int m = 0; m < M; m++)
        memcpy(xd + (size_t)m * K, x + (size_t)m * ldx, sizeof(float) * (size_t)K);
    CU_ASSERT_EQUAL(sotto_linear(&g_cpu, &cw, b, xd, M, want_d), SOTTO_OK);
    float *dxd = dev_from(xd, (size_t)M * K), *dyd = dev_nan((size_t)M * N);
    CU_ASSERT_EQUAL(sotto_cuda_linear(g_cu, &gw, db, dxd, M, dyd), SOTTO_OK);
    snprintf(what, sizeof what, "linear dense M=%d K=%d N=%d bias=%d%s", M, K, N, with_bias,
             bf16 ? " bf16" : "");
    expect_gemm(what, bf16, dyd, want_d, (int64_t)M * N, NMSE_GEMM); /* TF32 is off again */

    sotto_cuda_free(g_cu, dx);
    sotto_cuda_free(g_cu, db);
    sotto_cuda_free(g_cu, dy);
    sotto_cuda_free(g_cu, dy_acc);
    sotto_cuda_free(g_cu, dxd);
    sotto_cuda_free(g_cu, dyd);
    sotto_cuda_linear_w_free(g_cu, &gw);
    sotto_linear_w_free(&cw, &g_alloc);
    free(W);
    free(b);
    free(x);
    free(y0);
    free(want);
    free(want_acc);
    free(want_d);
    free(xd);
}

static void linear_case(int M, int K, int N, int with_bias, int tf32)
{
    linear_case_dt(M, K, N, with_bias, tf32, SOTTO_CUDA_F32, 0);
}

static void test_linear(void)
{
    linear_case(1, 37, 29, 1, 0);     /* a streaming step */
    linear_case(16, 64, 48, 0, 0);    /* the CPU's small-M kernel */
    linear_case(100, 256, 384, 1, 0); /* BLAS-sized */
    linear_case(100, 256, 384, 1, 1); /* TF32 */
    /* M = 0 does nothing and needs no buffers */
    sotto_cuda_linear_w gw;
    float W[6] = {1, 2, 3, 4, 5, 6};
    sotto_status st;
    CU_ASSERT_EQUAL_FATAL(sotto_cuda_linear_w_init(g_cu, &gw, W, 2, 3, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_cuda_linear(g_cu, &gw, NULL, NULL, 0, NULL), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_cuda_linear_ex(g_cu, &gw, NULL, NULL, 2, 1, NULL, 2, 0),
                    SOTTO_ERR_INVALID_ARG); /* ldx < n_in */
    sotto_cuda_linear_w_free(g_cu, &gw);
    CU_ASSERT_EQUAL(sotto_cuda_error(g_cu), SOTTO_OK);
}

/* bf16 weights against the CPU's f32 layer: the shapes above, TF32 on (which bf16 products
 * ignore), and a pool that holds the rounded input of three rows only. */
static void test_linear_bf16(void)
{
    linear_case_dt(1, 37, 29, 1, 0, SOTTO_CUDA_BF16, 0);
    linear_case_dt(16, 64, 48, 0, 0, SOTTO_CUDA_BF16, 0);
    linear_case_dt(100, 256, 384, 1, 0, SOTTO_CUDA_BF16, 0);
    linear_case_dt(100, 256, 384, 0, 1, SOTTO_CUDA_BF16, 0);
    linear_case_dt(40, 96, 64, 1, 0, SOTTO_CUDA_BF16, 3 * 96 * sizeof(uint16_t));
    /* the setting: an unknown dtype is refused and changes nothing */
    CU_ASSERT_EQUAL(sotto_cuda_weight_dtype(g_cu), SOTTO_CUDA_F32);
    CU_ASSERT_EQUAL(sotto_cuda_set_weight_dtype(g_cu, (sotto_cuda_dtype)7), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_cuda_set_weight_dtype(NULL, SOTTO_CUDA_BF16), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_cuda_weight_dtype(g_cu), SOTTO_CUDA_F32);
    CU_ASSERT_EQUAL(sotto_cuda_error(g_cu), SOTTO_OK);
}

/* ---- conv1d ------------------------------------------------------------------------------- */

/* squeeze: leave only this many bytes of scratch free during the GPU call (0: all of it), to
 * force the row-block path. */
static void conv1d_case_dt(int c_in, int c_out, int k, int stride, int dilation, int groups,
                           int64_t T_in, int with_bias, size_t squeeze, sotto_cuda_dtype dt)
{
    tu_rng r = rng_for(2000u + (uint64_t)c_in * 131u + (uint64_t)k * 17u + (uint64_t)stride * 5u +
                       (uint64_t)dilation * 3u + (uint64_t)groups);
    const int cig = c_in / groups;
    float *W = host_random(&r, (size_t)c_out * cig * k, -0.5f, 0.5f);
    float *b = with_bias ? host_random(&r, (size_t)c_out, -1.0f, 1.0f) : NULL;
    float *x = host_random(&r, (size_t)(T_in * c_in), -1.0f, 1.0f);

    sotto_conv1d_w cw;
    sotto_status st;
    CU_ASSERT_EQUAL_FATAL(
        sotto_conv1d_w_init_f32(&cw, W, c_out, c_in, k, stride, dilation, groups, &g_alloc, &st),
        SOTTO_OK);
    const int64_t T_out = sotto_conv1d_out_len(&cw, T_in);
    CU_ASSERT_TRUE_FATAL(T_out > 0);
    float *want = malloc(sizeof(float) * (size_t)(T_out * c_out));
    CU_ASSERT_PTR_NOT_NULL_FATAL(want);
    CU_ASSERT_EQUAL(sotto_conv1d(&g_cpu, &cw, b, x, T_in, want), T_out);

    sotto_cuda_conv1d_w gw;
    CU_ASSERT_EQUAL_FATAL(sotto_cuda_set_weight_dtype(g_cu, dt), SOTTO_OK);
    CU_ASSERT_EQUAL_FATAL(
        sotto_cuda_conv1d_w_init(g_cu, &gw, W, c_out, c_in, k, stride, dilation, groups, &st),
        SOTTO_OK);
    CU_ASSERT_EQUAL_FATAL(sotto_cuda_set_weight_dtype(g_cu, SOTTO_CUDA_F32), SOTTO_OK);
    /* a depthwise conv has no GEMM and keeps f32 */
    const int bf16 = dt == SOTTO_CUDA_BF16 && !gw.depthwise;
    CU_ASSERT_TRUE(bf16 ? gw.wb && !gw.w : gw.w && !gw.wb);
    CU_ASSERT_EQUAL(sotto_cuda_conv1d_out_len(&gw, T_in), T_out);
    float *dx = dev_from(x, (size_t)(T_in * c_in)), *db = dev_from(b, (size_t)c_out);
    float *dy = dev_nan((size_t)(T_out * c_out));
    sotto_cuda_scratch_reset(g_cu);
    if (squeeze) squeeze_scratch(squeeze);
    const size_t used = sotto_cuda_scratch_used(g_cu);
    const int64_t rc = sotto_cuda_conv1d(g_cu, &gw, db, dx, T_in, dy);
    report_device((int)(rc < 0 ? rc : 0), "conv1d");
    CU_ASSERT_EQUAL(rc, T_out);
    CU_ASSERT_EQUAL(sotto_cuda_scratch_used(g_cu), used); /* temporaries given back */
    sotto_cuda_scratch_reset(g_cu);

    char what[128];
    snprintf(what, sizeof what, "conv1d c_in=%d c_out=%d k=%d s=%d d=%d g=%d T=%lld bias=%d%s%s",
             c_in, c_out, k, stride, dilation, groups, (long long)T_in, with_bias,
             bf16 ? " bf16" : "", squeeze ? " (row blocks)" : "");
    expect_gemm(what, bf16, dy, want, T_out * c_out, gw.depthwise ? NMSE_DW : NMSE_GEMM);

    sotto_cuda_free(g_cu, dx);
    sotto_cuda_free(g_cu, db);
    sotto_cuda_free(g_cu, dy);
    sotto_cuda_conv1d_w_free(g_cu, &gw);
    sotto_conv1d_w_free(&cw, &g_alloc);
    free(W);
    free(b);
    free(x);
    free(want);
}

static void conv1d_case(int c_in, int c_out, int k, int stride, int dilation, int groups,
                        int64_t T_in, int with_bias, size_t squeeze)
{
    conv1d_case_dt(c_in, c_out, k, stride, dilation, groups, T_in, with_bias, squeeze,
                   SOTTO_CUDA_F32);
}

static void test_conv1d(void)
{
    conv1d_case(16, 24, 7, 1, 1, 1, 50, 1, 0);  /* im2col, one GEMM */
    conv1d_case(16, 24, 7, 1, 1, 1, 50, 0, 0);  /* no bias */
    conv1d_case(32, 16, 1, 2, 1, 4, 41, 1, 0);  /* pointwise, strided, grouped: in place */
    conv1d_case(12, 20, 4, 4, 1, 1, 64, 1, 0);  /* stride = k: windows read in place */
    conv1d_case(16, 32, 3, 1, 3, 4, 60, 1, 0);  /* dilated, grouped: im2col per group */
    conv1d_case(8, 12, 5, 2, 2, 2, 77, 1, 0);   /* strided, dilated, grouped */
    conv1d_case(32, 32, 7, 1, 1, 32, 40, 1, 0); /* depthwise (ConvNeXt) */
    conv1d_case(24, 24, 3, 2, 3, 24, 45, 0, 0); /* depthwise, strided, dilated */
    /* scratch for three im2col rows only: the conv runs in blocks of three rows */
    conv1d_case(16, 24, 7, 1, 1, 1, 50, 1, 3 * 7 * 16 * sizeof(float));
    CU_ASSERT_EQUAL(sotto_cuda_error(g_cu), SOTTO_OK);
}

/* bf16 weights: every GEMM path of test_conv1d (the in-place ones gather too, rounding as
 * they copy), a depthwise conv that stays f32, and row blocks of bf16 im2col rows. */
static void test_conv1d_bf16(void)
{
    const sotto_cuda_dtype B = SOTTO_CUDA_BF16;
    conv1d_case_dt(16, 24, 7, 1, 1, 1, 50, 1, 0, B);
    conv1d_case_dt(32, 16, 1, 2, 1, 4, 41, 1, 0, B);
    conv1d_case_dt(12, 20, 4, 4, 1, 1, 64, 0, 0, B);
    conv1d_case_dt(16, 32, 3, 1, 3, 4, 60, 1, 0, B);
    conv1d_case_dt(8, 12, 5, 2, 2, 2, 77, 1, 0, B);
    conv1d_case_dt(32, 32, 7, 1, 1, 32, 40, 1, 0, B);
    conv1d_case_dt(16, 24, 7, 1, 1, 1, 50, 1, 3 * 7 * 16 * sizeof(uint16_t), B);
    CU_ASSERT_EQUAL(sotto_cuda_error(g_cu), SOTTO_OK);
}

/* ---- transposed conv1d ------------------------------------------------------------------ */

static void convtr_case_dt(int c_in, int c_out, int k, int stride, int dilation, int groups,
                           int64_t T_in, int with_bias, sotto_cuda_dtype dt, size_t squeeze)
{
    tu_rng r = rng_for(3000u + (uint64_t)c_in * 131u + (uint64_t)k * 17u + (uint64_t)stride * 5u +
                       (uint64_t)groups);
    const int cog = c_out / groups;
    float *W = host_random(&r, (size_t)c_in * cog * k, -0.5f, 0.5f);
    float *b = with_bias ? host_random(&r, (size_t)c_out, -1.0f, 1.0f) : NULL;
    float *x = host_random(&r, (size_t)(T_in * c_in), -1.0f, 1.0f);

    sotto_convtr1d_w cw;
    sotto_status st;
    CU_ASSERT_EQUAL_FATAL(
        sotto_convtr1d_w_init_f32(&cw, W, c_in, c_out, k, stride, dilation, groups, &g_alloc, &st),
        SOTTO_OK);
    const int64_t L = sotto_convtr1d_out_len(&cw, T_in);
    float *want = malloc(sizeof(float) * (size_t)(L * c_out));
    CU_ASSERT_PTR_NOT_NULL_FATAL(want);
    CU_ASSERT_EQUAL(sotto_conv_transpose1d(&g_cpu, &cw, b, x, T_in, want), L);

    sotto_cuda_convtr1d_w gw;
    const int bf16 = dt == SOTTO_CUDA_BF16;
    CU_ASSERT_EQUAL_FATAL(sotto_cuda_set_weight_dtype(g_cu, dt), SOTTO_OK);
    CU_ASSERT_EQUAL_FATAL(
        sotto_cuda_convtr1d_w_init(g_cu, &gw, W, c_in, c_out, k, stride, dilation, groups, &st),
        SOTTO_OK);
    CU_ASSERT_EQUAL_FATAL(sotto_cuda_set_weight_dtype(g_cu, SOTTO_CUDA_F32), SOTTO_OK);
    CU_ASSERT_TRUE(bf16 ? gw.wb && !gw.w : gw.w && !gw.wb);
    CU_ASSERT_EQUAL(sotto_cuda_convtr1d_out_len(&gw, T_in), L);
    CU_ASSERT_EQUAL(sotto_cuda_convtr1d_scratch(&gw, T_in),
                    bf16 ? (size_t)T_in * c_in * 2 + 256 : 0);
    float *dx = dev_from(x, (size_t)(T_in * c_in)), *db = dev_from(b, (size_t)c_out);
    float *dy = dev_nan((size_t)(L * c_out));
    sotto_cuda_scratch_reset(g_cu);
    if (squeeze) squeeze_scratch(squeeze);
    const size_t used = sotto_cuda_scratch_used(g_cu);
    const int64_t rc = sotto_cuda_conv_transpose1d(g_cu, &gw, db, dx, T_in, dy);
    report_device((int)(rc < 0 ? rc : 0), "convtr1d");
    CU_ASSERT_EQUAL(rc, L);
    CU_ASSERT_EQUAL(sotto_cuda_scratch_used(g_cu), used); /* temporaries given back */
    sotto_cuda_scratch_reset(g_cu);

    char what[128];
    snprintf(what, sizeof what, "convtr1d c_in=%d c_out=%d k=%d s=%d d=%d g=%d T=%lld bias=%d%s%s",
             c_in, c_out, k, stride, dilation, groups, (long long)T_in, with_bias,
             bf16 ? " bf16" : "", squeeze ? " (row blocks)" : "");
    expect_gemm(what, bf16, dy, want, L * c_out, NMSE_GEMM);

    sotto_cuda_free(g_cu, dx);
    sotto_cuda_free(g_cu, db);
    sotto_cuda_free(g_cu, dy);
    sotto_cuda_convtr1d_w_free(g_cu, &gw);
    sotto_convtr1d_w_free(&cw, &g_alloc);
    free(W);
    free(b);
    free(x);
    free(want);
}

static void convtr_case(int c_in, int c_out, int k, int stride, int dilation, int groups,
                        int64_t T_in, int with_bias)
{
    convtr_case_dt(c_in, c_out, k, stride, dilation, groups, T_in, with_bias, SOTTO_CUDA_F32, 0);
}

static void test_convtr1d(void)
{
    convtr_case(16, 8, 16, 8, 1, 1, 20, 1); /* a vocoder upsampler: k = 2·stride */
    convtr_case(16, 8, 16, 8, 1, 1, 20, 0);
    convtr_case(12, 6, 3, 1, 2, 1, 30, 1);  /* stride 1, dilated */
    convtr_case(8, 10, 4, 6, 1, 1, 15, 1);  /* stride > k: rows no tap reaches */
    convtr_case(16, 12, 5, 2, 1, 4, 25, 1); /* grouped */
    CU_ASSERT_EQUAL(sotto_cuda_error(g_cu), SOTTO_OK);
}

/* bf16 weights: the upsampler, a grouped one, and input frames in blocks of four. */
static void test_convtr1d_bf16(void)
{
    const sotto_cuda_dtype B = SOTTO_CUDA_BF16;
    convtr_case_dt(16, 8, 16, 8, 1, 1, 20, 1, B, 0);
    convtr_case_dt(8, 10, 4, 6, 1, 1, 15, 0, B, 0);
    convtr_case_dt(16, 12, 5, 2, 1, 4, 25, 1, B, 0);
    convtr_case_dt(16, 8, 16, 8, 1, 1, 20, 1, B, 4 * 16 * sizeof(uint16_t));
    CU_ASSERT_EQUAL(sotto_cuda_error(g_cu), SOTTO_OK);
}

/* ---- norms -------------------------------------------------------------------------------- */

static void norm_case(int64_t T, int C)
{
    tu_rng r = rng_for(4000u + (uint64_t)T * 97u + (uint64_t)C);
    const size_t n = (size_t)(T * C);
    /* an offset mean, as real activations have, so the variance pass matters */
    float *x = host_random(&r, n, 2.0f, 6.0f);
    float *g = host_random(&r, (size_t)C, 0.5f, 1.5f), *b = host_random(&r, (size_t)C, -1, 1);
    float *want = malloc(sizeof(float) * n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(want);
    float *dx = dev_from(x, n), *dg = dev_from(g, (size_t)C), *db = dev_from(b, (size_t)C);
    float *dy = dev_nan(n);
    char what[96];

    CU_ASSERT_EQUAL(sotto_layernorm(&g_cpu, x, T, C, g, b, 1e-5f, want), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_cuda_layernorm(g_cu, dx, T, C, dg, db, 1e-5f, dy), SOTTO_OK);
    snprintf(what, sizeof what, "layernorm T=%lld C=%d", (long long)T, C);
    expect_close(what, dy, want, (int64_t)n, NMSE_ROW);

    CU_ASSERT_EQUAL(sotto_layernorm(&g_cpu, x, T, C, NULL, NULL, 1e-6f, want), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_cuda_layernorm(g_cu, dx, T, C, NULL, NULL, 1e-6f, dy), SOTTO_OK);
    snprintf(what, sizeof what, "layernorm no affine T=%lld C=%d", (long long)T, C);
    expect_close(what, dy, want, (int64_t)n, NMSE_ROW);

    CU_ASSERT_EQUAL(sotto_rmsnorm(&g_cpu, x, T, C, g, 1e-6f, want), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_cuda_rmsnorm(g_cu, dx, T, C, dg, 1e-6f, dy), SOTTO_OK);
    snprintf(what, sizeof what, "rmsnorm T=%lld C=%d", (long long)T, C);
    expect_close(what, dy, want, (int64_t)n, NMSE_ROW);

    CU_ASSERT_EQUAL(sotto_channel_affine(&g_cpu, x, T, C, g, b, want), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_cuda_channel_affine(g_cu, dx, T, C, dg, db, dy), SOTTO_OK);
    snprintf(what, sizeof what, "channel_affine T=%lld C=%d", (long long)T, C);
    expect_close(what, dy, want, (int64_t)n, NMSE_ELEM);
    CU_ASSERT_EQUAL(sotto_channel_affine(&g_cpu, x, T, C, g, NULL, want), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_cuda_channel_affine(g_cu, dx, T, C, dg, NULL, dy), SOTTO_OK);
    snprintf(what, sizeof what, "channel_affine no shift T=%lld C=%d", (long long)T, C);
    expect_close(what, dy, want, (int64_t)n, NMSE_ELEM);

    /* in place */
    CU_ASSERT_EQUAL(sotto_layernorm(&g_cpu, x, T, C, g, b, 1e-5f, want), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_cuda_layernorm(g_cu, dx, T, C, dg, db, 1e-5f, dx), SOTTO_OK);
    snprintf(what, sizeof what, "layernorm in place T=%lld C=%d", (long long)T, C);
    expect_close(what, dx, want, (int64_t)n, NMSE_ROW);

    sotto_cuda_free(g_cu, dx);
    sotto_cuda_free(g_cu, dg);
    sotto_cuda_free(g_cu, db);
    sotto_cuda_free(g_cu, dy);
    free(x);
    free(g);
    free(b);
    free(want);
}

static void test_norms(void)
{
    norm_case(1, 7);      /* fewer channels than a warp */
    norm_case(33, 512);   /* Vocos width */
    norm_case(5, 1280);   /* Dasheng width, more than a block's threads */
    norm_case(70000, 16); /* more rows than the grid: rows loop */
    CU_ASSERT_EQUAL(sotto_cuda_layernorm(g_cu, NULL, 0, 8, NULL, NULL, 1e-5f, NULL), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_cuda_layernorm(g_cu, NULL, 2, 8, NULL, NULL, 1e-5f, NULL),
                    SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_cuda_error(g_cu), SOTTO_OK);
}

/* ---- activations -------------------------------------------------------------------------- */

static void test_activations(void)
{
    tu_rng r = rng_for(5000u);
    const int64_t n = 100003; /* not a multiple of anything */
    float *x = host_random(&r, (size_t)n, -8.0f, 8.0f);
    float *want = malloc(sizeof(float) * (size_t)n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(want);
    float *dx = dev_from(x, (size_t)n), *dy = dev_nan((size_t)n);

#define ACT(name, cpu_call, gpu_call)                                                              \
    do {                                                                                           \
        CU_ASSERT_EQUAL(cpu_call, SOTTO_OK);                                                       \
        CU_ASSERT_EQUAL(gpu_call, SOTTO_OK);                                                       \
        expect_close(name, dy, want, n, NMSE_ELEM);                                                \
    } while (0)
    ACT("gelu_erf", sotto_gelu_erf(&g_cpu, x, n, want), sotto_cuda_gelu_erf(g_cu, dx, n, dy));
    ACT("gelu_tanh", sotto_gelu_tanh(&g_cpu, x, n, want), sotto_cuda_gelu_tanh(g_cu, dx, n, dy));
    ACT("silu", sotto_silu(&g_cpu, x, n, want), sotto_cuda_silu(g_cu, dx, n, dy));
    ACT("tanh", sotto_tanh(&g_cpu, x, n, want), sotto_cuda_tanh(g_cu, dx, n, dy));
    ACT("elu", sotto_elu(&g_cpu, x, n, 1.0f, want), sotto_cuda_elu(g_cu, dx, n, 1.0f, dy));
    ACT("elu alpha 0.5", sotto_elu(&g_cpu, x, n, 0.5f, want),
        sotto_cuda_elu(g_cu, dx, n, 0.5f, dy));
    ACT("leaky_relu", sotto_leaky_relu(&g_cpu, x, n, 0.1f, want),
        sotto_cuda_leaky_relu(g_cu, dx, n, 0.1f, dy));
#undef ACT
    /* in place */
    CU_ASSERT_EQUAL(sotto_gelu_erf(&g_cpu, x, n, want), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_cuda_gelu_erf(g_cu, dx, n, dx), SOTTO_OK);
    expect_close("gelu_erf in place", dx, want, n, NMSE_ELEM);
    /* n = 0 needs no buffers; n < 0 is refused without failing the context */
    CU_ASSERT_EQUAL(sotto_cuda_silu(g_cu, NULL, 0, NULL), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_cuda_silu(g_cu, dx, -1, dy), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_cuda_error(g_cu), SOTTO_OK);

    sotto_cuda_free(g_cu, dx);
    sotto_cuda_free(g_cu, dy);
    free(x);
    free(want);
}

static void test_snake_softmax(void)
{
    tu_rng r = rng_for(6000u);
    const int64_t T = 301;
    const int C = 96;
    const size_t n = (size_t)(T * C);
    float *x = host_random(&r, n, -6.0f, 6.0f);
    float *alpha = host_random(&r, (size_t)C, 0.1f, 3.0f);
    float *want = malloc(sizeof(float) * n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(want);
    float *dx = dev_from(x, n), *da = dev_from(alpha, (size_t)C), *dy = dev_nan(n);

    CU_ASSERT_EQUAL(sotto_snake(&g_cpu, x, T, C, alpha, want), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_cuda_snake(g_cu, dx, T, C, da, dy), SOTTO_OK);
    expect_close("snake", dy, want, (int64_t)n, NMSE_ELEM);

    /* softmax: 96 rows of 301, then 301 rows of 96 (the same data) */
    CU_ASSERT_EQUAL(sotto_softmax(&g_cpu, x, C, (int)T, want), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_cuda_softmax(g_cu, dx, C, (int)T, dy), SOTTO_OK);
    expect_close("softmax rows=96 n=301", dy, want, (int64_t)n, NMSE_ROW);
    CU_ASSERT_EQUAL(sotto_softmax(&g_cpu, x, T, C, want), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_cuda_softmax(g_cu, dx, T, C, dx), SOTTO_OK); /* in place */
    expect_close("softmax rows=301 n=96 in place", dx, want, (int64_t)n, NMSE_ROW);

    sotto_cuda_free(g_cu, dx);
    sotto_cuda_free(g_cu, da);
    sotto_cuda_free(g_cu, dy);
    free(x);
    free(alpha);
    free(want);
}

/* ---- embedding ---------------------------------------------------------------------------- */

static void test_embedding(void)
{
    tu_rng r = rng_for(7000u);
    const int64_t rows = 50, n_ids = 200;
    const int dim = 64;
    float *table = host_random(&r, (size_t)(rows * dim), -1.0f, 1.0f);
    int32_t ids[200];
    for (int i = 0; i < n_ids; i++)
        ids[i] = (int32_t)(tu_rng_u32(&r) % rows);
    float *want = malloc(sizeof(float) * (size_t)(n_ids * dim));
    CU_ASSERT_PTR_NOT_NULL_FATAL(want);
    CU_ASSERT_EQUAL(sotto_embedding(table, rows, dim, ids, n_ids, want), SOTTO_OK);

    float *dt = dev_from(table, (size_t)(rows * dim)), *dy = dev_nan((size_t)(n_ids * dim));
    void *dids = NULL;
    CU_ASSERT_EQUAL_FATAL(sotto_cuda_alloc(g_cu, sizeof ids, &dids), SOTTO_OK);
    CU_ASSERT_EQUAL_FATAL(sotto_cuda_upload(g_cu, dids, ids, sizeof ids), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_cuda_embedding(g_cu, dt, rows, dim, dids, n_ids, dy), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_cuda_sync(g_cu), SOTTO_OK);
    expect_close("embedding", dy, want, n_ids * dim, 0.0);

    /* a bad id: its row is zeros, the next sync says so once, the context keeps working */
    ids[3] = (int32_t)rows;
    CU_ASSERT_EQUAL_FATAL(sotto_cuda_upload(g_cu, dids, ids, sizeof ids), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_cuda_embedding(g_cu, dt, rows, dim, dids, 5, dy), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_cuda_sync(g_cu), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_cuda_sync(g_cu), SOTTO_OK);
    float row[64];
    CU_ASSERT_EQUAL(sotto_cuda_download(g_cu, row, dy + 3 * dim, sizeof row), SOTTO_OK);
    int zeros = 1;
    for (int d = 0; d < dim; d++)
        zeros &= row[d] == 0.0f;
    CU_ASSERT_TRUE(zeros);
    CU_ASSERT_EQUAL(sotto_cuda_error(g_cu), SOTTO_OK);

    sotto_cuda_free(g_cu, dt);
    sotto_cuda_free(g_cu, dy);
    sotto_cuda_free(g_cu, dids);
    free(table);
    free(want);
}

/* ---- inverse STFT ------------------------------------------------------------------------- */

static void istft_case(int n_fft, int hop, sotto_stft_pad pad, int64_t T, int max_frames)
{
    sotto_stft_params sp = sotto_stft_default_params();
    sp.n_fft = n_fft;
    sp.hop_length = hop;
    sp.pad = pad;
    sotto_stft *s = NULL;
    sotto_status st;
    CU_ASSERT_EQUAL_FATAL(sotto_stft_create(&sp, NULL, &s, &st), SOTTO_OK);
    const int F = sotto_stft_n_bins(s);
    tu_rng r = rng_for(8000u + (uint64_t)n_fft * 7u + (uint64_t)pad);
    float *mag = host_random(&r, (size_t)(T * F), 0.0f, 2.0f);
    float *phase = host_random(&r, (size_t)(T * F), -3.14159265f, 3.14159265f);
    /* the CPU side from the same bins, built as sotto_istft_frame_polar does */
    float *spec = malloc(sizeof(float) * 2 * (size_t)(T * F));
    CU_ASSERT_PTR_NOT_NULL_FATAL(spec);
    for (int64_t i = 0; i < T * F; i++) {
        spec[2 * i] = mag[i] * cosf(phase[i]);
        spec[2 * i + 1] = mag[i] * sinf(phase[i]);
    }
    const int64_t len = sotto_istft_length(s, T);
    float *want = malloc(sizeof(float) * (size_t)len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(want);
    CU_ASSERT_EQUAL(sotto_istft(s, spec, T, want, len), len);

    sotto_cuda_istft *p = NULL;
    int rc = sotto_cuda_istft_create(g_cu, n_fft, hop, sotto_istft_trim(s), sotto_stft_window(s),
                                     max_frames, &p, &st);
    report_device(rc, "istft create");
    CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_cuda_istft_length(p, T), len);
    CU_ASSERT_TRUE(sotto_cuda_istft_scratch(p) <= sotto_cuda_scratch_size(g_cu));
    float *dm = dev_from(mag, (size_t)(T * F)), *dp = dev_from(phase, (size_t)(T * F));
    float *dy = dev_nan((size_t)len);
    const int64_t got = sotto_cuda_istft_polar(g_cu, p, dm, dp, T, dy);
    report_device((int)(got < 0 ? got : 0), "istft");
    CU_ASSERT_EQUAL(got, len);
    char what[96];
    snprintf(what, sizeof what, "istft n_fft=%d hop=%d pad=%d T=%lld block=%d", n_fft, hop,
             (int)pad, (long long)T, max_frames);
    expect_close(what, dy, want, len, NMSE_ISTFT);

    sotto_cuda_free(g_cu, dm);
    sotto_cuda_free(g_cu, dp);
    sotto_cuda_free(g_cu, dy);
    sotto_cuda_istft_destroy(g_cu, p);
    sotto_stft_destroy(s);
    free(mag);
    free(phase);
    free(spec);
    free(want);
}

static void test_istft(void)
{
    istft_case(64, 16, SOTTO_STFT_PAD_CENTER, 40, 64);  /* one block */
    istft_case(64, 16, SOTTO_STFT_PAD_CENTER, 40, 7);   /* blocks of 7 frames */
    istft_case(1280, 320, SOTTO_STFT_PAD_SAME, 25, 16); /* Dasheng's decoder head */
    istft_case(1024, 256, SOTTO_STFT_PAD_CENTER, 3, 1); /* one frame per block */
    CU_ASSERT_EQUAL(sotto_cuda_error(g_cu), SOTTO_OK);
}

/* ---- transformer layers ------------------------------------------------------------------ */

/* Columns [0, cols) of rows [0, T) of a device matrix with rows ld apart, packed on the host. */
static float *download_cols(const float *d, int64_t T, int64_t ld, int64_t cols)
{
    float *full = malloc(sizeof(float) * (size_t)(T * ld));
    float *out = malloc(sizeof(float) * (size_t)(T * cols));
    CU_ASSERT_PTR_NOT_NULL_FATAL(full);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    const int rc = sotto_cuda_download(g_cu, full, d, sizeof(float) * (size_t)(T * ld));
    report_device(rc, "download");
    CU_ASSERT_EQUAL(rc, SOTTO_OK);
    for (int64_t t = 0; t < T; t++)
        memcpy(out + t * cols, full + t * ld, sizeof(float) * (size_t)cols);
    free(full);
    return out;
}

static void rope_case(sotto_rope_kind kind, int64_t pos0)
{
    const int H = 3, D = 16;
    const int64_t T = 45, ld = (int64_t)H * D + 5;
    tu_rng r = rng_for(9000u + (uint64_t)kind * 7u + (uint64_t)pos0);
    float *x = host_random(&r, (size_t)(T * ld), -1.0f, 1.0f);
    float *want = malloc(sizeof(float) * (size_t)(T * ld));
    float cs[16];
    CU_ASSERT_PTR_NOT_NULL_FATAL(want);
    memcpy(want, x, sizeof(float) * (size_t)(T * ld));
    sotto_rope cr;
    sotto_status st;
    CU_ASSERT_EQUAL_FATAL(sotto_rope_init(&cr, kind, D, 10000.0, &g_alloc, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_rope_apply(&cr, want, ld, T, H, pos0, cs), SOTTO_OK);

    sotto_cuda_rope gr;
    CU_ASSERT_EQUAL_FATAL(sotto_cuda_rope_init(g_cu, &gr, &cr, &st), SOTTO_OK);
    float *dx = dev_from(x, (size_t)(T * ld));
    CU_ASSERT_EQUAL(sotto_cuda_rope_apply(g_cu, &gr, dx, ld, T, H, pos0), SOTTO_OK);
    char what[96];
    snprintf(what, sizeof what, "rope kind=%d T=%lld H=%d D=%d pos0=%lld", (int)kind, (long long)T,
             H, D, (long long)pos0);
    expect_close(what, dx, want, T * ld, NMSE_ROPE); /* the pad columns must stay as they were */

    sotto_cuda_free(g_cu, dx);
    sotto_cuda_rope_free(g_cu, &gr);
    sotto_rope_free(&cr, &g_alloc);
    free(x);
    free(want);
}

static void test_rope(void)
{
    rope_case(SOTTO_ROPE_INTERLEAVED, 0); /* Mimi, FlexiCodec */
    rope_case(SOTTO_ROPE_INTERLEAVED, 5000);
    rope_case(SOTTO_ROPE_HALF, 0); /* Llama */
    rope_case(SOTTO_ROPE_HALF, 123);
    rope_case(SOTTO_ROPE_NONE, 7); /* leaves x alone */
    sotto_cuda_rope gr = {.kind = 1, .head_dim = 16, .freq = NULL};
    CU_ASSERT_EQUAL(sotto_cuda_rope_apply(g_cu, &gr, NULL, 8, 1, 1, 0), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_cuda_error(g_cu), SOTTO_OK);
}

/* o[t][h·D + i] of multi-head attention under nn/attn.h's masks, in double. */
static void attention_ref(const float *qkv, int64_t ld, int64_t T, int H, int D, int causal, int W,
                          float *o)
{
    const int64_t d = (int64_t)H * D;
    double *p = malloc(sizeof(double) * (size_t)T);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    for (int h = 0; h < H; h++)
        for (int64_t t = 0; t < T; t++) {
            double mx = -INFINITY, sum = 0.0;
            for (int64_t s = 0; s < T; s++) {
                const int ok = (W <= 0 || t - s < W) && (causal ? s <= t : W <= 0 || s - t < W);
                double dot = 0.0;
                for (int i = 0; i < D; i++)
                    dot += (double)qkv[t * ld + h * D + i] * qkv[s * ld + d + h * D + i];
                p[s] = ok ? dot / sqrt((double)D) : -INFINITY;
                if (p[s] > mx) mx = p[s];
            }
            for (int64_t s = 0; s < T; s++)
                sum += p[s] = exp(p[s] - mx);
            for (int i = 0; i < D; i++) {
                double acc = 0.0;
                for (int64_t s = 0; s < T; s++)
                    acc += p[s] / sum * qkv[s * ld + 2 * d + h * D + i];
                o[t * d + h * D + i] = (float)acc;
            }
        }
    free(p);
}

/* squeeze: leave only this many bytes of scratch free (0: all of it), to force query blocks */
static void attention_case(int64_t T, int H, int D, int causal, int W, size_t squeeze)
{
    const int64_t d = (int64_t)H * D, ld = 3 * d + 3, ldo = d + 2;
    tu_rng r = rng_for(10000u + (uint64_t)T * 31u + (uint64_t)causal * 7u + (uint64_t)W);
    float *qkv = host_random(&r, (size_t)(T * ld), -2.0f, 2.0f);
    float *want = malloc(sizeof(float) * (size_t)(T * d));
    CU_ASSERT_PTR_NOT_NULL_FATAL(want);
    attention_ref(qkv, ld, T, H, D, causal, W, want);

    float *dq = dev_from(qkv, (size_t)(T * ld)), *dout = dev_nan((size_t)(T * ldo));
    if (squeeze) {
        void *hog;
        CU_ASSERT_EQUAL_FATAL(
            sotto_cuda_scratch_alloc(g_cu, sotto_cuda_scratch_size(g_cu) - squeeze - 256, &hog),
            SOTTO_OK);
    }
    const size_t used = sotto_cuda_scratch_used(g_cu);
    const int rc =
        sotto_cuda_attention(g_cu, dq, dq + d, dq + 2 * d, ld, T, H, D, causal, W, dout, ldo);
    report_device(rc, "attention");
    CU_ASSERT_EQUAL(rc, SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_cuda_scratch_used(g_cu), used); /* temporaries given back */
    sotto_cuda_scratch_reset(g_cu);

    float *got = download_cols(dout, T, ldo, d);
    char what[128];
    snprintf(what, sizeof what, "attention T=%lld H=%d D=%d causal=%d window=%d%s", (long long)T, H,
             D, causal, W, squeeze ? " (query blocks)" : "");
    TU_ASSERT_CLOSE(what, got, want, T * d, -1.0, NMSE_ATTN);

    sotto_cuda_free(g_cu, dq);
    sotto_cuda_free(g_cu, dout);
    free(qkv);
    free(want);
    free(got);
}

static void test_attention(void)
{
    attention_case(50, 4, 16, 0, 0, 0);  /* full (FlexiCodec's bottleneck) */
    attention_case(50, 4, 16, 1, 0, 0);  /* causal */
    attention_case(50, 4, 16, 1, 16, 0); /* causal, window 16 (Mimi streaming) */
    attention_case(50, 4, 16, 0, 5, 0);  /* local window both ways */
    attention_case(1, 2, 8, 0, 0, 0);    /* one frame */
    /* scores of 3 queries fit: blocks of 3 (or fewer) queries against their key ranges */
    attention_case(300, 2, 8, 0, 0, 2 * 3 * 300 * sizeof(float) + 256);
    attention_case(300, 2, 8, 1, 0, 2 * 3 * 300 * sizeof(float) + 256);
    attention_case(300, 2, 8, 0, 9, 2 * 3 * (3 + 16) * sizeof(float) + 256);
    /* a bad row stride is refused and does not fail the context */
    float *d = dev_nan(64);
    CU_ASSERT_EQUAL(sotto_cuda_attention(g_cu, d, d, d, 7, 2, 2, 4, 0, 0, d, 8),
                    SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_cuda_attention(g_cu, NULL, NULL, NULL, 8, 0, 2, 4, 0, 0, NULL, 8),
                    SOTTO_OK);
    sotto_cuda_free(g_cu, d);
    CU_ASSERT_EQUAL(sotto_cuda_error(g_cu), SOTTO_OK);
}

static void test_residual(void)
{
    tu_rng r = rng_for(11000u);
    const int64_t T = 77;
    const int C = 40;
    const size_t n = (size_t)(T * C);
    float *x = host_random(&r, n, -2.0f, 2.0f), *a = host_random(&r, n, -2.0f, 2.0f);
    float *ls = host_random(&r, (size_t)C, -0.3f, 0.3f);
    float *want = malloc(sizeof(float) * n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(want);
    float *dx = dev_from(x, n), *da = dev_from(a, n), *dl = dev_from(ls, (size_t)C);
    float *dy = dev_nan(n);
    for (size_t i = 0; i < n; i++)
        want[i] = x[i] + ls[i % C] * a[i];
    CU_ASSERT_EQUAL(sotto_cuda_residual(g_cu, dx, da, dl, T, C, dy), SOTTO_OK);
    expect_close("residual with LayerScale", dy, want, (int64_t)n, NMSE_ELEM);
    for (size_t i = 0; i < n; i++)
        want[i] = x[i] + a[i];
    CU_ASSERT_EQUAL(sotto_cuda_residual(g_cu, dx, da, NULL, T, C, dx), SOTTO_OK); /* in place */
    expect_close("residual in place", dx, want, (int64_t)n, NMSE_ELEM);
    sotto_cuda_free(g_cu, dx);
    sotto_cuda_free(g_cu, da);
    sotto_cuda_free(g_cu, dl);
    sotto_cuda_free(g_cu, dy);
    free(x);
    free(a);
    free(ls);
    free(want);
}

/* Random weights of a layer; which optional tensors exist follows the flags. */
typedef struct tl_weights {
    float *v[20];
    int n;
    sotto_tlayer_f32 w;
} tl_weights;

static float *tl_rand(tl_weights *t, tu_rng *r, int64_t n, float lo, float hi)
{
    float *p = host_random(r, (size_t)n, lo, hi);
    t->v[t->n++] = p;
    return p;
}

static void tl_make(tl_weights *t, tu_rng *r, const sotto_tlayer_cfg *c, int norm_affine,
                    int biases, int scales)
{
    const int64_t d = c->dim, f = c->ffn_dim;
    const float wd = 1.0f / sqrtf((float)d), wf = 1.0f / sqrtf((float)f);
    memset(t, 0, sizeof *t);
    t->w.qkv_w = tl_rand(t, r, 3 * d * d, -wd, wd);
    t->w.out_w = tl_rand(t, r, d * d, -wd, wd);
    t->w.ff1_w = tl_rand(t, r, f * d, -wd, wd);
    t->w.ff2_w = tl_rand(t, r, d * f, -wf, wf);
    if (norm_affine) {
        t->w.norm1_w = tl_rand(t, r, d, 0.5f, 1.5f);
        t->w.norm2_w = tl_rand(t, r, d, 0.5f, 1.5f);
        if (c->norm == SOTTO_NORM_LAYER) {
            t->w.norm1_b = tl_rand(t, r, d, -0.2f, 0.2f);
            t->w.norm2_b = tl_rand(t, r, d, -0.2f, 0.2f);
        }
    }
    if (biases) {
        t->w.qkv_b = tl_rand(t, r, 3 * d, -0.1f, 0.1f);
        t->w.out_b = tl_rand(t, r, d, -0.1f, 0.1f);
        t->w.ff1_b = tl_rand(t, r, f, -0.1f, 0.1f);
        t->w.ff2_b = tl_rand(t, r, d, -0.1f, 0.1f);
    }
    if (scales) {
        t->w.ls1 = tl_rand(t, r, d, 0.05f, 0.3f);
        t->w.ls2 = tl_rand(t, r, d, -0.3f, -0.05f);
    }
}

static void tl_free(tl_weights *t)
{
    for (int i = 0; i < t->n; i++)
        free(t->v[i]);
}

/*
 * A layer on both backends: forward (out of place, in place, squeezed pool), and the two
 * sublayers. h16: the device layer is made from the CPU layer switched to binary16
 * (sotto_linear_w_use_h16), the reference stays the f16-panel layer (same values, f32
 * arithmetic). squeeze: bytes of the pool left free besides the scores of 2 queries.
 */
static void tlayer_case(const char *name, const sotto_tlayer_cfg *cfg, int norm_affine, int biases,
                        int scales, int64_t T, int64_t pos0, int h16)
{
    tu_rng r = rng_for(12000u + (uint64_t)T * 13u + (uint64_t)cfg->dim * 3u + (uint64_t)h16);
    tl_weights tw;
    tl_make(&tw, &r, cfg, norm_affine, biases, scales);
    sotto_status st;
    sotto_tlayer cl, hl;
    CU_ASSERT_EQUAL_FATAL(sotto_tlayer_init_f32(&cl, cfg, &tw.w, &g_alloc, &st), SOTTO_OK);
    const sotto_tlayer *src = &cl;
    if (h16) {
        CU_ASSERT_EQUAL_FATAL(sotto_tlayer_init_f32(&hl, cfg, &tw.w, &g_alloc, &st), SOTTO_OK);
        CU_ASSERT_EQUAL_FATAL(sotto_linear_w_use_h16(&hl.qkv, &g_alloc, &st), SOTTO_OK);
        CU_ASSERT_EQUAL_FATAL(sotto_linear_w_use_h16(&hl.out, &g_alloc, &st), SOTTO_OK);
        CU_ASSERT_EQUAL_FATAL(sotto_linear_w_use_h16(&hl.ff1, &g_alloc, &st), SOTTO_OK);
        CU_ASSERT_EQUAL_FATAL(sotto_linear_w_use_h16(&hl.ff2, &g_alloc, &st), SOTTO_OK);
        CU_ASSERT_PTR_NOT_NULL_FATAL(hl.qkv.h16);
        src = &hl;
    }
    const int64_t d = cfg->dim, n = T * d;
    float *x = host_random(&r, (size_t)n, -2.0f, 2.0f);
    float *want = malloc(sizeof(float) * (size_t)n), *want_a = malloc(sizeof(float) * (size_t)n);
    float *want_f = malloc(sizeof(float) * (size_t)n);
    float *scratch = malloc(sizeof(float) * sotto_tlayer_scratch_size(&cl, T));
    CU_ASSERT_TRUE_FATAL(want && want_a && want_f && scratch);
    CU_ASSERT_EQUAL(sotto_tlayer_forward(&g_cpu, &cl, x, T, pos0, want, scratch), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_tlayer_self_attn(&g_cpu, &cl, NULL, x, T, pos0, want_a, scratch),
                    SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_tlayer_ffn(&g_cpu, &cl, x, T, want_f, scratch), SOTTO_OK);

    sotto_cuda_tlayer gl;
    int rc = sotto_cuda_tlayer_init(g_cu, &gl, src, &st);
    if (rc) fprintf(stderr, "tlayer init: %s\n", st.message);
    CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
    const size_t need = sotto_cuda_tlayer_scratch(&gl, T);
    CU_ASSERT_TRUE(need > 0 && need <= sotto_cuda_scratch_size(g_cu));
    float *dx = dev_from(x, (size_t)n), *dy = dev_nan((size_t)n);
    char what[160];

    size_t used = sotto_cuda_scratch_used(g_cu);
    rc = sotto_cuda_tlayer_forward(g_cu, &gl, dx, T, pos0, dy);
    report_device(rc, "tlayer forward");
    CU_ASSERT_EQUAL(rc, SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_cuda_scratch_used(g_cu), used); /* temporaries given back */
    snprintf(what, sizeof what, "tlayer %s T=%lld pos0=%lld", name, (long long)T, (long long)pos0);
    expect_close(what, dy, want, n, NMSE_ATTN);

    CU_ASSERT_EQUAL(sotto_cuda_tlayer_self_attn(g_cu, &gl, dx, T, pos0, dy), SOTTO_OK);
    snprintf(what, sizeof what, "tlayer %s self_attn", name);
    expect_close(what, dy, want_a, n, NMSE_ATTN);
    CU_ASSERT_EQUAL(sotto_cuda_tlayer_ffn(g_cu, &gl, dx, T, dy), SOTTO_OK);
    snprintf(what, sizeof what, "tlayer %s ffn", name);
    expect_close(what, dy, want_f, n, NMSE_ATTN);

    /* the pool squeezed to the layer's other temporaries and the scores of 2 queries */
    const size_t scores = sotto_cuda_attention_scratch(T, cfg->n_heads, cfg->causal, cfg->window);
    const int64_t mb = T < SOTTO_CUDA_ATTN_QBLOCK ? T : SOTTO_CUDA_ATTN_QBLOCK;
    const size_t keep = need - scores + (scores - 256) / (size_t)mb * 2 + 256;
    void *hog;
    CU_ASSERT_EQUAL_FATAL(
        sotto_cuda_scratch_alloc(g_cu, sotto_cuda_scratch_size(g_cu) - keep - 256, &hog), SOTTO_OK);
    used = sotto_cuda_scratch_used(g_cu);
    CU_ASSERT_EQUAL(sotto_cuda_tlayer_forward(g_cu, &gl, dx, T, pos0, dx), SOTTO_OK); /* in place */
    CU_ASSERT_EQUAL(sotto_cuda_scratch_used(g_cu), used);
    sotto_cuda_scratch_reset(g_cu);
    report_device(sotto_cuda_error(g_cu), "tlayer forward, short pool");
    snprintf(what, sizeof what, "tlayer %s in place, query blocks", name);
    expect_close(what, dx, want, n, NMSE_ATTN);

    /* overlapping x and y are refused and do not fail the context */
    CU_ASSERT_EQUAL(sotto_cuda_tlayer_forward(g_cu, &gl, dx, T, pos0, dx + 1),
                    SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_cuda_error(g_cu), SOTTO_OK);

    sotto_cuda_free(g_cu, dx);
    sotto_cuda_free(g_cu, dy);
    sotto_cuda_tlayer_free(g_cu, &gl);
    sotto_tlayer_free(&cl, &g_alloc);
    if (h16) sotto_tlayer_free(&hl, &g_alloc);
    tl_free(&tw);
    free(x);
    free(want);
    free(want_a);
    free(want_f);
    free(scratch);
}

static void test_tlayer(void)
{
    /* FlexiCodec's bottleneck layer (Mimi): LayerNorm, GELU, interleaved RoPE, LayerScale,
     * no biases, full attention */
    sotto_tlayer_cfg c = sotto_tlayer_cfg_default(64, 4, 128);
    c.rope = SOTTO_ROPE_INTERLEAVED;
    c.rope_theta = 10000.0f;
    tlayer_case("mimi", &c, 1, 0, 1, 37, 0, 0);
    /* causal with a window of 16 (the streaming Mimi setting), from position 3 */
    c.causal = 1;
    c.window = 16;
    tlayer_case("mimi causal window 16", &c, 1, 0, 1, 40, 3, 0);
    /* f16 weights (keep_f16 panels), then the same layer in the binary16 layout */
    c.causal = 0;
    c.window = 0;
    c.keep_f16 = 1;
    tlayer_case("mimi f16 panels", &c, 1, 0, 1, 37, 0, 0);
    tlayer_case("mimi binary16 layout", &c, 1, 0, 1, 37, 0, 1);
    /* RMSNorm, half-split RoPE, SiLU, every bias, a local window both ways, no LayerScale */
    sotto_tlayer_cfg e = sotto_tlayer_cfg_default(48, 3, 96);
    e.norm = SOTTO_NORM_RMS;
    e.norm_eps = 1e-6f;
    e.act = SOTTO_ACT_SILU;
    e.rope = SOTTO_ROPE_HALF;
    e.rope_theta = 500.0f;
    e.window = 5;
    tlayer_case("rms half-rope silu window 5", &e, 1, 1, 0, 33, 7, 0);
    /* no RoPE, no norm affine, ReLU and the tanh GELU */
    sotto_tlayer_cfg g = sotto_tlayer_cfg_default(32, 2, 64);
    g.act = SOTTO_ACT_RELU;
    tlayer_case("plain relu", &g, 0, 1, 0, 20, 0, 0);
    g.act = SOTTO_ACT_GELU_TANH;
    tlayer_case("plain gelu tanh", &g, 0, 0, 0, 300, 0, 0);
    CU_ASSERT_EQUAL(sotto_cuda_error(g_cu), SOTTO_OK);
}

/* ---- errors ------------------------------------------------------------------------------- */

static void test_errors(void)
{
    sotto_status st;
    sotto_cuda *cu = NULL;
    /* no such device */
    CU_ASSERT_EQUAL(sotto_cuda_create(&cu, 1 << 20, 0, &st), SOTTO_ERR_DEVICE);
    CU_ASSERT_PTR_NULL(cu);
    CU_ASSERT_EQUAL(sotto_cuda_create(NULL, 0, 0, &st), SOTTO_ERR_INVALID_ARG);

    /* a scratch request beyond the pool fails the context, and it then refuses everything */
    CU_ASSERT_EQUAL_FATAL(sotto_cuda_create(&cu, 0, (size_t)1 << 20, &st), SOTTO_OK);
    void *d = NULL, *s = NULL;
    CU_ASSERT_EQUAL_FATAL(sotto_cuda_alloc(cu, 4096, &d), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_cuda_silu(cu, NULL, 4, NULL), SOTTO_ERR_INVALID_ARG); /* not sticky */
    CU_ASSERT_EQUAL(sotto_cuda_error(cu), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_cuda_scratch_alloc(cu, (size_t)1 << 19, &s), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_cuda_scratch_alloc(cu, (size_t)1 << 20, &s), SOTTO_ERR_OUT_OF_MEMORY);
    CU_ASSERT_PTR_NULL(s);
    CU_ASSERT_EQUAL(sotto_cuda_error(cu), SOTTO_ERR_OUT_OF_MEMORY);
    fprintf(stderr, "failed context says: %s\n", sotto_cuda_error_message(cu));
    CU_ASSERT_TRUE(strlen(sotto_cuda_error_message(cu)) > 0);
    CU_ASSERT_EQUAL(sotto_cuda_silu(cu, d, 4, d), SOTTO_ERR_OUT_OF_MEMORY);
    CU_ASSERT_EQUAL(sotto_cuda_layernorm(cu, d, 1, 4, NULL, NULL, 1e-5f, d),
                    SOTTO_ERR_OUT_OF_MEMORY);
    CU_ASSERT_EQUAL(sotto_cuda_memset0(cu, d, 16), SOTTO_ERR_OUT_OF_MEMORY);
    CU_ASSERT_EQUAL(sotto_cuda_sync(cu), SOTTO_ERR_OUT_OF_MEMORY);
    CU_ASSERT_EQUAL(sotto_cuda_scratch_alloc(cu, 16, &s), SOTTO_ERR_OUT_OF_MEMORY);
    sotto_cuda_scratch_reset(cu);
    CU_ASSERT_EQUAL(sotto_cuda_scratch_alloc(cu, 16, &s), SOTTO_ERR_OUT_OF_MEMORY);
    sotto_cuda_free(cu, d);
    sotto_cuda_destroy(cu);

    /* a runtime failure (an allocation no device can satisfy) is SOTTO_ERR_DEVICE, sticky */
    cu = NULL;
    CU_ASSERT_EQUAL_FATAL(sotto_cuda_create(&cu, 0, 0, &st), SOTTO_OK);
    d = NULL;
    CU_ASSERT_EQUAL(sotto_cuda_alloc(cu, (size_t)1 << 62, &d), SOTTO_ERR_DEVICE);
    CU_ASSERT_PTR_NULL(d);
    fprintf(stderr, "failed context says: %s\n", sotto_cuda_error_message(cu));
    CU_ASSERT_TRUE(strstr(sotto_cuda_error_message(cu), "cudaMalloc") != NULL);
    CU_ASSERT_EQUAL(sotto_cuda_alloc(cu, 16, &d), SOTTO_ERR_DEVICE);
    CU_ASSERT_EQUAL(sotto_cuda_sync(cu), SOTTO_ERR_DEVICE);
    sotto_cuda_linear_w lw;
    const float W[4] = {1, 2, 3, 4};
    CU_ASSERT_EQUAL(sotto_cuda_linear_w_init(cu, &lw, W, 2, 2, &st), SOTTO_ERR_DEVICE);
    sotto_cuda_destroy(cu);
    sotto_cuda_destroy(NULL);
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
    g_seed = tu_seed();
    sotto_alloc_init(&g_alloc, NULL);
    sotto_cpu_init(&g_cpu, sotto_cpu_features(), NULL);
    sotto_status st;
    if (sotto_cuda_create(&g_cu, 0, SCRATCH_BYTES, &st) != SOTTO_OK) {
        fprintf(stderr, "cuda context: %s\n", st.message);
        return 1;
    }
    static const tu_test tests[] = {{"linear", test_linear},
                                    {"conv1d", test_conv1d},
                                    {"convtr1d", test_convtr1d},
                                    {"linear_bf16", test_linear_bf16},
                                    {"conv1d_bf16", test_conv1d_bf16},
                                    {"convtr1d_bf16", test_convtr1d_bf16},
                                    {"norms", test_norms},
                                    {"activations", test_activations},
                                    {"snake_softmax", test_snake_softmax},
                                    {"embedding", test_embedding},
                                    {"istft", test_istft},
                                    {"rope", test_rope},
                                    {"attention", test_attention},
                                    {"residual", test_residual},
                                    {"tlayer", test_tlayer},
                                    {"errors", test_errors},
                                    {NULL, NULL}};
    const int rc = tu_run_suite("cuda_ops", tests);
    sotto_cuda_destroy(g_cu);
    return rc;
#endif
}
