/*
 * AVX2 + FMA (+ F16C) variants of the CPU kernels. The build compiles this file with
 * -mavx2 -mfma -mf16c; nothing in it runs unless sotto_cpu_init found those features in the
 * allowed mask, so the rest of the library stays baseline x86-64. Every kernel computes what
 * its scalar twin in kernels_ref.c computes (tests/unit/test_ops_simd.c holds them to it).
 *
 * The transcendental helpers are our own polynomial fits (least squares on dense grids, f32
 * coefficients), each with a short range reduction: exp (Cody–Waite ln 2 split, degree-7
 * Taylor), tanh (odd polynomial below 0.625, 1 − 2/(e^{2x} + 1) above), erf (odd polynomial
 * below 1) and erfc (e^{−z²}·erfcx(z), erfcx as a degree-9 polynomial in 1/(1 + z), with the
 * rounding error of z² restored by an FMA), sin² (reduction by π in three parts; the sign of
 * sin does not matter for sin²). The activations built on them stay within 1e-6 relative of
 * the libm reference (measured: ≤ 2e-7 for tanh, SiLU, ELU; GELU's far negative tail is
 * limited by rounding x/√2, as in libm); exp flushes results below FLT_MIN to 0.
 *
 * The GEMM is a register-tiled outer-product kernel for small M: a tile of up to 6 rows and
 * 16 or 32 columns keeps its sums in registers over a K slice of 256, so each weight row
 * segment is loaded once per tile and each input value broadcast once; slices keep a panel
 * of weights and the input rows in L1 across the row blocks.
 */
#include "backend/backend.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#include <math.h>

#include "core/gguf.h"
#include "sotto/sotto.h"

#define ALWAYS_INLINE inline __attribute__((always_inline))
/* Full unrolling of the GEMM tile loops: with any loop left rolled the tile's sums live in a
 * stack array that the compiler rewrites on every k step. */
#define UNROLL _Pragma("GCC unroll 8")

/* Lanes [0, n) set, for n in 0..8. */
static ALWAYS_INLINE __m256i tail_mask(int n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

static ALWAYS_INLINE float hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static ALWAYS_INLINE float hmax(__m256 v)
{
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* ---- transcendental helpers ---------------------------------------------------------------- */

static ALWAYS_INLINE __m256 exp256(__m256 x)
{
    const __m256 hi = _mm256_set1_ps(88.3762626647949f);  /* larger rounds n to 128: inf */
    const __m256 lo = _mm256_set1_ps(-87.3365478515625f); /* below: < FLT_MIN, flushed */
    __m256 over = _mm256_cmp_ps(x, hi, _CMP_GT_OQ);
    __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    __m256 xc = _mm256_max_ps(_mm256_min_ps(x, hi), lo);
    __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), xc);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.0f / 5040.0f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    __m256i e =
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    __m256 y = _mm256_mul_ps(p, _mm256_castsi256_ps(e));
    y = _mm256_blendv_ps(y, _mm256_set1_ps(INFINITY), over);
    y = _mm256_andnot_ps(under, y);
    /* NaN in, NaN out (the clamps above would turn it into a number). */
    return _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

/* expm1 for x ≤ 0 (the ELU branch): Taylor series near 0 where exp(x) − 1 would cancel. */
static ALWAYS_INLINE __m256 expm1_neg256(__m256 x)
{
    __m256 p = _mm256_set1_ps(1.0f / 3628800.0f);
    p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(1.0f / 362880.0f));
    p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(1.0f / 40320.0f));
    p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(1.0f / 5040.0f));
    p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(1.0f / 720.0f));
    p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(0.5f));
    __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(p, x), x, x);
    __m256 big = _mm256_sub_ps(exp256(x), _mm256_set1_ps(1.0f));
    __m256 is_small = _mm256_cmp_ps(x, _mm256_set1_ps(-0.5f), _CMP_GT_OQ);
    return _mm256_blendv_ps(big, small, is_small);
}

static ALWAYS_INLINE __m256 tanh256(__m256 x)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 ax = _mm256_andnot_ps(sign, x);
    /* |x| < 0.625: x + x³·P(x²) */
    __m256 z = _mm256_mul_ps(x, x);
    __m256 p = _mm256_set1_ps(2.182748867e-03f);
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-8.220207877e-03f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(2.171770483e-02f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-5.394979566e-02f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(1.333322972e-01f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-3.333333135e-01f));
    __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(p, z), x, x);
    /* otherwise 1 − 2/(e^{2|x|} + 1), with the sign of x; |x| ≥ 9 rounds to 1 */
    __m256 e = exp256(_mm256_add_ps(_mm256_min_ps(ax, _mm256_set1_ps(9.0f)),
                                    _mm256_min_ps(ax, _mm256_set1_ps(9.0f))));
    __m256 big =
        _mm256_sub_ps(_mm256_set1_ps(1.0f),
                      _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, _mm256_set1_ps(1.0f))));
    big = _mm256_or_ps(big, _mm256_and_ps(sign, x));
    __m256 is_small = _mm256_cmp_ps(ax, _mm256_set1_ps(0.625f), _CMP_LT_OQ);
    __m256 y = _mm256_blendv_ps(big, small, is_small);
    return _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

