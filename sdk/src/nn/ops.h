/*
 * The layer library that model code calls: linear, 1-D/2-D convolutions, transposed conv,
 * padding, norms, activations, softmax and embedding lookup, on the CPU backend context
 * (backend/cpu/cpu.h). Each layer validates its arguments and then runs the kernel the context
 * chose at creation (scalar or AVX2/FMA/F16C), splitting large work across the context's
 * thread pool; large GEMMs go to OpenBLAS.
 *
 * Conventions
 *   - Activations are time-major: a sequence is x[T][C] with a frame's C channels contiguous.
 *     2-D convolution is the exception: images are x[C][H][W] (planes), see sotto_conv2d.
 *   - Weights arrive in PyTorch layouts (GGUF tensors in f32, f16 or bf16, or plain float
 *     arrays for tests): Linear [out][in]; Conv1d [out][in/groups][k]; ConvTranspose1d
 *     [in][out/groups][k]; Conv2d [out][in/groups][kh][kw]. *_init repacks each weight once
 *     into the layout its kernel wants (the struct comments say which); *_free releases it
 *     (safe on a zeroed or already-freed struct). Biases, norm affines and other vectors are
 *     plain float arrays owned by the caller (sotto_vec_init makes one from a tensor).
 *   - Everything writes into caller buffers and returns SOTTO_OK, a count ≥ 0 (frames
 *     produced), or a negative sotto_error (SOTTO_ERR_INVALID_ARG for NULL pointers, sizes out
 *     of range, or a weight that was never initialised). Nothing here allocates, locks or
 *     logs except the *_init functions, which run at load time.
 *   - Aliasing: element-wise activations and per-row norms may run in place (y == x);
 *     linear, convolutions, padding and embedding need y distinct from x.
 *   - Accuracy against PyTorch float32 (tests/golden/test_ops_golden.c): max-abs 1e-5 for
 *     f32 layers at unit-scale data, f16-stored weights within 2e-3 relative (their
 *     rounding); SIMD transcendentals stay within ~1e-6 relative of libm.
 *
 * Usage (a ConvNeXt block of Vocos; load time, then per chunk of n frames)
 *     sotto_conv1d_w dw;   sotto_linear_w pw1;   float *dw_b;
 *     sotto_conv1d_w_init(&dw, t_dw, 1, 1, dim, &model->alloc, st);      // depthwise, k 7
 *     sotto_vec_init(&dw_b, t_dw_bias, dim, &model->alloc, st);
 *     sotto_linear_w_init(&pw1, t_pw1, 0, &model->alloc, st);
 *     sotto_cpu cpu;  sotto_cpu_init(&cpu, model->cpu_features, pool);   // per stream
 *     // x holds 6 frames of history (or zero padding) followed by n new frames
 *     sotto_conv1d(&cpu, &dw, dw_b, x, n + 6, y);                         // y[n][dim]
 *     sotto_layernorm(&cpu, y, n, dim, ln_w, ln_b, 1e-6f, y);
 *     sotto_linear(&cpu, &pw1, pw1_b, y, n, h);                           // h[n][inter]
 *     sotto_gelu_erf(&cpu, h, (int64_t)n * inter, h);
 */
#ifndef SOTTO_NN_OPS_H
#define SOTTO_NN_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "backend/cpu/cpu.h"
#include "core/core.h"
#include "core/gguf.h"

/* ---- vectors ------------------------------------------------------------------------------ */

/*
 * Converts a tensor (f32/f16/bf16, any shape) of exactly n elements to a new float array in
 * *out (free with sotto_free). Errors: SOTTO_ERR_MODEL (element count, message names the
 * tensor), SOTTO_ERR_OUT_OF_MEMORY, SOTTO_ERR_INVALID_ARG.
 */
int sotto_vec_init(float **out, const sotto_gguf_tensor *t, int64_t n, const sotto_alloc *a,
                   sotto_status *st);

/* ---- linear ------------------------------------------------------------------------------- */

/* A Linear weight, stored transposed: w[k][n] for input k < n_in, output n < n_out, rows
 * padded to ldw (a multiple of 16) with zero columns. Exactly one of w / w16 / h16 is set. */
