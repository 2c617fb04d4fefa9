/*
 * AVX-512 variants of the two GEMM kernels (f32 weights and f16 panel-major weights), built
 * with -mavx512f -mfma -mf16c; nothing in it runs unless sotto_cpu_init found AVX-512F (with
 * the OS saving the ZMM and opmask state) in the allowed features. The other kernels stay the
 * AVX2 ones: they are memory- or transcendental-bound and gain little from wider vectors.
 *
 * Same contract and the same structure as the AVX2 GEMM (kernels_avx2.c): a tile of MR rows
 * by NV vectors of 16 columns accumulates over the whole K range in registers (32 ZMM
 * registers: the 8 × 2 tile keeps 16 sums, 2 weight vectors and a broadcast), the weights are
 * prefetched GEMM_PF rows ahead, K is cut into GEMM_KC slices so a slice of the weight panel
 * stays in L1 while every row block passes over it. Differences: the f32 tile's columns past
 * `valid` are never loaded (masked loads), so the kernel reads exactly the columns the
 * contract allows whatever the tile width; f16 panels are read whole (they are zero-padded to
 * 32 columns by contract). Summation order per output is k = 0..K−1 within a slice, as in
 * the AVX2 and scalar kernels, so results differ from them only by FMA rounding.
 */
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

#define GEMM_TILES(NAME, WT, LOADW)                                                                \
    GEMM_TILE(NAME, WT, LOADW, 8, 2)                                                               \
    GEMM_TILE(NAME, WT, LOADW, 4, 2)                                                               \
    GEMM_TILE(NAME, WT, LOADW, 2, 2)                                                               \
    GEMM_TILE(NAME, WT, LOADW, 1, 2)                                                               \
    GEMM_TILE(NAME, WT, LOADW, 8, 1)                                                               \
    GEMM_TILE(NAME, WT, LOADW, 4, 1)                                                               \
    GEMM_TILE(NAME, WT, LOADW, 2, 1)                                                               \
    GEMM_TILE(NAME, WT, LOADW, 1, 1)

GEMM_TILES(tile_f32, float, load_w_f32)
GEMM_TILES(tile_f16, uint16_t, load_w_f16)
GEMM_TILE(tile_f32, float, load_w_f32, 2, 4)
GEMM_TILE(tile_f32, float, load_w_f32, 1, 4)

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
    if (K <= GEMM_KC || M <= 2) {
        gemm_f32_block(M, K, n0, n1, x, ldx, w, ldw, bias, y, ldy, acc);
        return;
    }
    for (int k0 = 0; k0 < K; k0 += GEMM_KC) {
        const int kc = K - k0 < GEMM_KC ? K - k0 : GEMM_KC;
        gemm_f32_block(M, kc, n0, n1, x + k0, ldx, w + (int64_t)k0 * ldw, ldw, k0 ? NULL : bias,
                       y, ldy, k0 ? 1 : acc);
    }
}

static void gemm_f16_avx512(int M, int K, int n0, int n1, const float *x, int64_t ldx,
                            const uint16_t *w, int64_t pstride, const float *bias, float *y,
                            int64_t ldy, int acc)
{
    if (K <= GEMM_KC || M <= 2) {
        gemm_f16_block(M, K, n0, n1, x, ldx, w, pstride, bias, y, ldy, acc);
        return;
    }
    for (int k0 = 0; k0 < K; k0 += GEMM_KC) {
        const int kc = K - k0 < GEMM_KC ? K - k0 : GEMM_KC;
        gemm_f16_block(M, kc, n0, n1, x + k0, ldx, w + (int64_t)k0 * SOTTO_F16_PANEL, pstride,
                       k0 ? NULL : bias, y, ldy, k0 ? 1 : acc);
    }
}

void sotto_cpu_kernels_avx512(sotto_cpu_kernels *k, unsigned features)
{
    const unsigned need = SOTTO_CPU_AVX512 | SOTTO_CPU_FMA;
    if ((features & need) != need) return;
    k->name = "avx512";
    k->isa |= need;
    k->gemm_f32 = gemm_f32_avx512;
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
