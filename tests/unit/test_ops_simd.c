/*
 * Every SIMD kernel of the CPU table against its scalar reference on seeded random data, with
 * odd sizes so vector tails are exercised (on an AVX-512 CPU every kernel of both the full
 * table, AVX-512 where it has a variant, and the AVX2 table), plus the feature-mask plumbing:
 * a mask of 0 must give the scalar table, and layers run through it must agree with the SIMD
 * ones. Tolerances (stated per test): GEMM and depthwise conv |Δ| ≤ 1e-6·(K + 1) on
 * unit-scale data (pure summation-order differences); norms 2e-6 absolute on normalised
 * outputs; transcendental activations |Δ| ≤ 1e-6·|ref| + 1e-7 (the "1e-6 relative of libm"
 * budget, with a floor near zero); f16 conversions bit-exact. On a CPU without AVX2/FMA the
 * SIMD comparisons are skipped (and say so) while the scalar-path tests still run.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu.h"
#include "nn/ops.h"
#include "testutil.h"

static sotto_cpu_kernels g_ref, g_simd, g_avx2;
static int g_have_simd, g_have_avx512;

static void setup(void)
{
    sotto_cpu c;
    sotto_cpu_init(&c, ~0u, NULL);
    g_simd = c.k;
    sotto_cpu_kernels_ref(&g_ref);
    g_have_simd = (c.features & (SOTTO_CPU_AVX2 | SOTTO_CPU_FMA)) != 0;
    g_have_avx512 = (c.features & SOTTO_CPU_AVX512) != 0;
    /* the AVX2 table as a CPU without AVX-512 gets it: every kernel of it is checked too */
    sotto_cpu_init(&c, SOTTO_CPU_AVX2 | SOTTO_CPU_FMA | SOTTO_CPU_F16C, NULL);
    g_avx2 = c.k;
    if (!g_have_simd) printf("  (no AVX2/FMA on this CPU: SIMD comparisons skipped)\n");
}

/* The SIMD tables under test: the full one, and on an AVX-512 CPU the AVX2 one as well. */
static int n_tables(void)
{
    return g_have_avx512 ? 2 : 1;
}

static const sotto_cpu_kernels *table(int t)
{
    return t ? &g_avx2 : &g_simd;
}

static float *fvec(size_t n)
{
    float *p = malloc(sizeof(float) * (n ? n : 1));
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    return p;
}

/* |got − want| ≤ rel·|want| + abs for all i; prints the worst case. */
static int check_rel(const char *what, const float *got, const float *want, int64_t n, double rel,
                     double abs_tol, const float *input)
{
    double worst = 0.0;
    int64_t wi = -1;
    for (int64_t i = 0; i < n; i++) {
        const double d = fabs((double)got[i] - (double)want[i]);
        const double lim = rel * fabs((double)want[i]) + abs_tol;
        if (!(d <= lim) && !(isnan(got[i]) && isnan(want[i])) &&
            !(isinf(got[i]) && got[i] == want[i])) {
            printf("  %s: FAIL at %lld: got %.9g want %.9g (input %.9g)\n", what, (long long)i,
                   got[i], want[i], input ? input[i] : 0.0f);
            return 0;
        }
        if (d / (lim > 0 ? lim : 1) > worst) {
            worst = d / (lim > 0 ? lim : 1);
            wi = i;
        }
    }
    printf("  %s: n=%lld worst %.3f of budget (at %lld)\n", what, (long long)n, worst,
           (long long)wi);
    return 1;
}

/* ---- GEMM ------------------------------------------------------------------------------- */

