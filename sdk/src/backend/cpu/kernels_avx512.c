/*
 * AVX-512 variants of the CPU kernels, built with -mavx512f -mfma -mf16c; nothing in it runs
 * unless sotto_cpu_init found AVX-512F (with the OS saving the ZMM and opmask state) in the
 * allowed features. The f32 and f16 GEMMs, depthwise conv, the norms, the activations, snake
 * and softmax are replaced; the f16 conversions stay the AVX2/F16C ones. The non-GEMM
 * kernels are the AVX2 ones on 16 lanes (see "non-GEMM kernels" below).
 *
 * Same contract and the same structure as the AVX2 GEMM (kernels_avx2.c): a tile of MR rows
 * by NV vectors of 16 columns accumulates over the whole K range in registers (32 ZMM
 * registers: the 8 × 2 tile keeps 16 sums, 2 weight vectors and a broadcast), the weights are
 * prefetched GEMM_PF rows ahead, K is cut into GEMM_KC slices so a slice of the weight panel
 * stays in L1 while every row block passes over it (every M sliced alike, so a row's sum does
 * not depend on the rows computed with it). Differences: the f32 tile's columns past
 * `valid` are never loaded (masked loads), so the kernel reads exactly the columns the
 * contract allows whatever the tile width; f16 panels are read whole (they are zero-padded to
 * 32 columns by contract). Summation order per output is k = 0..K−1 within a slice, as in
 * the AVX2 and scalar kernels, so results differ from them only by FMA rounding.
 */
#include <math.h>
#include <stdint.h>

#include "backend/cpu/cpu.h"
#include "core/core.h"

#if defined(__AVX512F__) && defined(__FMA__)
#include <immintrin.h>

#if defined(__GNUC__) && !defined(__clang__)
#define UNROLL _Pragma("GCC unroll 16")
#elif defined(__clang__)
#define UNROLL _Pragma("unroll")
#else
#define UNROLL
#endif

#ifndef GEMM_PF
#define GEMM_PF 64
#endif
#ifndef GEMM_KC
#define GEMM_KC 256
#endif

/* Lanes 0..n−1 of a 16-lane mask (n clamped to 0..16). */
static inline __mmask16 lanes(int n)
{
    return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1u);
}

static inline __m512 load_w_f32(const float *w, __mmask16 m)
{
    return _mm512_maskz_loadu_ps(m, w);
}

static inline __m512 load_w_f16(const uint16_t *w, __mmask16 m)
{
    (void)m; /* panels are padded to 32 columns: read whole */
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)w));
}

static inline void store_seg(float *y, __m512 v, const float *bias, int acc, __mmask16 m)
{
    if (acc) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, y));
    if (bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, bias));
    _mm512_mask_storeu_ps(y, m, v);
}

#define GEMM_TILE(NAME, WT, LOADW, MR, NV)                                                         \
    static inline void NAME##_##MR##x##NV(int K, const float *x, int64_t ldx, const WT *w,         \
                                          int64_t ldw, const float *bias, float *y, int64_t ldy,   \
                                          int acc, int valid)                                      \
    {                                                                                              \
        __m512 c[MR][NV];                                                                          \
        __mmask16 m[NV];                                                                           \
        UNROLL                                                                                     \
        for (int v = 0; v < NV; v++)                                                               \
            m[v] = lanes(valid - 16 * v);                                                          \
        UNROLL                                                                                     \
        for (int r = 0; r < MR; r++)                                                               \
            UNROLL                                                                                 \
        for (int v = 0; v < NV; v++)                                                               \
            c[r][v] = _mm512_setzero_ps();                                                         \
        for (int k = 0; k < K; k++) {                                                              \
            __m512 wv[NV];                                                                         \
            _mm_prefetch((const char *)(w + (int64_t)(k + GEMM_PF) * ldw), _MM_HINT_T0);           \
            UNROLL                                                                                 \
            for (int v = 0; v < NV; v++)                                                           \
                wv[v] = LOADW(w + (int64_t)k * ldw + 16 * v, m[v]);                                \
            UNROLL                                                                                 \
            for (int r = 0; r < MR; r++) {                                                         \
                const __m512 b = _mm512_set1_ps(x[(int64_t)r * ldx + k]);                          \
                UNROLL                                                                             \
                for (int v = 0; v < NV; v++)                                                       \
                    c[r][v] = _mm512_fmadd_ps(b, wv[v], c[r][v]);                                  \
            }                                                                                      \
        }                                                                                          \
        UNROLL                                                                                     \
        for (int r = 0; r < MR; r++)                                                               \
            UNROLL                                                                                 \
        for (int v = 0; v < NV; v++)                                                               \
            if (16 * v < valid)                                                                    \
                store_seg(y + (int64_t)r * ldy + 16 * v, c[r][v], bias ? bias + 16 * v : NULL,     \
                          acc, m[v]);                                                              \
    }

/* The tiles the drivers below use: f32 in 32-column strips (and 64 columns for 1-2 rows),
 * f16 in whole 32-column panels or 16-column half panels. */