/* erfc(z) for z ≥ 0, and erf(z) = 1 − erfc(z), both through one evaluation. */
static ALWAYS_INLINE void erf_erfc256(__m256 z, __m256 *erf_out, __m256 *erfc_out)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    /* z < 1: erf(z) = z·P(z²) */
    __m256 z2 = _mm256_mul_ps(z, z);
    __m256 p = _mm256_set1_ps(8.006993448e-05f);
    p = _mm256_fmadd_ps(p, z2, _mm256_set1_ps(-8.053781930e-04f));
    p = _mm256_fmadd_ps(p, z2, _mm256_set1_ps(5.192960612e-03f));
    p = _mm256_fmadd_ps(p, z2, _mm256_set1_ps(-2.685607038e-02f));
    p = _mm256_fmadd_ps(p, z2, _mm256_set1_ps(1.128363460e-01f));
    p = _mm256_fmadd_ps(p, z2, _mm256_set1_ps(-3.761262894e-01f));
    p = _mm256_fmadd_ps(p, z2, _mm256_set1_ps(1.128379226e+00f));
    __m256 e_small = _mm256_mul_ps(p, z);
    /* z ≥ 1: erfc(z) = exp(−z²)·erfcx(z); past z = 10 the result is 0 in float anyway */
    __m256 zc = _mm256_min_ps(_mm256_max_ps(z, one), _mm256_set1_ps(10.0f));
    __m256 t = _mm256_div_ps(one, _mm256_add_ps(one, zc));
    __m256 r = _mm256_set1_ps(1.713000894e+00f);
    r = _mm256_fmadd_ps(r, t, _mm256_set1_ps(-3.763966084e+00f));
    r = _mm256_fmadd_ps(r, t, _mm256_set1_ps(2.370579481e+00f));
    r = _mm256_fmadd_ps(r, t, _mm256_set1_ps(6.879634261e-01f));
    r = _mm256_fmadd_ps(r, t, _mm256_set1_ps(-1.178933859e+00f));
    r = _mm256_fmadd_ps(r, t, _mm256_set1_ps(-1.593251675e-01f));
    r = _mm256_fmadd_ps(r, t, _mm256_set1_ps(2.636462152e-01f));
    r = _mm256_fmadd_ps(r, t, _mm256_set1_ps(5.658361912e-01f));
    r = _mm256_fmadd_ps(r, t, _mm256_set1_ps(5.641085505e-01f));
    r = _mm256_fmadd_ps(r, t, _mm256_set1_ps(1.691344892e-06f));
    __m256 sq = _mm256_mul_ps(zc, zc);
    __m256 sq_err = _mm256_fmsub_ps(zc, zc, sq); /* zc² − sq exactly */
    __m256 ex = exp256(_mm256_sub_ps(_mm256_setzero_ps(), sq));
    ex = _mm256_fnmadd_ps(ex, sq_err, ex); /* exp(−sq − err) ≈ exp(−sq)·(1 − err) */
    __m256 c_big = _mm256_mul_ps(ex, r);
    __m256 is_small = _mm256_cmp_ps(z, one, _CMP_LT_OQ);
    *erf_out = _mm256_blendv_ps(_mm256_sub_ps(one, c_big), e_small, is_small);
    *erfc_out = _mm256_blendv_ps(c_big, _mm256_sub_ps(one, e_small), is_small);
}

/* sin²(y), y of moderate size (|y| < 4e5 keeps the reduction exact). */
static ALWAYS_INLINE __m256 sin2_256(__m256 y)
{
    __m256 n = _mm256_round_ps(_mm256_mul_ps(y, _mm256_set1_ps(0.318309886183790672f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(3.140625f), y);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(9.67502593994140625e-4f), r);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.509957990978376432e-7f), r);
    /* |r| ≤ π/2: odd Taylor polynomial to r¹¹ (sin(y) = ±sin(r); squared, the sign goes) */
    __m256 r2 = _mm256_mul_ps(r, r);
    __m256 p = _mm256_set1_ps(-2.5052108385441720e-8f);
    p = _mm256_fmadd_ps(p, r2, _mm256_set1_ps(2.7557319223985893e-6f));
    p = _mm256_fmadd_ps(p, r2, _mm256_set1_ps(-1.9841269841269841e-4f));
    p = _mm256_fmadd_ps(p, r2, _mm256_set1_ps(8.3333333333333333e-3f));
    p = _mm256_fmadd_ps(p, r2, _mm256_set1_ps(-1.6666666666666667e-1f));
    __m256 s = _mm256_fmadd_ps(_mm256_mul_ps(p, r2), r, r);
    return _mm256_mul_ps(s, s);
}