typedef struct sotto_linear_w {
    int n_out, n_in; /* N, K */
    int ldw;         /* ≥ N, a multiple of 16 (see ops_weights.c) */
    int is_f16;      /* weights held as IEEE binary16 in w16 or h16 */
    float *w;        /* [n_in][ldw] f32, or NULL */
    uint16_t *w16;   /* f16 panel-major: ldw/32 panels of [n_in][32] (backend.h), or NULL */
    uint16_t *h16;   /* f16 pair-packed panels for binary16 arithmetic (backend.h, gemm_h16),
                        ldw/32 panels of round_up(n_in, 2)·32 halves, or NULL */
} sotto_linear_w;

/*
 * Prepares a Linear weight from tensor t of shape [out, in] (or [out, in, 1], a pointwise
 * Conv1d). keep_f16 != 0 stores binary16 (half the memory and bandwidth; the GEMM then runs
 * the F16C kernel for every M, rounding f32/bf16 inputs once); otherwise f32 (BLAS for large
 * M). Errors: SOTTO_ERR_MODEL (shape/dtype, names the tensor), SOTTO_ERR_OUT_OF_MEMORY,
 * SOTTO_ERR_INVALID_ARG.
 */
int sotto_linear_w_init(sotto_linear_w *w, const sotto_gguf_tensor *t, int keep_f16,
                        const sotto_alloc *a, sotto_status *st);
/* The same from a float array W[n_out][n_in]. */
int sotto_linear_w_init_f32(sotto_linear_w *w, const float *W, int n_out, int n_in, int keep_f16,
                            const sotto_alloc *a, sotto_status *st);

/*
 * Switches a prepared Linear weight to binary16 arithmetic: repacks it (f16 panels, or f32
 * rounded to binary16) into the pair-packed layout of gemm_h16 and frees the old copy, so every later
 * sotto_linear on it runs the context's gemm_h16 (twice the multiply-add rate of f32 on CPUs
 * with AVX512-FP16, relative error about 1e-3: docs/architecture.md, "Binary16
 * arithmetic"). Model code calls it at load time only when the model was loaded with
 * f16_arithmetic and the CPU has SOTTO_CPU_AVX512FP16 (sotto_model_f16_arithmetic), for the
 * weights the file stores in f16 (the caller checks: an f32 weight is rounded too). A weight
 * already switched is left as it is. Errors: SOTTO_ERR_OUT_OF_MEMORY, SOTTO_ERR_INVALID_ARG.
 */
int sotto_linear_w_use_h16(sotto_linear_w *w, const sotto_alloc *a, sotto_status *st);
void sotto_linear_w_free(sotto_linear_w *w, const sotto_alloc *a);

/*
 * y[M][n_out] = x[M][n_in] · Wᵀ + bias (bias may be NULL). M ≥ 0. M ≤ 16 runs the own
 * small-M kernel (streaming steps); larger M with f32 weights runs cblas_sgemm; both split
 * the output columns across the pool when the product is large.
 */
int sotto_linear(const sotto_cpu *ctx, const sotto_linear_w *w, const float *bias, const float *x,
                 int64_t M, float *y);
/* General form: rows of x start ldx floats apart (ldx ≥ n_in), rows of y ldy apart
 * (ldy ≥ n_out); with accumulate, y += x·Wᵀ + bias instead of y = x·Wᵀ + bias. */
int sotto_linear_ex(const sotto_cpu *ctx, const sotto_linear_w *w, const float *bias,
                    const float *x, int64_t ldx, int64_t M, float *y, int64_t ldy, int accumulate);

/*
 * Load-time shortcut for model loaders: looks up tensor `name` in g, checks it (any dtype) has
 * shape [n_out, n_in] (in_k1 != 0: [n_out, n_in, 1], a pointwise Conv1d), prepares it with
 * sotto_linear_w_init keeping f16 files in f16 (other dtypes become f32), then releases the
 * file's pages of the tensor (sotto_gguf_tensor_release): only the repacked copy stays
 * resident. Errors as sotto_gguf_tensor_check and sotto_linear_w_init.
 */
int sotto_linear_w_load(sotto_linear_w *w, const sotto_gguf *g, const char *name, int64_t n_out,
                        int64_t n_in, int in_k1, const sotto_alloc *a, sotto_status *st);

/* ---- padding ------------------------------------------------------------------------------ */

typedef enum sotto_pad_mode {
    SOTTO_PAD_ZERO = 0,     /* zeros (torch "constant" 0) */
    SOTTO_PAD_REFLECT = 1,  /* mirror without repeating the edge: needs left, right < T */
    SOTTO_PAD_REPLICATE = 2 /* repeat the edge frame: needs T ≥ 1 when padding */
} sotto_pad_mode;