#define GEMM_TILES_32(NAME, WT, LOADW)                                                             \
    GEMM_TILE(NAME, WT, LOADW, 8, 2)                                                               \
    GEMM_TILE(NAME, WT, LOADW, 4, 2)                                                               \
    GEMM_TILE(NAME, WT, LOADW, 2, 2)                                                               \
    GEMM_TILE(NAME, WT, LOADW, 1, 2)

GEMM_TILES_32(tile_f32, float, load_w_f32)
GEMM_TILE(tile_f32, float, load_w_f32, 2, 4)
GEMM_TILE(tile_f32, float, load_w_f32, 1, 4)
GEMM_TILES_32(tile_f16, uint16_t, load_w_f16)
GEMM_TILE(tile_f16, uint16_t, load_w_f16, 8, 1)
GEMM_TILE(tile_f16, uint16_t, load_w_f16, 4, 1)
GEMM_TILE(tile_f16, uint16_t, load_w_f16, 2, 1)
GEMM_TILE(tile_f16, uint16_t, load_w_f16, 1, 1)

/*
 * Rows [0, M) of one column strip of width NV·16 (NV 1 or 2): blocks of 8 rows, then the
 * last 1..7 rows as 4 + 2 + 1 while the strip's weights are still in cache.
 */
#define GEMM_STRIP(NAME, WT, T, NV)                                                                \
    static void NAME(int M, int K, const float *x, int64_t ldx, const WT *w, int64_t ldw,          \
                     const float *b, float *y, int64_t ldy, int acc, int vd)                       \
    {                                                                                              \
        int m = 0;                                                                                 \
        for (; m + 8 <= M; m += 8)                                                                 \
            T##_8x##NV(K, x + m * ldx, ldx, w, ldw, b, y + m * ldy, ldy, acc, vd);                 \
        if (M - m >= 4) {                                                                          \
            T##_4x##NV(K, x + m * ldx, ldx, w, ldw, b, y + m * ldy, ldy, acc, vd);                 \
            m += 4;                                                                                \
        }                                                                                          \
        if (M - m >= 2) {                                                                          \
            T##_2x##NV(K, x + m * ldx, ldx, w, ldw, b, y + m * ldy, ldy, acc, vd);                 \
            m += 2;                                                                                \
        }                                                                                          \
        if (M - m >= 1) T##_1x##NV(K, x + m * ldx, ldx, w, ldw, b, y + m * ldy, ldy, acc, vd);     \
    }

GEMM_STRIP(strip_f32_2, float, tile_f32, 2)
GEMM_STRIP(strip_f16_2, uint16_t, tile_f16, 2)
GEMM_STRIP(strip_f16_1, uint16_t, tile_f16, 1)

/* f32: one or two rows (streaming steps) in 64-column tiles, so each broadcast feeds four
 * FMAs; more rows in 32-column strips. */
static void gemm_f32_block(int M, int K, int n0, int n1, const float *x, int64_t ldx,
                           const float *w, int64_t ldw, const float *bias, float *y, int64_t ldy,
                           int acc)
{
    if (M <= 2) {
        for (int n = n0; n < n1; n += 64) {
            const int vd = n1 - n < 64 ? n1 - n : 64;
            const float *b = bias ? bias + n : NULL;
            if (M == 2)
                tile_f32_2x4(K, x, ldx, w + n, ldw, b, y + n, ldy, acc, vd);
            else
                tile_f32_1x4(K, x, ldx, w + n, ldw, b, y + n, ldy, acc, vd);
        }
        return;
    }
    for (int n = n0; n < n1; n += 32) {
        const int vd = n1 - n < 32 ? n1 - n : 32;
        strip_f32_2(M, K, x, ldx, w + n, ldw, bias ? bias + n : NULL, y + n, ldy, acc, vd);
    }
}

/* f16 over panel-major weights (backend.h): a 32-column strip is one panel (rows 32 halves
 * apart); n0 may fall in the middle of a panel (column splits are multiples of 16), which
 * takes a 16-column strip first. One or two rows go panel by panel too (each broadcast feeds
 * two FMAs): a 64-column tile would span two panels. */
static void gemm_f16_block(int M, int K, int n0, int n1, const float *x, int64_t ldx,
                           const uint16_t *w, int64_t pstride, const float *bias, float *y,
                           int64_t ldy, int acc)
{
    const int P = SOTTO_F16_PANEL;
    for (int n = n0; n < n1;) {
        const int half = n % P != 0 || n1 - n <= 16;
        const int step = half ? 16 : 32;
        const int vd = n1 - n < step ? n1 - n : step;
        const float *b = bias ? bias + n : NULL;
        const uint16_t *wn = w + (int64_t)(n / P) * pstride + n % P;
        if (half)
            strip_f16_1(M, K, x, ldx, wn, P, b, y + n, ldy, acc, vd);
        else
            strip_f16_2(M, K, x, ldx, wn, P, b, y + n, ldy, acc, vd);
        n += step;
    }
}