/* ---- element-wise kernels ------------------------------------------------------------------ */

/* Runs OP over n floats: full vectors, then the tail through a stack buffer so OP never reads
 * or writes past the arrays (and in-place calls stay correct). */
#define ELEMENTWISE(name, OP)                                                                      \
    static void name(const float *x, int64_t n, float *y)                                          \
    {                                                                                              \
        int64_t i = 0;                                                                             \
        for (; i + 8 <= n; i += 8) {                                                               \
            __m256 v = _mm256_loadu_ps(x + i);                                                     \
            _mm256_storeu_ps(y + i, OP(v));                                                        \
        }                                                                                          \
        if (i < n) {                                                                               \
            float buf[8] = {0};                                                                    \
            for (int64_t j = i; j < n; j++)                                                        \
                buf[j - i] = x[j];                                                                 \
            __m256 v = _mm256_loadu_ps(buf);                                                       \
            _mm256_storeu_ps(buf, OP(v));                                                          \
            for (int64_t j = i; j < n; j++)                                                        \
                y[j] = buf[j - i];                                                                 \
        }                                                                                          \
    }

static ALWAYS_INLINE __m256 gelu_erf_op(__m256 x)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 z = _mm256_mul_ps(_mm256_andnot_ps(sign, x), _mm256_set1_ps(0.70710678118654752f));
    __m256 e, c;
    erf_erfc256(z, &e, &c);
    /* x ≥ 0: 0.5·x·(1 + erf z); x < 0: 0.5·x·erfc z (no cancellation) */
    __m256 neg = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ);
    __m256 h = _mm256_blendv_ps(_mm256_add_ps(_mm256_set1_ps(1.0f), e), c, neg);
    return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x), h);
}

static ALWAYS_INLINE __m256 sigmoid_mul(__m256 x, __m256 u)
{
    /* x / (1 + exp(−u)) */
    __m256 e = exp256(_mm256_sub_ps(_mm256_setzero_ps(), u));
    return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

static ALWAYS_INLINE __m256 gelu_tanh_op(__m256 x)
{
    __m256 x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
    __m256 u = _mm256_mul_ps(_mm256_set1_ps(0.79788456080286535588f),
                             _mm256_fmadd_ps(_mm256_set1_ps(0.044715f), x3, x));
    return sigmoid_mul(x, _mm256_add_ps(u, u));
}

static ALWAYS_INLINE __m256 silu_op(__m256 x)
{
    return sigmoid_mul(x, x);
}

ELEMENTWISE(gelu_erf_avx2, gelu_erf_op)
ELEMENTWISE(gelu_tanh_avx2, gelu_tanh_op)
ELEMENTWISE(silu_avx2, silu_op)
ELEMENTWISE(tanh_avx2, tanh256)

static void elu_avx2(const float *x, int64_t n, float alpha, float *y)
{
    const __m256 a = _mm256_set1_ps(alpha), zero = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256 neg = _mm256_mul_ps(a, expm1_neg256(_mm256_min_ps(v, zero)));
        _mm256_storeu_ps(y + i, _mm256_blendv_ps(neg, v, _mm256_cmp_ps(v, zero, _CMP_GT_OQ)));
    }
    for (; i < n; i++)
        y[i] = x[i] > 0.0f ? x[i] : alpha * expm1f(x[i]);
}

static void leaky_relu_avx2(const float *x, int64_t n, float slope, float *y)
{
    const __m256 s = _mm256_set1_ps(slope), zero = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256 neg = _mm256_mul_ps(v, s);
        _mm256_storeu_ps(y + i, _mm256_blendv_ps(neg, v, _mm256_cmp_ps(v, zero, _CMP_GT_OQ)));
    }
    for (; i < n; i++)
        y[i] = x[i] > 0.0f ? x[i] : x[i] * slope;
}

static ALWAYS_INLINE __m256 snake_op(__m256 x, __m256 a)
{
    __m256 inv = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_add_ps(a, _mm256_set1_ps(1e-9f)));
    return _mm256_fmadd_ps(inv, sin2_256(_mm256_mul_ps(a, x)), x);
}

