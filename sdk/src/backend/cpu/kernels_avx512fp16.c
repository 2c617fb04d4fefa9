/*
 * The binary16-arithmetic GEMM (gemm_h16, backend.h) for CPUs with AVX512-FP16, built with
 * -mavx512fp16 (-mavx512f -mavx512bw -mavx512vl); nothing in it runs unless sotto_cpu_init
 * found SOTTO_CPU_AVX512FP16 in the allowed features. An FP16 FMA does 32 multiply-adds per
 * instruction where an f32 one does 16, which doubles the arithmetic rate of the matrix
 * products that dominate the vocoders and codecs; the price is binary16 rounding of the
 * inputs and of short partial sums, a relative error of about 1e-3 (docs/architecture.md,
 * "Binary16 arithmetic").
 *
 * Scheme (the scalar reference gemm_h16_ref in kernels_ref.c computes the same roundings in the
 * same order, so the two agree bit for bit):
 *   - x is rounded to binary16 a block of H16_RB rows × one K slice at a time into a stack
 *     buffer (the kernel may not allocate), gathering a dilated conv's taps on the way;
 *   - weights are pair-packed (backend.h): one 512-bit load holds 16 columns × 2 consecutive
 *     k, and a 32-bit broadcast holds x[k], x[k+1], so one FMA per 16 columns advances two k
 *     steps, the even k in even lanes and the odd k in odd lanes (no shuffle in the loop);
 *   - every SOTTO_H16_GROUP k pairs the binary16 lanes are folded: even + odd lane in
 *     binary16, narrowed to 16 halves (vpmovdw), widened to f32 and added to an f32
 *     accumulator, so no binary16 sum runs over more than SOTTO_H16_GROUP products;
 *   - K is cut into slices of SOTTO_H16_KC; a slice's f32 sums are added to y in f32.
 * The tile is 6 rows × 32 columns: 12 binary16 and 12 f32 accumulators, two weight vectors and
 * a broadcast (27 of 32 ZMM registers).
 */
#include <stdint.h>

#include "backend/cpu/cpu.h"
#include "core/core.h"

#if defined(__AVX512FP16__) && defined(__AVX512BW__)
#include <immintrin.h>

#if defined(__GNUC__) && !defined(__clang__)
#define UNROLL _Pragma("GCC unroll 16")
#elif defined(__clang__)
#define UNROLL _Pragma("unroll")
#else
#define UNROLL
#endif

/* Rows of x rounded to binary16 per block: the block is H16_RB × SOTTO_H16_KC halves (32 KiB
 * on the stack) and every 32-column weight strip of a slice (16 KiB) stays in L1 while the
 * block's row tiles pass over it. */
#define H16_RB 64
/* Weight pair rows prefetched ahead, by the first row tile of a strip only: it reads the strip
 * from L2 or memory (a 64-frame step of a vocoder reads every weight once); the later tiles
 * find it in L1. */
#ifndef H16_PF
#define H16_PF 64
#endif

static inline __mmask16 lanes(int n)
{
    return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1u);
}

/* One tile: MR rows × NV·16 columns over np k pairs. xs: binary16 rows ldxs halves apart; w:
 * the first pair row of the tile's columns (pair rows 64 halves apart, the NV vectors 32
 * halves apart). The result goes to y like the f32 GEMM's (acc, bias), masked to `valid`
 * columns; pf: prefetch the weights ahead. */