static void gemm_f32_avx512(int M, int K, int n0, int n1, const float *x, int64_t ldx,
                            const float *w, int64_t ldw, const float *bias, float *y, int64_t ldy,
                            int acc)
{
    if (K <= GEMM_KC) {
        gemm_f32_block(M, K, n0, n1, x, ldx, w, ldw, bias, y, ldy, acc);
        return;
    }
    for (int k0 = 0; k0 < K; k0 += GEMM_KC) {
        const int kc = K - k0 < GEMM_KC ? K - k0 : GEMM_KC;
        gemm_f32_block(M, kc, n0, n1, x + k0, ldx, w + (int64_t)k0 * ldw, ldw, k0 ? NULL : bias, y,
                       ldy, k0 ? 1 : acc);
    }
}

static void gemm_f16_avx512(int M, int K, int n0, int n1, const float *x, int64_t ldx,
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

/* ---- non-GEMM kernels ----------------------------------------------------------------------
 * Lane for lane the AVX2 kernels' math (kernels_avx2.c): the same polynomial fits, range
 * reductions and blends, so an element-wise result equals the AVX2 one bit for bit. Tails
 * use masked loads and stores (masked-off lanes are neither read nor written). Reductions
 * (norms, softmax) sum 16 lanes instead of 8, which changes only the rounding of the sums. */

#define ALWAYS_INLINE inline __attribute__((always_inline))

static ALWAYS_INLINE __m512 abs512(__m512 x)
{
    return _mm512_castsi512_ps(
        _mm512_and_epi32(_mm512_castps_si512(x), _mm512_set1_epi32(0x7fffffff)));
}

/* |a| with the sign bit of s */
static ALWAYS_INLINE __m512 copysign512(__m512 a, __m512 s)
{
    return _mm512_castsi512_ps(_mm512_or_epi32(
        _mm512_castps_si512(a),
        _mm512_and_epi32(_mm512_castps_si512(s), _mm512_set1_epi32((int)0x80000000u))));
}

static ALWAYS_INLINE __m512 exp512(__m512 x)
{
    const __m512 hi = _mm512_set1_ps(88.3762626647949f);  /* larger rounds n to 128: inf */
    const __m512 lo = _mm512_set1_ps(-87.3365478515625f); /* below: < FLT_MIN, flushed */
    const __mmask16 over = _mm512_cmp_ps_mask(x, hi, _CMP_GT_OQ);
    const __mmask16 under = _mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ);
    __m512 xc = _mm512_max_ps(_mm512_min_ps(x, hi), lo);
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), xc);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    __m512i e =
        _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    __m512 y = _mm512_mul_ps(p, _mm512_castsi512_ps(e));
    y = _mm512_mask_blend_ps(over, y, _mm512_set1_ps(INFINITY));
    y = _mm512_maskz_mov_ps((__mmask16)~under, y);
    /* NaN in, NaN out (the clamps above would turn it into a number). */
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), y, x);
}

/* expm1 for x ≤ 0 (the ELU branch): Taylor series near 0 where exp(x) − 1 would cancel. */
static ALWAYS_INLINE __m512 expm1_neg512(__m512 x)
{
    __m512 p = _mm512_set1_ps(1.0f / 3628800.0f);
    p = _mm512_fmadd_ps(p, x, _mm512_set1_ps(1.0f / 362880.0f));
    p = _mm512_fmadd_ps(p, x, _mm512_set1_ps(1.0f / 40320.0f));
    p = _mm512_fmadd_ps(p, x, _mm512_set1_ps(1.0f / 5040.0f));
    p = _mm512_fmadd_ps(p, x, _mm512_set1_ps(1.0f / 720.0f));
    p = _mm512_fmadd_ps(p, x, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, x, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, x, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, x, _mm512_set1_ps(0.5f));
    __m512 small = _mm512_fmadd_ps(_mm512_mul_ps(p, x), x, x);
    __m512 big = _mm512_sub_ps(exp512(x), _mm512_set1_ps(1.0f));
    const __mmask16 is_small = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-0.5f), _CMP_GT_OQ);
    return _mm512_mask_blend_ps(is_small, big, small);
}

static ALWAYS_INLINE __m512 tanh512(__m512 x)
{
    __m512 ax = abs512(x);
    /* |x| < 0.625: x + x³·P(x²) */
    __m512 z = _mm512_mul_ps(x, x);
    __m512 p = _mm512_set1_ps(2.182748867e-03f);
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(-8.220207877e-03f));
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(2.171770483e-02f));
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(-5.394979566e-02f));
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(1.333322972e-01f));
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(-3.333333135e-01f));
    __m512 small = _mm512_fmadd_ps(_mm512_mul_ps(p, z), x, x);
    /* otherwise 1 − 2/(e^{2|x|} + 1), with the sign of x; |x| ≥ 9 rounds to 1 */
    __m512 e = exp512(_mm512_add_ps(_mm512_min_ps(ax, _mm512_set1_ps(9.0f)),
                                    _mm512_min_ps(ax, _mm512_set1_ps(9.0f))));
    __m512 big =
        _mm512_sub_ps(_mm512_set1_ps(1.0f),
                      _mm512_div_ps(_mm512_set1_ps(2.0f), _mm512_add_ps(e, _mm512_set1_ps(1.0f))));
    big = copysign512(big, x);
    const __mmask16 is_small = _mm512_cmp_ps_mask(ax, _mm512_set1_ps(0.625f), _CMP_LT_OQ);
    __m512 y = _mm512_mask_blend_ps(is_small, big, small);
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), y, x);
}

