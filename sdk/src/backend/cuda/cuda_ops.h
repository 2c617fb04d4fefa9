/*
 * The CUDA layer library: a context (device, stream, cuBLAS handle, scratch pool, sticky error)
 * and the layers of nn/ops.h on device buffers, callable from C. Each layer takes the same
 * arguments, in the same meaning, as its CPU namesake in nn/ops.h, with device pointers in
 * place of host pointers, so a test or a model can run either backend on the same data.
 * The implementation is one .cu per layer family beside this header (common.cuh holds what
 * they share); weight repacking runs on the host in weights.c.
 *
 * Conventions
 *   - Activations are f32 and time-major, x[T][C], as on the CPU. Every pointer named x, y,
 *     bias, gamma, alpha, ids or table below is a device pointer.
 *   - Load time vs. run time: sotto_cuda_create, the *_w_init uploads, sotto_cuda_alloc and
 *     sotto_cuda_upload may allocate and block; the layers never allocate (temporaries come
 *     from the context's scratch pool, sized at creation), never synchronise, and only
 *     enqueue work on the context's stream. Results are visible to the host after
 *     sotto_cuda_download or sotto_cuda_sync.
 *   - Errors: every CUDA, cuBLAS and cuFFT call is checked. A failure is recorded in the
 *     context (the call's name and the runtime's message, see sotto_cuda_error_message) and
 *     returned as SOTTO_ERR_DEVICE; an exhausted scratch pool is recorded the same way with
 *     SOTTO_ERR_OUT_OF_MEMORY. From then on the context is failed: every call returns that
 *     same code without touching the device, until it is destroyed. Bad arguments return
 *     SOTTO_ERR_INVALID_ARG and do not fail the context. Nothing here aborts or prints.
 *   - Aliasing as in nn/ops.h: element-wise layers and per-row norms may run in place.
 *   - Threads: one context serves one thread at a time.
 *
 * Usage (a ConvNeXt block of Vocos on the GPU; load time, then per chunk of n frames)
 *     sotto_cuda *cu;  sotto_cuda_create(&cu, 0, 64 << 20, &st);
 *     sotto_cuda_conv1d_w dw;
 *     sotto_cuda_conv1d_w_init(cu, &dw, W_dw, dim, dim, 7, 1, 1, dim, &st);
 *     sotto_cuda_linear_w pw1;
 *     sotto_cuda_linear_w_init(cu, &pw1, W_pw1, inter, dim, &st);
 *     ... device buffers x, y, h from sotto_cuda_alloc, biases uploaded likewise ...
 *     sotto_cuda_scratch_reset(cu);                                    // once per step
 *     sotto_cuda_conv1d(cu, &dw, dw_b, x, n + 6, y);
 *     sotto_cuda_layernorm(cu, y, n, dim, ln_w, ln_b, 1e-6f, y);
 *     sotto_cuda_linear(cu, &pw1, pw1_b, y, n, h);
 *     sotto_cuda_gelu_erf(cu, h, (int64_t)n * inter, h);
 *     if (sotto_cuda_download(cu, host_h, h, bytes)) ... sotto_cuda_error_message(cu) ...
 */
#ifndef SOTTO_BACKEND_CUDA_OPS_H
#define SOTTO_BACKEND_CUDA_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "sotto/sotto.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sotto_cuda sotto_cuda;

/* ---- context ------------------------------------------------------------------------------ */

/*
 * Creates a context on CUDA device `device`: a non-blocking stream, a cuBLAS handle bound to
 * it, and a scratch pool of scratch_bytes (0 allowed) allocated now, once.
 * Errors: SOTTO_ERR_INVALID_ARG (NULL out, negative device), SOTTO_ERR_DEVICE (no such
 * device, or the runtime failed; st names the call), SOTTO_ERR_OUT_OF_MEMORY (host).
 */
int sotto_cuda_create(sotto_cuda **out, int device, size_t scratch_bytes, sotto_status *st);
/* Waits for queued work, then releases everything the context owns (NULL is a no-op). Weights
 * and buffers made with it must be freed first. */
void sotto_cuda_destroy(sotto_cuda *cu);