static void gemm_case(const sotto_cpu_kernels *simd, tu_rng *r, int M, int K, int N, int n0,
                      int acc, int with_bias, int f16)
{
    const int ld = (N + 15) & ~15;
    const int64_t ldx = K + 3, ldy = N + 5; /* strided rows on purpose */
    float *x = fvec((size_t)M * ldx), *w = fvec((size_t)K * ld), *b = fvec(N);
    float *y1 = fvec((size_t)M * ldy), *y2 = fvec((size_t)M * ldy);
    /* f16 weights are panel-major (backend.h): 32-column panels of K rows */
    const int P = SOTTO_F16_PANEL, ld16 = (N + P - 1) / P * P;
    const int64_t pstride = (int64_t)K * P;
    uint16_t *w16 = calloc((size_t)K * ld16, sizeof(uint16_t));
    tu_fill_uniform(r, x, (size_t)M * ldx, -1.0f, 1.0f);
    tu_fill_uniform(r, b, N, -1.0f, 1.0f);
    for (int k = 0; k < K; k++)
        for (int n = 0; n < ld; n++) {
            float v = n < N ? tu_rng_uniform(r, -1.0f, 1.0f) : 0.0f;
            w[(int64_t)k * ld + n] = v;
            if (n < N) w16[(n / P) * pstride + (int64_t)k * P + n % P] = sotto_f32_to_f16(v);
        }
    tu_fill_uniform(r, y1, (size_t)M * ldy, -1.0f, 1.0f);
    memcpy(y2, y1, sizeof(float) * (size_t)M * ldy);
    const float *bias = with_bias ? b : NULL;
    if (f16) {
        g_ref.gemm_f16(M, K, n0, N, x, ldx, w16, pstride, bias, y1, ldy, acc);
        simd->gemm_f16(M, K, n0, N, x, ldx, w16, pstride, bias, y2, ldy, acc);
    } else {
        g_ref.gemm_f32(M, K, n0, N, x, ldx, w, ld, bias, y1, ldy, acc);
        simd->gemm_f32(M, K, n0, N, x, ldx, w, ld, bias, y2, ldy, acc);
    }
    /* Compares whole rows, so columns outside [n0, N) and the row padding must be untouched */
    char what[96];
    snprintf(what, sizeof what, "%s gemm_%s M=%d K=%d N=%d n0=%d acc=%d bias=%d", simd->name,
             f16 ? "f16" : "f32", M, K, N, n0, acc, with_bias);
    tu_diff d = tu_compare(y2, y1, (int64_t)M * ldy);
    if (d.max_abs > 1e-6 * (K + 1)) {
        printf("  %s: max_abs %.3g at %lld\n", what, d.max_abs, (long long)d.argmax);
        CU_FAIL("gemm mismatch");
    }
    free(x);
    free(w);
    free(b);
    free(y1);
    free(y2);
    free(w16);
}

static void test_gemm(void)
{
    if (!g_have_simd) return;
    tu_rng r;
    tu_rng_init(&r, tu_seed());
    /* rows around the tile heights (AVX2 6, AVX-512 8, remainders 4/2/1), K across the 256
     * slice, columns around the 16/32/64-column tiles and a split start n0 = 16 */
    const int Ms[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 13, 15, 16, 17, 23};
    const int Ks[] = {1, 2, 37, 130, 300};
    const int Ns[] = {1, 7, 16, 17, 31, 33, 48, 65, 100};
    int cases = 0;
    for (int t = 0; t < n_tables(); t++)
        for (size_t a = 0; a < SOTTO_ARRAY_LEN(Ms); a++)
            for (size_t b = 0; b < SOTTO_ARRAY_LEN(Ks); b++)
                for (size_t c = 0; c < SOTTO_ARRAY_LEN(Ns); c++)
                    for (int f16 = 0; f16 < 2; f16++) {
                        const int N = Ns[c];
                        gemm_case(table(t), &r, Ms[a], Ks[b], N, 0, (a + c) & 1, (b + c) & 1, f16);
                        if (N > 16)
                            gemm_case(table(t), &r, Ms[a], Ks[b], N, 16, (a + b) & 1, 1, f16);
                        cases++;
                    }
    printf("  gemm: %d shapes, f32 and f16, %s%s, |Δ| ≤ 1e-6·(K+1)\n", cases, g_simd.name,
           g_have_avx512 ? " and avx2" : "");
}

/* ---- binary16-arithmetic GEMM ------------------------------------------------------------
 * gemm_h16 (backend.h) on pair-packed weights, written here from the layout contract. The
 * AVX512-FP16 kernel computes the same roundings in the same order as the scalar reference,
 * so the two must agree bit for bit; the reference itself is checked against f64 products of
 * the unrounded data: every output within 1e-2·(sqrt(Σ_k (x_k·w_k)²) + 1e-4·(1 + |y|)) (the
 * spread of its terms, with the f32 rounding of y and the bias as a floor; binary16 rounds x
 * and w to 2^-11 relative each and the runs of SOTTO_H16_GROUP sums; measured worst about
 * 5e-3), and NMSE ≤ 1e-5 over each case of 64 outputs or more (measured about 1e-6). */

/* w[K][N] into pair-packed binary16 panels of stride pstride (the layout contract of
 * gemm_h16 in backend.h, written here independently of the library's packer). */
static void pack_pairs(const float *w, int K, int N, int64_t pstride, uint16_t *wh)
{
    const int P = SOTTO_F16_PANEL;
    for (int k = 0; k < K; k++)
        for (int n = 0; n < N; n++)
            wh[(n / P) * pstride + (int64_t)(k / 2) * 64 + ((n % P) / 16) * 32 + (n % 16) * 2 +
               k % 2] = sotto_f32_to_f16(w[(int64_t)k * N + n]);
}