/* erfc(z) for z ≥ 0, and erf(z) = 1 − erfc(z), both through one evaluation. */
static ALWAYS_INLINE void erf_erfc512(__m512 z, __m512 *erf_out, __m512 *erfc_out)
{
    const __m512 one = _mm512_set1_ps(1.0f);
    /* z < 1: erf(z) = z·P(z²) */
    __m512 z2 = _mm512_mul_ps(z, z);
    __m512 p = _mm512_set1_ps(8.006993448e-05f);
    p = _mm512_fmadd_ps(p, z2, _mm512_set1_ps(-8.053781930e-04f));
    p = _mm512_fmadd_ps(p, z2, _mm512_set1_ps(5.192960612e-03f));
    p = _mm512_fmadd_ps(p, z2, _mm512_set1_ps(-2.685607038e-02f));
    p = _mm512_fmadd_ps(p, z2, _mm512_set1_ps(1.128363460e-01f));
    p = _mm512_fmadd_ps(p, z2, _mm512_set1_ps(-3.761262894e-01f));
    p = _mm512_fmadd_ps(p, z2, _mm512_set1_ps(1.128379226e+00f));
    __m512 e_small = _mm512_mul_ps(p, z);
    /* z ≥ 1: erfc(z) = exp(−z²)·erfcx(z); past z = 10 the result is 0 in float anyway */
    __m512 zc = _mm512_min_ps(_mm512_max_ps(z, one), _mm512_set1_ps(10.0f));
    __m512 t = _mm512_div_ps(one, _mm512_add_ps(one, zc));
    __m512 r = _mm512_set1_ps(1.713000894e+00f);
    r = _mm512_fmadd_ps(r, t, _mm512_set1_ps(-3.763966084e+00f));
    r = _mm512_fmadd_ps(r, t, _mm512_set1_ps(2.370579481e+00f));
    r = _mm512_fmadd_ps(r, t, _mm512_set1_ps(6.879634261e-01f));
    r = _mm512_fmadd_ps(r, t, _mm512_set1_ps(-1.178933859e+00f));
    r = _mm512_fmadd_ps(r, t, _mm512_set1_ps(-1.593251675e-01f));
    r = _mm512_fmadd_ps(r, t, _mm512_set1_ps(2.636462152e-01f));
    r = _mm512_fmadd_ps(r, t, _mm512_set1_ps(5.658361912e-01f));
    r = _mm512_fmadd_ps(r, t, _mm512_set1_ps(5.641085505e-01f));
    r = _mm512_fmadd_ps(r, t, _mm512_set1_ps(1.691344892e-06f));
    __m512 sq = _mm512_mul_ps(zc, zc);
    __m512 sq_err = _mm512_fmsub_ps(zc, zc, sq); /* zc² − sq exactly */
    __m512 ex = exp512(_mm512_sub_ps(_mm512_setzero_ps(), sq));
    ex = _mm512_fnmadd_ps(ex, sq_err, ex); /* exp(−sq − err) ≈ exp(−sq)·(1 − err) */
    __m512 c_big = _mm512_mul_ps(ex, r);
    const __mmask16 is_small = _mm512_cmp_ps_mask(z, one, _CMP_LT_OQ);
    *erf_out = _mm512_mask_blend_ps(is_small, _mm512_sub_ps(one, c_big), e_small);
    *erfc_out = _mm512_mask_blend_ps(is_small, c_big, _mm512_sub_ps(one, e_small));
}

/* sin²(y), y of moderate size (|y| < 4e5 keeps the reduction exact). */
static ALWAYS_INLINE __m512 sin2_512(__m512 y)
{
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(y, _mm512_set1_ps(0.318309886183790672f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(3.140625f), y);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(9.67502593994140625e-4f), r);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.509957990978376432e-7f), r);
    /* |r| ≤ π/2: odd Taylor polynomial to r¹¹ (sin(y) = ±sin(r); squared, the sign goes) */
    __m512 r2 = _mm512_mul_ps(r, r);
    __m512 p = _mm512_set1_ps(-2.5052108385441720e-8f);
    p = _mm512_fmadd_ps(p, r2, _mm512_set1_ps(2.7557319223985893e-6f));
    p = _mm512_fmadd_ps(p, r2, _mm512_set1_ps(-1.9841269841269841e-4f));
    p = _mm512_fmadd_ps(p, r2, _mm512_set1_ps(8.3333333333333333e-3f));
    p = _mm512_fmadd_ps(p, r2, _mm512_set1_ps(-1.6666666666666667e-1f));
    __m512 s = _mm512_fmadd_ps(_mm512_mul_ps(p, r2), r, r);
    return _mm512_mul_ps(s, s);
}

/* sin and cos of 16 lanes: x = n·π/2 + r with |r| ≤ π/4 (Cody–Waite, π/2 in three parts, exact
 * products for |n| < 2^16), minimax polynomials for sin r and cos r on [−π/4, π/4] (the
 * Cephes sinf/cosf coefficients), then the quadrant n mod 4 swaps and negates them. Valid for
 * |x| ≤ SINCOS_MAX; sincos_avx512 sends larger or non-finite lanes to libm. */