/* y[T + left + right][C] = x[T][C] padded in time (torch F.pad on [C][T]). y must not
 * overlap x. Returns SOTTO_OK or SOTTO_ERR_INVALID_ARG. */
int sotto_pad1d(const float *x, int64_t T, int C, int left, int right, sotto_pad_mode mode,
                float *y);

/* ---- conv1d ------------------------------------------------------------------------------- */

/* A Conv1d weight. Depthwise (groups == c_in == c_out) keeps taps major, w[k][c]; every other
 * case keeps one transposed GEMM matrix per group and tap, w[g][k][ci][n] (ci < c_in/groups,
 * n < ldw, zero-padded), so a tap of an undilated conv is contiguous with the next and one
 * GEMM covers all taps. */
typedef struct sotto_conv1d_w {
    int c_in, c_out, k, stride, dilation, groups;
    int depthwise;
    int ldw; /* ≥ c_out/groups, a multiple of 16; 0 when depthwise */
    float *w;
    uint16_t *h16; /* binary16 arithmetic (sotto_conv1d_w_use_h16): the matrix w[k·c_in][·]
                      pair-packed (backend.h, gemm_h16) in place of w, or NULL */
} sotto_conv1d_w;

/* The geometry checks every conv weight init shares (CPU and CUDA): channel counts c_a, c_b
 * in 1..2^24 and divisible by groups, k and dilation and stride in 1..2^16. SOTTO_OK, or
 * SOTTO_ERR_INVALID_ARG with a message starting with `what`. */
int sotto_conv_geom_check(const char *what, int c_a, int c_b, int k, int stride, int dilation,
                          int groups, sotto_status *st);

/* From tensor t [c_out, c_in/groups, k]: c_in = groups · t.shape[1]. stride, dilation ≥ 1;
 * groups ≥ 1 dividing both channel counts. Errors: SOTTO_ERR_MODEL, SOTTO_ERR_INVALID_ARG,
 * SOTTO_ERR_OUT_OF_MEMORY. */
int sotto_conv1d_w_init(sotto_conv1d_w *w, const sotto_gguf_tensor *t, int stride, int dilation,
                        int groups, const sotto_alloc *a, sotto_status *st);
/* The same from W[c_out][c_in/groups][k]. */
int sotto_conv1d_w_init_f32(sotto_conv1d_w *w, const float *W, int c_out, int c_in, int k,
                            int stride, int dilation, int groups, const sotto_alloc *a,
                            sotto_status *st);
void sotto_conv1d_w_free(sotto_conv1d_w *w, const sotto_alloc *a);
/* Switches an ungrouped, non-depthwise conv to binary16 arithmetic like
 * sotto_linear_w_use_h16 (the f32 matrix is replaced by pair-packed halves). Left as it is
 * (SOTTO_OK) when depthwise, grouped, or k > 1 with an odd c_in (a tap would start inside a
 * pair). Load time only; errors: SOTTO_ERR_OUT_OF_MEMORY, SOTTO_ERR_INVALID_ARG. */
int sotto_conv1d_w_use_h16(sotto_conv1d_w *w, const sotto_alloc *a, sotto_status *st);
/* Load-time shortcut as sotto_linear_w_load: tensor `name` of shape [c_out, c_in_g, k] →
 * sotto_conv1d_w_init(stride, dilation, groups), then its file pages are released. */
int sotto_conv1d_w_load(sotto_conv1d_w *w, const sotto_gguf *g, const char *name, int64_t c_out,
                        int64_t c_in_g, int64_t k, int stride, int dilation, int groups,
                        const sotto_alloc *a, sotto_status *st);

/* Output frames of a valid convolution of T_in frames:
 * floor((T_in − dilation·(k − 1) − 1) / stride) + 1, or 0 when T_in is shorter than the
 * kernel's span. */
int64_t sotto_conv1d_out_len(const sotto_conv1d_w *w, int64_t T_in);

/*
 * Valid (unpadded) convolution: x[T_in][c_in] → y[T_out][c_out] with T_out =
 * sotto_conv1d_out_len(w, T_in); pad the input first (sotto_pad1d, or keep a streaming tail).
 * bias may be NULL. Returns T_out, or SOTTO_ERR_INVALID_ARG. Needs no scratch: taps and
 * strides are read in place as strided GEMM operands.
 */