/* The sticky error: SOTTO_OK while the context works, else the code every call now returns. */
int sotto_cuda_error(const sotto_cuda *cu);
/* What failed ("cublasGemmStridedBatchedEx: CUBLAS_STATUS_...", ...); "" while none did. */
const char *sotto_cuda_error_message(const sotto_cuda *cu);

/* Lets GEMM-based layers (linear, conv1d, transposed conv1d) run f32 products on TF32 tensor
 * cores (10-bit mantissa inputs, f32 accumulation): faster, less exact. Off by default. */
void sotto_cuda_set_tf32(sotto_cuda *cu, int allow);

/* How GEMM weights are stored on the device. */
typedef enum sotto_cuda_dtype {
    SOTTO_CUDA_F32 = 0, /* f32 weights, f32 (or TF32, sotto_cuda_set_tf32) products */
    SOTTO_CUDA_BF16 = 1 /* bf16 weights, activations rounded to bf16 per call, f32 sums */
} sotto_cuda_dtype;

/*
 * Chooses the storage of the GEMM weights that later uploads through this context make
 * (the *_w_init and *_w_from_cpu calls, sotto_cuda_tlayer_init): SOTTO_CUDA_F32, the default,
 * or SOTTO_CUDA_BF16, which halves their device memory and runs their products on bf16
 * tensor cores (8-bit mantissa inputs rounded to nearest even, f32 accumulation, bias added
 * in f32): a relative error of about 3e-3 per product term instead of 1e-7. A weight keeps the
 * storage it was made with; depthwise conv weights (no GEMM) stay f32. A bf16 layer first
 * rounds its input to bf16 in scratch (sotto_cuda_linear_scratch, sotto_cuda_conv1d_scratch,
 * sotto_cuda_convtr1d_scratch say how much; with less it runs in row blocks). Returns
 * SOTTO_OK or SOTTO_ERR_INVALID_ARG (NULL, an unknown dtype: the setting is kept). Host only.
 */
int sotto_cuda_set_weight_dtype(sotto_cuda *cu, sotto_cuda_dtype dtype);
/* The storage the next upload gets (SOTTO_CUDA_F32 for NULL). */
sotto_cuda_dtype sotto_cuda_weight_dtype(const sotto_cuda *cu);

/* Waits for the stream. Returns SOTTO_OK, the sticky error, SOTTO_ERR_DEVICE, or
 * SOTTO_ERR_INVALID_ARG once when an embedding since the last sync met an id out of range
 * (that does not fail the context). */
int sotto_cuda_sync(sotto_cuda *cu);

/* ---- device buffers (load time) ----------------------------------------------------------- */

/* *dptr = bytes of device memory (bytes > 0). Errors: SOTTO_ERR_INVALID_ARG, SOTTO_ERR_DEVICE
 * (allocation failures included, which fail the context like any other). */
int sotto_cuda_alloc(sotto_cuda *cu, size_t bytes, void **dptr);
/* Frees what sotto_cuda_alloc returned (NULL is a no-op); waits for the device first. */
void sotto_cuda_free(sotto_cuda *cu, void *dptr);
/* Host → device copy, ordered after queued work; returns when src may be reused. */
int sotto_cuda_upload(sotto_cuda *cu, void *dst, const void *src, size_t bytes);
/* Device → host copy, ordered after queued work; returns when dst holds the data. */
int sotto_cuda_download(sotto_cuda *cu, void *dst, const void *src, size_t bytes);
/* Enqueues dst[0..bytes) = 0. */
int sotto_cuda_memset0(sotto_cuda *cu, void *dst, size_t bytes);

/* ---- scratch pool ------------------------------------------------------------------------- */

/*
 * A bump allocator over the pool: *dptr = bytes (rounded up to 256) of device memory valid
 * until sotto_cuda_scratch_reset. Layers that need temporaries take them here and give them
 * back before they return (the stream orders their use), so a caller resets once per step.
 * Errors: SOTTO_ERR_OUT_OF_MEMORY when the pool cannot hold the request (this fails the
 * context: the step's results are incomplete), SOTTO_ERR_INVALID_ARG.
 */
int sotto_cuda_scratch_alloc(sotto_cuda *cu, size_t bytes, void **dptr);
void sotto_cuda_scratch_reset(sotto_cuda *cu);
/* Bytes of the pool in use now, and its size. */
size_t sotto_cuda_scratch_used(const sotto_cuda *cu);
size_t sotto_cuda_scratch_size(const sotto_cuda *cu);