#define SINCOS_MAX 8192.0f
static ALWAYS_INLINE void sincos512(__m512 x, __m512 *s_out, __m512 *c_out)
{
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(0.636619772367581343f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.5703125f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(4.837512969970703125e-4f), r);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(7.54978995489188216e-8f), r);
    const __m512 r2 = _mm512_mul_ps(r, r);
    __m512 ps = _mm512_set1_ps(-1.9515295891e-4f);
    ps = _mm512_fmadd_ps(ps, r2, _mm512_set1_ps(8.3321608736e-3f));
    ps = _mm512_fmadd_ps(ps, r2, _mm512_set1_ps(-1.6666654611e-1f));
    const __m512 sr = _mm512_fmadd_ps(_mm512_mul_ps(ps, r2), r, r);
    __m512 pc = _mm512_set1_ps(2.443315711809948e-5f);
    pc = _mm512_fmadd_ps(pc, r2, _mm512_set1_ps(-1.388731625493765e-3f));
    pc = _mm512_fmadd_ps(pc, r2, _mm512_set1_ps(4.166664568298827e-2f));
    const __m512 cr =
        _mm512_fmadd_ps(_mm512_mul_ps(pc, r2), r2,
                        _mm512_fnmadd_ps(_mm512_set1_ps(0.5f), r2, _mm512_set1_ps(1.0f)));
    /* quadrant q: sin x = (sr, cr, −sr, −cr)[q], cos x = (cr, −sr, −cr, sr)[q] */
    const __m512i q = _mm512_and_si512(_mm512_cvtps_epi32(n), _mm512_set1_epi32(3));
    const __mmask16 odd = _mm512_test_epi32_mask(q, _mm512_set1_epi32(1));
    const __mmask16 sneg = _mm512_test_epi32_mask(q, _mm512_set1_epi32(2));
    const __mmask16 cneg = _mm512_kxor(odd, sneg);
    __m512 sv = _mm512_mask_blend_ps(odd, sr, cr);
    __m512 cv = _mm512_mask_blend_ps(odd, cr, sr);
    const __m512i sign = _mm512_set1_epi32((int)0x80000000u);
    *s_out = _mm512_castsi512_ps(
        _mm512_mask_xor_epi32(_mm512_castps_si512(sv), sneg, _mm512_castps_si512(sv), sign));
    *c_out = _mm512_castsi512_ps(
        _mm512_mask_xor_epi32(_mm512_castps_si512(cv), cneg, _mm512_castps_si512(cv), sign));
}

static void sincos_avx512(const float *x, int64_t n, float *s, float *c)
{
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = lanes((int)(n - i < 16 ? n - i : 16));
        const __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        __m512 sv, cv;
        sincos512(v, &sv, &cv);
        _mm512_mask_storeu_ps(s + i, m, sv);
        _mm512_mask_storeu_ps(c + i, m, cv);
        /* |x| > SINCOS_MAX, inf and NaN (not ≤): libm, lane by lane */
        const __mmask16 big =
            _mm512_mask_cmp_ps_mask(m, abs512(v), _mm512_set1_ps(SINCOS_MAX), _CMP_NLE_UQ);
        if (big)
            for (int j = 0; j < 16; j++)
                if (big & (1u << j)) {
                    s[i + j] = sinf(x[i + j]);
                    c[i + j] = cosf(x[i + j]);
                }
    }
}

/* Runs OP over n floats: two vectors per step, then single vectors, then a masked tail (never
 * reads or writes past the arrays; in-place calls stay correct). */
#define ELEMENTWISE(name, OP)                                                                      \
    static void name(const float *x, int64_t n, float *y)                                          \
    {                                                                                              \
        int64_t i = 0;                                                                             \
        for (; i + 32 <= n; i += 32) {                                                             \
            __m512 v0 = _mm512_loadu_ps(x + i), v1 = _mm512_loadu_ps(x + i + 16);                  \
            _mm512_storeu_ps(y + i, OP(v0));                                                       \
            _mm512_storeu_ps(y + i + 16, OP(v1));                                                  \
        }                                                                                          \
        for (; i + 16 <= n; i += 16)                                                               \
            _mm512_storeu_ps(y + i, OP(_mm512_loadu_ps(x + i)));                                   \
        if (i < n) {                                                                               \
            const __mmask16 m = lanes((int)(n - i));                                               \
            _mm512_mask_storeu_ps(y + i, m, OP(_mm512_maskz_loadu_ps(m, x + i)));                  \
        }                                                                                          \
    }

static ALWAYS_INLINE __m512 gelu_erf_op(__m512 x)
{
    __m512 z = _mm512_mul_ps(abs512(x), _mm512_set1_ps(0.70710678118654752f));
    __m512 e, c;
    erf_erfc512(z, &e, &c);
    /* x ≥ 0: 0.5·x·(1 + erf z); x < 0: 0.5·x·erfc z (no cancellation) */
    const __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
    __m512 h = _mm512_mask_blend_ps(neg, _mm512_add_ps(_mm512_set1_ps(1.0f), e), c);
    return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), x), h);
}