static void snake_avx2(const float *x, int64_t rows, int C, const float *alpha, float *y)
{
    const int cv = C & ~7;
    const __m256i m = tail_mask(C - cv);
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * C;
        float *yr = y + r * C;
        for (int c = 0; c < cv; c += 8)
            _mm256_storeu_ps(yr + c, snake_op(_mm256_loadu_ps(xr + c), _mm256_loadu_ps(alpha + c)));
        if (cv < C) {
            __m256 v = snake_op(_mm256_maskload_ps(xr + cv, m), _mm256_maskload_ps(alpha + cv, m));
            _mm256_maskstore_ps(yr + cv, m, v);
        }
    }
}

static void softmax_avx2(const float *x, int64_t rows, int n, float *y)
{
    const int nv = n & ~7;
    const __m256i m = tail_mask(n - nv);
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * n;
        float *yr = y + r * n;
        __m256 mx = _mm256_set1_ps(-INFINITY);
        for (int i = 0; i < nv; i += 8)
            mx = _mm256_max_ps(mx, _mm256_loadu_ps(xr + i));
        float mxs = hmax(mx);
        for (int i = nv; i < n; i++)
            mxs = xr[i] > mxs ? xr[i] : mxs;
        const __m256 mv = _mm256_set1_ps(mxs);
        __m256 s = _mm256_setzero_ps();
        for (int i = 0; i < nv; i += 8) {
            __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(xr + i), mv));
            _mm256_storeu_ps(yr + i, e);
            s = _mm256_add_ps(s, e);
        }
        if (nv < n) {
            /* masked lanes load 0, whose exp must not enter the sum */
            __m256 e = exp256(_mm256_sub_ps(_mm256_maskload_ps(xr + nv, m), mv));
            e = _mm256_and_ps(e, _mm256_castsi256_ps(m));
            _mm256_maskstore_ps(yr + nv, m, e);
            s = _mm256_add_ps(s, e);
        }
        const __m256 inv = _mm256_set1_ps(1.0f / hsum(s));
        for (int i = 0; i < nv; i += 8)
            _mm256_storeu_ps(yr + i, _mm256_mul_ps(_mm256_loadu_ps(yr + i), inv));
        if (nv < n)
            _mm256_maskstore_ps(yr + nv, m, _mm256_mul_ps(_mm256_maskload_ps(yr + nv, m), inv));
    }
}

/* ---- norms --------------------------------------------------------------------------------- */

static void layernorm_avx2(const float *x, int64_t rows, int C, const float *gamma,
                           const float *beta, float eps, float *y)
{
    const int cv = C & ~7;
    const __m256i m = tail_mask(C - cv);
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * C;
        float *yr = y + r * C;
        __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
        int c = 0;
        for (; c + 16 <= cv; c += 16) {
            s0 = _mm256_add_ps(s0, _mm256_loadu_ps(xr + c));
            s1 = _mm256_add_ps(s1, _mm256_loadu_ps(xr + c + 8));
        }
        for (; c < cv; c += 8)
            s0 = _mm256_add_ps(s0, _mm256_loadu_ps(xr + c));
        if (cv < C) s1 = _mm256_add_ps(s1, _mm256_maskload_ps(xr + cv, m));
        const float mean = hsum(_mm256_add_ps(s0, s1)) / (float)C;
        const __m256 mv = _mm256_set1_ps(mean);
        __m256 v0 = _mm256_setzero_ps(), v1 = _mm256_setzero_ps();
        for (c = 0; c + 16 <= cv; c += 16) {
            __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(xr + c), mv);
            __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(xr + c + 8), mv);
            v0 = _mm256_fmadd_ps(d0, d0, v0);
            v1 = _mm256_fmadd_ps(d1, d1, v1);
        }
        for (; c < cv; c += 8) {
            __m256 d = _mm256_sub_ps(_mm256_loadu_ps(xr + c), mv);
            v0 = _mm256_fmadd_ps(d, d, v0);
        }
        if (cv < C) {
            __m256 d = _mm256_and_ps(_mm256_sub_ps(_mm256_maskload_ps(xr + cv, m), mv),
                                     _mm256_castsi256_ps(m));
            v1 = _mm256_fmadd_ps(d, d, v1);
        }
        const float var = hsum(_mm256_add_ps(v0, v1)) / (float)C;
        const __m256 inv = _mm256_set1_ps(1.0f / sqrtf(var + eps));
        for (c = 0; c < cv; c += 8) {
            __m256 o = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(xr + c), mv), inv);
            if (gamma) o = _mm256_mul_ps(o, _mm256_loadu_ps(gamma + c));
            if (beta) o = _mm256_add_ps(o, _mm256_loadu_ps(beta + c));
            _mm256_storeu_ps(yr + c, o);
        }
        if (cv < C) {
            __m256 o = _mm256_mul_ps(_mm256_sub_ps(_mm256_maskload_ps(xr + cv, m), mv), inv);
            if (gamma) o = _mm256_mul_ps(o, _mm256_maskload_ps(gamma + cv, m));
            if (beta) o = _mm256_add_ps(o, _mm256_maskload_ps(beta + cv, m));
            _mm256_maskstore_ps(yr + cv, m, o);
        }
    }
}