/* ---- linear ------------------------------------------------------------------------------- */

/* A Linear weight on the device, kept in PyTorch layout w[n_out][n_in] (cuBLAS reads it
 * transposed in place, so no repacking is needed): f32 in w, or bf16 bits in wb when made
 * under SOTTO_CUDA_BF16; exactly one of the two is set. */
typedef struct sotto_cuda_linear_w {
    int n_out, n_in;
    float *w;     /* device, f32 storage */
    uint16_t *wb; /* device, bf16 storage */
} sotto_cuda_linear_w;

/* Uploads host W[n_out][n_in] in the context's weight dtype. Errors: SOTTO_ERR_INVALID_ARG,
 * SOTTO_ERR_OUT_OF_MEMORY (host staging for bf16), SOTTO_ERR_DEVICE. */
int sotto_cuda_linear_w_init(sotto_cuda *cu, sotto_cuda_linear_w *w, const float *W, int n_out,
                             int n_in, sotto_status *st);
void sotto_cuda_linear_w_free(sotto_cuda *cu, sotto_cuda_linear_w *w);
/* Scratch bytes that let a linear over M rows round its whole input to bf16 at once (0 for an
 * f32 weight). With less it runs in row blocks that fit; it fails only when not even one row
 * fits. */
size_t sotto_cuda_linear_scratch(const sotto_cuda_linear_w *w, int64_t M);

/* y[M][n_out] = x[M][n_in] · Wᵀ + bias (bias may be NULL), as sotto_linear. */
int sotto_cuda_linear(sotto_cuda *cu, const sotto_cuda_linear_w *w, const float *bias,
                      const float *x, int64_t M, float *y);
/* As sotto_linear_ex: row strides ldx ≥ n_in, ldy ≥ n_out; accumulate: y += x·Wᵀ + bias. */
int sotto_cuda_linear_ex(sotto_cuda *cu, const sotto_cuda_linear_w *w, const float *bias,
                         const float *x, int64_t ldx, int64_t M, float *y, int64_t ldy,
                         int accumulate);

/* ---- conv1d ------------------------------------------------------------------------------- */

/* A Conv1d weight on the device. Depthwise (groups == c_in == c_out): taps major, w[k][c],
 * always f32. Otherwise w[c_out][k][c_in/groups]: each output channel's row in the order of
 * the im2col columns (tap major, then the group's input channels), f32 in w or, made under
 * SOTTO_CUDA_BF16, bf16 bits in wb (exactly one set). */
typedef struct sotto_cuda_conv1d_w {
    int c_in, c_out, k, stride, dilation, groups;
    int depthwise;
    float *w;     /* device, f32 storage */
    uint16_t *wb; /* device, bf16 storage */
} sotto_cuda_conv1d_w;

/* From host W[c_out][c_in/groups][k] (PyTorch layout), geometry as sotto_conv1d_w_init_f32.
 * Errors: SOTTO_ERR_INVALID_ARG, SOTTO_ERR_OUT_OF_MEMORY (host staging), SOTTO_ERR_DEVICE. */
int sotto_cuda_conv1d_w_init(sotto_cuda *cu, sotto_cuda_conv1d_w *w, const float *W, int c_out,
                             int c_in, int k, int stride, int dilation, int groups,
                             sotto_status *st);
void sotto_cuda_conv1d_w_free(sotto_cuda *cu, sotto_cuda_conv1d_w *w);

/* Output frames of a valid convolution, as sotto_conv1d_out_len. */
int64_t sotto_cuda_conv1d_out_len(const sotto_cuda_conv1d_w *w, int64_t T_in);
/* Scratch bytes that let sotto_cuda_conv1d run as one GEMM per group: the im2col matrix
 * T_out × k·c_in, in bf16 for a bf16 weight (0 when an f32 input is read in place: pointwise,
 * depthwise, or undilated ungrouped with stride ≥ k; a bf16 weight always gathers). With less, the
 * conv runs in row blocks that fit; it fails only when not even one row's columns fit. */