static ALWAYS_INLINE __m512 sigmoid_mul(__m512 x, __m512 u)
{
    /* x / (1 + exp(−u)) */
    __m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), u));
    return _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

static ALWAYS_INLINE __m512 gelu_tanh_op(__m512 x)
{
    __m512 x3 = _mm512_mul_ps(_mm512_mul_ps(x, x), x);
    __m512 u = _mm512_mul_ps(_mm512_set1_ps(0.79788456080286535588f),
                             _mm512_fmadd_ps(_mm512_set1_ps(0.044715f), x3, x));
    return sigmoid_mul(x, _mm512_add_ps(u, u));
}

static ALWAYS_INLINE __m512 silu_op(__m512 x)
{
    return sigmoid_mul(x, x);
}

ELEMENTWISE(gelu_erf_avx512, gelu_erf_op)
ELEMENTWISE(gelu_tanh_avx512, gelu_tanh_op)
ELEMENTWISE(silu_avx512, silu_op)
ELEMENTWISE(tanh_avx512, tanh512)

static void elu_avx512(const float *x, int64_t n, float alpha, float *y)
{
    const __m512 a = _mm512_set1_ps(alpha), zero = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = lanes(n - i > 16 ? 16 : (int)(n - i));
        __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        __m512 neg = _mm512_mul_ps(a, expm1_neg512(_mm512_min_ps(v, zero)));
        const __mmask16 pos = _mm512_cmp_ps_mask(v, zero, _CMP_GT_OQ);
        _mm512_mask_storeu_ps(y + i, m, _mm512_mask_blend_ps(pos, neg, v));
    }
}

static void leaky_relu_avx512(const float *x, int64_t n, float slope, float *y)
{
    const __m512 s = _mm512_set1_ps(slope), zero = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = lanes(n - i > 16 ? 16 : (int)(n - i));
        __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        const __mmask16 pos = _mm512_cmp_ps_mask(v, zero, _CMP_GT_OQ);
        _mm512_mask_storeu_ps(y + i, m, _mm512_mask_blend_ps(pos, _mm512_mul_ps(v, s), v));
    }
}

/* Snake: y = x + inv·sin²(α·x) with inv = 1/(α + 1e-9), the AVX2 kernel's per-lane math.
 * α and inv depend only on the channel, so they are laid out once over P = lcm(C, 16) floats
 * (P/C rows) and the rows × C values run as one flat array in whole 16-lane vectors, the
 * pattern repeating every P floats: narrow rows (C = 8..48 in the DAC decoders) then fill
 * every lane. Wider channel counts (P over SNAKE_PMAX) go row by row with a masked tail. */
#define SNAKE_PMAX 1024

static ALWAYS_INLINE __m512 snake_inv(__m512 a)
{
    return _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_add_ps(a, _mm512_set1_ps(1e-9f)));
}

static ALWAYS_INLINE __m512 snake_op(__m512 x, __m512 a, __m512 inv)
{
    return _mm512_fmadd_ps(inv, sin2_512(_mm512_mul_ps(a, x)), x);
}

static void snake_avx512(const float *x, int64_t rows, int C, const float *alpha, float *y)
{
    if (rows <= 0 || C <= 0) return;
    int g = C, b = 16;
    while (b) { /* gcd(C, 16) */
        const int t = g % b;
        g = b;
        b = t;
    }
    const int P = C / g * 16;
    if (P <= SNAKE_PMAX) {
        float ab[SNAKE_PMAX] __attribute__((aligned(64)));
        float ib[SNAKE_PMAX] __attribute__((aligned(64)));
        for (int j = 0; j < P; j++)
            ab[j] = alpha[j % C];
        for (int j = 0; j < P; j += 16)
            _mm512_store_ps(ib + j, snake_inv(_mm512_load_ps(ab + j)));
        const int64_t n = rows * (int64_t)C;
        int64_t i = 0;
        int j = 0;
        for (; i + 16 <= n; i += 16) {
            const __m512 a = _mm512_load_ps(ab + j), inv = _mm512_load_ps(ib + j);
            _mm512_storeu_ps(y + i, snake_op(_mm512_loadu_ps(x + i), a, inv));
            j = j + 16 == P ? 0 : j + 16;
        }
        if (i < n) {
            const __mmask16 m = lanes((int)(n - i));
            const __m512 a = _mm512_load_ps(ab + j), inv = _mm512_load_ps(ib + j);
            _mm512_mask_storeu_ps(y + i, m, snake_op(_mm512_maskz_loadu_ps(m, x + i), a, inv));
        }
        return;
    }
    const int cv = C & ~15;
    const __mmask16 m = lanes(C - cv);
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * C;
        float *yr = y + r * C;
        for (int c = 0; c < cv; c += 16) {
            const __m512 a = _mm512_loadu_ps(alpha + c);
            _mm512_storeu_ps(yr + c, snake_op(_mm512_loadu_ps(xr + c), a, snake_inv(a)));
        }
        if (cv < C) {
            const __m512 a = _mm512_maskz_loadu_ps(m, alpha + cv);
            __m512 v = snake_op(_mm512_maskz_loadu_ps(m, xr + cv), a, snake_inv(a));
            _mm512_mask_storeu_ps(yr + cv, m, v);
        }
    }
}