static void rmsnorm_avx2(const float *x, int64_t rows, int C, const float *gamma, float eps,
                         float *y)
{
    const int cv = C & ~7;
    const __m256i m = tail_mask(C - cv);
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * C;
        float *yr = y + r * C;
        __m256 s = _mm256_setzero_ps();
        for (int c = 0; c < cv; c += 8) {
            __m256 v = _mm256_loadu_ps(xr + c);
            s = _mm256_fmadd_ps(v, v, s);
        }
        if (cv < C) {
            __m256 v = _mm256_maskload_ps(xr + cv, m);
            s = _mm256_fmadd_ps(v, v, s);
        }
        const __m256 inv = _mm256_set1_ps(1.0f / sqrtf(hsum(s) / (float)C + eps));
        for (int c = 0; c < cv; c += 8) {
            __m256 o = _mm256_mul_ps(_mm256_loadu_ps(xr + c), inv);
            if (gamma) o = _mm256_mul_ps(o, _mm256_loadu_ps(gamma + c));
            _mm256_storeu_ps(yr + c, o);
        }
        if (cv < C) {
            __m256 o = _mm256_mul_ps(_mm256_maskload_ps(xr + cv, m), inv);
            if (gamma) o = _mm256_mul_ps(o, _mm256_maskload_ps(gamma + cv, m));
            _mm256_maskstore_ps(yr + cv, m, o);
        }
    }
}

/* ---- depthwise conv ------------------------------------------------------------------------ */

static void dwconv_avx2(const float *x, int C, const float *w, int K, int stride, int dilation,
                        const float *bias, float *y, int64_t t0, int64_t t1)
{
    const int cv = C & ~7;
    const __m256i m = tail_mask(C - cv);
    const int64_t tap = (int64_t)dilation * C;
    for (int64_t t = t0; t < t1; t++) {
        const float *xt = x + t * stride * (int64_t)C;
        float *yr = y + t * C;
        int c = 0;
        for (; c + 32 <= cv; c += 32) {
            __m256 a0, a1, a2, a3;
            if (bias) {
                a0 = _mm256_loadu_ps(bias + c);
                a1 = _mm256_loadu_ps(bias + c + 8);
                a2 = _mm256_loadu_ps(bias + c + 16);
                a3 = _mm256_loadu_ps(bias + c + 24);
            } else {
                a0 = a1 = a2 = a3 = _mm256_setzero_ps();
            }
            for (int k = 0; k < K; k++) {
                const float *xk = xt + k * tap + c, *wk = w + (int64_t)k * C + c;
                a0 = _mm256_fmadd_ps(_mm256_loadu_ps(wk), _mm256_loadu_ps(xk), a0);
                a1 = _mm256_fmadd_ps(_mm256_loadu_ps(wk + 8), _mm256_loadu_ps(xk + 8), a1);
                a2 = _mm256_fmadd_ps(_mm256_loadu_ps(wk + 16), _mm256_loadu_ps(xk + 16), a2);
                a3 = _mm256_fmadd_ps(_mm256_loadu_ps(wk + 24), _mm256_loadu_ps(xk + 24), a3);
            }
            _mm256_storeu_ps(yr + c, a0);
            _mm256_storeu_ps(yr + c + 8, a1);
            _mm256_storeu_ps(yr + c + 16, a2);
            _mm256_storeu_ps(yr + c + 24, a3);
        }
        for (; c < cv; c += 8) {
            __m256 a = bias ? _mm256_loadu_ps(bias + c) : _mm256_setzero_ps();
            for (int k = 0; k < K; k++)
                a = _mm256_fmadd_ps(_mm256_loadu_ps(w + (int64_t)k * C + c),
                                    _mm256_loadu_ps(xt + k * tap + c), a);
            _mm256_storeu_ps(yr + c, a);
        }
        if (cv < C) {
            __m256 a = bias ? _mm256_maskload_ps(bias + cv, m) : _mm256_setzero_ps();
            for (int k = 0; k < K; k++)
                a = _mm256_fmadd_ps(_mm256_maskload_ps(w + (int64_t)k * C + cv, m),
                                    _mm256_maskload_ps(xt + k * tap + cv, m), a);
            _mm256_maskstore_ps(yr + cv, m, a);
        }
    }
}

/* ---- GEMM ---------------------------------------------------------------------------------- */

static ALWAYS_INLINE __m256 load_w_f32(const float *w)
{
    return _mm256_loadu_ps(w);
}

static ALWAYS_INLINE __m256 load_w_f16(const uint16_t *w)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)w));
}