static void h16_case(tu_rng *r, int M, int K, int N, int n0, int acc, int with_bias,
                     const sotto_cpu_kernels *simd, double *nmse_worst, double *err_worst)
{
    const int P = SOTTO_F16_PANEL, Kp = (K + 1) & ~1, np = (N + P - 1) / P;
    const int64_t ldx = K + 3, ldy = N + 5, pstride = (int64_t)Kp * P + 64; /* padded on purpose */
    float *x = fvec((size_t)M * ldx), *w = fvec((size_t)K * N), *b = fvec(N);
    float *y0 = fvec((size_t)M * ldy), *y1 = fvec((size_t)M * ldy), *y2 = fvec((size_t)M * ldy);
    uint16_t *wh = calloc((size_t)np * pstride, sizeof(uint16_t));
    CU_ASSERT_PTR_NOT_NULL_FATAL(wh);
    tu_fill_uniform(r, x, (size_t)M * ldx, -1.0f, 1.0f);
    tu_fill_uniform(r, w, (size_t)K * N, -1.0f, 1.0f);
    tu_fill_uniform(r, b, N, -1.0f, 1.0f);
    pack_pairs(w, K, N, pstride, wh);
    tu_fill_uniform(r, y1, (size_t)M * ldy, -1.0f, 1.0f);
    memcpy(y0, y1, sizeof(float) * (size_t)M * ldy);
    memcpy(y2, y1, sizeof(float) * (size_t)M * ldy);
    const float *bias = with_bias ? b : NULL;
    g_ref.gemm_h16(M, K, K, 0, n0, N, x, ldx, wh, pstride, bias, y1, ldy, acc);
    /* the exact result in f64, written into the same untouched frame as y0 */
    double worst = 0.0;
    for (int m = 0; m < M; m++)
        for (int n = n0; n < N; n++) {
            double s = (acc ? y0[m * ldy + n] : 0.0) + (bias ? bias[n] : 0.0), q = 0.0;
            for (int k = 0; k < K; k++) {
                const double p = (double)x[m * ldx + k] * w[(int64_t)k * N + n];
                s += p;
                q += p * p;
            }
            y0[m * ldy + n] = (float)s;
            const double e = fabs((double)y1[m * ldy + n] - s) / (sqrt(q) + 1e-4 * (1.0 + fabs(s)));
            if (e > worst) worst = e;
        }
    char what[96];
    snprintf(what, sizeof what, "gemm_h16 M=%d K=%d N=%d n0=%d acc=%d bias=%d", M, K, N, n0, acc,
             with_bias);
    tu_diff d = tu_compare(y1, y0, (int64_t)M * ldy);
    if (M * (N - n0) >= 64 && d.nmse > *nmse_worst) *nmse_worst = d.nmse;
    if (worst > *err_worst) *err_worst = worst;
    if ((M * (N - n0) >= 64 && d.nmse > 1e-5) || worst > 1e-2) {
        printf("  %s (reference vs f64): max_abs %.3g nmse %.3g, |Δ|/scale %.3g\n", what, d.max_abs,
               d.nmse, worst);
        CU_FAIL("gemm_h16 reference outside its accuracy budget");
    }
    if (simd) {
        simd->gemm_h16(M, K, K, 0, n0, N, x, ldx, wh, pstride, bias, y2, ldy, acc);
        d = tu_compare(y2, y1, (int64_t)M * ldy);
        if (d.max_abs != 0.0) {
            printf("  %s (%s vs reference): max_abs %.3g at %lld\n", what, simd->name, d.max_abs,
                   (long long)d.argmax);
            CU_FAIL("gemm_h16 kernel differs from the reference");
        }
    }
    free(x);
    free(w);
    free(b);
    free(y0);
    free(y1);
    free(y2);
    free(wh);
}

/* Rows gathered from taps (a dilated conv's K = taps·seg in one product, backend.h): kernel
 * and reference bit for bit, and the reference against f64 (NMSE ≤ 1e-5). */
static void h16_taps_case(tu_rng *r, int M, int taps, int seg, int N, const sotto_cpu_kernels *simd)
{
    const int P = SOTTO_F16_PANEL, K = taps * seg, Kp = (K + 1) & ~1, np = (N + P - 1) / P;
    const int64_t tap_step = 3 * (int64_t)seg + 2, ldx = seg + 7;
    const int64_t xlen = (M - 1) * ldx + (taps - 1) * tap_step + seg, pstride = (int64_t)Kp * P;
    float *x = fvec((size_t)xlen), *w = fvec((size_t)K * N), *y0 = fvec((size_t)M * N),
          *y1 = fvec((size_t)M * N), *y2 = fvec((size_t)M * N);
    uint16_t *wh = calloc((size_t)np * pstride, sizeof(uint16_t));
    CU_ASSERT_PTR_NOT_NULL_FATAL(wh);
    tu_fill_uniform(r, x, (size_t)xlen, -1.0f, 1.0f);
    tu_fill_uniform(r, w, (size_t)K * N, -1.0f, 1.0f);
    pack_pairs(w, K, N, pstride, wh);
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double acc = 0.0;
            for (int k = 0; k < K; k++)
                acc += (double)x[m * ldx + (k / seg) * tap_step + k % seg] * w[(int64_t)k * N + n];
            y0[m * N + n] = (float)acc;
        }
    g_ref.gemm_h16(M, K, seg, tap_step, 0, N, x, ldx, wh, pstride, NULL, y1, N, 0);
    tu_diff d = tu_compare(y1, y0, (int64_t)M * N);
    if (d.nmse > 1e-5) {
        printf("  gemm_h16 taps M=%d taps=%d seg=%d N=%d: reference vs f64 nmse %.3g\n", M, taps,
               seg, N, d.nmse);
        CU_FAIL("gemm_h16 (taps) reference outside its accuracy budget");
    }
    if (simd) {
        simd->gemm_h16(M, K, seg, tap_step, 0, N, x, ldx, wh, pstride, NULL, y2, N, 0);
        d = tu_compare(y2, y1, (int64_t)M * N);
        if (d.max_abs != 0.0) {
            printf("  gemm_h16 taps M=%d taps=%d seg=%d N=%d: kernel vs reference %.3g\n", M, taps,
                   seg, N, d.max_abs);
            CU_FAIL("gemm_h16 (taps) kernel differs from the reference");
        }
    }
    free(x);
    free(w);
    free(y0);
    free(y1);
    free(y2);
    free(wh);
}