#define H16_TILE(MR, NV)                                                                           \
    static inline void tile_##MR##x##NV(int np, const uint16_t *xs, int ldxs, const uint16_t *w,   \
                                        const float *bias, float *y, int64_t ldy, int acc,         \
                                        int valid, int pf)                                         \
    {                                                                                              \
        __m512 f[MR][NV];                                                                          \
        __m512h h[MR][NV];                                                                         \
        UNROLL                                                                                     \
        for (int r = 0; r < MR; r++)                                                               \
            UNROLL                                                                                 \
        for (int v = 0; v < NV; v++)                                                               \
            f[r][v] = _mm512_setzero_ps();                                                         \
        for (int j0 = 0; j0 < np; j0 += SOTTO_H16_GROUP) {                                         \
            const int j1 = np - j0 < SOTTO_H16_GROUP ? np : j0 + SOTTO_H16_GROUP;                  \
            UNROLL                                                                                 \
            for (int r = 0; r < MR; r++)                                                           \
                UNROLL                                                                             \
            for (int v = 0; v < NV; v++)                                                           \
                h[r][v] = _mm512_setzero_ph();                                                     \
            for (int j = j0; j < j1; j++) {                                                        \
                __m512h wv[NV];                                                                    \
                if (pf) {                                                                          \
                    _mm_prefetch((const char *)(w + (int64_t)(j + H16_PF) * 64), _MM_HINT_T0);     \
                    _mm_prefetch((const char *)(w + (int64_t)(j + H16_PF) * 64 + 32), _MM_HINT_T0);\
                }                                                                                  \
                UNROLL                                                                             \
                for (int v = 0; v < NV; v++)                                                       \
                    wv[v] = _mm512_castsi512_ph(                                                   \
                        _mm512_loadu_si512((const void *)(w + (int64_t)j * 64 + 32 * v)));         \
                UNROLL                                                                             \
                for (int r = 0; r < MR; r++) {                                                     \
                    int32_t pair;                                                                  \
                    __builtin_memcpy(&pair, xs + r * ldxs + 2 * j, sizeof pair);                   \
                    const __m512h b = _mm512_castsi512_ph(_mm512_set1_epi32(pair));                \
                    UNROLL                                                                         \
                    for (int v = 0; v < NV; v++)                                                   \
                        h[r][v] = _mm512_fmadd_ph(b, wv[v], h[r][v]);                              \
                }                                                                                  \
            }                                                                                      \
            UNROLL                                                                                 \
            for (int r = 0; r < MR; r++)                                                           \
                UNROLL                                                                             \
            for (int v = 0; v < NV; v++) {                                                         \
                const __m512i odd = _mm512_srli_epi32(_mm512_castph_si512(h[r][v]), 16);           \
                const __m512h s = _mm512_add_ph(h[r][v], _mm512_castsi512_ph(odd));                \
                const __m256i c = _mm512_cvtepi32_epi16(_mm512_castph_si512(s));                   \
                f[r][v] = _mm512_add_ps(f[r][v], _mm512_cvtph_ps(c));                              \
            }                                                                                      \
        }                                                                                          \
        UNROLL                                                                                     \
        for (int r = 0; r < MR; r++)                                                               \
            UNROLL                                                                                 \
        for (int v = 0; v < NV; v++) {                                                             \
            if (16 * v >= valid) continue;                                                         \
            const __mmask16 m = lanes(valid - 16 * v);                                             \
            float *yr = y + (int64_t)r * ldy + 16 * v;                                             \
            __m512 o = f[r][v];                                                                    \
            if (acc) o = _mm512_add_ps(o, _mm512_maskz_loadu_ps(m, yr));                           \
            if (bias) o = _mm512_add_ps(o, _mm512_maskz_loadu_ps(m, bias + 16 * v));               \
            _mm512_mask_storeu_ps(yr, m, o);                                                       \
        }                                                                                          \
    }

H16_TILE(6, 2)
H16_TILE(4, 2)
H16_TILE(2, 2)
H16_TILE(1, 2)
H16_TILE(6, 1)
H16_TILE(4, 1)
H16_TILE(2, 1)
H16_TILE(1, 1)

/* Rows [0, M) of one strip (NV 1: 16 columns, 2: 32 columns) as 6-row tiles, then 4 + 2 + 1. */
#define H16_STRIP(NV)                                                                              \
    static void strip_##NV(int M, int np, const uint16_t *xs, int ldxs, const uint16_t *w,         \
                           const float *b, float *y, int64_t ldy, int acc, int vd)                 \
    {                                                                                              \
        int m = 0;                                                                                 \
        for (; m + 6 <= M; m += 6)                                                                 \
            tile_6x##NV(np, xs + m * ldxs, ldxs, w, b, y + m * ldy, ldy, acc, vd, m == 0);         \
        if (M - m >= 4) {                                                                          \
            tile_4x##NV(np, xs + m * ldxs, ldxs, w, b, y + m * ldy, ldy, acc, vd, m == 0);         \
            m += 4;                                                                                \
        }                                                                                          \
        if (M - m >= 2) {                                                                          \
            tile_2x##NV(np, xs + m * ldxs, ldxs, w, b, y + m * ldy, ldy, acc, vd, m == 0);         \
            m += 2;                                                                                \
        }                                                                                          \
        if (M - m >= 1)                                                                            \
            tile_1x##NV(np, xs + m * ldxs, ldxs, w, b, y + m * ldy, ldy, acc, vd, m == 0);         \
    }

