/*
 * Backend function tables. A backend is a struct of function pointers chosen once when a
 * context is created, never a global switch, so two streams with different feature masks can
 * run side by side. This header holds what every backend shares: the list of layer ops
 * (used by the capability query, so a loader can ask "does this backend run everything my
 * model needs?" before it commits to one) and the CPU kernel table, whose entries are the
 * innermost loops of the layers in nn/ops.h. The CPU table is filled from the scalar
 * reference (backend/cpu/kernels_ref.c) and overridden entry by entry with the AVX2/FMA/F16C
 * variants (backend/cpu/kernels_avx2.c) that the features mask allows.
 */
#ifndef SOTTO_BACKEND_H
#define SOTTO_BACKEND_H

#include <stddef.h>
#include <stdint.h>

/* Layer ops of nn/ops.h, for capability queries. */
typedef enum sotto_op {
    SOTTO_OP_LINEAR = 0,
    SOTTO_OP_LINEAR_F16, /* linear with f16-stored weights */
    SOTTO_OP_PAD1D,
    SOTTO_OP_CONV1D,
    SOTTO_OP_CONV1D_DEPTHWISE,
    SOTTO_OP_CONV_TRANSPOSE1D,
    SOTTO_OP_CONV2D,
    SOTTO_OP_LAYERNORM,
    SOTTO_OP_RMSNORM,
    SOTTO_OP_GROUPNORM,
    SOTTO_OP_CHANNEL_AFFINE,
    SOTTO_OP_GELU_ERF,
    SOTTO_OP_GELU_TANH,
    SOTTO_OP_SILU,
    SOTTO_OP_ELU,
    SOTTO_OP_LEAKY_RELU,
    SOTTO_OP_SNAKE,
    SOTTO_OP_TANH,
    SOTTO_OP_SOFTMAX,
    SOTTO_OP_EMBEDDING,
    SOTTO_OP_COUNT
} sotto_op;

/* Name of an op ("linear", ...); "?" when out of range. */
const char *sotto_op_name(int op);

/*
 * The CPU kernel table. Conventions shared by every entry:
 *   - all matrices are row-major with an explicit leading dimension (elements, not bytes);
 *   - kernels never allocate, lock or log, and never fail: the layer code in nn/ validates
 *     shapes before it calls them;
 *   - `y` may alias `x` in the element-wise and per-row kernels (same pointer, same rows),
 *     never in gemm or dwconv.
 */
/* Columns per panel of f16 GEMM weights (see gemm_f16 and gemm_h16). */
#define SOTTO_F16_PANEL 32
/* Binary16 arithmetic (gemm_h16): k pairs summed in binary16 before an f32 accumulation, and
 * the K slice whose f32 sums are added to y. */
#define SOTTO_H16_GROUP 32
#define SOTTO_H16_KC 256