static void test_gemm_h16(void)
{
    sotto_cpu c;
    sotto_cpu_init(&c, ~0u, NULL);
    const sotto_cpu_kernels *simd = (c.features & SOTTO_CPU_AVX512FP16) ? &c.k : NULL;
    if (!simd) printf("  (no AVX512-FP16 on this CPU: only the scalar reference is checked)\n");
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 7);
    /* rows around the 6-row tile and the 64-row block, K odd/even and across the 256-slice
     * and 16-pair groups, columns around the 16/32-column strips and a split start n0 = 16 */
    const int Ms[] = {1, 2, 3, 5, 6, 7, 13, 64, 71};
    const int Ks[] = {1, 2, 31, 33, 300, 513};
    const int Ns[] = {1, 16, 17, 33, 70};
    double worst = 0.0, err = 0.0;
    int cases = 0;
    for (size_t a = 0; a < SOTTO_ARRAY_LEN(Ms); a++)
        for (size_t bi = 0; bi < SOTTO_ARRAY_LEN(Ks); bi++)
            for (size_t ci = 0; ci < SOTTO_ARRAY_LEN(Ns); ci++) {
                const int N = Ns[ci];
                h16_case(&r, Ms[a], Ks[bi], N, 0, (a + ci) & 1, (bi + ci) & 1, simd, &worst, &err);
                if (N > 16) h16_case(&r, Ms[a], Ks[bi], N, 16, (a + bi) & 1, 1, simd, &worst, &err);
                cases++;
            }
    /* taps: seg across the 16/32 boundaries and the 256-k slice, 3 and 7 taps */
    const int segs[] = {2, 12, 34, 96, 130};
    for (size_t i = 0; i < SOTTO_ARRAY_LEN(segs); i++)
        for (int taps = 3; taps <= 7; taps += 4)
            h16_taps_case(&r, 13, taps, segs[i], 40, simd);
    printf("  gemm_h16: %d shapes, reference vs f64: worst NMSE %.3g (budget 1e-5), worst "
           "|Δ|/sqrt(Σ(x·w)²) %.3g (budget 1e-2)%s\n",
           cases, worst, err, simd ? "; AVX512-FP16 kernel bit-exact with the reference" : "");
}

/* ---- depthwise conv --------------------------------------------------------------------- */

static void dwconv_cases(const sotto_cpu_kernels *simd)
{
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 1);
    const int Cs[] = {1, 7, 8, 33, 100, 129};
    const int Ks[] = {1, 3, 7};
    for (size_t ci = 0; ci < SOTTO_ARRAY_LEN(Cs); ci++)
        for (size_t ki = 0; ki < SOTTO_ARRAY_LEN(Ks); ki++)
            for (int stride = 1; stride <= 2; stride++)
                for (int dil = 1; dil <= 3; dil += 2) {
                    const int C = Cs[ci], K = Ks[ki], T_out = 13;
                    const int T_in = (T_out - 1) * stride + dil * (K - 1) + 1;
                    float *x = fvec((size_t)T_in * C), *w = fvec((size_t)K * C), *b = fvec(C);
                    float *y1 = fvec((size_t)T_out * C), *y2 = fvec((size_t)T_out * C);
                    tu_fill_uniform(&r, x, (size_t)T_in * C, -1, 1);
                    tu_fill_uniform(&r, w, (size_t)K * C, -1, 1);
                    tu_fill_uniform(&r, b, C, -1, 1);
                    const float *bias = (ki & 1) ? NULL : b;
                    g_ref.dwconv(x, C, w, K, stride, dil, bias, y1, 0, T_out);
                    simd->dwconv(x, C, w, K, stride, dil, bias, y2, 0, T_out);
                    tu_diff d = tu_compare(y2, y1, (int64_t)T_out * C);
                    if (d.max_abs > 1e-6 * (K + 1)) {
                        printf("  %s dwconv C=%d K=%d s=%d d=%d: %.3g\n", simd->name, C, K, stride,
                               dil, d.max_abs);
                        CU_FAIL("dwconv mismatch");
                    }
                    free(x);
                    free(w);
                    free(b);
                    free(y1);
                    free(y2);
                }
    printf("  %s dwconv: 72 shapes, |Δ| ≤ 1e-6·(K+1)\n", simd->name);
}