size_t sotto_cuda_conv1d_scratch(const sotto_cuda_conv1d_w *w, int64_t T_in);
/* Valid convolution x[T_in][c_in] → y[T_out][c_out], as sotto_conv1d. Returns T_out or an
 * error. */
int64_t sotto_cuda_conv1d(sotto_cuda *cu, const sotto_cuda_conv1d_w *w, const float *bias,
                          const float *x, int64_t T_in, float *y);

/* ---- transposed conv1d ------------------------------------------------------------------ */

/* A ConvTranspose1d weight on the device: w[g][k][c_out/groups][c_in/groups], one GEMM
 * operand per group and tap; f32 in w or, made under SOTTO_CUDA_BF16, bf16 bits in wb
 * (exactly one set). */
typedef struct sotto_cuda_convtr1d_w {
    int c_in, c_out, k, stride, dilation, groups;
    float *w;     /* device, f32 storage */
    uint16_t *wb; /* device, bf16 storage */
} sotto_cuda_convtr1d_w;

/* From host W[c_in][c_out/groups][k] (PyTorch layout). Errors as conv1d. */
int sotto_cuda_convtr1d_w_init(sotto_cuda *cu, sotto_cuda_convtr1d_w *w, const float *W, int c_in,
                               int c_out, int k, int stride, int dilation, int groups,
                               sotto_status *st);
void sotto_cuda_convtr1d_w_free(sotto_cuda *cu, sotto_cuda_convtr1d_w *w);
/* Full output length, as sotto_convtr1d_out_len: (T_in − 1)·stride + dilation·(k − 1) + 1. */
int64_t sotto_cuda_convtr1d_out_len(const sotto_cuda_convtr1d_w *w, int64_t T_in);
/* Scratch bytes that let a bf16 transposed conv round its whole input, T_in × c_in, to bf16 at
 * once (0 for an f32 weight, which needs none). With less it runs in blocks of input frames. */
size_t sotto_cuda_convtr1d_scratch(const sotto_cuda_convtr1d_w *w, int64_t T_in);
/* x[T_in][c_in] → y[L][c_out], every output frame (see sotto_conv_transpose1d). Returns L or
 * an error. */
int64_t sotto_cuda_conv_transpose1d(sotto_cuda *cu, const sotto_cuda_convtr1d_w *w,
                                    const float *bias, const float *x, int64_t T_in, float *y);

/* ---- norms -------------------------------------------------------------------------------- */

/* As sotto_layernorm / sotto_rmsnorm / sotto_channel_affine (gamma, beta, shift may be NULL;
 * scale may not). */
int sotto_cuda_layernorm(sotto_cuda *cu, const float *x, int64_t T, int C, const float *gamma,
                         const float *beta, float eps, float *y);
int sotto_cuda_rmsnorm(sotto_cuda *cu, const float *x, int64_t T, int C, const float *gamma,
                       float eps, float *y);
int sotto_cuda_channel_affine(sotto_cuda *cu, const float *x, int64_t T, int C, const float *scale,
                              const float *shift, float *y);

/* ---- activations (n floats, in place allowed) --------------------------------------------- */

int sotto_cuda_gelu_erf(sotto_cuda *cu, const float *x, int64_t n, float *y);
int sotto_cuda_gelu_tanh(sotto_cuda *cu, const float *x, int64_t n, float *y);
int sotto_cuda_silu(sotto_cuda *cu, const float *x, int64_t n, float *y);
int sotto_cuda_tanh(sotto_cuda *cu, const float *x, int64_t n, float *y);
int sotto_cuda_elu(sotto_cuda *cu, const float *x, int64_t n, float alpha, float *y);
int sotto_cuda_leaky_relu(sotto_cuda *cu, const float *x, int64_t n, float slope, float *y);
/* Snake over x[T][C] with per-channel alpha[C]: y = x + sin²(α·x) / (α + 1e-9). */
int sotto_cuda_snake(sotto_cuda *cu, const float *x, int64_t T, int C, const float *alpha,
                     float *y);
/* Softmax of each of `rows` rows of n floats (max-subtracted). */
int sotto_cuda_softmax(sotto_cuda *cu, const float *x, int64_t rows, int n, float *y);
/* y = min(exp(x), hi), exp first (a NaN stays NaN): the Vocos ISTFT head's magnitude
 * (hi = 100), which has no layer of its own on the CPU (vocoder/vocos/vocoder.c). */