int64_t sotto_conv1d(const sotto_cpu *ctx, const sotto_conv1d_w *w, const float *bias,
                     const float *x, int64_t T_in, float *y);

/* Scratch floats sotto_conv1d_padded needs: (T + left + right)·c_in. */
size_t sotto_conv1d_padded_scratch(const sotto_conv1d_w *w, int64_t T, int pad_left, int pad_right);
/* Pads x[T][c_in] into scratch (mode as sotto_pad1d), then convolves; torch Conv1d with
 * padding=p is pad_left = pad_right = p, SOTTO_PAD_ZERO. Returns T_out ≥ 0 or an error. */
int64_t sotto_conv1d_padded(const sotto_cpu *ctx, const sotto_conv1d_w *w, const float *bias,
                            const float *x, int64_t T, int pad_left, int pad_right,
                            sotto_pad_mode mode, float *y, float *scratch);

/* ---- transposed conv1d ------------------------------------------------------------------ */

/* A ConvTranspose1d weight, one GEMM matrix per group and tap: w[g][k][ci][n]
 * (ci < c_in/groups, n < ldw, a multiple of 16 ≥ c_out/groups, zero-padded). */
typedef struct sotto_convtr1d_w {
    int c_in, c_out, k, stride, dilation, groups;
    int ldw;
    float *w;
    uint16_t *h16; /* binary16 arithmetic (sotto_convtr1d_w_use_h16), as in sotto_conv1d_w */
} sotto_convtr1d_w;

/* From tensor t [c_in, c_out/groups, k]: c_out = groups · t.shape[1]. Errors as conv1d. */
int sotto_convtr1d_w_init(sotto_convtr1d_w *w, const sotto_gguf_tensor *t, int stride, int dilation,
                          int groups, const sotto_alloc *a, sotto_status *st);
/* The same from W[c_in][c_out/groups][k]. */
int sotto_convtr1d_w_init_f32(sotto_convtr1d_w *w, const float *W, int c_in, int c_out, int k,
                              int stride, int dilation, int groups, const sotto_alloc *a,
                              sotto_status *st);
void sotto_convtr1d_w_free(sotto_convtr1d_w *w, const sotto_alloc *a);
/* As sotto_conv1d_w_use_h16 for a transposed conv (ungrouped; c_in even unless k = 1). */
int sotto_convtr1d_w_use_h16(sotto_convtr1d_w *w, const sotto_alloc *a, sotto_status *st);

/* Full (uncropped) output length: (T_in − 1)·stride + dilation·(k − 1) + 1 (0 for T_in 0). */
int64_t sotto_convtr1d_out_len(const sotto_convtr1d_w *w, int64_t T_in);

/*
 * x[T_in][c_in] → y[L][c_out], L = sotto_convtr1d_out_len(w, T_in), every output frame
 * including the edges that torch's `padding` removes: torch's output is y[padding ..
 * L − padding + output_padding) (frames past L, when output_padding > padding, equal the
 * bias). Returns L or SOTTO_ERR_INVALID_ARG.
 */
int64_t sotto_conv_transpose1d(const sotto_cpu *ctx, const sotto_convtr1d_w *w, const float *bias,
                               const float *x, int64_t T_in, float *y);

/* ---- conv2d ------------------------------------------------------------------------------- */

typedef struct sotto_conv2d_geom {
    int stride_h, stride_w;
    int pad_h, pad_w; /* zero padding on both sides of each axis */
    int dil_h, dil_w;
    int groups;
} sotto_conv2d_geom;

/* Stride 1, no padding, dilation 1, one group. */
sotto_conv2d_geom sotto_conv2d_geom_default(void);

/* A Conv2d weight, kept in PyTorch layout w[c_out][c_in/groups][kh][kw]. */
typedef struct sotto_conv2d_w {
    int c_in, c_out, kh, kw;
    sotto_conv2d_geom g;
    float *w;
} sotto_conv2d_w;

/* From tensor t [c_out, c_in/groups, kh, kw]. Errors as conv1d. */
int sotto_conv2d_w_init(sotto_conv2d_w *w, const sotto_gguf_tensor *t, const sotto_conv2d_geom *g,
                        const sotto_alloc *a, sotto_status *st);