static void test_dwconv(void)
{
    if (!g_have_simd) return;
    for (int t = 0; t < n_tables(); t++)
        dwconv_cases(table(t));
}

/* ---- norms -------------------------------------------------------------------------------- */

static void norm_cases(const sotto_cpu_kernels *simd)
{
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 2);
    const int Cs[] = {1, 3, 8, 17, 31, 48, 100, 513};
    for (size_t ci = 0; ci < SOTTO_ARRAY_LEN(Cs); ci++)
        for (int aff = 0; aff < 3; aff++) {
            const int C = Cs[ci], T = 9;
            float *x = fvec((size_t)T * C), *g = fvec(C), *b = fvec(C);
            float *y1 = fvec((size_t)T * C), *y2 = fvec((size_t)T * C);
            tu_fill_uniform(&r, x, (size_t)T * C, -3, 5); /* offset mean on purpose */
            tu_fill_uniform(&r, g, C, 0.5f, 1.5f);
            tu_fill_uniform(&r, b, C, -1, 1);
            const float *gp = aff ? g : NULL, *bp = aff == 2 ? b : NULL;
            g_ref.layernorm(x, T, C, gp, bp, 1e-5f, y1);
            simd->layernorm(x, T, C, gp, bp, 1e-5f, y2);
            char what[64];
            snprintf(what, sizeof what, "%s layernorm C=%d affine=%d", simd->name, C, aff);
            CU_ASSERT_TRUE(check_rel(what, y2, y1, (int64_t)T * C, 0.0, 2e-6, x));
            g_ref.rmsnorm(x, T, C, gp, 1e-6f, y1);
            /* in place */
            memcpy(y2, x, sizeof(float) * (size_t)T * C);
            simd->rmsnorm(y2, T, C, gp, 1e-6f, y2);
            snprintf(what, sizeof what, "%s rmsnorm C=%d affine=%d", simd->name, C, aff);
            CU_ASSERT_TRUE(check_rel(what, y2, y1, (int64_t)T * C, 0.0, 2e-6, x));
            free(x);
            free(g);
            free(b);
            free(y1);
            free(y2);
        }
}

static void test_norms(void)
{
    if (!g_have_simd) return;
    for (int t = 0; t < n_tables(); t++)
        norm_cases(table(t));
}

/* ---- activations -------------------------------------------------------------------------- */

/* Random values over [-lo, hi] plus special points, n odd. */
static int64_t act_input(tu_rng *r, float *x, int64_t n, float range)
{
    static const float special[] = {
        0.0f,    -0.0f,  1e-30f, -1e-30f,    1e-7f,       -1e-7f, 0.5f,   -0.5f, 0.625f,
        -0.625f, 1.0f,   -1.0f,  1.4142135f, -1.4142135f, 9.0f,   -9.0f,  14.0f, -14.0f,
        20.0f,   -20.0f, 88.0f,  -88.0f,     -87.5f,      100.0f, -100.0f};
    int64_t i = 0;
    for (; i < (int64_t)SOTTO_ARRAY_LEN(special) && i < n; i++)
        x[i] = special[i];
    for (; i < n; i++) {
        /* half uniform over the range, half concentrated near zero */
        float u = tu_rng_uniform(r, -range, range);
        x[i] = (i & 1) ? u : u * 1e-2f;
    }
    return n;
}

typedef void (*unary_fn)(const float *, int64_t, float *);

static void unary_case(const char *table_name, const char *fn_name, unary_fn ref, unary_fn simd,
                       float range)
{
    char name[48];
    snprintf(name, sizeof name, "%s %s", table_name, fn_name);
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 3);
    const int64_t n = 100003;
    float *x = fvec(n), *y1 = fvec(n), *y2 = fvec(n);
    act_input(&r, x, n, range);
    ref(x, n, y1);
    simd(x, n, y2);
    CU_ASSERT_TRUE(check_rel(name, y2, y1, n, 1e-6, 1e-7, x));
    /* in place, short odd length (tail only) */
    for (int64_t m = 1; m < 20; m += 3) {
        memcpy(y2, x + 100, sizeof(float) * (size_t)m);
        simd(y2, m, y2);
        ref(x + 100, m, y1);
        CU_ASSERT_TRUE(check_rel(name, y2, y1, m, 1e-6, 1e-7, x + 100));
    }
    free(x);
    free(y1);
    free(y2);
}