int sotto_cuda_exp_clamp(sotto_cuda *cu, const float *x, int64_t n, float hi, float *y);

/* ---- embedding ---------------------------------------------------------------------------- */

/* y[i][dim] = table[ids[i]][dim] for i < n_ids (ids on the device). The host cannot see the
 * ids without waiting, so an id outside [0, n_rows) writes a row of zeros and is reported by
 * the next sotto_cuda_sync as SOTTO_ERR_INVALID_ARG. */
int sotto_cuda_embedding(sotto_cuda *cu, const float *table, int64_t n_rows, int dim,
                         const int32_t *ids, int64_t n_ids, float *y);

/* ---- inverse STFT ------------------------------------------------------------------------- */

typedef struct sotto_cuda_istft sotto_cuda_istft;

/*
 * A cuFFT plan for the inverse STFT of dsp/stft.h (irfft × 1/n_fft × window, overlap-add at
 * hop, divided by the squared-window envelope, `trim` samples cut at each end): CENTER is
 * trim = n_fft/2, Vocos "same" is trim = (n_fft − hop)/2. window holds n_fft host floats
 * (already zero-padded as dsp/stft.h describes). The batched C2R plan covers max_frames
 * frames; longer inputs run in blocks. Errors: SOTTO_ERR_INVALID_ARG, SOTTO_ERR_DEVICE,
 * SOTTO_ERR_OUT_OF_MEMORY.
 */
int sotto_cuda_istft_create(sotto_cuda *cu, int n_fft, int hop, int trim, const float *window,
                            int max_frames, sotto_cuda_istft **out, sotto_status *st);
void sotto_cuda_istft_destroy(sotto_cuda *cu, sotto_cuda_istft *p);
/* Output samples for n_frames frames: (n_frames − 1)·hop + n_fft − 2·trim (0 when < 1). */
int64_t sotto_cuda_istft_length(const sotto_cuda_istft *p, int64_t n_frames);
/* Scratch bytes one call needs (independent of the frame count). */
size_t sotto_cuda_istft_scratch(const sotto_cuda_istft *p);
/* From magnitude and phase mag[T][F], phase[T][F] (F = n_fft/2 + 1; bin = mag·e^{iφ}, the
 * imaginary parts of DC and Nyquist ignored) to y[sotto_cuda_istft_length(p, T)], as
 * sotto_istft on the same bins. Returns the sample count or an error. */
int64_t sotto_cuda_istft_polar(sotto_cuda *cu, sotto_cuda_istft *p, const float *mag,
                               const float *phase, int64_t n_frames, float *y);

/* ---- transformer layers (nn/attn.h) ------------------------------------------------------ */

/* The CPU's prepared weights and layers, which the *_from_cpu calls below convert (the types
 * are nn/ops.h's and nn/attn.h's; only pointers to them appear here). */
struct sotto_linear_w;
struct sotto_conv1d_w;
struct sotto_convtr1d_w;
struct sotto_rope;
struct sotto_tlayer;

/*
 * A prepared CPU weight back in PyTorch layout, f32, on the host, whichever form the CPU
 * loader left it in: f32, f16 panels (keep_f16) or pair-packed binary16 (the *_use_h16 calls);
 * binary16 values widen exactly. W receives a Linear's [n_out][n_in], a conv's
 * [c_out][c_in/groups][k], a transposed conv's [c_in][c_out/groups][k]. Host only: no device
 * is needed. Returns SOTTO_OK, or SOTTO_ERR_INVALID_ARG (NULL, or a weight holding none of the
 * forms).
 */
int sotto_cuda_linear_to_f32(const struct sotto_linear_w *src, float *W);
int sotto_cuda_conv1d_to_f32(const struct sotto_conv1d_w *src, float *W);
int sotto_cuda_convtr1d_to_f32(const struct sotto_convtr1d_w *src, float *W);
/* The same converted weight uploaded as the device layer's weight (load time). Errors:
 * SOTTO_ERR_INVALID_ARG, SOTTO_ERR_OUT_OF_MEMORY (host staging), SOTTO_ERR_DEVICE. */
int sotto_cuda_linear_w_from_cpu(sotto_cuda *cu, sotto_cuda_linear_w *w,
                                 const struct sotto_linear_w *src, sotto_status *st);