/* Stores a tile row segment of 8 columns, `valid` of them real (1..8). */
static ALWAYS_INLINE void store_seg(float *y, __m256 v, const float *bias, int acc, int valid)
{
    if (valid >= 8) {
        if (acc) v = _mm256_add_ps(v, _mm256_loadu_ps(y));
        if (bias) v = _mm256_add_ps(v, _mm256_loadu_ps(bias));
        _mm256_storeu_ps(y, v);
    } else {
        const __m256i m = tail_mask(valid);
        if (acc) v = _mm256_add_ps(v, _mm256_maskload_ps(y, m));
        if (bias) v = _mm256_add_ps(v, _mm256_maskload_ps(bias, m));
        _mm256_maskstore_ps(y, m, v);
    }
}

/* Weight rows are ldw apart (a page or so for wide layers), where the hardware prefetchers,
 * which stay inside a 4 KiB page, do not follow: the tile prefetches the row GEMM_PF ahead
 * itself. (Prefetching past the end of the matrix is harmless: prefetches never fault.) */
#ifndef GEMM_PF
#define GEMM_PF 64
#endif

/* One MR × (8·NV) tile over the whole K range; `valid` columns of it are stored. Each
 * (MR, NV) pair is its own function with exactly sized arrays, which the compiler fully
 * unrolls and keeps in registers (a shared maximal array spilled every sum each step). */
#define GEMM_TILE(NAME, WT, LOADW, MR, NV)                                                         \
    static inline void NAME##_##MR##x##NV(int K, const float *x, int64_t ldx, const WT *w,         \
                                          int64_t ldw, const float *bias, float *y, int64_t ldy,   \
                                          int acc, int valid)                                      \
    {                                                                                              \
        __m256 c[MR][NV];                                                                          \
        UNROLL                                                                                     \
        for (int r = 0; r < MR; r++)                                                               \
            UNROLL                                                                                 \
        for (int v = 0; v < NV; v++)                                                               \
            c[r][v] = _mm256_setzero_ps();                                                         \
        for (int k = 0; k < K; k++) {                                                              \
            __m256 wv[NV];                                                                         \
            _mm_prefetch((const char *)(w + (int64_t)(k + GEMM_PF) * ldw), _MM_HINT_T0);           \
            UNROLL                                                                                 \
            for (int v = 0; v < NV; v++)                                                           \
                wv[v] = LOADW(w + (int64_t)k * ldw + 8 * v);                                       \
            UNROLL                                                                                 \
            for (int r = 0; r < MR; r++) {                                                         \
                const __m256 b = _mm256_broadcast_ss(x + (int64_t)r * ldx + k);                    \
                UNROLL                                                                             \
                for (int v = 0; v < NV; v++)                                                       \
                    c[r][v] = _mm256_fmadd_ps(b, wv[v], c[r][v]);                                  \
            }                                                                                      \
        }                                                                                          \
        UNROLL                                                                                     \
        for (int r = 0; r < MR; r++)                                                               \
            UNROLL                                                                                 \
        for (int v = 0; v < NV; v++)                                                               \
            if (8 * v < valid)                                                                     \
                store_seg(y + (int64_t)r * ldy + 8 * v, c[r][v], bias ? bias + 8 * v : NULL, acc,  \
                          valid - 8 * v);                                                          \
    }

#define GEMM_TILES(NAME, WT, LOADW)                                                                \
    GEMM_TILE(NAME, WT, LOADW, 6, 2)                                                               \
    GEMM_TILE(NAME, WT, LOADW, 5, 2)                                                               \
    GEMM_TILE(NAME, WT, LOADW, 4, 2)                                                               \
    GEMM_TILE(NAME, WT, LOADW, 3, 2)                                                               \
    GEMM_TILE(NAME, WT, LOADW, 2, 2)                                                               \
    GEMM_TILE(NAME, WT, LOADW, 1, 2)                                                               \
    GEMM_TILE(NAME, WT, LOADW, 2, 4)                                                               \
    GEMM_TILE(NAME, WT, LOADW, 1, 4)

GEMM_TILES(tile_f32, float, load_w_f32)
GEMM_TILES(tile_f16, uint16_t, load_w_f16)

/* One or two rows (streaming steps): 32-column tiles, so each broadcast feeds four FMAs.
 * More rows: 16-column tiles down blocks of 6 rows (12 sums), the last 1..5 rows after them
 * while the same weight columns are still in cache. */