static void activation_cases(const sotto_cpu_kernels *simd)
{
    unary_case(simd->name, "gelu_erf", g_ref.gelu_erf, simd->gelu_erf, 12.0f);
    unary_case(simd->name, "gelu_tanh", g_ref.gelu_tanh, simd->gelu_tanh, 12.0f);
    unary_case(simd->name, "silu", g_ref.silu, simd->silu, 30.0f);
    unary_case(simd->name, "tanh", g_ref.tanh, simd->tanh, 12.0f);

    tu_rng r;
    tu_rng_init(&r, tu_seed() + 4);
    const int64_t n = 50001;
    float *x = fvec(n), *y1 = fvec(n), *y2 = fvec(n);
    act_input(&r, x, n, 20.0f);
    g_ref.elu(x, n, 1.3f, y1);
    simd->elu(x, n, 1.3f, y2);
    char what[48];
    snprintf(what, sizeof what, "%s elu", simd->name);
    CU_ASSERT_TRUE(check_rel(what, y2, y1, n, 1e-6, 1e-7, x));
    /* in place, short odd lengths (tail only) */
    for (int64_t m = 1; m < 20; m += 3) {
        memcpy(y2, x + 100, sizeof(float) * (size_t)m);
        simd->elu(y2, m, 1.3f, y2);
        g_ref.elu(x + 100, m, 1.3f, y1);
        CU_ASSERT_TRUE(check_rel(what, y2, y1, m, 1e-6, 1e-7, x + 100));
    }
    g_ref.leaky_relu(x, n, 0.1f, y1);
    simd->leaky_relu(x, n, 0.1f, y2);
    snprintf(what, sizeof what, "%s leaky_relu", simd->name);
    CU_ASSERT_TRUE(check_rel(what, y2, y1, n, 0.0, 0.0, x));
    free(x);
    free(y1);
    free(y2);
}

static void test_activations(void)
{
    if (!g_have_simd) return;
    for (int t = 0; t < n_tables(); t++)
        activation_cases(table(t));
}

static void snake_cases(const sotto_cpu_kernels *simd)
{
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 5);
    /* narrow rows (several per vector), channel counts whose pattern with the vector width
     * repeats late (29·16 floats) or not within the AVX-512 kernel's buffer (67, 129) */
    const int Cs[] = {1, 5, 8, 24, 29, 48, 64, 67, 96, 129};
    for (size_t ci = 0; ci < SOTTO_ARRAY_LEN(Cs); ci++) {
        const int C = Cs[ci], T = 301;
        float *x = fvec((size_t)T * C), *a = fvec(C), *y1 = fvec((size_t)T * C),
              *y2 = fvec((size_t)T * C);
        tu_fill_uniform(&r, x, (size_t)T * C, -8, 8);
        tu_fill_uniform(&r, a, C, 0.05f, 4.0f);
        g_ref.snake(x, T, C, a, y1);
        memcpy(y2, x, sizeof(float) * (size_t)T * C);
        simd->snake(y2, T, C, a, y2);
        char what[48];
        snprintf(what, sizeof what, "%s snake C=%d", simd->name, C);
        /* sin² is bounded, so the budget is relative to |x| + 1/α, the terms' scale */
        CU_ASSERT_TRUE(check_rel(what, y2, y1, (int64_t)T * C, 1e-6, 1e-6, x));
        free(x);
        free(a);
        free(y1);
        free(y2);
    }
}

static void test_snake(void)
{
    if (!g_have_simd) return;
    for (int t = 0; t < n_tables(); t++)
        snake_cases(table(t));
}

static void softmax_cases(const sotto_cpu_kernels *simd)
{
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 6);
    const int ns[] = {1, 7, 8, 9, 16, 17, 100, 1001};
    for (size_t i = 0; i < SOTTO_ARRAY_LEN(ns); i++) {
        const int n = ns[i], rows = 5;
        float *x = fvec((size_t)rows * n), *y1 = fvec((size_t)rows * n),
              *y2 = fvec((size_t)rows * n);
        tu_fill_uniform(&r, x, (size_t)rows * n, -30, 30);
        x[0] = 1000.0f; /* a dominant entry: must not overflow */
        g_ref.softmax(x, rows, n, y1);
        simd->softmax(x, rows, n, y2);
        char what[48];
        snprintf(what, sizeof what, "%s softmax n=%d", simd->name, n);
        CU_ASSERT_TRUE(check_rel(what, y2, y1, (int64_t)rows * n, 2e-6, 1e-12, x));
        free(x);
        free(y1);
        free(y2);
    }
}

static void test_softmax(void)
{
    if (!g_have_simd) return;
    for (int t = 0; t < n_tables(); t++)
        softmax_cases(table(t));
}