int sotto_cuda_conv1d_w_from_cpu(sotto_cuda *cu, sotto_cuda_conv1d_w *w,
                                 const struct sotto_conv1d_w *src, sotto_status *st);
int sotto_cuda_convtr1d_w_from_cpu(sotto_cuda *cu, sotto_cuda_convtr1d_w *w,
                                   const struct sotto_convtr1d_w *src, sotto_status *st);

/* Gives back the scratch taken since sotto_cuda_scratch_used returned `used` (a composite
 * layer built from other layers releases its temporaries this way); a larger value than the
 * pool's use now is ignored. */
void sotto_cuda_scratch_rewind(sotto_cuda *cu, size_t used);

/* Rotary embedding on the device: a CPU sotto_rope's convention and frequency table f_i
 * (the same doubles, so both backends rotate by the same angles). */
typedef struct sotto_cuda_rope {
    int kind;     /* sotto_rope_kind: 0 none, 1 interleaved pairs (2i, 2i+1), 2 half (i, i + D/2) */
    int head_dim; /* D */
    double *freq; /* device [D/2]; NULL for none */
} sotto_cuda_rope;

/* Copies src's table to the device (load time). Errors: SOTTO_ERR_INVALID_ARG,
 * SOTTO_ERR_DEVICE. */
int sotto_cuda_rope_init(sotto_cuda *cu, sotto_cuda_rope *r, const struct sotto_rope *src,
                         sotto_status *st);
void sotto_cuda_rope_free(sotto_cuda *cu, sotto_cuda_rope *r);
/* As sotto_rope_apply (no cs scratch): rotates in place n_heads heads of D channels in each
 * of T rows of x (row r at x + r·ldx, position pos0 + r), angles and their cosines and sines
 * in double, rounded to float. Kind none leaves x alone. */
int sotto_cuda_rope_apply(sotto_cuda *cu, const sotto_cuda_rope *r, float *x, int64_t ldx,
                          int64_t T, int n_heads, int64_t pos0);

/* Queries per block the scratch estimate below assumes. */
#define SOTTO_CUDA_ATTN_QBLOCK 256
/* Scratch bytes sotto_cuda_attention needs to run its queries in blocks of
 * min(T, SOTTO_CUDA_ATTN_QBLOCK): the scores of every head for one block. */
size_t sotto_cuda_attention_scratch(int64_t T, int n_heads, int causal, int window);
/*
 * Multi-head attention over one whole sequence, the core of sotto_tlayer_self_attn between
 * its QKV and output Linears: for every head h (channels [h·D, (h+1)·D) of each row) and
 * frame t, o[t] = softmax_s(q[t]·k[s] / sqrt(D), masked) · v[s], with nn/attn.h's masks
 * (causal: s ≤ t; window W > 0: t − s < W, and when not causal also s − t < W; every mask
 * keeps s = t). q, k, v rows are ld floats apart (a fused QKV output [T][3d]: q = qkv,
 * k = qkv + d, v = qkv + 2d, ld = 3d); o[T][·] rows ldo apart; ld, ldo ≥ n_heads·head_dim.
 * The queries run in blocks whose scores fit the free scratch (all of them when it holds
 * them), each block against only the keys its masks can reach: two strided-batched GEMMs over
 * the heads around a masked softmax. o must not overlap q, k, v. Returns SOTTO_OK,
 * SOTTO_ERR_INVALID_ARG, SOTTO_ERR_OUT_OF_MEMORY (not even one query's scores fit: fails the
 * context) or the sticky error.
 */
int sotto_cuda_attention(sotto_cuda *cu, const float *q, const float *k, const float *v, int64_t ld,
                         int64_t T, int n_heads, int head_dim, int causal, int window, float *o,
                         int64_t ldo);
/* y = x + ls ⊙ a over T rows of C (ls[C] may be NULL: scale 1), the pre-norm residual with
 * LayerScale of nn/attn.c. y may equal x. */
int sotto_cuda_residual(sotto_cuda *cu, const float *x, const float *a, const float *ls, int64_t T,
                        int C, float *y);