#define GEMM_DRIVER(NAME, WT, T)                                                                   \
    static void NAME(int M, int K, int n0, int n1, const float *x, int64_t ldx, const WT *w,       \
                     int64_t ldw, const float *bias, float *y, int64_t ldy, int acc)               \
    {                                                                                              \
        if (M <= 2) {                                                                              \
            for (int n = n0; n < n1;) {                                                            \
                const int left = n1 - n, step = (left > 16 && ldw - n >= 32) ? 32 : 16;            \
                const int vd = left < step ? left : step;                                          \
                const float *b = bias ? bias + n : NULL;                                           \
                const WT *wn = w + n;                                                              \
                if (M == 2 && step == 32)                                                          \
                    T##_2x4(K, x, ldx, wn, ldw, b, y + n, ldy, acc, vd);                           \
                else if (M == 2)                                                                   \
                    T##_2x2(K, x, ldx, wn, ldw, b, y + n, ldy, acc, vd);                           \
                else if (step == 32)                                                               \
                    T##_1x4(K, x, ldx, wn, ldw, b, y + n, ldy, acc, vd);                           \
                else                                                                               \
                    T##_1x2(K, x, ldx, wn, ldw, b, y + n, ldy, acc, vd);                           \
                n += step;                                                                         \
            }                                                                                      \
            return;                                                                                \
        }                                                                                          \
        const int rem = M % 6, M6 = M - rem;                                                       \
        for (int n = n0; n < n1; n += 16) {                                                        \
            const int vd = n1 - n < 16 ? n1 - n : 16;                                              \
            const float *b = bias ? bias + n : NULL;                                               \
            const WT *wn = w + n;                                                                  \
            for (int m = 0; m < M6; m += 6)                                                        \
                T##_6x2(K, x + m * ldx, ldx, wn, ldw, b, y + m * ldy + n, ldy, acc, vd);           \
            const float *xr = x + M6 * ldx;                                                        \
            float *yr = y + M6 * ldy + n;                                                          \
            switch (rem) {                                                                         \
            case 5:                                                                                \
                T##_5x2(K, xr, ldx, wn, ldw, b, yr, ldy, acc, vd);                                 \
                break;                                                                             \
            case 4:                                                                                \
                T##_4x2(K, xr, ldx, wn, ldw, b, yr, ldy, acc, vd);                                 \
                break;                                                                             \
            case 3:                                                                                \
                T##_3x2(K, xr, ldx, wn, ldw, b, yr, ldy, acc, vd);                                 \
                break;                                                                             \
            case 2:                                                                                \
                T##_2x2(K, xr, ldx, wn, ldw, b, yr, ldy, acc, vd);                                 \
                break;                                                                             \
            case 1:                                                                                \
                T##_1x2(K, xr, ldx, wn, ldw, b, yr, ldy, acc, vd);                                 \
                break;                                                                             \
            default:                                                                               \
                break;                                                                             \
            }                                                                                      \
        }                                                                                          \
    }

GEMM_DRIVER(gemm_f32_block, float, tile_f32)

/* The f16 driver over panel-major weights (backend.h): column n of row k is at
 * w[(n/32)·pstride + k·32 + n%32], so every tile reads rows 32 halves (64 bytes) apart. The
 * tiles are those above with a row stride of 32; a 32-column tile covers a whole panel, a
 * 16-column tile half of one. */
static void gemm_f16_block(int M, int K, int n0, int n1, const float *x, int64_t ldx,
                           const uint16_t *w, int64_t pstride, const float *bias, float *y,
                           int64_t ldy, int acc)
{
    const int P = SOTTO_F16_PANEL;
    if (M <= 2) {
        for (int n = n0; n < n1;) {
            const int left = n1 - n, step = (left > 16 && n % P == 0) ? 32 : 16;
            const int vd = left < step ? left : step;
            const float *b = bias ? bias + n : NULL;
            const uint16_t *wn = w + (int64_t)(n / P) * pstride + n % P;
            if (M == 2 && step == 32)
                tile_f16_2x4(K, x, ldx, wn, P, b, y + n, ldy, acc, vd);
            else if (M == 2)
                tile_f16_2x2(K, x, ldx, wn, P, b, y + n, ldy, acc, vd);
            else if (step == 32)
                tile_f16_1x4(K, x, ldx, wn, P, b, y + n, ldy, acc, vd);
            else
                tile_f16_1x2(K, x, ldx, wn, P, b, y + n, ldy, acc, vd);
            n += step;
        }
        return;
    }
    const int rem = M % 6, M6 = M - rem;
    for (int n = n0; n < n1; n += 16) {
        const int vd = n1 - n < 16 ? n1 - n : 16;
        const float *b = bias ? bias + n : NULL;
        const uint16_t *wn = w + (int64_t)(n / P) * pstride + n % P;
        for (int m = 0; m < M6; m += 6)
            tile_f16_6x2(K, x + m * ldx, ldx, wn, P, b, y + m * ldy + n, ldy, acc, vd);
        const float *xr = x + M6 * ldx;
        float *yr = y + M6 * ldy + n;
        switch (rem) {
        case 5:
            tile_f16_5x2(K, xr, ldx, wn, P, b, yr, ldy, acc, vd);
            break;
        case 4:
            tile_f16_4x2(K, xr, ldx, wn, P, b, yr, ldy, acc, vd);
            break;
        case 3:
            tile_f16_3x2(K, xr, ldx, wn, P, b, yr, ldy, acc, vd);
            break;
        case 2:
            tile_f16_2x2(K, xr, ldx, wn, P, b, yr, ldy, acc, vd);
            break;
        case 1:
            tile_f16_1x2(K, xr, ldx, wn, P, b, yr, ldy, acc, vd);
            break;
        default:
            break;
        }
    }
}