/* ---- sincos -----------------------------------------------------------------------------------
 * Against libm (the reference) on phases of every scale an ISTFT head produces, multiples of
 * π/4 (quadrant edges), tiny values, and the libm fallback lanes (|x| > 8192, ±inf, NaN):
 * |Δ| ≤ 2e-7 + 1e-7·|x|/π (the polynomial's error plus the rounding of the reduced angle,
 * which grows with the number of periods removed). */
static void test_sincos(void)
{
    if (!g_have_avx512) {
        printf("  (no AVX-512: sincos is the libm reference)\n");
        return;
    }
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 11);
    const int64_t n = 100003;
    float *x = fvec(n), *s1 = fvec(n), *c1 = fvec(n), *s2 = fvec(n), *c2 = fvec(n);
    for (int64_t i = 0; i < n; i++) {
        const int kind = (int)(i % 5);
        const float scale = kind == 0 ? 4.0f : kind == 1 ? 100.0f : kind == 2 ? 8000.0f : 1e-3f;
        x[i] =
            kind == 3 ? (float)(i % 64) * 0.785398163397448310f : tu_rng_uniform(&r, -scale, scale);
    }
    x[7] = 1e6f;
    x[8] = -INFINITY;
    x[9] = NAN;
    x[10] = 8192.5f;
    g_ref.sincos(x, n, s1, c1);
    g_simd.sincos(x, n, s2, c2);
    double worst = 0.0;
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {
        if (isnan(s1[i]) || isnan(c1[i])) {
            bad += !(isnan(s2[i]) && isnan(c2[i]));
            continue;
        }
        const double lim = 2e-7 + 1e-7 * fabs((double)x[i]) / 3.14159265358979;
        const double d = fmax(fabs((double)s2[i] - s1[i]), fabs((double)c2[i] - c1[i]));
        if (d > lim) {
            if (bad < 5)
                printf("  sincos: x=%.9g sin %.9g vs %.9g, cos %.9g vs %.9g\n", x[i], s2[i], s1[i],
                       c2[i], c1[i]);
            bad++;
        }
        if (d / lim > worst) worst = d / lim;
    }
    CU_ASSERT_EQUAL(bad, 0);
    printf("  sincos: n=%lld, worst %.3f of budget\n", (long long)n, worst);
    free(x);
    free(s1);
    free(c1);
    free(s2);
    free(c2);
}

/* ---- f16 conversion ------------------------------------------------------------------------- */

static void test_f16(void)
{
    if (!(g_simd.isa & SOTTO_CPU_F16C)) {
        printf("  (no F16C: skipped)\n");
        return;
    }
    const int64_t n = 65536 + 5;
    uint16_t *h = malloc(sizeof(uint16_t) * n), *h1 = malloc(sizeof(uint16_t) * n),
             *h2 = malloc(sizeof(uint16_t) * n);
    float *f1 = fvec(n), *f2 = fvec(n);
    for (int64_t i = 0; i < n; i++)
        h[i] = (uint16_t)i;
    g_ref.f16_to_f32(h, n, f1);
    g_simd.f16_to_f32(h, n, f2);
    int bad = 0;
    for (int64_t i = 0; i < n; i++)
        if (memcmp(&f1[i], &f2[i], 4) && !(isnan(f1[i]) && isnan(f2[i]))) bad++;
    CU_ASSERT_EQUAL(bad, 0);
    /* f32 → f16: random values across the f16 range, halfway cases, overflow, subnormals */
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 7);
    for (int64_t i = 0; i < n; i++) {
        const int kind = (int)(i % 4);
        if (kind == 0)
            f1[i] = tu_rng_uniform(&r, -70000.0f, 70000.0f);
        else if (kind == 1)
            f1[i] = tu_rng_uniform(&r, -1e-4f, 1e-4f);
        else if (kind == 2)
            f1[i] = sotto_f16_to_f32((uint16_t)i) * (1.0f + 1.0f / 2048.0f); /* ties */
        else
            f1[i] = tu_rng_normal(&r);
    }
    g_ref.f32_to_f16(f1, n, h1);
    g_simd.f32_to_f16(f1, n, h2);
    bad = 0;
    for (int64_t i = 0; i < n; i++)
        if (h1[i] != h2[i] && !(isnan(sotto_f16_to_f32(h1[i])) && isnan(sotto_f16_to_f32(h2[i]))))
            bad++;
    CU_ASSERT_EQUAL(bad, 0);
    printf("  f16: %lld values each way, bit-exact (%d mismatches)\n", (long long)n, bad);
    free(h);
    free(h1);
    free(h2);
    free(f1);
    free(f2);
}

/* ---- feature mask ------------------------------------------------------------------------- */