/* A transformer layer (sotto_tlayer) on the device: the CPU layer's configuration and its
 * weights, converted back to f32 (see sotto_cuda_linear_to_f32) and stored in the context's
 * weight dtype (its scratch estimates below assume f32 Linears: a bf16 layer's Linears round
 * their inputs in whatever row blocks the pool leaves). */
typedef struct sotto_cuda_tlayer {
    int dim, n_heads, head_dim, ffn_dim;
    int norm; /* sotto_norm_kind: 0 LayerNorm, 1 RMSNorm */
    float norm_eps;
    int act; /* sotto_act_kind: 0 GELU erf, 1 GELU tanh, 2 ReLU, 3 SiLU */
    int causal, window;
    sotto_cuda_rope rope;
    sotto_cuda_linear_w qkv, out, ff1, ff2; /* [3d][d], [d][d], [ffn][d], [d][ffn] */
    /* device vectors, NULL where the CPU layer has none */
    float *norm1_w, *norm1_b, *norm2_w, *norm2_b;
    float *qkv_b, *out_b, *ff1_b, *ff2_b;
    float *ls1, *ls2;
} sotto_cuda_tlayer;

/* Uploads CPU layer src (load time). Errors: SOTTO_ERR_INVALID_ARG (NULL, a layer not
 * prepared), SOTTO_ERR_OUT_OF_MEMORY, SOTTO_ERR_DEVICE; on error nothing stays allocated. */
int sotto_cuda_tlayer_init(sotto_cuda *cu, sotto_cuda_tlayer *L, const struct sotto_tlayer *src,
                           sotto_status *st);
void sotto_cuda_tlayer_free(sotto_cuda *cu, sotto_cuda_tlayer *L);
/* Scratch bytes sotto_cuda_tlayer_forward (or a sublayer) takes from the pool for T frames
 * with attention in blocks of SOTTO_CUDA_ATTN_QBLOCK queries (0 on bad arguments). With less,
 * the blocks shrink; the call fails only when not even one query's scores fit. Reads only the
 * geometry (dim, n_heads, head_dim, ffn_dim, causal, window), so a pool can be sized before
 * the weights are uploaded. */
size_t sotto_cuda_tlayer_scratch(const sotto_cuda_tlayer *L, int64_t T);
/* As sotto_tlayer_forward: y[T][d] from x[T][d], frame t at position pos0 + t; y may equal x,
 * else must not overlap it. The temporaries are given back before it returns. */
int sotto_cuda_tlayer_forward(sotto_cuda *cu, const sotto_cuda_tlayer *L, const float *x, int64_t T,
                              int64_t pos0, float *y);
/* As sotto_tlayer_self_attn without a cache, and sotto_tlayer_ffn: the sublayers on already
 * normalised x, without LayerScale or residual; y must not overlap x. */
int sotto_cuda_tlayer_self_attn(sotto_cuda *cu, const sotto_cuda_tlayer *L, const float *x,
                                int64_t T, int64_t pos0, float *y);
int sotto_cuda_tlayer_ffn(sotto_cuda *cu, const sotto_cuda_tlayer *L, const float *x, int64_t T,
                          float *y);

/* ---- KV cache: streaming attention (nn/attn.h's sotto_kv_cache, sotto_tlayer_step) --------- */

/*
 * The rotated keys and the values of one layer for one stream, on the device, with the CPU
 * cache's rules: `capacity` frames fixed at creation; positions continue from the cache (the
 * next frame pushed gets `pos`); with a window W the cache is a ring of capacity ≥ W frames
 * whose oldest frames are overwritten once no later query can see them, and a step longer
 * than capacity − W + 1 frames is attended in parts of that size (the frames of a later part
 * are not among the keys of an earlier one, which matters only to a non-causal layer);
 * without a window it keeps every frame, and a step that would exceed capacity fails with
 * SOTTO_ERR_STATE, changing nothing. The bookkeeping (pos0, pos, n) lives on the host, so it
 * can be checked without waiting for the device; k and v are device memory.
 *
 * A step's launches carry its positions and ring slots as arguments, so a captured step
 * (cuda_graph.h) replays the positions of its capture: do not replay one across steps.
 */