typedef struct sotto_cpu_kernels {
    const char *name; /* "scalar", "avx2", "avx512" (variant of the GEMM kernels; others may
                         mix) */
    unsigned isa;     /* SOTTO_CPU_* bits that at least one chosen variant uses */

    /* y[m][n] = (acc ? y[m][n] : 0) + (bias ? bias[n] : 0) + Σ_k x[m][k]·w[k][n] for m < M
     * and n in [n0, n1). w is K×N transposed weights with leading dimension ldw; n0 is a
     * multiple of 16 and columns up to min(round_up(n1, 16), ldw) may be read (the weight
     * packers pad ldw to a multiple of 16 with zeros). Tuned for small M (1..16 rows); any
     * M works. */
    void (*gemm_f32)(int M, int K, int n0, int n1, const float *x, int64_t ldx, const float *w,
                     int64_t ldw, const float *bias, float *y, int64_t ldy, int acc);
    /* As gemm_f32 with IEEE binary16 weights stored in panels of SOTTO_F16_PANEL columns:
     * w[k][n] is at w[(n / 32)·ldw + k·32 + n % 32], so ldw is the distance between panels
     * (≥ 32·K) and a panel's rows are contiguous. A small-M step then streams whole cache
     * lines in address order, which the hardware prefetchers follow (row-major rows of a wide
     * layer lie a page apart). Columns up to round_up(n1, 32) may be read (zero-padded). */
    void (*gemm_f16)(int M, int K, int n0, int n1, const float *x, int64_t ldx, const uint16_t *w,
                     int64_t ldw, const float *bias, float *y, int64_t ldy, int acc);
    /* As gemm_f16, computed in binary16 arithmetic (the fast path of CPUs with AVX512-FP16;
     * the scalar reference computes the same roundings). Weights are pair-packed panels of
     * SOTTO_F16_PANEL columns: w[k][n] is at w[(n / 32)·ldw + (k / 2)·64 + ((n % 32) / 16)·32 +
     * (n % 16)·2 + k % 2], ldw ≥ 32·round_up(K, 2), zero-padded (columns and the last odd k).
     * Per output, over each slice of SOTTO_H16_KC k (in order): x and w are rounded to
     * binary16; the even-k and the odd-k products of each run of SOTTO_H16_GROUP k pairs are
     * summed separately in binary16 (a fused multiply-add, rounded once per step, starting
     * from 0), the two sums are added in binary16 and the result is added in f32 to the
     * slice's f32 sum (starting from 0). The first slice's sum is stored like gemm_f32's
     * result (plus y when acc, plus bias); each later slice's sum is then added to y.
     * Row m of x may be gathered from taps (a dilated convolution's K = taps · seg inputs in
     * one product): x[m][k] = x[m·ldx + (k / seg)·tap_step + k % seg]; seg = K is a plain
     * row (tap_step unused); seg < K must be even. */
    void (*gemm_h16)(int M, int K, int seg, int64_t tap_step, int n0, int n1, const float *x,
                     int64_t ldx, const uint16_t *w, int64_t ldw, const float *bias, float *y,
                     int64_t ldy, int acc);

    /* Depthwise conv for output rows [t0, t1): y[t][c] = bias[c] (or 0) +
     * Σ_k w[k][c]·x[t·stride + k·dilation][c]. w is tap-major [K][C]; rows of x and y have
     * C floats. */
    void (*dwconv)(const float *x, int C, const float *w, int K, int stride, int dilation,
                   const float *bias, float *y, int64_t t0, int64_t t1);

    /* Per-row norms over C channels of `rows` rows. gamma/beta may be NULL (no affine). */
    void (*layernorm)(const float *x, int64_t rows, int C, const float *gamma, const float *beta,
                      float eps, float *y);
    void (*rmsnorm)(const float *x, int64_t rows, int C, const float *gamma, float eps, float *y);

    /* Element-wise activations over n floats. */
    void (*gelu_erf)(const float *x, int64_t n, float *y);
    void (*gelu_tanh)(const float *x, int64_t n, float *y);
    void (*silu)(const float *x, int64_t n, float *y);
    void (*tanh)(const float *x, int64_t n, float *y);
    void (*elu)(const float *x, int64_t n, float alpha, float *y);
    void (*leaky_relu)(const float *x, int64_t n, float slope, float *y);
    /* Snake over rows × C: y = x + sin²(α_c·x) / (α_c + 1e-9). */
    void (*snake)(const float *x, int64_t rows, int C, const float *alpha, float *y);
    /* Numerically stable softmax of each of `rows` rows of n floats. */
    void (*softmax)(const float *x, int64_t rows, int n, float *y);
    /* s[i] = sin(x[i]), c[i] = cos(x[i]) for n floats (the phase → complex step of an ISTFT
     * head). s and c must not alias x or each other. */
    void (*sincos)(const float *x, int64_t n, float *s, float *c);

    /* IEEE binary16 ↔ float conversion of n values (round to nearest even). */
    void (*f16_to_f32)(const uint16_t *x, int64_t n, float *y);
    void (*f32_to_f16)(const float *x, int64_t n, uint16_t *y);
} sotto_cpu_kernels;

/* The scalar reference table (every entry plain C). */
void sotto_cpu_kernels_ref(sotto_cpu_kernels *k);
/* Overrides the entries that have an AVX2/FMA/F16C variant allowed by `features` (a mask of
 * SOTTO_CPU_* bits the CPU really has). Only call with bits the CPU supports. */
void sotto_cpu_kernels_avx2(sotto_cpu_kernels *k, unsigned features);
/* Replaces the GEMM and the vectorised element-wise/norm/dwconv/softmax entries with AVX-512
 * ones when features has SOTTO_CPU_AVX512 and FMA (the f16 conversions stay AVX2). */
void sotto_cpu_kernels_avx512(sotto_cpu_kernels *k, unsigned features);
/* Replaces gemm_h16 with the AVX512-FP16 kernel when features has SOTTO_CPU_AVX512FP16 (and
 * SOTTO_CPU_AVX512), and the compiler could build it. */
void sotto_cpu_kernels_avx512fp16(sotto_cpu_kernels *k, unsigned features);

#endif