/* K in slices of GEMM_KC: a slice of a 16-column weight panel (KC lines) and of the input
 * rows stay in L1 while every row block passes over them; later slices accumulate. Every M is
 * sliced the same way, so a row's sum never depends on how many rows come with it (a stream
 * step of 1 row equals the same row of a 64-row offline step bit for bit). */
#ifndef GEMM_KC
#define GEMM_KC 256
#endif
#define GEMM_KSLICED(NAME, WT, BLOCK)                                                              \
    static void NAME(int M, int K, int n0, int n1, const float *x, int64_t ldx, const WT *w,       \
                     int64_t ldw, const float *bias, float *y, int64_t ldy, int acc)               \
    {                                                                                              \
        if (K <= GEMM_KC) {                                                                        \
            BLOCK(M, K, n0, n1, x, ldx, w, ldw, bias, y, ldy, acc);                                \
            return;                                                                                \
        }                                                                                          \
        for (int k0 = 0; k0 < K; k0 += GEMM_KC) {                                                  \
            const int kc = K - k0 < GEMM_KC ? K - k0 : GEMM_KC;                                    \
            BLOCK(M, kc, n0, n1, x + k0, ldx, w + (int64_t)k0 * ldw, ldw, k0 ? NULL : bias, y,     \
                  ldy, k0 ? 1 : acc);                                                              \
        }                                                                                          \
    }

GEMM_KSLICED(gemm_f32_avx2, float, gemm_f32_block)

/* K slices of panel-major f16 weights: slice k0 starts k0 rows into every panel. */
static void gemm_f16_avx2(int M, int K, int n0, int n1, const float *x, int64_t ldx,
                          const uint16_t *w, int64_t pstride, const float *bias, float *y,
                          int64_t ldy, int acc)
{
    if (K <= GEMM_KC) {
        gemm_f16_block(M, K, n0, n1, x, ldx, w, pstride, bias, y, ldy, acc);
        return;
    }
    for (int k0 = 0; k0 < K; k0 += GEMM_KC) {
        const int kc = K - k0 < GEMM_KC ? K - k0 : GEMM_KC;
        gemm_f16_block(M, kc, n0, n1, x + k0, ldx, w + (int64_t)k0 * SOTTO_F16_PANEL, pstride,
                       k0 ? NULL : bias, y, ldy, k0 ? 1 : acc);
    }
}

/* ---- f16 conversion ------------------------------------------------------------------------ */

static void f16_to_f32_f16c(const uint16_t *x, int64_t n, float *y)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, load_w_f16(x + i));
    for (; i < n; i++)
        y[i] = sotto_f16_to_f32(x[i]);
}

static void f32_to_f16_f16c(const float *x, int64_t n, uint16_t *y)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(y + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++)
        y[i] = sotto_f32_to_f16(x[i]);
}

void sotto_cpu_kernels_avx2(sotto_cpu_kernels *k, unsigned features)
{
    const unsigned need = SOTTO_CPU_AVX2 | SOTTO_CPU_FMA;
    if ((features & need) != need) return;
    k->name = "avx2";
    k->isa |= need;
    k->gemm_f32 = gemm_f32_avx2;
    k->dwconv = dwconv_avx2;
    k->layernorm = layernorm_avx2;
    k->rmsnorm = rmsnorm_avx2;
    k->gelu_erf = gelu_erf_avx2;
    k->gelu_tanh = gelu_tanh_avx2;
    k->silu = silu_avx2;
    k->tanh = tanh_avx2;
    k->elu = elu_avx2;
    k->leaky_relu = leaky_relu_avx2;
    k->snake = snake_avx2;
    k->softmax = softmax_avx2;
    if (features & SOTTO_CPU_F16C) {
        k->isa |= SOTTO_CPU_F16C;
        k->gemm_f16 = gemm_f16_avx2;
        k->f16_to_f32 = f16_to_f32_f16c;
        k->f32_to_f16 = f32_to_f16_f16c;
    }
}

#else

void sotto_cpu_kernels_avx2(sotto_cpu_kernels *k, unsigned features)
{
    (void)k;
    (void)features;
}

#endif