/* A mask of 0 gives the scalar table; layers on it agree with the SIMD context. */
static void test_forced_scalar(void)
{
    sotto_cpu cs, cv;
    sotto_cpu_init(&cs, 0, NULL);
    CU_ASSERT_EQUAL(cs.features, 0u);
    CU_ASSERT_EQUAL(cs.k.isa, 0u);
    CU_ASSERT_STRING_EQUAL(cs.k.name, "scalar");
    CU_ASSERT_PTR_EQUAL(cs.k.gemm_f32, g_ref.gemm_f32);
    CU_ASSERT_PTR_EQUAL(cs.k.gelu_erf, g_ref.gelu_erf);
    CU_ASSERT_PTR_EQUAL(cs.k.dwconv, g_ref.dwconv);
    CU_ASSERT_TRUE(sotto_cpu_supports(&cs, SOTTO_OP_CONV1D));
    CU_ASSERT_FALSE(sotto_cpu_supports(&cs, SOTTO_OP_COUNT));
    CU_ASSERT_STRING_EQUAL(sotto_op_name(SOTTO_OP_SNAKE), "snake");
    /* F16C alone (without AVX2/FMA) must not switch anything on */
    sotto_cpu_init(&cv, SOTTO_CPU_F16C, NULL);
    CU_ASSERT_EQUAL(cv.features, 0u);
    sotto_cpu_init(&cv, ~0u, NULL);
    CU_ASSERT_EQUAL(cv.features & ~sotto_cpu_features(), 0u);
    printf("  full mask selects '%s' (isa bits 0x%x)\n", cv.k.name, cv.features);

    /* A small ConvNeXt-like chain through both contexts. */
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 8);
    const int T = 11, C = 24, I = 40, K = 7;
    sotto_alloc a;
    sotto_alloc_init(&a, NULL);
    float *dw = fvec((size_t)C * K), *w1 = fvec((size_t)I * C), *w2 = fvec((size_t)C * I);
    float *x = fvec((size_t)(T + K - 1) * C), *h1 = fvec((size_t)T * I), *h2 = fvec((size_t)T * I);
    float *y1 = fvec((size_t)T * C), *y2 = fvec((size_t)T * C), *g = fvec(C);
    tu_fill_uniform(&r, dw, (size_t)C * K, -0.5f, 0.5f);
    tu_fill_uniform(&r, w1, (size_t)I * C, -0.3f, 0.3f);
    tu_fill_uniform(&r, w2, (size_t)C * I, -0.3f, 0.3f);
    tu_fill_uniform(&r, x, (size_t)(T + K - 1) * C, -1, 1);
    tu_fill_uniform(&r, g, C, 0.5f, 1.5f);
    sotto_conv1d_w cw;
    sotto_linear_w l1, l2;
    CU_ASSERT_EQUAL_FATAL(sotto_conv1d_w_init_f32(&cw, dw, C, C, K, 1, 1, C, &a, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(sotto_linear_w_init_f32(&l1, w1, I, C, 0, &a, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(sotto_linear_w_init_f32(&l2, w2, C, I, 0, &a, NULL), 0);
    const sotto_cpu *ctx[2] = {&cs, &cv};
    float *ys[2] = {y1, y2}, *hs[2] = {h1, h2};
    for (int i = 0; i < 2; i++) {
        CU_ASSERT_EQUAL(sotto_conv1d(ctx[i], &cw, NULL, x, T + K - 1, ys[i]), T);
        CU_ASSERT_EQUAL(sotto_layernorm(ctx[i], ys[i], T, C, g, NULL, 1e-6f, ys[i]), 0);
        CU_ASSERT_EQUAL(sotto_linear(ctx[i], &l1, NULL, ys[i], T, hs[i]), 0);
        CU_ASSERT_EQUAL(sotto_gelu_erf(ctx[i], hs[i], (int64_t)T * I, hs[i]), 0);
        CU_ASSERT_EQUAL(sotto_linear(ctx[i], &l2, NULL, hs[i], T, ys[i]), 0);
    }
    TU_ASSERT_CLOSE("scalar vs simd chain", y1, y2, (int64_t)T * C, 1e-5, 1e-10);
    sotto_conv1d_w_free(&cw, &a);
    sotto_linear_w_free(&l1, &a);
    sotto_linear_w_free(&l2, &a);
    free(dw);
    free(w1);
    free(w2);
    free(x);
    free(h1);
    free(h2);
    free(y1);
    free(y2);
    free(g);
}

int main(void)
{
    setup();
    static const tu_test tests[] = {{"gemm", test_gemm},
                                    {"gemm_h16", test_gemm_h16},
                                    {"dwconv", test_dwconv},
                                    {"norms", test_norms},
                                    {"activations", test_activations},
                                    {"snake", test_snake},
                                    {"softmax", test_softmax},
                                    {"sincos", test_sincos},
                                    {"f16", test_f16},
                                    {"forced_scalar", test_forced_scalar},
                                    {NULL, NULL}};
    return tu_run_suite("ops_simd", tests);
}