typedef struct sotto_cuda_kv_cache {
    int n_heads, head_dim, dim; /* dim = n_heads·head_dim */
    int capacity;               /* frames (ring slots) */
    int window;                 /* the layer's window: > 0 makes the cache a ring */
    int64_t pos0;               /* position of the first frame since the last reset */
    int64_t pos;                /* position the next frame pushed gets */
    int n;                      /* slots holding frames: min(pos − pos0, capacity) */
    /* device rows of dim floats, the frame at position p in slot (p − pos0) mod capacity */
    float *k, *v; /* [capacity][dim] each */
} sotto_cuda_kv_cache;

/* A cache for layer L with room for `capacity` frames (load time: allocates k and v, zeroed;
 * capacity ≥ the layer's window when it has one, ≤ 2^24). Positions start at 0. Errors:
 * SOTTO_ERR_INVALID_ARG, SOTTO_ERR_DEVICE; on error nothing stays allocated. */
int sotto_cuda_kv_cache_init(sotto_cuda *cu, sotto_cuda_kv_cache *c, const sotto_cuda_tlayer *L,
                             int capacity, sotto_status *st);
/* Forgets every frame; the next frame pushed gets position pos0 (negative: 0). Host only. */
void sotto_cuda_kv_cache_reset(sotto_cuda_kv_cache *c, int64_t pos0);
/* Releases k and v (safe on a zeroed or already-freed struct). */
void sotto_cuda_kv_cache_free(sotto_cuda *cu, sotto_cuda_kv_cache *c);

/* The two halves of a part, for layers that arrange attention themselves. append: stores m
 * frames (k and v rows ld apart, head h at channel h·head_dim; m ≤ capacity) in the next
 * slots and advances pos and n (SOTTO_ERR_STATE, nothing changed, when an unwindowed cache
 * lacks room). attention: the last m frames pushed (q rows ldq apart; m ≤ n) attend over the
 * n cached frames under the masks of nn/attn.h (causal as given, the cache's window) into
 * o[m] (rows ldo apart), queries in blocks whose scores fit the free scratch. */
int sotto_cuda_kv_cache_append(sotto_cuda *cu, sotto_cuda_kv_cache *c, const float *k,
                               const float *v, int64_t ld, int64_t m);
/* Scratch bytes sotto_cuda_kv_attention needs for m queries in blocks of
 * min(m, SOTTO_CUDA_ATTN_QBLOCK) over a full cache (0 on bad arguments). */
size_t sotto_cuda_kv_attention_scratch(int64_t m, int n_heads, int capacity);
int sotto_cuda_kv_attention(sotto_cuda *cu, const sotto_cuda_kv_cache *c, const float *q,
                            int64_t ldq, int64_t m, int causal, float *o, int64_t ldo);

/* Scratch bytes sotto_cuda_tlayer_step (or sotto_cuda_tlayer_self_attn_kv) takes for steps of
 * up to n frames (0 on bad arguments); with less, the query blocks shrink. */
size_t sotto_cuda_tlayer_step_scratch(const sotto_cuda_tlayer *L, const sotto_cuda_kv_cache *c,
                                      int64_t n);
/*
 * As sotto_tlayer_step: the layer over n new frames x[n][d] → y[n][d] (y == x allowed, else no
 * overlap), appending their keys and values to the cache, RoPE at the cache's positions.
 * Errors: SOTTO_ERR_INVALID_ARG (NULL pointers, n < 0, a cache made for another layer shape),
 * SOTTO_ERR_STATE (an unwindowed cache without room for n more frames); on these neither y
 * nor the cache changes and the context keeps working. A device failure is the context's
 * sticky error (the cache may then have advanced: reset it or make a new context).
 */
int sotto_cuda_tlayer_step(sotto_cuda *cu, const sotto_cuda_tlayer *L, sotto_cuda_kv_cache *c,
                           const float *x, int64_t n, float *y);
/* As sotto_tlayer_self_attn with a cache: the attention sublayer on already normalised x
 * (no LayerScale or residual), positions from the cache, which advances as in a step; y must
 * not overlap x. Errors as sotto_cuda_tlayer_step. */
int sotto_cuda_tlayer_self_attn_kv(sotto_cuda *cu, const sotto_cuda_tlayer *L,
                                   sotto_cuda_kv_cache *c, const float *x, int64_t n, float *y);

#ifdef __cplusplus
}
#endif

#endif