static void softmax_avx512(const float *x, int64_t rows, int n, float *y)
{
    const int nv = n & ~15;
    const __mmask16 m = lanes(n - nv);
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * n;
        float *yr = y + r * n;
        __m512 mx = ninf;
        for (int i = 0; i < nv; i += 16)
            mx = _mm512_max_ps(mx, _mm512_loadu_ps(xr + i));
        if (nv < n) mx = _mm512_max_ps(mx, _mm512_mask_loadu_ps(ninf, m, xr + nv));
        const __m512 mv = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
        __m512 s = _mm512_setzero_ps();
        for (int i = 0; i < nv; i += 16) {
            __m512 e = exp512(_mm512_sub_ps(_mm512_loadu_ps(xr + i), mv));
            _mm512_storeu_ps(yr + i, e);
            s = _mm512_add_ps(s, e);
        }
        if (nv < n) {
            /* masked lanes load 0, whose exp must not enter the sum */
            __m512 e = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, xr + nv), mv));
            e = _mm512_maskz_mov_ps(m, e);
            _mm512_mask_storeu_ps(yr + nv, m, e);
            s = _mm512_add_ps(s, e);
        }
        const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(s));
        for (int i = 0; i < nv; i += 16)
            _mm512_storeu_ps(yr + i, _mm512_mul_ps(_mm512_loadu_ps(yr + i), inv));
        if (nv < n)
            _mm512_mask_storeu_ps(yr + nv, m,
                                  _mm512_mul_ps(_mm512_maskz_loadu_ps(m, yr + nv), inv));
    }
}

/* ---- norms: as the AVX2 kernels (layernorm two-pass), sums over 2 × 16 lanes ------------- */

static void layernorm_avx512(const float *x, int64_t rows, int C, const float *gamma,
                             const float *beta, float eps, float *y)
{
    const int cv = C & ~15;
    const __mmask16 m = lanes(C - cv);
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * C;
        float *yr = y + r * C;
        __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
        int c = 0;
        for (; c + 32 <= cv; c += 32) {
            s0 = _mm512_add_ps(s0, _mm512_loadu_ps(xr + c));
            s1 = _mm512_add_ps(s1, _mm512_loadu_ps(xr + c + 16));
        }
        for (; c < cv; c += 16)
            s0 = _mm512_add_ps(s0, _mm512_loadu_ps(xr + c));
        if (cv < C) s1 = _mm512_add_ps(s1, _mm512_maskz_loadu_ps(m, xr + cv));
        const float mean = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1)) / (float)C;
        const __m512 mv = _mm512_set1_ps(mean);
        __m512 v0 = _mm512_setzero_ps(), v1 = _mm512_setzero_ps();
        for (c = 0; c + 32 <= cv; c += 32) {
            __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(xr + c), mv);
            __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(xr + c + 16), mv);
            v0 = _mm512_fmadd_ps(d0, d0, v0);
            v1 = _mm512_fmadd_ps(d1, d1, v1);
        }
        for (; c < cv; c += 16) {
            __m512 d = _mm512_sub_ps(_mm512_loadu_ps(xr + c), mv);
            v0 = _mm512_fmadd_ps(d, d, v0);
        }
        if (cv < C) {
            __m512 d = _mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, xr + cv), mv);
            v1 = _mm512_fmadd_ps(d, d, v1);
        }
        const float var = _mm512_reduce_add_ps(_mm512_add_ps(v0, v1)) / (float)C;
        const __m512 inv = _mm512_set1_ps(1.0f / sqrtf(var + eps));
        for (c = 0; c < cv; c += 16) {
            __m512 o = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(xr + c), mv), inv);
            if (gamma) o = _mm512_mul_ps(o, _mm512_loadu_ps(gamma + c));
            if (beta) o = _mm512_add_ps(o, _mm512_loadu_ps(beta + c));
            _mm512_storeu_ps(yr + c, o);
        }
        if (cv < C) {
            __m512 o = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, xr + cv), mv), inv);
            if (gamma) o = _mm512_mul_ps(o, _mm512_maskz_loadu_ps(m, gamma + cv));
            if (beta) o = _mm512_add_ps(o, _mm512_maskz_loadu_ps(m, beta + cv));
            _mm512_mask_storeu_ps(yr + cv, m, o);
        }
    }
}