int sotto_conv2d_w_init_f32(sotto_conv2d_w *w, const float *W, int c_out, int c_in, int kh, int kw,
                            const sotto_conv2d_geom *g, const sotto_alloc *a, sotto_status *st);
void sotto_conv2d_w_free(sotto_conv2d_w *w, const sotto_alloc *a);

/* Output size: floor((H + 2·pad_h − dil_h·(kh − 1) − 1) / stride_h) + 1 (0 if negative),
 * likewise for W. */
void sotto_conv2d_out_size(const sotto_conv2d_w *w, int64_t H, int64_t W, int64_t *H_out,
                           int64_t *W_out);

/* Planar images: x[c_in][H][W] → y[c_out][H_out][W_out] (torch NCHW with N = 1), zero
 * padding from the geometry. Meant for the small kernels of speech front ends (3×3, 5×5).
 * Returns SOTTO_OK or SOTTO_ERR_INVALID_ARG. */
int sotto_conv2d(const sotto_cpu *ctx, const sotto_conv2d_w *w, const float *bias, const float *x,
                 int64_t H, int64_t W, float *y);

/* ---- norms -------------------------------------------------------------------------------- */

/* LayerNorm over the C channels of each of T rows: (x − mean)/sqrt(var + eps)·gamma + beta
 * with the biased variance; gamma, beta may be NULL (no affine). */
int sotto_layernorm(const sotto_cpu *ctx, const float *x, int64_t T, int C, const float *gamma,
                    const float *beta, float eps, float *y);
/* RMSNorm: x / sqrt(mean(x²) + eps) · gamma (gamma may be NULL). */
int sotto_rmsnorm(const sotto_cpu *ctx, const float *x, int64_t T, int C, const float *gamma,
                  float eps, float *y);
/* GroupNorm of a whole sequence x[T][C]: statistics per group over all T frames and its
 * C/groups channels (torch GroupNorm on [1][C][T]); gamma, beta per channel, may be NULL. */
int sotto_groupnorm(const sotto_cpu *ctx, const float *x, int64_t T, int C, int groups,
                    const float *gamma, const float *beta, float eps, float *y);
/* y[t][c] = x[t][c]·scale[c] + shift[c] (a folded eval BatchNorm: scale = γ/sqrt(var + eps),
 * shift = β − mean·scale; shift may be NULL). */
int sotto_channel_affine(const sotto_cpu *ctx, const float *x, int64_t T, int C, const float *scale,
                         const float *shift, float *y);

/* ---- activations (n floats, in place allowed) --------------------------------------------- */

int sotto_gelu_erf(const sotto_cpu *ctx, const float *x, int64_t n, float *y);  /* exact GELU */
int sotto_gelu_tanh(const sotto_cpu *ctx, const float *x, int64_t n, float *y); /* "tanh" */
int sotto_silu(const sotto_cpu *ctx, const float *x, int64_t n, float *y);
int sotto_tanh(const sotto_cpu *ctx, const float *x, int64_t n, float *y);
int sotto_elu(const sotto_cpu *ctx, const float *x, int64_t n, float alpha, float *y);
int sotto_leaky_relu(const sotto_cpu *ctx, const float *x, int64_t n, float slope, float *y);
/* Snake over x[T][C] with per-channel alpha[C]: y = x + sin²(α·x) / (α + 1e-9) (DAC's
 * Snake1d; BigVGAN's log-scale alpha must be exponentiated by the loader). */
int sotto_snake(const sotto_cpu *ctx, const float *x, int64_t T, int C, const float *alpha,
                float *y);
/* Softmax of each of `rows` rows of n floats (max-subtracted). */
int sotto_softmax(const sotto_cpu *ctx, const float *x, int64_t rows, int n, float *y);
/* s = sin(x), c = cos(x) for n floats (the phase → complex step of an ISTFT head); s and c
 * must not alias x or each other. SIMD within 2e-7 + 1e-7·|x|/π of libm. */
int sotto_sincos(const sotto_cpu *ctx, const float *x, int64_t n, float *s, float *c);

/* ---- embedding ---------------------------------------------------------------------------- */

/* y[i][dim] = table[ids[i]][dim] for i < n_ids. Returns SOTTO_OK, or SOTTO_ERR_INVALID_ARG
 * when an id is outside [0, n_rows) (rows before it are written). */
int sotto_embedding(const float *table, int64_t n_rows, int dim, const int32_t *ids, int64_t n_ids,
                    float *y);

#endif