H16_STRIP(2)
H16_STRIP(1)

/* Rounds n floats of src to binary16 into dst (n ≥ 0). */
static inline void round_run(const float *src, int n, uint16_t *dst)
{
    int k = 0;
    for (; k + 16 <= n; k += 16)
        _mm256_storeu_si256((__m256i *)(dst + k),
                            _mm512_cvtps_ph(_mm512_loadu_ps(src + k),
                                            _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    if (k < n) {
        const __mmask16 mk = lanes(n - k);
        const __m256i h = _mm512_cvtps_ph(_mm512_maskz_loadu_ps(mk, src + k),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm256_mask_storeu_epi16(dst + k, mk, h);
    }
}

/* Rounds rows [0, M) × columns [k0, k0 + kc) of x (gathered from taps of seg columns,
 * tap_step apart: backend.h) to binary16 into xs (rows ldxs halves apart), with a zero half
 * after an odd kc so the last pair is complete. */
static void round_rows(int M, int k0, int kc, int seg, int64_t tap_step, const float *x,
                       int64_t ldx, uint16_t *xs, int ldxs)
{
    for (int m = 0; m < M; m++) {
        const float *xr = x + (int64_t)m * ldx;
        uint16_t *o = xs + m * ldxs;
        for (int k = k0; k < k0 + kc;) {
            const int off = k % seg, run = seg - off < k0 + kc - k ? seg - off : k0 + kc - k;
            round_run(xr + (int64_t)(k / seg) * tap_step + off, run, o + (k - k0));
            k += run;
        }
        if (kc & 1) o[kc] = 0;
    }
}

static void gemm_h16_avx512fp16(int M, int K, int seg, int64_t tap_step, int n0, int n1,
                                const float *x, int64_t ldx, const uint16_t *w, int64_t pstride,
                                const float *bias, float *y, int64_t ldy, int acc)
{
    if (seg <= 0 || seg > K) seg = K > 0 ? K : 1;
    uint16_t xs[H16_RB * (SOTTO_H16_KC + 2)] __attribute__((aligned(64)));
    const int ldxs = SOTTO_H16_KC + 2;
    const int P = SOTTO_F16_PANEL;
    if (K == 0) {
        /* no products: y = (acc ? y : 0) + bias, like the other GEMMs */
        for (int m = 0; m < M; m++)
            for (int n = n0; n < n1; n++)
                y[(int64_t)m * ldy + n] =
                    (acc ? y[(int64_t)m * ldy + n] : 0.0f) + (bias ? bias[n] : 0.0f);
        return;
    }
    for (int k0 = 0; k0 < K; k0 += SOTTO_H16_KC) {
        const int kc = K - k0 < SOTTO_H16_KC ? K - k0 : SOTTO_H16_KC;
        const int np = (kc + 1) / 2;
        const float *b = k0 ? NULL : bias;
        const int a = k0 ? 1 : acc;
        for (int m0 = 0; m0 < M; m0 += H16_RB) {
            const int mb = M - m0 < H16_RB ? M - m0 : H16_RB;
            round_rows(mb, k0, kc, seg, tap_step, x + (int64_t)m0 * ldx, ldx, xs, ldxs);
            float *ym = y + (int64_t)m0 * ldy;
            for (int n = n0; n < n1;) {
                const int half = n % P != 0 || n1 - n <= 16;
                const int step = half ? 16 : 32;
                const int vd = n1 - n < step ? n1 - n : step;
                const uint16_t *wn =
                    w + (int64_t)(n / P) * pstride + (int64_t)(k0 / 2) * 64 + (n % P) * 2;
                if (half)
                    strip_1(mb, np, xs, ldxs, wn, b ? b + n : NULL, ym + n, ldy, a, vd);
                else
                    strip_2(mb, np, xs, ldxs, wn, b ? b + n : NULL, ym + n, ldy, a, vd);
                n += step;
            }
        }
    }
}

void sotto_cpu_kernels_avx512fp16(sotto_cpu_kernels *k, unsigned features)
{
    if (!(features & SOTTO_CPU_AVX512FP16) || !(features & SOTTO_CPU_AVX512)) return;
    k->isa |= SOTTO_CPU_AVX512FP16;
    k->gemm_h16 = gemm_h16_avx512fp16;
}

#else

void sotto_cpu_kernels_avx512fp16(sotto_cpu_kernels *k, unsigned features)
{
    (void)k;
    (void)features;
}

#endif