static void rmsnorm_avx512(const float *x, int64_t rows, int C, const float *gamma, float eps,
                           float *y)
{
    const int cv = C & ~15;
    const __mmask16 m = lanes(C - cv);
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * C;
        float *yr = y + r * C;
        __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
        int c = 0;
        for (; c + 32 <= cv; c += 32) {
            __m512 v0 = _mm512_loadu_ps(xr + c), v1 = _mm512_loadu_ps(xr + c + 16);
            s0 = _mm512_fmadd_ps(v0, v0, s0);
            s1 = _mm512_fmadd_ps(v1, v1, s1);
        }
        for (; c < cv; c += 16) {
            __m512 v = _mm512_loadu_ps(xr + c);
            s0 = _mm512_fmadd_ps(v, v, s0);
        }
        if (cv < C) {
            __m512 v = _mm512_maskz_loadu_ps(m, xr + cv);
            s1 = _mm512_fmadd_ps(v, v, s1);
        }
        const float ms = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1)) / (float)C;
        const __m512 inv = _mm512_set1_ps(1.0f / sqrtf(ms + eps));
        for (c = 0; c < cv; c += 16) {
            __m512 o = _mm512_mul_ps(_mm512_loadu_ps(xr + c), inv);
            if (gamma) o = _mm512_mul_ps(o, _mm512_loadu_ps(gamma + c));
            _mm512_storeu_ps(yr + c, o);
        }
        if (cv < C) {
            __m512 o = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, xr + cv), inv);
            if (gamma) o = _mm512_mul_ps(o, _mm512_maskz_loadu_ps(m, gamma + cv));
            _mm512_mask_storeu_ps(yr + cv, m, o);
        }
    }
}

/* ---- depthwise conv: per channel bias, then taps k = 0..K−1 by FMA, as in AVX2 ------------- */

static void dwconv_avx512(const float *x, int C, const float *w, int K, int stride, int dilation,
                          const float *bias, float *y, int64_t t0, int64_t t1)
{
    const int cv = C & ~15;
    const __mmask16 m = lanes(C - cv);
    const int64_t tap = (int64_t)dilation * C;
    for (int64_t t = t0; t < t1; t++) {
        const float *xt = x + t * stride * (int64_t)C;
        float *yr = y + t * C;
        int c = 0;
        for (; c + 64 <= cv; c += 64) {
            __m512 a0, a1, a2, a3;
            if (bias) {
                a0 = _mm512_loadu_ps(bias + c);
                a1 = _mm512_loadu_ps(bias + c + 16);
                a2 = _mm512_loadu_ps(bias + c + 32);
                a3 = _mm512_loadu_ps(bias + c + 48);
            } else {
                a0 = a1 = a2 = a3 = _mm512_setzero_ps();
            }
            for (int k = 0; k < K; k++) {
                const float *xk = xt + k * tap + c, *wk = w + (int64_t)k * C + c;
                a0 = _mm512_fmadd_ps(_mm512_loadu_ps(wk), _mm512_loadu_ps(xk), a0);
                a1 = _mm512_fmadd_ps(_mm512_loadu_ps(wk + 16), _mm512_loadu_ps(xk + 16), a1);
                a2 = _mm512_fmadd_ps(_mm512_loadu_ps(wk + 32), _mm512_loadu_ps(xk + 32), a2);
                a3 = _mm512_fmadd_ps(_mm512_loadu_ps(wk + 48), _mm512_loadu_ps(xk + 48), a3);
            }
            _mm512_storeu_ps(yr + c, a0);
            _mm512_storeu_ps(yr + c + 16, a1);
            _mm512_storeu_ps(yr + c + 32, a2);
            _mm512_storeu_ps(yr + c + 48, a3);
        }
        for (; c < cv; c += 16) {
            __m512 a = bias ? _mm512_loadu_ps(bias + c) : _mm512_setzero_ps();
            for (int k = 0; k < K; k++)
                a = _mm512_fmadd_ps(_mm512_loadu_ps(w + (int64_t)k * C + c),
                                    _mm512_loadu_ps(xt + k * tap + c), a);
            _mm512_storeu_ps(yr + c, a);
        }
        if (cv < C) {
            __m512 a = bias ? _mm512_maskz_loadu_ps(m, bias + cv) : _mm512_setzero_ps();
            for (int k = 0; k < K; k++)
                a = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w + (int64_t)k * C + cv),
                                    _mm512_maskz_loadu_ps(m, xt + k * tap + cv), a);
            _mm512_mask_storeu_ps(yr + cv, m, a);
        }
    }
}

void sotto_cpu_kernels_avx512(sotto_cpu_kernels *k, unsigned features)
{
    const unsigned need = SOTTO_CPU_AVX512 | SOTTO_CPU_FMA;
    if ((features & need) != need) return;
    k->name = "avx512";
    k->isa |= need;
    k->gemm_f32 = gemm_f32_avx512;
    k->dwconv = dwconv_avx512;
    k->layernorm = layernorm_avx512;
    k->rmsnorm = rmsnorm_avx512;
    k->gelu_erf = gelu_erf_avx512;
    k->gelu_tanh = gelu_tanh_avx512;
    k->silu = silu_avx512;
    k->tanh = tanh_avx512;
    k->elu = elu_avx512;
    k->leaky_relu = leaky_relu_avx512;
    k->snake = snake_avx512;
    k->softmax = softmax_avx512;
    k->sincos = sincos_avx512;
    if (features & SOTTO_CPU_F16C) {
        k->isa |= SOTTO_CPU_F16C;
        k->gemm_f16 = gemm_f16_avx512;
    }
}

#else

void sotto_cpu_kernels_avx512(sotto_cpu_kernels *k, unsigned features)
{
    (void)k;
    (void)features;
}

#endif
